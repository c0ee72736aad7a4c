import ClearwayKafka

/// What the loop has handled since its last commit. Replaced whole when a commit ends or the
/// loop goes back to the committed offsets, as quix-streams replaces its `Checkpoint`.
struct Batch {
    /// The next offset to read of each input partition handled in it.
    private(set) var offsets: [TopicPartition: Int64] = [:]
    /// Records, timer firings and table changes handled in it.
    private(set) var records = 0
    /// When its first record was handled (or its transaction begun).
    var started = ContinuousClock.now
    /// Timers fired in it (`partition/key`): none fires again before its removal is committed.
    var firedTimers: Set<String> = []

    /// A record of `partition` handled: the partition's next offset is `offset`.
    @inline(__always)
    mutating func advance(_ partition: TopicPartition, to offset: Int64) {
        offsets[partition] = offset
        count()
    }

    /// Something handled that has no input offset (a timer, a table change).
    @inline(__always)
    mutating func count() {
        if records == 0 { started = .now }
        records += 1
    }
}

/// When and how the loop commits, as a state machine with no Kafka client in it: the loop tells
/// it what happened and it answers what to do, so the commit protocol of the three delivery
/// strategies is in one place and tested without a broker (`CommitterTests`), in the manner of
/// swift-kafka-client's consumer state machine.
struct Committer {
    /// How a batch is committed, from the delivery mode and whether the worker has state.
    enum Strategy: Equatable {
        /// At-least-once without state: each batch's offsets wait, as a checkpoint, for the
        /// outputs sent before them to be acknowledged, while the loop goes on reading; delivered
        /// checkpoints are stored, and committed to the group every commit interval.
        case checkpoints
        /// Exactly-once without state: the transaction commits in the background while the loop
        /// goes on; what is handled meanwhile waits for the next transaction.
        case overlapped
        /// With state (either mode): the commit ends in the foreground, and the state changes go
        /// into the partitions' stores after it.
        case foreground

    }

    enum State: Equatable {
        /// No transaction open (at-least-once is always here).
        case idle
        /// A transaction is open: outputs and offsets go into it.
        case open
        /// The last transaction commits in the background; outputs made meanwhile are held.
        case committing
    }

    /// What to do at the end of a poll turn.
    enum TurnAction: Equatable {
        case none
        /// Commit in the foreground (`commit()`).
        case commit
        /// Start the open transaction's commit in the background.
        case commitInBackground
        /// Set the batch's offsets aside as a checkpoint, then store those delivered.
        case checkpoint
        /// Store the delivered checkpoints (and commit them to the group when due).
        case storeCheckpoints
    }

    /// What to do once a background commit has been waited for.
    enum SettleAction: Equatable {
        /// Nothing to carry on: the next transaction begins with the next output.
        case none
        /// Begin the next transaction and send the outputs held meanwhile into it.
        case beginAndSendHeld
        /// The commit failed: recover (`Recovery`), which goes back to the committed offsets.
        case recover
    }

    let strategy: Strategy
    /// Exactly-once: outputs and offsets go in transactions.
    let isTransactional: Bool
    let maximumBatch: Int
    let interval: Duration
    /// Past this many bytes of held outputs (keys and values) the loop waits for the background
    /// commit, however slow the broker is to end it. A commit usually ends before the loop holds
    /// this much; with 1 MB peak RSS rose by about 4 MB (scripts/bench runtime).
    let heldBytesLimit: Int

    private(set) var state = State.idle
    private(set) var batch = Batch()
    /// At-least-once without state: offsets waiting for the outputs sent before them.
    private(set) var checkpoints: [(mark: DeliveryMark, offsets: [TopicPartition: Int64])] = []
    /// Whether offsets are stored but not yet committed to the group, and when it last was.
    private(set) var storedSinceCommit = false
    private(set) var lastGroupCommit = ContinuousClock.now

    /// `isStateful`: the worker keeps state (and so a changelog, whose writes wait for a commit
    /// in the foreground).
    init(
        delivery: DeliveryMode, isStateful: Bool, maximumBatch: Int, interval: Duration,
        heldBytesLimit: Int = 262_144
    ) {
        isTransactional = delivery == .exactlyOnce
        strategy = isStateful ? .foreground : isTransactional ? .overlapped : .checkpoints
        self.maximumBatch = maximumBatch
        self.interval = interval
        self.heldBytesLimit = heldBytesLimit
    }

    // MARK: Handling

    /// Whether a transaction must begin before the next output (none is open, and none is
    /// committing in the background: the next begins once that one has ended).
    var needsBegin: Bool { isTransactional && state == .idle }

    /// The transaction was begun.
    mutating func begun() {
        state = .open
        if batch.records == 0 { batch.started = .now }
    }

    @inline(__always)
    mutating func advance(_ partition: TopicPartition, to offset: Int64) { batch.advance(partition, to: offset) }
    @inline(__always)
    mutating func count() { batch.count() }

