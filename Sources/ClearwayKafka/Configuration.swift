import Foundation

/// Settings for a `KafkaProducer`. Every field has a documented default; `properties` passes any
/// other librdkafka property through (SASL, SSL and the rest for a real cluster) and wins over the
/// typed fields.
public struct KafkaProducerConfiguration: Sendable {
    /// `bootstrap.servers`. Default: `["127.0.0.1:9092"]`.
    public var bootstrapServers: [String]
    /// `client.id`. Default: `"clearway"`.
    public var clientID = "clearway"
    /// `enable.idempotence`: no duplicates or reordering from retries. Default: `true`.
    public var enableIdempotence = true
    /// `acks`. Default: `.all` (required by idempotence).
    public var acks: Acks = .all
    /// `linger.ms`: how long to wait to fill a batch. Default: 5 ms.
    public var linger: Duration = .milliseconds(5)
    /// `compression.type`. Default: `.lz4`.
    public var compression: Compression = .lz4
    /// `message.timeout.ms`: how long a record may wait for delivery before it fails. Default: 30 s.
    public var messageTimeout: Duration = .seconds(30)
    /// `transactional.id`; set it to use the transactional API. Default: `nil`.
    public var transactionalID: String?
    /// `transaction.timeout.ms`. Default: 60 s.
    public var transactionTimeout: Duration = .seconds(60)
    /// Publish every delivery report on `KafkaProducer.deliveryReports`. Default: `false`
    /// (reports are still awaitable per record through `sendAndWait`).
    public var deliveryReportStream = false
    /// `statistics.interval.ms`; `nil` turns statistics off. Default: `nil`.
    public var statisticsInterval: Duration?
    /// `enable.metrics.push` (KIP-714 client metrics). Default: `false`: where the broker offers
    /// it, librdkafka otherwise waits up to a second at shutdown for the last push.
    public var pushClientMetrics = false
    /// Any librdkafka property, passed through as given. Default: empty.
    public var properties: [String: String] = [:]

    /// `acks` values.
    public enum Acks: String, Sendable {
        /// Every in-sync replica.
        case all = "all"
        /// The leader only.
        case leader = "1"
        /// No acknowledgement.
        case none = "0"
    }

    /// `compression.type` values.
    public enum Compression: String, Sendable {
        case none, gzip, snappy, lz4, zstd
    }

    /// Makes a configuration for these brokers.
    public init(bootstrapServers: [String] = ["127.0.0.1:9092"]) {
        self.bootstrapServers = bootstrapServers
    }

    var librdkafkaProperties: [String: String] {
        var result: [String: String] = [
            "bootstrap.servers": bootstrapServers.joined(separator: ","),
            "client.id": clientID,
            "enable.idempotence": String(enableIdempotence),
            "acks": acks.rawValue,
            "linger.ms": String(linger.milliseconds),
            "compression.type": compression.rawValue,
            "message.timeout.ms": String(messageTimeout.milliseconds),
            "enable.metrics.push": String(pushClientMetrics),
        ]
        if let transactionalID {
            result["transactional.id"] = transactionalID
            result["transaction.timeout.ms"] = String(transactionTimeout.milliseconds)
        }
        if let statisticsInterval { result["statistics.interval.ms"] = String(statisticsInterval.milliseconds) }
        result.merge(properties) { _, given in given }
        return result
    }
}

/// Settings for a `KafkaConsumer` in a consumer group. Defaults suit exactly-once workers: offsets
/// are stored and committed only when the application says so, and only committed transactions
/// are read.
public struct KafkaConsumerConfiguration: Sendable {
    /// `bootstrap.servers`. Default: `["127.0.0.1:9092"]`.
    public var bootstrapServers: [String]
    /// `group.id`.
    public var groupID: String
    /// `group.instance.id`: static membership, so a restart within the session timeout does not
    /// rebalance. Default: `nil`.
    public var groupInstanceID: String?
    /// `client.id`. Default: `"clearway"`.
    public var clientID = "clearway"
    /// `auto.offset.reset`: where to start without a committed offset. Default: `.earliest`.
    public var autoOffsetReset: OffsetReset = .earliest
    /// `isolation.level`. Default: `.readCommitted`.
    public var isolationLevel: IsolationLevel = .readCommitted
    /// `enable.auto.commit`: commit *stored* offsets in the background. Default: `false`.
    public var enableAutoCommit = false
    /// `auto.commit.interval.ms`. Default: 5 s.
    public var autoCommitInterval: Duration = .seconds(5)
    /// `enable.auto.offset.store`: store each record's offset as it is handed out. Default: `false`
    /// (store with `KafkaConsumer.store` once a record's work is done).
    public var storeOffsetsAutomatically = false
    /// `session.timeout.ms`. Default: 45 s.
    public var sessionTimeout: Duration = .seconds(45)
    /// `max.poll.interval.ms`. Default: 300 s.
    public var maxPollInterval: Duration = .seconds(300)
    /// `partition.assignment.strategy`. Default: `.cooperativeSticky`.
    public var assignmentStrategy: AssignmentStrategy = .cooperativeSticky
    /// `statistics.interval.ms`, for `KafkaConsumer.statistics` (consumer lag). Default: `nil` (off).
    public var statisticsInterval: Duration?
    /// `enable.partition.eof`: emit `.endOfPartition` events when a partition is caught up.
    /// Default: `false`.
    public var emitEndOfPartition = false
    /// How long a revoke waits for the application to acknowledge it (commit its work) before the
    /// partitions are released anyway. Default: 30 s.
    public var revokeTimeout: Duration = .seconds(30)
    /// `fetch.queue.backoff.ms`: how long fetching pauses when the local queue is full. librdkafka's
    /// default of 1 s stalls a high-level consumer, whose one queue fills whenever the application
    /// briefly reads slower than the network delivers. Default: 10 ms.
    public var fetchQueueBackoff: Duration = .milliseconds(10)
    /// The most records one poll hands out. Default: 1,000.
    public var pollBatchSize = 1000
    /// `enable.metrics.push` (KIP-714 client metrics). Default: `false`: where the broker offers
    /// it, librdkafka otherwise waits up to a second at shutdown for the last push.
    public var pushClientMetrics = false

