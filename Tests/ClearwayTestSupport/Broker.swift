import ClearwayKafka
import Foundation
import Logging
import Synchronization

/// The local test broker that `scripts/test` starts and names in `CLEARWAY_BOOTSTRAP_SERVERS`.
public enum Broker {
    public static let bootstrapServers: [String] =
        ProcessInfo.processInfo.environment["CLEARWAY_BOOTSTRAP_SERVERS"]
        .map { $0.split(separator: ",").map(String.init) } ?? []

    /// Broker tests run only with a broker; `scripts/test` always provides one (and fails the run
    /// if any test is skipped).
    public static var isAvailable: Bool { !bootstrapServers.isEmpty }

    public static let logger: Logger = {
        var logger = Logger(label: "clearway.tests")
        logger.logLevel =
            ProcessInfo.processInfo.environment["CLEARWAY_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        return logger
    }()

    /// A topic name no other test uses.
    public static func uniqueTopic(_ base: String) -> String {
        "test.\(base).\(UUID().uuidString.prefix(8).lowercased())"
    }

    public static func admin() throws -> KafkaAdminClient {
        try KafkaAdminClient(configuration: KafkaAdminConfiguration(bootstrapServers: bootstrapServers), logger: logger)
    }

    public static func createTopic(_ name: String, partitions: Int32) async throws {
        let outcome = try await admin().createTopics([TopicSpecification(name: name, partitions: partitions)])
        guard outcome[name] == .created else {
            throw SetupFailure(description: "topic \(name) was not created: \(String(describing: outcome[name]))")
        }
    }

    public static func producer(_ configure: (inout KafkaProducerConfiguration) -> Void = { _ in }) throws
        -> KafkaProducer
    {
        var configuration = KafkaProducerConfiguration(bootstrapServers: bootstrapServers)
        configure(&configuration)
        return try KafkaProducer(configuration: configuration, logger: logger)
    }

    public static func consumer(
        group: String, _ configure: (inout KafkaConsumerConfiguration) -> Void = { _ in }
    ) throws -> KafkaConsumer {
        var configuration = KafkaConsumerConfiguration(groupID: group, bootstrapServers: bootstrapServers)
        // The test broker holds a join for about half the session timeout; keep joins short.
        configuration.sessionTimeout = .seconds(6)
        configuration.properties["heartbeat.interval.ms"] = "500"
        configure(&configuration)
        return try KafkaConsumer(configuration: configuration, logger: logger)
    }
}

/// A test's set-up could not be made (not a failure of what the test checks).
public struct SetupFailure: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

public struct TimedOut: Error, CustomStringConvertible {
    public let what: String
    public var description: String { "timed out: \(what)" }
}

/// Runs `body`, failing with `TimedOut` if it takes longer than `limit`.
public func within<T: Sendable>(
    _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TimedOut(what: what)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Reads records from a consumer until `count` have arrived (or `limit` passes), storing each.
public func collect(_ consumer: KafkaConsumer, count: Int, limit: Duration = .seconds(30)) async throws
    -> [ConsumerRecord]
{
    try await within(limit, "\(count) records") {
        var records: [ConsumerRecord] = []
        for try await event in consumer.events {
            if case .record(let record) = event {
                records.append(record)
                try consumer.store(record)
                if records.count == count { break }
            }
        }
        return records
    }
}

/// Reads a consumer in the background, recording what it sees; revokes are handled by
/// `onRevoke` (which commits by default) before being acknowledged.
public final class ConsumerProbe: Sendable {
    public struct Seen: Sendable {
        public var records: [ConsumerRecord] = []
        public var assigned: [[TopicPartition]] = []
        public var revoked: [PartitionRevocation] = []
    }
    public let consumer: KafkaConsumer
    public let seen = Locked(Seen())
    private let task = Locked<Task<Void, any Error>?>(nil)

    public init(
        _ consumer: KafkaConsumer,
        onRevoke: @escaping @Sendable (KafkaConsumer, PartitionRevocation) async throws -> Void
    ) {
        self.consumer = consumer
        let seen = self.seen
        task.withLock {
            $0 = Task { @Sendable in
                for try await event in consumer.events {
                    switch event {
                    case .record(let record):
                        try consumer.store(record)
                        seen.withLock { $0.records.append(record) }
                    case .partitionsAssigned(let partitions):
                        seen.withLock { $0.assigned.append(partitions) }
                    case .partitionsRevoked(let revocation):
                        try await onRevoke(consumer, revocation)
                        seen.withLock { $0.revoked.append(revocation) }
                        revocation.acknowledge()
                    default:
                        break
                    }
                }
            }
        }
    }

    /// Waits until `condition` holds of what was seen.
    public func wait(
        _ what: String, limit: Duration = .seconds(30), until condition: @escaping @Sendable (Seen) -> Bool
    ) async throws {
        let seen = self.seen
        try await within(limit, what) {
            while !seen.withLock({ condition($0) }) { try await Task.sleep(for: .milliseconds(50)) }
        }
    }

    public func stop() async {
        let task = self.task.withLock { $0 }
        task?.cancel()
        _ = await task?.result
    }
}

/// A value behind a lock, shareable between tasks.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<T: Sendable>(_ body: (inout sending Value) throws -> sending T) rethrows -> T {
        try mutex.withLock(body)
    }
}
