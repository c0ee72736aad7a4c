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
    @Option(help: "The worker executable (clearway-test-worker: echoes each record).") var worker: String

    func run() async throws {
        let (bootstrapServers, kcat) = (options.bootstrapServers, options.kcat)
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

        let kcatSeconds = try kcatPipe(kcat: kcat, servers: bootstrapServers, input: input, output: prefix + "kcat.out")
        let kcatRate = Double(records) / kcatSeconds
        print(String(format: "kcat pipe:                %8.0f records/s", kcatRate))
        var results: [String: Double] = ["records": Double(records), "kcat_pipe_per_s": kcatRate]
        for mode in ["at-least-once", "exactly-once"] {
            let group = "bench-\(mode)-\(UUID().uuidString.prefix(6))"
            let (rate, rss) = try await measureWorker(
                executable: worker,
                environment: [
                    "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
                    "CLEARWAY_TEST_WORKER_NAME": group, "CLEARWAY_DELIVERY": mode,
                ], group: prefix + group,
                partitions: (0..<Int32(4)).map { TopicPartition(topic: input, partition: $0) },
                records: records, servers: servers, logger: logger)
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
        try options.write(results)
    }

    private func createTopics(_ admin: KafkaAdminClient, _ names: [String]) async throws {
        _ = try await admin.createTopics(names.map { TopicSpecification(name: $0, partitions: 4) })
    }
}
