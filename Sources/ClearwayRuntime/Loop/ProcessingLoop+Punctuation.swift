import ClearwayKafka
import Foundation

/// A stateful worker's work between records, in the same transaction as records: due timers,
/// and reference-table changes told to the handler.
extension ProcessingLoop {
    func punctuate() async throws {
        try await fireDueTimers()
        try await deliverTableChanges()
        try await deliverOutboxCompletions()
        try holdBackOutboxPartitions()
    }

    /// Fires the timers that are due.
    private func fireDueTimers() async throws {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        for (partition, state) in stateManager.states {
            for (key, due, payload) in try state.store.dueTimers(now: now) {
                let id = "\(partition)/\(key)"
                guard state.pendingTimers[key] == nil, committer.fire(timer: id) else { continue }
                try beginIfNeeded()
                let context = punctuationContext(state)
                let source = "timer \(key) of partition \(partition)"
                guard
                    let fired = try await attempt(
                        state, source: source, key: key, value: payload,
                        { try await definition.handler.timerFired(key: key, payload: payload, context: context) })
                else {
                    committer.unfire(timer: id)  // a transient failure: it fires again next turn
                    continue
                }
                let made = try await outputs.divertOversized(fired, from: source)
                if state.pendingTimers[key] == nil { state.cancel(timer: key) }
                let worker = definition.name
                try await outputs.emit(made, traceparent: nil) { index, type in
                    CloudEvents.idBytes(
                        worker: worker, timer: key, partition: partition, due: due, outputIndex: index,
                        outputType: type)
                }
                committer.count()
            }
        }
    }

    /// Tells the handler which reference-table keys changed, once per assigned partition; a
    /// partition just assigned or rolled back hears "anything may have".
    private func deliverTableChanges() async throws {
        guard !tables.isEmpty else { return }
        let changes = tables.drainChanges()
        guard !changes.isEmpty || !tables.sweepPending.isEmpty else { return }
        var retry = Set<Int32>()
        for (partition, state) in stateManager.states.sorted(by: { $0.key < $1.key }) {
            let sweep = tables.sweepPending.contains(partition)
            guard sweep || !changes.isEmpty else { continue }
            try beginIfNeeded()
            let context = punctuationContext(state)
            let source = "reference-table change, partition \(partition)"
            guard
                let changed = try await attempt(
                    state, source: source, key: "tables/\(partition)", value: Data(),
                    { try await definition.handler.tablesChanged(sweep ? nil : changes, context: context) })
            else {
                retry.insert(partition)  // a transient failure: the partition hears "anything" next turn
                continue
            }
            let made = try await outputs.divertOversized(changed, from: source)
            let worker = definition.name
            try await outputs.emit(made, traceparent: nil) { index, type in
                CloudEvents.idBytes(worker: worker, seed: "tables/\(partition)/\(index)", outputType: type)
            }
            committer.count()
        }
        tables.delivered(retrying: retry)
    }

    /// What the handler gets for work between records (a timer, a table change, an outbox
    /// completion) on a partition's state.
    func punctuationContext(_ state: PartitionState) -> HandlerContext {
        HandlerContext(
            worker: definition.name, topicPrefix: prefix, inputTopic: definition.inputs.first?.name ?? "",
            attempt: 1, state: state, tables: tables.tables)
    }

    /// A timer's or a table change's handler call, its state changes undone if it throws. A
    /// failure that is not transient would fail again after every restart and stop the
    /// partition: it goes to the DLQ (with `key` and `value`) and no outputs are returned; a
    /// transient one returns `nil`, for the caller to try again later.
    func attempt(
        _ state: PartitionState, source: String, key: String, value: Data,
        _ body: () async throws -> [OutputRecord]
    ) async throws -> [OutputRecord]? {
        state.beginAttempt()
        do {
            let made = try await body()
            if let (stateKey, size) = state.oversized {
                throw RecordRejected(RecordSizeLimit.stateErrorClass, sizeLimit.refusal(ofState: stateKey, size: size))
            }
            state.endAttempt()
            return made
        } catch {
            state.rollBackAttempt()
            if let failure = error as? TransientFailure {
                logger.info(
                    "transient failure; trying again", metadata: ["source": "\(source)", "error.message": "\(failure)"])
                return nil
            }
            let rejected = error as? RecordRejected
            try await outputs.deadLetter(
                key: Data(utf8: key), value: value, source: source,
                errorClass: rejected?.errorClass ?? String(describing: type(of: error)),
                message: rejected?.message ?? "\(error)")
            return []
        }
    }
}
