import CRdKafka
import Foundation
import Logging
import Synchronization

/// A Kafka producer over librdkafka: keys, headers, idempotent by default, delivery reports
/// (awaitable per record and as a stream), and the transactional API.
///
/// A thread of its own serves librdkafka's delivery reports; blocking calls (flush, transaction
/// steps) run on a dedicated queue, never on Swift's cooperative pool.
public final class KafkaProducer: Sendable {
    /// Every delivery report, when `KafkaProducerConfiguration.deliveryReportStream` is on;
    /// finishes at `shutdown()`. Unbounded: read it, or leave the option off.
    public let deliveryReports: AsyncStream<DeliveryReport>

    private let client: RDKafkaClient
    private let topics = TopicHandles()
    private let deliveries: Deliveries
    private let poller: PollThread
    /// librdkafka's main queue (the one `rd_kafka_poll` serves), kept to wake the poll thread.
    private let mainQueue: QueueHandle
    private let blocking: BlockingQueue
    private let isTransactional: Bool
    private let logger: Logger

    /// Creates the producer; throws `KafkaError.Code.configuration` for a bad property.
    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws {
        let (stream, continuation) = AsyncStream<DeliveryReport>.makeStream()
        let deliveries = Deliveries(stream: configuration.deliveryReportStream ? continuation : nil)
        if !configuration.deliveryReportStream { continuation.finish() }
        let context = ClientContext(logger: logger, onDelivery: { deliveries.deliver($0) })
        self.client = try RDKafkaClient(
            type: RD_KAFKA_PRODUCER, properties: configuration.librdkafkaProperties, context: context)
        self.deliveries = deliveries
        self.deliveryReports = stream
        self.isTransactional = configuration.transactionalID != nil
        self.logger = logger
        self.blocking = BlockingQueue(label: "clearway.kafka.producer")
        let client = self.client
        let mainQueue = QueueHandle(rd_kafka_queue_get_main(client.handle))
        self.mainQueue = mainQueue
        self.poller = PollThread(
            name: "clearway.kafka.producer.poll", wake: { rd_kafka_queue_yield(mainQueue.pointer) },
            { _ = rd_kafka_poll(client.handle, 100) })
    }

    deinit {
        poller.stop()
        deliveries.finish()
        topics.destroyAll()  // before the client's handle is destroyed
        rd_kafka_queue_destroy(mainQueue.pointer)
    }

    // MARK: Sending

    /// Hands a record to librdkafka and returns its delivery id at once. When librdkafka's local
    /// queue is full it waits (suspending, not blocking) for room.
    @discardableResult
    public func send(_ record: ProducerRecord) async throws -> UInt64 {
        let id = deliveries.nextID()
        do {
            try await enqueue(record, id: id, awaited: false)
        } catch {
            deliveries.abandon(id)
            throw error
        }
        return id
    }

    /// Sends a record and waits for the broker's acknowledgement; throws its delivery error.
    @discardableResult
    public func sendAndWait(_ record: ProducerRecord) async throws -> DeliveryReport {
        let id = deliveries.nextID()
        return try await withCheckedThrowingContinuation { continuation in
            deliveries.register(id, continuation)
            Task {
                do { try await enqueue(record, id: id, awaited: true) } catch { deliveries.fail(id, error) }
            }
        }
    }

