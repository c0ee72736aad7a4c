import ClearwayKafka
import ClearwayTestSupport
import Foundation
import Testing

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct TransactionTests {
    @Test func committedTransactionIsVisibleAndAbortedOneIsNotWithOffsetsCommittedThroughIt() async throws {
        let input = Broker.uniqueTopic("txn-in")
        let output = Broker.uniqueTopic("txn-out")
        let group = Broker.uniqueTopic("txn-group")
        try await Broker.createTopic(input, partitions: 1)
        try await Broker.createTopic(output, partitions: 1)

        let plain = try Broker.producer()
        for index in 0..<4 {
            try await plain.send(ProducerRecord(topic: input, key: "k\(index)", value: Data("in-\(index)".utf8)))
        }
        await plain.shutdown()

        let consumer = try Broker.consumer(group: group)
        try consumer.subscribe(topics: [input])
        let inputs = try await collect(consumer, count: 4)

        let producer = try Broker.producer { $0.transactionalID = Broker.uniqueTopic("txn-id") }
        try await producer.initTransactions()

        // Transaction 1: the first two inputs → outputs, with their offsets; committed.
        try producer.beginTransaction()
        for record in inputs.prefix(2) {
            try await producer.send(ProducerRecord(topic: output, key: record.key, value: Data("committed".utf8)))
        }
        try await producer.sendOffsetsToTransaction([inputs[1].nextOffset], groupMetadata: try consumer.groupMetadata())
        try await producer.commitTransaction()

        // Transaction 2: the next two; aborted, so neither records nor offsets count.
        try producer.beginTransaction()
        for record in inputs.suffix(2) {
            try await producer.send(ProducerRecord(topic: output, key: record.key, value: Data("aborted".utf8)))
        }
        try await producer.sendOffsetsToTransaction([inputs[3].nextOffset], groupMetadata: try consumer.groupMetadata())
        try await producer.abortTransaction()

        let committed = try await consumer.committed([TopicPartition(topic: input, partition: 0)])
        #expect(committed.map(\.offset) == [2])

        // Transaction 3 commits after the aborted one, so a read_committed reader must skip the
        // aborted records in the middle of the partition.
        try producer.beginTransaction()
        try await producer.send(ProducerRecord(topic: output, key: "after", value: Data("committed".utf8)))
        try await producer.commitTransaction()
        await producer.shutdown()

        // tansu settles an abort a little after EndTxn returns (it writes no markers to the log):
        // once, under CI load, a reader that started at once saw the aborted records. So read
        // with fresh readers until the view is settled, and require that it settles to exactly
        // the committed records; a broker or client that ever delivered them would fail here.
        let seen = try await within(.seconds(30), "read_committed output settles") {
            while true {
                let values = try await readCommitted(output)
                if values == ["committed", "committed", "committed"] { return values }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        #expect(seen == ["committed", "committed", "committed"])
        // Five records (plus, on Apache Kafka, three markers) are in the partition.
        let marks = try await consumer.watermarks(TopicPartition(topic: output, partition: 0))
        #expect(marks.low == 0 && marks.high >= 5)
        try await consumer.close()
    }

    /// Every record a read_committed reader sees in partition 0 of `topic`, read from the start
    /// (assigned, not subscribed, so no group join).
    private func readCommitted(_ topic: String) async throws -> [String] {
        let reader = try Broker.consumer(group: Broker.uniqueTopic("txn-reader")) {
            $0.isolationLevel = .readCommitted
            $0.emitEndOfPartition = true
        }
        try reader.assign([TopicPartitionOffset(topic: topic, partition: 0, offset: TopicPartitionOffset.beginning)])
        var values: [String] = []
        for try await event in reader.events {
            if case .record(let record) = event { values.append(String(decoding: record.value, as: UTF8.self)) }
            if case .endOfPartition = event { break }
        }
        try await reader.close()
        return values
    }

    @Test func transactionalCallsOnAPlainProducerSayWhatToSet() async throws {
        let producer = try Broker.producer()
        #expect {
            try producer.beginTransaction()
        } throws: { error in
            "\(error)".contains("transactionalID")
        }
        await producer.shutdown()
    }
}
