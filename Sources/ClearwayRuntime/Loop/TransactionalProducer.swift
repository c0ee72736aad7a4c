import ClearwayKafka
import Foundation
import Logging

/// What the loop does after a Kafka client error in a transaction, decided in one place
/// (`TransactionalProducer.recovery(after:)`).
enum Recovery: Equatable {
    /// The producer is fenced (another instance took its transactional id) or failed: build a
    /// new one, then go back to the committed offsets.
    case rebuild
    /// The transaction cannot commit (a produce request failed for good, a timeout, the producer
    /// in the wrong state): abort it and go back to the committed offsets.
    case abort
    /// Not a transaction failure: the loop stops with it.
    case fail
}

/// The loop's producer. It sends outputs, and under exactly-once it owns the transaction: begin,
/// commit with the input offsets (in the foreground or in the background while the loop goes
/// on), abort, and the rebuild of a fenced or failed producer. While a transaction commits in the
/// background the outputs made meanwhile are held here for the next one. It also keeps count of
/// what the broker refused or failed to deliver, for the loop to take account of.
///
/// Used only by the task running the loop.
final class TransactionalProducer {
    private(set) var client: KafkaProducer
    let isTransactional: Bool
    private let settings: KafkaProducerConfiguration
    private let logger: Logger

    /// A transaction committing in the background, and a flag set when it has ended.
    private var background: (task: Task<Void, any Error>, done: AtomicFlag)?
    /// Outputs made while a transaction commits in the background: they belong to the next.
    private(set) var held: [ProducerRecord] = []
    private(set) var heldBytes = 0

    /// The client's count of failed deliveries the loop has taken account of.
    private var failuresSeen: UInt64 = 0
    /// The client's count of refused records the loop has taken account of, and the last refusal
    /// (for the DLQ record's reason).
    private var refusalsSeen: UInt64 = 0
    private(set) var lastRefusal: KafkaError?
    /// Whether the broker refused records for good since the last `takeRefusal()`.
    private var refusalPending = false

    /// Calls to end a transaction whose commit times out (it goes on in the background, and a
    /// call again waits for it) before it is aborted and its records are handled again.
    static let commitAttempts = 3

    /// Calls to abort a transaction whose abort times out (30 s each): a broker that is down or
    /// restarting gets five minutes before the worker gives up and stops.
    static let abortAttempts = 10

    init(settings: KafkaProducerConfiguration, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        isTransactional = settings.transactionalID != nil
        client = try KafkaProducer(configuration: settings, logger: logger)
    }

    /// What to do after `error` ended a transaction's commit, abort or a send in it.
    static func recovery(after error: any Error) -> Recovery {
        guard let error = error as? KafkaError else { return .fail }
        if error.isFatal { return .rebuild }
        if error.transactionRequiresAbort || error.isRetriable || error.isInvalidState { return .abort }
        return .fail
    }

    func initTransactions() async throws {
        if isTransactional { try await client.initTransactions() }
    }

    func begin() throws {
        try client.beginTransaction()
        failuresSeen = client.failedDeliveryCount
    }

    /// Hands a record to the client (or holds it while a transaction commits in the background)
    /// without waiting: `false` when the client's queue is full. Synchronous, so the per-output
    /// path has no suspension point and no async frame.
    @inline(__always)
    func trySend(_ record: ProducerRecord) throws -> Bool {
        if background != nil {
            held.append(record)
            heldBytes += record.value.count + (record.key?.count ?? 0)
            return true
        }
        do {
            _ = try client.trySend(record)
            return true
        } catch let error as KafkaError where error.isQueueFull {
            return false
        }
    }

    /// Hands a record to the client, waiting for room in its queue when it is full.
    func send(_ record: ProducerRecord) async throws {
        if try !trySend(record) { try await sendWhenRoom(record) }
    }

    /// Hands a record to the client once its queue has room (after `trySend` found it full).
    func sendWhenRoom(_ record: ProducerRecord) async throws { _ = try await client.send(record) }

    /// Adds the offsets to the open transaction and commits it.
    func commit(_ offsets: [TopicPartitionOffset], group: ConsumerGroupMetadata) async throws {
        try await client.sendOffsetsToTransaction(offsets, groupMetadata: group)
        try await client.commitTransaction(attempts: Self.commitAttempts)
    }

    /// Adds the offsets to the open transaction and commits it in the background; outputs sent
    /// from now on are held until `settle()`.
    func commitInBackground(_ offsets: [TopicPartitionOffset], group: ConsumerGroupMetadata, metrics: RuntimeMetrics) {
        let done = AtomicFlag()
        background = (Self.committing(client, offsets, group, metrics, done), done)
    }

    private static func committing(
        _ client: KafkaProducer, _ offsets: [TopicPartitionOffset], _ group: ConsumerGroupMetadata,
        _ metrics: RuntimeMetrics, _ done: AtomicFlag
    ) -> Task<Void, any Error> {
        let attempts = commitAttempts
        return Task {
            defer { done.set() }
            let started = ContinuousClock.now
            try await client.sendOffsetsToTransaction(offsets, groupMetadata: group)
            try await client.commitTransaction(attempts: attempts)
            metrics.committed(since: started)
        }
    }

    /// Whether the transaction committing in the background has ended.
    var backgroundCommitEnded: Bool { background?.done.isSet ?? false }

    /// Waits for the transaction committing in the background; `nil` when it committed (or none
    /// was), else its error. The held outputs stay held until `takeHeld()`.
    func settle() async -> (any Error)? {
        guard let (task, _) = background else { return nil }
        background = nil
        do {
            try await task.value
            return nil
        } catch {
            return error
        }
    }

    /// The outputs held during a background commit, handed over (and forgotten here).
    func takeHeld() -> [ProducerRecord] {
        defer { dropHeld() }
        return held
    }

    func dropHeld() {
        held = []
        heldBytes = 0
    }

    /// Aborts the open transaction; a producer that is fenced or failed meanwhile is rebuilt.
    func abort() async throws {
        do {
            try await client.abortTransaction(attempts: Self.abortAttempts)
        } catch let error as KafkaError where error.isFatal {
            try await rebuild()
        }
    }

    /// A new client in place of a fenced or failed one; the old one's refusals are taken account
    /// of first (the new one counts from zero).
    func rebuild() async throws {
        noteRefusals()
        client = try KafkaProducer(configuration: settings, logger: logger)
        refusalsSeen = 0
        failuresSeen = 0
        try await client.initTransactions()
    }

    func flush(timeout: Duration) async throws { try await client.flush(timeout: timeout) }
    func deliveryMark() -> DeliveryMark { client.deliveryMark() }
    func isDelivered(_ mark: DeliveryMark) -> Bool { client.isDelivered(mark) }
    func shutdown(timeout: Duration) async { await client.shutdown(timeout: timeout) }

    /// Whether a delivery failed since the last look (at-least-once: the outputs since the last
    /// commit are produced again).
    func deliveryFailedSinceLastLook() -> Bool {
        let failed = client.failedDeliveryCount
        guard failed != failuresSeen else { return false }
        failuresSeen = failed
        return true
    }

    /// Takes account of records the broker refused for good since the last look.
    func noteRefusals() {
        let refusals = client.recordRefusals
        guard refusals.count != refusalsSeen else { return }
        refusalsSeen = refusals.count
        lastRefusal = refusals.last
        refusalPending = true
    }

    /// Whether a refusal was noted since the last call.
    func takeRefusal() -> Bool {
        defer { refusalPending = false }
        return refusalPending
    }
}
