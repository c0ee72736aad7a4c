import ClearwayKafka
import Foundation

/// A worker with an outbox (`WorkerDefinition.outbox`): what its dispatcher hears from the loop,
/// and its completions handed to the handler in the transaction.
extension ProcessingLoop {
    /// The dispatcher takes the partitions' outbox from their stores (assigned, or rolled back).
    func reloadOutbox(_ partitions: [Int32]) throws {
        guard let outbox else { return }
        for partition in partitions {
            guard let state = stateManager.state(of: partition) else { continue }
            outbox.reload(partition, entries: try state.committedOutbox())
        }
    }

    /// A commit's outbox changes go to the dispatcher: it sends only what is committed.
    func outboxCommitted(_ changes: [Int32: [(key: String, payload: Data?)]]) {
        guard let outbox else { return }
        for (partition, changes) in changes { outbox.committed(partition, changes) }
    }

    /// Hands the finished outbox entries to the handler, in the transaction.
    func deliverOutboxCompletions() async throws {
        guard let outbox else { return }
        for (partition, completion) in outbox.takeCompletions() {
            guard let state = stateManager.state(of: partition) else { continue }
            try beginIfNeeded()
            let context = punctuationContext(state)
            let source = "outbox entry \(completion.key) of partition \(partition)"
            guard
                let made = try await attempt(
                    state, source: source, key: completion.key, value: completion.payload,
                    { try await definition.handler.outboxCompleted(completion, context: context) })
            else {
                outbox.putBack(partition, completion)  // a transient failure: next turn
                continue
            }
            let outputs = try await self.outputs.divertOversized(made, from: source)
            let worker = definition.name
            // The same completion (entry, payload, outcome) has the same ids, should it be handled
            // again after a rollback.
            let seed =
                "outbox/\(partition)/\(completion.key)/\(Self.fingerprint(completion.payload))/\(completion.outcome.kind)"
            try await self.outputs.emit(outputs, traceparent: nil) { index, type in
                CloudEvents.idBytes(worker: worker, seed: "\(seed)/\(index)", outputType: type)
            }
            committer.count()
        }
    }

    /// Pauses the partitions whose outbox is over its limit, and resumes them under half of it
    /// (not one a retry holds: the retry resumes it).
    func holdBackOutboxPartitions() throws {
        guard let outbox, let input = definition.inputs.first else { return }
        let limit = configuration.outbox.limit
        for partition in stateManager.states.keys {
            let count = outbox.count(of: partition)
            let topicPartition = TopicPartition(topic: prefix + input.name, partition: partition)
            if count > limit, !outboxPaused.contains(partition) {
                try consumer.pause([topicPartition])
                outboxPaused.insert(partition)
                logger.info(
                    "outbox over its limit; pausing the partition",
                    metadata: ["partition": "\(partition)", "outbox.entries": "\(count)"])
            } else if count <= limit / 2, outboxPaused.contains(partition) {
                outboxPaused.remove(partition)
                guard retries.waiting(topicPartition).map(\.resumed) ?? true else { continue }
                try consumer.resume([topicPartition])
            }
        }
    }
}

extension ProcessingLoop {
    /// A stable 64-bit FNV-1a hash of the bytes (`hashValue` is seeded per process).
    static func fingerprint(_ data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}

extension OutboxCompletion.Outcome {
    var kind: String {
        switch self {
        case .delivered: "delivered"
        case .refused: "refused"
        case .gaveUp: "gave-up"
        }
    }
}
