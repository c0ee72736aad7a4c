import Foundation
import Logging

/// Sends an adapter's requests with its bearer token; on a 401 it drops the token, fetches a new
/// one and sends the request once more (a token revoked or expired early).
struct AuthorizedRequester: Sendable {
    let system: String
    let http: ERPHTTPClient
    let tokens: any AccessTokenProvider
    let timeout: Duration
    let logger: Logger

    /// The ERP's answer, or ``ERPError/unavailable`` (transport) or
    /// ``ERPError/credentialsRejected`` (token endpoint).
    func send(_ request: ERPRequest) async throws(ERPError) -> ERPResponse {
        let token = try await tokens.token()
        let response = try await http.send(authorized(request, token), system: system, timeout: timeout, logger: logger)
        guard response.status == 401 else { return response }
        logger.debug("erp.token.refreshing", metadata: ["erp.system": "\(system)"])
        await tokens.invalidate(token)
        let fresh = try await tokens.token()
        return try await http.send(authorized(request, fresh), system: system, timeout: timeout, logger: logger)
    }

    private func authorized(_ request: ERPRequest, _ token: String) -> ERPRequest {
        var request = request
        request.headers.append(("Authorization", "Bearer \(token)"))
        return request
    }
}

extension ERPError {
    /// A failure before an answer, as a write outcome: always worth retrying (a rejected
    /// credential too: the dispatcher's circuit holds the ERP's writes until it is fixed).
    var retryOutcome: ERPWriteOutcome { .retry(reason: description, after: nil) }
}
