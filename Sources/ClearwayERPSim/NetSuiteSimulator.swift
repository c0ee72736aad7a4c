import ClearwayContract
import Crypto
import Foundation
import Hummingbird

/// The simulated NetSuite account: the M2M token endpoint and the customs custom record.
extension ERPSimulator {
    static let netsuiteRecordType = "customrecord_clw_customs"

    func netsuite(_ call: SimulatorCall) async throws -> Response {
        let path = Array(call.segments.dropFirst())
        switch (call.method, path) {
        case (.post, ["services", "rest", "auth", "oauth2", "v1", "token"]):
            return netsuiteToken(call)
        case (.get, let path), (.put, let path):
            guard path.count == 6, path[0...4] == ["services", "rest", "record", "v1", Self.netsuiteRecordType],
                path[5].hasPrefix("eid:")
            else { break }
            let externalId = String(path[5].dropFirst(4)).removingPercentEncoding ?? String(path[5].dropFirst(4))
            let limit = configuration.netsuiteConcurrencyLimit ?? .max
            let admitted = store.withLock { store in
                guard store.netsuiteInFlight < limit else { return false }
                store.netsuiteInFlight += 1
                return true
            }
            guard admitted else {
                store.withLock { $0.stats.faults["concurrency-limit", default: 0] += 1 }
                return errorResponse(
                    system: "netsuite", status: .tooManyRequests, code: "CONCURRENCY_LIMIT_EXCEEDED",
                    message: "Concurrent request limit exceeded. Request blocked.")
            }
            defer { store.withLock { $0.netsuiteInFlight -= 1 } }
            if let fault = try await injectFault(call, system: "netsuite") { return fault }
            guard authorized(call, system: "netsuite") else {
                var response = errorResponse(
                    system: "netsuite", status: .unauthorized, code: "INVALID_LOGIN",
                    message: "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI.")
                response.headers[.wwwAuthenticate] = "Bearer"
                return response
            }
            return call.method == .get
                ? netsuiteGet(externalId, origin: call.origin) : netsuitePut(externalId, call: call)
        default: break
        }
        return errorResponse(
            system: "netsuite", status: .notFound, code: "INVALID_URL",
            message: "The requested URL \(call.request.uri.path) is not supported.")
    }

    func netsuiteGet(_ externalId: String, origin: String) -> Response {
        guard let record = store.withLock({ $0.netsuite[externalId] }) else {
            return errorResponse(
                system: "netsuite", status: .notFound, code: "NONEXISTENT_ID",
                message: "The record instance does not exist. Provide a valid record instance ID.")
        }
        var object = (try? JSONSerialization.jsonObject(with: record.fields) as? [String: Any]) ?? [:]
        object["id"] = "\(record.internalId)"
        object["externalId"] = externalId
        object["links"] = [["rel": "self", "href": "\(origin)\(Self.netsuiteRecordPath)/\(record.internalId)"]]
        return .json(.ok, object)
    }

    static let netsuiteRecordPath = "/netsuite/services/rest/record/v1/\(netsuiteRecordType)"

