import ClearwayKafka
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Runs one worker: consume its inputs, hand each record to its handler, publish the outputs —
/// with exactly-once effect by default (outputs and input offsets in one Kafka transaction), dead
/// letters for records that can never be processed, retries without blocking the poll loop, and
/// a graceful stop on SIGTERM.
public final class WorkerRuntime: Service {
    let definition: WorkerDefinition
    let configuration: WorkerConfiguration
    let logger: Logger
    let health: RuntimeHealth
    let metrics: RuntimeMetrics

    /// Makes the runtime; nothing connects until `run()`.
    public init(
        definition: WorkerDefinition, configuration: WorkerConfiguration, health: RuntimeHealth = RuntimeHealth(),
        logger: Logger
    ) {
        self.definition = definition
        self.configuration = configuration
        self.health = health
        self.logger = logger
        self.metrics = RuntimeMetrics(worker: definition.name)
    }

    /// Consumes until a graceful shutdown (or cancellation), then commits, leaves the group and
    /// returns.
    public func run() async throws {
        try await TopicAdministration(configuration: configuration, logger: logger).requireTopics(
            definition.declaredTopics)
        let loop = try ProcessingLoop(runtime: self)
        try await loop.start()
        try await withGracefulShutdownHandler {
            try await loop.run()
        } onGracefulShutdown: {
            loop.requestStop()
        }
        health.stopped()
    }
}

/// The poll → handle → publish loop; owned by one task.
final class ProcessingLoop: @unchecked Sendable {
    // @unchecked: every mutable field is used only by the task running `run()`; `stopRequested`
    // is the one field another task touches, and it is atomic.
    private let runtime: WorkerRuntime
    private let consumer: KafkaConsumer
    private var producer: KafkaProducer
    private let stopRequested = AtomicFlag()
    private let transactional: Bool
    private let prefix: String

    // Per-batch state.
    private var inTransaction = false
    private var pendingOffsets: [TopicPartition: Int64] = [:]
    private var uncommittedRecords = 0
    private var batchStarted = ContinuousClock.now
    private var retries: [TopicPartition: PendingRetry] = [:]
    private var failuresBeforeBatch: UInt64 = 0

    private struct PendingRetry {
        var offset: Int64
        var attempt: Int
        var resumeAt: ContinuousClock.Instant
    }

