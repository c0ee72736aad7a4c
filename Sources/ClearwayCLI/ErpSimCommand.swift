import ArgumentParser
import ClearwayERPSim
import Foundation
import Logging

/// `clearway erp-sim`: the simulated ERPs the erp-writeback writes to in tests, the demo and the
/// benchmarks.
struct ErpSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp-sim",
        abstract: "Serve simulated ERPs (NetSuite, Business Central, webhook receivers) with a ledger and faults.",
        discussion: """
            NetSuite at URL/netsuite (with --netsuite-public-key and --netsuite-client-id), Business Central at \
            URL/bc (token URL URL/bc/TENANT/oauth2/v2.0/token; with --bc-client-id, --bc-client-secret-file), \
            webhook receivers at URL/webhook/NAME (with --webhook-secret-file). GET URL/_sim/ledger lists every \
            side effect applied, URL/_sim/records what each system holds, URL/_sim/stats the faults injected.
            Faults apply to the ERP endpoints only, before anything is applied (except \
            --server-errors-after-apply), decided by --seed.
            Example: clearway erp-sim --port 8089 --bc-client-id app --bc-client-secret-file bc.secret \
            --server-errors 0.2 --too-many-requests 0.1 --timeouts 0.05 --latency business-central=2000
            """)

    @Option(help: "The port (0: any free port, printed).") var port = 8089
    @Option(help: "The address to bind.") var host = "127.0.0.1"
    @Option(help: "NetSuite: the PEM file of the M2M certificate's public key (openssl ec -pubout).")
    var netsuitePublicKey: String?
    @Option(help: "NetSuite: the integration's client id (the JWT's iss).") var netsuiteClientId = "clearway"
    @Option(help: "NetSuite: record requests in flight at most; more are answered 429 (default: no limit).")
    var netsuiteConcurrencyLimit: Int?
    @Option(help: "Business Central: the app registration's client id.") var bcClientId: String?
    @Option(help: "Business Central: the file of the client secret.") var bcClientSecretFile: String?
    @Option(help: "Business Central: the tenant.") var bcTenant = "clearway"
    @Option(help: "Webhook receivers: the file of their secrets (whsec_…), one a line.") var webhookSecretFile: String?
    @Option(help: "The share of ERP requests answered 503.") var serverErrors = 0.0
    @Option(help: "The share answered 429 with Retry-After.") var tooManyRequests = 0.0
    @Option(help: "The Retry-After of a 429, in seconds.") var retryAfter = 1
    @Option(help: "The share held past the client's timeout.") var timeouts = 0.0
    @Option(help: "How long a timed-out request is held, in ms.") var timeoutHoldMs = 30_000
    @Option(help: "The share whose connection is closed without an answer.") var drops = 0.0
    @Option(help: "The share of writes answered 500 after they were applied.") var serverErrorsAfterApply = 0.0
    @Option(
        help:
            "Added latency in ms: a number for all ERP requests, or SYSTEM=MS (netsuite, business-central or bc, webhook); repeatable."
    )
    var latency: [String] = []
    @Option(help: "The seed of the faults.") var seed: UInt64 = 1

    func validate() throws {
        let shares = [serverErrors, tooManyRequests, timeouts, drops]
        guard shares.allSatisfy({ (0...1).contains($0) }), shares.reduce(0, +) <= 1,
            (0...1).contains(serverErrorsAfterApply)
        else { throw ValidationError("the fault shares are between 0 and 1 and add up to at most 1") }
        guard netsuitePublicKey != nil || bcClientId != nil || webhookSecretFile != nil else {
            throw ValidationError(
                "simulate something: --netsuite-public-key, --bc-client-id with --bc-client-secret-file, or --webhook-secret-file"
            )
        }
        guard (bcClientId == nil) == (bcClientSecretFile == nil) else {
            throw ValidationError("--bc-client-id and --bc-client-secret-file go together")
        }
    }

    func run() async throws {
        var configuration = ERPSimulatorConfiguration()
        configuration.host = host
        if let netsuitePublicKey {
            let pem = String(decoding: try readFile(netsuitePublicKey, what: "NetSuite public key"), as: UTF8.self)
            configuration.netsuite = .init(clientId: netsuiteClientId, publicKeyPEM: pem)
        }
        if let bcClientId, let bcClientSecretFile {
            let secret = String(
                decoding: try readFile(bcClientSecretFile, what: "Business Central secret"), as: UTF8.self)
            configuration.businessCentral = .init(
                tenant: bcTenant, clientId: bcClientId,
                clientSecret: secret.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let webhookSecretFile {
            configuration.webhookSecrets = String(
                decoding: try readFile(webhookSecretFile, what: "webhook secrets"), as: UTF8.self
            ).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        configuration.netsuiteConcurrencyLimit = netsuiteConcurrencyLimit
        configuration.faults.serverErrors = serverErrors
        configuration.faults.tooManyRequests = tooManyRequests
        configuration.faults.retryAfterSeconds = retryAfter
        configuration.faults.timeouts = timeouts
        configuration.faults.timeoutHold = .milliseconds(timeoutHoldMs)
        configuration.faults.drops = drops
        configuration.faults.serverErrorsAfterApply = serverErrorsAfterApply
        configuration.faults.seed = seed
        for item in latency {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard let milliseconds = Int(parts.last!), milliseconds >= 0 else {
                throw ValidationError("--latency \(item): MS or SYSTEM=MS")
            }
            if parts.count == 1 {
                configuration.faults.latency = .milliseconds(milliseconds)
            } else {
                let system = parts[0] == "bc" ? "business-central" : parts[0]
                configuration.faults.latencyBySystem[system] = .milliseconds(milliseconds)
            }
        }
        var logger = Logger(label: "clearway.erp-sim")
        logger.logLevel = .info
        let simulator: ERPSimulator
        do {
            simulator = try ERPSimulator(configuration: configuration, logger: logger)
        } catch let error as SimulatorError {
            throw ValidationError(error.description)
        }
        let host = host
        try await simulator.run(port: port) { bound in
            // Unbuffered: a script waiting for the line reads it at once.
            FileHandle.standardOutput.write(Data("erp-sim listening on http://\(host):\(bound)\n".utf8))
        }
    }
}
