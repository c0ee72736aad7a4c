import ClearwayKafka
import Foundation
import Logging
import Metrics

/// Rebuilds a partition's store from its changelog, as Kafka Streams' `StoreChangelogReader`
/// does: reads the changelog partition to its end and applies the changes at or below the
/// group's committed input offset (a change is tagged with the input offset its commit brought
/// the partition to, and with the run of the loop that wrote it, so that work rolled back is
/// told from the work that replaced it: `ChangelogReplay`).
struct ChangelogRestorer {
    let settings: ClientSettings
    let worker: String
    let logger: Logger

    func restore(_ store: PartitionStore, from topic: String, partition: Int32, upTo committed: Int64) async throws {
        let started = ContinuousClock.now
        try store.reset()
        let reader = try KafkaConsumer(configuration: settings.changelogReader(), logger: logger)
        _ = try await reader.describeTopic(topic)
        try reader.assign([
            TopicPartitionOffset(topic: topic, partition: partition, offset: TopicPartitionOffset.beginning)
        ])
        var replay = ChangelogReplay()
        var read = 0
        let progress = Metrics.Gauge(
            label: "clearway_restore_records", dimensions: [("worker", worker), ("partition", String(partition))])
        reading: for try await event in reader.events {
            switch event {
            case .record(let record):
                guard let key = record.keyString,
                    let decoded = StateChange.fromChangelog(key: key, value: record.isTombstone ? nil : record.value)
                else { continue }
                replay.add(
                    key: decoded.key, change: decoded.change,
                    tag: record.headers.first(named: ChangelogHeaders.inputOffset).flatMap { Int64($0) } ?? Int64.max,
                    from: record.headers.first(named: ChangelogHeaders.inputFrom).flatMap { Int64($0) },
                    writer: record.headers.first(named: ChangelogHeaders.writer))
                read += 1
                if read % 10_000 == 0 { progress.record(read) }
            case .endOfPartition:
                break reading
            default:
                continue
            }
        }
        try await reader.close()
        let changes = replay.changes(upTo: committed)
        try store.restore(changes, inputOffset: committed)
        progress.record(read)
        logger.info(
            "state restored from the changelog",
            metadata: [
                "kafka.partition": "\(partition)", "restore.records": "\(changes.count)",
                "restore.offset": "\(committed)", "restore.duration": "\(ContinuousClock.now - started)",
            ])
    }
}

/// The headers of a changelog record.
enum ChangelogHeaders {
    /// The input offset the commit holding the change brought its partition to.
    static let inputOffset = "clearway.input.offset"
    /// The partition's input offset before that commit.
    static let inputFrom = "clearway.input.from"
    /// The run of the loop that wrote it (a new one after every rewind).
    static let writer = "clearway.writer"
}

/// Replays one changelog partition into the changes a restore applies.
///
/// Each record carries the input offset its transaction brought the partition to (the tag), the
/// offset that transaction started from, and which run of the loop wrote it. A restore applies
/// the changes tagged at or below the committed offset, in log order — except work that was rolled
/// back: when a run's records appear, the other runs' records tagged beyond where it started were
/// never committed (a transaction the broker did not abort after its producer was fenced, or an
/// at-least-once batch whose offsets never committed), and are dropped even when a later commit
/// passes their tag.
struct ChangelogReplay {
    private var entries: [(tag: Int64, writer: String?, key: String, change: StateChange)] = []
    private var writer: String?

    mutating func add(key: String, change: StateChange, tag: Int64, from: Int64?, writer: String?) {
        if let writer, writer != self.writer {
            if let from { entries.removeAll { $0.writer != writer && $0.tag > from } }
            self.writer = writer
        }
        entries.append((tag, writer, key, change))
    }

    /// The changes to apply for a partition committed at `committed`, in order.
    func changes(upTo committed: Int64) -> [(key: String, change: StateChange)] {
        entries.filter { $0.tag <= committed }.map { ($0.key, $0.change) }
    }
}
