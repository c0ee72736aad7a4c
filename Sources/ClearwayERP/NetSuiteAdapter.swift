import ClearwayContract
import ClearwayDomain
import Crypto
import Foundation
import Logging

/// Where and how to reach one NetSuite account.
public struct NetSuiteConfiguration: Sendable {
    /// The account's REST host, `https://<account id>.suitetalk.api.netsuite.com`.
    public var baseURL: String
    /// The OAuth 2.0 token endpoint (default `{baseURL}/services/rest/auth/oauth2/v1/token`).
    public var tokenURL: String
    /// The integration record's client id (consumer key).
    public var clientId: String
    /// The certificate id NetSuite shows for the certificate uploaded in OAuth 2.0 Client
    /// Credentials (M2M) Setup: the JWT's `kid`.
    public var certificateId: String
    /// The PEM file of the certificate's P-256 private key (PKCS #8 or SEC 1).
    public var privateKeyFile: String
    /// The scopes asked for (default `rest_webservices`).
    public var scopes = ["rest_webservices"]
    /// The custom record type holding an order's customs values (default `customrecord_clw_customs`).
    public var recordType = "customrecord_clw_customs"
    /// How long a request may take (default 10 s).
    public var requestTimeout: Duration = .seconds(10)
    /// How the credentials' settings are named, for error messages.
    public var names = CredentialNames()

    /// Makes a configuration with the defaults above.
    public init(
        baseURL: String, clientId: String, certificateId: String, privateKeyFile: String, tokenURL: String? = nil
    ) {
        self.baseURL = baseURL.trimmingTrailingSlashes
        self.tokenURL = tokenURL ?? self.baseURL + "/services/rest/auth/oauth2/v1/token"
        self.clientId = clientId
        self.certificateId = certificateId
        self.privateKeyFile = privateKeyFile
    }
}

/// Writes an order's customs values to a NetSuite custom record (REST web services), one record
/// per order, keyed by external id = order id, pointing at the sales order.
///
/// A write reads the record first: holding this revision or a later one, it is already applied;
/// otherwise it is upserted by external id (`PUT …/eid:<orderId>`) with absolute values. 429 and
/// NetSuite's concurrency-governance errors are worth retrying.
public struct NetSuiteAdapter: ERPAdapter {
    /// NetSuite's error codes for a request over the account's concurrency limit (REST answers
    /// 429; RESTlets 400 `SSS_REQUEST_LIMIT_EXCEEDED`; SOAP's `WS_REQUEST_BLOCKED` and
    /// `WS_CONCUR_SESSION_DISALLWD` through gateways that relay them).
    public static let concurrencyErrorCodes: Set = [
        "SSS_REQUEST_LIMIT_EXCEEDED", "WS_REQUEST_BLOCKED", "WS_CONCUR_SESSION_DISALLWD", "CONCURRENCY_LIMIT_EXCEEDED",
        "REQUEST_LIMIT_EXCEEDED",
    ]

    /// The `erp.system` value it serves.
    public let system: String
    let configuration: NetSuiteConfiguration
    let requester: AuthorizedRequester

