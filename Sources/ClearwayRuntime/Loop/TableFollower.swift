import ClearwayKafka
import Foundation
import Logging
import Synchronization

/// The worker's reference tables (`WorkerDefinition.tables`): each read whole into its SQLite
/// file before the first record is handled, as Kafka Streams bootstraps its global tables, then
/// followed in the background; and the partitions whose handler is to hear "anything may have
/// changed" (just assigned, or rolled back past changes it heard).
///
/// Used only by the task running the loop, but for the readers' own tasks.
final class TableFollower {
    let tables: ReferenceTables
    private let readers: [ReferenceTableReader]
    private var tails: [Task<Void, Never>] = []
    private let failure = FailureBox()
    /// Partitions to tell "anything may have changed" (a sweep) at the next delivery.
    private(set) var sweepPending: Set<Int32> = []

    init(declarations: [TopicDeclaration], settings: ClientSettings, logger: Logger) throws {
        let configuration = settings.configuration
        let directory = (configuration.stateDirectory as NSString).appendingPathComponent("tables")
        if !declarations.isEmpty { try StateDirectory.create(configuration.stateDirectory) }
        readers = try declarations.map { declaration in
            try ReferenceTableReader(
                table: ReferenceTable(name: declaration.name, directory: directory),
                topic: configuration.topicPrefix + declaration.name, settings: settings, logger: logger)
        }
        tables = ReferenceTables(tables: Dictionary(uniqueKeysWithValues: readers.map { ($0.table.name, $0.table) }))
    }

    /// Whether the worker follows any table.
    var isEmpty: Bool { readers.isEmpty }

    /// Reads every table to its end, then follows each in the background.
    func start() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reader in readers { group.addTask { try await reader.load() } }
            try await group.waitForAll()
        }
        let failure = failure
        tails = readers.map { reader in
            Task {
                // A table that stops following its topic would go stale unseen: the loop stops
                // the worker instead, so it restarts (and re-reads from its positions).
                do { try await reader.tail() } catch { failure.set(error, table: reader.table.name) }
            }
        }
    }

    /// The first failure of a table's reader, if one has stopped.
    var stopped: (any Error)? { failure.error }

    /// The keys changed since the last call, per table.
    func drainChanges() -> [String: Set<String>] { tables.drainChanges() }

    /// These partitions hear "anything may have changed" at the next delivery.
    func sweep(_ partitions: some Sequence<Int32>) {
        if !readers.isEmpty { sweepPending.formUnion(partitions) }
    }

    /// After a delivery: the partitions whose delivery failed for now hear "anything" next time.
    func delivered(retrying partitions: Set<Int32>) { sweepPending = partitions }

    /// The partition is no longer this instance's.
    func revoked(_ partition: Int32) { sweepPending.remove(partition) }

    func stop() async {
        for task in tails { task.cancel() }
        for reader in readers { await reader.close() }
        tails = []
    }
}

/// The first failure of a reference table's reader, for the processing loop to raise.
final class FailureBox: Sendable {
    private let value = Mutex<(any Error)?>(nil)
    func set(_ error: any Error, table: String) {
        value.withLock { $0 = $0 ?? ConfigurationError("the reference table \(table) stopped: \(error)") }
    }
    var error: (any Error)? { value.withLock { $0 } }
}