    /// Hands a record to librdkafka without waiting: throws a retriable `_QUEUE_FULL` error when
    /// the local queue has no room.
    @discardableResult
    public func trySend(_ record: ProducerRecord) throws -> UInt64 {
        let id = deliveries.nextID()
        let err = produce(record, id: id, awaited: false)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            deliveries.abandon(id)
            throw refusal(err, of: record)
        }
        return id
    }

    private func enqueue(_ record: ProducerRecord, id: UInt64, awaited: Bool) async throws {
        var backoff = Duration.microseconds(200)
        while true {
            let err = produce(record, id: id, awaited: awaited)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw refusal(err, of: record) }
            try await Task.sleep(for: backoff)  // the poll thread drains delivery reports meanwhile
            backoff = min(backoff * 2, .milliseconds(2))
        }
    }

    /// Why librdkafka refused a record: a full queue as it is, anything else with the client's
    /// fatal error where there is one (a fenced or failed producer).
    private func refusal(_ err: rd_kafka_resp_err_t, of record: ProducerRecord) -> KafkaError {
        let fatal = err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? nil : client.fatalError()
        return fatal ?? KafkaError.result(err, context: "could not queue a record for \(record.topic)")
    }

    private func produce(_ record: ProducerRecord, id: UInt64, awaited: Bool) -> rd_kafka_resp_err_t {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            // `withCString`, not the implicit conversion: that copies a small string (`ce_id`,
            // `ce_type`: every header name here) to the heap on each call.
            for header in record.headers {
                header.name.withCString { name in
                    if let value = header.bytes {
                        value.withUnsafeBytes { bytes in
                            _ = rd_kafka_header_add(headers, name, -1, bytes.baseAddress, bytes.count)
                        }
                    } else {
                        _ = rd_kafka_header_add(headers, name, -1, nil, 0)
                    }
                }
            }
        }
        let timestamp = record.timestamp.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0
        let opaque = Deliveries.opaque(id: id, awaited: awaited)
        guard let topic = topics.handle(record.topic, client: client.handle) else {
            if let headers { rd_kafka_headers_destroy(headers) }
            let err = rd_kafka_last_error()
            return err == RD_KAFKA_RESP_ERR_NO_ERROR ? RD_KAFKA_RESP_ERR__INVALID_ARG : err
        }
        return withOptionalBytes(record.isTombstone ? nil : record.value) { value in
            withOptionalBytes(record.key) { key in
                clearway_produce(
                    client.handle, topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                    key?.baseAddress, key?.count ?? 0, value.map { $0.baseAddress ?? emptyPayload }, value?.count ?? 0,
                    headers, opaque, timestamp)
            }
        }
    }

    /// Waits until every queued record is delivered or has failed.
    public func flush(timeout: Duration = .seconds(30)) async throws {
        let client = self.client
        let err = await blocking.run { rd_kafka_flush(client.handle, Int32(timeout.milliseconds)) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let left = rd_kafka_outq_len(client.handle)
            throw KafkaError.result(
                err, context: client.explain("\(left) record(s) still undelivered after \(timeout)"))
        }
    }

    /// Flushes what is queued (up to `timeout`), then stops serving delivery reports. The producer
    /// cannot send afterwards. Records still undelivered at the timeout are reported in the log.
    public func shutdown(timeout: Duration = .seconds(10)) async {
        do {
            try await flush(timeout: timeout)
        } catch {
            logger.error("producer shut down with undelivered records", metadata: ["kafka.error": "\(error)"])
        }
        let poller = self.poller
        await blocking.run { poller.stop() }
        deliveries.finish()
    }

    /// A mark after every record sent so far: `isDelivered(_:)` tells when each of them has been
    /// acknowledged or has failed (count failures with `failedDeliveryCount`). Lets a caller go on
    /// sending while it waits for an earlier batch, where `flush` would stop it.
    public func deliveryMark() -> DeliveryMark {
        DeliveryMark(id: deliveries.lastAssignedID)
    }

    /// Whether every record sent before `mark` has had its delivery report.
    public func isDelivered(_ mark: DeliveryMark) -> Bool {
        deliveries.reportedThrough >= mark.id
    }

    /// How many records have failed delivery since the producer started (whether or not anyone
    /// awaited them): compare it before and after a `flush` to learn whether a batch got through.
    public var failedDeliveryCount: UInt64 { deliveries.failedCount }

    /// How many records the broker has refused for good (`KafkaError.isRecordRefusal`) since the
    /// producer started, and the last such refusal: sending those records again cannot succeed.
    public var recordRefusals: (count: UInt64, last: KafkaError?) { deliveries.refusals.withLock { $0 } }

    /// Records queued in librdkafka and not yet acknowledged.
    public var queuedCount: Int { Int(rd_kafka_outq_len(client.handle)) }

    // MARK: Transactions

    /// Registers the `transactional.id` with the broker, fencing off older producers with it.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws {
        try requireTransactional()
        try await transactionStep("init transactions") { rd_kafka_init_transactions($0, Int32(timeout.milliseconds)) }
    }

    /// Starts a transaction; records sent from now on belong to it.
    public func beginTransaction() throws {
        try requireTransactional()
        if let error = rd_kafka_begin_transaction(client.handle) {
            throw KafkaError.consuming(error, code: .transaction, context: "begin transaction")
        }
    }

    /// Adds the consumer's offsets to the current transaction, so they commit with its records.
    /// `offsets` are the next offsets to read (`ConsumerRecord.nextOffset`).
    public func sendOffsetsToTransaction(
        _ offsets: [TopicPartitionOffset], groupMetadata: ConsumerGroupMetadata, timeout: Duration = .seconds(30)
    ) async throws {
        try requireTransactional()
        try await transactionStep("send offsets to transaction") { handle in
            var metadata: OpaquePointer?
            let readError = groupMetadata.bytes.withUnsafeBytes { bytes in
                rd_kafka_consumer_group_metadata_read(&metadata, bytes.baseAddress, bytes.count)
            }
            if let readError { return readError }
            defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
            return withTopicPartitionList(offsets) { list in
                rd_kafka_send_offsets_to_transaction(handle, list, metadata, Int32(timeout.milliseconds))
            }
        }
    }

    /// Commits the current transaction (flushing its records first).
    ///
    /// A commit that fails with a retriable error — it timed out, and goes on in the background —
    /// is called again, up to `attempts` calls in all, as librdkafka's documentation of
    /// `rd_kafka_commit_transaction` advises: a second call waits for the commit under way rather
    /// than starting another. Anything else, and the last retriable error, is thrown.
    public func commitTransaction(timeout: Duration = .seconds(30), attempts: Int = 1) async throws {
        try requireTransactional()
        var attempt = 1
        while true {
            do {
                try await transactionStep("commit transaction") {
                    rd_kafka_commit_transaction($0, Int32(timeout.milliseconds))
                }
                return
            } catch let error as KafkaError
                where error.isRetriable && !error.transactionRequiresAbort && !error.isFatal && attempt < attempts
            {
                logger.warning(
                    "transaction commit not finished; waiting for it again",
                    metadata: ["kafka.error": "\(error)", "attempt": "\(attempt)", "attempts": "\(attempts)"])
                attempt += 1
            }
        }
    }

    /// Aborts the current transaction; its records are never seen by `read_committed` consumers.
    ///
    /// An abort that fails with a retriable error — it timed out, say while the broker restarts,
    /// and goes on in the background — is called again, up to `attempts` calls in all, as
    /// librdkafka's documentation of `rd_kafka_abort_transaction` asks ("retry call to resume").
    public func abortTransaction(timeout: Duration = .seconds(30), attempts: Int = 1) async throws {
        try requireTransactional()
        var attempt = 1
        while true {
            do {
                try await transactionStep("abort transaction") {
                    rd_kafka_abort_transaction($0, Int32(timeout.milliseconds))
                }
                return
            } catch let error as KafkaError where error.isRetriable && !error.isFatal && attempt < attempts {
                logger.warning(
                    "transaction abort not finished; calling it again",
                    metadata: ["kafka.error": "\(error)", "attempt": "\(attempt)", "attempts": "\(attempts)"])
                attempt += 1
            }
        }
    }

    private func requireTransactional() throws {
        guard isTransactional else {
            throw KafkaError(
                code: .transaction,
                message: "this producer has no transactional id; set KafkaProducerConfiguration.transactionalID")
        }
    }

    private func transactionStep(
        _ name: String, _ step: @escaping @Sendable (OpaquePointer) -> OpaquePointer?
    ) async throws {
        let client = self.client
        try await blocking.run {
            if let error = step(client.handle) {
                throw KafkaError.consuming(error, code: .transaction, context: client.explain(name))
            }
        }
    }
}

