import Crypto
import Foundation
import Hummingbird
import Logging
import Synchronization

/// `clearway erp-sim`: enough of NetSuite's and Business Central's REST APIs, and a Standard
/// Webhooks receiver, for the erp-writeback to write to, each with its records, a ledger of the
/// side effects applied, and faults injected by configuration.
///
/// Endpoints (paths under the server's URL):
/// - NetSuite (base URL `/netsuite`): `POST /netsuite/services/rest/auth/oauth2/v1/token` (M2M,
///   a JWT client assertion verified against the public key), `GET`/`PUT
///   /netsuite/services/rest/record/v1/customrecord_clw_customs/eid:<orderId>`.
/// - Business Central (base URL `/bc`, token URL `/bc/<tenant>/oauth2/v2.0/token`): `GET`/`PATCH
///   /bc/v2.0/<tenant>/<environment>/api/clearway/customs/v1.0/companies(<id>)/salesOrderCustoms(<id>)`.
/// - Webhook receivers: `POST /webhook/<name>`.
/// - `GET /_sim/ledger` (`{"entries": [LedgerEntry]}`), `GET /_sim/records`
///   (`{"records": [SimulatedRecord]}`), `GET /_sim/stats` (``SimulatorStats``),
///   `POST /_sim/revoke-tokens`, `POST /_sim/bc/interfere/<recordId>?times=N`, `GET /healthz`.
///
/// Run it with ``run(port:handlingSignals:onListening:)`` (the CLI) or ``start(port:)`` (tests).
public final class ERPSimulator: Sendable {
    /// What it simulates and how badly it behaves.
    public let configuration: ERPSimulatorConfiguration
    let store: Mutex<SimulatorStore>
    let logger: Logger
    /// The NetSuite certificate's public key (X9.63; Crypto's key types are not `Sendable`).
    let netsuiteKey: Data?
    /// The webhook receivers' keys.
    let webhookKeys: [Data]

    /// Makes the simulator. Throws ``SimulatorError`` on a public key or webhook secret it
    /// cannot read.
    public init(configuration: ERPSimulatorConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        store = Mutex(SimulatorStore(seed: configuration.faults.seed))
        if let netsuite = configuration.netsuite {
            do {
                netsuiteKey = try P256.Signing.PublicKey(pemRepresentation: netsuite.publicKeyPEM).x963Representation
            } catch {
                throw SimulatorError("the NetSuite public key is not a P-256 PUBLIC KEY PEM: \(error)")
            }
        } else {
            netsuiteKey = nil
        }
        webhookKeys = try configuration.webhookSecrets.map { secret in
            let base64 = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
            guard let bytes = Data(base64Encoded: base64), !bytes.isEmpty else {
                throw SimulatorError("a webhook secret is not whsec_<base64>")
            }
            return bytes
        }
    }

    /// A simulator started by ``start(port:)``.
    public struct Running: Sendable {
        /// The port it listens on.
        public let port: Int
        /// `http://<host>:<port>`.
        public let url: String
        let task: Task<Void, any Error>

        /// Stops it and waits until it has.
        public func stop() async {
            task.cancel()
            _ = await task.result
        }
    }

    /// Serves until the task is cancelled or, with `handlingSignals`, SIGTERM or SIGINT arrives.
    /// `onListening` gets the port bound (the one chosen when `port` is 0).
    public func run(
        port: Int, handlingSignals: Bool = true, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let application = Application(
            responder: SimulatorResponder(simulator: self),
            configuration: .init(address: .hostname(configuration.host, port: port), serverName: "clearway-erp-sim"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger)
        if handlingSignals {
            try await application.runService()
        } else {
            try await application.runService(gracefulShutdownSignals: [])
        }
    }

    /// Starts serving in a task of its own on `port` (0: any free port) and returns once it
    /// listens.
    public func start(port: Int = 0) async throws -> Running {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await self.run(port: port, handlingSignals: false) { bound in
                continuation.yield(bound)
                continuation.finish()
            }
        }
        for await bound in ports {
            return Running(port: bound, url: "http://\(configuration.host):\(bound)", task: task)
        }
        try await task.value
        throw SimulatorError("the simulator stopped before it listened")
    }

    /// Every side effect applied, in order.
    public func ledger() -> [LedgerEntry] { store.withLock { $0.ledger } }

