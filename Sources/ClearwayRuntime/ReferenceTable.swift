import ClearwayKafka
import Foundation
import GRDB
import Logging
import Synchronization

/// A compacted topic every instance of a worker keeps whole, in local SQLite: the latest value
/// per key, a tombstone deletes (Kafka Streams calls this a global table). Read from the start on
/// the first run, from the stored positions after a restart, and tailed while the worker runs;
/// a handler reads it without a network call, and hears which keys changed
/// (`RecordHandler.tablesChanged`).
///
/// The table is a cache of its topic, not state of the worker: it is never committed with the
/// worker's outputs, and deleting the file only costs a re-read.
public final class ReferenceTable: Sendable {
    /// The topic's name without the deployment's prefix, e.g. `catalog.v1`.
    public let name: String
    private let database: DatabasePool
    private let cache = Mutex(Cache())
    private let changed = Mutex<Set<String>>([])
    private let loaded = Mutex(false)
    private static let cacheLimit = 50_000

    init(name: String, directory: String) throws {
        self.name = name
        try StateDirectory.create(directory)
        database = try DatabasePool(path: (directory as NSString).appendingPathComponent("\(name).sqlite"))
        var migrator = DatabaseMigrator()
        // Migrations are never edited once shipped; add new ones.
        migrator.registerMigration("v1") { db in
            try db.create(table: "entry") { table in
                table.primaryKey("key", .text)
                table.column("value", .blob).notNull()
            }
            try db.create(table: "position") { table in
                table.primaryKey("partition", .integer)
                table.column("nextOffset", .integer).notNull()
            }
        }
        try migrator.migrate(database)
    }

    /// Values read, and values decoded from them, until their key changes. `generation` grows
    /// with every applied batch, so a value read before a change is never cached after it.
    private struct Cache {
        var generation: UInt64 = 0
        /// `nil` inside: the key is known to be absent (rate lookups miss more often than not).
        var raw: [String: Data?] = [:]
        var decoded: [String: [ObjectIdentifier: any Sendable]] = [:]
    }

    /// The current value of a key, or nil (never published, or retired by a tombstone).
    public func value(_ key: String) throws -> Data? {
        let (hit, generation) = cache.withLock { ($0.raw[key], $0.generation) }
        if let hit { return hit }
        let value = try database.read { db in
            try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM entry WHERE key = ?"), arguments: [key])
        }
        cache.withLock { cache in
            guard cache.generation == generation else { return }
            if cache.raw.count >= Self.cacheLimit { cache.raw.removeAll(keepingCapacity: true) }
            cache.raw[key] = .some(value)
        }
        return value
    }

    /// The current value of a key as `decode` makes it, decoded once per change of the key
    /// (a handler reads the same catalog record for many orders). A failed decode is not kept.
    public func value<T: Sendable>(_ key: String, decodedBy decode: (Data) throws -> T) throws -> T? {
        let type = ObjectIdentifier(T.self)
        let (hit, generation) = cache.withLock { ($0.decoded[key]?[type] as? T, $0.generation) }
        if let hit { return hit }
        guard let data = try value(key) else { return nil }
        let decoded = try decode(data)
        cache.withLock { cache in
            guard cache.generation == generation else { return }
            if cache.decoded.count >= Self.cacheLimit { cache.decoded.removeAll(keepingCapacity: true) }
            cache.decoded[key, default: [:]][type] = decoded
        }
        return decoded
    }

    /// How many keys the table holds.
    public func count() throws -> Int {
        try database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM entry") ?? 0 }
    }

    /// Whether the first read reached the end of every partition as it was at start.
    public var isLoaded: Bool { loaded.withLock { $0 } }

    func markLoaded() { loaded.withLock { $0 = true } }

    /// The next offset to read per partition, as stored with the data.
    func positions() throws -> [Int32: Int64] {
        try database.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT partition, nextOffset FROM position").map {
                    (Int32($0["partition"] as Int64), $0["nextOffset"] as Int64)
                })
        }
    }

    /// Applies a batch of records and the positions they bring the partitions to, in one
    /// SQLite transaction, then reports their keys as changed.
    func apply(_ records: [(key: String, value: Data?)], positions: [Int32: Int64]) throws {
        try database.write { db in
            for record in records {
                if let value = record.value {
                    try db.cachedStatement(
                        sql:
                            "INSERT INTO entry (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                    ).execute(arguments: [record.key, value])
                } else {
                    try db.cachedStatement(sql: "DELETE FROM entry WHERE key = ?").execute(arguments: [record.key])
                }
            }
            for (partition, offset) in positions {
                try db.cachedStatement(
                    sql:
                        "INSERT INTO position (partition, nextOffset) VALUES (?, ?) ON CONFLICT(partition) DO UPDATE SET nextOffset = excluded.nextOffset"
                ).execute(arguments: [Int64(partition), offset])
            }
        }
        let keys = records.map(\.key)
        cache.withLock { cache in
            cache.generation &+= 1
            for key in keys {
                cache.raw.removeValue(forKey: key)
                cache.decoded.removeValue(forKey: key)
            }
        }
        changed.withLock { $0.formUnion(keys) }
    }

    /// The keys changed since the last call.
    func drainChanges() -> Set<String> {
        changed.withLock { changed in
            defer { changed = [] }
            return changed
        }
    }
}

