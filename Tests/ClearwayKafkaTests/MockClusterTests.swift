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

        var consumerConfiguration = KafkaConsumerConfiguration(
            groupID: "mock-reader", bootstrapServers: cluster.bootstrapServers)
        consumerConfiguration.emitEndOfPartition = true
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: Broker.logger)
        try consumer.assign([
            TopicPartitionOffset(topic: "orders", partition: 0, offset: TopicPartitionOffset.beginning)
        ])
        let values = try await within(.seconds(30), "records from the mock cluster") {
            var values: [String] = []
            for try await event in consumer.events {
                if case .record(let record) = event { values.append(String(decoding: record.value, as: UTF8.self)) }
                if case .endOfPartition = event, values.count >= 100 { break }
            }
            return values
        }
        // Every record once, in order: the retries neither duplicated nor reordered anything.
        #expect(values == (0..<100).map(String.init))
        try await consumer.close()
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
        await producer.shutdown()

        var consumerConfiguration = KafkaConsumerConfiguration(
            groupID: "commit-retry-reader", bootstrapServers: cluster.bootstrapServers)
        consumerConfiguration.emitEndOfPartition = true
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: Broker.logger)
        try consumer.assign([
            TopicPartitionOffset(topic: "decisions", partition: 0, offset: TopicPartitionOffset.beginning)
        ])
        let values = try await within(.seconds(30), "the committed record") {
            var values: [String] = []
            for try await event in consumer.events {
                if case .record(let record) = event { values.append(String(decoding: record.value, as: UTF8.self)) }
                if case .endOfPartition = event, !values.isEmpty { break }
            }
            return values
        }
        #expect(values == ["decided"])
        try await consumer.close()
    }
}
