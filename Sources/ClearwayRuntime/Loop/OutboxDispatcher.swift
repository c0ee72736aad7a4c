import Foundation
import Logging
import Metrics
import Synchronization

/// Sends the committed outbox entries of the assigned partitions through the worker's
/// `OutboxSender`, off the poll loop (docs/erp-writeback-design.md): its own tasks, at most one
/// send in flight per entry key (a newer entry waits for it, then goes), at most the sender's
/// `concurrency(of:)` per destination, backoff with jitter that honours the destination's
/// `Retry-After`, and a circuit per destination that opens after consecutive failures. Finished
/// entries are queued as completions; the loop takes them (`takeCompletions`) and hands them to
/// the handler in its transaction.
///
/// The loop tells it what is committed (`reload`, `committed`) and what is no longer
/// this instance's (`revoked`); a revoked partition's sends are cancelled and their completions
/// dropped, for its next owner sends them again.
final class OutboxDispatcher: Sendable {
    private struct EntryID: Hashable {
        var partition: Int32
        var key: String
    }

    private struct Entry {
        var payload: Data
        var destination: String
        var attempts = 0
        var due: ContinuousClock.Instant = .now
        /// Sending now (its task), or finished and waiting for the handler to remove it.
        var task: Task<Void, Never>?
        var finished = false
        /// A committed payload newer than the one in flight: sent once it is done.
        var newer: Data?
        /// Removed from the outbox while in flight: forgotten once it is done.
        var removed = false
    }

    private struct Circuit {
        var failures = 0
        var openUntil: ContinuousClock.Instant?
        var cooldown: Duration
        var probing = false
    }

    /// First in, first out, popped from the front without moving the rest.
    private struct FIFO {
        var items: [EntryID] = []
        var head = 0

        mutating func push(_ id: EntryID) { items.append(id) }

        mutating func pop() -> EntryID? {
            guard head < items.count else { return nil }
            defer {
                head += 1
                if head > 1024, head * 2 > items.count {
                    items.removeFirst(head)
                    head = 0
                }
            }
            return items[head]
        }
    }

    private struct State {
        var entries: [EntryID: Entry] = [:]
        /// Entries per partition (the back-pressure count), kept as entries come and go.
        var counts: [Int32: Int] = [:]
        /// Per destination, the entries that may go now, oldest first (an id whose entry has
        /// gone or is no longer waiting is skipped when popped).
        var queues: [String: FIFO] = [:]
        /// Entries waiting for a retry's backoff.
        var delayed: Set<EntryID> = []
        var inFlight: [String: Int] = [:]
        var circuits: [String: Circuit] = [:]
        var completions: [(partition: Int32, completion: OutboxCompletion)] = []
        /// Grows when a partition is revoked, so its sends finishing later are dropped.
        var epochs: [Int32: Int] = [:]
        var stopped = false

        /// Puts a new (or replacing) entry, waiting to be sent now.
        mutating func put(_ id: EntryID, _ entry: Entry) {
            if entries.updateValue(entry, forKey: id) == nil { counts[id.partition, default: 0] += 1 }
            delayed.remove(id)
            queues[entry.destination, default: FIFO()].push(id)
        }

        mutating func drop(_ id: EntryID) {
            guard entries.removeValue(forKey: id) != nil else { return }
            counts[id.partition, default: 1] -= 1
            delayed.remove(id)
        }
    }

    private let sender: any OutboxSender
    private let policy: OutboxPolicy
    private let logger: Logger
    private let state = Mutex(State())
    private let wakeup = Wakeup()
    private let scheduler = Mutex<Task<Void, Never>?>(nil)
    private let sends: Counter
    private let failures: Counter
    private let size: Gauge

    init(sender: any OutboxSender, policy: OutboxPolicy, worker: String, logger: Logger) {
        self.sender = sender
        self.policy = policy
        self.logger = logger
        sends = Counter(label: "clearway_outbox_sends_total", dimensions: [("worker", worker)])
        failures = Counter(label: "clearway_outbox_send_failures_total", dimensions: [("worker", worker)])
        size = Gauge(label: "clearway_outbox_entries", dimensions: [("worker", worker)])
    }

    // MARK: What the loop tells it

    func start() {
        scheduler.withLock { task in
            guard task == nil else { return }
            task = Task { [self] in await schedule() }
        }
    }

    func stop() {
        let tasks = state.withLock { state in
            state.stopped = true
            return state.entries.values.compactMap(\.task)
        }
        for task in tasks { task.cancel() }
        scheduler.withLock { $0?.cancel() }
        wakeup.signal()
    }

