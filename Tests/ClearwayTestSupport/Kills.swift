import ClearwayKafka
import Foundation

/// The sum of a consumer group's committed offsets on some partitions (0 where it has none),
/// read without joining the group: how far a worker under test has got.
public final class CommittedOffsets: Sendable {
    let probe: KafkaConsumer
    let partitions: [TopicPartition]

    public init(group: String, partitions: [TopicPartition], servers: [String] = Broker.bootstrapServers) throws {
        var configuration = KafkaConsumerConfiguration(groupID: group, bootstrapServers: servers)
        configuration.sessionTimeout = .seconds(6)
        probe = try KafkaConsumer(configuration: configuration, logger: Broker.logger)
        self.partitions = partitions
    }

    public func total() async throws -> Int64 {
        try await probe.committed(partitions).map { max(0, $0.offset) }.reduce(0, +)
    }

    /// The committed offset of each partition (0 where there is none).
    public func byPartition() async throws -> [Int32: Int64] {
        var offsets: [Int32: Int64] = [:]
        for entry in try await probe.committed(partitions) { offsets[entry.partition] = max(0, entry.offset) }
        return offsets
    }

    /// Waits until the total reaches `target`.
    public func wait(for target: Int64, limit: Duration, _ what: String) async throws {
        try await within(limit, what) {
            while try await self.total() < target { try await Task.sleep(for: .milliseconds(200)) }
        }
    }
}

/// Starts a worker `lives` times and kills each with SIGKILL at a random moment up to `pause`
/// after it has committed something new (so each life makes progress and dies mid-work). The
/// committed total after each kill.
public func killRepeatedly(
    lives: Int, pause: Duration, committed: CommittedOffsets, progressLimit: Duration = .seconds(30),
    start: () throws -> WorkerProcess
) async throws -> [Int64] {
    var progress: [Int64] = []
    for life in 1...lives {
        let before = try await committed.total()
        let worker = try start()
        try await within(progressLimit, "progress after start \(life)") {
            while try await committed.total() == before { try await Task.sleep(for: .milliseconds(100)) }
        }
        let (seconds, attoseconds) = pause.components
        let milliseconds = Int(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...milliseconds)))
        worker.signal(SIGKILL)
        _ = await worker.waitForExit(limit: .seconds(5))
        progress.append(try await committed.total())
    }
    return progress
}
