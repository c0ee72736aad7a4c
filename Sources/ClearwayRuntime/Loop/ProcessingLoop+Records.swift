import ClearwayKafka
import Foundation

/// Processing an input record: the handler's call, its outputs, its failures.
extension ProcessingLoop {
    func process(_ record: InputRecord) async throws {
        let partition = TopicPartition(topic: record.topic, partition: record.partition)
        let retry = retries.waiting(partition)
        if let retry {
            // Waiting to retry an earlier record of this partition; this one is read again later.
            guard retry.offset == record.offset, ContinuousClock.now >= retry.resumeAt else { return }
        }
        metrics.recordsIn.increment()
        let attempt = retry?.attempt ?? 1
        let inputTopic = outputs.logicalName(of: record.topic)
        let state = stateManager.state(of: record.partition)
        let context = HandlerContext(
            worker: definition.name, topicPrefix: prefix, inputTopic: inputTopic, attempt: attempt, state: state,
            tables: tables.tables)
        let started = ContinuousClock.now
        let made: [OutputRecord]
        state?.beginAttempt()
        do {
            made = try await definition.handler.handle(record, context: context)
            if retry != nil { retries.finished(partition) }
            if let (output, size) = sizeLimit.firstOversized(made) {
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
        let outputs = outputs
        try await outputs.emit(made, traceparent: traceparent) { index, type in
            outputs.outputID(of: record, inputTopic: inputTopic, index: index, type: type)
        }
        committer.advance(partition, to: record.offset + 1)
    }

    /// A record of the stretch after a refusal (`RefusalIsolation`): handled and committed on its
    /// own, so that a refusal now is its own; refused `RefusalIsolation.attempts` times, it goes to
    /// the DLQ instead (`output-refused`), with its value left out if the DLQ refuses that too.
    func processAlone(_ record: InputRecord) async throws {
        let partition = TopicPartition(topic: record.topic, partition: record.partition)
        if committer.hasUncommitted {
            let before = rewinds
            try await commit()
            guard rewinds == before else { return }
        }
        let before = rewinds
        let refusedTimes = isolation.refusals(partition, offset: record.offset)
        isolation.begin(partition, offset: record.offset)
        if refusedTimes >= RefusalIsolation.attempts {
            let reason = producer.lastRefusal.map { "\($0)" } ?? "a record refusal"
            try beginIfNeeded()
            try await outputs.deadLetter(
                record, errorClass: RefusalIsolation.errorClass,
                message:
                    "the broker refused its output for good, \(refusedTimes) times (\(reason)); the input is set aside here and the partition goes on. An output too large for its topic: raise the topic's max.message.bytes (or set CLEARWAY_KAFKA_MESSAGE_MAX_BYTES below it, so that the worker refuses such inputs itself), or make the input smaller, then publish it again",
                omitValue: refusedTimes > RefusalIsolation.attempts)
            committer.advance(partition, to: record.offset + 1)
        } else {
            try await process(record)
        }
        try await commit()
        if rewinds == before { isolation.committed() }
    }

    /// A transient failure is retried (the DLQ once attempts run out); anything else goes to the DLQ.
    private func handleFailure(
        _ error: any Error, record: InputRecord, partition: TopicPartition, attempt: Int,
        started: ContinuousClock.Instant
    ) async throws {
        metrics.handled(since: started)
        if let failure = error as? TransientFailure, attempt < retries.maximumAttempts {
            try retries.schedule(record, partition: partition, attempt: attempt + 1, failure: failure)
            return
        }
        retries.finished(partition)
        let (errorClass, message): (String, String) =
            switch error {
            case let failure as TransientFailure:
                ("retries-exhausted", "\(attempt) attempts failed; last: \(failure.message)")
            case let rejected as RecordRejected: (rejected.errorClass, rejected.message)
            default: (String(describing: type(of: error)), "\(error)")
            }
        try beginIfNeeded()
        try await outputs.deadLetter(record, errorClass: errorClass, message: message)
        committer.advance(partition, to: record.offset + 1)
    }
}
