import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayERP
import ClearwayERPSim
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Crypto
import Foundation
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The erp-writeback (its own process) against the ERP simulator's NetSuite at a fixed latency:
/// write-backs/s against the adapter writing the same number of orders directly (no Kafka, no
/// outbox, the same concurrency) in the same run; then a Business Central that takes seconds a
/// request: how soon the worker has read (and committed) its input, how long the write-backs
/// take, and how `/healthz` answers meanwhile.
struct ErpWritebackBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp-writeback",
        abstract: "Write-backs/s against a 20 ms ERP vs the adapter alone; the poll loop while an ERP is slow.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Orders written back in the throughput run.") var orders = 3_000
    @Option(help: "Orders of the slow ERP.") var slowOrders = 100
    @Option(help: "The ERP's latency per request, ms.") var latency = 20
    @Option(help: "The slow ERP's latency per request, ms.") var slowLatency = 2_000
    @Option(help: "Writes in flight per ERP.") var concurrency = 8
    @Option(help: "The erp-writeback executable.") var writeback: String

    func run() async throws {
        let (bootstrapServers, servers, logger) = (options.bootstrapServers, options.servers, benchLogger())
        let folder = NSTemporaryDirectory() + "clearway-bench-erp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = P256.Signing.PrivateKey()
        try key.pemRepresentation.write(toFile: folder + "/ns.pem", atomically: true, encoding: .utf8)
        try "bench-secret".write(toFile: folder + "/bc.secret", atomically: true, encoding: .utf8)
        var configuration = ERPSimulatorConfiguration()
        configuration.netsuite = .init(clientId: "bench", publicKeyPEM: key.publicKey.pemRepresentation)
        configuration.businessCentral = .init(tenant: "bench", clientId: "bench", clientSecret: "bench-secret")
        configuration.faults.latency = .milliseconds(latency)
        configuration.faults.latencyBySystem = ["business-central": .milliseconds(slowLatency)]
        let simulator = try ERPSimulator(configuration: configuration, logger: logger)
        let running = try await simulator.start(port: 0)
        let environment = [
            "CLEARWAY_ERP_NETSUITE_ADAPTER": "netsuite", "CLEARWAY_ERP_NETSUITE_URL": "\(running.url)/netsuite",
            "CLEARWAY_ERP_NETSUITE_CLIENT_ID": "bench", "CLEARWAY_ERP_NETSUITE_CERTIFICATE_ID": "bench",
            "CLEARWAY_ERP_NETSUITE_PRIVATE_KEY_FILE": folder + "/ns.pem",
            "CLEARWAY_ERP_NETSUITE_CONCURRENCY": "\(concurrency)",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_ADAPTER": "business-central",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_URL": "\(running.url)/bc",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TOKEN_URL": "\(running.url)/bc/bench/oauth2/v2.0/token",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TENANT": "bench", "CLEARWAY_ERP_BUSINESS_CENTRAL_COMPANY": "bench",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_ID": "bench",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE": folder + "/bc.secret",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CONCURRENCY": "\(concurrency)",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TIMEOUT_MS": "\(slowLatency * 5)",
        ]

        // The baseline: the NetSuite adapter writing the orders itself, `concurrency` at a time.
        let direct = try ERPDirectory(environment: environment, logger: logger)
        let adapter = direct.adapter(for: "netsuite")!
        let clock = ContinuousClock()
        let started = clock.now
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    for index in stride(from: lane, to: orders, by: concurrency) {
                        _ = await adapter.write(Self.customs("BASE-\(index)", system: "netsuite"))
                    }
                }
            }
        }
        let baseline = Double(orders) / seconds(clock.now - started)
        try await direct.shutdown()
        print(
            String(
                format: "adapter alone:  %8.0f write-backs/s (NetSuite at %d ms a request, %d in flight)", baseline,
                latency, concurrency))

        let definition = ErpWritebackHandler.definition(sender: NoSender())
        let prefix = try await createBenchTopics(for: definition, servers: servers, logger: logger)
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        for index in 0..<orders {
            try await producer.send(
                ProducerRecord(
                    topic: prefix + Topics.entryResults.name, key: "SO-\(index)",
                    value: try Self.result("SO-\(index)", system: "netsuite")))
        }
        try await producer.flush(timeout: .seconds(120))
        let port = try freePort()
        let state = folder + "/state"
        let process = try startWorker(
            executable: writeback,
            environment: environment.merging([
                "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
                "CLEARWAY_STATE_DIR": state, "CLEARWAY_INSTANCE_ID": "bench", "CLEARWAY_HTTP_PORT": "\(port)",
            ]) { _, new in new })
        defer { if process.isRunning { process.terminate() } }
        func written(_ prefix: String) -> Int { simulator.ledger().count { $0.orderId.hasPrefix(prefix) } }
        var first: ContinuousClock.Instant?
        let deadline = clock.now + .seconds(900)
        while written("SO-") < orders, clock.now < deadline {
            guard process.isRunning else { throw ValidationError("\(writeback) exited (\(process.terminationStatus))") }
            if first == nil, written("SO-") > 0 { first = clock.now }
            try await Task.sleep(for: .milliseconds(20))
        }
        let rate = Double(orders - 1) / seconds(clock.now - (first ?? started))
        print(
            String(
                format: "erp-writeback:  %8.0f write-backs/s (%.2f of the adapter alone)  peak RSS %.1f MiB", rate,
                rate / baseline, Double(peakRSS(process.processIdentifier)) / 1_048_576))

        // A slow ERP: the input is read and committed at once; the write-backs take their time;
        // /healthz answers throughout.
        let end = Int64(orders + slowOrders)
        let group = prefix + ErpWritebackHandler.name
        var consumerConfiguration = KafkaConsumerConfiguration(groupID: group, bootstrapServers: servers)
        consumerConfiguration.sessionTimeout = .seconds(6)
        let probe = try KafkaConsumer(configuration: consumerConfiguration, logger: logger)
        let partitions = (0..<Topics.entryResults.partitions).map {
            TopicPartition(topic: prefix + Topics.entryResults.name, partition: $0)
        }
        let slowStart = clock.now
        for index in 0..<slowOrders {
            try await producer.send(
                ProducerRecord(
                    topic: prefix + Topics.entryResults.name, key: "SLOW-\(index)",
                    value: try Self.result("SLOW-\(index)", system: "business-central")))
        }
        try await producer.flush(timeout: .seconds(60))
        await producer.shutdown()
        var consumed: Duration?
        var probes = (ok: 0, all: 0, slowest: Duration.zero)
        while written("SLOW-") < slowOrders, clock.now < deadline {
            guard process.isRunning else { throw ValidationError("\(writeback) exited (\(process.terminationStatus))") }
            if consumed == nil,
                try await probe.committed(partitions).map({ max(0, $0.offset) }).reduce(0, +) >= end
            {
                consumed = clock.now - slowStart
            }
            let asked = clock.now
            let url = URL(string: "http://127.0.0.1:\(port)/healthz")!
            let ok = (try? await URLSession.shared.data(from: url)).map {
                ($0.1 as? HTTPURLResponse)?.statusCode == 200
            }
            probes.all += 1
            if ok == true { probes.ok += 1 }
            probes.slowest = max(probes.slowest, clock.now - asked)
            try await Task.sleep(for: .milliseconds(100))
        }
        let slowDone = clock.now - slowStart
        print(
            String(
                format:
                    "slow ERP:       %d orders at %d ms a request: input read and committed in %.1f s, write-backs done in %.1f s; /healthz %d/%d OK, slowest answer %.0f ms",
                slowOrders, slowLatency, seconds(consumed ?? slowDone), seconds(slowDone), probes.ok, probes.all,
                seconds(probes.slowest) * 1000))
        process.terminate()
        process.waitUntilExit()
        await running.stop()
        try options.write([
            "orders": Double(orders), "latency_ms": Double(latency), "concurrency": Double(concurrency),
            "adapter_alone_per_s": baseline, "erp_writeback_per_s": rate, "erp_writeback_ratio": rate / baseline,
            "slow_latency_ms": Double(slowLatency), "slow_orders": Double(slowOrders),
            "slow_input_committed_s": seconds(consumed ?? slowDone), "slow_writebacks_done_s": seconds(slowDone),
            "healthz_ok_share": Double(probes.ok) / Double(max(1, probes.all)),
            "healthz_slowest_ms": seconds(probes.slowest) * 1000,
        ])
    }

    static func customs(_ orderId: String, system: String) -> OrderCustoms {
        OrderCustoms.fold([entryResult(orderId, system: system)])!.with(revision: 1)
    }

    static func entryResult(_ orderId: String, system: String) -> EntryResult {
        EntryResult(
            orderId: orderId, shipmentId: orderId, version: 1, manifestId: "M1", entryId: "E-\(orderId)",
            entryType: .t11, filerCode: "CLW", entryNumber: "CLW-0100001-5", event: .accepted, conditions: [],
            disposition: nil, pga: nil, erp: .init(system: system, recordId: "REC-\(orderId)"),
            at: "2026-11-30T10:00:00Z", masterBill: "CLWMB1")
    }

    static func result(_ orderId: String, system: String) throws -> Data {
        try JSONEncoder().encode(entryResult(orderId, system: system))
    }
}

/// The definition's sender when only its topics are wanted.
private struct NoSender: OutboxSender {
    func destination(of payload: Data) -> String { "" }
    func concurrency(of destination: String) -> Int { 1 }
    func send(_ payload: Data, key: String) async -> OutboxSendResult { .refused("not sending") }
}

extension OrderCustoms {
    fileprivate func with(revision: Int) -> OrderCustoms {
        var copy = self
        copy.revision = revision
        return copy
    }
}
