import ClearwayContract
import ClearwayDomain
import Foundation
import Logging

/// Where and how to reach one Business Central environment.
public struct BusinessCentralConfiguration: Sendable {
    /// The API host (default `https://api.businesscentral.dynamics.com`).
    public var baseURL = "https://api.businesscentral.dynamics.com"
    /// The Microsoft Entra tenant (id or domain).
    public var tenant: String
    /// The environment's name (`production`, `sandbox`, …).
    public var environment: String
    /// The company's id (a GUID, `companies(<id>)`).
    public var companyId: String
    /// The token endpoint (default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`).
    public var tokenURL: String
    /// The Entra app registration's application (client) id.
    public var clientId: String
    /// The file holding its client secret.
    public var clientSecretFile: String
    /// The scope asked for (default `https://api.businesscentral.dynamics.com/.default`).
    public var scope = "https://api.businesscentral.dynamics.com/.default"
    /// The custom API page: publisher, group, version and entity set (default
    /// `clearway/customs/v1.0/salesOrderCustoms`).
    public var apiPublisher = "clearway"
    /// The API page's group.
    public var apiGroup = "customs"
    /// The API page's version.
    public var apiVersion = "v1.0"
    /// The API page's entity set.
    public var entitySet = "salesOrderCustoms"
    /// How many times a write re-reads the record after a 412 before it gives the attempt up as
    /// worth retrying later (default 3).
    public var rereadsOnConflict = 3
    /// How long a request may take (default 10 s).
    public var requestTimeout: Duration = .seconds(10)
    /// How the credentials' settings are named, for error messages.
    public var names = CredentialNames()

    /// Makes a configuration with the defaults above.
    public init(
        tenant: String, environment: String, companyId: String, clientId: String, clientSecretFile: String,
        baseURL: String? = nil, tokenURL: String? = nil
    ) {
        if let baseURL { self.baseURL = baseURL.trimmingTrailingSlashes }
        self.tenant = tenant
        self.environment = environment
        self.companyId = companyId
        self.tokenURL = tokenURL ?? "https://login.microsoftonline.com/\(tenant.pathEncoded)/oauth2/v2.0/token"
        self.clientId = clientId
        self.clientSecretFile = clientSecretFile
    }
}

/// Writes an order's customs values onto its sales order in Business Central, through a custom
/// API page (`salesOrderCustoms`, keyed by the sales order's `SystemId`) that an AL extension
/// adds.
///
/// A write reads the record and its `@odata.etag`: holding this revision or a later one, it is
/// already applied; otherwise it is `PATCH`ed with `If-Match: <etag>` (never `*`). A 412 (someone
/// changed the record meanwhile) re-reads and tries again, up to
/// ``BusinessCentralConfiguration/rereadsOnConflict`` times.
public struct BusinessCentralAdapter: ERPAdapter {
    /// The `erp.system` value it serves.
    public let system: String
    let configuration: BusinessCentralConfiguration
    let requester: AuthorizedRequester

    /// Makes the adapter; reads the client secret now (a missing or empty file is a
    /// ``ERPError/configuration`` naming it).
    public init(
        system: String = "business-central", configuration: BusinessCentralConfiguration, http: ERPHTTPClient,
        logger: Logger
    ) throws(ERPError) {
        let names = configuration.names
        guard let data = FileManager.default.contents(atPath: configuration.clientSecretFile),
            case let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
            !secret.isEmpty
        else {
            throw .configuration(
                "cannot read a client secret from \(names.secret) (\(configuration.clientSecretFile)): missing or empty"
            )
        }
        let endpoint = TokenEndpoint(
            system: system, url: configuration.tokenURL, http: http, timeout: configuration.requestTimeout,
            logger: logger, hint: { Self.hint($0, names: names) })
        self.system = system
        self.configuration = configuration
        requester = AuthorizedRequester(
            system: system, http: http,
            tokens: ClientSecretTokenProvider(
                endpoint: endpoint, clientId: configuration.clientId, clientSecret: secret, scope: configuration.scope),
            timeout: configuration.requestTimeout, logger: logger)
    }

