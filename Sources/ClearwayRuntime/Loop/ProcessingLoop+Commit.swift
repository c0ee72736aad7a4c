import ClearwayKafka
import Foundation

/// Committing, and going back to the last commit: the `Committer` decides, these carry it out.
extension ProcessingLoop {
    /// At the end of a poll turn: commits when the batch is full or old enough.
    func maybeCommit() async throws {
        switch committer.turnEnded(now: .now) {
        case .none: break
        case .commit: try await commit()
        case .commitInBackground: try await commitInBackground()
        case .checkpoint: try await checkpoint()
        case .storeCheckpoints: try await storeDeliveredCheckpoints()
        }
    }

    /// Commits the outputs and offsets so far: one transaction, or (at-least-once) a flush and
    /// then the offsets. A transaction that must be aborted is, and processing resumes from the
    /// last commit; a fenced producer is rebuilt. Everything is flushed and committed, including
    /// any checkpoints: what a revoke and a stop need.
    func commit() async throws {
        try await settleCommit()
        guard committer.hasWork(stateChanged: stateManager.hasChanges) else { return }
        let pending = committer.offsetsToCommit
        let offsets = Self.list(pending)
        let started = ContinuousClock.now
        defer { metrics.committed(since: started) }
        if committer.isTransactional {
            do {
                try beginIfNeeded()
                try await stateManager.writeChangelog(to: producer, offsets: pending)
                try await producer.commit(offsets, group: consumer.groupMetadata())
            } catch {
                try await recover(fromFailedCommit: error)
                return
            }
        } else {
            try await stateManager.writeChangelog(to: producer, offsets: pending)
            try await producer.flush(timeout: configuration.shutdownTimeout)
            guard try await noDeliveryFailed() else { return }
            outboxCommitted(try stateManager.apply(offsets: pending))
            try consumer.store(offsets)
            try await consumer.commit()
        }
        if committer.isTransactional { outboxCommitted(try stateManager.apply(offsets: pending)) }
        committer.committed(now: .now)
    }

    /// Exactly-once without state: ends the transaction in the background (adding the offsets,
    /// flushing, committing: broker round trips the loop would otherwise sit through) while the
    /// loop reads and handles the next records; `settleCommit()` takes up its result.
    private func commitInBackground() async throws {
        try await settleCommit()
        guard committer.state == .open else { return }
        let group = try consumer.groupMetadata()
        guard let offsets = committer.startBackgroundCommit() else { return }
        producer.commitInBackground(Self.list(offsets), group: group, metrics: metrics)
    }

    /// Waits for the transaction committing in the background, then begins the next with the
    /// outputs held meanwhile. A failed commit goes back to the committed offsets, as `commit()`
    /// does; what was handled meanwhile is handled again.
    func settleCommit() async throws {
        guard committer.state == .committing else { return }
        let failure = await producer.settle()
        switch committer.backgroundCommitEnded(succeeded: failure == nil, held: !producer.held.isEmpty) {
        case .none:
            break
        case .recover:
            try await recover(fromFailedCommit: failure!)
        case .beginAndSendHeld:
            let held = producer.takeHeld()
            do {
                try beginIfNeeded()
                for record in held { try await producer.send(record) }
            } catch let error as KafkaError where error.isInvalidState {
                try await abortAndRewind(reason: "\(error)")
            }
        }
    }

    /// After a transaction failed to commit: a fenced or failed producer is rebuilt, and any
    /// other transaction is aborted; either way processing goes back to the committed offsets.
    /// Rethrows an error that is neither.
    private func recover(fromFailedCommit error: any Error) async throws {
        switch committer.commitFailed(TransactionalProducer.recovery(after: error)) {
        case .rebuild:
            logger.error("producer fenced or failed; rebuilding it", metadata: ["kafka.error": "\(error)"])
            try await producer.rebuild()
            try await rewind()
        case .abort:
            try await abortAndRewind(reason: "\(error)")
        case .fail:
            throw error
        }
    }

    /// At-least-once without state: the offsets so far wait, as a checkpoint, for the outputs sent
    /// before them to be acknowledged, while the loop goes on reading (a flush here would stall it
    /// for a broker round trip every batch). Offsets are stored once their outputs are delivered.
    private func checkpoint() async throws {
        committer.checkpoint(at: producer.deliveryMark())
        try await storeDeliveredCheckpoints()
    }

    /// Stores the offsets of the checkpoints whose outputs are all acknowledged, and commits the
    /// stored offsets to the group every commit interval. A failed delivery rewinds to the last
    /// commit, so the failed outputs are produced again.
    private func storeDeliveredCheckpoints() async throws {
        let producer = producer
        let delivered = committer.takeDelivered { producer.isDelivered($0) }
        // Read after `isDelivered`: a report's failure is counted before its id is.
        guard try await noDeliveryFailed() else { return }
        if !delivered.isEmpty {
            try consumer.store(Self.list(delivered))
            committer.stored()
        }
        if committer.groupCommitDue(now: .now) {
            let started = ContinuousClock.now
            try await consumer.commit()
            metrics.committed(since: started)
            committer.groupCommitted(now: .now)
        }
    }

    /// At-least-once: whether every output so far was delivered; if one failed, processing goes
    /// back to the last commit, so it is produced again.
    private func noDeliveryFailed() async throws -> Bool {
        guard producer.deliveryFailedSinceLastLook() else { return true }
        logger.error("outputs failed delivery; reprocessing from the last commit")
        try await rewind()
        return false
    }

    func abortAndRewind(reason: String) async throws {
        if committer.state == .committing {
            // Its outcome no longer matters: what it did not commit is read again.
            committer.backgroundCommitAbandoned(succeeded: await producer.settle() == nil)
        }
        if committer.state == .open {
            metrics.transactionsAborted.increment()
            logger.warning("aborting the transaction", metadata: ["reason": "\(reason)"])
            try await producer.abort()
            committer.aborted()
        }
        try await rewind()
    }

    /// Goes back to the committed offsets of every assigned partition: what was processed since
    /// the last commit is processed again (its earlier outputs were aborted or are dropped by id).
    private func rewind() async throws {
        producer.noteRefusals()
        rewinds += 1
        committer.rewound()
        producer.dropHeld()
        retries.cancelAll()
        stateManager.discard()
        // Table changes heard since the last commit were rolled back with it, and so were
        // outbox completions: the outbox starts again from the stores.
        tables.sweep(stateManager.states.keys)
        try reloadOutbox(Array(stateManager.states.keys))
        outboxPaused = []
        let assigned = try consumer.assignment()
        if producer.takeRefusal() {
            let positions = assigned.isEmpty ? [] : try consumer.positions(assigned)
            if isolation.refused(readUpTo: positions) {
                logger.warning(
                    "the broker refused an output for good; the records since the last commit are handled one per commit to find whose it is",
                    metadata: ["kafka.error": "\(producer.lastRefusal.map { "\($0)" } ?? "")"])
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

    private static func list(_ offsets: [TopicPartition: Int64]) -> [TopicPartitionOffset] {
        offsets.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
    }
}
