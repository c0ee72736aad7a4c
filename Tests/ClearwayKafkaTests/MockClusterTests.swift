import ClearwayKafka
import ClearwayTestSupport
import Foundation
import Testing

/// Broker faults through librdkafka's in-process mock cluster.
struct MockClusterTests {
    @Test func idempotentProducerSurvivesInjectedProduceErrorsAndALeaderChange() async throws {
        let cluster = try KafkaMockCluster(brokers: 3, logger: Broker.logger)
        try cluster.createTopic("orders", partitions: 1, replicationFactor: 3)
        var configuration = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        configuration.linger = .milliseconds(1)
        let producer = try KafkaProducer(configuration: configuration, logger: Broker.logger)

        cluster.pushRequestErrors(.produce, [.notLeaderForPartition, .requestTimedOut, .notEnoughReplicas])
        for index in 0..<100 {
            if index == 50 { try cluster.setPartitionLeader(topic: "orders", partition: 0, broker: 2) }
            try await producer.send(ProducerRecord(topic: "orders", key: "k", value: Data("\(index)".utf8)))
        }
        try await producer.flush(timeout: .seconds(30))
        await producer.shutdown()

        let values = try await readValues(of: "orders", from: cluster, atLeast: 100)
        // Every record once, in order: the retries neither duplicated nor reordered anything.
        #expect(values == (0..<100).map(String.init))
    }

    @Test func aTransactionCommitThatTimesOutIsWaitedForAgainAndLands() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: Broker.logger)
        try cluster.createTopic("decisions", partitions: 1)
        var configuration = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        configuration.transactionalID = "commit-retry"
        let producer = try KafkaProducer(configuration: configuration, logger: Broker.logger)
        try await producer.initTransactions()
        try producer.beginTransaction()
        try await producer.send(ProducerRecord(topic: "decisions", key: "k", value: Data("decided".utf8)))

        // Every response now takes 600 ms: the flush and EndTxn cannot finish in a 250 ms call.
        try cluster.setRoundTripTime(.milliseconds(600), broker: 1)
        await #expect(throws: KafkaError.self) {
            try await producer.commitTransaction(timeout: .milliseconds(250))
        }
        // Called again, it waits for the commit under way, which lands.
        try await producer.commitTransaction(timeout: .milliseconds(250), attempts: 40)
        try cluster.setRoundTripTime(.zero, broker: 1)
        // The commit ended: the producer takes the next transaction (it refuses one while a
        // commit is under way). The mock cluster shows open transactions' records to
        // read_committed readers too, so reading the record back alone would not tell.
        try producer.beginTransaction()
        try await producer.commitTransaction()
        await producer.shutdown()

        #expect(try await readValues(of: "decisions", from: cluster, atLeast: 1) == ["decided"])
    }

    /// A broker down while a worker aborts (it restarts, say): the abort times out, and called
    /// again it resumes and ends once the broker is back, where one call alone would have
    /// stopped the worker (seen in the chaos run).
    @Test func aTransactionAbortThatTimesOutIsCalledAgainAndEnds() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: Broker.logger)
        try cluster.createTopic("decisions", partitions: 1)
        var configuration = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        configuration.transactionalID = "abort-retry"
        let producer = try KafkaProducer(configuration: configuration, logger: Broker.logger)
        try await producer.initTransactions()
        try producer.beginTransaction()
        try await producer.send(ProducerRecord(topic: "decisions", key: "k", value: Data("undone".utf8)))
        // Flushed: the partition is in the transaction at the broker, so the abort needs it.
        try await producer.flush(timeout: .seconds(10))

        try cluster.setBroker(1, up: false)
        await #expect(throws: KafkaError.self) {
            try await producer.abortTransaction(timeout: .milliseconds(300))
        }
        let back = Task {
            try await Task.sleep(for: .seconds(1))
            try cluster.setBroker(1, up: true)
        }
        try await producer.abortTransaction(timeout: .milliseconds(300), attempts: 40)
        try await back.value
        // The abort ended: the producer takes the next transaction, which commits.
        try producer.beginTransaction()
        try await producer.send(ProducerRecord(topic: "decisions", key: "k", value: Data("done".utf8)))
        try await producer.commitTransaction()
        await producer.shutdown()
    }

    /// The values of partition 0 of a mock-cluster topic, read from the beginning (`read_committed`)
    /// up to its end once at least `count` have come.
    private func readValues(of topic: String, from cluster: KafkaMockCluster, atLeast count: Int) async throws
        -> [String]
    {
        var configuration = KafkaConsumerConfiguration(
            groupID: "mock-reader", bootstrapServers: cluster.bootstrapServers)
        configuration.emitEndOfPartition = true
        let consumer = try KafkaConsumer(configuration: configuration, logger: Broker.logger)
        try consumer.assign([TopicPartitionOffset(topic: topic, partition: 0, offset: TopicPartitionOffset.beginning)])
        let values = try await within(.seconds(30), "\(count) record(s) of \(topic) from the mock cluster") {
            var values: [String] = []
            for try await event in consumer.events {
                if case .record(let record) = event { values.append(String(decoding: record.value, as: UTF8.self)) }
                if case .endOfPartition = event, values.count >= count { break }
            }
            return values
        }
        try await consumer.close()
        return values
    }
}