    func netsuitePut(_ externalId: String, call: SimulatorCall) -> Response {
        guard var fields = call.json else {
            return errorResponse(
                system: "netsuite", status: .badRequest, code: "INVALID_CONTENT",
                message: "The request body is not a JSON object.")
        }
        if let unknown = fields.keys.sorted().first(where: { !$0.hasPrefix("custrecord_clw_") && $0 != "name" }) {
            return errorResponse(
                system: "netsuite", status: .badRequest, code: "INVALID_KEY_OR_REF",
                message: "Invalid field name: \(unknown).")
        }
        guard let detail = fields["custrecord_clw_detail"] as? String,
            let customs = try? JSONDecoder().decode(OrderCustoms.self, from: Data(detail.utf8))
        else {
            return errorResponse(
                system: "netsuite", status: .badRequest, code: "INVALID_FLD_VALUE",
                message: "custrecord_clw_detail must hold the order's customs values as JSON.")
        }
        let revision = (fields["custrecord_clw_revision"] as? Int) ?? customs.revision
        let at = nowISO8601()
        let internalId = store.withLock { store in
            let existing = store.netsuite[externalId]
            if let existing, let old = try? JSONSerialization.jsonObject(with: existing.fields) as? [String: Any] {
                fields = old.merging(fields) { $1 }
            }
            let internalId = existing?.internalId ?? store.nextInternalId
            if existing == nil { store.nextInternalId += 1 }
            store.record(system: "netsuite", before: existing?.customs, after: customs, at: at)
            store.netsuite[externalId] = NetSuiteRecord(
                internalId: internalId,
                fields: (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data(),
                revision: revision, customs: customs)
            return internalId
        }
        if let fault = injectFaultAfterApply(system: "netsuite") { return fault }
        return Response(
            status: .noContent, headers: [.location: "\(call.origin)\(Self.netsuiteRecordPath)/\(internalId)"])
    }

    /// `POST …/oauth2/v1/token`: the client-credentials grant with a JWT assertion, verified
    /// against the certificate's public key; no faults.
    func netsuiteToken(_ call: SimulatorCall) -> Response {
        store.withLock { $0.stats.requests["token", default: 0] += 1 }
        let form = call.form
        guard form["grant_type"] == "client_credentials",
            form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            let assertion = form["client_assertion"]
        else {
            return oauthError(
                .badRequest, "invalid_request",
                "grant_type must be client_credentials, with a jwt-bearer client_assertion")
        }
        if let problem = netsuiteAssertionProblem(assertion, tokenPath: call.request.uri.path) {
            return oauthError(.badRequest, "invalid_client", problem)
        }
        return issueToken(system: "netsuite")
    }

    /// What is wrong with a client assertion; nil when it is good.
    func netsuiteAssertionProblem(_ assertion: String, tokenPath: String) -> String? {
        guard let keyBytes = netsuiteKey, let key = try? P256.Signing.PublicKey(x963Representation: keyBytes),
            let clientId = configuration.netsuite?.clientId
        else { return "no account" }
        let parts = assertion.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = base64URLDecode(parts[0]), let claimsData = base64URLDecode(parts[1]),
            let signatureData = base64URLDecode(parts[2]),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            let claims = try? JSONSerialization.jsonObject(with: claimsData) as? [String: Any]
        else { return "the client assertion is not a JWT" }
        guard header["alg"] as? String == "ES256" else { return "the JWT's alg must be ES256" }
        guard let kid = header["kid"] as? String, !kid.isEmpty else { return "the JWT has no kid (certificate id)" }
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureData),
            key.isValidSignature(signature, for: Data("\(parts[0]).\(parts[1])".utf8))
        else { return "the JWT's signature does not verify with the certificate of kid \(kid)" }
        guard claims["iss"] as? String == clientId else { return "the JWT's iss is not a known client id" }
        let audiences = (claims["aud"] as? [String]) ?? [claims["aud"] as? String].compactMap { $0 }
        guard audiences.contains(where: { URLComponents(string: $0)?.path == tokenPath }) else {
            return "the JWT's aud is not this token endpoint"
        }
        let scopes =
            (claims["scope"] as? [String])
            ?? (claims["scope"] as? String).map { $0.split(separator: " ").map(String.init) } ?? []
        guard scopes.contains("rest_webservices") else { return "the JWT's scope lacks rest_webservices" }
        let now = Int(Date().timeIntervalSince1970)
        guard let iat = claims["iat"] as? Int, let exp = claims["exp"] as? Int, iat <= now + 300, exp > now,
            exp - iat <= 3600
        else { return "the JWT's iat and exp must cover now, at most an hour apart" }
        return nil
    }

    /// An OAuth 2.0 error answer.
    func oauthError(_ status: HTTPResponse.Status, _ error: String, _ description: String) -> Response {
        store.withLock { $0.stats.refusals["token \(status.code)", default: 0] += 1 }
        return .json(status, ["error": error, "error_description": description])
    }
}

/// Base64url without padding, decoded.
func base64URLDecode(_ text: some StringProtocol) -> Data? {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
    return Data(base64Encoded: base64)
}
