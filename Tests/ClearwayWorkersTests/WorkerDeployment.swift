import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import ServiceLifecycle
import Testing

/// A worker deployed on the test broker for one test: its own topic prefix and state directory,
/// run in this process.
struct WorkerDeployment {
    let prefix: String
    let stateDirectory = NSTemporaryDirectory() + "clearway-worker-\(UUID().uuidString)"
    let definition: WorkerDefinition
    /// librdkafka properties of the worker's clients (`CLEARWAY_KAFKA_*`).
    var kafkaProperties: [String: String] = [:]
    /// How a worker with an outbox sends it.
    var outbox = OutboxPolicy()

    /// A deployment of its own, or (with `prefix`) another worker beside an existing one.
    init(_ definition: WorkerDefinition, prefix: String? = nil) {
        self.definition = definition
        self.prefix = prefix ?? "w\(UUID().uuidString.prefix(6).lowercased())."
    }

    static let consigneeSecret = "test-secret-of-at-least-16-bytes"

    /// The enricher with the shipped warehouses.
    static func enricher() -> WorkerDeployment {
        WorkerDeployment(
            EnricherHandler.definition(
                warehouses: try! WarehouseDirectory.shipped(), secret: try! ConsigneeKeySecret(text: consigneeSecret)))
    }

    func topic(_ name: String) -> String { prefix + name }

    var configuration: WorkerConfiguration {
        var configuration = WorkerConfiguration(worker: definition.name, httpPort: 0)
        configuration.bootstrapServers = Broker.bootstrapServers
        configuration.topicPrefix = prefix
        configuration.stateDirectory = stateDirectory
        configuration.sessionTimeout = .seconds(6)
        configuration.instanceID = "test"
        configuration.kafkaProperties = kafkaProperties
        configuration.outbox = outbox
        return configuration
    }

    func createTopics() async throws {
        _ = try await TopicAdministration(configuration: configuration, logger: Broker.logger).apply(
            definition.declaredTopics)
    }

    /// Runs the worker (on another state directory: a new host) until its group is shut down.
    func start(stateDirectory: String? = nil) -> (ServiceGroup, Task<Void, any Error>) {
        var configuration = self.configuration
        if let stateDirectory { configuration.stateDirectory = stateDirectory }
        let runtime = WorkerRuntime(definition: definition, configuration: configuration, logger: Broker.logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)],
                logger: Broker.logger))
        return (group, Task { try await group.run() })
    }

    /// Publishes JSON values (nil: a tombstone) with their keys to a topic, in order (to one
    /// partition when given).
    func publish(_ name: String, _ records: [(key: String, value: String?)], partition: Int32? = nil) async throws {
        let producer = try Broker.producer()
        for record in records {
            try await producer.send(
                record.value.map {
                    ProducerRecord(
                        topic: topic(name), partition: partition, key: Data(record.key.utf8), value: Data($0.utf8))
                } ?? .tombstone(topic: topic(name), partition: partition, key: Data(record.key.utf8)))
        }
        try await producer.flush()
        await producer.shutdown()
    }

    /// Publishes values with raw keys (`nil`: a null key) to one partition of a topic, in order.
    func publish(_ name: String, rawKeys records: [(key: Data?, value: String)], partition: Int32) async throws {
        let producer = try Broker.producer()
        for record in records {
            try await producer.send(
                ProducerRecord(
                    topic: topic(name), partition: partition, key: record.key, value: Data(record.value.utf8)))
        }
        try await producer.flush()
        await producer.shutdown()
    }

    /// A read_committed reader of every partition of these topics, from the start.
    func watch(_ names: [String]) async throws -> ConsumerProbe {
        var configuration = KafkaConsumerConfiguration(
            groupID: "watch-\(UUID().uuidString)", bootstrapServers: Broker.bootstrapServers)
        configuration.isolationLevel = .readCommitted
        let consumer = try KafkaConsumer(configuration: configuration, logger: Broker.logger)
        var offsets: [TopicPartitionOffset] = []
        for name in names {
            guard let description = try await consumer.describeTopic(topic(name)) else {
                throw SetupFailure(description: "no topic \(topic(name))")
            }
            offsets += description.partitions.map {
                TopicPartitionOffset(topic: topic(name), partition: $0.id, offset: TopicPartitionOffset.beginning)
            }
        }
        try consumer.assign(offsets)
        return ConsumerProbe(consumer) { _, _ in }
    }
}

extension ConsumerRecord {
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: value)) as? [String: Any] ?? [:] }
    var ceID: String? { headers.first(named: "ce_id") }
}
