import Foundation

/// The handler's view of its record's partition state: reads see this transaction's own writes;
/// writes are kept until the runtime commits them with the outputs and offsets.
public final class PartitionState: @unchecked Sendable {
    // @unchecked: used only by the processing loop's task, one record at a time.
    let store: PartitionStore
    var pending: [String: StateChange] = [:]
    var pendingTimers: [String: StateChange] = [:]

    /// What one attempt changed, to undo it if the handler throws (a journal of the values it
    /// replaced, not a copy of everything pending: that made each record cost O(batch)).
    private var journal: [(key: String, isTimer: Bool, previous: StateChange?)]?

    /// The largest value the changelog can carry (the producer's record limit, less room for
    /// the key and headers); a larger one could never be committed.
    var valueLimit = Int.max
    /// A value this attempt set over `valueLimit`: the runtime sets the record aside.
    private(set) var oversized: (key: String, bytes: Int)?

    init(store: PartitionStore) { self.store = store }

    func beginAttempt() {
        journal = []
        oversized = nil
    }

    func endAttempt() { journal = nil }

    func rollBackAttempt() {
        for entry in (journal ?? []).reversed() {
            if entry.isTimer { pendingTimers[entry.key] = entry.previous } else { pending[entry.key] = entry.previous }
        }
        journal = nil
    }

    private func change(_ key: String, _ change: StateChange) {
        journal?.append((key, false, pending[key]))
        pending[key] = change
    }

    private func changeTimer(_ key: String, _ change: StateChange) {
        journal?.append((key, true, pendingTimers[key]))
        pendingTimers[key] = change
    }

    /// Committed values read so far (`nil` inside: absent), kept in step with the store by
    /// `applied()`: the processing loop is the store's only writer.
    private var committed: [String: Data?] = [:]
    private static let committedLimit = 100_000
    /// And at most this many bytes of values: a worker whose values are large (the
    /// manifest-builder keeps whole shipments) would otherwise hold 100,000 of them per partition.
    private static let committedBytesLimit = 24 << 20
    private var committedBytes = 0

    private func cache(_ key: String, _ value: Data?) {
        if committed.count >= Self.committedLimit || committedBytes >= Self.committedBytesLimit {
            committed.removeAll(keepingCapacity: true)
            committedBytes = 0
        }
        committed[key] = .some(value)
        committedBytes += value?.count ?? 0
    }

    /// The value of a key.
    public func value(_ key: String) throws -> Data? {
        if let change = pending[key] {
            if case .put(let value) = change { return value }
            return nil
        }
        if let known = committed[key] { return known }
        let value = try store.value(key)
        cache(key, value)
        return value
    }

    /// The keys that start with `prefix`, this transaction's own writes included, in order.
    public func keys(withPrefix prefix: String) throws -> [String] {
        var keys = Set(try store.keys(withPrefix: prefix))
        for (key, change) in pending where key.hasPrefix(prefix) {
            if case .put = change { keys.insert(key) } else { keys.remove(key) }
        }
        return keys.sorted()
    }

    /// Sets a key.
    public func set(_ key: String, _ value: Data) {
        if value.count > valueLimit { oversized = (key, value.count) }
        change(key, .put(value))
    }

    /// Removes a key.
    public func remove(_ key: String) { change(key, .delete) }

    /// Schedules (or moves) a timer; it fires through the handler's `timerFired` once `due` has
    /// passed, after restarts and moves too.
    public func schedule(timer key: String, at due: Date, payload: Data = Data()) {
        changeTimer(key, .timer(due: Int64((due.timeIntervalSince1970 * 1000).rounded()), payload: payload))
    }

    /// Cancels a timer.
    public func cancel(timer key: String) { changeTimer(key, .timerCancelled) }

    var hasChanges: Bool { !pending.isEmpty || !pendingTimers.isEmpty }

    /// The pending changes keyed as the store and changelog see them.
    var changes: [(key: String, change: StateChange)] {
        pending.map { ($0.key, $0.value) } + pendingTimers.map { ($0.key, $0.value) }
    }

    /// The pending changes are in the store now: they become the committed values.
    func applied() {
        for (key, change) in pending {
            switch change {
            case .put(let value): cache(key, value)
            default: cache(key, nil)
            }
        }
        discard()
    }

    func discard() {
        pending = [:]
        pendingTimers = [:]
    }
}

/// The partition's outbox: entries committed with the input and then sent by the runtime's
/// dispatcher (`WorkerDefinition.outbox`), one per key; a newer entry under a key replaces the
/// older one. They are state entries under a reserved prefix, so they reach the changelog and a
/// new owner of the partition like any other.
extension PartitionState {
    static let outboxPrefix = "~outbox/"

    /// Puts (or replaces) the outbox entry under `key`.
    public func enqueue(outbox key: String, _ payload: Data) { set(Self.outboxPrefix + key, payload) }

    /// The outbox entry under `key`, if any.
    public func outbox(_ key: String) throws -> Data? { try value(Self.outboxPrefix + key) }

    /// Removes the outbox entry under `key` (done with).
    public func removeFromOutbox(_ key: String) { remove(Self.outboxPrefix + key) }

    /// This transaction's outbox changes (`nil`: removed), by entry key.
    var outboxChanges: [(key: String, payload: Data?)] {
        pending.compactMap { key, change in
            guard key.hasPrefix(Self.outboxPrefix) else { return nil }
            let name = String(key.dropFirst(Self.outboxPrefix.count))
            if case .put(let value) = change { return (name, value) }
            return (name, nil)
        }
    }

    /// The committed outbox entries, from the store.
    func committedOutbox() throws -> [(key: String, payload: Data)] {
        try store.entries(withPrefix: Self.outboxPrefix).map {
            (String($0.key.dropFirst(Self.outboxPrefix.count)), $0.value)
        }
    }
}
