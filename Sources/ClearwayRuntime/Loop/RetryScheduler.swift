import ClearwayKafka
import Logging

/// Retries of records whose handler failed for now (`TransientFailure`), without blocking the
/// poll loop: the partition is paused, and after the backoff it is sought back to the record and
/// resumed; the other partitions go on meanwhile.
///
/// Used only by the task running the loop.
final class RetryScheduler {
    struct Pending {
        var offset: Int64
        var attempt: Int
        var resumeAt: ContinuousClock.Instant
        /// Whether the partition was sought back to `offset` and resumed (once, not every turn).
        var resumed = false
    }

    private let consumer: KafkaConsumer
    private let policy: RetryPolicy
    private let metrics: RuntimeMetrics
    private let logger: Logger
    private var pending: [TopicPartition: Pending] = [:]

    init(consumer: KafkaConsumer, policy: RetryPolicy, metrics: RuntimeMetrics, logger: Logger) {
        self.consumer = consumer
        self.policy = policy
        self.metrics = metrics
        self.logger = logger
    }

    /// Attempts a record may have before it goes to the DLQ.
    var maximumAttempts: Int { policy.maximumAttempts }

    /// The retry a partition waits for, if any.
    @inline(__always)
    func waiting(_ partition: TopicPartition) -> Pending? {
        pending.isEmpty ? nil : pending[partition]
    }

    /// Pauses the partition and remembers when to read the record again.
    func schedule(_ record: InputRecord, partition: TopicPartition, attempt: Int, failure: TransientFailure) throws {
        let backoff = policy.backoff(beforeAttempt: attempt)
        pending[partition] = Pending(offset: record.offset, attempt: attempt, resumeAt: .now + backoff)
        metrics.retries.increment()
        try consumer.pause([partition])
        logger.info(
            "transient failure; retrying",
            metadata: [
                "kafka.partition": "\(partition)", "kafka.offset": "\(record.offset)", "retry.attempt": "\(attempt)",
                "retry.backoff": "\(backoff)", "error.message": "\(failure.message)",
            ])
    }

    /// The partition's retry is over (the record was handled or set aside).
    func finished(_ partition: TopicPartition) { pending[partition] = nil }

    /// Seeks the partitions whose backoff has passed back to their record, and resumes them.
    func resumeDue() async throws {
        let now = ContinuousClock.now
        for (partition, retry) in pending where !retry.resumed && retry.resumeAt <= now {
            try await consumer.seek([
                TopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: retry.offset)
            ])
            try consumer.resume([partition])
            pending[partition]?.resumed = true
        }
    }

    /// Forgets every retry (the loop went back to the committed offsets and resumed everything).
    func cancelAll() { pending = [:] }
}
