import Foundation
import Logging

/// Which adapter serves which `erp.system` value, from `CLEARWAY_ERP_<NAME>_*` settings.
///
/// Each `CLEARWAY_ERP_<NAME>_ADAPTER` (`netsuite`, `business-central` or `webhook`) declares the
/// system whose `erp.system` is `<NAME>` lower-cased with `_` as `-`
/// (`CLEARWAY_ERP_BUSINESS_CENTRAL_ADAPTER` serves `business-central`). Its other settings:
///
/// | Variable                       | Adapter          | Meaning                                        |
/// |--------------------------------|------------------|------------------------------------------------|
/// | `_URL`                         | all              | base URL (webhook: the receiver's URL)         |
/// | `_TOKEN_URL`                   | NetSuite, BC     | token endpoint (default from `_URL`/`_TENANT`) |
/// | `_CLIENT_ID`                   | NetSuite, BC     | client id                                      |
/// | `_PRIVATE_KEY_FILE`            | NetSuite         | PEM of the M2M certificate's P-256 key         |
/// | `_CERTIFICATE_ID`              | NetSuite         | the certificate id (JWT `kid`)                 |
/// | `_CLIENT_SECRET_FILE`          | BC               | file of the client secret                      |
/// | `_TENANT`, `_ENVIRONMENT`      | BC               | Entra tenant, environment (default production) |
/// | `_COMPANY`                     | BC               | company id                                     |
/// | `_SCOPE`                       | NetSuite, BC     | scope(s), space-separated                      |
/// | `_SECRET_FILE`                 | webhook          | signing secrets, one a line                    |
/// | `_CONCURRENCY`                 | all              | writes in flight at most (default 8)           |
/// | `_TIMEOUT_MS`                  | all              | request timeout (default 10000)                |
///
/// All adapters share one HTTP client: call ``shutdown()`` at the end.
public final class ERPDirectory: Sendable {
    /// The adapter kinds.
    public enum Kind: String, Sendable, CaseIterable {
        case netsuite
        case businessCentral = "business-central"
        case webhook
    }

    /// One system's adapter and settings.
    public struct Entry: Sendable {
        /// The adapter.
        public var adapter: any ERPAdapter
        /// Its kind.
        public var kind: Kind
        /// Writes in flight at most.
        public var concurrency: Int
    }

    /// The default writes in flight per system.
    public static let defaultConcurrency = 8

    /// The adapters by `erp.system` value.
    public let entries: [String: Entry]
    /// The shared HTTP client.
    public let http: ERPHTTPClient

    /// The configured `erp.system` values, sorted.
    public var systems: [String] { entries.keys.sorted() }

    /// Builds the adapters from the settings (an environment, or the tests' own), reading their
    /// keys and secrets. Throws ``ERPError/configuration`` naming the exact variable missing or
    /// wrong. No `CLEARWAY_ERP_*_ADAPTER` at all gives an empty directory.
    public init(environment: [String: String], logger: Logger) throws(ERPError) {
        let http = ERPHTTPClient()
        do {
            var entries: [String: Entry] = [:]
            for name in Self.declaredNames(environment) {
                let settings = Settings(name: name, environment: environment)
                let system = name.lowercased().replacingOccurrences(of: "_", with: "-")
                entries[system] = try Self.entry(system: system, settings: settings, http: http, logger: logger)
            }
            self.entries = entries
            self.http = http
        } catch {
            try? http.client.syncShutdown()
            throw error
        }
    }

    /// The adapter serving an `erp.system` value; nil when none is configured.
    public func adapter(for system: String) -> (any ERPAdapter)? { entries[system]?.adapter }

    /// How many writes may be in flight to a system (``defaultConcurrency`` if unknown).
    public func concurrency(of system: String) -> Int { entries[system]?.concurrency ?? Self.defaultConcurrency }

    /// Closes the shared HTTP client.
    public func shutdown() async throws { try await http.shutdown() }

    /// The `<NAME>`s of the `CLEARWAY_ERP_<NAME>_ADAPTER` variables, sorted.
    static func declaredNames(_ environment: [String: String]) -> [String] {
        environment.keys.compactMap { key -> String? in
            guard key.hasPrefix("CLEARWAY_ERP_"), key.hasSuffix("_ADAPTER") else { return nil }
            let name = key.dropFirst("CLEARWAY_ERP_".count).dropLast("_ADAPTER".count)
            return name.isEmpty ? nil : String(name)
        }.sorted()
    }

