import ArgumentParser
import ClearwayKafka
import ClearwayRuntime
import Foundation
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `kcat -C … | kcat -P …` from the start of `input` to `output`: the pass-through baseline every
/// worker benchmark is measured against. Seconds from the first record a run writes to `output`
/// to its last (their timestamps), so the baseline is the pipe's rate once running, as a worker's
/// is timed from its first commit: kcat's start-up is left out, as a worker's group join is. The
/// best of `rounds` runs (into the same topic): kcat's consumer at times starts a partition about
/// a second late, which halves a run's rate.
func kcatPipe(kcat: String, servers: String, input: String, output: String, rounds: Int = 3) throws -> Double {
    try (1...max(1, rounds)).map { _ in try kcatPipeRun(kcat: kcat, servers: servers, input: input, output: output) }
        .map(\.seconds).min()!
}

/// One run of the kcat pipe: seconds as `kcatPipe` times them, and the CPU seconds its two kcat
/// processes used (user and system, start-up included).
func kcatPipeRun(kcat: String, servers: String, input: String, output: String) throws -> (
    seconds: Double, cpuSeconds: Double
) {
    let script =
        "\(kcat) -b \(servers) -C -t \(input) -o beginning -e -q -K '\\t' -X enable.metrics.push=false "
        + "| \(kcat) -b \(servers) -P -t \(output) -K '\\t' -X enable.idempotence=true -X linger.ms=5 -X compression.type=lz4 -X enable.metrics.push=false"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-o", "pipefail", "-c", script]
    let startedAt = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    let clock = ContinuousClock()
    let start = clock.now
    let cpuBefore = childrenCPUSeconds()
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw ValidationError("the kcat pipe failed") }
    let whole = seconds(clock.now - start)
    // bash has waited for both kcats, and we for bash: their CPU is now in our children's usage.
    let cpu = childrenCPUSeconds() - cpuBefore

    let reader = Process()
    reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    reader.arguments = [
        kcat, "-b", servers, "-C", "-t", output, "-o", "beginning", "-e", "-q", "-f", "%T\n", "-X",
        "enable.metrics.push=false",
    ]
    let pipe = Pipe()
    reader.standardOutput = pipe
    try reader.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    reader.waitUntilExit()
    // This run's records: an earlier run into the same topic wrote before it started.
    let stamps = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { Int64($0) }
        .filter { $0 >= startedAt }
    guard let first = stamps.min(), let last = stamps.max(), last > first else { return (whole, cpu) }
    return (Double(last - first) / 1000, cpu)
}

/// User and system CPU seconds of this process's waited-for children.
private func childrenCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// User and system CPU seconds a running process has used so far (`/proc/<pid>/stat`).
func cpuSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let afterName = stat.lastIndex(of: ")")
    else { return 0 }
    // Fields after the command name: state is field 3, utime 14 and stime 15.
    let fields = stat[stat.index(after: afterName)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func seconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) + Double(attoseconds) / 1e18
}

/// What `measureWorker` measured.
struct WorkerMeasurement {
    /// Input records committed per second, from the group's first commit to the last.
    var rate: Double
    /// VmHWM, bytes.
    var peakRSS: Int
    /// The worker's CPU time (user and system, every thread) per record over the same span:
    /// steadier than the rate on a shared machine, where the rate moves with what else runs.
    var cpuPerRecord: Duration
}

/// Starts a worker process, times it from its group's first commit to the commit of `records`
/// input records, samples its peak RSS and CPU time, runs `afterwards` while it still runs, then
/// stops it.
func measureWorker(
    executable: String, environment: [String: String], group: String, partitions: [TopicPartition], records: Int,
    servers: [String], logger: Logger, afterwards: () async throws -> Void = {}
) async throws -> WorkerMeasurement {
    let process = try startWorker(
        executable: executable, environment: ["CLEARWAY_HTTP_PORT": "0"].merging(environment) { _, given in given })
    defer { if process.isRunning { process.terminate() } }
    var configuration = KafkaConsumerConfiguration(groupID: group, bootstrapServers: servers)
    configuration.sessionTimeout = .seconds(6)
    let probe = try KafkaConsumer(configuration: configuration, logger: logger)
    func committed() async throws -> Int {
        Int(try await probe.committed(partitions).map { max(0, $0.offset) }.reduce(0, +))
    }
    let clock = ContinuousClock()
    var peak = 0
    var first: (at: ContinuousClock.Instant, count: Int, cpu: Double)?
    let deadline = clock.now + .seconds(900)
    while clock.now < deadline {
        guard process.isRunning else { throw ValidationError("\(executable) exited (\(process.terminationStatus))") }
        peak = max(peak, peakRSS(process.processIdentifier))
        let done = try await committed()
        if first == nil, done > 0 { first = (clock.now, done, cpuSeconds(process.processIdentifier)) }
        if done >= records { break }
        try await Task.sleep(for: .milliseconds(50))
    }
    let end = clock.now
    let cpu = cpuSeconds(process.processIdentifier)
    peak = max(peak, peakRSS(process.processIdentifier))
    try await afterwards()
    process.terminate()
    process.waitUntilExit()
    guard let first else { throw ValidationError("\(executable) committed nothing") }
    let counted = Double(records - first.count)
    return WorkerMeasurement(
        rate: counted / seconds(end - first.at), peakRSS: peak, cpuPerRecord: .seconds((cpu - first.cpu) / counted))
}

