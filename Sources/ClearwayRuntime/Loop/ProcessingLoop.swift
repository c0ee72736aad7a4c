import ClearwayKafka
import Foundation
import Logging
import Synchronization

/// The poll → process → punctuate → commit loop of one worker, as Kafka Streams'
/// `StreamThread.runOnce`: each turn polls a batch of events, hands each record to the handler
/// and its outputs to the `OutputCollector`, resumes due retries (`RetryScheduler`), fires due
/// timers and tells the handler of reference-table changes (stateful workers), and asks the
/// `Committer` whether to commit. The collaborators hold the rest: the producer and its
/// transaction (`TransactionalProducer`), the partitions' state and its changelog
/// (`StateManager`), the reference tables (`TableFollower`), every client's settings
/// (`ClientSettings`).
///
/// Owned by one task.
final class ProcessingLoop: @unchecked Sendable {
    // @unchecked: every mutable field is used only by the task running `run()`; `stopRequested`,
    // `stopAsked` and `phase` are the fields other threads touch, and each is behind its own
    // lock. For the same reason the fields skip Swift's run-time exclusivity checks
    // (`@exclusivity(unchecked)`): with one owner no two accesses can overlap, and on the
    // per-record path they add up (perf, scripts/bench runtime: about 5 % of the loop's time).
    let definition: WorkerDefinition
    let configuration: WorkerConfiguration
    let logger: Logger
    let metrics: RuntimeMetrics
    let health: RuntimeHealth
    let prefix: String
    let sizeLimit: RecordSizeLimit
    let consumer: KafkaConsumer
    let producer: TransactionalProducer
    let outputs: OutputCollector
    let retries: RetryScheduler
    let stateManager: StateManager
    let tables: TableFollower
    /// Sends the partitions' outbox entries, for a worker with an outbox.
    let outbox: OutboxDispatcher?
    /// Partitions paused because their outbox is over its limit.
    @exclusivity(unchecked) var outboxPaused: Set<Int32> = []
    @exclusivity(unchecked) var committer: Committer
    /// After the broker refused an output for good: the records since the last commit, handled
    /// one per commit to find the one whose output it refuses.
    @exclusivity(unchecked) var isolation = RefusalIsolation()
    /// How many times the loop went back to the committed offsets.
    @exclusivity(unchecked) var rewinds = 0
    @exclusivity(unchecked) private var lastStatistics: Data?

    private let stopRequested = AtomicFlag()
    /// When the graceful stop was asked for, for what is left of its bound.
    private let stopAsked = Mutex<ContinuousClock.Instant?>(nil)
    private let phase = Mutex(StopPhase.working)

    init(runtime: WorkerRuntime) throws {
        definition = runtime.definition
        configuration = runtime.configuration
        logger = runtime.logger
        metrics = runtime.metrics
        health = runtime.health
        prefix = configuration.topicPrefix
        sizeLimit = RecordSizeLimit(kafkaProperties: configuration.kafkaProperties)
        let settings = ClientSettings(configuration: configuration, worker: definition.name)
        consumer = try KafkaConsumer(configuration: settings.processingConsumer(), logger: logger)
        producer = try TransactionalProducer(settings: settings.processingProducer(), logger: logger)
        outputs = OutputCollector(
            producer: producer, worker: definition.name, prefix: prefix, sizeLimit: sizeLimit, metrics: metrics,
            logger: logger)
        retries = RetryScheduler(consumer: consumer, policy: configuration.retry, metrics: metrics, logger: logger)
        stateManager = StateManager(
            definition: definition, settings: settings, valueLimit: sizeLimit.bytes - RecordSizeLimit.reserve,
            health: health, logger: logger)
        tables = try TableFollower(declarations: definition.tables, settings: settings, logger: logger)
        let (name, policy, logger) = (runtime.definition.name, runtime.configuration.outbox, runtime.logger)
        outbox = runtime.definition.outbox.map {
            OutboxDispatcher(sender: $0, policy: policy, worker: name, logger: logger)
        }
        committer = Committer(
            delivery: configuration.delivery, isStateful: definition.isStateful,
            maximumBatch: configuration.maximumBatch, interval: configuration.commitInterval)
    }

    // MARK: Starting and stopping

    func start() async throws {
        if !tables.isEmpty {
            health.restoring(true)
            defer { health.restoring(false) }
            try await tables.start()
        }
        try await producer.initTransactions()
        outbox?.start()
        try consumer.subscribe(topics: definition.inputs.map { prefix + $0.name })
        logger.info(
            "worker started",
            metadata: [
                "worker": "\(definition.name)", "delivery": "\(configuration.delivery.rawValue)",
                "kafka.properties": "\(configuration.redactedKafkaProperties)",
            ])
    }

    func requestStop() {
        stopAsked.withLock { $0 = $0 ?? .now }
        stopRequested.set()
    }

    /// What a graceful stop is doing, for the message when it overruns its bound.
    var stopPhase: StopPhase { phase.withLock { $0 } }

    private func stopping(_ next: StopPhase) { phase.withLock { $0 = next } }

    // MARK: The loop

