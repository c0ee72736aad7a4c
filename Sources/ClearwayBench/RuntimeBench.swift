import ArgumentParser
import ClearwayKafka
import Foundation
import Logging

/// The worker runtime (a pass-through worker in its own process) against a kcat consume → produce
/// pipe, on the same broker and records, in the same run.
struct RuntimeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "A pass-through worker on the runtime vs a kcat consume→produce pipe; records/s and peak RSS.")

    @Option(help: "Kafka bootstrap servers.")
    var bootstrapServers = ProcessInfo.processInfo.environment["CLEARWAY_BOOTSTRAP_SERVERS"] ?? "127.0.0.1:9092"
    @Option(help: "Records per run.") var records = 200_000
    @Option(help: "The worker executable (clearway-test-worker: echoes each record).") var worker: String
    @Option(help: "The kcat executable (the baseline).") var kcat = "kcat"
    @Option(help: "Where to write the results as JSON.") var output: String?

    func run() async throws {
        var logger = Logger(label: "clearway.bench")
        logger.logLevel = .warning
        let servers = bootstrapServers.split(separator: ",").map(String.init)
        let admin = try KafkaAdminClient(
            configuration: KafkaAdminConfiguration(bootstrapServers: servers), logger: logger)
        let prefix = "bench\(UUID().uuidString.prefix(6).lowercased())."
        let input = prefix + "test.in"
        try await createTopics(admin, [input, prefix + "test.out", prefix + "dlq.v1", prefix + "kcat.out"])
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        for line in Payload.lines(count: records) {
            let tab = line.firstIndex(of: "\t")!
            try await producer.send(
                ProducerRecord(
                    topic: input, key: String(line[..<tab]), value: Data(line[line.index(after: tab)...].utf8)))
        }
        try await producer.flush(timeout: .seconds(120))
        await producer.shutdown()
        print("runtime: \(records) records of ~417 bytes on \(input) (4 partitions)")

        let kcatSeconds = try measureKcatPipe(input: input, output: prefix + "kcat.out")
        let kcatRate = Double(records) / kcatSeconds
        print(String(format: "kcat pipe:                %8.0f records/s", kcatRate))
        var results: [String: Double] = ["records": Double(records), "kcat_pipe_per_s": kcatRate]
        for mode in ["at-least-once", "exactly-once"] {
            let (rate, rss) = try await measureWorker(prefix: prefix, mode: mode, servers: servers, logger: logger)
            print(
                String(
                    format: "runtime %-16@ %8.0f records/s  (%.2f of kcat)  peak RSS %.1f MB", mode as NSString, rate,
                    rate / kcatRate, Double(rss) / 1_048_576))
            let key = mode == "exactly-once" ? "exactly_once" : "at_least_once"
            results["\(key)_per_s"] = rate
            results["\(key)_ratio"] = rate / kcatRate
            results["\(key)_peak_rss_bytes"] = Double(rss)
        }
        try await admin.deleteTopics([input, prefix + "test.out", prefix + "dlq.v1", prefix + "kcat.out"])
        if let output {
            let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: output))
            print("written to \(output)")
        }
    }

    private func createTopics(_ admin: KafkaAdminClient, _ names: [String]) async throws {
        _ = try await admin.createTopics(names.map { TopicSpecification(name: $0, partitions: 4) })
    }

    /// `kcat -C … | kcat -P …`, timed whole.
    private func measureKcatPipe(input: String, output: String) throws -> Double {
        let script =
            "\(kcat) -b \(bootstrapServers) -C -t \(input) -o beginning -e -q -K '\\t' -X enable.metrics.push=false "
            + "| \(kcat) -b \(bootstrapServers) -P -t \(output) -K '\\t' -X enable.idempotence=true -X linger.ms=5 -X compression.type=lz4 -X enable.metrics.push=false"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-o", "pipefail", "-c", script]
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("the kcat pipe failed") }
        let (seconds, attoseconds) = (clock.now - start).components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Starts the worker, times it from its first commit to its last, and samples its peak RSS.
    private func measureWorker(prefix: String, mode: String, servers: [String], logger: Logger) async throws -> (
        Double, Int
    ) {
        let group = "bench-\(mode)-\(UUID().uuidString.prefix(6))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: worker)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
            "CLEARWAY_TEST_WORKER_NAME": group, "CLEARWAY_DELIVERY": mode, "CLEARWAY_SESSION_TIMEOUT_MS": "6000",
            "CLEARWAY_HTTP_PORT": "0", "CLEARWAY_LOG_LEVEL": "warning",
            // As deployed (README, Operations): glibc's default of eight malloc arenas per core
            // multiplies resident memory for a process of mostly librdkafka threads.
            "MALLOC_ARENA_MAX": "2",
        ]) { _, new in new }
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var configuration = KafkaConsumerConfiguration(groupID: group, bootstrapServers: servers)
        configuration.sessionTimeout = .seconds(6)
        let probe = try KafkaConsumer(configuration: configuration, logger: logger)
        let partitions = (0..<Int32(4)).map { TopicPartition(topic: prefix + "test.in", partition: $0) }
        func committed() async throws -> Int {
            Int(try await probe.committed(partitions).map { max(0, $0.offset) }.reduce(0, +))
        }
        let clock = ContinuousClock()
        var peak = 0
        var first: (at: ContinuousClock.Instant, count: Int)?
        let deadline = clock.now + .seconds(600)
        while clock.now < deadline {
            peak = max(peak, peakRSS(process.processIdentifier))
            let done = try await committed()
            if first == nil, done > 0 { first = (clock.now, done) }
            if done >= records { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let end = clock.now
        peak = max(peak, peakRSS(process.processIdentifier))
        process.terminate()
        process.waitUntilExit()
        guard let first else { throw ValidationError("the \(mode) worker committed nothing") }
        let (seconds, attoseconds) = (end - first.at).components
        return (Double(records - first.count) / (Double(seconds) + Double(attoseconds) / 1e18), peak)
    }

    /// VmHWM of a process, in bytes.
    private func peakRSS(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }
}
