import ClearwayContract
import Foundation
import Hummingbird

/// The simulated Business Central tenant: the Microsoft identity platform's token endpoint and
/// the `salesOrderCustoms` custom API page.
extension ERPSimulator {
    /// The API page's text fields (besides `revision`).
    static let businessCentralFields = [
        "status", "entryNumbers", "entryTypes", "manifests", "masterBills", "conditions", "answeredAt", "releasedAt",
        "updatedAt", "detail",
    ]

    func businessCentral(_ call: SimulatorCall) async throws -> Response {
        guard let tenant = configuration.businessCentral?.tenant else { return notFound(call) }
        let path = Array(call.segments.dropFirst())
        if call.method == .post, path.count == 4, path[1...] == ["oauth2", "v2.0", "token"] {
            return businessCentralToken(call, tenant: path[0])
        }
        guard call.method == .get || call.method == .patch, path.count == 9, path[0] == "v2.0",
            path[3...6] == ["api", "clearway", "customs", "v1.0"],
            let company = Self.key(path[7], entity: "companies"),
            let recordId = Self.key(path[8], entity: "salesOrderCustoms")
        else { return notFound(call) }
        if let fault = try await injectFault(call, system: "business-central") { return fault }
        guard authorized(call, system: "business-central") else {
            var response = errorResponse(
                system: "business-central", status: .unauthorized, code: "Authentication_InvalidCredentials",
                message: "The server has rejected the client credentials.")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        guard path[1] == tenant else {
            return errorResponse(
                system: "business-central", status: .notFound, code: "NoEnvironment",
                message: "No environment for tenant \(path[1]).")
        }
        return call.method == .get
            ? businessCentralGet(company: company, recordId: recordId)
            : businessCentralPatch(company: company, recordId: recordId, call: call)
    }

    /// `companies(<id>)` → `<id>` (quotes dropped).
    static func key(_ segment: String, entity: String) -> String? {
        let segment = segment.removingPercentEncoding ?? segment
        guard segment.hasPrefix(entity + "("), segment.hasSuffix(")") else { return nil }
        let key = segment.dropFirst(entity.count + 1).dropLast()
        return String(key.hasPrefix("'") && key.hasSuffix("'") && key.count >= 2 ? key.dropFirst().dropLast() : key)
    }

    func notFound(_ call: SimulatorCall) -> Response {
        errorResponse(
            system: "business-central", status: .notFound, code: "BadRequest_NotFound",
            message: "The request URI is not valid: \(call.request.uri.path)")
    }

    /// The record (created empty on its first read: the sales order exists in the ERP); after the
    /// read, "another user" may change it (``interfere(recordId:times:)``).
    func businessCentralGet(company: String, recordId: String) -> Response {
        let record = store.withLock { store in
            let key = "\(company)/\(recordId)"
            let record =
                store.businessCentral[key]
                ?? BusinessCentralRecord(recordId: recordId, version: 1, revision: 0, fields: [:], customs: nil)
            store.businessCentral[key] = record
            if let times = store.interference[recordId], times > 0 {
                store.interference[recordId] = times - 1
                store.businessCentral[key]?.version += 1
            }
            return record
        }
        return businessCentralEntity(record, company: company)
    }

    func businessCentralEntity(_ record: BusinessCentralRecord, company: String) -> Response {
        var object: [String: Any] = [
            "@odata.context":
                "$metadata#companies(\(company))/salesOrderCustoms/$entity",
            "@odata.etag": record.etag, "id": record.recordId, "revision": record.revision,
        ]
        for field in Self.businessCentralFields { object[field] = record.fields[field] ?? "" }
        var headers: HTTPFields = [:]
        headers[.eTag] = record.etag
        return .json(.ok, object, headers: headers)
    }

    /// `PATCH` with `If-Match`: the ETag read is required (no `*`); a stale one is a 412.
    func businessCentralPatch(company: String, recordId: String, call: SimulatorCall) -> Response {
        guard let ifMatch = call.header("if-match"), !ifMatch.isEmpty, ifMatch != "*" else {
            return errorResponse(
                system: "business-central", status: .badRequest, code: "BadRequest",
                message: "An If-Match header with the record's @odata.etag is required (this API refuses '*').")
        }
        guard let fields = call.json else {
            return errorResponse(
                system: "business-central", status: .badRequest, code: "BadRequest_InvalidRequestBody",
                message: "The request body is not a JSON object.")
        }
        let allowed = Set(Self.businessCentralFields + ["revision"])
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            return errorResponse(
                system: "business-central", status: .badRequest, code: "BadRequest_PropertyNotFound",
                message: "The property '\(unknown)' does not exist on type 'Microsoft.NAV.salesOrderCustoms'.")
        }
        var customs: OrderCustoms?
        if let detail = fields["detail"] as? String, !detail.isEmpty {
            customs = try? JSONDecoder().decode(OrderCustoms.self, from: Data(detail.utf8))
            if customs == nil {
                return errorResponse(
                    system: "business-central", status: .badRequest, code: "BadRequest_InvalidRequestBody",
                    message: "detail must hold the order's customs values as JSON.")
            }
        }
        let at = nowISO8601()
        let written: BusinessCentralRecord? = store.withLock { store in
            let key = "\(company)/\(recordId)"
            var record =
                store.businessCentral[key]
                ?? BusinessCentralRecord(recordId: recordId, version: 1, revision: 0, fields: [:], customs: nil)
            guard record.etag == ifMatch else { return nil }
            for field in Self.businessCentralFields {
                if let value = fields[field] as? String { record.fields[field] = value }
            }
            if let revision = fields["revision"] as? Int { record.revision = revision }
            if let customs {
                store.record(system: "business-central", before: record.customs, after: customs, at: at)
                record.customs = customs
            }
            record.version += 1
            store.businessCentral[key] = record
            return record
        }
        guard let written else {
            return errorResponse(
                system: "business-central", status: .preconditionFailed, code: "Request_EntityChanged",
                message: "Another user has already changed the record.")
        }
        if let fault = injectFaultAfterApply(system: "business-central") { return fault }
        return businessCentralEntity(written, company: company)
    }

    /// `POST /bc/<tenant>/oauth2/v2.0/token`: client id and secret checked, AADSTS-like errors;
    /// no faults.
    func businessCentralToken(_ call: SimulatorCall, tenant: String) -> Response {
        store.withLock { $0.stats.requests["token", default: 0] += 1 }
        guard let expected = configuration.businessCentral else { return notFound(call) }
        let form = call.form
        guard tenant == expected.tenant else {
            return oauthError(
                .badRequest, "invalid_request",
                "AADSTS90002: Tenant '\(tenant)' not found. Check to make sure you have the correct tenant ID.")
        }
        guard form["grant_type"] == "client_credentials" else {
            return oauthError(
                .badRequest, "unsupported_grant_type", "AADSTS70003: grant_type must be client_credentials.")
        }
        guard form["client_id"] == expected.clientId else {
            return oauthError(
                .badRequest, "unauthorized_client",
                "AADSTS700016: Application with identifier '\(form["client_id"] ?? "")' was not found in the directory '\(tenant)'."
            )
        }
        guard form["client_secret"] == expected.clientSecret else {
            return oauthError(
                .badRequest, "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the "
                    + "client secret value, not the client secret ID, for a secret added to app '\(expected.clientId)'."
            )
        }
        guard form["scope"]?.hasSuffix("/.default") == true else {
            return oauthError(
                .badRequest, "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a "
                    + "scope value with /.default suffixed to the resource identifier.")
        }
        return issueToken(system: "business-central")
    }
}
