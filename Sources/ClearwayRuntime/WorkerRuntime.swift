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
    let stopOverrun: (@Sendable (_ doing: String) -> Void)?

    /// Makes the runtime; nothing connects until `run()`. `stopOverrun` is called, with what the
    /// stop was doing, when a graceful stop has not ended `configuration.shutdownTimeout` after it
    /// began (a broker that stopped answering holds a commit or the group leave);
    /// `WorkerMain` ends the process there.
    public init(
        definition: WorkerDefinition, configuration: WorkerConfiguration, health: RuntimeHealth = RuntimeHealth(),
        logger: Logger, stopOverrun: (@Sendable (_ doing: String) -> Void)? = nil
    ) {
        self.definition = definition
        self.stopOverrun = stopOverrun
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
        let overrun = StopWatchdog()
        defer { overrun.disarm() }
        // A stop asked for while starting (reference tables loading, `initTransactions`) waits for
        // the start and then ends the loop at once; the bound runs from the signal either way.
        try await withGracefulShutdownHandler {
            try await loop.start()
            try await loop.run()
        } onGracefulShutdown: { [stopOverrun, configuration] in
            loop.requestStop()
            if let stopOverrun {
                overrun.arm(after: configuration.shutdownTimeout) { stopOverrun(loop.stopPhase) }
            }
        }
        health.stopped()
    }
}

/// The poll → handle → publish loop; owned by one task.
final class ProcessingLoop: @unchecked Sendable {
    // @unchecked: every mutable field is used only by the task running `run()`; `stopRequested`
    // and `phase` are the fields other threads touch, and each is behind its own lock. For the same reason the fields
    // skip Swift's run-time exclusivity checks (`@exclusivity(unchecked)`): with one owner no two
    // accesses can overlap, and on the per-record path they add up (perf, scripts/bench
    // runtime: about 5 % of the loop's time).
    private let runtime: WorkerRuntime
    private let consumer: KafkaConsumer
    @exclusivity(unchecked) private var producer: KafkaProducer
    private let stopRequested = AtomicFlag()
    private let transactional: Bool
    private let prefix: String
    private let sizeLimit: RecordSizeLimit

    // Per-batch state.
    @exclusivity(unchecked) private var inTransaction = false
    @exclusivity(unchecked) private var pendingOffsets: [TopicPartition: Int64] = [:]
    @exclusivity(unchecked) private var uncommittedRecords = 0
    @exclusivity(unchecked) private var batchStarted = ContinuousClock.now
    @exclusivity(unchecked) private var retries: [TopicPartition: PendingRetry] = [:]
    @exclusivity(unchecked) private var failuresBeforeBatch: UInt64 = 0

    // At-least-once without state: offsets waiting for the outputs sent before them to be
    // acknowledged, and whether offsets are stored but not yet committed to the group.
    @exclusivity(unchecked) private var checkpoints: [(mark: DeliveryMark, offsets: [TopicPartition: Int64])] = []
    @exclusivity(unchecked) private var storedSinceCommit = false
    @exclusivity(unchecked) private var lastGroupCommit = ContinuousClock.now
    /// Whether the loop's periodic commit is a checkpoint: at-least-once, without state (whose
    /// SQLite writes wait for a flush).
    private var checkpointsBatches: Bool { !transactional && runtime.definition.changelog == nil }

    // Exactly-once without state: the transaction commits while the loop goes on reading and
    // handling; what the records handled meanwhile produce is held until it has ended, for they
    // belong to the next transaction.
    @exclusivity(unchecked) private var committing: (task: Task<Void, any Error>, done: AtomicFlag)?
    @exclusivity(unchecked) private var held: [ProducerRecord] = []
    @exclusivity(unchecked) private var heldBytes = 0
    /// Past this many bytes of held outputs (keys and values; checked once per poll turn) the
    /// loop waits for the commit, however slow the broker is to end it. A commit usually ends
    /// before the loop holds this much; with 1 MB peak RSS rose by about 4 MB (scripts/bench
    /// runtime).
    private static let heldBytesLimit = 262_144
    /// Calls to end a transaction whose commit times out (it goes on in the background, and a
    /// call again waits for it) before it is aborted and its records are handled again.
    private static let commitAttempts = 3
    /// Whether the loop's periodic commit runs in the background: exactly-once, without state
    /// (whose SQLite writes follow the commit) — and so without timers or table changes.
    private var overlapsCommits: Bool { transactional && !runtime.definition.isStateful }

    @exclusivity(unchecked) private var headerCache: HeaderCache
    @exclusivity(unchecked) private var logicalNames: [String: String] = [:]
    @exclusivity(unchecked) private var lastLogicalName: (topic: String, name: String)?
    @exclusivity(unchecked) private var idHead: (topic: String, bytes: [UInt8])?
    @exclusivity(unchecked) private var idTail: (type: String, index: Int, bytes: [UInt8])?
    @exclusivity(unchecked) private var lastStatistics: Data?

    // Stateful workers: one store per input partition, and the timers fired in this transaction.
    @exclusivity(unchecked) private var states: [Int32: PartitionState] = [:]
    @exclusivity(unchecked) private var firedTimers: Set<String> = []

