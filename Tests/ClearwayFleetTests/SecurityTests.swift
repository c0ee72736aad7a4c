import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The broker behind TLS and SASL/PLAIN that `scripts/secure-broker` starts (stunnel, then
/// `scripts/kafka-auth-proxy`, then a tansu of its own; tansu 0.6 can do neither itself), in a
/// directory of the test's own, so it never touches the shared broker.
final class SecureFrontDoor: Sendable {
    let directory = NSTemporaryDirectory() + "clearway-secure-\(UUID().uuidString.prefix(8))"
    /// `host:port` of the TLS + SASL listener.
    let bootstrap: String
    let caFile: String
    let username: String
    let passwordFile: String

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    init() throws {
        var values: [String: String] = [:]
        for line in try Self.script("start", directory: directory).split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard let bootstrap = values["bootstrap"], let caFile = values["ca"], let username = values["username"],
            let passwordFile = values["password_file"]
        else { throw SetupFailure(description: "scripts/secure-broker start printed \(values.keys.sorted())") }
        (self.bootstrap, self.caFile, self.username, self.passwordFile) = (bootstrap, caFile, username, passwordFile)
    }

    /// The broker's password (in a file; the test reads it to look for it in logs).
    var password: String {
        get throws { try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines) }
    }

    /// What a worker or the CLI needs to go through the front door; the password from a file.
    func environment(passwordFile: String? = nil) -> [String: String] {
        [
            "CLEARWAY_BOOTSTRAP_SERVERS": bootstrap, "CLEARWAY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CLEARWAY_KAFKA_SASL_MECHANISM": "PLAIN", "CLEARWAY_KAFKA_SASL_USERNAME": username,
            "CLEARWAY_KAFKA_SASL_PASSWORD_FILE": passwordFile ?? self.passwordFile,
            "CLEARWAY_KAFKA_SSL_CA_LOCATION": caFile,
        ]
    }

    /// The same as librdkafka properties, for the test's own clients.
    func properties() throws -> [String: String] {
        [
            "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": username,
            "sasl.password": try password, "ssl.ca.location": caFile,
        ]
    }

    func stop() { _ = try? Self.script("stop", directory: directory) }

    private static func script(_ command: String, directory: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: repositoryRoot + "/scripts/secure-broker")
        process.arguments = [command]
        process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "CLEARWAY_SECURE_BROKER_DIR": directory
        ]) { _, new in new }
        // A file, not a pipe: the broker processes the script leaves running would inherit a
        // pipe's write end and keep it open, so reading it to its end would never return.
        let log = directory + ".\(command).out"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = file
        process.standardError = file
        try process.run()
        try file.close()
        // Polled, not `waitUntilExit()`, which was seen to hang here on Linux.
        while process.isRunning { usleep(50_000) }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw SetupFailure(description: "scripts/secure-broker \(command) failed: \(text)")
        }
        return text
    }
}

