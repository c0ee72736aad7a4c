import CRdKafka
import Foundation
import Logging

/// A topic to create.
public struct TopicSpecification: Sendable, Hashable {
    /// The topic's name.
    public var name: String
    /// How many partitions it has.
    public var partitions: Int32
    /// How many copies of each partition; -1 takes the broker's default.
    public var replicationFactor: Int16
    /// Topic configs, e.g. `cleanup.policy=compact`, `retention.ms`.
    public var configs: [String: String]

    /// Makes a topic specification.
    public init(name: String, partitions: Int32, replicationFactor: Int16 = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// What the broker said of one topic in a create request.
public enum TopicCreation: Sendable, Equatable {
    /// It was created.
    case created
    /// It was there already (it was not changed).
    case alreadyExists
}

/// A topic as broker metadata describes it.
public struct TopicDescription: Sendable, Hashable {
    /// One partition.
    public struct Partition: Sendable, Hashable {
        /// The partition's number.
        public var id: Int32
        /// The broker leading it, or -1.
        public var leader: Int32
        /// The brokers holding a copy.
        public var replicas: [Int32]
        /// The copies in sync.
        public var inSyncReplicas: [Int32]
    }

    /// The topic's name.
    public var name: String
    /// Its partitions, by number.
    public var partitions: [Partition]
}

/// Topic administration: create, list, describe. Each request is bounded by `requestTimeout`
/// and runs off Swift's cooperative pool.
public final class KafkaAdminClient: Sendable {
    private let client: RDKafkaClient
    private let blocking = BlockingQueue(label: "clearway.kafka.admin")
    private let requestTimeout: Duration

    /// Creates the client; throws `KafkaError.Code.configuration` for a bad property.
    public init(configuration: KafkaAdminConfiguration, logger: Logger) throws {
        client = try RDKafkaClient(
            type: RD_KAFKA_PRODUCER, properties: configuration.librdkafkaProperties,
            context: ClientContext(logger: logger))
        requestTimeout = configuration.requestTimeout
    }

    /// Creates topics; a topic that exists already is reported, not an error. Throws the first
    /// other per-topic failure.
    public func createTopics(_ topics: [TopicSpecification]) async throws -> [String: TopicCreation] {
        let client = self.client
        let timeout = requestTimeout
        return try await blocking.run {
            var newTopics: [OpaquePointer?] = []
            defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
            var errorText = [CChar](repeating: 0, count: 512)
            for topic in topics {
                guard
                    let newTopic = rd_kafka_NewTopic_new(
                        topic.name, topic.partitions, Int32(topic.replicationFactor), &errorText, errorText.count)
                else {
                    throw KafkaError(code: .admin, message: "topic \(topic.name): \(string(fromCBuffer: errorText))")
                }
                newTopics.append(newTopic)
                for (name, value) in topic.configs.sorted(by: { $0.key < $1.key }) {
                    let err = rd_kafka_NewTopic_set_config(newTopic, name, value)
                    guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                        throw KafkaError.result(err, context: "topic \(topic.name) config \(name)=\(value)")
                    }
                }
            }
            return try client.adminRequest(RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout: timeout, what: "create topics") {
                options, queue in
                newTopics.withUnsafeMutableBufferPointer {
                    rd_kafka_CreateTopics(client.handle, $0.baseAddress, $0.count, options, queue)
                }
            } result: { event in
                var count = 0
                let results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count)
                var outcome: [String: TopicCreation] = [:]
                for result in UnsafeBufferPointer(start: results, count: count) {
                    let name = String(cString: rd_kafka_topic_result_name(result))
                    let err = rd_kafka_topic_result_error(result)
                    switch err {
                    case RD_KAFKA_RESP_ERR_NO_ERROR: outcome[name] = .created
                    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: outcome[name] = .alreadyExists
                    default:
                        let detail = rd_kafka_topic_result_error_string(result).map { String(cString: $0) }
                        var error = KafkaError.admin(err, context: "create topic \(name)")
                        if let detail { error.message += " (\(detail))" }
                        throw error
                    }
                }
                return outcome
            }
        }
    }