    // Reference tables, and the partitions whose handler must hear "anything may have changed".
    private let tables: ReferenceTables
    private let tableReaders: [ReferenceTableReader]
    @exclusivity(unchecked) private var tableTails: [Task<Void, Never>] = []
    private let tableFailure = FailureBox()
    @exclusivity(unchecked) private var sweepPending: Set<Int32> = []
    /// Names this run of the loop in its changelog records; a new one after every rewind, so a
    /// restore can tell work that was rolled back from the work that replaced it.
    @exclusivity(unchecked) private var changelogWriter = UUID().uuidString
    /// How many times the loop went back to the committed offsets.
    @exclusivity(unchecked) private var rewinds = 0
    /// After the broker refused an output for good: the records since the last commit, handled
    /// one per commit to find the one whose output it refuses.
    @exclusivity(unchecked) private var isolation = RefusalIsolation()
    /// The producer's count of refused records the loop has taken account of, and the last
    /// refusal (for the DLQ record's reason).
    @exclusivity(unchecked) private var refusalsSeen: UInt64 = 0
    @exclusivity(unchecked) private var lastRefusal: KafkaError?
    @exclusivity(unchecked) private var refusalPending = false

    private struct PendingRetry {
        var offset: Int64
        var attempt: Int
        var resumeAt: ContinuousClock.Instant
        /// Whether the partition was sought back to `offset` and resumed (once, not every turn).
        var resumed = false
    }