    /// A timer about to fire in this batch: `false` when it fired already.
    mutating func fire(timer id: String) -> Bool { batch.firedTimers.insert(id).inserted }
    /// A timer whose firing failed for now: it fires again next turn.
    mutating func unfire(timer id: String) { batch.firedTimers.remove(id) }

    /// Whether anything since the last commit awaits one: records handled, a transaction open,
    /// checkpoints not yet committed, or (`stateChanged`) state changes.
    func hasWork(stateChanged: Bool) -> Bool {
        !batch.offsets.isEmpty || state == .open || stateChanged || !checkpoints.isEmpty || storedSinceCommit
    }

    /// Whether records were handled, or a transaction begun (or committing), since the last
    /// commit.
    var hasUncommitted: Bool { batch.records > 0 || state != .idle }

    // MARK: The end of a poll turn

    func turnEnded(now: ContinuousClock.Instant) -> TurnAction {
        if batch.records >= maximumBatch || (batch.records > 0 && now - batch.started >= interval) {
            switch strategy {
            case .checkpoints: return .checkpoint
            case .overlapped: return .commitInBackground
            case .foreground: return .commit
            }
        }
        return !checkpoints.isEmpty || storedSinceCommit ? .storeCheckpoints : .none
    }

    // MARK: Foreground commit

    /// The offsets a foreground commit commits: the checkpoints' and then the batch's.
    var offsetsToCommit: [TopicPartition: Int64] {
        var pending = checkpoints.reduce(into: [TopicPartition: Int64]()) { offsets, checkpoint in
            offsets.merge(checkpoint.offsets) { _, later in later }
        }
        pending.merge(batch.offsets) { _, later in later }
        return pending
    }

    /// A commit ended: a new batch begins.
    mutating func committed(now: ContinuousClock.Instant) {
        state = .idle
        batch = Batch()
        if !isTransactional {
            checkpoints = []
            storedSinceCommit = false
            lastGroupCommit = now
        }
    }

    // MARK: Background commit (exactly-once without state)

    /// Starts the open transaction's commit in the background: returns its offsets (and a new
    /// batch begins), or `nil` when no transaction is open.
    mutating func startBackgroundCommit() -> [TopicPartition: Int64]? {
        guard state == .open else { return nil }
        let offsets = batch.offsets
        batch = Batch()
        state = .committing
        return offsets
    }

    /// Whether to wait for the background commit now: it has ended, or the outputs held meanwhile
    /// have reached their bound.
    func shouldSettle(commitEnded: Bool, heldBytes: Int) -> Bool {
        state == .committing && (commitEnded || heldBytes >= heldBytesLimit)
    }

    /// The background commit was waited for: it `succeeded` or not; `held` says whether outputs
    /// were held meanwhile.
    mutating func backgroundCommitEnded(succeeded: Bool, held: Bool) -> SettleAction {
        guard state == .committing else { return .none }
        guard succeeded else {
            // Still open as far as the broker knows: recovering aborts it.
            state = .open
            return .recover
        }
        state = .idle
        return held || !batch.offsets.isEmpty ? .beginAndSendHeld : .none
    }

    /// The background commit is abandoned (the loop goes back to the committed offsets whatever
    /// it did): its transaction is still open unless it `succeeded`.
    mutating func backgroundCommitAbandoned(succeeded: Bool) {
        guard state == .committing else { return }
        state = succeeded ? .idle : .open
    }

    // MARK: Checkpoints (at-least-once without state)

    /// Sets the batch's offsets aside until the outputs sent before `mark` are delivered.
    mutating func checkpoint(at mark: DeliveryMark) {
        if !batch.offsets.isEmpty { checkpoints.append((mark, batch.offsets)) }
        batch = Batch()
    }

    /// Takes the offsets of the checkpoints, oldest first, whose outputs are all delivered.
    mutating func takeDelivered(_ isDelivered: (DeliveryMark) -> Bool) -> [TopicPartition: Int64] {
        var delivered: [TopicPartition: Int64] = [:]
        while let first = checkpoints.first, isDelivered(first.mark) {
            delivered.merge(first.offsets) { _, later in later }
            checkpoints.removeFirst()
        }
        return delivered
    }

    /// Offsets were stored with the consumer.
    mutating func stored() { storedSinceCommit = true }

    /// Whether stored offsets are due to be committed to the group.
    func groupCommitDue(now: ContinuousClock.Instant) -> Bool {
        storedSinceCommit && now - lastGroupCommit >= interval
    }

    mutating func groupCommitted(now: ContinuousClock.Instant) {
        storedSinceCommit = false
        lastGroupCommit = now
    }

    // MARK: Failures

    /// After a failed commit (or a send the transaction refused): whether it is to rebuild the
    /// producer, abort the transaction, or fail.
    mutating func commitFailed(_ recovery: Recovery) -> Recovery {
        if recovery == .rebuild { state = .idle }  // the new producer has no transaction open
        return recovery
    }

    /// The transaction was aborted.
    mutating func aborted() { state = .idle }

    /// The loop went back to the committed offsets: everything since the last commit is dropped
    /// and handled again.
    mutating func rewound() {
        state = .idle
        batch = Batch()
        checkpoints = []
    }
}