    func run() async throws {
        do {
            while !stopRequested.isSet && !Task.isCancelled {
                let pollStarted = ContinuousClock.now
                guard let events = try await consumer.poll() else { break }
                metrics.polled(since: pollStarted)
                if let failure = tables.stopped { throw failure }
                health.pollTurned()
                try await processTurn(events)
                recordLag(of: events)
                try await retries.resumeDue()
                if definition.isStateful { try await punctuate() }
                try await maybeCommit()
                updateLag()
            }
            // Graceful stop: finish what is in flight, commit it, leave the group.
            stopping(.committingLast(transactional: committer.isTransactional))
            try await commit()
            stopping(.leavingGroup)
            try await consumer.close()
            stopping(.stoppingTables)
            await tables.stop()
            outbox?.stop()
        } catch {
            logger.error("the processing loop failed", metadata: ["error": "\(error)"])
            await tables.stop()
            outbox?.stop()
            // A loop that fails still stops its producer's thread before the error goes up.
            await producer.shutdown(timeout: .seconds(1))
            throw error
        }
        stopping(.flushingProducer)
        // The flush gets what is left of the stop's bound, less half a second so that it ends
        // before the watchdog would (a moment at least, for acknowledgements already on their
        // way), not the whole bound again after the commit and the leave.
        let spent = stopAsked.withLock { $0 }.map { ContinuousClock.now - $0 } ?? .zero
        await producer.shutdown(
            timeout: max(.milliseconds(100), configuration.shutdownTimeout - spent - .milliseconds(500)))
        logger.info("worker stopped", metadata: ["worker": "\(definition.name)"])
    }

    /// One poll turn's events, in order.
    private func processTurn(_ events: [KafkaConsumerEvent]) async throws {
        // These events were fetched before any rewind from here on (a failed background commit,
        // a refused record); after one, their records come again from the committed offsets, and
        // handled now they would be handled twice.
        let rewindsBefore = rewinds
        if committer.shouldSettle(commitEnded: producer.backgroundCommitEnded, heldBytes: producer.heldBytes) {
            try await settleCommit()
        }
        for event in events {
            guard case .record(let record) = event else {
                try await handle(event)
                continue
            }
            guard rewinds == rewindsBefore else { continue }
            do {
                if isolation.covers(record) {
                    try await processAlone(record)
                } else {
                    try await process(record)
                }
            } catch let error as KafkaError where committer.isTransactional && error.isInvalidState {
                // The transaction failed under the outputs so far (a produce request failed for
                // good), and the producer refuses more until it is aborted.
                try await abortAndRewind(reason: "\(error)")
            }
        }
    }

    private func handle(_ event: KafkaConsumerEvent) async throws {
        switch event {
        case .record(let record):
            try await process(record)
        case .partitionsAssigned(let partitions):
            metrics.rebalances.increment()
            // A partition comes back as it left: a pause made for it before (a retry's backoff,
            // the outbox's hold-back) would outlive the reason the loop forgot on revocation, and
            // nothing would resume it (seen in the chaos run: a worker polling, its partitions
            // lagging, fetching nothing).
            try consumer.resume(partitions)
            if definition.isStateful {
                try await stateManager.open(try await consumer.committed(partitions))
                tables.sweep(partitions.map(\.partition))
                try reloadOutbox(partitions.map(\.partition))
            }
            health.assigned(partitions)
        case .partitionsRevoked(let revocation):
            metrics.rebalances.increment()
            if revocation.isLost {
                try await abortAndRewind(reason: "assignment lost")
            } else {
                try await commit()
            }
            isolation.revoke(revocation.partitions)
            for partition in revocation.partitions {
                retries.finished(partition)
                stateManager.close(partition.partition)
                tables.revoked(partition.partition)
                outbox?.revoked(partition.partition)
                outboxPaused.remove(partition.partition)
            }
            health.revoked(revocation.partitions)
            // Another instance reports these now.
            for partition in revocation.partitions { metrics.consumerLag(partition, 0) }
            revocation.acknowledge()
        case .endOfPartition:
            break
        case .error(let error):
            logger.warning("consumer error", metadata: ["kafka.error": "\(error)"])
        }
    }

    /// Begins a transaction when one is needed before the next output.
    @inline(__always)
    func beginIfNeeded() throws {
        guard committer.needsBegin else { return }
        try producer.begin()
        committer.begun()
    }

    // MARK: Observability

    /// End-to-end lag, from the last record of a poll turn (a gauge: the last value is the one
    /// shown, so once a turn is enough).
    private func recordLag(of events: [KafkaConsumerEvent]) {
        for event in events.reversed() {
            guard case .record(let record) = event else { continue }
            if let timestamp = record.timestamp { metrics.endToEndLag.record(Date().timeIntervalSince(timestamp)) }
            return
        }
    }

    /// Publishes consumer lag when librdkafka has new statistics (every few seconds, not every turn).
    private func updateLag() {
        guard let statistics = consumer.statistics, statistics.json != lastStatistics else { return }
        lastStatistics = statistics.json
        for (partition, lag) in health.lag(statistics.consumerLag) { metrics.consumerLag(partition, lag) }
    }
}

/// What a graceful stop is doing: the state the watchdog names when the stop overruns its bound.
enum StopPhase: Equatable, CustomStringConvertible {
    /// Not yet stopping, or finishing the poll turn or periodic commit under way.
    case working
    case committingLast(transactional: Bool)
    case leavingGroup
    case stoppingTables
    case flushingProducer

    var description: String {
        switch self {
        case .working: "finishing the work under way (a poll turn, or a periodic commit)"
        case .committingLast(let transactional):
            transactional ? "committing the last transaction" : "flushing outputs and committing offsets"
        case .leavingGroup: "leaving the consumer group"
        case .stoppingTables: "stopping the reference tables"
        case .flushingProducer: "flushing the producer"
        }
    }
}
