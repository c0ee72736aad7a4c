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

    init(latency: [String: Duration] = [:], failureShare: Double = 0) {
        self.latency = latency
        self.failureShare = failureShare
    }

    func destination(of payload: Data) -> String {
        (try? JSONDecoder().decode(OrderCustoms.self, from: payload))?.erp.system ?? "?"
    }

    func concurrency(of destination: String) -> Int { 8 }

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
}
