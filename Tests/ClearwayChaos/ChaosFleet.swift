import ClearwayContract
import ClearwayDomain
import ClearwayERPSim
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import Crypto
import Foundation
import Logging
import Synchronization

/// One run's fleet: the fault proxy, the simulated ERPs, the topics, the order stream, and every
/// worker as `instances` processes.
final class ChaosFleet: @unchecked Sendable {
    // @unchecked: the lets are set in init; `instances` are Sendable; `processes` is behind a Mutex.

    /// A worker process slot: the worker, its instance name (stable across restarts, so a
    /// restarted process fences its predecessor's transactions) and its state directory.
    struct Instance: Hashable, Sendable {
        var worker: WorkerName
        var name: String
    }

    /// Every worker executable, and the topic it reads (its consumer group's input).
    static let inputs: [(WorkerName, String)] = [
        (.enricher, Topics.orders.name), (.pgaRouter, Topics.ordersEnriched.name),
        (.aggregator, Topics.ordersScreened.name), (.structuring, Topics.releasedByAddress.name),
        (.manifestBuilder, Topics.releasedByConveyance.name), (.filerSim, Topics.manifests.name),
        (.erpWriteback, Topics.entryResults.name),
    ]
    /// The session timeout the workers run with: a SIGSTOP longer than this takes an instance out.
    static let sessionTimeout = Duration.seconds(6)

    let options: FleetOptions
    let prefix: String
    let servers: [String]
    let work: URL
    let logger: Logger
    let proxy: ProxyControl
    let erp: ERPSimulator
    let erpRunning: ERPSimulator.Running
    let environment: [String: String]
    let sample: Sample
    let instances: [Instance]
    private let processes = Mutex<[Instance: WorkerProcess]>([:])
    /// Processes that ended without being told to (crashes): instance and exit status.
    private let unexpected = Mutex<[String]>([])
    private let restarts = Mutex<[Instance: Int]>([:])
    /// Each instance's `/metrics`, `/healthz` and `/readyz` port (kept across restarts).
    let ports = Mutex<[Instance: Int]>([:])

    var orderCount: Int { sample.orderKeys.count }

    /// One order in this many is sent again under a null key and under a key that is not UTF-8.
    static let misKeyedEvery = 250
    /// The mis-keyed records the order stream holds (each sent once, or more if a send was retried).
    var misKeyed: Int { 2 * ((sample.orders.count + Self.misKeyedEvery - 8) / Self.misKeyedEvery) }

    private init(
        options: FleetOptions, prefix: String, work: URL, logger: Logger, proxy: ProxyControl, erp: ERPSimulator,
        erpRunning: ERPSimulator.Running, environment: [String: String], sample: Sample
    ) {
        self.options = options
        self.prefix = prefix
        self.servers = ["127.0.0.1:\(options.proxyPort)"]
        self.work = work
        self.logger = logger
        self.proxy = proxy
        self.erp = erp
        self.erpRunning = erpRunning
        self.environment = environment
        self.sample = sample
        instances = Self.inputs.flatMap { worker, _ in
            (1...max(1, options.instances)).map { Instance(worker: worker, name: "\(worker.rawValue)-\($0)") }
        }
    }

