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

    @OptionGroup var options: BenchOptions
    @Option(help: "Records per run.") var records = 200_000
    @Option(help: "Rounds: the baseline is kcat's best round, each mode's rate the median of its rounds.") var rounds =
        3
    @Option(help: "The worker executable (clearway-test-worker: passes each record through).") var worker: String

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
    }

    func run() async throws {
        let (bootstrapServers, kcat) = (options.bootstrapServers, options.kcat)
        var logger = Logger(label: "clearway.bench")
        logger.logLevel = .warning
        let servers = bootstrapServers.split(separator: ",").map(String.init)
        let admin = try KafkaAdminClient(
            configuration: KafkaAdminConfiguration(bootstrapServers: servers), logger: logger)
        let prefix = "bench\(UUID().uuidString.prefix(6).lowercased())."
        let input = prefix + "test.in"
        try await createTopics(admin, [input, prefix + "test.out", prefix + "dlq.v1"])
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
        print("runtime: \(records) records of ~417 bytes on \(input) (4 partitions), \(rounds) rounds")

        // Each round measures the kcat pipe and every mode afresh (new output topic, new group).
        // The baseline is kcat's best round: its consumer at times starts a partition a second
        // late (an offset lookup retried), which halves a round's rate; a worker's rate is the
        // median of its rounds.
        let modes: [(name: String, key: String, environment: [String: String])] = [
            ("at-least-once", "at_least_once", ["CLEARWAY_DELIVERY": "at-least-once"]),
            ("exactly-once", "exactly_once", ["CLEARWAY_DELIVERY": "exactly-once"]),
            (
                "exactly-once, 1,000 per transaction", "exactly_once_batch_1000",
                ["CLEARWAY_DELIVERY": "exactly-once", "CLEARWAY_MAX_BATCH": "1000"]
            ),
        ]
        var kcatRates: [Double] = []
        var kcatCPU: [Double] = []
        var rates: [String: [Double]] = [:]
        var cpu: [String: [Double]] = [:]
        var peaks: [String: Int] = [:]
        for round in 1...rounds {
            let kcatOutput = prefix + "kcat.out.\(round)"
            _ = try await admin.createTopics([TopicSpecification(name: kcatOutput, partitions: 4)])
            let pipe = try kcatPipeRun(kcat: kcat, servers: bootstrapServers, input: input, output: kcatOutput)
            let kcatRate = Double(records) / pipe.seconds
            try await admin.deleteTopics([kcatOutput])
            kcatRates.append(kcatRate)
            kcatCPU.append(pipe.cpuSeconds / Double(records) * 1e6)
            var line = String(format: "round %d: kcat pipe %.0f/s %.2f µs", round, kcatRate, kcatCPU.last!)
            for mode in modes {
                let group = "bench-\(mode.key)-\(UUID().uuidString.prefix(6))"
                let measured = try await measureWorker(
                    executable: worker,
                    environment: [
                        "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
                        "CLEARWAY_TEST_WORKER_NAME": group, "CLEARWAY_TEST_PASS_THROUGH": "true",
                    ].merging(mode.environment) { _, mode in mode }, group: prefix + group,
                    partitions: (0..<Int32(4)).map { TopicPartition(topic: input, partition: $0) },
                    records: records, servers: servers, logger: logger)
                rates[mode.key, default: []].append(measured.rate)
                cpu[mode.key, default: []].append(microseconds(measured.cpuPerRecord))
                peaks[mode.key] = max(peaks[mode.key] ?? 0, measured.peakRSS)
                line += String(
                    format: " | %@ %.0f/s (%.2f) %.2f µs", mode.name, measured.rate, measured.rate / kcatRate,
                    cpu[mode.key]!.last!)
            }
            print(line)
        }
        let kcatRate = kcatRates.max() ?? 0
        let kcatMicroseconds = median(kcatCPU)
        print(
            String(
                format: "kcat pipe:  %8.0f records/s (best round), %.2f µs CPU per record (median)", kcatRate,
                kcatMicroseconds))
        var results: [String: Double] = [
            "records": Double(records), "rounds": Double(rounds), "kcat_pipe_per_s": kcatRate,
            "kcat_pipe_cpu_us_per_record": kcatMicroseconds,
        ]
        for mode in modes {
            let (rate, rss, microseconds) = (median(rates[mode.key]!), peaks[mode.key]!, median(cpu[mode.key]!))
            let ratio = rate / kcatRate
            print(
                String(
                    format:
                        "runtime %@: %.0f records/s (median of rounds), %.2f of kcat, peak RSS %.1f MiB, "
                        + "%.2f µs CPU per record (%.2f× kcat's)",
                    mode.name as NSString, rate, ratio, Double(rss) / 1_048_576, microseconds,
                    microseconds / kcatMicroseconds))
            results["\(mode.key)_per_s"] = rate
            results["\(mode.key)_ratio"] = ratio
            results["\(mode.key)_peak_rss_bytes"] = Double(rss)
            results["\(mode.key)_cpu_us_per_record"] = microseconds
        }
        try await admin.deleteTopics([input, prefix + "test.out", prefix + "dlq.v1"])
        try options.write(results)
    }

    private func createTopics(_ admin: KafkaAdminClient, _ names: [String]) async throws {
        _ = try await admin.createTopics(names.map { TopicSpecification(name: $0, partitions: 4) })
    }
}