/// The producer's topic handles, one per topic name, made on first use and kept until the
/// producer goes (librdkafka otherwise looks a topic up by name for every message).
private final class TopicHandles: Sendable {
    private struct Table {
        /// Handle addresses by topic name.
        var handles: [String: UInt] = [:]
        /// The last topic asked for: a run of records to one topic skips the hashing.
        var last: (name: String, address: UInt)?
    }
    private let table = Mutex(Table())

    /// The topic's handle, or nil when librdkafka refuses the name (`rd_kafka_last_error`).
    func handle(_ name: String, client: OpaquePointer) -> OpaquePointer? {
        let address = table.withLock { table -> UInt? in
            if let last = table.last, last.name == name { return last.address }
            if let address = table.handles[name] {
                table.last = (name, address)
                return address
            }
            guard let handle = rd_kafka_topic_new(client, name, nil) else { return nil }
            let address = UInt(bitPattern: Int(bitPattern: handle))
            table.handles[name] = address
            table.last = (name, address)
            return address
        }
        return address.flatMap { OpaquePointer(bitPattern: $0) }
    }

    func destroyAll() {
        table.withLock { table in
            for address in table.handles.values { OpaquePointer(bitPattern: address).map(rd_kafka_topic_destroy) }
            table = Table()
        }
    }
}