    /// The partition's outbox as committed, on assignment or after a rollback: entries not in
    /// flight start over from the store (a completion rolled back is sent again; the sender makes
    /// that harmless).
    func reload(_ partition: Int32, entries: [(key: String, payload: Data)]) {
        let stored = Dictionary(entries.map { ($0.key, $0.payload) }, uniquingKeysWith: { _, last in last })
        state.withLock { state in
            for (id, entry) in state.entries where id.partition == partition && stored[id.key] == nil {
                if entry.task != nil && !entry.finished {
                    state.entries[id]?.removed = true
                } else {
                    state.drop(id)
                }
            }
            for (key, payload) in stored {
                let id = EntryID(partition: partition, key: key)
                if let entry = state.entries[id], entry.task != nil, !entry.finished {
                    state.entries[id]?.removed = false
                    if entry.payload != payload { state.entries[id]?.newer = payload }
                } else {
                    state.put(id, Entry(payload: payload, destination: sender.destination(of: payload)))
                }
            }
        }
        updateSize()
        wakeup.signal()
    }

    /// A transaction committed these outbox changes (`nil`: removed).
    func committed(_ partition: Int32, _ changes: [(key: String, payload: Data?)]) {
        guard !changes.isEmpty else { return }
        state.withLock { state in
            for (key, payload) in changes {
                let id = EntryID(partition: partition, key: key)
                guard let payload else {
                    if let entry = state.entries[id], entry.task != nil, !entry.finished {
                        state.entries[id]?.removed = true
                    } else {
                        state.drop(id)
                    }
                    continue
                }
                guard let entry = state.entries[id] else {
                    state.put(id, Entry(payload: payload, destination: sender.destination(of: payload)))
                    continue
                }
                if entry.task != nil && !entry.finished {
                    state.entries[id]?.removed = false
                    if entry.payload != payload { state.entries[id]?.newer = payload }
                } else if entry.payload != payload || entry.finished {
                    state.put(id, Entry(payload: payload, destination: sender.destination(of: payload)))
                }
            }
        }
        updateSize()
        wakeup.signal()
    }

    /// The partition is no longer this instance's: its sends are cancelled and forgotten.
    func revoked(_ partition: Int32) {
        let tasks = state.withLock { state in
            state.epochs[partition, default: 0] += 1
            state.completions.removeAll { $0.partition == partition }
            var tasks: [Task<Void, Never>] = []
            for (id, entry) in state.entries where id.partition == partition {
                if let task = entry.task, !entry.finished {
                    tasks.append(task)
                    state.inFlight[entry.destination, default: 1] -= 1
                    // Its answer will not be heard: were it the circuit's probe, the next send probes.
                    state.circuits[entry.destination]?.probing = false
                }
                state.drop(id)
            }
            return tasks
        }
        for task in tasks { task.cancel() }
        updateSize()
        wakeup.signal()
    }

    /// The completions so far, for the handler.
    func takeCompletions() -> [(partition: Int32, completion: OutboxCompletion)] {
        state.withLock { state in
            defer { state.completions.removeAll(keepingCapacity: true) }
            return state.completions
        }
    }

    /// A completion the handler could not take (a transient failure): it comes again next turn.
    func putBack(_ partition: Int32, _ completion: OutboxCompletion) {
        state.withLock { $0.completions.append((partition, completion)) }
    }

    /// Entries of the partition not yet done with (waiting, in flight or finished and not yet
    /// removed).
    func count(of partition: Int32) -> Int {
        state.withLock { $0.counts[partition] ?? 0 }
    }

    // MARK: Sending

    private func updateSize() { size.record(state.withLock { $0.entries.count }) }

    /// Starts the sends that may go, then sleeps until one may or something changes.
    private func schedule() async {
        while !Task.isCancelled {
            let wait = launchReady()
            if state.withLock({ $0.stopped }) { return }
            await wakeup.wait(upTo: wait)
        }
    }

