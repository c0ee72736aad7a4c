import ClearwayContract
import ClearwayDomain
import ClearwayERP
import ClearwayERPSim
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The `erp-writeback` executable against the ERP simulator on the test broker: a storm of ERP
/// faults with the worker killed five times, a slow ERP beside a quick one, and a credential
/// the ERP refuses.
@Suite(
    .enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"), .serialized)
struct ErpStormTests {
    /// A deployment of the erp-writeback on its own topic prefix: its topics, its inputs, its
    /// process.
    struct Deployment {
        let prefix = "erp\(UUID().uuidString.prefix(6).lowercased())."
        let state = NSTemporaryDirectory() + "erp-writeback-\(UUID().uuidString)"
        let harness: Harness
        let port: Int

        init(harness: Harness) throws {
            self.harness = harness
            port = try freePort()
        }

        var configuration: WorkerConfiguration {
            var configuration = WorkerConfiguration(worker: "erp-writeback", httpPort: 0)
            configuration.bootstrapServers = Broker.bootstrapServers
            configuration.topicPrefix = prefix
            return configuration
        }

        func createTopics() async throws {
            _ = try await TopicAdministration(configuration: configuration, logger: Broker.logger).apply(Topics.all)
        }

        func publish(_ records: [(topic: String, key: String, value: Data)]) async throws {
            let producer = try Broker.producer()
            for record in records {
                try await producer.send(
                    ProducerRecord(topic: prefix + record.topic, key: Data(record.key.utf8), value: record.value))
            }
            try await producer.flush()
            await producer.shutdown()
        }

        func start(log: String, extra: [String: String] = [:]) throws -> WorkerProcess {
            var environment = harness.environment
            environment.merge([
                "CLEARWAY_BOOTSTRAP_SERVERS": Broker.bootstrapServers.joined(separator: ","),
                "CLEARWAY_TOPIC_PREFIX": prefix, "CLEARWAY_STATE_DIR": state, "CLEARWAY_HTTP_PORT": "\(port)",
                "CLEARWAY_INSTANCE_ID": "storm", "CLEARWAY_SESSION_TIMEOUT_MS": "6000",
                "CLEARWAY_OUTBOX_BACKOFF_MS": "100",
                // A NetSuite or Business Central write is two requests (a read, then a write), so
                // under 35 % faults an attempt fails 58 % of the time: 12 attempts would give up on
                // about one order a run, 40 on none.
                "CLEARWAY_OUTBOX_MAX_ATTEMPTS": "40",
            ]) { _, new in new }
            environment.merge(extra) { _, new in new }
            return try WorkerProcess(
                environment: environment, executable: "erp-writeback",
                log: URL(fileURLWithPath: NSTemporaryDirectory() + "\(prefix)\(log).log"))
        }

        /// The deployment's tally, read until the topics are quiet.
        func tally() async throws -> FleetTally {
            var tally = FleetTally(prefix: prefix)
            let reader = try await TopicReader(
                bootstrapServers: Broker.bootstrapServers, topics: tally.topics, logger: Broker.logger)
            var quietTurns = 0
            while quietTurns < 2 {
                let records = try await reader.read(for: .milliseconds(700))
                quietTurns = records.isEmpty ? quietTurns + 1 : 0
                for record in records { tally.add(record) }
            }
            await reader.close()
            return tally
        }

        func healthy() async -> Bool {
            guard let url = URL(string: "http://127.0.0.1:\(port)/healthz"),
                let (_, response) = try? await URLSession.shared.data(from: url)
            else { return false }
            return (response as? HTTPURLResponse)?.statusCode == 200
        }
    }

    static let systems = ["netsuite", "business-central", "partner-hook"]

    /// An order's decision and its entry results: accepted, for some a hold and its removal,
    /// released; `system` is its ERP.
    static func order(_ index: Int, system: String) throws -> [(topic: String, key: String, value: Data)] {
        let orderId = "SO-\(index)"
        let erp = OrderEvent.ERPReference(
            system: system,
            recordId: system == "business-central"
                ? String(format: "5a1e0000-0000-4000-8000-%012d", index) : "REC\(index)")
        let encoder = JSONEncoder()
        let cleared = ClearedShipment(
            orderId: orderId, shipmentId: orderId, version: 1, consigneeKey: "C\(index)", addressKey: "A\(index)",
            status: .released, entryType: .t11, day: "2026-11-30", valueUSD: "120.00", dayTotalUSD: "120.00",
            regime: .noDeMinimis, policyVersion: "test", reasons: [], shipment: nil)
        func result(_ event: EntryResult.Event, minute: Int, disposition: String? = nil) throws -> Data {
            try encoder.encode(
                EntryResult(
                    orderId: orderId, shipmentId: orderId, version: 1, manifestId: "M\(index / 10)",
                    entryId: "E\(index)", entryType: .t11, filerCode: "CLW",
                    entryNumber: "CLW-02\(String(format: "%05d", index))-0", event: event, conditions: [],
                    disposition: disposition.map { .init(code: $0, text: "disposition \($0)") }, pga: nil, erp: erp,
                    at: String(format: "2026-11-30T11:%02d:00Z", minute), masterBill: "CLWMB\(index / 10)"))
        }
        var records = [
            (Topics.shipmentsCleared.name, "C\(index)", try encoder.encode(cleared)),
            (Topics.entryResults.name, orderId, try result(.accepted, minute: 1)),
        ]
        if index % 5 == 0 {
            records.append((Topics.entryResults.name, orderId, try result(.hold, minute: 2, disposition: "1H")))
            records.append((Topics.entryResults.name, orderId, try result(.holdRemoved, minute: 3, disposition: "1I")))
        }
        records.append((Topics.entryResults.name, orderId, try result(.released, minute: 4, disposition: "1C")))
        return records.map { (topic: $0.0, key: $0.1, value: $0.2) }
    }

    /// 20 % 5xx, 10 % 429 with Retry-After, 5 % timeouts or dropped connections, and five
    /// `kill -9`s of the worker while it writes back: every order's record holds its final
    /// values, every revision was applied once (the simulator's ledger), revisions only grew,
    /// and `clearway reconcile` finds no gap.
    @Test func anERPStormWithFiveKillsLosesAndDoublesNothing() async throws {
        var faults = ERPSimulatorConfiguration.Faults()
        faults.serverErrors = 0.2
        faults.tooManyRequests = 0.1
        faults.retryAfterSeconds = 1
        faults.timeouts = 0.025
        faults.timeoutHold = .seconds(3)
        faults.drops = 0.025
        faults.seed = 21
        let harness = try await Harness.start(faults: faults, timeoutMilliseconds: 1_000)
        let running = harness.running
        defer { Task { await running.stop() } }
        let deployment = try Deployment(harness: harness)
        try await deployment.createTopics()
        let orders = 300
        let waves = (0..<6).map { wave in
            stride(from: wave + 1, through: orders, by: 6).map { ($0, Self.systems[$0 % 3]) }
        }
        var expected: [String: OrderCustoms] = [:]
        for (index, system) in waves.joined() {
            let results = try Self.order(index, system: system).filter { $0.topic == Topics.entryResults.name }
            expected["SO-\(index)"] = OrderCustoms.fold(
                try results.map { try JSONDecoder().decode(EntryResult.self, from: $0.value) })
        }
        let simulator = harness.simulator
        let final = expected
        // Five lives killed mid-work, each after its wave was published and some of it written.
        for (life, wave) in waves.prefix(5).enumerated() {
            let worker = try deployment.start(log: "life\(life)")
            try await deployment.publish(try wave.flatMap { try Self.order($0.0, system: $0.1) })
            let before = simulator.ledger().count
            try await within(.seconds(60), "life \(life) writing back") {
                while simulator.ledger().count == before { try await Task.sleep(for: .milliseconds(100)) }
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...1_500)))
            worker.signal(SIGKILL)
            _ = await worker.waitForExit(limit: .seconds(5))
        }
        let worker = try deployment.start(log: "last")
        try await deployment.publish(try waves[5].flatMap { try Self.order($0.0, system: $0.1) })
        try await within(.seconds(300), "every order's final values in its ERP") {
            while true {
                let held = Dictionary(
                    simulator.records().compactMap { record in record.customs.map { ($0.orderId, $0) } },
                    uniquingKeysWith: { first, second in first.revision >= second.revision ? first : second })
                if final.allSatisfy({ held[$0.key]?.values == $0.value.values }) { return }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        #expect(await deployment.healthy())
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit(limit: .seconds(20)) == 0)

        let ledger = harness.simulator.ledger()
        let applied = Dictionary(grouping: ledger, by: { "\($0.system) \($0.orderId) r\($0.revision)" })
        #expect(applied.filter { $0.value.count > 1 }.isEmpty, "side effects applied twice")
        for (order, entries) in Dictionary(grouping: ledger, by: \.orderId) {
            let revisions = entries.sorted { $0.sequence < $1.sequence }.map(\.revision)
            #expect(revisions == revisions.sorted() && Set(revisions).count == revisions.count, "\(order)")
        }
        let stats = harness.simulator.stats()
        for kind in ["server-error", "too-many-requests", "timeout", "drop"] {
            #expect((stats.faults[kind] ?? 0) > 0, "no \(kind) injected")
        }
        // Every write-back on the topic, once per order and revision, ends applied or already applied.
        let tally = try await deployment.tally()
        #expect(tally.writebackProgress.written == orders)
        #expect(tally.writebackProgress.pending == 0 && tally.writebackProgress.failed == 0)

        // clearway reconcile, reading the ERPs back through the adapters: no gap.
        var environment = harness.environment
        environment["CLEARWAY_BOOTSTRAP_SERVERS"] = Broker.bootstrapServers.joined(separator: ",")
        environment["CLEARWAY_TOPIC_PREFIX"] = deployment.prefix
        let output = NSTemporaryDirectory() + "\(deployment.prefix)reconcile.json"
        let reconcile = try WorkerProcess(
            environment: environment, executable: "clearway",
            arguments: ["reconcile", "--format", "json", "--output", output])
        #expect(await reconcile.waitForExit(limit: .seconds(120)) == 0)
        let rows = try JSONDecoder().decode(
            [Reconciliation.Row].self, from: Data(contentsOf: URL(fileURLWithPath: output)))
        #expect(rows.count == orders)
        #expect(rows.allSatisfy { $0.gaps.isEmpty })
        #expect(rows.count(where: { $0.erp == "matches" }) == orders * 2 / 3)
    }

    /// A Business Central that takes 2 s a request beside a quick NetSuite: the NetSuite orders
    /// are all written back while Business Central's are still going, and `/healthz` answers.
    @Test func aSlowERPStallsNeitherTheOtherERPNorTheWorker() async throws {
        var faults = ERPSimulatorConfiguration.Faults()
        faults.latencyBySystem = ["business-central": .seconds(2)]
        let harness = try await Harness.start(faults: faults, timeoutMilliseconds: 10_000)
        let running = harness.running
        defer { Task { await running.stop() } }
        let deployment = try Deployment(harness: harness)
        try await deployment.createTopics()
        let worker = try deployment.start(log: "slow", extra: ["CLEARWAY_ERP_BUSINESS_CENTRAL_CONCURRENCY": "2"])
        try await deployment.publish(
            try (1...40).flatMap { try Self.order($0, system: $0 % 2 == 0 ? "business-central" : "netsuite") })
        let simulator = harness.simulator
        let written: @Sendable (String) -> Set<String> = { system in
            Set(simulator.ledger().filter { $0.system == system && $0.status == "released" }.map(\.orderId))
        }
        try await within(.seconds(90), "NetSuite's orders written back") {
            while written("netsuite").count < 20 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(written("business-central").count < 20, "Business Central was not slower")
        #expect(await deployment.healthy())
        try await within(.seconds(120), "Business Central's orders written back") {
            while written("business-central").count < 20 { try await Task.sleep(for: .milliseconds(200)) }
        }
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit(limit: .seconds(20)) == 0)
    }

    /// A client secret Business Central refuses: the worker stops at start and says which
    /// setting to fix.
    @Test func aRefusedCredentialStopsTheWorkerWithWhatToFix() async throws {
        let harness = try await Harness.start()
        let running = harness.running
        defer { Task { await running.stop() } }
        let deployment = try Deployment(harness: harness)
        let wrong = try harness.file("wrong.secret", "not-the-secret")
        let log = NSTemporaryDirectory() + "\(deployment.prefix)refused.log"
        var environment = harness.environment
        environment["CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE"] = wrong
        environment["CLEARWAY_BOOTSTRAP_SERVERS"] = Broker.bootstrapServers.joined(separator: ",")
        let worker = try WorkerProcess(
            environment: environment, executable: "erp-writeback", log: URL(fileURLWithPath: log))
        #expect(await worker.waitForExit(limit: .seconds(30)) == 1)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE"))
        #expect(!text.contains("not-the-secret"))
    }
}