/// A consumer's group metadata, serialized, for `KafkaProducer.sendOffsetsToTransaction`.
public struct ConsumerGroupMetadata: Sendable {
    let bytes: Data
}

/// Lends the bytes of optional data (a nil pointer for `nil`).
/// Where an empty, non-null value points: librdkafka reads a null pointer as a null value (a
/// tombstone), so an empty value needs an address of its own.
private nonisolated(unsafe) let emptyPayload = UnsafeRawPointer(
    UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))

private func withOptionalBytes<T>(_ data: Data?, _ body: (UnsafeRawBufferPointer?) -> T) -> T {
    guard let data else { return body(nil) }
    return data.withUnsafeBytes { body($0) }
}

/// The producer's record ids, the continuations waiting on them and the report stream.
///
/// A record's librdkafka opaque is its id shifted left by one, with the low bit set when a
/// caller awaits its report, so the common fire-and-forget report costs no lock.
private final class Deliveries: Sendable {
    private let lastID = Atomic<UInt64>(0)
    private let failures = Atomic<UInt64>(0)
    var failedCount: UInt64 { failures.load(ordering: .acquiring) }
    /// Failures that were the broker refusing a record for good (rare: a lock is fine).
    let refusals = Mutex<(count: UInt64, last: KafkaError?)>((0, nil))
    private let waiting = Mutex<[UInt64: CheckedContinuation<DeliveryReport, any Error>]>([:])
    private let ledger = Mutex(DeliveryLedger())
    private let stream: AsyncStream<DeliveryReport>.Continuation?

    init(stream: AsyncStream<DeliveryReport>.Continuation?) {
        self.stream = stream
    }

    func nextID() -> UInt64 {
        lastID.wrappingAdd(1, ordering: .relaxed).newValue
    }

    static func opaque(id: UInt64, awaited: Bool) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: UInt(id << 1 | (awaited ? 1 : 0)))
    }

    func register(_ id: UInt64, _ continuation: CheckedContinuation<DeliveryReport, any Error>) {
        waiting.withLock { $0[id] = continuation }
    }

    func fail(_ id: UInt64, _ error: any Error) {
        abandon(id)
        waiting.withLock { $0.removeValue(forKey: id) }?.resume(throwing: error)
    }

    /// An id that never reached librdkafka (its send threw): it will have no report.
    func abandon(_ id: UInt64) {
        ledger.withLock { $0.reported(id) }
    }

    var lastAssignedID: UInt64 { lastID.load(ordering: .acquiring) }
    var reportedThrough: UInt64 { ledger.withLock { $0.through } }

    /// Called on the poll thread for each delivery report.
    func deliver(_ message: UnsafePointer<rd_kafka_message_t>) {
        let opaque = UInt64(UInt(bitPattern: clearway_message_opaque(message)))
        let id = opaque >> 1
        // The failure is counted before the id is: whoever sees the id reported sees its failure.
        if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let error = KafkaError.result(message.pointee.err, context: "delivery failed")
            if error.isRecordRefusal { refusals.withLock { $0 = ($0.count + 1, error) } }
            failures.wrappingAdd(1, ordering: .releasing)
        }
        ledger.withLock { $0.reported(id) }
        let waiter = opaque & 1 == 1 ? waiting.withLock { $0.removeValue(forKey: id) } : nil
        guard waiter != nil || stream != nil else { return }
        let m = message.pointee
        let error = m.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.result(m.err, context: "delivery failed")
        let report = DeliveryReport(
            id: id, topic: String(cString: rd_kafka_topic_name(m.rkt)), partition: m.partition, offset: m.offset,
            error: error)
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: report) }
        }
        stream?.yield(report)
    }

    func finish() {
        stream?.finish()
        let waiters = waiting.withLock { waiting in
            defer { waiting = [:] }
            return waiting
        }
        for continuation in waiters.values { continuation.resume(throwing: KafkaError.shutDown("the producer")) }
    }
}

