import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import Synchronization
import Testing

/// An ERP in memory as the worker's outbox sender: per system a latency and a share of failures;
/// records keep the highest revision written, and a ledger counts each revision applied.
final class MemoryERP: OutboxSender {
    struct State {
        var records: [String: OrderCustoms] = [:]
        var ledger: [String: Int] = [:]
        var sends = 0
        /// Systems that refuse every write, and systems that fail every write for now.
        var refusing: Set<String> = []
        var down: Set<String> = []
    }

    let state = Mutex(State())
    let latency: [String: Duration]
    let failureShare: Double
    let concurrency: Int

    init(latency: [String: Duration] = [:], failureShare: Double = 0, concurrency: Int = 8) {
        self.latency = latency
        self.failureShare = failureShare
        self.concurrency = concurrency
    }

    func destination(of payload: Data) -> String {
        (try? JSONDecoder().decode(OrderCustoms.self, from: payload))?.erp.system ?? "?"
    }

    func concurrency(of destination: String) -> Int { concurrency }

    func send(_ payload: Data, key: String) async -> OutboxSendResult {
        guard let customs = try? JSONDecoder().decode(OrderCustoms.self, from: payload) else {
            return .refused("unreadable")
        }
        if let delay = latency[customs.erp.system] { try? await Task.sleep(for: delay) }
        if Double.random(in: 0..<1) < failureShare { return .retry("HTTP 503", after: .milliseconds(50)) }
        let (refusing, down) = state.withLock {
            ($0.refusing.contains(customs.erp.system), $0.down.contains(customs.erp.system))
        }
        if refusing { return .refused("HTTP 400: Invalid field value custrecord_clw_status") }
        if down { return .retry("HTTP 503: down for maintenance", after: nil) }
        let outcome = state.withLock { state -> WritebackResult.Outcome in
            state.sends += 1
            if let held = state.records[key], held.revision >= customs.revision { return .alreadyApplied }
            state.records[key] = customs
            state.ledger["\(key)#\(customs.revision)", default: 0] += 1
            return .applied
        }
        let report = ErpWritebackHandler.Report(outcome: outcome, detail: "rev \(customs.revision)")
        return .delivered(try! JSONEncoder().encode(report))
    }
}

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct ErpWritebackTests {
    static func result(
        _ order: Int, _ event: EntryResult.Event, minute: Int, system: String, disposition: String? = nil
    ) -> EntryResult {
        EntryResult(
            orderId: "SO-\(order)", shipmentId: "SO-\(order)", version: 1, manifestId: "M1", entryId: "E\(order)",
            entryType: .t11, filerCode: "CLW", entryNumber: "CLW-01\(String(format: "%05d", order))-0",
            event: event, conditions: [], disposition: disposition.map { .init(code: $0, text: "disposition") },
            pga: nil, erp: .init(system: system, recordId: "REC\(order)"),
            at: String(format: "2026-11-30T10:%02d:00Z", minute))
    }

    /// Orders of a quick ERP and of a slow one (3 s a write), with repeats and a late earlier
    /// event: every order's final values land once per revision; the quick ERP's orders are all
    /// written back before the slow one's first answer (the slow one holds up nothing else);
    /// the late event changes nothing.
    @Test func writesEveryOrderBackOnceWithoutWaitingForASlowERP() async throws {
        let erp = MemoryERP(latency: ["slow": .seconds(3)], failureShare: 0.2)
        var deployment = WorkerDeployment(ErpWritebackHandler.definition(sender: erp))
        deployment.outbox.initialBackoff = .milliseconds(50)
        try await deployment.createTopics()
        var events: [EntryResult] = []
        for order in 1...24 {
            let system = order % 4 == 0 ? "slow" : "quick"
            events.append(Self.result(order, .accepted, minute: 1, system: system))
            events.append(Self.result(order, .released, minute: 5, system: system, disposition: "1C"))
        }
        // A repeat, and a hold stamped before the release that arrives after it.
        events.append(Self.result(1, .accepted, minute: 1, system: "quick"))
        events.append(Self.result(2, .hold, minute: 3, system: "quick", disposition: "1H"))
        let encoder = JSONEncoder()
        let records = try events.map { ($0.orderId, String(decoding: try encoder.encode($0), as: UTF8.self)) }
        let watch = try await deployment.watch(["erp-writeback.v1"])
        let (group, task) = deployment.start()
        try await deployment.publish("entry-results.v1", records.map { (key: $0.0, value: Optional($0.1)) })
        let expected = Dictionary(grouping: events, by: \.orderId).mapValues { OrderCustoms.fold($0)!.values }
        try await watch.wait("every order written back with its final values", limit: .seconds(90)) { seen in
            let written = seen.records.compactMap { try? JSONDecoder().decode(WritebackResult.self, from: $0.value) }
            let final = Set(written.filter { expected[$0.orderId] == $0.customs.values }.map(\.orderId))
            return final.count == expected.count
        }
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()

        let written = watch.seen.withLock { $0.records }.map {
            try! JSONDecoder().decode(WritebackResult.self, from: $0.value)
        }
        let held = erp.state.withLock { $0 }
        for (order, values) in expected {
            #expect(held.records[order]?.values == values, "\(order)")
            #expect(values.status == .released, "\(order)")
        }
        #expect(held.ledger.values.allSatisfy { $0 == 1 }, "a revision applied twice: \(held.ledger)")
        #expect(written.allSatisfy { $0.outcome == .applied || $0.outcome == .alreadyApplied })
        let firstSlow = try #require(written.firstIndex { $0.erp.system == "slow" })
        let lastQuick = try #require(written.lastIndex { $0.erp.system == "quick" })
        #expect(lastQuick < firstSlow, "the quick ERP's write-backs waited for the slow one's")
    }

    /// An outbox over its limit pauses its partition, and only that one: a slow ERP's orders on
    /// partition 0 (one write at a time, 500 ms each, an outbox of at most 3) hold partition 0's
    /// later input back, while partition 1's orders, for a quick ERP, are read and written back.
    /// (The limit is checked each poll turn against the committed outbox, so an outbox can pass it
    /// by what one turn reads.)
    @Test func anOutboxOverItsLimitPausesOnlyItsPartition() async throws {
        let erp = MemoryERP(latency: ["slow": .milliseconds(500)], concurrency: 1)
        var deployment = WorkerDeployment(ErpWritebackHandler.definition(sender: erp))
        deployment.outbox.limit = 3
        try await deployment.createTopics()
        let encoder = JSONEncoder()
        func records(_ range: ClosedRange<Int>, system: String) throws -> [(key: String, value: String?)] {
            try range.map { order in
                let result = Self.result(order, .accepted, minute: 1, system: system)
                return (result.orderId, String(decoding: try encoder.encode(result), as: UTF8.self))
            }
        }
        let written: @Sendable (ClosedRange<Int>) -> Int = { range in
            erp.state.withLock { state in range.count { state.records["SO-\($0)"] != nil } }
        }
        let input = deployment.topic("entry-results.v1")
        let committed = try CommittedOffsets(
            group: deployment.topic(ErpWritebackHandler.name), partitions: [TopicPartition(topic: input, partition: 0)])
        let (group, task) = deployment.start()
        try await deployment.publish("entry-results.v1", try records(1...40, system: "slow"), partition: 0)
        try await committed.wait(for: 40, limit: .seconds(60), "partition 0's first orders read")
        // A few poll turns for the pause to follow the commit; the outbox is still far over its limit.
        try await Task.sleep(for: .seconds(1))
        try #require(written(1...40) <= 30, "the slow ERP drained the outbox before the test could look")
        // What comes next on partition 0 waits; partition 1's orders do not.
        try await deployment.publish("entry-results.v1", try records(41...70, system: "slow"), partition: 0)
        try await deployment.publish("entry-results.v1", try records(101...130, system: "quick"), partition: 1)
        try await within(.seconds(60), "the quick ERP's orders written back") {
            while written(101...130) < 30 { try await Task.sleep(for: .milliseconds(50)) }
        }
        let read = try await committed.total()
        #expect(read == 40, "partition 0 read on to \(read) with its outbox over its limit")
        #expect(written(1...40) < 40)
        try await committed.wait(for: 70, limit: .seconds(120), "partition 0 read on once its outbox drained")
        try await within(.seconds(60), "every slow order written back") {
            while written(1...70) < 70 { try await Task.sleep(for: .milliseconds(100)) }
        }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// An ERP that refuses: `refused` on erp-writeback.v1 and an `ERP-REFUSED` exception with
    /// its words. An ERP that stays down: `gave-up` after the attempts, and the order's last
    /// entry result on the DLQ, which, replayed onto entry-results.v1 once the ERP is back,
    /// writes the order back.
    @Test func refusalsAndGiveUpsAreSaidAndAGiveUpReplays() async throws {
        let erp = MemoryERP()
        erp.state.withLock {
            $0.refusing = ["strict"]
            $0.down = ["down"]
        }
        var deployment = WorkerDeployment(ErpWritebackHandler.definition(sender: erp))
        deployment.outbox.initialBackoff = .milliseconds(20)
        deployment.outbox.maximumAttempts = 3
        try await deployment.createTopics()
        let (dlq, exceptions, writebacks) = (
            deployment.topic("dlq.v1"), deployment.topic("orders.exceptions.v1"), deployment.topic("erp-writeback.v1")
        )
        let encoder = JSONEncoder()
        let refused = Self.result(1, .accepted, minute: 1, system: "strict")
        let givenUp = Self.result(2, .accepted, minute: 1, system: "down")
        let watch = try await deployment.watch(["erp-writeback.v1", "orders.exceptions.v1", "dlq.v1"])
        let (group, task) = deployment.start()
        try await deployment.publish(
            "entry-results.v1",
            try [refused, givenUp].map { ($0.orderId, String(decoding: try encoder.encode($0), as: UTF8.self)) })
        try await watch.wait("a refusal, a give-up and its dead letter", limit: .seconds(60)) { seen in
            seen.records.contains { $0.topic == dlq } && seen.records.contains { $0.topic == exceptions }
        }
        let seen = watch.seen.withLock { $0.records }
        let results = seen.filter { $0.topic == deployment.topic("erp-writeback.v1") }.map {
            try! JSONDecoder().decode(WritebackResult.self, from: $0.value)
        }
        #expect(results.first { $0.orderId == "SO-1" }?.outcome == .refused)
        #expect(results.first { $0.orderId == "SO-1" }?.message?.contains("custrecord_clw_status") == true)
        #expect(results.first { $0.orderId == "SO-2" }?.outcome == .gaveUp)
        #expect(results.first { $0.orderId == "SO-2" }?.attempts == 3)
        let exception = try #require(seen.first { $0.topic == deployment.topic("orders.exceptions.v1") })
        #expect(exception.json["code"] as? String == "ERP-REFUSED")
        #expect((exception.json["detail"] as? String)?.contains("Invalid field value") == true)
        let dead = try #require(seen.first { $0.topic == deployment.topic("dlq.v1") })
        #expect(dead.headers.first(named: "dlq.error.class") == "erp-gave-up")
        #expect(dead.headers.first(named: "dlq.source.topic") == deployment.topic("entry-results.v1"))
        #expect(try JSONDecoder().decode(EntryResult.self, from: dead.value) == givenUp)
        // The ERP is back: the dead letter replayed writes the order back.
        erp.state.withLock { $0.down = [] }
        try await deployment.publish("entry-results.v1", [("SO-2", String(decoding: dead.value, as: UTF8.self))])
        try await watch.wait("the replay applied", limit: .seconds(60)) { seen in
            seen.records.contains {
                $0.topic == writebacks && $0.json["orderId"] as? String == "SO-2"
                    && $0.json["outcome"] as? String == "applied"
            }
        }
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()
        #expect(erp.state.withLock { $0.records["SO-2"]?.values } == OrderCustoms.fold([givenUp])?.values)
    }
}