/// VmHWM of a process, in bytes.
func peakRSS(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }
    return 0
}

/// Starts a worker process with the bench's settings under `environment`: a short session
/// timeout and warnings only. It runs on the allocator it was built with (jemalloc, with the
/// options in `Sources/ClearwayAllocator`), as deployed. Its output goes nowhere.
func startWorker(executable: String, environment: [String: String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.environment = ProcessInfo.processInfo.environment.merging(
        ["CLEARWAY_SESSION_TIMEOUT_MS": "6000", "CLEARWAY_LOG_LEVEL": "warning"].merging(
            environment
        ) { _, given in given }
    ) { _, new in new }
    process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    return process
}

/// Waits until a worker's `/readyz` answers 200 (assigned, restored, caught up).
func waitUntilReady(port: Int, process: Process, name: String, limit: Duration = .seconds(60)) async throws {
    let deadline = ContinuousClock.now + limit
    let url = URL(string: "http://127.0.0.1:\(port)/readyz")!
    while ContinuousClock.now < deadline {
        guard process.isRunning else { throw ValidationError("\(name) exited (\(process.terminationStatus))") }
        if let (_, response) = try? await URLSession.shared.data(from: url),
            (response as? HTTPURLResponse)?.statusCode == 200
        {
            return
        }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw ValidationError("\(name) was not ready within \(limit)")
}

/// The options every benchmark takes: where the broker is, the baseline's kcat, where results go.
struct BenchOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers.")
    var bootstrapServers = ProcessInfo.processInfo.environment["CLEARWAY_BOOTSTRAP_SERVERS"] ?? "127.0.0.1:9092"
    @Option(help: "The kcat executable (the baseline).") var kcat = "kcat"
    @Option(help: "Where to write the results as JSON.") var output: String?

    /// Writes the results to `output`, when given.
    func write(_ results: [String: Double]) throws {
        guard let output else { return }
        let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: output))
        print("written to \(output)")
    }
}

func microseconds(_ duration: Duration) -> Double { seconds(duration) * 1e6 }

/// A worker benchmark's result line: rate, ratio to the kcat pipe, peak RSS and CPU per record.
func resultLine(_ name: String, _ measured: WorkerMeasurement, kcatRate: Double) -> String {
    "\(name):".padding(toLength: 15, withPad: " ", startingAt: 0)
        + String(
            format: " %8.0f records/s  (%.2f of kcat)  peak RSS %.1f MiB  %.1f µs CPU per record", measured.rate,
            measured.rate / kcatRate, Double(measured.peakRSS) / 1_048_576, microseconds(measured.cpuPerRecord))
}

extension BenchOptions {
    /// The bootstrap servers, one per element.
    var servers: [String] { bootstrapServers.split(separator: ",").map(String.init) }
}

/// The benchmarks' logger: warnings and worse.
func benchLogger() -> Logger {
    var logger = Logger(label: "clearway.bench")
    logger.logLevel = .warning
    return logger
}

/// Creates a worker's topics, and `extra` ones (the kcat pipe's output), under a topic prefix of
/// their own on the broker; returns the prefix.
func createBenchTopics(
    for definition: WorkerDefinition, extra: [TopicDeclaration] = [], servers: [String], logger: Logger
) async throws -> String {
    let prefix = "bench\(UUID().uuidString.prefix(6).lowercased())."
    var configuration = WorkerConfiguration(worker: definition.name, httpPort: 0)
    configuration.bootstrapServers = servers
    configuration.topicPrefix = prefix
    _ = try await TopicAdministration(configuration: configuration, logger: logger).apply(
        definition.declaredTopics + extra)
    return prefix
}
