import ClearwayContract
import ClearwayDomain
import ClearwayERP
import ClearwayERPSim
import Crypto
import Foundation
import Logging

/// A simulator serving the three systems on a free port, with the keys and secrets in a
/// temporary directory, and the settings that point an ``ERPDirectory`` at it.
struct Harness {
    static let tenant = "tenant-1"
    static let bcSecret = "bc-secret-value"

    let simulator: ERPSimulator
    let running: ERPSimulator.Running
    let folder: URL
    /// The `CLEARWAY_ERP_*` settings for the three systems: `netsuite`, `business-central` and
    /// the webhook receiver `partner-hook`.
    var environment: [String: String]
    let netsuiteKey: P256.Signing.PrivateKey
    /// The receiver's secrets: the adapter signs with both, the receiver knows the second.
    let webhookSecrets: [String]

    static func start(
        faults: ERPSimulatorConfiguration.Faults = .init(), timeoutMilliseconds: Int = 5_000,
        netsuiteConcurrencyLimit: Int? = nil
    ) async throws -> Harness {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("erp-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let netsuiteKey = P256.Signing.PrivateKey()
        let webhookSecrets = (0..<2).map { _ in
            "whsec_" + Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString()
        }
        var configuration = ERPSimulatorConfiguration()
        configuration.netsuite = .init(clientId: "ns-client", publicKeyPEM: netsuiteKey.publicKey.pemRepresentation)
        configuration.businessCentral = .init(tenant: tenant, clientId: "bc-app", clientSecret: bcSecret)
        configuration.webhookSecrets = [webhookSecrets[1]]
        configuration.faults = faults
        configuration.netsuiteConcurrencyLimit = netsuiteConcurrencyLimit
        let simulator = try ERPSimulator(configuration: configuration, logger: quiet("erp-sim"))
        let running = try await simulator.start(port: 0)
        let url = running.url
        try netsuiteKey.pemRepresentation.write(
            to: folder.appendingPathComponent("ns.pem"), atomically: true, encoding: .utf8)
        try bcSecret.write(to: folder.appendingPathComponent("bc.secret"), atomically: true, encoding: .utf8)
        try webhookSecrets.joined(separator: "\n").write(
            to: folder.appendingPathComponent("hook.secrets"), atomically: true, encoding: .utf8)
        let environment = [
            "CLEARWAY_ERP_NETSUITE_ADAPTER": "netsuite",
            "CLEARWAY_ERP_NETSUITE_URL": "\(url)/netsuite",
            "CLEARWAY_ERP_NETSUITE_CLIENT_ID": "ns-client",
            "CLEARWAY_ERP_NETSUITE_CERTIFICATE_ID": "cert-1",
            "CLEARWAY_ERP_NETSUITE_PRIVATE_KEY_FILE": folder.appendingPathComponent("ns.pem").path,
            "CLEARWAY_ERP_NETSUITE_TIMEOUT_MS": "\(timeoutMilliseconds)",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_ADAPTER": "business-central",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_URL": "\(url)/bc",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TOKEN_URL": "\(url)/bc/\(tenant)/oauth2/v2.0/token",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TENANT": tenant,
            "CLEARWAY_ERP_BUSINESS_CENTRAL_ENVIRONMENT": "sandbox",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_COMPANY": "c0ffee00-0000-4000-8000-000000000001",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_ID": "bc-app",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE": folder.appendingPathComponent("bc.secret").path,
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TIMEOUT_MS": "\(timeoutMilliseconds)",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CONCURRENCY": "4",
            "CLEARWAY_ERP_PARTNER_HOOK_ADAPTER": "webhook",
            "CLEARWAY_ERP_PARTNER_HOOK_URL": "\(url)/webhook/partner",
            "CLEARWAY_ERP_PARTNER_HOOK_SECRET_FILE": folder.appendingPathComponent("hook.secrets").path,
            "CLEARWAY_ERP_PARTNER_HOOK_TIMEOUT_MS": "\(timeoutMilliseconds)",
        ]
        return Harness(
            simulator: simulator, running: running, folder: folder, environment: environment, netsuiteKey: netsuiteKey,
            webhookSecrets: webhookSecrets)
    }

    /// Writes a file into the temporary directory and returns its path.
    func file(_ name: String, _ text: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// A directory over ``environment``, used by `body`, then shut down.
    func withDirectory<T>(
        _ environment: [String: String]? = nil, _ body: (ERPDirectory) async throws -> T
    ) async throws -> T {
        let directory = try ERPDirectory(environment: environment ?? self.environment, logger: quiet("erp"))
        do {
            let result = try await body(directory)
            try await directory.shutdown()
            return result
        } catch {
            try? await directory.shutdown()
            throw error
        }
    }

    func stop() async {
        await running.stop()
        try? FileManager.default.removeItem(at: folder)
    }

    /// The ledger entries of one system.
    func ledger(_ system: String) -> [LedgerEntry] { simulator.ledger().filter { $0.system == system } }
}

func quiet(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .critical
    return logger
}

/// An order's customs values with one shipment.
func customs(
    orderId: String, system: String, recordId: String, revision: Int, status: OrderCustoms.Status = .accepted,
    entryNumber: String = "ABC-1234567-8", updatedAt: String = "2026-11-30T10:00:00Z"
) -> OrderCustoms {
    let shipment = OrderCustoms.Shipment(
        shipmentId: "\(orderId)-1", entryId: "E-\(orderId)", entryType: .t11, entryNumber: entryNumber,
        manifestId: "M-77", masterBill: "MAWB-176-12345675", filerCode: "ABC", status: status,
        conditions: status == .rejected ? ["HTS-NOT-VALID-ON-DATE"] : [], disposition: status == .released ? "1C" : nil,
        pgaStatus: nil, answeredAt: "2026-11-30T09:00:00Z",
        releasedAt: status == .released ? updatedAt : nil, updatedAt: updatedAt)
    return OrderCustoms(
        orderId: orderId, erp: .init(system: system, recordId: recordId), revision: revision, status: status,
        entryNumbers: [entryNumber], shipments: [shipment], updatedAt: updatedAt)
}

/// Runs `body` against a fresh simulator, then stops it.
func withHarness(
    faults: ERPSimulatorConfiguration.Faults = .init(), timeoutMilliseconds: Int = 5_000,
    netsuiteConcurrencyLimit: Int? = nil, _ body: (Harness) async throws -> Void
) async throws {
    let harness = try await Harness.start(
        faults: faults, timeoutMilliseconds: timeoutMilliseconds, netsuiteConcurrencyLimit: netsuiteConcurrencyLimit)
    do {
        try await body(harness)
    } catch {
        await harness.stop()
        throw error
    }
    await harness.stop()
}