    /// Makes the adapter; reads the private key now (a missing or unreadable key is a
    /// ``ERPError/configuration`` naming the file).
    public init(
        system: String = "netsuite", configuration: NetSuiteConfiguration, http: ERPHTTPClient, logger: Logger
    ) throws(ERPError) {
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(
                pemRepresentation: try String(contentsOfFile: configuration.privateKeyFile, encoding: .utf8))
        } catch {
            throw .configuration(
                "cannot read a P-256 private key (PEM) from \(configuration.names.secret) (\(configuration.privateKeyFile)): \(error)"
            )
        }
        let names = configuration.names
        let endpoint = TokenEndpoint(
            system: system, url: configuration.tokenURL, http: http, timeout: configuration.requestTimeout,
            logger: logger,
            hint: { _ in
                "check \(names.clientId), \(names.certificateId) and the key in \(names.secret): the integration record "
                    + "must have client credentials (M2M) enabled and the certificate must be mapped to it, with a role "
                    + "allowed REST web services"
            })
        self.system = system
        self.configuration = configuration
        requester = AuthorizedRequester(
            system: system, http: http,
            tokens: NetSuiteTokenProvider(
                endpoint: endpoint, clientId: configuration.clientId, certificateId: configuration.certificateId,
                scopes: configuration.scopes, key: key),
            timeout: configuration.requestTimeout, logger: logger)
    }

    /// The record's URL by external id.
    func recordURL(_ orderId: String) -> String {
        "\(configuration.baseURL)/services/rest/record/v1/\(configuration.recordType)/eid:\(orderId.pathEncoded)"
    }

    /// Reads the record by external id, then upserts it unless it holds this revision or a later one.
    public func write(_ customs: OrderCustoms) async -> ERPWriteOutcome {
        let url = recordURL(customs.orderId)
        do {
            let current = try await requester.send(ERPRequest(method: .get, url: url))
            switch current.status {
            case 200:
                let object = try? JSONSerialization.jsonObject(with: current.body) as? [String: Any]
                if let held = integer(object?["custrecord_clw_revision"]), held >= customs.revision {
                    return .alreadyApplied(detail: "eid:\(customs.orderId) holds revision \(held)")
                }
            case 404: break
            default: return Self.outcome(current)
            }
            let response = try await requester.send(
                ERPRequest(method: .put, url: url, body: Self.body(customs)))
            guard response.isSuccess else { return Self.outcome(response) }
            // NetSuite answers 204 with the record's URL by internal id.
            let internalId = response.headers["location"]?.split(separator: "/").last.map(String.init)
            return .applied(detail: "\(configuration.recordType) \(internalId ?? "eid:\(customs.orderId)")")
        } catch {
            return error.retryOutcome
        }
    }

    /// The values the record's `custrecord_clw_detail` holds (nil: no record yet).
    public func read(_ erp: OrderEvent.ERPReference, orderId: String) async throws -> OrderCustoms? {
        let response = try await requester.send(ERPRequest(method: .get, url: recordURL(orderId)))
        switch response.status {
        case 200:
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            return CustomsSummary.customs(fromDetail: object?["custrecord_clw_detail"] as? String)
        case 404: return nil
        default:
            throw ERPError.unavailable(
                system: system, message: "HTTP \(response.status): \(response.error.words ?? "no error body")")
        }
    }

    /// Fetches a token.
    public func checkCredentials() async throws { _ = try await requester.tokens.token() }

    /// An answer that is not a success: the concurrency limit is worth retrying whatever its status.
    static func outcome(_ response: ERPResponse) -> ERPWriteOutcome {
        if let code = response.error.code, Self.concurrencyErrorCodes.contains(code) {
            return .retry(
                reason: "NetSuite's concurrency limit (HTTP \(response.status) \(code))", after: response.retryAfter())
        }
        return response.failureOutcome()
    }

    /// The record's fields: the sales order it belongs to, the revision, the flattened values and
    /// the full values as JSON.
    static func body(_ customs: OrderCustoms) -> Data {
        let summary = CustomsSummary(customs)
        let fields: [String: Any] = [
            "custrecord_clw_sales_order": ["id": customs.erp.recordId],
            "custrecord_clw_revision": customs.revision,
            "custrecord_clw_status": summary.status,
            "custrecord_clw_entry_numbers": summary.entryNumbers,
            "custrecord_clw_entry_types": summary.entryTypes,
            "custrecord_clw_manifests": summary.manifests,
            "custrecord_clw_master_bills": summary.masterBills,
            "custrecord_clw_conditions": summary.conditions,
            "custrecord_clw_answered_at": summary.answeredAt,
            "custrecord_clw_released_at": summary.releasedAt,
            "custrecord_clw_updated_at": summary.updatedAt,
            "custrecord_clw_detail": summary.detail,
        ]
        return (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
    }
}

extension String {
    /// Without the slashes it ends with.
    var trimmingTrailingSlashes: String {
        var text = self
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// Percent-encoded as one path segment.
    var pathEncoded: String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return addingPercentEncoding(withAllowedCharacters: allowed) ?? self
    }
}
