import Foundation
import GRDB

/// One input partition's durable state: key → value, the timers due on it, and the input offset
/// its contents reflect. SQLite in WAL mode through GRDB; one file per partition.
///
/// The store changes only after the Kafka transaction holding the same changes (as changelog
/// records) and the input offsets has committed, so a crash leaves it at or behind the committed
/// position, never ahead of it; behind, it is rebuilt from the changelog.
final class PartitionStore: Sendable {
    let database: DatabasePool
    let path: String

    init(directory: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = (directory as NSString).appendingPathComponent("\(name).sqlite")
        database = try DatabasePool(path: path)
        var migrator = DatabaseMigrator()
        // Migrations are never edited once shipped; add new ones.
        migrator.registerMigration("v1") { db in
            try db.create(table: "entry") { table in
                table.primaryKey("key", .text)
                table.column("value", .blob).notNull()
            }
            try db.create(table: "timer") { table in
                table.primaryKey("key", .text)
                table.column("due", .integer).notNull().indexed()
                table.column("payload", .blob).notNull()
            }
            try db.create(table: "position") { table in
                table.primaryKey("id", .integer)
                table.column("inputOffset", .integer).notNull()
            }
        }
        try migrator.migrate(database)
    }

    /// The input offset the contents reflect (the next offset to read), or nil when never set.
    func inputOffset() throws -> Int64? {
        try database.read { try Int64.fetchOne($0, sql: "SELECT inputOffset FROM position WHERE id = 1") }
    }

    func value(_ key: String) throws -> Data? {
        try database.read { db in
            try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM entry WHERE key = ?"), arguments: [key])
        }
    }

    /// The keys that start with `prefix`, in order.
    func keys(withPrefix prefix: String) throws -> [String] {
        // Every key with the prefix sorts (bytewise, SQLite's BINARY collation) between the prefix
        // and the prefix followed by the highest code point.
        try database.read { db in
            try String.fetchAll(
                db, sql: "SELECT key FROM entry WHERE key >= ? AND key < ? ORDER BY key",
                arguments: [prefix, prefix + "\u{10FFFF}"])
        }
    }

    /// Timers due at or before `now` (milliseconds since 1970), soonest first.
    func dueTimers(now: Int64, limit: Int = 500) throws -> [(key: String, due: Int64, payload: Data)] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT key, due, payload FROM timer WHERE due <= ? ORDER BY due LIMIT ?",
                arguments: [now, limit]
            ).map { ($0["key"], $0["due"], $0["payload"]) }
        }
    }

    /// Applies committed changes and the offset they bring the store to, in one SQLite transaction.
    func apply(_ changes: [(key: String, change: StateChange)], inputOffset: Int64) throws {
        try database.write { db in
            for (key, change) in changes {
                try Self.apply(change, key: key, in: db)
            }
            try db.cachedStatement(
                sql:
                    "INSERT INTO position (id, inputOffset) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET inputOffset = excluded.inputOffset"
            ).execute(arguments: [inputOffset])
        }
    }

    static func apply(_ change: StateChange, key: String, in db: Database) throws {
        switch change {
        case .put(let value):
            try db.cachedStatement(
                sql:
                    "INSERT INTO entry (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
            ).execute(arguments: [key, value])
        case .delete:
            try db.cachedStatement(sql: "DELETE FROM entry WHERE key = ?").execute(arguments: [key])
        case .timer(let due, let payload):
            try db.cachedStatement(
                sql:
                    "INSERT INTO timer (key, due, payload) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET due = excluded.due, payload = excluded.payload"
            ).execute(arguments: [key, due, payload])
        case .timerCancelled:
            try db.cachedStatement(sql: "DELETE FROM timer WHERE key = ?").execute(arguments: [key])
        }
    }

    /// Empties the store (before a restore).
    func reset() throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM entry; DELETE FROM timer; DELETE FROM position")
        }
    }

    /// Applies changelog records in one transaction and sets the position (a restore).
    func restore(_ records: [(key: String, change: StateChange)], inputOffset: Int64) throws {
        try database.write { db in
            for record in records { try Self.apply(record.change, key: record.key, in: db) }
            try db.cachedStatement(
                sql:
                    "INSERT INTO position (id, inputOffset) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET inputOffset = excluded.inputOffset"
            ).execute(arguments: [inputOffset])
        }
    }

    /// Every entry and timer, for tests and tools.
    func snapshot() throws -> StateSnapshot {
        try database.read { db in
            StateSnapshot(
                entries: Dictionary(
                    uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, value FROM entry").map {
                        ($0["key"] as String, $0["value"] as Data)
                    }),
                timers: Dictionary(
                    uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, due FROM timer").map {
                        ($0["key"] as String, $0["due"] as Int64)
                    }))
        }
    }
}

/// A state change as the changelog carries it.
enum StateChange: Sendable, Equatable {
    case put(Data)
    case delete
    case timer(due: Int64, payload: Data)
    case timerCancelled

    /// Changelog encoding: the key is prefixed by the kind (`e/` entries, `t/` timers); an entry's
    /// value is its bytes, a timer's value is 8 bytes of due time then the payload; deletions are
    /// tombstones (so compaction drops them).
    func changelogRecord(key: String) -> (key: String, value: Data?) {
        switch self {
        case .put(let value): ("e/" + key, value)
        case .delete: ("e/" + key, nil)
        case .timer(let due, let payload):
            ("t/" + key, withUnsafeBytes(of: due.bigEndian) { Data($0) } + payload)
        case .timerCancelled: ("t/" + key, nil)
        }
    }

    /// Reads a changelog record back.
    static func fromChangelog(key: String, value: Data?) -> (key: String, change: StateChange)? {
        if key.hasPrefix("e/") {
            let name = String(key.dropFirst(2))
            return (name, value.map { .put($0) } ?? .delete)
        }
        if key.hasPrefix("t/") {
            let name = String(key.dropFirst(2))
            guard let value else { return (name, .timerCancelled) }
            guard value.count >= 8 else { return nil }
            let due = value.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
            return (name, .timer(due: due, payload: Data(value.dropFirst(8))))
        }
        return nil
    }
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

/// A partition's entries and timers (due, ms since 1970), as a test or tool sees them.
public struct StateSnapshot: Sendable, Equatable {
    public var entries: [String: Data]
    public var timers: [String: Int64]
}

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

/// Reads a worker's local state files (tests and tools).
public enum StateInspector {
    /// The state of one partition of a worker, read from its SQLite file.
    public static func snapshot(directory: String, partition: Int32) throws -> StateSnapshot {
        try PartitionStore(directory: directory, name: "partition-\(partition)").snapshot()
    }
}
