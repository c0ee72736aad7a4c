import Testing

@testable import ClearwayKafka
@testable import ClearwayRuntime

/// The commit protocol without a broker: what the `Committer` answers as the loop reports.
@Suite struct CommitterTests {
    private let input = TopicPartition(topic: "p.orders.v1", partition: 0)
    private let other = TopicPartition(topic: "p.orders.v1", partition: 1)

    private func committer(
        _ delivery: DeliveryMode, stateful: Bool = false, maximumBatch: Int = 3, interval: Duration = .seconds(3600)
    ) -> Committer {
        Committer(delivery: delivery, isStateful: stateful, maximumBatch: maximumBatch, interval: interval)
    }

    @Test func theStrategyFollowsTheDeliveryModeAndState() {
        #expect(committer(.atLeastOnce).strategy == .checkpoints)
        #expect(committer(.atLeastOnce, stateful: true).strategy == .foreground)
        #expect(committer(.exactlyOnce).strategy == .overlapped)
        #expect(committer(.exactlyOnce, stateful: true).strategy == .foreground)
        #expect(committer(.exactlyOnce).isTransactional)
        #expect(!committer(.atLeastOnce, stateful: true).isTransactional)
    }

    @Test func aTransactionBeginsOnceBeforeTheFirstOutput() {
        var machine = committer(.exactlyOnce, stateful: true)
        #expect(machine.needsBegin)
        machine.begun()
        #expect(!machine.needsBegin)
        #expect(machine.state == .open)
        #expect(machine.hasUncommitted)
        // At-least-once never begins one.
        #expect(!committer(.atLeastOnce).needsBegin)
    }

    @Test func aBatchCommitsWhenFullOrOld() {
        var machine = committer(.exactlyOnce, stateful: true, maximumBatch: 2)
        #expect(machine.turnEnded(now: .now) == .none)
        machine.begun()
        machine.advance(input, to: 11)
        #expect(machine.turnEnded(now: .now) == .none)
        machine.advance(other, to: 5)
        #expect(machine.turnEnded(now: .now) == .commit)
        #expect(machine.offsetsToCommit == [input: 11, other: 5])

        var old = committer(.exactlyOnce, stateful: true, maximumBatch: 100, interval: .milliseconds(100))
        old.advance(input, to: 1)
        #expect(old.turnEnded(now: .now) == .none)
        #expect(old.turnEnded(now: .now + .milliseconds(150)) == .commit)
    }

    @Test func aCommitEndsTheBatchWhole() {
        var machine = committer(.exactlyOnce, stateful: true)
        machine.begun()
        machine.advance(input, to: 11)
        let first = machine.fire(timer: "0/close/a")
        let again = machine.fire(timer: "0/close/a")
        #expect(first && !again)  // not twice in one batch
        #expect(machine.hasWork(stateChanged: false))
        machine.committed(now: .now)
        #expect(machine.state == .idle)
        #expect(machine.batch.records == 0 && machine.batch.offsets.isEmpty && machine.batch.firedTimers.isEmpty)
        #expect(!machine.hasWork(stateChanged: false))
        #expect(machine.hasWork(stateChanged: true))  // state changed by a timer: still a commit
        let afterCommit = machine.fire(timer: "0/close/a")
        #expect(afterCommit)
    }

    @Test func exactlyOnceWithoutStateCommitsInTheBackgroundAndHoldsWhatComesMeanwhile() {
        var machine = committer(.exactlyOnce, maximumBatch: 1)
        machine.begun()
        machine.advance(input, to: 11)
        #expect(machine.turnEnded(now: .now) == .commitInBackground)
        let committing = machine.startBackgroundCommit()
        #expect(committing == [input: 11])
        #expect(machine.state == .committing)
        // The next transaction begins once this one has ended: nothing begins meanwhile.
        #expect(!machine.needsBegin)
        #expect(machine.hasUncommitted)
        machine.advance(input, to: 12)
        #expect(!machine.shouldSettle(commitEnded: false, heldBytes: 10))
        #expect(machine.shouldSettle(commitEnded: true, heldBytes: 10))
        #expect(machine.shouldSettle(commitEnded: false, heldBytes: machine.heldBytesLimit))
        let settled = machine.backgroundCommitEnded(succeeded: true, held: true)
        #expect(settled == .beginAndSendHeld)
        #expect(machine.needsBegin)
        machine.begun()
        let next = machine.startBackgroundCommit()
        #expect(next == [input: 12])
    }