    static func entry(system: String, settings: Settings, http: ERPHTTPClient, logger: Logger) throws(ERPError)
        -> Entry
    {
        let adapterName = try settings.required("ADAPTER", "netsuite, business-central or webhook")
        guard let kind = Kind(rawValue: adapterName.lowercased()) else {
            throw .configuration(
                "\(settings.variable("ADAPTER"))=\(adapterName): the adapter is netsuite, business-central or webhook")
        }
        let concurrency = try settings.integer("CONCURRENCY", default: defaultConcurrency)
        let timeout = Duration.milliseconds(try settings.integer("TIMEOUT_MS", default: 10_000))
        var logger = logger
        logger[metadataKey: "erp.system"] = "\(system)"
        let adapter: any ERPAdapter
        switch kind {
        case .netsuite:
            var configuration = NetSuiteConfiguration(
                baseURL: try settings.required(
                    "URL", "the account's REST host, https://<account>.suitetalk.api.netsuite.com"),
                clientId: try settings.required("CLIENT_ID", "the integration record's client id"),
                certificateId: try settings.required("CERTIFICATE_ID", "the M2M certificate id"),
                privateKeyFile: try settings.required(
                    "PRIVATE_KEY_FILE", "the PEM file of the certificate's private key"),
                tokenURL: settings.optional("TOKEN_URL"))
            if let scope = settings.optional("SCOPE") {
                configuration.scopes = scope.split(separator: " ").map(String.init)
            }
            configuration.requestTimeout = timeout
            configuration.names = CredentialNames(
                clientId: settings.variable("CLIENT_ID"),
                secret: settings.variable("PRIVATE_KEY_FILE"),
                certificateId: settings.variable("CERTIFICATE_ID"), tenant: "")
            adapter = try NetSuiteAdapter(system: system, configuration: configuration, http: http, logger: logger)
        case .businessCentral:
            var configuration = BusinessCentralConfiguration(
                tenant: try settings.required("TENANT", "the Microsoft Entra tenant id"),
                environment: settings.optional("ENVIRONMENT") ?? "production",
                companyId: try settings.required("COMPANY", "the company id"),
                clientId: try settings.required("CLIENT_ID", "the Entra application (client) id"),
                clientSecretFile: try settings.required("CLIENT_SECRET_FILE", "the file of the client secret"),
                baseURL: settings.optional("URL"), tokenURL: settings.optional("TOKEN_URL"))
            if let scope = settings.optional("SCOPE") { configuration.scope = scope }
            configuration.requestTimeout = timeout
            configuration.names = CredentialNames(
                clientId: settings.variable("CLIENT_ID"), secret: settings.variable("CLIENT_SECRET_FILE"),
                certificateId: "", tenant: settings.variable("TENANT"))
            adapter = try BusinessCentralAdapter(
                system: system, configuration: configuration, http: http, logger: logger)
        case .webhook:
            var configuration = WebhookConfiguration(
                url: try settings.required("URL", "the receiver's URL"),
                secretFile: try settings.required("SECRET_FILE", "the file of the signing secrets, one a line"))
            configuration.requestTimeout = timeout
            configuration.names.secret = settings.variable("SECRET_FILE")
            adapter = try WebhookAdapter(system: system, configuration: configuration, http: http, logger: logger)
        }
        return Entry(adapter: adapter, kind: kind, concurrency: concurrency)
    }

    /// One system's `CLEARWAY_ERP_<NAME>_*` variables.
    struct Settings {
        let name: String
        let environment: [String: String]

        func variable(_ suffix: String) -> String { "CLEARWAY_ERP_\(name)_\(suffix)" }

        func optional(_ suffix: String) -> String? {
            guard let value = environment[variable(suffix)]?.trimmingCharacters(in: .whitespaces), !value.isEmpty
            else { return nil }
            return value
        }

        func required(_ suffix: String, _ meaning: String) throws(ERPError) -> String {
            guard let value = optional(suffix) else {
                throw .configuration("\(variable(suffix)) is not set: \(meaning)")
            }
            return value
        }

        func integer(_ suffix: String, default value: Int) throws(ERPError) -> Int {
            guard let text = optional(suffix) else { return value }
            guard let number = Int(text), number > 0 else {
                throw .configuration("\(variable(suffix))=\(text): a whole number above 0")
            }
            return number
        }
    }
}