    /// Deletes topics; one the cluster does not have is not an error.
    public func deleteTopics(_ names: [String]) async throws {
        let client = self.client
        let timeout = requestTimeout
        try await blocking.run {
            var deletions: [OpaquePointer?] = names.map { rd_kafka_DeleteTopic_new($0) }
            defer { deletions.forEach { rd_kafka_DeleteTopic_destroy($0) } }
            try client.adminRequest(RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout: timeout, what: "delete topics") {
                options, queue in
                deletions.withUnsafeMutableBufferPointer {
                    rd_kafka_DeleteTopics(client.handle, $0.baseAddress, $0.count, options, queue)
                }
            } result: { event in
                var count = 0
                let results = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event), &count)
                for result in UnsafeBufferPointer(start: results, count: count) {
                    let err = rd_kafka_topic_result_error(result)
                    guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART else {
                        throw KafkaError.admin(
                            err, context: "delete topic \(String(cString: rd_kafka_topic_result_name(result)))")
                    }
                }
            }
        }
    }

    /// Every topic the cluster has, with its partitions.
    public func listTopics() async throws -> [TopicDescription] {
        let client = self.client
        let timeout = requestTimeout
        return try await blocking.run { try client.metadata(topic: nil, timeout: timeout) }
    }

    /// One topic, or `nil` when the cluster does not have it.
    public func describeTopic(_ name: String) async throws -> TopicDescription? {
        try await listTopics().first { $0.name == name }
    }

    /// A topic's configuration entries as the broker reports them (brokers differ in which keys
    /// they report).
    public func describeConfigs(topic: String) async throws -> [String: String] {
        let client = self.client
        let timeout = requestTimeout
        return try await blocking.run {
            var resource: OpaquePointer? = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic)
            defer { rd_kafka_ConfigResource_destroy(resource) }
            return try client.adminRequest(
                RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout: timeout, what: "describe configs of \(topic)"
            ) {
                options, queue in
                rd_kafka_DescribeConfigs(client.handle, &resource, 1, options, queue)
            } result: { event in
                var count = 0
                let resources = rd_kafka_DescribeConfigs_result_resources(
                    rd_kafka_event_DescribeConfigs_result(event), &count)
                var configs: [String: String] = [:]
                for resource in UnsafeBufferPointer(start: resources, count: count) {
                    let err = rd_kafka_ConfigResource_error(resource)
                    guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                        throw KafkaError.admin(err, context: "describe configs of \(topic)")
                    }
                    var entryCount = 0
                    let entries = rd_kafka_ConfigResource_configs(resource, &entryCount)
                    for entry in UnsafeBufferPointer(start: entries, count: entryCount) {
                        let name = String(cString: rd_kafka_ConfigEntry_name(entry))
                        configs[name] = rd_kafka_ConfigEntry_value(entry).map { String(cString: $0) }
                    }
                }
                return configs
            }
        }
    }
}

extension RDKafkaClient {
    /// Runs one admin request on a private queue and reads its result event (blocking).
    func adminRequest<T>(
        _ operation: rd_kafka_admin_op_t, timeout: Duration, what: String,
        submit: (OpaquePointer?, OpaquePointer?) -> Void, result: (OpaquePointer) throws -> T
    ) throws -> T {
        let options = rd_kafka_AdminOptions_new(handle, operation)
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errorText = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, Int32(timeout.milliseconds), &errorText, errorText.count)
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        submit(options, queue)
        // The request times itself out; the extra second only guards against a lost event.
        guard let event = rd_kafka_queue_poll(queue, Int32(timeout.milliseconds) + 1000) else {
            throw KafkaError(
                code: .timeout, message: explain("\(what): no answer from \(brokersDescription) within \(timeout)"))
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let detail = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
            var error = KafkaError.result(err, context: explain("\(what) on \(brokersDescription): \(detail)"))
            error.code = err == RD_KAFKA_RESP_ERR__TIMED_OUT ? .timeout : .admin
            throw error
        }
        return try result(event)
    }
}
