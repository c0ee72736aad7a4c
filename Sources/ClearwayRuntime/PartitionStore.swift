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
        try StateDirectory.create(directory)
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

    /// The entries whose key starts with `prefix`, in key order.
    func entries(withPrefix prefix: String) throws -> [(key: String, value: Data)] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT key, value FROM entry WHERE key >= ? AND key < ? ORDER BY key",
                arguments: [prefix, prefix + "\u{10FFFF}"]
            ).map { ($0["key"], $0["value"]) }
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

/// A partition's entries and timers (due, ms since 1970), as a test or tool sees them.
public struct StateSnapshot: Sendable, Equatable {
    public var entries: [String: Data]
    public var timers: [String: Int64]
}

/// Reads a worker's local state files (tests and tools).
public enum StateInspector {
    /// The state of one partition of a worker, read from its SQLite file.
    public static func snapshot(directory: String, partition: Int32) throws -> StateSnapshot {
        try PartitionStore(directory: directory, name: "partition-\(partition)").snapshot()
    }
}
