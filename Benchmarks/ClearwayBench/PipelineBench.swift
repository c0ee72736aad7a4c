import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import Foundation
import Logging

/// The whole pipeline at a fixed offered load: the sample's orders sent at `rate` per second for
/// `seconds` into the enricher → pga-router → aggregator (each its own process), and per stage
/// the latency from the input record's timestamp to the output record's. The baseline, in the
/// same run: a kcat consume → produce pipe at the same offered load.
struct PipelineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "The three workers at a fixed offered load: per-stage p50/p99 latency vs a kcat pipe; RSS.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Offered load, orders per second.") var rate = 2_000
    @Option(help: "How long the load is offered, seconds.") var duration = 30
    @Option(help: "The directory holding the enricher, pga-router and aggregator executables.") var workers: String

    static let stages = [
        ("enricher", "orders.v1", "orders.enriched.v1"), ("pga-router", "orders.enriched.v1", "orders.screened.v1"),
        ("aggregator", "orders.screened.v1", "shipments.cleared.v1"),
    ]

    func run() async throws {
        let (bootstrapServers, kcat) = (options.bootstrapServers, options.kcat)
        var logger = Logger(label: "clearway.bench")
        logger.logLevel = .warning
        let servers = bootstrapServers.split(separator: ",").map(String.init)
        let prefix = "pipe\(UUID().uuidString.prefix(6).lowercased())."
        var configuration = WorkerConfiguration(worker: "bench", httpPort: 0)
        configuration.bootstrapServers = servers
        configuration.topicPrefix = prefix
        let baselineTopics = [TopicDeclaration("kcat.in"), TopicDeclaration("kcat.out")]
        _ = try await TopicAdministration(configuration: configuration, logger: logger).apply(
            Topics.all + baselineTopics)

        // Enough buyers for the orders (about 1.7 orders each) over four ship days.
        let wanted = rate * duration
        let sample = SampleGenerator(
            seed: 2000, consignees: max(10, wanted * 10 / 17), days: 4,
            lastDay: Day(Date(), in: TimeZone(identifier: "UTC")!).adding(days: -1)
        ).generate()
        let orders = Array(sample.orders.prefix(wanted))
        print(
            "pipeline: \(orders.count) order records offered at \(rate)/s for \(duration) s on \(prefix)* (\(Topics.orders.partitions) partitions)"
        )
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        for record in sample.catalog + sample.fxRates {
            try await producer.send(
                ProducerRecord(topic: prefix + record.topic, key: Data(record.key.utf8), value: Data(record.value.utf8))
            )
        }
        try await producer.flush(timeout: .seconds(60))

        // The baseline: kcat consume → produce, fed at the same offered load.
        let pipe = try Self.startKcatPipe(
            kcat: kcat, servers: bootstrapServers, input: prefix + "kcat.in", output: prefix + "kcat.out")
        try await Task.sleep(for: .seconds(3))  // kcat's consumer is assigned and at the end
        try await offer(orders, topic: prefix + "kcat.in", producer: producer)
        let baseline = try await Self.stageLatency(
            servers: servers, input: prefix + "kcat.in", output: prefix + "kcat.out", logger: logger)
        for process in pipe { process.terminate() }
        print(
            String(
                format: "kcat pipe:   p50 %7.1f ms  p99 %7.1f ms  (%d records)", baseline.p50 * 1000,
                baseline.p99 * 1000, baseline.count))

        // The fleet: three worker processes, ready before the load starts.
        let stateDirectory = NSTemporaryDirectory() + "clearway-bench-pipeline-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        var processes: [(name: String, process: Process)] = []
        defer { for (_, process) in processes where process.isRunning { process.terminate() } }
        for (name, _, _) in Self.stages {
            let port = try freePort()
            let process = try startWorker(
                executable: "\(workers)/\(name)",
                environment: [
                    "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
                    "CLEARWAY_STATE_DIR": "\(stateDirectory)/\(name)", "CLEARWAY_HTTP_PORT": String(port),
                    "CLEARWAY_CONSIGNEE_SECRET": "bench-secret-of-at-least-16-bytes", "CLEARWAY_INSTANCE_ID": "bench",
                    "CLEARWAY_POLICY": "section321-whatif",
                ])
            processes.append((name, process))
            try await waitUntilReady(port: port, process: process, name: name)
        }
        print("workers ready: \(processes.map(\.name).joined(separator: ", "))")
        let clock = ContinuousClock()
        let start = clock.now
        async let offered: Void = offer(orders, topic: prefix + "orders.v1", producer: producer)
        var peaks: [String: Int] = [:]
        let watched = processes.map { ($0.name, $0.process.processIdentifier) }
        let sampler = Task {
            var peaks: [String: Int] = [:]
            while !Task.isCancelled {
                for (name, pid) in watched {
                    peaks[name] = max(peaks[name] ?? 0, peakRSS(pid))
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
            return peaks
        }
        try await offered
        var results: [String: Double] = [
            "offered_per_s": Double(rate), "orders": Double(orders.count),
            "kcat_p50_s": baseline.p50, "kcat_p99_s": baseline.p99,
        ]
        var stageP50: [Double] = []
        for (name, input, output) in Self.stages {
            let latency = try await Self.stageLatency(
                servers: servers, input: prefix + input, output: prefix + output, logger: logger)
            stageP50.append(latency.p50)
            results["\(name)_p50_s"] = latency.p50
            results["\(name)_p99_s"] = latency.p99
            results["\(name)_p50_ratio_to_kcat"] = latency.p50 / baseline.p50
            results["\(name)_per_s"] = latency.throughput
        }
        // The whole way: an order's timestamp to its first shipment decision's.
        let endToEnd = try await Self.stageLatency(
            servers: servers, input: prefix + "orders.v1", output: prefix + "shipments.cleared.v1", logger: logger)
        results["end_to_end_p50_s"] = endToEnd.p50
        results["end_to_end_p99_s"] = endToEnd.p99
        let whole = seconds(clock.now - start)
        sampler.cancel()
        peaks = await sampler.value
        await producer.shutdown()
        for (name, process) in processes {
            process.terminate()
            process.waitUntilExit()
            results["\(name)_peak_rss_bytes"] = Double(peaks[name] ?? 0)
        }
        print("")
        print("stage        p50 ms     p99 ms   p50 / kcat   out/s   peak RSS")
        for (name, _, _) in Self.stages {
            print(
                name.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(
                        format: " %8.1f %10.1f %10.1f×  %7.0f   %5.1f MiB",
                        results["\(name)_p50_s"]! * 1000, results["\(name)_p99_s"]! * 1000,
                        results["\(name)_p50_ratio_to_kcat"]!, results["\(name)_per_s"]!,
                        Double(peaks[name] ?? 0) / 1_048_576))
        }
        print(
            "kcat pipe "
                + String(format: " %8.1f %10.1f   (one stage, the baseline)", baseline.p50 * 1000, baseline.p99 * 1000))
        print(
            "end to end"
                + String(
                    format: " %8.1f %10.1f   (order → shipment decision)", endToEnd.p50 * 1000, endToEnd.p99 * 1000))
        print(String(format: "every order through all three stages in %.1f s", whole))
        results["pipeline_seconds"] = whole
        try options.write(results)
    }

    /// Sends the records at `rate` per second, in 10 ms ticks, each stamped with its send time.
    func offer(_ records: [SampleRecord], topic: String, producer: KafkaProducer) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let perTick = max(1, rate / 100)
        var sent = 0
        while sent < records.count {
            for record in records[sent..<min(records.count, sent + perTick)] {
                try await producer.send(
                    ProducerRecord(
                        topic: topic, key: Data(record.key.utf8), value: Data(record.value.utf8), timestamp: Date()))
            }
            sent += perTick
            let due = start + .milliseconds(sent * 1000 / rate)
            if due > clock.now { try await Task.sleep(until: due, clock: clock) }
        }
        try await producer.flush(timeout: .seconds(60))
    }

    struct Latency {
        var p50: Double
        var p99: Double
        var count: Int
        /// Output records per second between the first and the last.
        var throughput: Double
    }

    /// Reads `input` and `output` (read_committed) until the output has been quiet for 5 s (not
    /// every order gets an output: exceptions, dead letters) and returns the per-key latency: output
    /// timestamp − input timestamp, the first record of each key on each side. Keys are order ids,
    /// read from the value's `orderId` where the topic is keyed otherwise.
    static func stageLatency(servers: [String], input: String, output: String, logger: Logger)
        async throws -> Latency
    {
        let reader = try await TopicReader(bootstrapServers: servers, topics: [input, output], logger: logger)
        var sent: [String: Date] = [:]
        var arrived: [String: Date] = [:]
        var lastNew = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(900)
        while ContinuousClock.now < deadline {
            let batch = try await reader.read(for: .milliseconds(500))
            if !batch.isEmpty { lastNew = .now }
            for record in batch {
                guard let timestamp = record.timestamp, let key = orderKey(record) else { continue }
                if record.topic == input {
                    if sent[key] == nil { sent[key] = timestamp }
                } else if arrived[key] == nil {
                    arrived[key] = timestamp
                }
            }
            if !arrived.isEmpty, ContinuousClock.now - lastNew > .seconds(5) { break }
        }
        await reader.close()
        let latencies = arrived.compactMap { key, at in sent[key].map { at.timeIntervalSince($0) } }.sorted()
        guard !latencies.isEmpty else { throw ValidationError("no records went from \(input) to \(output)") }
        let times = arrived.values.sorted()
        let span = times.last!.timeIntervalSince(times.first!)
        return Latency(
            p50: latencies[latencies.count / 2], p99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
            count: latencies.count, throughput: span > 0 ? Double(times.count) / span : 0)
    }

    private struct OrderID: Decodable { var orderId: String }

    /// The order a record is about: its key on `orders.v1` and the baseline topics, else its
    /// value's `orderId`.
    static func orderKey(_ record: ConsumerRecord) -> String? {
        if record.topic.hasSuffix("orders.v1") || record.topic.contains(".kcat.") { return record.keyString }
        return (try? JSONDecoder().decode(OrderID.self, from: record.value))?.orderId
    }

    /// `kcat -C -u … | kcat -P …` from the end of `input`: two processes joined by a pipe,
    /// running until terminated.
    static func startKcatPipe(kcat: String, servers: String, input: String, output: String) throws -> [Process] {
        let common = ["-b", servers, "-q", "-K", "\t", "-X", "enable.metrics.push=false"]
        let consumer = Process()
        let producer = Process()
        for process in [consumer, producer] {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        }
        consumer.arguments = [kcat, "-C", "-t", input, "-o", "end", "-u"] + common
        producer.arguments =
            [kcat, "-P", "-t", output, "-X", "enable.idempotence=true", "-X", "linger.ms=5"] + common
        let pipe = Pipe()
        consumer.standardOutput = pipe
        producer.standardInput = pipe
        producer.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try producer.run()
        try consumer.run()
        return [consumer, producer]
    }
}
