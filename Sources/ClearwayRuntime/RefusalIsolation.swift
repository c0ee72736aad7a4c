import ClearwayKafka

/// Finds the input whose output the broker refuses for good, so that it alone is set aside.
///
/// The producer's size check catches an output over the worker's own record limit before it is
/// sent; a broker whose topic allows less (`max.message.bytes`) refuses it only when the batch
/// holding it arrives, and the refusal fails the whole transaction (or, at-least-once, sends the
/// loop back to its last commit). Handled again as a batch it would fail again, forever. So after
/// such a refusal the records since the last commit are handled one per commit, up to where the
/// loop had read: a record whose commit is refused `attempts` times is the one, and goes to the
/// DLQ (`output-refused`); the others commit one by one and the partition goes on. An injected
/// or passing refusal costs only the slower commits over that stretch.
struct RefusalIsolation {
    /// Tries of one record before it is set aside.
    static let attempts = 3
    /// The DLQ class of an input whose output the broker refused for good.
    static let errorClass = "output-refused"

    /// Per partition, the offset isolation ends at (the loop's read position at the refusal).
    private(set) var until: [TopicPartition: Int64] = [:]
    /// The record being committed on its own, if any.
    private(set) var current: (partition: TopicPartition, offset: Int64)?
    /// Refusals of each partition's record on its own: its offset and how many.
    private var failures: [TopicPartition: (offset: Int64, count: Int)] = [:]

    /// Whether a record is in a stretch handled one per commit (no work while there is none).
    func covers(_ record: ConsumerRecord) -> Bool {
        guard !until.isEmpty,
            let end = until[TopicPartition(topic: record.topic, partition: record.partition)]
        else { return false }
        return record.offset < end
    }

    /// How many times this record was refused on its own; at `attempts` it is set aside.
    func refusals(_ partition: TopicPartition, offset: Int64) -> Int {
        guard let failure = failures[partition], failure.offset == offset else { return 0 }
        return failure.count
    }

    /// A record is about to be committed on its own.
    mutating func begin(_ partition: TopicPartition, offset: Int64) {
        current = (partition, offset)
    }

    /// The record committed on its own went through (or was set aside): the next one.
    mutating func committed() {
        guard let (partition, offset) = current else { return }
        current = nil
        failures[partition] = nil
        if let end = until[partition], offset + 1 >= end { until[partition] = nil }
    }

    /// The broker refused an output for good and the loop went back to its last commit, having
    /// read up to `positions`. Returns whether a new stretch begins (rather than a record alone
    /// failing again).
    mutating func refused(readUpTo positions: [TopicPartitionOffset]) -> Bool {
        if let (partition, offset) = current {
            current = nil
            let earlier = failures[partition].flatMap { $0.offset == offset ? $0.count : nil } ?? 0
            failures[partition] = (offset, earlier + 1)
            return false
        }
        for position in positions where position.offset >= 0 {
            let partition = TopicPartition(topic: position.topic, partition: position.partition)
            until[partition] = max(until[partition] ?? 0, position.offset)
        }
        return true
    }

    /// Partitions taken away: their stretch ends here (a new owner starts its own if it must).
    mutating func revoke(_ partitions: [TopicPartition]) {
        for partition in partitions {
            until[partition] = nil
            failures[partition] = nil
            if current?.partition == partition { current = nil }
        }
    }
}