    /// Starts every send that may go now; returns how long until the next may.
    private func launchReady() -> Duration {
        let now = ContinuousClock.now
        var next = now + .seconds(1)
        state.withLock { state in
            guard !state.stopped else { return }
            // Retries whose backoff is over join their destination's queue.
            for id in state.delayed {
                guard let entry = state.entries[id], entry.task == nil, !entry.finished else {
                    state.delayed.remove(id)
                    continue
                }
                if entry.due <= now {
                    state.delayed.remove(id)
                    state.queues[entry.destination, default: FIFO()].push(id)
                } else {
                    next = min(next, entry.due)
                }
            }
            for destination in Array(state.queues.keys) {
                var circuit = state.circuits[destination] ?? Circuit(cooldown: policy.circuitCooldown)
                var allowed = max(1, sender.concurrency(of: destination)) - state.inFlight[destination, default: 0]
                if let openUntil = circuit.openUntil {
                    if openUntil > now || circuit.probing {
                        next = min(next, openUntil > now ? openUntil : now + .milliseconds(200))
                        continue
                    }
                    allowed = min(allowed, 1)  // half-open: one send is the probe
                }
                var queue = state.queues[destination]!
                while allowed > 0, let id = queue.pop() {
                    guard let entry = state.entries[id], entry.task == nil, !entry.finished,
                        entry.destination == destination
                    else { continue }
                    if entry.due > now {
                        state.delayed.insert(id)
                        next = min(next, entry.due)
                        continue
                    }
                    if circuit.openUntil != nil { circuit.probing = true }
                    allowed -= 1
                    state.inFlight[destination, default: 0] += 1
                    state.entries[id]?.attempts += 1
                    let (payload, attempt) = (entry.payload, entry.attempts + 1)
                    let epoch = state.epochs[id.partition, default: 0]
                    state.entries[id]?.task = Task { [self] in
                        let result = await sender.send(payload, key: id.key)
                        finished(id, payload: payload, attempt: attempt, epoch: epoch, result: result)
                    }
                }
                state.queues[destination] = queue
                state.circuits[destination] = circuit
            }
        }
        return max(.milliseconds(5), next - .now)
    }

    /// One send is done: the circuit hears of it, and the entry completes, retries or goes on
    /// to the newer payload that came meanwhile.
    private func finished(_ id: EntryID, payload: Data, attempt: Int, epoch: Int, result: OutboxSendResult) {
        sends.increment()
        if case .retry = result { failures.increment() }
        state.withLock { state in
            guard state.epochs[id.partition, default: 0] == epoch, var entry = state.entries[id] else { return }
            state.inFlight[entry.destination, default: 1] -= 1
            var circuit = state.circuits[entry.destination] ?? Circuit(cooldown: policy.circuitCooldown)
            let outcome: OutboxCompletion.Outcome?
            switch result {
            case .delivered(let detail):
                circuit = Circuit(cooldown: policy.circuitCooldown)
                outcome = .delivered(detail)
            case .refused(let message):
                circuit = Circuit(cooldown: policy.circuitCooldown)
                outcome = .refused(message)
            case .retry(let reason, let after):
                circuit.failures += 1
                if circuit.probing || circuit.failures >= policy.circuitFailures {
                    if circuit.openUntil == nil {
                        logger.warning(
                            "outbox destination keeps failing; holding its sends",
                            metadata: [
                                "destination": "\(entry.destination)", "error.message": "\(reason)",
                                "cooldown": "\(circuit.cooldown)",
                            ])
                    } else {
                        circuit.cooldown = min(circuit.cooldown * 2, .seconds(60))
                    }
                    circuit.openUntil = .now + circuit.cooldown
                }
                circuit.probing = false
                if attempt >= policy.maximumAttempts {
                    outcome = .gaveUp(reason)
                } else {
                    entry.task = nil
                    entry.due = .now + backoff(beforeAttempt: attempt + 1, after: after)
                    state.delayed.insert(id)
                    outcome = nil
                }
            }
            state.circuits[entry.destination] = circuit
            if let outcome {
                if !entry.removed {
                    state.completions.append(
                        (
                            id.partition,
                            OutboxCompletion(key: id.key, payload: payload, outcome: outcome, attempts: attempt)
                        ))
                }
                if let newer = entry.newer {
                    state.put(id, Entry(payload: newer, destination: sender.destination(of: newer)))
                    return
                } else if entry.removed {
                    state.drop(id)
                    return
                } else {
                    entry.finished = true
                }
            }
            state.entries[id] = entry
        }
        wakeup.signal()
    }

    private func backoff(beforeAttempt attempt: Int, after: Duration?) -> Duration {
        if let after { return min(after, .seconds(300)) + .milliseconds(Int.random(in: 0...100)) }
        let base = policy.initialBackoff * Int(pow(2, Double(max(0, attempt - 2))).rounded())
        return min(base, policy.maximumBackoff) * Double.random(in: 0.5...1.0)
    }
}

/// Wakes a sleeping task early: `wait(upTo:)` returns when `signal()` is called or the time is up.
final class Wakeup: Sendable {
    private let state = Mutex<(signalled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    func wait(upTo limit: Duration) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: limit)
            signal()
        }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.signalled {
                    state.signalled = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
    }
}