/// The reference tables a worker reads, by topic name without the prefix.
public struct ReferenceTables: Sendable {
    let tables: [String: ReferenceTable]

    /// A table by its topic name (e.g. `catalog.v1`), or nil when the worker declared no such table.
    public subscript(_ name: String) -> ReferenceTable? { tables[name] }

    /// Whether every table finished its first read.
    public var areLoaded: Bool { tables.values.allSatisfy(\.isLoaded) }

    /// The keys changed since the last call, per table; empty when nothing changed.
    func drainChanges() -> [String: Set<String>] {
        var changes: [String: Set<String>] = [:]
        for (name, table) in tables {
            let keys = table.drainChanges()
            if !keys.isEmpty { changes[name] = keys }
        }
        return changes
    }
}

/// Reads one reference table's topic into its SQLite file: every partition, assigned (no group,
/// no commits), from the stored positions; then tails it until stopped.
final class ReferenceTableReader: Sendable {
    let table: ReferenceTable
    private let consumer: KafkaConsumer
    private let topic: String
    private let logger: Logger

    init(table: ReferenceTable, topic: String, settings: ClientSettings, logger: Logger) throws {
        self.table = table
        self.topic = topic
        self.logger = logger
        consumer = try KafkaConsumer(configuration: settings.tableReader(), logger: logger)
    }

    /// Reads until the end of every partition as it is now (the first load), then returns; the
    /// rest of the topic is read by `tail()`.
    func load() async throws {
        guard let description = try await consumer.describeTopic(topic) else {
            throw ConfigurationError("the reference table topic \(topic) does not exist; run `clearway topics apply`")
        }
        let stored = try table.positions()
        let partitions = description.partitions.map(\.id)
        try consumer.assign(
            partitions.map {
                TopicPartitionOffset(topic: topic, partition: $0, offset: stored[$0] ?? TopicPartitionOffset.beginning)
            })
        var remaining = Set(partitions)
        var records = 0
        let started = ContinuousClock.now
        var lastReport = started
        while !remaining.isEmpty {
            guard let events = try await consumer.poll() else { return }
            let (applied, ended) = try apply(events)
            records += applied
            remaining.subtract(ended)
            if ContinuousClock.now - lastReport >= .seconds(5) {
                lastReport = .now
                logger.info(
                    "loading reference table",
                    metadata: ["table": "\(table.name)", "records": "\(records)"])
            }
        }
        table.markLoaded()
        let keys = try table.count()
        logger.info(
            "reference table loaded",
            metadata: [
                "table": "\(table.name)", "records": "\(records)", "keys": "\(keys)",
                "duration": "\(ContinuousClock.now - started)",
            ])
    }

    /// Applies what arrives until the task is cancelled or the consumer closes.
    func tail() async throws {
        while !Task.isCancelled {
            guard let events = try await consumer.poll() else { return }
            _ = try apply(events)
        }
    }

    func close() async {
        try? await consumer.close()
    }

    /// Applies one poll's records; returns how many, and the partitions that reached their end.
    private func apply(_ events: [KafkaConsumerEvent]) throws -> (Int, [Int32]) {
        var records: [(key: String, value: Data?)] = []
        var positions: [Int32: Int64] = [:]
        var ended: [Int32] = []
        for event in events {
            switch event {
            case .record(let record):
                positions[record.partition] = record.offset + 1
                guard let key = record.keyString else {
                    logger.warning(
                        "reference record without a key ignored",
                        metadata: [
                            "table": "\(table.name)", "kafka.partition": "\(record.partition)",
                            "kafka.offset": "\(record.offset)",
                        ])
                    continue
                }
                records.append((key, record.isTombstone ? nil : record.value))
            case .endOfPartition(let partition):
                ended.append(partition.partition)
            case .error(let error):
                logger.warning("reference table consumer error", metadata: ["kafka.error": "\(error)"])
            default:
                continue
            }
        }
        if !records.isEmpty || !positions.isEmpty { try table.apply(records, positions: positions) }
        return (records.count, ended)
    }
}