    /// What each simulated system holds now.
    public func records() -> [SimulatedRecord] { store.withLock { $0.records } }

    /// What it has served and injected.
    public func stats() -> SimulatorStats { store.withLock { $0.stats } }

    /// Forgets every access token issued: the next request with one is answered 401.
    public func revokeTokens() { store.withLock { $0.tokens.removeAll() } }

    /// Has "another user" change the Business Central record of a sales order right after each of
    /// its next `times` reads, so that a write with the ETag just read meets a 412.
    public func interfere(recordId: String, times: Int) {
        store.withLock { $0.interference[recordId, default: 0] += times }
    }
}

/// The simulator's configuration or start failed.
public struct SimulatorError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String

    init(_ description: String) { self.description = description }
}

/// The request context: the connection, so that a fault can drop it.
struct SimulatorContext: InitializableFromSource {
    /// Closes the connection without an answer.
    let dropConnection: @Sendable () -> Void

    init(source: ApplicationRequestContextSource) {
        let channel = source.channel
        dropConnection = { channel.close(promise: nil) }
    }
}

/// Routes a request to its simulated system.
struct SimulatorResponder: HTTPResponder {
    let simulator: ERPSimulator

    func respond(to request: Request, context: SimulatorContext) async throws -> Response {
        let path = request.uri.path
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var request = request
        let body = Data((try await request.collectBody(upTo: 4 << 20)).readableBytesView)
        let call = SimulatorCall(request: request, segments: segments, body: body, context: context)
        switch (request.method, segments.first) {
        case (.get, "healthz"): return .text(.ok, "ok\n")
        case (_, "_sim"): return simulator.admin(call)
        case (_, "netsuite") where simulator.netsuiteKey != nil: return try await simulator.netsuite(call)
        case (_, "bc") where simulator.configuration.businessCentral != nil:
            return try await simulator.businessCentral(call)
        case (.post, "webhook") where !simulator.webhookKeys.isEmpty && segments.count == 2:
            return try await simulator.webhook(call, receiver: segments[1])
        default:
            return .json(.notFound, ["error": "no such endpoint: \(request.method) \(path)"])
        }
    }
}

/// One request, read.
struct SimulatorCall {
    let request: Request
    let segments: [String]
    let body: Data
    let context: SimulatorContext

    var method: HTTPRequest.Method { request.method }

    /// A header by name, case-insensitively.
    func header(_ name: String) -> String? {
        let name = name.lowercased()
        return request.headers.first(where: { $0.name.canonicalName == name })?.value
    }

