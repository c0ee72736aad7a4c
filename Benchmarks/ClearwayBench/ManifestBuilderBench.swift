import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayWorkers
import Foundation
import Logging

/// The manifest-builder (its own process, transactions on) on releases re-keyed by conveyance
/// against the kcat pass-through pipe in the same run: records/s, peak RSS, CPU per record.
struct ManifestBuilderBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest-builder",
        abstract: "The manifest-builder vs a kcat consume→produce pipe; records/s, peak RSS, CPU per record.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Releases per run.") var records = 200_000
    @Option(help: "The manifest-builder executable.") var builder: String

    func run() async throws {
        let (bootstrapServers, kcat, servers, logger) = (
            options.bootstrapServers, options.kcat, options.servers, benchLogger()
        )
        let input = Topics.releasedByConveyance
        let prefix = try await createBenchTopics(
            for: try ManifestBuilderHandler.definition(environment: [:]),
            extra: [TopicDeclaration("kcat.out", partitions: input.partitions)], servers: servers, logger: logger)
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        // Arrival days ahead, so manifests close on size (250 entries), as a busy border's do.
        let today = Day(Date(), in: TimeZone(identifier: "America/Los_Angeles")!)
        var random = SplitMix(seed: 321)
        for index in 0..<records {
            let consignee = String(format: "%032x", random.next() % 50_000)
            let day = today.adding(days: 2 + Int(random.next() % 3)).description
            let carrier = ["dhl", "ups", "fedex", "estafeta"][Int(random.next() % 4)]
            let conveyance = Conveyance(carrier: carrier, trip: "TIJ1", port: "2506", arrivalDay: day)
            let value = "\(20 + random.next() % 300).00"
            try await producer.send(
                ProducerRecord(
                    topic: prefix + input.name, key: conveyance.id,
                    value: Data(
                        Self.release(index, consignee: consignee, value: value, conveyance: conveyance).utf8)))
        }
        try await producer.flush(timeout: .seconds(120))
        await producer.shutdown()
        print("manifest-builder: \(records) releases for 50,000 consignees on 12 conveyances")
        let kcatRate =
            Double(records)
            / (try kcatPipe(
                kcat: kcat, servers: bootstrapServers, input: prefix + input.name, output: prefix + "kcat.out"))
        print(String(format: "kcat pipe:      %8.0f records/s (best of 3 runs)", kcatRate))
        let stateDirectory = NSTemporaryDirectory() + "clearway-bench-manifests-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let measured = try await measureWorker(
            executable: builder,
            environment: [
                "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
                "CLEARWAY_STATE_DIR": stateDirectory, "CLEARWAY_INSTANCE_ID": "bench",
            ], group: prefix + ManifestBuilderHandler.name,
            partitions: (0..<input.partitions).map { TopicPartition(topic: prefix + input.name, partition: $0) },
            records: records, servers: servers, logger: logger)
        print(resultLine("manifest-builder", measured, kcatRate: kcatRate))
        try options.write([
            "records": Double(records), "kcat_pipe_per_s": kcatRate, "manifest_builder_per_s": measured.rate,
            "manifest_builder_ratio": measured.rate / kcatRate,
            "manifest_builder_peak_rss_bytes": Double(measured.peakRSS),
            "manifest_builder_cpu_us_per_record": microseconds(measured.cpuPerRecord),
        ])
    }

    /// A `released.by-conveyance.v1` release of a one-line T11 shipment, every element present.
    static func release(_ index: Int, consignee: String, value: String, conveyance: Conveyance) -> String {
        let day = conveyance.arrivalDay
        let shipment =
            #"{"orderId":"S\#(index)","shipmentId":"S\#(index)","type":"placed","version":1,"#
            + #""consigneeKey":"\#(consignee)","addressKey":"\#(consignee)","#
            + #""consignee":{"name":"Customer","line1":"1 Main St","city":"San Diego","region":"CA","postalCode":"92101","country":"US"},"#
            + #""shipDate":"\#(day)","arrivalDay":"\#(day)","warehouse":"TIJ1","carrier":"\#(conveyance.carrier)","#
            + #""portOfEntry":{"code":"2506","name":"Otay Mesa, CA","timeZone":"America/Los_Angeles"},"#
            + #""currency":"USD","orderValue":"\#(value)","valueUSD":"\#(value)","#
            + #""lines":[{"lineNumber":1,"sku":"TEE","quantity":1,"unitPrice":"\#(value)","valueUSD":"\#(value)","hts":"6109.10.0012","originCountry":"MX","description":"Men's cotton T-shirt","mid":"MXCONDEL4558TIJ","midSource":"built"}],"#
            + #""reasons":[{"rule":"value.fair-retail","text":"bench"}],"allowedLanes":["T11","T01"],"screening":[],"#
            + #""policy":{"id":"bench","version":"bench","regime":"noDeMinimis"},"references":"bench"}"#
        return
            #"{"conveyance":{"carrier":"\#(conveyance.carrier)","trip":"\#(conveyance.trip)","port":"\#(conveyance.port)","arrivalDay":"\#(day)"},"#
            + #""orderId":"S\#(index)","shipmentId":"S\#(index)","version":1,"consigneeKey":"\#(consignee)","#
            + #""withdrawn":false,"entryType":"T11","valueUSD":"\#(value)","policyVersion":"bench","shipment":\#(shipment)}"#
    }
}
