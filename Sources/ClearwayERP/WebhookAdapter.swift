import ClearwayContract
import ClearwayDomain
import Crypto
import Foundation
import Logging

/// Where to post an ERP's webhooks and with which secrets.
public struct WebhookConfiguration: Sendable {
    /// The receiver's URL.
    public var url: String
    /// The file of the signing secrets, one a line (`whsec_` + base64 of the key, as Standard
    /// Webhooks gives them; blank lines and `#` comments skipped). Each is used to sign, so a
    /// receiver can move from the old secret to the new one.
    public var secretFile: String
    /// The event type in the body (default `clearway.erp.customs.v1`).
    public var eventType = WebhookAdapter.eventType
    /// How long a request may take (default 10 s).
    public var requestTimeout: Duration = .seconds(10)
    /// How the secret file's setting is named, for error messages (``CredentialNames/secret``).
    public var names = CredentialNames()

    /// Makes a configuration with the defaults above.
    public init(url: String, secretFile: String) {
        self.url = url
        self.secretFile = secretFile
    }
}

/// Posts an order's customs values to a receiver, signed the Standard Webhooks way.
///
/// The body is `{"type": "clearway.erp.customs.v1", "timestamp": …, "data": <OrderCustoms>}`;
/// `webhook-id` is derived from the order and the revision, so a repeated write has the same id
/// and the receiver drops it; `webhook-signature` holds `v1,<base64 HMAC-SHA256>` of
/// `id.timestamp.body` for each secret. A 2xx is applied. A receiver cannot be read back.
public struct WebhookAdapter: ERPAdapter {
    /// The event type.
    public static let eventType = "clearway.erp.customs.v1"

    /// The `erp.system` value it serves.
    public let system: String
    let configuration: WebhookConfiguration
    /// The signing keys' bytes (Crypto's `SymmetricKey` is not `Sendable`).
    let keys: [Data]
    let http: ERPHTTPClient
    let logger: Logger

    /// Makes the adapter; reads the secrets now (a missing file, no secret or one that is not
    /// base64 is a ``ERPError/configuration`` naming the file).
    public init(system: String, configuration: WebhookConfiguration, http: ERPHTTPClient, logger: Logger)
        throws(ERPError)
    {
        let source = "\(configuration.names.secret) (\(configuration.secretFile))"
        guard let data = FileManager.default.contents(atPath: configuration.secretFile) else {
            throw .configuration("cannot read the webhook secrets file \(source)")
        }
        var keys: [Data] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            guard let key = StandardWebhooks.key(fromSecret: text) else {
                throw .configuration("line \(number + 1) of \(source) is not a whsec_<base64> secret")
            }
            keys.append(key.withUnsafeBytes { Data($0) })
        }
        guard !keys.isEmpty else { throw .configuration("no secret in \(source)") }
        self.system = system
        self.configuration = configuration
        self.keys = keys
        self.http = http
        self.logger = logger
    }

    /// Posts the values, signed; a 2xx is applied (a receiver drops a repeated `webhook-id`).
    public func write(_ customs: OrderCustoms) async -> ERPWriteOutcome {
        let id = StandardWebhooks.messageId(orderId: customs.orderId, revision: customs.revision)
        let now = Date()
        let timestamp = Int(now.timeIntervalSince1970)
        let body: Data
        do {
            body = try StandardWebhooks.body(type: configuration.eventType, at: now, data: customs)
        } catch {
            return .refused(status: 0, message: "cannot encode the values: \(error)")
        }
        let signature = StandardWebhooks.signature(
            id: id, timestamp: timestamp, body: body, keys: keys.map { SymmetricKey(data: $0) })
        let request = ERPRequest(
            method: .post, url: configuration.url,
            headers: [("webhook-id", id), ("webhook-timestamp", "\(timestamp)"), ("webhook-signature", signature)],
            body: body)
        do {
            let response = try await http.send(
                request, system: system, timeout: configuration.requestTimeout, logger: logger)
            return response.isSuccess ? .applied(detail: id) : response.failureOutcome()
        } catch {
            return error.retryOutcome
        }
    }

    /// Throws ``ERPError/cannotReadBack``.
    public func read(_ erp: OrderEvent.ERPReference, orderId: String) async throws -> OrderCustoms? {
        throw ERPError.cannotReadBack(system: system)
    }

    /// Nothing to check beyond the secrets read at start: a receiver has no token endpoint.
    public func checkCredentials() async throws {}
}

/// The Standard Webhooks conventions (standardwebhooks.com) the webhook adapter follows.
public enum StandardWebhooks {
    /// The body: `{"data": …, "timestamp": ISO 8601, "type": …}`, keys sorted.
    public static func body(type: String, at: Date, data: OrderCustoms) throws -> Data {
        struct Payload: Encodable {
            var type: String
            var timestamp: String
            var data: OrderCustoms
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Payload(type: type, timestamp: ISO8601DateFormatter().string(from: at), data: data))
    }

    /// `msg_` + the first 32 hex digits of SHA-256(`orderId/revision`): the same write always has
    /// the same id.
    public static func messageId(orderId: String, revision: Int) -> String {
        let digest = SHA256.hash(data: Data("\(orderId)/\(revision)".utf8))
        return "msg_" + digest.map { String(format: "%02x", $0) }.joined().prefix(32)
    }

    /// The key a secret stands for: `whsec_` (optional) + base64 of the key's bytes.
    public static func key(fromSecret secret: String) -> SymmetricKey? {
        let base64 = secret.hasPrefix("whsec_") ? String(secret.dropFirst("whsec_".count)) : secret
        guard let bytes = Data(base64Encoded: base64), !bytes.isEmpty else { return nil }
        return SymmetricKey(data: bytes)
    }

    /// `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>` for each key, space-separated.
    public static func signature(id: String, timestamp: Int, body: Data, keys: [SymmetricKey]) -> String {
        let signed = Data("\(id).\(timestamp).".utf8) + body
        return keys.map { key in
            "v1," + Data(HMAC<SHA256>.authenticationCode(for: signed, using: key)).base64EncodedString()
        }.joined(separator: " ")
    }
}
