import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayWorkers
import Foundation
import Logging

/// The pga-router (its own process) on enriched orders of 1–4 lines, against the kcat
/// pass-through pipe on the same records in the same run.
struct PGARouterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pga-router", abstract: "The pga-router vs a kcat consume→produce pipe; records/s and peak RSS.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Orders per run.") var records = 200_000
    @Option(help: "The pga-router executable.") var router: String

    /// Numbers in the shipped HTS excerpt: apparel, cosmetics (FD1), coffee (FD4), phones, toys.
    static let lines: [(hts: String, origin: String)] = [
        ("6109.10.0012", "MX"), ("6109.10.0040", "MX"), ("3304.99.5000", "MX"), ("0901.21.0020", "MX"),
        ("8517.13.0000", "CN"), ("9503.00.0090", "CN"), ("8471.30.0100", "CN"), ("6109.10.0004", "MX"),
    ]

    func run() async throws {
        let (bootstrapServers, kcat, servers, logger) = (
            options.bootstrapServers, options.kcat, options.servers, benchLogger()
        )
        let prefix = try await createBenchTopics(
            for: PGARouterHandler.definition(
                references: try ScreeningReferences(sources: ScreeningSources(), logger: logger)),
            extra: [TopicDeclaration("kcat.out", partitions: Topics.ordersEnriched.partitions)], servers: servers,
            logger: logger)
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        var random = SplitMix(seed: 321)
        for index in 0..<records {
            let key = String(format: "%032x", random.next() % 40_000)
            try await producer.send(
                ProducerRecord(
                    topic: prefix + "orders.enriched.v1", key: key,
                    value: Data(Self.order(index, key: key, random: &random).utf8)))
        }
        try await producer.flush(timeout: .seconds(120))
        await producer.shutdown()
        print("pga-router: \(records) enriched orders on \(prefix)orders.enriched.v1")
        let kcatRate =
            Double(records)
            / (try kcatPipe(
                kcat: kcat, servers: bootstrapServers, input: prefix + "orders.enriched.v1", output: prefix + "kcat.out"
            ))
        print(String(format: "kcat pipe:      %8.0f records/s (best of 3 runs)", kcatRate))
        let measured = try await measureWorker(
            executable: router,
            environment: ["CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix],
            group: prefix + PGARouterHandler.name,
            partitions: (0..<Topics.ordersEnriched.partitions).map {
                TopicPartition(topic: prefix + "orders.enriched.v1", partition: $0)
            }, records: records, servers: servers, logger: logger)
        print(resultLine("pga-router", measured, kcatRate: kcatRate))
        let results: [String: Double] = [
            "records": Double(records), "kcat_pipe_per_s": kcatRate, "pga_router_per_s": measured.rate,
            "pga_router_ratio": measured.rate / kcatRate, "pga_router_peak_rss_bytes": Double(measured.peakRSS),
            "pga_router_cpu_us_per_record": microseconds(measured.cpuPerRecord),
        ]
        try options.write(results)
    }

    static func order(_ index: Int, key: String, random: inout SplitMix) -> String {
        let count = 1 + Int(random.next() % 4)
        let items = (0..<count).map { number in
            let line = lines[Int(random.next() % UInt64(lines.count))]
            return
                #"{"lineNumber":\#(number + 1),"sku":"SKU-\#(random.next() % 2000)","quantity":1,"unitPrice":"25.00","#
                + #""valueUSD":"25.00","hts":"\#(line.hts)","originCountry":"\#(line.origin)","mid":"MXCONDEL4558TIJ","midSource":"built"}"#
        }
        return
            #"{"orderId":"ORD-\#(index)","type":"placed","version":1,"consigneeKey":"\#(key)","addressKey":"\#(key)","#
            + #""consignee":{"name":"Customer","line1":"1 Main St","city":"San Diego","region":"CA","postalCode":"92101","country":"US"},"#
            + #""shipDate":"2025-06-10","arrivalDay":"2025-06-10","warehouse":"TIJ1","#
            + #""portOfEntry":{"code":"2506","name":"Otay Mesa, CA","timeZone":"America/Los_Angeles"},"#
            + #""currency":"USD","orderValue":"\#(count * 25).00","valueUSD":"\#(count * 25).00","#
            + #""lines":[\#(items.joined(separator: ","))],"reasons":[{"rule":"value.fair-retail","text":"bench"}]}"#
    }
}
