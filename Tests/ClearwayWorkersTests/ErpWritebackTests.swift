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
    /// partition 0 (one write at a time, 300 ms each, an outbox of at most 3) hold partition 0's
    /// later input back, while partition 1's orders, for a quick ERP, are read and written back.
    /// (The limit is checked each poll turn, so an outbox can pass it by one poll's records.)
    @Test func anOutboxOverItsLimitPausesOnlyItsPartition() async throws {
        let erp = MemoryERP(latency: ["slow": .milliseconds(300)], concurrency: 1)
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
        try await deployment.publish("entry-results.v1", try records(1...30, system: "slow"), partition: 0)
        try await committed.wait(for: 30, limit: .seconds(60), "partition 0's first orders read")
        // Its outbox is far over the limit now: what comes next on partition 0 waits, partition 1's does not.
        try await deployment.publish("entry-results.v1", try records(31...60, system: "slow"), partition: 0)
        try await deployment.publish("entry-results.v1", try records(101...130, system: "quick"), partition: 1)
        try await within(.seconds(60), "the quick ERP's orders written back") {
            while written(101...130) < 30 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(try await committed.total() == 30, "partition 0 read on with its outbox over its limit")
        #expect(written(1...30) < 30)
        try await committed.wait(for: 60, limit: .seconds(90), "partition 0 read on once its outbox drained")
        try await within(.seconds(60), "every slow order written back") {
            while written(1...60) < 60 { try await Task.sleep(for: .milliseconds(100)) }
        }
        await group.triggerGracefulShutdown()
        try await task.value
    }
}
