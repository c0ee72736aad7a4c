import CRdKafka
import Logging

/// librdkafka's in-process mock cluster (`rdkafka_mock.h`), for tests that need broker faults:
/// injected request errors, leader changes, brokers going down. Point clients at
/// `bootstrapServers`.
public final class KafkaMockCluster: Sendable {
    /// The bootstrap list of the mock brokers.
    public let bootstrapServers: [String]
    private let owner: RDKafkaClient
    private let cluster: MockHandle

    /// Kafka protocol request kinds (`ApiKey`s) errors can be injected into.
    public struct APIKey: Sendable, Hashable {
        let rawValue: Int16
        public static let produce = APIKey(rawValue: 0)
        public static let fetch = APIKey(rawValue: 1)
        public static let metadata = APIKey(rawValue: 3)
        public static let offsetCommit = APIKey(rawValue: 8)
        public static let findCoordinator = APIKey(rawValue: 10)
        public static let joinGroup = APIKey(rawValue: 11)
        public static let heartbeat = APIKey(rawValue: 12)
        public static let syncGroup = APIKey(rawValue: 14)
        public static let initProducerID = APIKey(rawValue: 22)
        public static let addPartitionsToTransaction = APIKey(rawValue: 24)
        public static let endTransaction = APIKey(rawValue: 26)
    }

    /// Kafka protocol error codes to inject.
    public struct ErrorCode: Sendable, Hashable {
        let rawValue: Int32
        public static let leaderNotAvailable = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE.rawValue)
        public static let notLeaderForPartition = ErrorCode(
            rawValue: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue)
        public static let requestTimedOut = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue)
        public static let notEnoughReplicas = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue)
        public static let notCoordinator = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_COORDINATOR.rawValue)
        public static let coordinatorNotAvailable = ErrorCode(
            rawValue: RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE.rawValue)
        /// Not retriable: the records of a produce request that gets it fail delivery.
        public static let messageSizeTooLarge = ErrorCode(rawValue: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue)
    }

    /// Starts a mock cluster with this many brokers.
    public init(brokers: Int = 3, logger: Logger) throws {
        owner = try RDKafkaClient(type: RD_KAFKA_PRODUCER, properties: [:], context: ClientContext(logger: logger))
        guard let cluster = rd_kafka_mock_cluster_new(owner.handle, Int32(brokers)) else {
            throw KafkaError(code: .librdkafka, message: "librdkafka could not start a mock cluster")
        }
        self.cluster = MockHandle(cluster)
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster)).split(separator: ",").map(
            String.init)
    }

    /// Creates a topic on the mock cluster.
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws {
        let err = rd_kafka_mock_topic_create(cluster.pointer, name, partitions, replicationFactor)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "mock topic \(name)") }
    }

    /// Makes the next requests of this kind fail with these errors, one per request, in order.
    public func pushRequestErrors(_ apiKey: APIKey, _ errors: [ErrorCode]) {
        var codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        rd_kafka_mock_push_request_errors_array(cluster.pointer, apiKey.rawValue, codes.count, &codes)
    }

    /// Moves a partition's leadership to another broker (ids start at 1).
    public func setPartitionLeader(topic: String, partition: Int32, broker: Int32) throws {
        let err = rd_kafka_mock_partition_set_leader(cluster.pointer, topic, partition, broker)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "mock leader") }
    }

    /// Delays every response of a broker by `roundTrip` (`.zero` for none).
    public func setRoundTripTime(_ roundTrip: Duration, broker: Int32) throws {
        let err = rd_kafka_mock_broker_set_rtt(cluster.pointer, broker, Int32(roundTrip.milliseconds))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "mock broker \(broker)") }
    }

    /// Takes a broker down (its connections close) or brings it back.
    public func setBroker(_ broker: Int32, up: Bool) throws {
        let err =
            up
            ? rd_kafka_mock_broker_set_up(cluster.pointer, broker)
            : rd_kafka_mock_broker_set_down(cluster.pointer, broker)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "mock broker \(broker)") }
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster.pointer)  // before `owner`'s handle goes
    }
}

/// The mock cluster pointer. `@unchecked Sendable`: never reassigned, and librdkafka's mock
/// functions hand each call to the cluster's own thread.
private struct MockHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}
