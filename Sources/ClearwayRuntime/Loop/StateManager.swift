import ClearwayKafka
import Foundation
import Logging

/// The state of a stateful worker's assigned partitions, as Kafka Streams'
/// `ProcessorStateManager` keeps it: a store per partition opened (and restored from the
/// changelog when it is not at the group's committed offset) on assignment; the changes of a
/// batch sent to the changelog in its transaction, and put into the SQLite stores after its
/// commit; discarded when the loop goes back to the committed offsets.
///
/// Used only by the task running the loop.
final class StateManager {
    /// The partitions' state, by input partition.
    private(set) var states: [Int32: PartitionState] = [:]
    private let changelog: String?
    private let input: String?
    private let configuration: WorkerConfiguration
    private let restorer: ChangelogRestorer
    private let valueLimit: Int
    private let health: RuntimeHealth
    /// Names this run of the loop in its changelog records; a new one after every rewind, so a
    /// restore can tell work that was rolled back from the work that replaced it.
    private var writer = UUID().uuidString

    init(
        definition: WorkerDefinition, settings: ClientSettings, valueLimit: Int, health: RuntimeHealth,
        logger: Logger
    ) {
        let prefix = settings.configuration.topicPrefix
        changelog = definition.changelog.map { prefix + $0.name }
        input = definition.inputs.first.map { prefix + $0.name }
        configuration = settings.configuration
        restorer = ChangelogRestorer(settings: settings, worker: definition.name, logger: logger)
        self.valueLimit = valueLimit
        self.health = health
    }

    @inline(__always)
    func state(of partition: Int32) -> PartitionState? { states.isEmpty ? nil : states[partition] }

    /// Whether any partition has changes not yet committed.
    var hasChanges: Bool { states.values.contains(where: \.hasChanges) }

    /// Opens the stores of newly assigned partitions (`committed`: the group's committed offsets
    /// of their input); a store behind or ahead of it — a new host, a lost volume, a crash before
    /// the store was written — is rebuilt from the changelog first.
    func open(_ committed: [TopicPartitionOffset]) async throws {
        guard let changelog else { return }
        for entry in committed {
            let store = try PartitionStore(
                directory: configuration.stateDirectory, name: "partition-\(entry.partition)")
            let target = entry.offset >= 0 ? entry.offset : nil
            if try store.inputOffset() != target {
                health.restoring(true)
                defer { health.restoring(false) }
                try await restorer.restore(store, from: changelog, partition: entry.partition, upTo: target ?? 0)
            }
            let state = PartitionState(store: store)
            state.valueLimit = valueLimit
            states[entry.partition] = state
        }
    }

    /// The partition is no longer this instance's.
    func close(_ partition: Int32) { states[partition] = nil }

    /// The input offset a partition's changes bring its store to: the batch's (`offsets`), else
    /// the store's own.
    private func position(of partition: Int32, _ state: PartitionState, offsets: [TopicPartition: Int64]) throws
        -> Int64?
    {
        guard let input else { return nil }
        if let pending = offsets[TopicPartition(topic: input, partition: partition)] { return pending }
        return try state.store.inputOffset()
    }

    /// Sends the batch's state changes to the changelog, tagged with the input offset they bring
    /// the partition to (`offsets`: the batch's), in the current transaction.
    func writeChangelog(to producer: TransactionalProducer, offsets: [TopicPartition: Int64]) async throws {
        guard let changelog else { return }
        for (partition, state) in states where state.hasChanges {
            let offset = try position(of: partition, state, offsets: offsets) ?? 0
            let from = try state.store.inputOffset() ?? 0
            let headers = [
                KafkaHeader(name: ChangelogHeaders.inputOffset, string: String(offset)),
                KafkaHeader(name: ChangelogHeaders.inputFrom, string: String(from)),
                KafkaHeader(name: ChangelogHeaders.writer, string: writer),
            ]
            for (key, change) in state.changes {
                let record = change.changelogRecord(key: key)
                let key = Data(utf8: record.key)
                try await producer.send(
                    record.value.map {
                        ProducerRecord(topic: changelog, partition: partition, key: key, value: $0, headers: headers)
                    } ?? .tombstone(topic: changelog, partition: partition, key: key, headers: headers))
            }
        }
    }

    /// After the commit: the changes go into the partitions' stores with the offsets they bring
    /// them to. Returns the outbox changes committed, by partition.
    @discardableResult
    func apply(offsets: [TopicPartition: Int64]) throws -> [Int32: [(key: String, payload: Data?)]] {
        var outbox: [Int32: [(key: String, payload: Data?)]] = [:]
        for (partition, state) in states {
            guard state.hasChanges || offsets.keys.contains(where: { $0.partition == partition }) else { continue }
            if let offset = try position(of: partition, state, offsets: offsets) {
                try state.store.apply(state.changes, inputOffset: offset)
                let changes = state.outboxChanges
                if !changes.isEmpty { outbox[partition] = changes }
                state.applied()
            } else {
                state.discard()
            }
        }
        return outbox
    }

    /// The loop went back to the committed offsets: the changes since are dropped, and what is
    /// written from now on is a new run's.
    func discard() {
        for state in states.values { state.discard() }
        writer = UUID().uuidString
    }
}
