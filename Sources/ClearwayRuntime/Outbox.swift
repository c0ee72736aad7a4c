import Foundation

/// Sends a stateful worker's outbox entries to the outside world (an ERP, a webhook): what a
/// worker with an outbox gives the runtime (`WorkerDefinition.outbox`).
///
/// The runtime's `OutboxDispatcher` calls it from its own tasks, never from the poll loop, only
/// for entries whose transaction has committed, at most once at a time per entry key, and at
/// most ``concurrency(of:)`` at a time per destination. A send may be repeated (after a crash or
/// a move, the partition's next owner sends what was not yet completed): it must make a repeat
/// harmless.
public protocol OutboxSender: Sendable {
    /// The destination an entry goes to (an ERP's name): its concurrency bound and circuit.
    func destination(of payload: Data) -> String

    /// How many sends may be in flight at once to a destination.
    func concurrency(of destination: String) -> Int

    /// Sends one entry. Never throws: every failure is an outcome.
    func send(_ payload: Data, key: String) async -> OutboxSendResult
}

/// One send's result.
public enum OutboxSendResult: Sendable, Equatable {
    /// Done; the bytes are the sender's account of it, handed to the handler.
    case delivered(Data)
    /// Refused for good: sending it again would be refused again.
    case refused(String)
    /// Worth trying again (after `after`, when the destination said so).
    case retry(String, after: Duration?)
}

/// A finished outbox entry, as the handler hears of it (`RecordHandler.outboxCompleted`).
public struct OutboxCompletion: Sendable, Equatable {
    /// What became of it.
    public enum Outcome: Sendable, Equatable {
        /// The sender's account of the delivery.
        case delivered(Data)
        /// Refused for good, with the destination's words.
        case refused(String)
        /// The dispatcher stopped trying after its attempts; the last failure.
        case gaveUp(String)
    }

    /// The entry's key, as given to `PartitionState.enqueue(outbox:_:)`.
    public var key: String
    /// The entry as it was sent.
    public var payload: Data
    public var outcome: Outcome
    /// Sends it took.
    public var attempts: Int

    /// Makes a completion.
    public init(key: String, payload: Data, outcome: Outcome, attempts: Int) {
        self.key = key
        self.payload = payload
        self.outcome = outcome
        self.attempts = attempts
    }
}

/// How the outbox dispatcher sends, retries and holds back.
public struct OutboxPolicy: Sendable, Hashable {
    /// `CLEARWAY_OUTBOX_LIMIT`: a partition with more entries than this waiting is paused, and
    /// resumed under half of it. Default: 1,000.
    public var limit = 1000
    /// `CLEARWAY_OUTBOX_MAX_ATTEMPTS`: sends of one entry before giving up. Default: 20 (about
    /// eight minutes of backoff). Sends an open circuit holds back are not attempts: while a
    /// destination is down only its probes count, so its entries wait rather than run out.
    public var maximumAttempts = 20
    /// The first retry's wait, doubling to `maximumBackoff` (with jitter); a destination's
    /// `Retry-After` wins when it gives one. Defaults: 500 ms, 30 s.
    public var initialBackoff: Duration = .milliseconds(500)
    public var maximumBackoff: Duration = .seconds(30)
    /// `CLEARWAY_OUTBOX_CIRCUIT_FAILURES`: consecutive failures of a destination that open its
    /// circuit: no sends for `circuitCooldown` (doubling while probes fail, to 60 s), then one
    /// probe. Defaults: 10, 2 s.
    public var circuitFailures = 10
    public var circuitCooldown: Duration = .seconds(2)

    public init() {}
}