    static func start(_ options: FleetOptions) async throws -> ChaosFleet {
        var logger = Logger(label: "clearway.chaos")
        logger.logLevel = .critical
        let work = URL(fileURLWithPath: options.work).standardizedFileURL
        try FileManager.default.createDirectory(
            at: work.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let proxy = try ProxyControl(
            script: options.proxy, port: options.proxyPort, upstream: options.broker,
            log: work.appendingPathComponent("logs/proxy.log"))
        let servers = ["127.0.0.1:\(options.proxyPort)"]
        // A prefix of the run's own: a second run on the same broker starts from nothing.
        let prefix = "chaos-\(UUID().uuidString.prefix(6).lowercased())."

        // The simulated ERPs, in this process; credentials made for the run, secrets in files.
        let netsuiteKey = P256.Signing.PrivateKey()
        let bcSecret = Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString()
        var configuration = ERPSimulatorConfiguration()
        configuration.netsuite = .init(clientId: "chaos", publicKeyPEM: netsuiteKey.publicKey.pemRepresentation)
        configuration.businessCentral = .init(tenant: "chaos", clientId: "chaos", clientSecret: bcSecret)
        configuration.faults.latency = .milliseconds(5)
        let erp = try ERPSimulator(configuration: configuration, logger: logger)
        let erpRunning = try await erp.start(port: 0)
        let secrets = work.appendingPathComponent("secrets")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        try netsuiteKey.pemRepresentation.write(
            to: secrets.appendingPathComponent("ns.pem"), atomically: true, encoding: .utf8)
        try bcSecret.write(to: secrets.appendingPathComponent("bc.secret"), atomically: true, encoding: .utf8)
        let consigneeSecret = Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString()
        let url = erpRunning.url
        let environment = [
            "CLEARWAY_BOOTSTRAP_SERVERS": servers.joined(separator: ","), "CLEARWAY_TOPIC_PREFIX": prefix,
            "CLEARWAY_POLICY": "section321-whatif", "CLEARWAY_HTTP_PORT": "0",
            "CLEARWAY_SESSION_TIMEOUT_MS": "\(sessionTimeout.components.seconds * 1000)",
            "CLEARWAY_CONSIGNEE_SECRET": consigneeSecret,
            "CLEARWAY_LOG_LEVEL": ProcessInfo.processInfo.environment["CHAOS_LOG_LEVEL"] ?? "notice",
            "CLEARWAY_MANIFEST_CLOSE_AFTER": "5", "CLEARWAY_FILER_DELAY_MS": "500",
            "CLEARWAY_ERP_NETSUITE_ADAPTER": "netsuite", "CLEARWAY_ERP_NETSUITE_URL": "\(url)/netsuite",
            "CLEARWAY_ERP_NETSUITE_CLIENT_ID": "chaos", "CLEARWAY_ERP_NETSUITE_CERTIFICATE_ID": "chaos-certificate",
            "CLEARWAY_ERP_NETSUITE_PRIVATE_KEY_FILE": secrets.appendingPathComponent("ns.pem").path,
            "CLEARWAY_ERP_BUSINESS_CENTRAL_ADAPTER": "business-central",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_URL": "\(url)/bc",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TOKEN_URL": "\(url)/bc/chaos/oauth2/v2.0/token",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TENANT": "chaos", "CLEARWAY_ERP_BUSINESS_CENTRAL_ENVIRONMENT": "production",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_COMPANY": "chaos-company",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_ID": "chaos",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE": secrets.appendingPathComponent("bc.secret").path,
        ]

        var workerConfiguration = WorkerConfiguration(worker: "chaos", httpPort: 0)
        workerConfiguration.bootstrapServers = servers
        workerConfiguration.topicPrefix = prefix
        _ = try await TopicAdministration(configuration: workerConfiguration, logger: logger).apply(Topics.all)

        let lastDay = Day(Date(), in: TimeZone(identifier: "UTC")!).adding(days: -2)
        let sample = SampleGenerator(
            seed: options.seed, consignees: options.consignees, days: options.days, lastDay: lastDay
        ).generate()
        let fleet = ChaosFleet(
            options: options, prefix: prefix, work: work, logger: logger, proxy: proxy, erp: erp,
            erpRunning: erpRunning, environment: environment, sample: sample)
        try await fleet.publish(sample.catalog + sample.fxRates)
        for instance in fleet.instances { try fleet.launch(instance) }
        return fleet
    }

    // MARK: Records

    /// The order source's producer, with the `CLEARWAY_KAFKA_*` properties the workers get: not
    /// idempotent (as many an OMS connector is not; a retry may then repeat an order, which the
    /// fleet must take), one request in flight so a retry cannot reorder an order's versions.
    /// (The test broker's durable S3 engine loses an idempotent producer's sequence numbers under
    /// load, a fatal error for it; see docs/testing.md.)
    func producer() throws -> KafkaProducer {
        var configuration = KafkaProducerConfiguration(bootstrapServers: servers)
        configuration.enableIdempotence = false
        configuration.properties["max.in.flight.requests.per.connection"] = "1"
        for (name, value) in ProcessInfo.processInfo.environment where name.hasPrefix("CLEARWAY_KAFKA_") {
            configuration.properties[name.dropFirst("CLEARWAY_KAFKA_".count).lowercased().replacing("_", with: ".")] =
                value
        }
        return try KafkaProducer(configuration: configuration, logger: logger)
    }

    /// Sends records to the deployment's topics (through the proxy, as every client here).
    func publish(_ records: [SampleRecord]) async throws {
        let producer = try producer()
        for record in records {
            try await producer.send(
                ProducerRecord(
                    topic: prefix + record.topic, key: Data(record.key.utf8), value: Data(record.value.utf8)))
        }
        try await producer.flush()
        await producer.shutdown()
    }

    /// Sends the orders evenly over `span`, in tenths of a second, each tenth flushed. A tenth
    /// that fails (the broker restarted and forgot the producer's sequence numbers, a fatal
    /// error for an idempotent producer) is sent again by a new producer: an order may then
    /// arrive twice, byte for byte, as a redelivery from a real OMS would.
    func publishOrders(over span: Duration) async throws {
        let orders = sample.orders
        let ticks = max(1, Int(seconds(span) * 10))
        let perTick = max(1, (orders.count + ticks - 1) / ticks)
        var producer = try producer()
        let clock = ContinuousClock()
        let start = clock.now
        for (tick, chunk) in stride(from: 0, to: orders.count, by: perTick).enumerated() {
            for attempt in 1... {
                do {
                    for (index, record) in orders[chunk..<min(chunk + perTick, orders.count)].enumerated() {
                        try await producer.send(
                            ProducerRecord(
                                topic: prefix + record.topic, key: Data(record.key.utf8),
                                value: Data(record.value.utf8)))
                        // Now and then the same order again under a key that is not its id: a
                        // null key and one that is not UTF-8. Each must be refused (the DLQ,
                        // `key-mismatch`) and change no decision.
                        if (chunk + index) % Self.misKeyedEvery == 7 {
                            for key in [nil, Data([0xFF, 0xFE, 0x4D])] {
                                try await producer.send(
                                    ProducerRecord(
                                        topic: prefix + record.topic, key: key, value: Data(record.value.utf8)))
                            }
                        }
                    }
                    try await producer.flush(timeout: .seconds(60))
                    break
                } catch {
                    guard attempt < 10 else { throw error }
                    say("publishing orders: \(error); sending the last tenth again with a new producer")
                    await producer.shutdown()
                    try await Task.sleep(for: .seconds(1))
                    producer = try self.producer()
                }
            }
            try await clock.sleep(until: start + .milliseconds(100 * (tick + 1)))
        }
        await producer.shutdown()
    }

    // MARK: Processes

    /// Starts an instance's process (again, after a fault), its log appended to its file.
    func launch(_ instance: Instance) throws {
        let log = work.appendingPathComponent("logs/\(instance.name).log")
        try handle(appendingTo: log).write(contentsOf: Data("--- started \(Date())\n".utf8))
        var environment = environment
        environment["CLEARWAY_INSTANCE_ID"] = instance.name
        environment["CLEARWAY_STATE_DIR"] = work.appendingPathComponent("state/\(instance.name)").path
        let port = ports.withLock { ports in
            if ports[instance] == nil { ports[instance] = try? freePort() }
            return ports[instance] ?? 0
        }
        environment["CLEARWAY_HTTP_PORT"] = String(port)
        try handle(appendingTo: work.appendingPathComponent("ports.txt")).write(
            contentsOf: Data("\(instance.name) http://127.0.0.1:\(port)\n".utf8))
        let process = try WorkerProcess(
            environment: environment, executable: instance.worker.rawValue, log: log, appending: true)
        processes.withLock { $0[instance] = process }
    }

    /// A file opened for writing at its end (created if missing); closed when released.
    private func handle(appendingTo file: URL) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: file.path) {
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        return handle
    }

