import ArgumentParser
import ClearwayKafka
import Foundation
import Logging

/// Benchmarks run by `scripts/bench`. Each measures Clearway against a baseline in the same run.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clearway-bench",
        abstract: "Clearway benchmarks, each against a baseline measured in the same run.",
        subcommands: [
            KafkaBench.self, RuntimeBench.self, EnricherBench.self, PGARouterBench.self, AggregatorBench.self,
            ManifestBuilderBench.self, ErpWritebackBench.self,
            PipelineBench.self,
        ])
}

struct KafkaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka",
        abstract: "Produce then consume JSON records through the Swift client and through kcat.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Records per run.")
    var records = 200_000
    @Option(help: "Rounds; the ratios reported are the medians of the rounds' ratios.")
    var rounds = 7
    @Option(help: "Partitions of each benchmark topic.")
    var partitions: Int32 = 4
    @Option(name: .customLong("consumer-property"), help: "A librdkafka property for the Swift consumer (k=v).")
    var consumerProperties: [String] = []

    func run() async throws {
        let bootstrapServers = options.bootstrapServers
        var logger = Logger(label: "clearway.bench")
        logger.logLevel =
            ProcessInfo.processInfo.environment["CLEARWAY_BENCH_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        let servers = bootstrapServers.split(separator: ",").map(String.init)
        let lines = Payload.lines(count: records)
        let payloadFile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "clearway-bench-\(getpid()).txt")
        try lines.joined(separator: "\n").appending("\n").write(to: payloadFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: payloadFile) }
        let averageBytes = lines.reduce(0) { $0 + $1.utf8.count } / max(lines.count, 1)
        print("kafka: \(records) records of ~\(averageBytes) bytes, \(partitions) partitions, \(rounds) rounds")

        let admin = try KafkaAdminClient(
            configuration: KafkaAdminConfiguration(bootstrapServers: servers), logger: logger)
        let producerSettings: [String: String] = [
            "enable.idempotence": "true", "acks": "all", "linger.ms": "5", "compression.type": "lz4",
            "enable.metrics.push": "false",
        ]
        var all: [Rates] = []
        for round in 1...rounds {
            let swiftTopic = "bench.kafka.swift.\(UUID().uuidString.prefix(8))"
            let kcatTopic = "bench.kafka.kcat.\(UUID().uuidString.prefix(8))"
            _ = try await admin.createTopics([
                TopicSpecification(name: swiftTopic, partitions: partitions),
                TopicSpecification(name: kcatTopic, partitions: partitions),
            ])

            let records = lines.map { line in
                let tab = line.firstIndex(of: "\t")!
                return ProducerRecord(
                    topic: swiftTopic, key: String(line[..<tab]), value: Data(line[line.index(after: tab)...].utf8))
            }
            let kcatSettings = ["enable.metrics.push": "false"]
            let produce = try await alternating(round) {
                try await produceWithSwift(records: records, servers: servers, logger: logger)
            } kcat: {
                try runKcat(["-P", "-t", kcatTopic, "-K", "\t", "-l", payloadFile.path], settings: producerSettings)
            }
            let consume = try await alternating(round) {
                try await consumeWithSwift(topic: swiftTopic, servers: servers, logger: logger)
            } kcat: {
                try runKcat(
                    ["-C", "-t", kcatTopic, "-o", "beginning", "-e", "-q", "-f", "%k%s\n"], settings: kcatSettings)
            }
            let rates = Rates(
                swiftProduce: Double(self.records) / produce.swift, kcatProduce: Double(self.records) / produce.kcat,
                swiftConsume: Double(self.records) / consume.swift, kcatConsume: Double(self.records) / consume.kcat)
            print("round \(round): \(rates.summary)")
            try await admin.deleteTopics([swiftTopic, kcatTopic])
            all.append(rates)
        }
        let produceRatio = median(all.map { $0.swiftProduce / $0.kcatProduce })
        let consumeRatio = median(all.map { $0.swiftConsume / $0.kcatConsume })
        let best = all.reduce(Rates()) { $0.bestOf($1) }
        print("best:    \(best.summary)")
        print(String(format: "ratio produce (swift / kcat, median of rounds): %.2f", produceRatio))
        print(String(format: "ratio consume (swift / kcat, median of rounds): %.2f", consumeRatio))
        let result: [String: Double] = [
            "records": Double(records),
            "swift_produce_per_s": best.swiftProduce, "kcat_produce_per_s": best.kcatProduce,
            "swift_consume_per_s": best.swiftConsume, "kcat_consume_per_s": best.kcatConsume,
            "ratio_produce": produceRatio, "ratio_consume": consumeRatio,
        ]
        try options.write(result)
    }

    private func produceWithSwift(records: [ProducerRecord], servers: [String], logger: Logger) async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: servers)
        configuration.clientID = "clearway-bench"
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        let clock = ContinuousClock()
        let start = clock.now
        for record in records { try await producer.send(record) }
        let sent = clock.now
        try await producer.flush(timeout: .seconds(120))
        let flushed = clock.now
        await producer.shutdown()
        if ProcessInfo.processInfo.environment["CLEARWAY_BENCH_DEBUG"] != nil {
            print(
                "  produce: sent after \(sent - start), flushed after \(flushed - start), shut down after \(clock.now - start)"
            )
        }
    }

    private func consumeWithSwift(topic: String, servers: [String], logger: Logger) async throws {
        var configuration = KafkaConsumerConfiguration(groupID: "clearway-bench", bootstrapServers: servers)
        configuration.emitEndOfPartition = true
        for property in consumerProperties {
            let parts = property.split(separator: "=", maxSplits: 1).map(String.init)
            configuration.properties[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        // Learn the partition leaders first, as kcat does; an assignment made before the metadata
        // arrives waits for librdkafka's offset-query retry (~0.5 s).
        _ = try await consumer.describeTopic(topic)
        try consumer.assign(
            (0..<partitions).map {
                TopicPartitionOffset(topic: topic, partition: $0, offset: TopicPartitionOffset.beginning)
            })
        var count = 0
        var finished = Set<Int32>()
        let clock = ContinuousClock()
        let start = clock.now
        var firstAt: ContinuousClock.Instant?
        for try await event in consumer.events {
            switch event {
            case .record:
                if firstAt == nil { firstAt = clock.now }
                count += 1
            case .endOfPartition(let position): finished.insert(position.partition)
            case .error(let error): throw error
            default: break
            }
            if finished.count == partitions && count >= records { break }
        }
        let endAt = clock.now
        try await consumer.close()
        if ProcessInfo.processInfo.environment["CLEARWAY_BENCH_DEBUG"] != nil {
            print(
                "  consume: first record after \(firstAt! - start), all after \(endAt - start), closed after \(clock.now - start)"
            )
        }
        guard count == records else { throw ValidationError("consumed \(count) records, expected \(records)") }
    }

    private func runKcat(_ arguments: [String], settings: [String: String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [options.kcat, "-b", options.bootstrapServers]
            + settings.sorted { $0.key < $1.key }.flatMap { ["-X", "\($0.key)=\($0.value)"] }
            + arguments
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("kcat \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }

    /// Times both sides, alternating who goes first by round so neither always meets a warmer
    /// (or busier) broker; seconds each.
    private func alternating(
        _ round: Int, swift: () async throws -> Void, kcat: () async throws -> Void
    ) async throws -> (swift: Double, kcat: Double) {
        if round % 2 == 0 {
            let swiftSeconds = try await measure(swift)
            return (swiftSeconds, try await measure(kcat))
        }
        let kcatSeconds = try await measure(kcat)
        return (try await measure(swift), kcatSeconds)
    }

    private func measure(_ body: () async throws -> Void) async throws -> Double {
        let clock = ContinuousClock()
        let elapsed = try await clock.measure { try await body() }
        let (seconds, attoseconds) = elapsed.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

struct Rates {
    var swiftProduce = 0.0
    var kcatProduce = 0.0
    var swiftConsume = 0.0
    var kcatConsume = 0.0

    func bestOf(_ other: Rates) -> Rates {
        Rates(
            swiftProduce: max(swiftProduce, other.swiftProduce), kcatProduce: max(kcatProduce, other.kcatProduce),
            swiftConsume: max(swiftConsume, other.swiftConsume), kcatConsume: max(kcatConsume, other.kcatConsume))
    }

    var summary: String {
        String(
            format: "produce swift %.0f/s kcat %.0f/s (%.2f) | consume swift %.0f/s kcat %.0f/s (%.2f)",
            swiftProduce, kcatProduce, swiftProduce / kcatProduce, swiftConsume, kcatConsume,
            swiftConsume / kcatConsume)
    }
}

/// Order-like JSON records of about 400 bytes, keyed by order id (`key<TAB>value` lines).
enum Payload {
    static func lines(count: Int) -> [String] {
        (0..<count).map { index in
            let orderID = String(format: "ORD-%08d", index)
            let value =
                #"{"orderId":"\#(orderID)","type":"placed","version":1,"currency":"MXN","shipDate":"2026-11-25","#
                + #""warehouse":"MX-GDL-1","carrier":"DHL","consignee":{"name":"Jane Q. Customer \#(index % 997)","#
                + #""line1":"\#(100 + index % 900) Main Street","line2":"Apt \#(index % 40)","city":"Springfield","#
                + #""region":"IL","postalCode":"62704","country":"US"},"lines":[{"sku":"SKU-\#(index % 2000)","#
                + #""quantity":\#(1 + index % 4),"unitPrice":"\#(100 + index % 5000).50"}],"#
                + #""erp":{"system":"netsuite","recordId":"SO\#(index)"}}"#
            return "\(orderID)\t\(value)"
        }
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