    @Test func aBackgroundCommitWithNothingAfterItLeavesNoTransactionOpen() {
        var machine = committer(.exactlyOnce)
        machine.begun()
        machine.advance(input, to: 11)
        _ = machine.startBackgroundCommit()
        let settled = machine.backgroundCommitEnded(succeeded: true, held: false)
        #expect(settled == .none)
        #expect(machine.state == .idle)
        #expect(!machine.hasUncommitted)
        // Nothing to start when no transaction is open.
        let nothing = machine.startBackgroundCommit()
        #expect(nothing == nil)
    }

    @Test func aFailedBackgroundCommitIsRecoveredFromAndItsTransactionAborted() {
        var machine = committer(.exactlyOnce)
        machine.begun()
        machine.advance(input, to: 11)
        _ = machine.startBackgroundCommit()
        let settled = machine.backgroundCommitEnded(succeeded: false, held: true)
        #expect(settled == .recover)
        #expect(machine.state == .open)  // to be aborted
        let recovery = machine.commitFailed(.abort)
        #expect(recovery == .abort)
        machine.aborted()
        machine.rewound()
        #expect(machine.state == .idle && machine.batch.offsets.isEmpty)

        var abandoned = committer(.exactlyOnce)
        abandoned.begun()
        _ = abandoned.startBackgroundCommit()
        abandoned.backgroundCommitAbandoned(succeeded: true)
        #expect(abandoned.state == .idle)  // nothing left to abort
    }

    @Test func aFencedProducerIsRebuiltWithNoTransactionOpen() {
        var machine = committer(.exactlyOnce, stateful: true)
        machine.begun()
        let recovery = machine.commitFailed(.rebuild)
        #expect(recovery == .rebuild)
        #expect(machine.state == .idle)
    }

    @Test func clientErrorsComeOutAsAFewRecoveries() {
        let fenced = KafkaError(code: .transaction, message: "fenced", isFatal: true)
        let abortable = KafkaError(code: .transaction, message: "abortable", transactionRequiresAbort: true)
        let timedOut = KafkaError(code: .timeout, message: "timed out", isRetriable: true)
        let other = KafkaError(code: .configuration, message: "bad property")
        #expect(TransactionalProducer.recovery(after: fenced) == .rebuild)
        #expect(TransactionalProducer.recovery(after: abortable) == .abort)
        #expect(TransactionalProducer.recovery(after: timedOut) == .abort)
        #expect(TransactionalProducer.recovery(after: other) == .fail)
        #expect(TransactionalProducer.recovery(after: CancellationError()) == .fail)
    }

    @Test func atLeastOnceCheckpointsWaitForTheirOutputsThenStoreAndCommitOnInterval() {
        var machine = committer(.atLeastOnce, maximumBatch: 1, interval: .milliseconds(100))
        machine.advance(input, to: 11)
        #expect(machine.turnEnded(now: .now) == .checkpoint)
        machine.checkpoint(at: DeliveryMark(id: 5))
        machine.advance(input, to: 20)
        machine.checkpoint(at: DeliveryMark(id: 9))
        #expect(machine.turnEnded(now: .now) == .storeCheckpoints)
        // Only the checkpoints whose outputs are all delivered, oldest first.
        let delivered = machine.takeDelivered { $0 == DeliveryMark(id: 5) }
        #expect(delivered == [input: 11])
        let none = machine.takeDelivered { _ in false }
        #expect(none.isEmpty)
        machine.stored()
        let now = ContinuousClock.now
        #expect(!machine.groupCommitDue(now: machine.lastGroupCommit))
        #expect(machine.groupCommitDue(now: machine.lastGroupCommit + .milliseconds(100)))
        machine.groupCommitted(now: now)
        let rest = machine.takeDelivered { _ in true }
        #expect(rest == [input: 20])
        // A foreground commit (a stop, a revoke) takes the checkpoints' offsets too.
        machine.advance(input, to: 30)
        machine.checkpoint(at: DeliveryMark(id: 12))
        machine.advance(other, to: 3)
        #expect(machine.offsetsToCommit == [input: 30, other: 3])
    }

    @Test func aRewindDropsEverythingSinceTheLastCommit() {
        var machine = committer(.atLeastOnce, maximumBatch: 1)
        machine.advance(input, to: 11)
        machine.checkpoint(at: DeliveryMark(id: 5))
        machine.advance(input, to: 12)
        machine.rewound()
        #expect(machine.checkpoints.isEmpty && machine.batch.offsets.isEmpty && machine.state == .idle)
        #expect(!machine.hasWork(stateChanged: false))
    }
}