/// A point in a producer's sends (`KafkaProducer.deliveryMark()`).
public struct DeliveryMark: Sendable, Hashable {
    let id: UInt64
}

/// Which record ids have had their delivery report: every id up to `through`, plus the bits of
/// those after it that came early (reports come out of order across partitions), in a ring that
/// grows to span the ids in flight — one bit each, so a partition stuck for `message.timeout.ms`
/// while the others go on costs a bit per record sent meanwhile, not a set entry.
struct DeliveryLedger {
    private(set) var through: UInt64 = 0  // ids start at 1
    private var early: [UInt64]

    /// `words`: the ring's first size (65,536 ids), a power of two.
    init(words: Int = 1024) {
        early = Array(repeating: 0, count: words)
    }

    mutating func reported(_ id: UInt64) {
        guard id > through else { return }
        guard id != through + 1 else {
            through = id
            catchUp()
            return
        }
        if id - through > UInt64(early.count * 64) { grow(toSpan: id - through) }
        early[word(id)] |= bit(id)
    }

    /// Moves `through` over the early ids that now follow it (a whole word at a time where it can).
    private mutating func catchUp() {
        while true {
            let next = through + 1
            if next % 64 == 0, early[word(next)] == ~0 {
                early[word(next)] = 0
                through += 64
            } else if early[word(next)] & bit(next) != 0 {
                early[word(next)] &= ~bit(next)
                through = next
            } else {
                return
            }
        }
    }

    /// Doubles the ring until it spans `span` ids after `through`, keeping the early bits.
    private mutating func grow(toSpan span: UInt64) {
        let old = early
        let oldWords = UInt64(old.count)
        var words = old.count
        while UInt64(words * 64) < span { words *= 2 }
        early = Array(repeating: 0, count: words)
        // The early ids lie in through + 1 ... through + oldWords * 64: up to oldWords + 1 words,
        // the first and the last sharing a slot (their ids, and so their bits, never overlap).
        let (first, last) = (through + 1, through + oldWords * 64)
        for number in (first / 64)...(last / 64) {
            let low = max(first, number * 64)
            let high = min(last, number * 64 + 63)
            let width = high - low + 1
            let mask = width == 64 ? ~UInt64(0) : ((1 << width) - 1) << (low % 64)
            early[Int(number % UInt64(words))] |= old[Int(number % oldWords)] & mask
        }
    }

    private func word(_ id: UInt64) -> Int { Int((id / 64) % UInt64(early.count)) }
    private func bit(_ id: UInt64) -> UInt64 { 1 << (id % 64) }
}

/// A thread of its own that runs `body` in a loop until stopped.
final class PollThread: Sendable {
    private let running = Atomic<Bool>(true)
    private let done = DispatchSemaphore(value: 0)
    private let wake: @Sendable () -> Void

    /// `wake` cuts a waiting turn of `body` short (`rd_kafka_queue_yield`), so `stop` does not wait out
    /// the poll's timeout.
    init(name: String, wake: @escaping @Sendable () -> Void, _ body: @escaping @Sendable () -> Void) {
        self.wake = wake
        let thread = Thread { [self] in
            while running.load(ordering: .acquiring) { body() }
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Stops the loop and waits for its current turn to end (blocking; at most one turn).
    func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        wake()
        done.wait()
    }
}

/// A reference to a librdkafka queue. `@unchecked Sendable`: librdkafka's queues are thread-safe,
/// and the owner destroys the reference after the threads that use it have stopped.
struct QueueHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }
}