    /// The bearer token of the Authorization header.
    var bearer: String? {
        guard let value = header("authorization"), value.lowercased().hasPrefix("bearer ") else { return nil }
        return String(value.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    /// The body as an `application/x-www-form-urlencoded` form.
    var form: [String: String] {
        var form: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            form[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return form
    }

    /// The body as a JSON object.
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }

    /// The URL this server is reached at, from the Host header.
    var origin: String { "http://\(header("host") ?? "127.0.0.1")" }
}

extension ERPSimulator {
    /// A fault decided for a request to an ERP endpoint.
    enum Fault: String {
        case serverError = "server-error"
        case tooManyRequests = "too-many-requests"
        case timeout
        case drop
    }

    /// Counts the request, waits the latency, then maybe injects a fault: an answer to give
    /// instead of handling it (nothing applied), or nil to handle it.
    func injectFault(_ call: SimulatorCall, system: String) async throws -> Response? {
        let faults = configuration.faults
        let fault: Fault? = store.withLock { store in
            store.stats.requests[system, default: 0] += 1
            let draw = Double.random(in: 0..<1, using: &store.random)
            let shares: [(Fault, Double)] = [
                (.serverError, faults.serverErrors), (.tooManyRequests, faults.tooManyRequests),
                (.timeout, faults.timeouts), (.drop, faults.drops),
            ]
            var bound = 0.0
            var fault: Fault?
            for (kind, share) in shares {
                bound += share
                if draw < bound {
                    fault = kind
                    break
                }
            }
            if let fault { store.stats.faults[fault.rawValue, default: 0] += 1 }
            return fault
        }
        let latency = faults.latency + (faults.latencyBySystem[system] ?? .zero)
        if latency > .zero { try await Task.sleep(for: latency) }
        switch fault {
        case nil:
            return nil
        case .serverError:
            return errorResponse(
                system: system, status: .serviceUnavailable, code: "UNEXPECTED_ERROR",
                message: "The service is temporarily unavailable (injected).")
        case .tooManyRequests:
            var response = errorResponse(
                system: system, status: .tooManyRequests, code: "CONCURRENCY_LIMIT_EXCEEDED",
                message: "Request limit exceeded (injected).")
            response.headers[.retryAfter] = "\(faults.retryAfterSeconds)"
            return response
        case .timeout:
            try await Task.sleep(for: faults.timeoutHold)
            return errorResponse(
                system: system, status: .gatewayTimeout, code: "TIMEOUT",
                message: "Held past the client's timeout (injected).")
        case .drop:
            call.context.dropConnection()
            throw SimulatorError("connection dropped (injected)")
        }
    }

    /// After a write was applied: maybe answer 500 anyway (the client will repeat a write that
    /// took effect).
    func injectFaultAfterApply(system: String) -> Response? {
        let share = configuration.faults.serverErrorsAfterApply
        guard share > 0 else { return nil }
        let fails = store.withLock { store in
            let fails = Double.random(in: 0..<1, using: &store.random) < share
            if fails { store.stats.faults["server-error-after-apply", default: 0] += 1 }
            return fails
        }
        return fails
            ? errorResponse(
                system: system, status: .internalServerError, code: "UNEXPECTED_ERROR",
                message: "An unexpected error occurred after the record was saved (injected).") : nil
    }

    /// An error in the system's own shape: NetSuite's problem details, OData's `error`, or plain.
    func errorResponse(system: String, status: HTTPResponse.Status, code: String, message: String) -> Response {
        if status.code < 500 { store.withLock { $0.stats.refusals["\(system) \(status.code)", default: 0] += 1 } }
        switch system {
        case "netsuite":
            return .json(
                status,
                [
                    "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15", "title": status.reasonPhrase,
                    "status": status.code, "o:errorDetails": [["detail": message, "o:errorCode": code]],
                ])
        case "business-central":
            return .json(status, ["error": ["code": code, "message": message]])
        default:
            return .json(status, ["error": code, "message": message])
        }
    }

    /// Issues an access token for a system.
    func issueToken(system: String) -> Response {
        let token = "\(system)-" + (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        let lifetime = configuration.tokenLifetime
        store.withLock { $0.tokens[token] = (system, .now + .seconds(lifetime)) }
        return .json(.ok, ["access_token": token, "token_type": "Bearer", "expires_in": lifetime])
    }

    /// Whether the request carries a live token of the system.
    func authorized(_ call: SimulatorCall, system: String) -> Bool {
        guard let token = call.bearer else { return false }
        return store.withLock { store in
            guard let issued = store.tokens[token], issued.system == system else { return false }
            return ContinuousClock.now < issued.expires
        }
    }

    /// `/_sim/…` and nothing else: no faults, no latency.
    func admin(_ call: SimulatorCall) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        switch (call.method, Array(call.segments.dropFirst())) {
        case (.get, ["ledger"]):
            return .encoded(["entries": ledger()] as [String: [LedgerEntry]], encoder)
        case (.get, ["records"]):
            return .encoded(["records": records()] as [String: [SimulatedRecord]], encoder)
        case (.get, ["stats"]):
            return .encoded(stats(), encoder)
        case (.post, ["revoke-tokens"]):
            revokeTokens()
            return .json(.ok, ["revoked": true])
        case (.post, let path) where path.count == 3 && path[0] == "bc" && path[1] == "interfere":
            let times = call.request.uri.queryParameters["times"].flatMap { Int($0) } ?? 1
            interfere(recordId: path[2], times: times)
            return .json(.ok, ["recordId": path[2], "times": times])
        default:
            return .json(.notFound, ["error": "no such endpoint: \(call.method) \(call.request.uri.path)"])
        }
    }
}

extension Response {
    /// A JSON answer from a JSON object.
    static func json(_ status: HTTPResponse.Status, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A JSON answer from a value.
    static func encoded(_ value: some Encodable, _ encoder: JSONEncoder) -> Response {
        let data = (try? encoder.encode(value)) ?? Data()
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A text answer.
    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