    private var logger: Logger { runtime.logger }
    private var configuration: WorkerConfiguration { runtime.configuration }
    private var metrics: RuntimeMetrics { runtime.metrics }

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        let configuration = runtime.configuration
        prefix = configuration.topicPrefix
        transactional = configuration.delivery == .exactlyOnce
        var consumerConfiguration = KafkaConsumerConfiguration(
            groupID: runtime.definition.name, bootstrapServers: configuration.bootstrapServers)
        consumerConfiguration.clientID = "\(runtime.definition.name)-\(configuration.instanceID)"
        if configuration.staticMembership {
            consumerConfiguration.groupInstanceID = "\(runtime.definition.name)-\(configuration.instanceID)"
        }
        consumerConfiguration.sessionTimeout = configuration.sessionTimeout
        consumerConfiguration.statisticsInterval = .seconds(5)
        consumerConfiguration.revokeTimeout = configuration.shutdownTimeout
        // A bounded prefetch keeps a worker's memory small (librdkafka's default queues 64 MB).
        consumerConfiguration.properties = [
            "queued.max.messages.kbytes": "8192", "fetch.max.bytes": "8388608", "queued.min.messages": "2000",
        ].merging(
            configuration.kafkaProperties
        ) { _, given in given }
        consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: runtime.logger)
        producer = try Self.makeProducer(runtime: runtime)
    }

    private static func makeProducer(runtime: WorkerRuntime) throws -> KafkaProducer {
        let configuration = runtime.configuration
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: configuration.bootstrapServers)
        producerConfiguration.clientID = "\(runtime.definition.name)-\(configuration.instanceID)"
        if configuration.delivery == .exactlyOnce {
            producerConfiguration.transactionalID = "\(runtime.definition.name)-\(configuration.instanceID)"
        }
        producerConfiguration.properties = configuration.kafkaProperties
        return try KafkaProducer(configuration: producerConfiguration, logger: runtime.logger)
    }

    func requestStop() { stopRequested.set() }

    func start() async throws {
        if transactional { try await producer.initTransactions() }
        try consumer.subscribe(topics: runtime.definition.inputs.map { prefix + $0.name })
        logger.info(
            "worker started",
            metadata: [
                "worker": "\(runtime.definition.name)", "delivery": "\(configuration.delivery.rawValue)",
                "kafka.properties": "\(configuration.redactedKafkaProperties)",
            ])
    }

    func run() async throws {
        defer { Task { [producer] in await producer.shutdown(timeout: .seconds(1)) } }
        while !stopRequested.isSet && !Task.isCancelled {
            guard let events = try await consumer.poll() else { break }
            runtime.health.pollTurned()
            for event in events {
                try await handle(event)
            }
            try await resumeDueRetries()
            if uncommittedRecords >= configuration.maximumBatch
                || (uncommittedRecords > 0 && ContinuousClock.now - batchStarted >= configuration.commitInterval)
            {
                try await commit()
            }
            updateLag()
        }
        // Graceful stop: finish what is in flight, commit it, leave the group.
        try await commit()
        try await consumer.close()
        await producer.shutdown(timeout: configuration.shutdownTimeout)
        logger.info("worker stopped", metadata: ["worker": "\(runtime.definition.name)"])
    }

    private func handle(_ event: KafkaConsumerEvent) async throws {
        switch event {
        case .record(let record):
            try await process(record)
        case .partitionsAssigned(let partitions):
            metrics.rebalances.increment()
            runtime.health.assigned(partitions)
        case .partitionsRevoked(let revocation):
            metrics.rebalances.increment()
            if revocation.isLost {
                try await abortAndRewind(reason: "assignment lost")
            } else {
                try await commit()
            }
            for partition in revocation.partitions { retries[partition] = nil }
            runtime.health.revoked(revocation.partitions)
            revocation.acknowledge()
        case .endOfPartition:
            break
        case .error(let error):
            logger.warning("consumer error", metadata: ["kafka.error": "\(error)"])
        }
    }

    // MARK: Records

    private func process(_ record: InputRecord) async throws {
        let partition = TopicPartition(topic: record.topic, partition: record.partition)
        if let retry = retries[partition] {
            // Waiting to retry an earlier record of this partition; this one is read again later.
            guard retry.offset == record.offset, ContinuousClock.now >= retry.resumeAt else { return }
        }
        metrics.recordsIn.increment()
        if let timestamp = record.timestamp {
            metrics.endToEndLag.record(Date().timeIntervalSince(timestamp))
        }
        let attempt = retries[partition]?.attempt ?? 1
        let inputTopic = record.topic.hasPrefix(prefix) ? String(record.topic.dropFirst(prefix.count)) : record.topic
        let context = HandlerContext(
            worker: runtime.definition.name, topicPrefix: prefix, inputTopic: inputTopic, attempt: attempt)
        let started = ContinuousClock.now
        let outputs: [OutputRecord]
        do {
            outputs = try await runtime.definition.handler.handle(record, context: context)
            retries[partition] = nil
        } catch let failure as TransientFailure {
            metrics.handled(since: started)
            if attempt < configuration.retry.maximumAttempts {
                try scheduleRetry(record, partition: partition, attempt: attempt + 1, failure: failure)
                return
            }
            retries[partition] = nil
            try await deadLetter(
                record, errorClass: "retries-exhausted",
                message: "\(attempt) attempts failed; last: \(failure.message)")
            advance(partition, past: record)
            return
        } catch let rejected as RecordRejected {
            metrics.handled(since: started)
            retries[partition] = nil
            try await deadLetter(record, errorClass: rejected.errorClass, message: rejected.message)
            advance(partition, past: record)
            return
        } catch {
            metrics.handled(since: started)
            retries[partition] = nil
            try await deadLetter(record, errorClass: String(describing: type(of: error)), message: "\(error)")
            advance(partition, past: record)
            return
        }
        metrics.handled(since: started)
        try await beginIfNeeded()
        let traceparent = record.headers.first(named: "traceparent")
        for (index, output) in outputs.enumerated() {
            let id = CloudEvents.id(
                worker: runtime.definition.name, input: record, inputTopic: inputTopic, outputIndex: index,
                outputType: output.type)
            let headers = CloudEvents.headers(
                id: id, type: output.type, source: runtime.definition.name, time: Date(), traceparent: traceparent,
                extra: output.headers)
            try await producer.send(
                ProducerRecord(
                    topic: prefix + output.topic, key: output.key.map { Data(utf8: $0) }, value: output.value,
                    headers: headers))
            metrics.recordsOut.increment()
        }
        advance(partition, past: record)
    }

    private func advance(_ partition: TopicPartition, past record: InputRecord) {
        pendingOffsets[partition] = record.offset + 1
        if uncommittedRecords == 0 { batchStarted = .now }
        uncommittedRecords += 1
    }

    /// Sends a record to the DLQ: its original key, value and headers, plus where it came from and why.
    private func deadLetter(_ record: InputRecord, errorClass: String, message: String) async throws {
        metrics.deadLettered.increment()
        logger.warning(
            "record sent to the DLQ",
            metadata: [
                "kafka.topic": "\(record.topic)", "kafka.partition": "\(record.partition)",
                "kafka.offset": "\(record.offset)", "error.class": "\(errorClass)", "error.message": "\(message)",
            ])
        try await beginIfNeeded()
        let headers =
            record.headers + [
                KafkaHeader(name: "dlq.source.topic", string: record.topic),
                KafkaHeader(name: "dlq.source.partition", string: String(record.partition)),
                KafkaHeader(name: "dlq.source.offset", string: String(record.offset)),
                KafkaHeader(name: "dlq.worker", string: runtime.definition.name),
                KafkaHeader(name: "dlq.error.class", string: errorClass),
                KafkaHeader(name: "dlq.error.message", string: message),
                KafkaHeader(name: "dlq.time", string: CloudEvents.timestamp(Date())),
            ]
        try await producer.send(
            ProducerRecord(
                topic: prefix + StandardTopics.dlq.name, key: record.key,
                value: record.isTombstone ? Data() : record.value, headers: headers))
    }

    // MARK: Retries

    /// Pauses the partition and remembers when to read the record again; the poll loop goes on.
    private func scheduleRetry(
        _ record: InputRecord, partition: TopicPartition, attempt: Int, failure: TransientFailure
    )
        throws
    {
        let backoff = configuration.retry.backoff(beforeAttempt: attempt)
        retries[partition] = PendingRetry(offset: record.offset, attempt: attempt, resumeAt: .now + backoff)
        metrics.retries.increment()
        try consumer.pause([partition])
        logger.info(
            "transient failure; retrying",
            metadata: [
                "kafka.partition": "\(partition)", "kafka.offset": "\(record.offset)", "retry.attempt": "\(attempt)",
                "retry.backoff": "\(backoff)", "error.message": "\(failure.message)",
            ])
    }

    private func resumeDueRetries() async throws {
        let now = ContinuousClock.now
        for (partition, retry) in retries where retry.resumeAt <= now {
            try await consumer.seek([
                TopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: retry.offset)
            ])
            try consumer.resume([partition])
        }
    }

    // MARK: Commit

    private func beginIfNeeded() async throws {
        guard transactional, !inTransaction else { return }
        try producer.beginTransaction()
        inTransaction = true
        if uncommittedRecords == 0 { batchStarted = .now }
        failuresBeforeBatch = producer.failedDeliveryCount
    }

    /// Commits the outputs and offsets so far: one transaction, or (at-least-once) a flush and then
    /// the offsets. A transaction that must be aborted is, and processing resumes from the last
    /// commit; a fenced producer is rebuilt.
    private func commit() async throws {
        guard !pendingOffsets.isEmpty || inTransaction else { return }
        let offsets = pendingOffsets.map {
            TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value)
        }
        if transactional {
            do {
                try await beginIfNeeded()
                try await producer.sendOffsetsToTransaction(offsets, groupMetadata: consumer.groupMetadata())
                try await producer.commitTransaction()
                inTransaction = false
            } catch let error as KafkaError where error.isFatal {
                logger.error("producer fenced or failed; rebuilding it", metadata: ["kafka.error": "\(error)"])
                producer = try Self.makeProducer(runtime: runtime)
                try await producer.initTransactions()
                inTransaction = false
                try await rewind()
                return
            } catch let error as KafkaError where error.transactionRequiresAbort || error.isRetriable {
                try await abortAndRewind(reason: "\(error)")
                return
            }
        } else {
            let failures = producer.failedDeliveryCount
            try await producer.flush(timeout: configuration.shutdownTimeout)
            guard producer.failedDeliveryCount == failures, failures == failuresBeforeBatch else {
                failuresBeforeBatch = producer.failedDeliveryCount
                logger.error("outputs failed delivery; reprocessing from the last commit")
                try await rewind()
                return
            }
            try consumer.store(offsets)
            try await consumer.commit()
        }
        pendingOffsets = [:]
        uncommittedRecords = 0
    }

    private func abortAndRewind(reason: String) async throws {
        if inTransaction {
            metrics.transactionsAborted.increment()
            logger.warning("aborting the transaction", metadata: ["reason": "\(reason)"])
            do {
                try await producer.abortTransaction()
            } catch let error as KafkaError where error.isFatal {
                producer = try Self.makeProducer(runtime: runtime)
                try await producer.initTransactions()
            }
            inTransaction = false
        }
        try await rewind()
    }

    /// Goes back to the committed offsets of every assigned partition: what was processed since
    /// the last commit is processed again (its earlier outputs were aborted or are dropped by id).
    private func rewind() async throws {
        pendingOffsets = [:]
        uncommittedRecords = 0
        retries = [:]
        let assigned = try consumer.assignment()
        guard !assigned.isEmpty else { return }
        let committed = try await consumer.committed(assigned)
        let positions = committed.map { entry in
            TopicPartitionOffset(
                topic: entry.topic, partition: entry.partition,
                offset: entry.offset >= 0 ? entry.offset : TopicPartitionOffset.beginning)
        }
        try consumer.resume(assigned)
        try await consumer.seek(positions)
    }

    private func updateLag() {
        guard let statistics = consumer.statistics else { return }
        var total: Int64 = 0
        for (partition, lag) in statistics.consumerLag {
            metrics.consumerLag(partition, lag)
            total += lag
        }
        runtime.health.lag(total)
    }
}

/// A flag one task sets and another reads.
final class AtomicFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