    private var logger: Logger { runtime.logger }
    private var configuration: WorkerConfiguration { runtime.configuration }
    private var metrics: RuntimeMetrics { runtime.metrics }

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        let configuration = runtime.configuration
        prefix = configuration.topicPrefix
        headerCache = HeaderCache(source: runtime.definition.name, prefix: configuration.topicPrefix)
        transactional = configuration.delivery == .exactlyOnce
        sizeLimit = RecordSizeLimit(kafkaProperties: configuration.kafkaProperties)
        var consumerConfiguration = KafkaConsumerConfiguration(
            groupID: configuration.groupID(worker: runtime.definition.name),
            bootstrapServers: configuration.bootstrapServers)
        consumerConfiguration.clientID = "\(runtime.definition.name)-\(configuration.instanceID)"
        if configuration.staticMembership {
            consumerConfiguration.groupInstanceID = configuration.transactionalID(worker: runtime.definition.name)
        }
        consumerConfiguration.sessionTimeout = configuration.sessionTimeout
        consumerConfiguration.statisticsInterval = .seconds(5)
        consumerConfiguration.revokeTimeout = configuration.shutdownTimeout
        // A bounded prefetch keeps a worker's memory small: librdkafka's default queues 64 MB, and
        // counts fetched batches compressed, so JSON that LZ4 shrinks fivefold takes five times
        // the limit once decompressed. 1 MB still covers tens of milliseconds of records at full
        // speed (scripts/bench runtime: the same rate as 8 MB, peak RSS 109 → 61 MB). librdkafka
        // refuses a `fetch.max.bytes` below `message.max.bytes`, so a larger one raises it.
        let fetchBytes = max(1_048_576, configuration.kafkaProperties["message.max.bytes"].flatMap { Int($0) } ?? 0)
        consumerConfiguration.properties = [
            "queued.max.messages.kbytes": "1024", "fetch.max.bytes": String(fetchBytes),
            "max.partition.fetch.bytes": "262144", "queued.min.messages": "2000",
        ].merging(
            configuration.kafkaProperties
        ) { _, given in given }
        consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: runtime.logger)
        producer = try Self.makeProducer(runtime: runtime)
        let tableDirectory = (configuration.stateDirectory as NSString).appendingPathComponent("tables")
        tableReaders = try runtime.definition.tables.map { declaration in
            try ReferenceTableReader(
                table: ReferenceTable(name: declaration.name, directory: tableDirectory),
                topic: configuration.topicPrefix + declaration.name, configuration: configuration,
                worker: runtime.definition.name, logger: runtime.logger)
        }
        tables = ReferenceTables(
            tables: Dictionary(uniqueKeysWithValues: tableReaders.map { ($0.table.name, $0.table) }))
    }

    private static func makeProducer(runtime: WorkerRuntime) throws -> KafkaProducer {
        let configuration = runtime.configuration
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: configuration.bootstrapServers)
        producerConfiguration.clientID = "\(runtime.definition.name)-\(configuration.instanceID)"
        if configuration.delivery == .exactlyOnce {
            producerConfiguration.transactionalID = configuration.transactionalID(worker: runtime.definition.name)
            // Outputs go out as they are made, not 5 ms later: what is still unacknowledged when
            // the batch ends is what its commit waits for (scripts/bench runtime: 55,000 → 75,000
            // records/s at 1,000 per transaction). `CLEARWAY_KAFKA_LINGER_MS` still wins.
            producerConfiguration.linger = .zero
        }
        producerConfiguration.properties = configuration.kafkaProperties
        return try KafkaProducer(configuration: producerConfiguration, logger: runtime.logger)
    }

    func requestStop() {
        stopAsked.withLock { $0 = $0 ?? .now }
        stopRequested.set()
    }

    /// When the graceful stop was asked for, for what is left of its bound.
    private let stopAsked = Mutex<ContinuousClock.Instant?>(nil)

    /// What a graceful stop is doing, for the message when it overruns its bound.
    var stopPhase: String { phase.withLock { $0 } }
    private let phase = Mutex("finishing the work under way (a poll turn, or a periodic commit)")
    private func stopping(_ doing: String) { phase.withLock { $0 = doing } }

    func start() async throws {
        if !tableReaders.isEmpty {
            // Records are handled against complete reference tables, as Kafka Streams bootstraps
            // its global tables before processing.
            runtime.health.restoring(true)
            defer { runtime.health.restoring(false) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for reader in tableReaders { group.addTask { try await reader.load() } }
                try await group.waitForAll()
            }
            let failure = tableFailure
            tableTails = tableReaders.map { reader in
                Task {
                    // A table that stops following its topic would go stale unseen: the loop
                    // stops the worker instead, so it restarts (and re-reads from its positions).
                    do { try await reader.tail() } catch { failure.set(error, table: reader.table.name) }
                }
            }
        }
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
        do {
            while !stopRequested.isSet && !Task.isCancelled {
                let pollStarted = ContinuousClock.now
                guard let events = try await consumer.poll() else { break }
                metrics.polled(since: pollStarted)
                if let failure = tableFailure.error { throw failure }
                runtime.health.pollTurned()
                // These events were fetched before any rewind from here on (a failed background
                // commit, a refused record); after one, their records come again from the
                // committed offsets, and handled now they would be handled twice.
                let rewindsBefore = rewinds
                if let committing, committing.done.isSet || heldBytes >= Self.heldBytesLimit {
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
                    } catch let error as KafkaError where transactional && error.isInvalidState {
                        // The transaction failed under the outputs so far (a produce request
                        // failed for good), and the producer refuses more until it is aborted.
                        try await abortAndRewind(reason: "\(error)")
                    }
                }
                recordLag(of: events)
                try await resumeDueRetries()
                if runtime.definition.isStateful {
                    try await fireDueTimers()
                    try await deliverTableChanges()
                }
                if uncommittedRecords >= configuration.maximumBatch
                    || (uncommittedRecords > 0 && ContinuousClock.now - batchStarted >= configuration.commitInterval)
                {
                    if checkpointsBatches {
                        try await checkpoint()
                    } else if overlapsCommits {
                        try await commitInBackground()
                    } else {
                        try await commit()
                    }
                } else if !checkpoints.isEmpty || storedSinceCommit {
                    try await storeDeliveredCheckpoints()
                }
                updateLag()
            }
            // Graceful stop: finish what is in flight, commit it, leave the group.
            stopping(transactional ? "committing the last transaction" : "flushing outputs and committing offsets")
            try await commit()
            stopping("leaving the consumer group")
            try await consumer.close()
            stopping("stopping the reference tables")
            await stopTables()
        } catch {
            logger.error("the processing loop failed", metadata: ["error": "\(error)"])
            await stopTables()
            // A loop that fails still stops its producer's thread before the error goes up.
            await producer.shutdown(timeout: .seconds(1))
            throw error
        }
        stopping("flushing the producer")
        // The flush gets what is left of the stop's bound, less half a second so that it ends
        // before the watchdog would (a moment at least, for acknowledgements already on their
        // way), not the whole bound again after the commit and the leave.
        let spent = stopAsked.withLock { $0 }.map { ContinuousClock.now - $0 } ?? .zero
        await producer.shutdown(
            timeout: max(.milliseconds(100), configuration.shutdownTimeout - spent - .milliseconds(500)))
        logger.info("worker stopped", metadata: ["worker": "\(runtime.definition.name)"])
    }

    private func handle(_ event: KafkaConsumerEvent) async throws {
        switch event {
        case .record(let record):
            try await process(record)
        case .partitionsAssigned(let partitions):
            metrics.rebalances.increment()
            if runtime.definition.isStateful {
                try await openStores(for: partitions)
                if !tableReaders.isEmpty { sweepPending.formUnion(partitions.map(\.partition)) }
            }
            runtime.health.assigned(partitions)
        case .partitionsRevoked(let revocation):
            metrics.rebalances.increment()
            if revocation.isLost {
                try await abortAndRewind(reason: "assignment lost")
            } else {
                try await commit()
            }
            isolation.revoke(revocation.partitions)
            for partition in revocation.partitions {
                retries[partition] = nil
                states[partition.partition] = nil
                sweepPending.remove(partition.partition)
            }
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
        let retry = retries.isEmpty ? nil : retries[partition]
        if let retry {
            // Waiting to retry an earlier record of this partition; this one is read again later.
            guard retry.offset == record.offset, ContinuousClock.now >= retry.resumeAt else { return }
        }
        metrics.recordsIn.increment()
        let attempt = retry?.attempt ?? 1
        let inputTopic = logicalName(of: record.topic)
        let state = states.isEmpty ? nil : states[record.partition]
        let context = HandlerContext(
            worker: runtime.definition.name, topicPrefix: prefix, inputTopic: inputTopic, attempt: attempt,
            state: state, tables: tables)
        let started = ContinuousClock.now
        let outputs: [OutputRecord]
        state?.beginAttempt()
        do {
            outputs = try await runtime.definition.handler.handle(record, context: context)
            if retry != nil { retries[partition] = nil }
            if let (output, size) = sizeLimit.firstOversized(outputs) {
                // None of its outputs can be written, ever: the record is set aside whole.
                throw RecordRejected(RecordSizeLimit.errorClass, sizeLimit.refusal(of: output, size: size))
            }
            if let (key, size) = state?.oversized {
                // Nor could its state change reach the changelog, and with it the commit.
                throw RecordRejected(RecordSizeLimit.stateErrorClass, sizeLimit.refusal(ofState: key, size: size))
            }
            state?.endAttempt()
        } catch {
            // A failed attempt leaves no state behind.
            state?.rollBackAttempt()
            try await handleFailure(error, record: record, partition: partition, attempt: attempt, started: started)
            return
        }
        metrics.handled(since: started)
        try beginIfNeeded()
        let traceparent = record.headers.first(named: "traceparent")
        try await emit(outputs, traceparent: traceparent) { index, type in
            outputID(of: record, inputTopic: inputTopic, index: index, type: type)
        }
        advance(partition, past: record)
    }

    /// A record of the stretch after a refusal (`RefusalIsolation`): handled and committed on its
    /// own, so that a refusal now is its own; refused `RefusalIsolation.attempts` times, it goes to
    /// the DLQ instead (`output-refused`), with its value left out if the DLQ refuses that too.
    private func processAlone(_ record: InputRecord) async throws {
        let partition = TopicPartition(topic: record.topic, partition: record.partition)
        if uncommittedRecords > 0 || inTransaction {
            let before = rewinds
            try await commit()
            guard rewinds == before else { return }
        }
        let before = rewinds
        let refusedTimes = isolation.refusals(partition, offset: record.offset)
        isolation.begin(partition, offset: record.offset)
        if refusedTimes >= RefusalIsolation.attempts {
            let reason = lastRefusal.map { "\($0)" } ?? "a record refusal"
            try await deadLetter(
                record, errorClass: RefusalIsolation.errorClass,
                message:
                    "the broker refused its output for good, \(refusedTimes) times (\(reason)); the input is set aside here and the partition goes on. An output too large for its topic: raise the topic's max.message.bytes (or set CLEARWAY_KAFKA_MESSAGE_MAX_BYTES below it, so that the worker refuses such inputs itself), or make the input smaller, then publish it again",
                omitValue: refusedTimes > RefusalIsolation.attempts)
            advance(partition, past: record)
        } else {
            try await process(record)
        }
        try await commit()
        if rewinds == before { isolation.committed() }
    }

    /// `CloudEvents.id` of an output of this record (as its header's bytes), with the bytes hashed
    /// around the record's own built once for a run of records from one topic with outputs of one
    /// type.
    private func outputID(of record: InputRecord, inputTopic: String, index: Int, type: String) -> [UInt8] {
        let worker = runtime.definition.name
        guard record.headers.isEmpty || record.headers.first(named: "ce_id") == nil else {
            return CloudEvents.idBytes(
                worker: worker, input: record, inputTopic: inputTopic, outputIndex: index, outputType: type)
        }
        if idHead?.topic != inputTopic {
            idHead = (inputTopic, CloudEvents.idHead(worker: worker, inputTopic: inputTopic))
        }
        if idTail?.type != type || idTail?.index != index {
            idTail = (type, index, CloudEvents.idTail(outputIndex: index, outputType: type))
        }
        return CloudEvents.idBytes(head: idHead!.bytes, input: record, tail: idTail!.bytes)
    }

    /// A transient failure is retried (the DLQ once attempts run out); anything else goes to the DLQ.
    private func handleFailure(
        _ error: any Error, record: InputRecord, partition: TopicPartition, attempt: Int,
        started: ContinuousClock.Instant
    ) async throws {
        metrics.handled(since: started)
        if let failure = error as? TransientFailure, attempt < configuration.retry.maximumAttempts {
            try scheduleRetry(record, partition: partition, attempt: attempt + 1, failure: failure)
            return
        }
        retries[partition] = nil
        switch error {
        case let failure as TransientFailure:
            try await deadLetter(
                record, errorClass: "retries-exhausted", message: "\(attempt) attempts failed; last: \(failure.message)"
            )
        case let rejected as RecordRejected:
            try await deadLetter(record, errorClass: rejected.errorClass, message: rejected.message)
        default:
            try await deadLetter(record, errorClass: String(describing: type(of: error)), message: "\(error)")
        }
        advance(partition, past: record)
    }

    /// Publishes outputs in the current transaction with their CloudEvents headers; `id` gives the
    /// `ce_id` header's bytes of an output from its index and type.
    private func emit(
        _ outputs: [OutputRecord], traceparent: String?, id: (Int, String) -> [UInt8]
    ) async throws {
        let time = headerCache.time(Date())
        let trace = traceparent.map { KafkaHeader(name: "traceparent", string: $0) }
        for (index, output) in outputs.enumerated() {
            let ceID =
                output.idSeed.map {
                    CloudEvents.idBytes(worker: runtime.definition.name, seed: $0, outputType: output.type)
                } ?? id(index, output.type)
            var headers: [KafkaHeader] = []
            headers.reserveCapacity(headerCache.constant.count + output.headers.count + 4)
            headers.append(KafkaHeader(name: "ce_id", bytes: ceID))
            headers.append(headerCache.type(output.type))
            headers += headerCache.constant
            headers.append(time)
            if let trace { headers.append(trace) }
            headers += output.headers
            let record = ProducerRecord(
                topic: headerCache.topic(output.topic), key: output.key.map { Data(utf8: $0) },
                value: output.value, headers: headers)
            if try !sendAtOnce(record) { try await producer.send(record) }
            metrics.recordsOut.increment()
        }
    }

    /// Hands a record to the producer, waiting for room in its queue when it is full.
    private func send(_ record: ProducerRecord) async throws {
        if try !sendAtOnce(record) { try await producer.send(record) }
    }

    /// Hands a record to the producer (or holds it during a background commit) without waiting:
    /// `false` when the producer's queue is full. Synchronous, so the per-output path has no
    /// suspension point and no async frame.
    private func sendAtOnce(_ record: ProducerRecord) throws -> Bool {
        if committing != nil {
            held.append(record)
            heldBytes += record.value.count + (record.key?.count ?? 0)
            return true
        }
        do {
            try producer.trySend(record)
            return true
        } catch let error as KafkaError where error.isQueueFull {
            return false
        }
    }

    /// A topic's name without the deployment prefix (cached: it is asked for every record, and
    /// runs of records come from one topic).
    private func logicalName(of topic: String) -> String {
        if let last = lastLogicalName, last.topic == topic { return last.name }
        let name =
            logicalNames[topic] ?? (topic.hasPrefix(prefix) ? String(topic.dropFirst(prefix.count)) : topic)
        logicalNames[topic] = name
        lastLogicalName = (topic, name)
        return name
    }

    private func advance(_ partition: TopicPartition, past record: InputRecord) {
        pendingOffsets[partition] = record.offset + 1
        if uncommittedRecords == 0 { batchStarted = .now }
        uncommittedRecords += 1
    }

    /// Sends a record to the DLQ: its original key, value and headers, plus where it came from and why.
    private func deadLetter(
        _ record: InputRecord, errorClass: String, message: String, omitValue: Bool = false
    ) async throws {
        metrics.deadLettered.increment()
        logger.warning(
            "record sent to the DLQ",
            metadata: [
                "kafka.topic": "\(record.topic)", "kafka.partition": "\(record.partition)",
                "kafka.offset": "\(record.offset)", "error.class": "\(errorClass)", "error.message": "\(message)",
            ])
        try beginIfNeeded()
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
        try await sendDeadLetter(
            key: record.key, value: record.isTombstone ? nil : record.value, headers: headers, omitValue: omitValue,
            whereValueIs:
                "read it from \(record.topic) partition \(record.partition) offset \(record.offset) while the topic retains it"
        )
    }

    /// Writes a DLQ record. One that could never be written as it is (over the producer's
    /// limit: an input near the topic's own limit) would stop the partition: it goes without its
    /// value, and `dlq.value.omitted` says where the bytes still are.
    private func sendDeadLetter(
        key: Data?, value: Data?, headers: [KafkaHeader], omitValue: Bool = false, whereValueIs: String
    ) async throws {
        var dead = ProducerRecord(
            topic: prefix + StandardTopics.dlq.name, key: key, value: value ?? Data(), headers: headers)
        dead.isTombstone = value == nil
        if let value, omitValue || !sizeLimit.fits(key: key, value: value, headers: headers) {
            dead.value = Data()
            dead.isTombstone = true
            dead.headers.append(
                KafkaHeader(
                    name: "dlq.value.omitted",
                    string: "the value (\(value.count) bytes) could not be copied here; \(whereValueIs)"))
        }
        try await send(dead)
    }

    /// Outputs of a timer or a reference-table change (no input record to set aside) that can
    /// never be written go to the DLQ in their place, keyed as they would have been, with why;
    /// the rest are returned to be published.
    private func divertOversized(_ outputs: [OutputRecord], from source: String) async throws -> [OutputRecord] {
        guard sizeLimit.firstOversized(outputs) != nil else { return outputs }
        var kept: [OutputRecord] = []
        for output in outputs {
            guard let size = sizeLimit.oversize(output) else {
                kept.append(output)
                continue
            }
            try await deadLetter(
                key: output.key.map { Data(utf8: $0) }, value: output.value, source: "\(source), to \(output.topic)",
                errorClass: RecordSizeLimit.errorClass, message: sizeLimit.refusal(of: output, size: size))
        }
        return kept
    }

    /// Sends to the DLQ what a timer or a table change could not make (there is no input record
    /// to copy): the key and value it concerns, `dlq.source` saying what it was, and why. A value
    /// too large to copy is left out (`dlq.value.omitted`).
    private func deadLetter(key: Data?, value: Data, source: String, errorClass: String, message: String)
        async throws
    {
        metrics.deadLettered.increment()
        logger.warning(
            "sent to the DLQ",
            metadata: ["dlq.source": "\(source)", "error.class": "\(errorClass)", "error.message": "\(message)"])
        try beginIfNeeded()
        let headers = [
            KafkaHeader(name: "dlq.source", string: source),
            KafkaHeader(name: "dlq.worker", string: runtime.definition.name),
            KafkaHeader(name: "dlq.error.class", string: errorClass),
            KafkaHeader(name: "dlq.error.message", string: message),
            KafkaHeader(name: "dlq.time", string: CloudEvents.timestamp(Date())),
        ]
        try await sendDeadLetter(
            key: key, value: value, headers: headers,
            whereValueIs: "the worker's state still holds what it was made from")
    }

    /// A timer's or a table change's handler call, its state changes undone if it throws. A
    /// failure that is not transient would fail again after every restart and stop the
    /// partition: it goes to the DLQ (with `key` and `value`) and no outputs are returned; a
    /// transient one returns `nil`, for the caller to try again later.
    private func attempt(
        _ state: PartitionState, source: String, key: String, value: Data,
        _ body: () async throws -> [OutputRecord]
    ) async throws -> [OutputRecord]? {
        state.beginAttempt()
        do {
            let outputs = try await body()
            if let (stateKey, size) = state.oversized {
                throw RecordRejected(
                    RecordSizeLimit.stateErrorClass, sizeLimit.refusal(ofState: stateKey, size: size))
            }
            state.endAttempt()
            return outputs
        } catch {
            state.rollBackAttempt()
            if let failure = error as? TransientFailure {
                logger.info(
                    "transient failure; trying again", metadata: ["source": "\(source)", "error.message": "\(failure)"])
                return nil
            }
            let rejected = error as? RecordRejected
            try await deadLetter(
                key: Data(utf8: key), value: value, source: source,
                errorClass: rejected?.errorClass ?? String(describing: type(of: error)),
                message: rejected?.message ?? "\(error)")
            return []
        }
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
        for (partition, retry) in retries where !retry.resumed && retry.resumeAt <= now {
            try await consumer.seek([
                TopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: retry.offset)
            ])
            try consumer.resume([partition])
            retries[partition]?.resumed = true
        }
    }

    // MARK: Commit

    private func beginIfNeeded() throws {
        // While a transaction commits in the background, the next begins once it has ended.
        guard transactional, !inTransaction, committing == nil else { return }
        try producer.beginTransaction()
        inTransaction = true
        if uncommittedRecords == 0 { batchStarted = .now }
        failuresBeforeBatch = producer.failedDeliveryCount
    }

    /// Commits the outputs and offsets so far: one transaction, or (at-least-once) a flush and then
    /// the offsets. A transaction that must be aborted is, and processing resumes from the last
    /// commit; a fenced producer is rebuilt. Everything is flushed and committed, including any
    /// checkpoints (`checkpoint()`): what a revoke and a stop need.
    private func commit() async throws {
        try await settleCommit()
        guard
            !pendingOffsets.isEmpty || inTransaction || states.values.contains(where: \.hasChanges)
                || !checkpoints.isEmpty || storedSinceCommit
        else { return }
        var pending = checkpoints.reduce(into: [TopicPartition: Int64]()) { offsets, checkpoint in
            offsets.merge(checkpoint.offsets) { _, later in later }
        }
        pending.merge(pendingOffsets) { _, later in later }
        let offsets = Self.list(pending)
        let started = ContinuousClock.now
        defer { metrics.committed(since: started) }
        if transactional {
            do {
                try beginIfNeeded()
                try await writeChangelog()
                try await producer.sendOffsetsToTransaction(offsets, groupMetadata: consumer.groupMetadata())
                try await producer.commitTransaction(attempts: Self.commitAttempts)
                inTransaction = false
            } catch {
                try await recover(fromFailedCommit: error)
                return
            }
        } else {
            try await writeChangelog()
            try await producer.flush(timeout: configuration.shutdownTimeout)
            guard try await noDeliveryFailed() else { return }
            try applyState()
            try consumer.store(offsets)
            try await consumer.commit()
            checkpoints = []
            storedSinceCommit = false
            lastGroupCommit = .now
        }
        if transactional { try applyState() }
        pendingOffsets = [:]
        uncommittedRecords = 0
        firedTimers = []
    }

    /// Exactly-once without state: ends the transaction in the background (adding the offsets,
    /// flushing, committing: broker round trips the loop would otherwise sit through) while the
    /// loop reads and handles the next records; `settleCommit()` takes up its result.
    private func commitInBackground() async throws {
        try await settleCommit()
        guard inTransaction else { return }
        let offsets = Self.list(pendingOffsets)
        let (producer, metadata, metrics) = (self.producer, try consumer.groupMetadata(), self.metrics)
        let done = AtomicFlag()
        pendingOffsets = [:]
        uncommittedRecords = 0
        committing = (
            Task {
                defer { done.set() }
                let started = ContinuousClock.now
                try await producer.sendOffsetsToTransaction(offsets, groupMetadata: metadata)
                try await producer.commitTransaction(attempts: Self.commitAttempts)
                metrics.committed(since: started)
            }, done
        )
    }

    /// Waits for the transaction committing in the background, then begins the next with the
    /// outputs held meanwhile. A failed commit goes back to the committed offsets, as `commit()`
    /// does; what was handled meanwhile is handled again.
    private func settleCommit() async throws {
        guard let (task, _) = committing else { return }
        committing = nil
        do {
            try await task.value
            inTransaction = false
        } catch {
            try await recover(fromFailedCommit: error)
            return
        }
        guard !held.isEmpty || !pendingOffsets.isEmpty else { return }
        let outputs = held
        held = []
        heldBytes = 0
        do {
            try beginIfNeeded()
            for record in outputs { try await send(record) }
        } catch let error as KafkaError where error.isInvalidState {
            try await abortAndRewind(reason: "\(error)")
        }
    }

    /// After a transaction failed to commit: a fenced or failed producer is rebuilt, and any
    /// other transaction is aborted; either way processing goes back to the committed offsets.
    /// Rethrows an error that is neither.
    private func recover(fromFailedCommit error: any Error) async throws {
        guard let error = error as? KafkaError else { throw error }
        if error.isFatal {
            logger.error("producer fenced or failed; rebuilding it", metadata: ["kafka.error": "\(error)"])
            try await rebuildProducer()
            inTransaction = false
            try await rewind()
        } else if error.transactionRequiresAbort || error.isRetriable || error.isInvalidState {
            try await abortAndRewind(reason: "\(error)")
        } else {
            throw error
        }
    }

    /// At-least-once without state: the offsets so far wait, as a checkpoint, for the outputs sent
    /// before them to be acknowledged, while the loop goes on reading (a flush here would stall it
    /// for a broker round trip every batch). Offsets are stored once their outputs are delivered.
    private func checkpoint() async throws {
        if !pendingOffsets.isEmpty {
            checkpoints.append((producer.deliveryMark(), pendingOffsets))
            pendingOffsets = [:]
        }
        uncommittedRecords = 0
        try await storeDeliveredCheckpoints()
    }

    /// Stores the offsets of the checkpoints whose outputs are all acknowledged, and commits the
    /// stored offsets to the group every commit interval. A failed delivery rewinds to the last
    /// commit, so the failed outputs are produced again.
    private func storeDeliveredCheckpoints() async throws {
        var delivered: [TopicPartition: Int64] = [:]
        while let first = checkpoints.first, producer.isDelivered(first.mark) {
            delivered.merge(first.offsets) { _, later in later }
            checkpoints.removeFirst()
        }
        // Read after `isDelivered`: a report's failure is counted before its id is.
        guard try await noDeliveryFailed() else { return }
        if !delivered.isEmpty {
            try consumer.store(Self.list(delivered))
            storedSinceCommit = true
        }
        if storedSinceCommit, ContinuousClock.now - lastGroupCommit >= configuration.commitInterval {
            let started = ContinuousClock.now
            try await consumer.commit()
            metrics.committed(since: started)
            storedSinceCommit = false
            lastGroupCommit = .now
        }
    }

    /// At-least-once: whether every output so far was delivered; if one failed, processing goes
    /// back to the last commit, so it is produced again.
    private func noDeliveryFailed() async throws -> Bool {
        guard producer.failedDeliveryCount != failuresBeforeBatch else { return true }
        failuresBeforeBatch = producer.failedDeliveryCount
        logger.error("outputs failed delivery; reprocessing from the last commit")
        try await rewind()
        return false
    }

    private static func list(_ offsets: [TopicPartition: Int64]) -> [TopicPartitionOffset] {
        offsets.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
    }

    // MARK: State

    /// The input offset a partition's committed changes bring its store to.
    private func position(of partition: Int32, _ state: PartitionState) throws -> Int64? {
        guard let input = runtime.definition.inputs.first else { return nil }
        if let pending = pendingOffsets[TopicPartition(topic: prefix + input.name, partition: partition)] {
            return pending
        }
        return try state.store.inputOffset()
    }

    /// Sends the pending state changes to the changelog, tagged with the input offset they bring
    /// the partition to, in the current transaction.
    private func writeChangelog() async throws {
        guard let changelog = runtime.definition.changelog else { return }
        for (partition, state) in states where state.hasChanges {
            let offset = try position(of: partition, state) ?? 0
            let from = try state.store.inputOffset() ?? 0
            for (key, change) in state.changes {
                let record = change.changelogRecord(key: key)
                let topic = prefix + changelog.name
                let key = Data(utf8: record.key)
                let headers = [
                    KafkaHeader(name: "clearway.input.offset", string: String(offset)),
                    KafkaHeader(name: "clearway.input.from", string: String(from)),
                    KafkaHeader(name: "clearway.writer", string: changelogWriter),
                ]
                try await producer.send(
                    record.value.map {
                        ProducerRecord(topic: topic, partition: partition, key: key, value: $0, headers: headers)
                    } ?? .tombstone(topic: topic, partition: partition, key: key, headers: headers))
            }
        }
    }

    /// After the commit: the changes go into the partitions' SQLite stores with their offsets.
    private func applyState() throws {
        for (partition, state) in states {
            guard state.hasChanges || pendingOffsets.keys.contains(where: { $0.partition == partition }) else {
                continue
            }
            if let offset = try position(of: partition, state) {
                try state.store.apply(state.changes, inputOffset: offset)
                state.applied()
            } else {
                state.discard()
            }
        }
    }

    /// Opens the stores of newly assigned partitions; a store behind (or ahead of) the group's
    /// committed offset — a new host, a lost volume, a crash before the store was written — is
    /// rebuilt from the changelog, applying only changes at or below the committed offset.
    private func openStores(for partitions: [TopicPartition]) async throws {
        guard let changelog = runtime.definition.changelog else { return }
        let committed = try await consumer.committed(partitions)
        for entry in committed {
            let store = try PartitionStore(
                directory: configuration.stateDirectory, name: "partition-\(entry.partition)")
            let local = try store.inputOffset()
            let target = entry.offset >= 0 ? entry.offset : nil
            if local != target {
                runtime.health.restoring(true)
                defer { runtime.health.restoring(false) }
                try await restore(
                    store, from: prefix + changelog.name, partition: entry.partition, upTo: target ?? 0)
            }
            let state = PartitionState(store: store)
            state.valueLimit = sizeLimit.bytes - RecordSizeLimit.reserve
            states[entry.partition] = state
        }
    }

    private func restore(_ store: PartitionStore, from topic: String, partition: Int32, upTo committed: Int64)
        async throws
    {
        let started = ContinuousClock.now
        try store.reset()
        var configuration = KafkaConsumerConfiguration(
            groupID: self.configuration.groupID(worker: runtime.definition.name) + "-restore",
            bootstrapServers: self.configuration.bootstrapServers)
        configuration.emitEndOfPartition = true
        configuration.properties = self.configuration.kafkaProperties
        let reader = try KafkaConsumer(configuration: configuration, logger: logger)
        _ = try await reader.describeTopic(topic)
        try reader.assign([
            TopicPartitionOffset(topic: topic, partition: partition, offset: TopicPartitionOffset.beginning)
        ])
        var replay = ChangelogReplay()
        var read = 0
        let progress = Metrics.Gauge(
            label: "clearway_restore_records",
            dimensions: [("worker", runtime.definition.name), ("partition", String(partition))])
        reading: for try await event in reader.events {
            switch event {
            case .record(let record):
                guard let key = record.keyString,
                    let decoded = StateChange.fromChangelog(key: key, value: record.isTombstone ? nil : record.value)
                else { continue }
                replay.add(
                    key: decoded.key, change: decoded.change,
                    tag: record.headers.first(named: "clearway.input.offset").flatMap { Int64($0) } ?? Int64.max,
                    from: record.headers.first(named: "clearway.input.from").flatMap { Int64($0) },
                    writer: record.headers.first(named: "clearway.writer"))
                read += 1
                if read % 10_000 == 0 { progress.record(read) }
            case .endOfPartition:
                break reading
            default:
                continue
            }
        }
        try await reader.close()
        let changes = replay.changes(upTo: committed)
        try store.restore(changes, inputOffset: committed)
        let restored = changes.count
        progress.record(read)
        logger.info(
            "state restored from the changelog",
            metadata: [
                "kafka.partition": "\(partition)", "restore.records": "\(restored)",
                "restore.offset": "\(committed)", "restore.duration": "\(ContinuousClock.now - started)",
            ])
    }

    /// Fires the timers that are due, through the same transaction as records.
    private func fireDueTimers() async throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        for (partition, state) in states {
            for (key, due, payload) in try state.store.dueTimers(now: now) {
                let id = "\(partition)/\(key)"
                guard !firedTimers.contains(id), state.pendingTimers[key] == nil else { continue }
                firedTimers.insert(id)
                try beginIfNeeded()
                let context = HandlerContext(
                    worker: runtime.definition.name, topicPrefix: prefix,
                    inputTopic: runtime.definition.inputs.first?.name ?? "", attempt: 1, state: state, tables: tables)
                let source = "timer \(key) of partition \(partition)"
                guard
                    let fired = try await attempt(
                        state, source: source, key: key, value: payload,
                        {
                            try await runtime.definition.handler.timerFired(
                                key: key, payload: payload, context: context)
                        }
                    )
                else {
                    firedTimers.remove(id)  // a transient failure: it fires again next turn
                    continue
                }
                let outputs = try await divertOversized(fired, from: source)
                if state.pendingTimers[key] == nil { state.cancel(timer: key) }
                try await emit(outputs, traceparent: nil) { index, type in
                    CloudEvents.idBytes(
                        worker: runtime.definition.name, timer: key, partition: partition, due: due,
                        outputIndex: index, outputType: type)
                }
                if uncommittedRecords == 0 { batchStarted = .now }
                uncommittedRecords += 1
            }
        }
    }

    /// Tells the handler which reference-table keys changed, once per assigned partition, in the
    /// current transaction; a partition just assigned or rolled back hears "anything may have".
    private func deliverTableChanges() async throws {
        guard !tableReaders.isEmpty else { return }
        let changes = tables.drainChanges()
        guard !changes.isEmpty || !sweepPending.isEmpty else { return }
        var retry = Set<Int32>()
        for (partition, state) in states.sorted(by: { $0.key < $1.key }) {
            let sweep = sweepPending.contains(partition)
            guard sweep || !changes.isEmpty else { continue }
            try beginIfNeeded()
            let context = HandlerContext(
                worker: runtime.definition.name, topicPrefix: prefix,
                inputTopic: runtime.definition.inputs.first?.name ?? "", attempt: 1, state: state, tables: tables)
            let source = "reference-table change, partition \(partition)"
            guard
                let changed = try await attempt(
                    state, source: source, key: "tables/\(partition)", value: Data(),
                    { try await runtime.definition.handler.tablesChanged(sweep ? nil : changes, context: context) })
            else {
                retry.insert(partition)  // a transient failure: the partition hears "anything" next turn
                continue
            }
            let outputs = try await divertOversized(changed, from: source)
            try await emit(outputs, traceparent: nil) { index, type in
                CloudEvents.idBytes(
                    worker: runtime.definition.name, seed: "tables/\(partition)/\(index)", outputType: type)
            }
            if uncommittedRecords == 0 { batchStarted = .now }
            uncommittedRecords += 1
        }
        sweepPending = retry
    }

    private func stopTables() async {
        for task in tableTails { task.cancel() }
        for reader in tableReaders { await reader.close() }
        tableTails = []
    }

    private func abortAndRewind(reason: String) async throws {
        if let (task, _) = committing {
            // Its outcome no longer matters: what it did not commit is read again.
            committing = nil
            if case .success = await task.result { inTransaction = false }
        }
        if inTransaction {
            metrics.transactionsAborted.increment()
            logger.warning("aborting the transaction", metadata: ["reason": "\(reason)"])
            do {
                try await producer.abortTransaction()
            } catch let error as KafkaError where error.isFatal {
                try await rebuildProducer()
            }
            inTransaction = false
        }
        try await rewind()
    }

    /// Goes back to the committed offsets of every assigned partition: what was processed since
    /// the last commit is processed again (its earlier outputs were aborted or are dropped by id).
    private func rewind() async throws {
        noteRefusals()
        rewinds += 1
        pendingOffsets = [:]
        held = []
        heldBytes = 0
        checkpoints = []
        uncommittedRecords = 0
        retries = [:]
        firedTimers = []
        for state in states.values { state.discard() }
        changelogWriter = UUID().uuidString
        // Table changes heard since the last commit were rolled back with it.
        if !tableReaders.isEmpty { sweepPending.formUnion(states.keys) }
        let assigned = try consumer.assignment()
        if refusalPending {
            refusalPending = false
            let positions = assigned.isEmpty ? [] : try consumer.positions(assigned)
            if isolation.refused(readUpTo: positions) {
                logger.warning(
                    "the broker refused an output for good; the records since the last commit are handled one per commit to find whose it is",
                    metadata: ["kafka.error": "\(lastRefusal.map { "\($0)" } ?? "")"])
            }
        }
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

    /// A new transactional producer in place of a fenced or failed one; the old one's refusals
    /// are taken account of first (the new one counts from zero).
    private func rebuildProducer() async throws {
        noteRefusals()
        producer = try Self.makeProducer(runtime: runtime)
        refusalsSeen = 0
        try await producer.initTransactions()
    }

    /// Takes account of records the broker refused for good since the last look.
    private func noteRefusals() {
        let refusals = producer.recordRefusals
        guard refusals.count != refusalsSeen else { return }
        refusalsSeen = refusals.count
        lastRefusal = refusals.last
        refusalPending = true
    }

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
        var total: Int64 = 0
        for (partition, lag) in statistics.consumerLag {
            metrics.consumerLag(partition, lag)
            total += lag
        }
        runtime.health.lag(total)
    }
}

/// The first failure of a reference table's reader, for the processing loop to raise.
final class FailureBox: Sendable {
    private let value = Mutex<(any Error)?>(nil)
    func set(_ error: any Error, table: String) {
        value.withLock { $0 = $0 ?? ConfigurationError("the reference table \(table) stopped: \(error)") }
    }
    var error: (any Error)? { value.withLock { $0 } }
}

/// Calls a function once a time has passed, unless disarmed first.
final class StopWatchdog: Sendable {
    private let disarmed = AtomicFlag()

    func arm(after delay: Duration, _ body: @escaping @Sendable () -> Void) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(delay / .milliseconds(1)))) {
            [disarmed] in
            if !disarmed.isSet { body() }
        }
    }

    func disarm() { disarmed.set() }
}

/// A flag one task sets and another reads.
final class AtomicFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
