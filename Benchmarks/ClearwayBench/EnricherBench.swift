import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayWorkers
import Foundation
import Logging
import Synchronization

/// The enricher (its own process) on orders of 1–4 lines over a 2,000-SKU catalog, against the
/// kcat pass-through pipe on the same orders in the same run; then how soon a parked order is
/// re-driven after the catalog record that fixes it.
struct EnricherBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enricher",
        abstract: "The enricher vs a kcat consume→produce pipe; records/s, peak RSS, re-drive latency.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Orders per run.") var records = 200_000
    @Option(help: "SKUs in the catalog.") var skus = 2_000
    @Option(help: "Re-drive samples.") var redrives = 20
    @Option(help: "The enricher executable.") var enricher: String

    static let secret = "bench-secret-of-at-least-16-bytes"

    func run() async throws {
        let (bootstrapServers, kcat, servers, logger) = (
            options.bootstrapServers, options.kcat, options.servers, benchLogger()
        )
        let prefix = try await createBenchTopics(
            for: EnricherHandler.definition(
                warehouses: try WarehouseDirectory.shipped(), secret: try ConsigneeKeySecret(text: Self.secret)),
            extra: [TopicDeclaration("kcat.out", partitions: Topics.orders.partitions)], servers: servers,
            logger: logger)

        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        var random = SplitMix(seed: 2026)
        for index in 0..<skus {
            try await producer.send(
                ProducerRecord(topic: prefix + "catalog.v1", key: "SKU-\(index)", value: Data(Self.catalog(index).utf8))
            )
        }
        try await producer.send(
            ProducerRecord(
                topic: prefix + "fx-rates.v1", key: "MXN@2026-Q4",
                value: Data(#"{"currency":"MXN","date":"2026-10-01","usdPerUnit":"0.0540","kind":"quarterly"}"#.utf8)))
        var lineCount = 0
        for index in 0..<records {
            let lines = 1 + Int(random.next() % 4)
            lineCount += lines
            try await producer.send(
                ProducerRecord(
                    topic: prefix + "orders.v1", key: "ORD-\(index)",
                    value: Data(Self.order(index, lines: lines, skus: skus, random: &random).utf8)))
        }
        try await producer.flush(timeout: .seconds(120))
        print(
            "enricher: \(records) orders (\(lineCount) lines) over \(skus) SKUs on \(prefix)orders.v1 (\(Topics.orders.partitions) partitions)"
        )

        let kcatRate =
            Double(records)
            / (try kcatPipe(
                kcat: kcat, servers: bootstrapServers, input: prefix + "orders.v1", output: prefix + "kcat.out"))
        print(String(format: "kcat pipe:      %8.0f records/s (best of 3 runs)", kcatRate))

        let stateDirectory = NSTemporaryDirectory() + "clearway-bench-enricher-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        var latencies: [Double] = []
        let measured = try await measureWorker(
            executable: enricher,
            environment: [
                "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
                "CLEARWAY_STATE_DIR": stateDirectory, "CLEARWAY_CONSIGNEE_SECRET": Self.secret,
                "CLEARWAY_INSTANCE_ID": "bench",
            ], group: prefix + EnricherHandler.name,
            partitions: (0..<Topics.orders.partitions).map {
                TopicPartition(topic: prefix + "orders.v1", partition: $0)
            }, records: records, servers: servers, logger: logger
        ) {
            latencies = try await measureRedrives(prefix: prefix, producer: producer, servers: servers, logger: logger)
        }
        await producer.shutdown()
        print(resultLine("enricher", measured, kcatRate: kcatRate))
        let redrive = median(latencies)
        print(
            String(
                format:
                    "re-drive:       median %.0f ms, worst %.0f ms over %d parked orders (catalog record → enriched)",
                redrive * 1000, (latencies.max() ?? 0) * 1000, latencies.count))
        let results: [String: Double] = [
            "records": Double(records), "lines": Double(lineCount), "kcat_pipe_per_s": kcatRate,
            "enricher_per_s": measured.rate, "enricher_ratio": measured.rate / kcatRate,
            "enricher_peak_rss_bytes": Double(measured.peakRSS),
            "enricher_cpu_us_per_record": microseconds(measured.cpuPerRecord),
            "redrive_median_s": redrive, "redrive_max_s": latencies.max() ?? 0,
        ]
        try options.write(results)
    }

    /// Per sample: an order for an unknown SKU (parked: its exception is awaited), then the SKU's
    /// catalog record; the time from that record's acknowledgement to the enriched order.
    private func measureRedrives(prefix: String, producer: KafkaProducer, servers: [String], logger: Logger)
        async throws -> [Double]
    {
        var configuration = KafkaConsumerConfiguration(
            groupID: "bench-watch-\(UUID().uuidString)", bootstrapServers: servers)
        configuration.isolationLevel = .readCommitted
        let watcher = try KafkaConsumer(configuration: configuration, logger: logger)
        var offsets: [TopicPartitionOffset] = []
        for topic in ["orders.enriched.v1", "orders.exceptions.v1"] {
            offsets += (0..<Topics.orders.partitions).map {
                TopicPartitionOffset(topic: prefix + topic, partition: $0, offset: TopicPartitionOffset.end)
            }
        }
        try watcher.assign(offsets)
        let arrivals = Arrivals()
        let reader = Task {
            for try await event in watcher.events {
                guard case .record(let record) = event,
                    let object = try? JSONSerialization.jsonObject(with: record.value) as? [String: Any],
                    let orderID = object["orderId"] as? String
                else { continue }
                let kind = record.topic.hasSuffix("exceptions.v1") ? "parked" : "enriched"
                arrivals.seen.withLock { $0["\(kind)/\(orderID)"] = .now }
            }
        }
        defer { reader.cancel() }
        func arrival(_ key: String) async throws -> ContinuousClock.Instant {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if let at = arrivals.seen.withLock({ $0[key] }) { return at }
                try await Task.sleep(for: .milliseconds(2))
            }
            throw ValidationError("no \(key) within 30 s")
        }
        try await Task.sleep(for: .seconds(1))  // the watcher's assignment settles
        var latencies: [Double] = []
        var random = SplitMix(seed: 7)
        for sample in 0..<redrives {
            let sku = "LATE-\(sample)"
            let orderID = "REDRIVE-\(sample)"
            var order = Self.order(sample, lines: 1, skus: skus, random: &random)
            order = order.replacingOccurrences(of: "ORD-\(sample)", with: orderID)
            order = order.replacingOccurrences(
                of: #""sku":"SKU-[0-9]+""#, with: #""sku":"\#(sku)""#, options: .regularExpression)
            try await producer.sendAndWait(
                ProducerRecord(topic: prefix + "orders.v1", key: orderID, value: Data(order.utf8)))
            _ = try await arrival("parked/\(orderID)")
            var catalog = Self.catalog(sample)
            catalog = catalog.replacingOccurrences(of: "\"SKU-\(sample)\"", with: "\"\(sku)\"")
            try await producer.sendAndWait(
                ProducerRecord(topic: prefix + "catalog.v1", key: sku, value: Data(catalog.utf8)))
            let published = ContinuousClock.now
            latencies.append(seconds(try await arrival("enriched/\(orderID)") - published))
        }
        try? await watcher.close()
        return latencies
    }

    static func catalog(_ index: Int) -> String {
        let hts = ["6109.10.0012", "6110.20.2079", "6204.62.4011", "4202.92.3031", "9503.00.0073"][index % 5]
        return #"{"sku":"SKU-\#(index)","hts":"\#(hts)","originCountry":"MX","description":"Item \#(index)","#
            + #""manufacturer":{"name":"Confecciones \#(index % 50) del Norte","street":"Blvd Agua Caliente \#(1000 + index)","#
            + #""city":"Tijuana","country":"MX"}}"#
    }

    static func order(_ index: Int, lines: Int, skus: Int, random: inout SplitMix) -> String {
        let items = (0..<lines).map { _ in
            #"{"sku":"SKU-\#(random.next() % UInt64(skus))","quantity":\#(1 + random.next() % 3),"unitPrice":"\#(100 + random.next() % 4000).50"}"#
        }
        let consignee = random.next() % 50_000
        return #"{"orderId":"ORD-\#(index)","type":"placed","version":1,"currency":"MXN","shipDate":"2026-11-20","#
            + #""warehouse":"TIJ1","carrier":"estafeta","consignee":{"name":"Customer \#(consignee)","#
            + #""line1":"\#(100 + consignee % 900) Main Street","city":"San Diego","region":"CA","postalCode":"92101","#
            + #""country":"US"},"lines":[\#(items.joined(separator: ","))],"erp":{"system":"netsuite","recordId":"SO\#(index)"}}"#
    }
}

/// When each order's output was seen, by `parked/<id>` or `enriched/<id>`.
final class Arrivals: Sendable {
    let seen = Mutex<[String: ContinuousClock.Instant]>([:])
}
