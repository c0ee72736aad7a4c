import ClearwayKafka

/// Every Kafka client a worker makes, configured in one place from its configuration: the group
/// consumer and the producer of the processing loop, the reader that restores state from a
/// changelog, the readers of reference tables, and the administration client. Each takes the
/// deployment's `kafkaProperties` (`CLEARWAY_KAFKA_*`: TLS, SASL and the rest) last, so they win,
/// and a client id that names the worker, its instance and the client's part in it.
struct ClientSettings: Sendable {
    let configuration: WorkerConfiguration
    /// The worker's name; `nil` for tools that act for a whole deployment (`clearway topics`).
    let worker: String?

    init(configuration: WorkerConfiguration, worker: String?) {
        self.configuration = configuration
        self.worker = worker
    }

    private func clientID(_ role: String? = nil) -> String {
        let base = worker.map { "\($0)-\(configuration.instanceID)" } ?? "clearway-\(configuration.instanceID)"
        return role.map { "\(base)-\($0)" } ?? base
    }

    /// The processing loop's group consumer: the worker's group, static membership when asked
    /// for, and a bounded prefetch.
    func processingConsumer() -> KafkaConsumerConfiguration {
        let worker = worker ?? "clearway"
        var settings = KafkaConsumerConfiguration(
            groupID: configuration.groupID(worker: worker), bootstrapServers: configuration.bootstrapServers)
        settings.clientID = clientID()
        if configuration.staticMembership {
            settings.groupInstanceID = configuration.transactionalID(worker: worker)
        }
        settings.sessionTimeout = configuration.sessionTimeout
        settings.statisticsInterval = .seconds(5)
        settings.revokeTimeout = configuration.shutdownTimeout
        // A bounded prefetch keeps a worker's memory small: librdkafka's default queues 64 MB, and
        // counts fetched batches compressed, so JSON that LZ4 shrinks fivefold takes five times
        // the limit once decompressed. 1 MB still covers tens of milliseconds of records at full
        // speed (scripts/bench runtime: the same rate as 8 MB, peak RSS 109 → 61 MB). librdkafka
        // refuses a `fetch.max.bytes` below `message.max.bytes`, so a larger one raises it.
        let fetchBytes = max(1_048_576, configuration.kafkaProperties["message.max.bytes"].flatMap { Int($0) } ?? 0)
        settings.properties = [
            "queued.max.messages.kbytes": "1024", "fetch.max.bytes": String(fetchBytes),
            "max.partition.fetch.bytes": "262144", "queued.min.messages": "2000",
        ].merging(configuration.kafkaProperties) { _, given in given }
        return settings
    }

    /// The processing loop's producer: transactional (one id per worker instance) for
    /// exactly-once delivery.
    func processingProducer() -> KafkaProducerConfiguration {
        var settings = KafkaProducerConfiguration(bootstrapServers: configuration.bootstrapServers)
        settings.clientID = clientID()
        if configuration.delivery == .exactlyOnce, let worker {
            settings.transactionalID = configuration.transactionalID(worker: worker)
            // Outputs go out as they are made, not 5 ms later: what is still unacknowledged when
            // the batch ends is what its commit waits for (scripts/bench runtime: 55,000 → 75,000
            // records/s at 1,000 per transaction). `CLEARWAY_KAFKA_LINGER_MS` still wins.
            settings.linger = .zero
        }
        settings.properties = configuration.kafkaProperties
        return settings
    }

    /// A reader of a state changelog's partition (assigned, not subscribed: the group is only a
    /// name), to the end of the partition.
    func changelogReader() -> KafkaConsumerConfiguration {
        var settings = KafkaConsumerConfiguration(
            groupID: configuration.groupID(worker: worker ?? "clearway") + "-restore",
            bootstrapServers: configuration.bootstrapServers)
        settings.clientID = clientID("restore")
        settings.emitEndOfPartition = true
        settings.properties = configuration.kafkaProperties
        return settings
    }

    /// A reader of a reference table's topic (every partition assigned, no commits).
    func tableReader() -> KafkaConsumerConfiguration {
        var settings = KafkaConsumerConfiguration(
            groupID: "\(configuration.transactionalID(worker: worker ?? "clearway"))-table",
            bootstrapServers: configuration.bootstrapServers)
        settings.clientID = clientID("table")
        settings.emitEndOfPartition = true
        settings.properties = configuration.kafkaProperties
        return settings
    }

    /// The administration client (topics).
    func admin() -> KafkaAdminConfiguration {
        var settings = KafkaAdminConfiguration(bootstrapServers: configuration.bootstrapServers)
        settings.clientID = clientID("admin")
        settings.properties = configuration.kafkaProperties
        return settings
    }
}