    func process(_ instance: Instance) -> WorkerProcess? { processes.withLock { $0[instance] } }

    /// Restarts an instance whose process ended (after a kill or SIGTERM).
    func restart(_ instance: Instance) throws {
        restarts.withLock { $0[instance, default: 0] += 1 }
        try launch(instance)
    }

    /// Instances whose process ended though nobody stopped it: these are crashes.
    func noteUnexpectedExits(except faulted: Set<Instance>) {
        let ended = processes.withLock { processes in
            processes.filter { !faulted.contains($0.key) && !$0.value.process.isRunning }
        }
        for (instance, process) in ended {
            unexpected.withLock {
                $0.append("\(instance.name) exited with \(process.process.terminationStatus)")
            }
            try? restart(instance)
        }
    }

    func exitsUnexpected() -> [String] { unexpected.withLock { $0 } }

    /// Resident memory of every running process, in MiB, by instance.
    func residentMemory() -> [String: Double] {
        processes.withLock { processes in
            processes.reduce(into: [:]) { memory, entry in
                let status =
                    (try? String(
                        contentsOfFile: "/proc/\(entry.value.process.processIdentifier)/status", encoding: .utf8))
                    ?? ""
                let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
                let kb = line?.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
                memory[entry.key.name] = kb / 1024
            }
        }
    }

    func stopAll() {
        let all = processes.withLock { $0.values }
        for process in all {
            kill(process.process.processIdentifier, SIGCONT)
            process.signal(SIGTERM)
        }
        for process in all {
            let deadline = Date().addingTimeInterval(15)
            while process.process.isRunning, Date() < deadline { usleep(50_000) }
            process.signal(SIGKILL)
        }
        proxy.close()
        let running = erpRunning
        let done = DispatchSemaphore(value: 0)
        Task {
            await running.stop()
            done.signal()
        }
        done.wait()
    }
}