    /// Any librdkafka property, passed through as given. Default: empty.
    public var properties: [String: String] = [:]

    /// `auto.offset.reset` values.
    public enum OffsetReset: String, Sendable {
        case earliest, latest
        /// Fail with an error instead of guessing.
        case error
    }

    /// `isolation.level` values.
    public enum IsolationLevel: String, Sendable {
        case readCommitted = "read_committed"
        case readUncommitted = "read_uncommitted"
    }

    /// `partition.assignment.strategy` values.
    public enum AssignmentStrategy: String, Sendable {
        case cooperativeSticky = "cooperative-sticky"
        case range
        case roundRobin = "roundrobin"
    }

    /// Makes a configuration for this group on these brokers.
    public init(groupID: String, bootstrapServers: [String] = ["127.0.0.1:9092"]) {
        self.groupID = groupID
        self.bootstrapServers = bootstrapServers
    }

    var librdkafkaProperties: [String: String] {
        var result: [String: String] = [
            "bootstrap.servers": bootstrapServers.joined(separator: ","),
            "group.id": groupID,
            "client.id": clientID,
            "auto.offset.reset": autoOffsetReset.rawValue,
            "isolation.level": isolationLevel.rawValue,
            "enable.auto.commit": String(enableAutoCommit),
            "auto.commit.interval.ms": String(autoCommitInterval.milliseconds),
            "enable.auto.offset.store": String(storeOffsetsAutomatically),
            "session.timeout.ms": String(sessionTimeout.milliseconds),
            "max.poll.interval.ms": String(maxPollInterval.milliseconds),
            "partition.assignment.strategy": assignmentStrategy.rawValue,
            "enable.partition.eof": String(emitEndOfPartition),
            "fetch.queue.backoff.ms": String(fetchQueueBackoff.milliseconds),
            "enable.metrics.push": String(pushClientMetrics),
        ]
        if let groupInstanceID { result["group.instance.id"] = groupInstanceID }
        if let statisticsInterval { result["statistics.interval.ms"] = String(statisticsInterval.milliseconds) }
        result.merge(properties) { _, given in given }
        return result
    }
}

/// Settings for a `KafkaAdminClient`.
public struct KafkaAdminConfiguration: Sendable {
    /// `bootstrap.servers`. Default: `["127.0.0.1:9092"]`.
    public var bootstrapServers: [String]
    /// `client.id`. Default: `"clearway-admin"`.
    public var clientID = "clearway-admin"
    /// The bound on each admin request. Default: 15 s.
    public var requestTimeout: Duration = .seconds(15)
    /// `enable.metrics.push` (KIP-714 client metrics). Default: `false`: where the broker offers
    /// it, librdkafka otherwise waits up to a second at shutdown for the last push.
    public var pushClientMetrics = false

    /// Any librdkafka property, passed through as given. Default: empty.
    public var properties: [String: String] = [:]

    /// Makes a configuration for these brokers.
    public init(bootstrapServers: [String] = ["127.0.0.1:9092"]) {
        self.bootstrapServers = bootstrapServers
    }

    var librdkafkaProperties: [String: String] {
        var result = [
            "bootstrap.servers": bootstrapServers.joined(separator: ","), "client.id": clientID,
            "enable.metrics.push": String(pushClientMetrics),
        ]
        result.merge(properties) { _, given in given }
        return result
    }
}

/// librdkafka properties from `CLEARWAY_KAFKA_<PROPERTY>` environment variables: the name after
/// the prefix, lower-cased, with `_` read as `.` (`CLEARWAY_KAFKA_SASL_MECHANISM=PLAIN` gives
/// `sasl.mechanism=PLAIN`).
public func kafkaProperties(fromEnvironment environment: [String: String]) -> [String: String] {
    let prefix = "CLEARWAY_KAFKA_"
    var result: [String: String] = [:]
    for (name, value) in environment where name.hasPrefix(prefix) && name.count > prefix.count {
        let property = name.dropFirst(prefix.count).lowercased().replacingOccurrences(of: "_", with: ".")
        result[property] = value
    }
    return result
}

extension Duration {
    /// Whole milliseconds, rounded down; what librdkafka's `*.ms` properties take.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
