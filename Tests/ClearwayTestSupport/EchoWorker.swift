import ClearwayKafka
import ClearwayRuntime
import Foundation

/// The runtime tests' worker: echoes `value` as `out:value` to the output topic (or as it is,
/// passing through), rejects `poison` (→ DLQ) and fails `flaky…` records twice before they
/// succeed.
public struct EchoHandler: RecordHandler {
    public let output: String
    public let delay: Duration
    /// Whether outputs are the input values as they are (the runtime benchmark's pass-through
    /// worker: no copy), not prefixed with `out:`.
    public let passThrough: Bool
    private static let poison = Data("poison".utf8)
    private static let flaky = Data("flaky".utf8)
    private static let prefix = Data("out:".utf8)

    public init(output: String, delay: Duration = .zero, passThrough: Bool = false) {
        self.output = output
        self.delay = delay
        self.passThrough = passThrough
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        // Bytes, not text: the runtime benchmark runs this handler as its pass-through worker.
        let value = record.value
        if value == Self.poison {
            throw RecordRejected("test-poison", "the test input \"poison\" is never processable")
        }
        if value.count >= Self.flaky.count, value.prefix(Self.flaky.count) == Self.flaky, context.attempt < 3 {
            throw TransientFailure("flaky attempt \(context.attempt)")
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        var echoed = value
        if !passThrough {
            echoed = Data(capacity: value.count + 4)
            echoed.append(Self.prefix)
            echoed.append(value)
        }
        return [OutputRecord(topic: output, key: record.keyString, value: echoed, type: "clearway.test.echo.v1")]
    }

    /// The echo worker's definition.
    public static func definition(
        name: String, input: String = "test.in", output: String = "test.out", delay: Duration = .zero,
        passThrough: Bool = false
    )
        -> WorkerDefinition
    {
        WorkerDefinition(
            name: name, inputs: [TopicDeclaration(input)], outputs: [TopicDeclaration(output)],
            handler: EchoHandler(output: output, delay: delay, passThrough: passThrough))
    }
}

/// A `clearway-test-worker` process, for tests that kill or signal a worker.
public final class WorkerProcess: @unchecked Sendable {
    // @unchecked: `process` is set once in init; Foundation's Process is thread-safe for these calls.
    public let process: Process

    /// Starts a worker executable built with the tests (`clearway-test-worker` by default) with
    /// these environment variables (added to this process's) and arguments; its standard error
    /// goes to `log` when given (after what the file holds, when `appending`).
    public init(
        environment: [String: String], executable: String = "clearway-test-worker", arguments: [String] = [],
        log: URL? = nil, appending: Bool = false
    ) throws {
        process = Process()
        process.executableURL = try Self.binary(executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let logFile = try log.map { log in
            if !appending || !FileManager.default.fileExists(atPath: log.path) {
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: log)
            try handle.seekToEnd()
            return handle
        }
        defer { try? logFile?.close() }  // the child has its own copy once started
        process.standardError =
            logFile
            ?? (ProcessInfo.processInfo.environment["CLEARWAY_TEST_LOG"] != nil
                ? FileHandle.standardError : FileHandle(forWritingAtPath: "/dev/null"))
        try process.run()
    }

    /// An executable built with the tests (next to the test bundle).
    public static func binary(_ executable: String) throws -> URL {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var binary = directory.appendingPathComponent(executable)
        if !FileManager.default.isExecutableFile(atPath: binary.path) {
            binary = directory.deletingLastPathComponent().appendingPathComponent(executable)
        }
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw SetupFailure(
                description: "no \(executable) next to the tests (\(binary.path)); run swift build first")
        }
        return binary
    }

    /// Sends a signal.
    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the process to end; its exit status, or `nil` if it is still running at `limit`.
    public func waitForExit(limit: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Reads a topic to its end with `read_committed`: every record's value, per partition in order.
public func readAll(
    topic: String, partitions: Int32, servers: [String], expectAtLeast count: Int, limit: Duration = .seconds(60)
)
    async throws -> [ConsumerRecord]
{
    var configuration = KafkaConsumerConfiguration(groupID: "reader-\(UUID().uuidString)", bootstrapServers: servers)
    configuration.emitEndOfPartition = true
    configuration.isolationLevel = .readCommitted
    let consumer = try KafkaConsumer(configuration: configuration, logger: Broker.logger)
    _ = try await consumer.describeTopic(topic)
    try consumer.assign(
        (0..<partitions).map {
            TopicPartitionOffset(topic: topic, partition: $0, offset: TopicPartitionOffset.beginning)
        })
    let records = try await within(limit, "\(count) records on \(topic)") {
        var records: [ConsumerRecord] = []
        var ended = Set<Int32>()
        for try await event in consumer.events {
            switch event {
            case .record(let record):
                records.append(record)
                ended.remove(record.partition)
            case .endOfPartition(let position): ended.insert(position.partition)
            default: break
            }
            if records.count >= count && ended.count == Int(partitions) { break }
        }
        return records
    }
    try await consumer.close()
    return records
}

/// A stateful test worker: counts records per key (state `count/<key>`), emits `key=count`, and
/// schedules a timer per key that emits `timer:<key>` when due (and fails, for a `poison…` key).
public struct CountingHandler: RecordHandler {
    public let output: String
    public let timerDelay: Duration

    public init(output: String, timerDelay: Duration) {
        self.output = output
        self.timerDelay = timerDelay
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state, let key = record.keyString else {
            throw RecordRejected("test-no-key", "the counting worker needs keyed records")
        }
        let count = (try state.value("count/\(key)").map { Int(String(decoding: $0, as: UTF8.self)) ?? 0 } ?? 0) + 1
        state.set("count/\(key)", Data("\(count)".utf8))
        let (seconds, attoseconds) = timerDelay.components
        state.schedule(
            timer: "remind/\(key)",
            at: Date().addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18), payload: Data(key.utf8))
        return [
            OutputRecord(topic: output, key: key, value: Data("\(key)=\(count)".utf8), type: "clearway.test.count.v1")
        ]
    }

    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] {
        let name = String(decoding: payload, as: UTF8.self)
        if name.hasPrefix("poison") {
            context.state?.set("touched/\(name)", Data())  // undone with the failed attempt
            throw RecordRejected("test-poison-timer", "the timer of a \"poison…\" key never succeeds")
        }
        return [
            OutputRecord(topic: output, key: name, value: Data("timer:\(name)".utf8), type: "clearway.test.timer.v1")
        ]
    }

    /// The counting worker's definition.
    public static func definition(name: String, partitions: Int32, timerDelay: Duration) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [TopicDeclaration("test.in", partitions: partitions)],
            outputs: [TopicDeclaration("test.out", partitions: partitions)],
            handler: CountingHandler(output: "test.out", timerDelay: timerDelay), isStateful: true)
    }
}
