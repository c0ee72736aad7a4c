import AsyncHTTPClient
import Foundation
import Logging

/// The HTTP client the ERP adapters share: one connection pool for all of them, a timeout per
/// request, and no redirects (an ERP that redirects a write is misconfigured).
///
/// Call ``shutdown()`` once the adapters are no longer used.
public final class ERPHTTPClient: Sendable {
    let client: HTTPClient

    /// Makes a client with its own connection pool on the shared event loop group, at most
    /// `connectionsPerHost` HTTP/1 connections to one host (a request beyond waits for one, within
    /// its timeout; default 64, above the adapters' concurrency).
    public init(connectionsPerHost: Int = 64) {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connectionsPerHost)
        // A refused connection fails the request at once (the dispatcher backs off), instead of
        // being retried until the request's deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections; the adapters that use the client fail from then on.
    public func shutdown() async throws { try await client.shutdown() }

    /// Sends a request and collects its answer (up to 8 MiB). Throws ``ERPError/unavailable`` on a
    /// timeout, a refused, reset or closed connection, with the reason in words.
    func send(_ request: ERPRequest, system: String, timeout: Duration, logger: Logger) async throws(ERPError)
        -> ERPResponse
    {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method =
            switch request.method {
            case .get: .GET
            case .put: .PUT
            case .patch: .PATCH
            case .post: .POST
            }
        outgoing.headers.add(name: "Accept", value: "application/json")
        outgoing.headers.add(name: "User-Agent", value: "clearway-erp-writeback")
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body {
            outgoing.headers.add(name: "Content-Type", value: request.contentType)
            outgoing.body = .bytes(Array(body))
        }
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        do {
            let response = try await client.execute(outgoing, timeout: .nanoseconds(nanoseconds), logger: logger)
            let body = try await response.body.collect(upTo: 8 << 20)
            var headers: [String: String] = [:]
            for header in response.headers where headers[header.name.lowercased()] == nil {
                headers[header.name.lowercased()] = header.value
            }
            return ERPResponse(
                status: Int(response.status.code), headers: headers, body: Data(body.readableBytesView))
        } catch {
            let reason = Self.describe(error, timeout: timeout)
            logger.debug(
                "erp.request.failed",
                metadata: ["erp.system": "\(system)", "http.method": "\(request.method)", "error": "\(reason)"])
            throw .unavailable(system: system, message: "\(request.method.rawValue) \(request.path): \(reason)")
        }
    }

    /// A transport failure in words an operator reads.
    static func describe(_ error: any Error, timeout: Duration) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return "no answer within \(timeout) (timed out)"
            case .remoteConnectionClosed:
                return "the connection was closed without an answer"
            case .cancelled:
                return "the request was cancelled"
            default:
                return "\(error)"
            }
        }
        if error is CancellationError { return "the request was cancelled" }
        return "\(error)"
    }
}

/// One request to an ERP.
struct ERPRequest: Sendable {
    enum Method: String, Sendable {
        case get = "GET"
        case put = "PUT"
        case patch = "PATCH"
        case post = "POST"
    }

    var method: Method
    var url: String
    var headers: [(String, String)] = []
    var body: Data?
    var contentType = "application/json"

    /// The URL's path, for messages (never its query, which may hold a secret).
    var path: String { URLComponents(string: url)?.path ?? url }
}

/// An ERP's answer.
struct ERPResponse: Sendable {
    var status: Int
    /// The headers by lower-cased name (the first of repeated ones).
    var headers: [String: String]
    var body: Data

    var isSuccess: Bool { (200..<300).contains(status) }

    /// The `Retry-After` header as a duration (seconds or an HTTP date).
    func retryAfter(now: Date = Date()) -> Duration? { RetryAfter.parse(headers["retry-after"], now: now) }

    /// The error body's code and words.
    var error: ERPErrorBody { ERPErrorBody(body) }

    /// The outcome of an answer that is not a success, the HTTP way: 408, 409, 412, 429 and 5xx
    /// are worth retrying (honouring `Retry-After`), and so is a 401 (a token refused even after
    /// fetching a new one, or a webhook receiver with another secret: the ERP's writes wait for
    /// the fix, the order is not at fault); any other 4xx is a refusal with the ERP's words.
    func failureOutcome() -> ERPWriteOutcome {
        let words = error.words ?? "no error body"
        if status >= 500 || [401, 408, 409, 412, 429].contains(status) {
            return .retry(reason: "HTTP \(status): \(words)", after: retryAfter())
        }
        return .refused(status: status, message: words)
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay seconds or an HTTP date.
public enum RetryAfter {
    /// The delay the header asks for; nil when absent or unreadable. A date in the past is zero.
    public static func parse(_ value: String?, now: Date = Date()) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value) { return seconds >= 0 ? .seconds(seconds) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        // IMF-fixdate, then the two obsolete forms RFC 9110 still asks recipients to accept.
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: value) {
                return .milliseconds(max(0, Int((date.timeIntervalSince(now) * 1000).rounded(.up))))
            }
        }
        return nil
    }
}

/// What an ERP's error body says: NetSuite's (`o:errorDetails`), OData's (`error.message`),
/// OAuth's (`error`, `error_description`) or a plain `message`.
struct ERPErrorBody: Sendable {
    /// The machine-readable code (`o:errorCode`, OData `error.code`, OAuth `error`).
    var code: String?
    /// The human-readable words.
    var message: String?

    init(_ body: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            message = text.isEmpty ? nil : text
            return
        }
        if let details = object["o:errorDetails"] as? [[String: Any]], let first = details.first {
            code = first["o:errorCode"] as? String
            message = first["detail"] as? String ?? object["title"] as? String
        } else if let error = object["error"] as? [String: Any] {
            code = error["code"] as? String
            message = error["message"] as? String
        } else if let error = object["error"] as? String {
            code = error
            message = object["error_description"] as? String
        } else {
            code = object["code"] as? String
            message = object["message"] as? String ?? object["detail"] as? String ?? object["title"] as? String
        }
    }

    /// The code and the words in one line.
    var words: String? {
        switch (code, message) {
        case (let code?, let message?): "\(code): \(message)"
        case (let code?, nil): code
        case (nil, let message?): message
        case (nil, nil): nil
        }
    }
}