/// Runs a built executable (`clearway`, a worker) to its end: its exit status and what it wrote
/// to standard output and standard error (also kept in `log`).
func runToEnd(
    _ executable: String, _ arguments: [String], environment: [String: String], log: String,
    limit: Duration = .seconds(90)
) async throws -> (status: Int32?, output: String) {
    let process = Process()
    process.executableURL = try WorkerProcess.binary(executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let file = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.standardOutput = file
    process.standardError = file
    try process.run()
    try file.close()
    let deadline = ContinuousClock.now + limit
    while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
    if process.isRunning { process.terminate() }
    let output = try String(contentsOfFile: log, encoding: .utf8)
    return (process.isRunning ? nil : process.terminationStatus, output)
}

/// Security end to end: the CLI and a worker over TLS with SASL/PLAIN, secrets from files and
/// never in a log line or in `/metrics`, refused logins and plaintext, the development key.
@Suite(.enabled(if: Broker.isAvailable, "needs a broker: run ./scripts/test"), .serialized)
struct SecurityTests {
    let work = NSTemporaryDirectory() + "clearway-security-\(UUID().uuidString.prefix(8))"
    let prefix = "sec\(UUID().uuidString.prefix(6).lowercased())."

    init() throws {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    /// Lines of `text` that contain `secret` (cut short: they are for the failure message).
    private func lines(of text: String, containing secret: String) -> [String] {
        text.split(separator: "\n").filter { $0.contains(secret) }.map { String($0.prefix(160)) }
    }

    @Test func theCLIAndTheEnricherWorkOverTLSAndSASLAndShowNoSecret() async throws {
        let door = try SecureFrontDoor()
        defer { door.stop() }
        let consigneeSecret = "consignee-\(UUID().uuidString)"
        let secretFile = work + "/consignee.secret"
        try Data((consigneeSecret + "\n").utf8).write(to: URL(fileURLWithPath: secretFile))
        var environment = door.environment()
        environment["CLEARWAY_TOPIC_PREFIX"] = prefix
        environment["CLEARWAY_LOG_LEVEL"] = "debug"
        // librdkafka's own debug lines too: its configuration dump, the SASL exchange, connections.
        environment["CLEARWAY_KAFKA_DEBUG"] = "conf,security,broker"

        let apply = try await runToEnd(
            "clearway", ["topics", "apply"], environment: environment, log: work + "/clearway-topics.log")
        #expect(apply.status == 0, "clearway topics apply over SASL_SSL: \(apply.output.suffix(2_000))")
        #expect(apply.output.contains("\(prefix)\(Topics.orders.name)\tcreated"))

        // Orders, catalog and rates published through the front door.
        let sample = SampleGenerator(
            seed: 7, consignees: 20, days: 1, lastDay: Day(Date(), in: TimeZone(identifier: "UTC")!).adding(days: -1)
        ).generate()
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: [door.bootstrap])
        producerConfiguration.properties = try door.properties()
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: Broker.logger)
        for record in sample.catalog + sample.fxRates + sample.orders {
            try await producer.send(
                ProducerRecord(
                    topic: prefix + record.topic, key: Data(record.key.utf8), value: Data(record.value.utf8)))
        }
        try await producer.flush()
        await producer.shutdown()

        let port = try freePort()
        let stateDirectory = work + "/state/enricher"
        var workerEnvironment = environment
        workerEnvironment.merge([
            "CLEARWAY_STATE_DIR": stateDirectory, "CLEARWAY_HTTP_PORT": String(port),
            "CLEARWAY_CONSIGNEE_SECRET_FILE": secretFile, "CLEARWAY_INSTANCE_ID": "security",
            "CLEARWAY_SESSION_TIMEOUT_MS": "6000",
        ]) { _, new in new }
        let enricher = try WorkerProcess(
            environment: workerEnvironment, executable: "enricher", log: URL(fileURLWithPath: work + "/enricher.log"))
        defer { enricher.signal(SIGKILL) }
        let reader = try await TopicReader(
            bootstrapServers: [door.bootstrap], topics: [prefix + Topics.ordersEnriched.name],
            properties: try door.properties(), logger: Broker.logger)
        let enriched = try await within(.seconds(120), "enriched orders through the front door") {
            var count = 0
            while count < 5 { count += try await reader.read(for: .milliseconds(500)).count }
            return count
        }
        await reader.close()
        #expect(enriched >= 5)
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        let metrics = String(decoding: data, as: UTF8.self)
        #expect(metrics.contains("clearway_"), "the metrics page: \(metrics.prefix(500))")
        enricher.signal(SIGTERM)
        #expect(await enricher.waitForExit(limit: .seconds(30)) == 0)

        let log = try String(contentsOfFile: work + "/enricher.log", encoding: .utf8)
        #expect(log.contains("\"level\":\"debug\""), "the worker logged at debug level")
        for (what, secret) in [("the SASL password", try door.password), ("the consignee secret", consigneeSecret)] {
            #expect(lines(of: log, containing: secret).isEmpty, "\(what) in the enricher's log")
            #expect(lines(of: apply.output, containing: secret).isEmpty, "\(what) in the CLI's output")
            #expect(lines(of: metrics, containing: secret).isEmpty, "\(what) in /metrics")
        }
        // The state directory (consignee names and addresses in SQLite) is the worker user's only.
        for path in [stateDirectory, stateDirectory + "/tables"] {
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
            #expect(mode?.intValue == 0o700, "\(path) is \(String(mode?.intValue ?? 0, radix: 8))")
        }
    }

    @Test func aWrongPasswordStopsTheWorkerAtStartSayingWhatToFix() async throws {
        let door = try SecureFrontDoor()
        defer { door.stop() }
        let wrong = "wrong-\(UUID().uuidString)"
        let wrongFile = work + "/wrong.password"
        try Data(wrong.utf8).write(to: URL(fileURLWithPath: wrongFile))
        var environment = door.environment(passwordFile: wrongFile)
        environment.merge([
            "CLEARWAY_TOPIC_PREFIX": prefix, "CLEARWAY_STATE_DIR": work + "/state", "CLEARWAY_HTTP_PORT": "0",
            "CLEARWAY_CONSIGNEE_SECRET": "e2e-secret-of-at-least-16-bytes", "CLEARWAY_LOG_LEVEL": "debug",
        ]) { _, new in new }
        let run = try await runToEnd("enricher", [], environment: environment, log: work + "/enricher.log")
        #expect(run.status != nil && run.status != 0, "the enricher ran on: \(run.output.suffix(1_000))")
        #expect(run.output.contains("Authentication failed"), "\(run.output.suffix(1_000))")
        #expect(run.output.contains("CLEARWAY_KAFKA_SASL_PASSWORD_FILE"), "\(run.output.suffix(1_000))")
        #expect(lines(of: run.output, containing: wrong).isEmpty, "the wrong password in the log")
        #expect(lines(of: run.output, containing: try door.password).isEmpty, "the password in the log")
    }

    @Test func plaintextAndTLSWithoutALoginAreRefused() async throws {
        let door = try SecureFrontDoor()
        defer { door.stop() }
        for properties in [[:], ["security.protocol": "SSL", "ssl.ca.location": door.caFile]] {
            var configuration = KafkaAdminConfiguration(bootstrapServers: [door.bootstrap])
            configuration.requestTimeout = .seconds(4)
            configuration.properties = properties
            let admin = try KafkaAdminClient(configuration: configuration, logger: Broker.logger)
            await #expect(throws: KafkaError.self, "\(properties)") { _ = try await admin.listTopics() }
        }
        // The same listener answers a client that logs in.
        var configuration = KafkaAdminConfiguration(bootstrapServers: [door.bootstrap])
        configuration.properties = try door.properties()
        let admin = try KafkaAdminClient(configuration: configuration, logger: Broker.logger)
        #expect(try await admin.listTopics().count >= 0)
    }

    @Test func theEnricherRefusesTheDevelopmentKeyUnlessTheRunIsADevelopmentRun() async throws {
        let environment = [
            "CLEARWAY_CONSIGNEE_SECRET": ConsigneeKeySecret.developmentText, "CLEARWAY_HTTP_PORT": "0",
            "CLEARWAY_BOOTSTRAP_SERVERS": Broker.bootstrapServers.joined(separator: ","),
            "CLEARWAY_TOPIC_PREFIX": prefix, "CLEARWAY_STATE_DIR": work + "/state",
        ]
        let refused = try await runToEnd(
            "enricher", [], environment: environment, log: work + "/refused.log", limit: .seconds(30))
        #expect(refused.status == 1)
        #expect(refused.output.contains("openssl rand -hex 32"), "\(refused.output.suffix(1_000))")
        #expect(!refused.output.contains(ConsigneeKeySecret.developmentText))
        // With CLEARWAY_DEVELOPMENT_RUN=true it gets past the key: here to the topics, which this
        // prefix does not have.
        var development = environment
        development["CLEARWAY_DEVELOPMENT_RUN"] = "true"
        let started = try await runToEnd(
            "enricher", [], environment: development, log: work + "/development.log", limit: .seconds(60))
        #expect(started.output.contains("topics missing"), "\(started.output.suffix(1_000))")
        #expect(!started.output.contains("development key"))
    }
}
