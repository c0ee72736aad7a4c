import ClearwayKafka
import ClearwayTestSupport
import Foundation
import Testing

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct ProducerConsumerTests {
    @Test func aTombstoneIsANullValueAndAnEmptyValueIsNot() async throws {
        let topic = Broker.uniqueTopic("tombstone")
        try await Broker.createTopic(topic, partitions: 1)
        let producer = try Broker.producer()
        try await producer.sendAndWait(.tombstone(topic: topic, key: Data("gone".utf8)))
        try await producer.sendAndWait(ProducerRecord(topic: topic, key: "empty", value: Data()))
        await producer.shutdown()
        let consumer = try Broker.consumer(group: Broker.uniqueTopic("tombstone-group"))
        try consumer.assign([TopicPartitionOffset(topic: topic, partition: 0, offset: TopicPartitionOffset.beginning)])
        let records = try await collect(consumer, count: 2)
        #expect(records.map(\.keyString) == ["gone", "empty"])
        #expect(records.map(\.isTombstone) == [true, false])
        #expect(records.allSatisfy { $0.value.isEmpty })
        try await consumer.close()
    }

    @Test func recordsRoundTripWithKeysAndHeaders() async throws {
        let topic = Broker.uniqueTopic("roundtrip")
        try await Broker.createTopic(topic, partitions: 3)
        let producer = try Broker.producer()
        var reports: [DeliveryReport] = []
        for index in 0..<6 {
            let record = ProducerRecord(
                topic: topic, key: "order-\(index % 2)", value: Data(#"{"n":\#(index)}"#.utf8),
                headers: [
                    KafkaHeader(name: "ce_id", string: "id-\(index)"),
                    KafkaHeader(name: "traceparent", string: "00-\(index)"),
                    KafkaHeader(name: "empty", value: nil),
                ])
            reports.append(try await producer.sendAndWait(record))
        }
        await producer.shutdown()
        #expect(reports.allSatisfy { $0.error == nil && $0.offset >= 0 && $0.topic == topic })

        let consumer = try Broker.consumer(group: Broker.uniqueTopic("roundtrip-group")) {
            $0.statisticsInterval = .milliseconds(200)
        }
        try consumer.subscribe(topics: [topic])
        let records = try await collect(consumer, count: 6)
        try await consumer.commit()

        let byID = Dictionary(uniqueKeysWithValues: records.map { ($0.headers.first(named: "ce_id")!, $0) })
        for index in 0..<6 {
            let record = try #require(byID["id-\(index)"])
            #expect(record.keyString == "order-\(index % 2)")
            #expect(String(decoding: record.value, as: UTF8.self) == #"{"n":\#(index)}"#)
            #expect(record.headers.map(\.name) == ["ce_id", "traceparent", "empty"])
            #expect(record.headers.first(named: "traceparent") == "00-\(index)")
            #expect(record.headers[2].value == nil)
            #expect(record.timestamp != nil)
        }
        // Equal keys land in one partition, so their order is kept.
        for key in ["order-0", "order-1"] {
            let sameKey = records.filter { $0.keyString == key }
            #expect(Set(sameKey.map(\.partition)).count == 1)
            #expect(sameKey.map(\.offset) == sameKey.map(\.offset).sorted())
        }
        // Statistics report consumer lag for the assigned partitions.
        // Statistics are served by the poll, so keep reading while waiting for them.
        let reader = Task { for try await _ in consumer.events {} }
        try await within(.seconds(10), "statistics") {
            while consumer.statistics?.consumerLag.isEmpty ?? true { try await Task.sleep(for: .milliseconds(100)) }
        }
        reader.cancel()
        _ = await reader.result
        #expect(consumer.statistics!.consumerLag.keys.allSatisfy { $0.topic == topic })
        try await consumer.close()
    }

    @Test func deliveryReportsArriveOnTheStream() async throws {
        let topic = Broker.uniqueTopic("reports")
        try await Broker.createTopic(topic, partitions: 1)
        let producer = try Broker.producer { $0.deliveryReportStream = true }
        var ids: Set<UInt64> = []
        for index in 0..<50 {
            ids.insert(try await producer.send(ProducerRecord(topic: topic, key: nil, value: Data("\(index)".utf8))))
        }
        try await producer.flush()
        var reported: [DeliveryReport] = []
        for await report in producer.deliveryReports {
            reported.append(report)
            if reported.count == 50 { break }
        }
        #expect(Set(reported.map(\.id)) == ids)
        #expect(reported.map(\.offset) == Array(0..<50))
        await producer.shutdown()
    }

    @Test func pausedPartitionIsNotReadUntilResumedAndSeekRereads() async throws {
        let producer = try Broker.producer()
        let topic = try await twoPartitionTopic("pause", records: 10, producer: producer)

        let consumer = try Broker.consumer(group: Broker.uniqueTopic("pause-group"))
        try consumer.subscribe(topics: [topic])
        let first = try await collect(consumer, count: 10)
        #expect(first.count == 10)
        let zero = TopicPartition(topic: topic, partition: 0)
        let one = TopicPartition(topic: topic, partition: 1)
        #expect(try consumer.positions([zero, one]).map(\.offset) == [5, 5])

        try consumer.pause([zero])
        for index in 10..<20 {
            try await producer.send(
                ProducerRecord(topic: topic, partition: Int32(index % 2), value: Data("\(index)".utf8)))
        }
        try await producer.flush()
        let whilePaused = try await collect(consumer, count: 5)
        #expect(whilePaused.allSatisfy { $0.partition == 1 })
        try consumer.resume([zero])
        let afterResume = try await collect(consumer, count: 5)
        #expect(afterResume.allSatisfy { $0.partition == 0 })

        try await consumer.seek([TopicPartitionOffset(topic: topic, partition: 1, offset: 2)])
        let reread = try await collect(consumer, count: 8)
        #expect(reread.map(\.offset) == Array(2..<10))
        await producer.shutdown()
        try await consumer.close()
    }

    /// librdkafka fetches ahead of the application; after a seek, nothing fetched from before the
    /// new position may be handed out (the seek waits for the fetcher), and what was fetched from
    /// the other partitions must still come.
    @Test func aSeekRestartsItsPartitionAtTheNewPositionAndLosesNothingElse() async throws {
        let producer = try Broker.producer()
        let topic = try await twoPartitionTopic("seek", records: 300, producer: producer)
        await producer.shutdown()
        let consumer = try Broker.consumer(group: Broker.uniqueTopic("seek-group")) { $0.pollBatchSize = 100 }
        try consumer.assign(
            (0..<2).map { TopicPartitionOffset(topic: topic, partition: $0, offset: TopicPartitionOffset.beginning) })
        // Both partitions fetched into librdkafka's queue before the first poll.
        try await Task.sleep(for: .seconds(1))
        let before = try await within(.seconds(30), "the first records") {
            var before: [ConsumerRecord] = []
            while before.isEmpty {
                try Task.checkCancellation()
                guard let events = try await consumer.poll() else { break }
                for case .record(let record) in events { before.append(record) }
            }
            return before
        }
        // The first poll took up to 100 records; go back on the partition of the first while the
        // rest of both partitions is fetched and queued.
        try await Task.sleep(for: .milliseconds(500))
        let sought = before[0].partition
        try await consumer.seek([TopicPartitionOffset(topic: topic, partition: sought, offset: 10)])
        let restOfOther = 150 - before.filter { $0.partition != sought }.count
        let after = try await within(.seconds(30), "the records after the seek") {
            var after: [ConsumerRecord] = []
            while after.filter({ $0.partition == sought }).count < 140
                || after.filter({ $0.partition != sought }).count < restOfOther
            {
                try Task.checkCancellation()
                guard let events = try await consumer.poll() else { break }
                for case .record(let record) in events { after.append(record) }
            }
            return after
        }
        #expect(after.filter { $0.partition == sought }.map(\.offset) == Array(10..<150))
        let other = (before + after).filter { $0.partition != sought }.map(\.offset)
        #expect(other == Array(0..<150))
        try await consumer.close()
    }

    /// A new topic of two partitions with `records` records, their values `"0"`, `"1"`, …,
    /// alternating between the partitions.
    private func twoPartitionTopic(_ base: String, records: Int, producer: KafkaProducer) async throws -> String {
        let topic = Broker.uniqueTopic(base)
        try await Broker.createTopic(topic, partitions: 2)
        for index in 0..<records {
            try await producer.send(
                ProducerRecord(topic: topic, partition: Int32(index % 2), value: Data("\(index)".utf8)))
        }
        try await producer.flush()
        return topic
    }
}