    /// What to fix, from the Microsoft identity platform's AADSTS code.
    static func hint(_ error: ERPErrorBody, names: CredentialNames) -> String {
        let words = error.message ?? ""
        if words.contains("AADSTS7000215") || words.contains("AADSTS7000222") {
            return "the client secret in \(names.secret) is wrong or expired: put the secret's value (not its id) there"
        }
        if words.contains("AADSTS700016") {
            return "no application with \(names.clientId) in the tenant: check \(names.clientId) and \(names.tenant)"
        }
        if words.contains("AADSTS90002") || words.contains("AADSTS900023") {
            return "check \(names.tenant): no such tenant"
        }
        return "check \(names.clientId), \(names.secret) and \(names.tenant)"
    }

    /// The record's URL: the sales order's customs entity on the custom API page.
    func recordURL(_ recordId: String) -> String {
        let c = configuration
        return "\(c.baseURL)/v2.0/\(c.tenant.pathEncoded)/\(c.environment.pathEncoded)/api/\(c.apiPublisher)/"
            + "\(c.apiGroup)/\(c.apiVersion)/companies(\(c.companyId.pathEncoded))/\(c.entitySet)(\(recordId.pathEncoded))"
    }

    /// Reads the record and its ETag, then writes it unless it holds this revision or a later one.
    public func write(_ customs: OrderCustoms) async -> ERPWriteOutcome {
        let url = recordURL(customs.erp.recordId)
        var rereads = 0
        do {
            while true {
                let current = try await requester.send(ERPRequest(method: .get, url: url))
                guard current.status == 200 else { return current.failureOutcome() }
                let object = (try? JSONSerialization.jsonObject(with: current.body) as? [String: Any]) ?? [:]
                if let held = integer(object["revision"]), held >= customs.revision {
                    return .alreadyApplied(detail: "holds revision \(held)")
                }
                guard let etag = object["@odata.etag"] as? String ?? current.headers["etag"], etag != "*" else {
                    return .retry(reason: "the record came without an @odata.etag: cannot write it safely", after: nil)
                }
                let response = try await requester.send(
                    ERPRequest(method: .patch, url: url, headers: [("If-Match", etag)], body: Self.body(customs)))
                if response.isSuccess {
                    let written = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
                    return .applied(detail: written?["@odata.etag"] as? String ?? response.headers["etag"] ?? "patched")
                }
                guard response.status == 412 else { return response.failureOutcome() }
                rereads += 1
                guard rereads <= configuration.rereadsOnConflict else {
                    return .retry(
                        reason: "the record changed under every write (\(rereads) times HTTP 412)",
                        after: response.retryAfter())
                }
            }
        } catch {
            return error.retryOutcome
        }
    }

    /// The values the sales order's `detail` holds (nil: none written yet).
    public func read(_ erp: OrderEvent.ERPReference, orderId: String) async throws -> OrderCustoms? {
        let response = try await requester.send(ERPRequest(method: .get, url: recordURL(erp.recordId)))
        switch response.status {
        case 200:
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            return CustomsSummary.customs(fromDetail: object?["detail"] as? String)
        case 404: return nil
        default:
            throw ERPError.unavailable(
                system: system, message: "HTTP \(response.status): \(response.error.words ?? "no error body")")
        }
    }

    /// Fetches a token.
    public func checkCredentials() async throws { _ = try await requester.tokens.token() }

    /// The API page's fields, camelCase.
    static func body(_ customs: OrderCustoms) -> Data {
        let summary = CustomsSummary(customs)
        let fields: [String: Any] = [
            "revision": customs.revision,
            "status": summary.status,
            "entryNumbers": summary.entryNumbers,
            "entryTypes": summary.entryTypes,
            "manifests": summary.manifests,
            "masterBills": summary.masterBills,
            "conditions": summary.conditions,
            "answeredAt": summary.answeredAt,
            "releasedAt": summary.releasedAt,
            "updatedAt": summary.updatedAt,
            "detail": summary.detail,
        ]
        return (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
    }
}
