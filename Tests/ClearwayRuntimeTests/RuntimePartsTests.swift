import ClearwayTestSupport
import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import ClearwayKafka
@testable import ClearwayRuntime

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

struct RefusalIsolationTests {
    let a = TopicPartition(topic: "in", partition: 0)
    let b = TopicPartition(topic: "in", partition: 1)

    func record(_ partition: TopicPartition, _ offset: Int64) -> ConsumerRecord {
        ConsumerRecord(
            topic: partition.topic, partition: partition.partition, offset: offset, key: nil, value: Data(),
            isTombstone: false, headers: [], timestamp: nil)
    }

    /// A refusal in a batch starts a stretch up to where the loop had read; a record refused
    /// alone three times is the one; committed records end the stretch partition by partition.
    @Test func aRefusedBatchIsRedoneOneRecordAtATimeUntilTheRefusedRecordIsFound() {
        var isolation = RefusalIsolation()
        #expect(!isolation.covers(record(a, 0)))
        let started = isolation.refused(readUpTo: [
            TopicPartitionOffset(topic: "in", partition: 0, offset: 3),
            TopicPartitionOffset(topic: "in", partition: 1, offset: -1001),
        ])
        #expect(started)
        #expect(isolation.covers(record(a, 2)) && !isolation.covers(record(a, 3)) && !isolation.covers(record(b, 0)))
        isolation.begin(a, offset: 0)
        isolation.committed()
        for attempt in 1...RefusalIsolation.attempts {
            #expect(isolation.refusals(a, offset: 1) == attempt - 1)
            isolation.begin(a, offset: 1)
            let startedAgain = isolation.refused(readUpTo: [])
            #expect(!startedAgain, "a record alone refused again starts nothing new")
        }
        #expect(isolation.refusals(a, offset: 1) == RefusalIsolation.attempts)
        isolation.begin(a, offset: 1)
        isolation.committed()  // set aside
        #expect(isolation.covers(record(a, 2)) && isolation.refusals(a, offset: 1) == 0)
        isolation.begin(a, offset: 2)
        isolation.committed()
        #expect(!isolation.covers(record(a, 2)) && isolation.until.isEmpty)
    }

    @Test func revokedPartitionsLeaveTheStretch() {
        var isolation = RefusalIsolation()
        _ = isolation.refused(readUpTo: [TopicPartitionOffset(topic: "in", partition: 1, offset: 9)])
        isolation.begin(b, offset: 4)
        isolation.revoke([b])
        #expect(!isolation.covers(record(b, 5)) && isolation.current == nil)
    }
}

/// Readiness counts the lag of the partitions assigned now only.
struct RuntimeHealthTests {
    @Test func aRevokedPartitionsStaleLagDoesNotKeepTheWorkerUnready() {
        let health = RuntimeHealth(readyLag: 1_000)
        let kept = TopicPartition(topic: "in", partition: 0)
        let moved = TopicPartition(topic: "in", partition: 1)
        health.assigned([kept, moved])
        #expect(health.lag([kept: 10, moved: 40_000]) == [kept: 10, moved: 40_000])
        #expect(health.readiness.ready == false)
        // A rebalance moves partition 1 away; librdkafka's statistics still list it at its lag.
        health.revoked([moved])
        #expect(health.lag([kept: 10, moved: 40_000]) == [kept: 10])
        #expect(health.readiness.ready, "\(health.readiness.reason)")
        #expect(health.readiness.reason.contains("lag 10"))
    }
}

struct CloudEventsTests {
    /// An output's `ce_id` is the first 16 bytes of SHA-256 over the worker, the input's topic,
    /// key and value, the output's type and index, zero bytes between; an input's own `ce_id`
    /// stands in for its topic, key and value. Pinned: a consumer may have stored ids from an
    /// earlier version to drop repeats.
    @Test func outputIDsAreDerivedAsEverBefore() throws {
        func expected(_ parts: [Data]) -> String {
            var bytes = Data()
            for (index, part) in parts.enumerated() {
                if index > 0 { bytes.append(0) }
                bytes.append(part)
            }
            return SHA256.hash(data: bytes).prefix(16).map { String(format: "%02x", $0) }.joined()
        }
        let record = ConsumerRecord(
            topic: "clearway.orders.v1", partition: 3, offset: 42, key: Data("ORD-1".utf8),
            value: Data(#"{"orderId":"ORD-1"}"#.utf8), isTombstone: false, headers: [], timestamp: nil)
        let parts = ["enricher", "orders.v1", "ORD-1", #"{"orderId":"ORD-1"}"#, "clearway.order.enriched.v1", "0"]
        #expect(
            CloudEvents.id(
                worker: "enricher", input: record, inputTopic: "orders.v1", outputIndex: 0,
                outputType: "clearway.order.enriched.v1") == expected(parts.map { Data($0.utf8) }))
        #expect(
            CloudEvents.id(
                head: CloudEvents.idHead(worker: "enricher", inputTopic: "orders.v1"), input: record,
                tail: CloudEvents.idTail(outputIndex: 0, outputType: "clearway.order.enriched.v1"))
                == expected(parts.map { Data($0.utf8) }))
        var carried = record
        carried.headers = [KafkaHeader(name: "ce_id", string: "abc")]
        #expect(
            CloudEvents.id(
                worker: "enricher", input: carried, inputTopic: "orders.v1", outputIndex: 1, outputType: "t")
                == expected(["enricher", "abc", "t", "1"].map { Data($0.utf8) }))
    }

    @Test func timestampsAreRFC3339InUTCWithMilliseconds() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for seconds in [0.0, 1_795_606_961.062, 1_709_251_199.999, 951_782_400.5] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(WorkerConfiguration.cloudEventsTime(date) == formatter.string(from: date))
        }
    }
}

/// The worker executables run on jemalloc with the options in `Sources/ClearwayAllocator` (a
/// dropped dependency, or a link order that left glibc's malloc in place, would lose the CPU it
/// saves without a word).
struct WorkerAllocatorTests {
    @Test(arguments: ["clearway-test-worker", "enricher", "pga-router", "aggregator", "structuring"])
    func aWorkerExecutableRunsOnJemallocWithTheWorkersOptions(_ executable: String) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("allocator-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        // jemalloc prints its statistics, options included, as the process exits.
        let worker = try WorkerProcess(
            environment: ["MALLOC_CONF": "stats_print:true"], executable: executable, arguments: ["--help"], log: log)
        #expect(await worker.waitForExit(limit: .seconds(30)) == 0)
        let statistics = try String(contentsOf: log, encoding: .utf8)
        #expect(statistics.contains("opt.narenas: 2"))
        #expect(statistics.contains("opt.dirty_decay_ms: 1000"))
    }
}
