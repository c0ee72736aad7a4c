import ClearwayKafka
import ClearwayTestSupport
import Foundation
import Testing

@testable import ClearwayKafka

/// `DeliveryLedger`: which record ids have had their delivery report, whatever their order.
struct DeliveryLedgerTests {
    @Test func throughMovesOnlyOverAnUnbrokenRunOfReports() {
        var ledger = DeliveryLedger()
        ledger.reported(2)
        ledger.reported(3)
        #expect(ledger.through == 0, "1 is still out")
        ledger.reported(1)
        #expect(ledger.through == 3)
        ledger.reported(3)  // a repeat changes nothing
        #expect(ledger.through == 3)
    }

    @Test func theRingGrowsAroundASlotSharedByTheWindowsFirstAndLastWords() {
        var ledger = DeliveryLedger(words: 1)  // 64 ids
        for id in UInt64(1)...10 { ledger.reported(id) }
        ledger.reported(12)  // the first word of the window, high bits
        ledger.reported(70)  // the last word, low bits, in the same slot
        ledger.reported(500)  // beyond the window: the ring grows
        ledger.reported(11)
        #expect(ledger.through == 12)
        for id in UInt64(13)...69 { ledger.reported(id) }
        #expect(ledger.through == 70)
        for id in UInt64(71)...75 { ledger.reported(id) }
        #expect(ledger.through == 75, "76 is not reported yet")
        for id in UInt64(76)...499 { ledger.reported(id) }
        #expect(ledger.through == 500)
    }

    @Test(arguments: [1, 2, 1024])
    func anyOrderGivesTheSameAnswerAsCountingEveryId(words: Int) {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            // Roughly in order, shuffled in small runs, with a few ids held back to the end (a
            // stuck partition): the ring grows step by step with early bits in it.
            let count = UInt64.random(in: 1...5_000, using: &generator)
            let stuck = Set((0..<3).map { _ in UInt64.random(in: 1...count, using: &generator) })
            var order: [UInt64] = []
            var run: [UInt64] = []
            for id in 1...count where !stuck.contains(id) {
                run.append(id)
                if run.count == 50 || id == count {
                    order += run.shuffled(using: &generator)
                    run = []
                }
            }
            order += run.shuffled(using: &generator) + stuck.shuffled(using: &generator)
            var ledger = DeliveryLedger(words: words)
            var seen = Set<UInt64>()
            var expected: UInt64 = 0
            for id in order {
                ledger.reported(id)
                seen.insert(id)
                while seen.contains(expected + 1) { expected += 1 }
                if ledger.through != expected {
                    Issue.record("after \(seen.count) of \(count) ids: through \(ledger.through), expected \(expected)")
                    return
                }
            }
        }
    }

    @Test func reportsInAnyOrderAndFarAheadAreAllCounted() {
        var generator = SystemRandomNumberGenerator()
        // Ids far ahead of the first (beyond the ring of early bits) as well as near ones.
        let ids = Array(UInt64(1)...UInt64(300_000)).shuffled(using: &generator)
        var ledger = DeliveryLedger()
        let withheld: UInt64 = 150_000
        for id in ids where id != withheld { ledger.reported(id) }
        #expect(ledger.through == withheld - 1)
        ledger.reported(withheld)
        #expect(ledger.through == 300_000)
    }
}

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct DeliveryMarkTests {
    @Test func aMarkIsDeliveredOnceEveryRecordBeforeItIsAcknowledged() async throws {
        let topic = Broker.uniqueTopic("marks")
        try await Broker.createTopic(topic, partitions: 3)
        let producer = try Broker.producer()
        for index in 0..<2_000 {
            try await producer.send(ProducerRecord(topic: topic, key: "k\(index % 17)", value: Data("v\(index)".utf8)))
        }
        let mark = producer.deliveryMark()
        try await within(.seconds(20), "the mark delivered") {
            while !producer.isDelivered(mark) { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(producer.queuedCount == 0, "every record before the mark is acknowledged")
        #expect(producer.failedDeliveryCount == 0)
        await producer.shutdown()
    }

    @Test func failedRecordsCountAsReportedAndAsFailures() async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: ["127.0.0.1:\(try closedPort())"])
        configuration.messageTimeout = .seconds(1)
        let producer = try KafkaProducer(configuration: configuration, logger: Broker.logger)
        for index in 0..<3 {
            try await producer.send(ProducerRecord(topic: "nowhere", key: nil, value: Data("v\(index)".utf8)))
        }
        let mark = producer.deliveryMark()
        #expect(!producer.isDelivered(mark), "no broker has acknowledged anything")
        try await within(.seconds(10), "the timed-out records reported") {
            while !producer.isDelivered(mark) { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(producer.failedDeliveryCount == 3)
        await producer.shutdown(timeout: .milliseconds(100))
    }
}
