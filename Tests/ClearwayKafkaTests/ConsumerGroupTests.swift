import ClearwayKafka
import ClearwayTestSupport
import Foundation
import Synchronization
import Testing

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct ConsumerGroupTests {
    /// Produces `count` records spread over `partitions` partitions, value = "<prefix>-<n>".
    private func produce(_ topic: String, count: Int, partitions: Int32, prefix: String) async throws {
        let producer = try Broker.producer()
        for index in 0..<count {
            try await producer.send(
                ProducerRecord(
                    topic: topic, partition: Int32(index) % partitions, value: Data("\(prefix)-\(index)".utf8)))
        }
        try await producer.flush()
        await producer.shutdown()
    }

    @Test func membersSplitThePartitionsAndTheRevokeComesBeforeThePartitionsGo() async throws {
        let topic = Broker.uniqueTopic("split")
        let group = Broker.uniqueTopic("split-group")
        try await Broker.createTopic(topic, partitions: 4)
        try await produce(topic, count: 20, partitions: 4, prefix: "a")

        // What the first member sees while a revoke is held: its assignment and what it committed.
        let heldAssignment = Locked<[TopicPartition]>([])
        let first = ConsumerProbe(try Broker.consumer(group: group)) { consumer, revocation in
            heldAssignment.withLock { $0 = (try? consumer.assignment()) ?? [] }
            try await consumer.commit()
        }
        try first.consumer.subscribe(topics: [topic])
        try await first.wait("first member reads all 20") { $0.records.count == 20 }
        #expect(try first.consumer.assignment().count == 4)

        let second = ConsumerProbe(try Broker.consumer(group: group)) { consumer, _ in try await consumer.commit() }
        try second.consumer.subscribe(topics: [topic])
        try await first.wait("revoke on the first member") { !$0.revoked.isEmpty }
        // A cooperative join can first hand the newcomer an empty assignment; wait for partitions.
        try await second.wait("assignment of the second member") { !$0.assigned.joined().isEmpty }

        let revoked = first.seen.withLock { $0.revoked[0].partitions }
        #expect(!revoked.isEmpty && revoked.count < 4)
        // The revoked partitions were still assigned while the revoke was held …
        #expect(Set(revoked).isSubset(of: heldAssignment.withLock { $0 }))
        // … and the offsets committed then are the group's.
        let committed = try await first.consumer.committed(revoked)
        #expect(committed.allSatisfy { $0.offset == 5 })

        // The members split the partitions, with nothing in common.
        let firstAssignment = Set(try first.consumer.assignment())
        let secondAssignment = Set(second.seen.withLock { $0.assigned.flatMap { $0 } })
        #expect(firstAssignment.isDisjoint(with: secondAssignment))
        #expect(firstAssignment.union(secondAssignment).count == 4)
        #expect(secondAssignment == Set(revoked))

        // New records go to whichever member owns their partition, exactly once between them.
        try await produce(topic, count: 20, partitions: 4, prefix: "b")
        try await first.wait("first member's share") { seen in
            seen.records.filter { $0.value.starts(with: Data("b-".utf8)) }.count == firstAssignment.count * 5
        }
        try await second.wait("second member's share") { $0.records.count == secondAssignment.count * 5 }
        let secondRecords = second.seen.withLock { $0.records }
        #expect(secondRecords.allSatisfy { $0.value.starts(with: Data("b-".utf8)) })  // resumed at the commit
        #expect(Set(secondRecords.map { TopicPartition(topic: $0.topic, partition: $0.partition) }) == secondAssignment)

        await first.stop()
        await second.stop()
        try await first.consumer.close()
        try await second.consumer.close()
    }

    @Test func restartedConsumerResumesAtTheCommittedOffset() async throws {
        let topic = Broker.uniqueTopic("resume")
        let group = Broker.uniqueTopic("resume-group")
        try await Broker.createTopic(topic, partitions: 2)
        try await produce(topic, count: 10, partitions: 2, prefix: "a")

        let consumer = try Broker.consumer(group: group)
        try consumer.subscribe(topics: [topic])
        let first = try await collect(consumer, count: 10)
        #expect(first.count == 10)
        try await consumer.commit()
        try await consumer.close()

        try await produce(topic, count: 6, partitions: 2, prefix: "b")
        let restarted = try Broker.consumer(group: group)
        try restarted.subscribe(topics: [topic])
        let second = try await collect(restarted, count: 6)
        #expect(second.allSatisfy { $0.value.starts(with: Data("b-".utf8)) })
        #expect(Set(second.map(\.offset)) == [5, 6, 7])
        let committed = try await restarted.committed([
            TopicPartition(topic: topic, partition: 0), TopicPartition(topic: topic, partition: 1),
        ])
        #expect(committed.map(\.offset) == [5, 5])
        try await restarted.close()
    }
}
