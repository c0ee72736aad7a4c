import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayWorkers
import Foundation
import Logging

/// The aggregator (its own process, transactions on) on screened shipments against the kcat
/// pass-through pipe in the same run; then how long a new host takes to restore its state from
/// a changelog of `restoreRows` consignee-day rows.
struct AggregatorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregator",
        abstract: "The aggregator vs a kcat consume→produce pipe; records/s, peak RSS, changelog restore time.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Shipments per run.") var records = 200_000
    @Option(help: "Changelog rows to restore.") var restoreRows = 1_000_000
    @Option(help: "The aggregator executable.") var aggregator: String

    func run() async throws {
        let (bootstrapServers, kcat, servers, logger) = (
            options.bootstrapServers, options.kcat, options.servers, benchLogger()
        )
        let prefix = try await createBenchTopics(
            for: AggregatorHandler.definition(timeline: try .shipped(), ports: try .shipped()),
            extra: [TopicDeclaration("kcat.out", partitions: Topics.ordersScreened.partitions)], servers: servers,
            logger: logger)
        let input = prefix + "orders.screened.v1"
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: logger)
        var random = SplitMix(seed: 86)
        for index in 0..<records {
            let consignee = String(format: "%032x", random.next() % 50_000)
            let value = "\(20 + random.next() % 300).00"
            try await producer.send(
                ProducerRecord(
                    topic: input, key: consignee,
                    value: Data(Self.shipment(index, consignee: consignee, value: value, random: &random).utf8)))
        }
        try await producer.flush(timeout: .seconds(120))
        print("aggregator: \(records) screened shipments for 50,000 consignees on \(input)")
        let kcatRate =
            Double(records)
            / (try kcatPipe(
                kcat: kcat, servers: bootstrapServers, input: input, output: prefix + "kcat.out"))
        print(String(format: "kcat pipe:      %8.0f records/s (best of 3 runs)", kcatRate))
        let stateDirectory = NSTemporaryDirectory() + "clearway-bench-aggregator-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let measured = try await measureWorker(
            executable: aggregator,
            environment: [
                "CLEARWAY_BOOTSTRAP_SERVERS": bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
                "CLEARWAY_STATE_DIR": stateDirectory, "CLEARWAY_INSTANCE_ID": "bench",
            ], group: prefix + AggregatorHandler.name,
            partitions: (0..<Topics.ordersScreened.partitions).map {
                TopicPartition(topic: input, partition: $0)
            },
            records: records, servers: servers, logger: logger)
        print(resultLine("aggregator", measured, kcatRate: kcatRate))

        let restore = try await measureRestore(servers: servers, producer: producer, logger: logger)
        await producer.shutdown()
        print(String(format: "restore:        %d changelog rows in %.1f s on a new host", restoreRows, restore))
        let results: [String: Double] = [
            "records": Double(records), "kcat_pipe_per_s": kcatRate, "aggregator_per_s": measured.rate,
            "aggregator_ratio": measured.rate / kcatRate, "aggregator_peak_rss_bytes": Double(measured.peakRSS),
            "aggregator_cpu_us_per_record": microseconds(measured.cpuPerRecord),
            "restore_rows": Double(restoreRows), "restore_s": restore,
        ]
        try options.write(results)
    }

    /// A fresh deployment whose changelog holds `restoreRows` consignee-day windows (tagged at
    /// offset 0, which the group has committed): the time from an aggregator's start on an empty
    /// state directory to its log line saying every partition is restored.
    private func measureRestore(servers: [String], producer: KafkaProducer, logger: Logger) async throws -> Double {
        let prefix = try await createBenchTopics(
            for: AggregatorHandler.definition(timeline: try .shipped(), ports: try .shipped()), servers: servers,
            logger: logger)
        let partitions = Topics.ordersScreened.partitions
        let headers = [
            KafkaHeader(name: "clearway.input.offset", string: "0"),
            KafkaHeader(name: "clearway.input.from", string: "0"),
            KafkaHeader(name: "clearway.writer", string: "bench"),
        ]
        for row in 0..<restoreRows {
            let consignee = String(format: "%032x", row / 4)
            let day = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"][row % 4]
            let window =
                #"{"consigneeKey":"\#(consignee)","day":"\#(day)","orders":[{"orderId":"O\#(row)","valueUSD":120.5,"entryType":"T11","usesAllowance":false}]}"#
            try await producer.send(
                ProducerRecord(
                    topic: prefix + "aggregator.changelog", partition: Int32(row % Int(partitions)),
                    key: Data("e/window/\(day)/\(consignee)".utf8), value: Data(window.utf8), headers: headers))
        }
        try await producer.flush(timeout: .seconds(300))
        // The group has committed offset 0 everywhere, so a new host restores up to it.
        var group = KafkaConsumerConfiguration(
            groupID: prefix + AggregatorHandler.name, bootstrapServers: servers)
        group.sessionTimeout = .seconds(6)
        let committer = try KafkaConsumer(configuration: group, logger: logger)
        try await committer.commit(
            (0..<partitions).map {
                TopicPartitionOffset(topic: prefix + "orders.screened.v1", partition: $0, offset: 0)
            })
        try await committer.close()

        let stateDirectory = NSTemporaryDirectory() + "clearway-bench-restore-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: aggregator)
        process.environment = ProcessInfo.processInfo.environment.merging([
            "CLEARWAY_BOOTSTRAP_SERVERS": options.bootstrapServers, "CLEARWAY_TOPIC_PREFIX": prefix,
            "CLEARWAY_STATE_DIR": stateDirectory, "CLEARWAY_INSTANCE_ID": "bench", "CLEARWAY_HTTP_PORT": "0",
            "CLEARWAY_SESSION_TIMEOUT_MS": "6000", "CLEARWAY_LOG_LEVEL": "info",
        ]) { _, new in new }
        let logs = Pipe()
        process.standardError = logs
        let started = ContinuousClock.now
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var restored = 0
        var buffer = Data()
        while restored < Int(partitions) {
            let chunk = logs.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw ValidationError("the aggregator exited before restoring") }
            buffer += chunk
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer = Data(buffer[buffer.index(after: newline)...])
                if line.contains("state restored from the changelog") { restored += 1 }
            }
        }
        let elapsed = seconds(ContinuousClock.now - started)
        process.terminate()
        process.waitUntilExit()
        return elapsed
    }

    static func shipment(_ index: Int, consignee: String, value: String, random: inout SplitMix) -> String {
        let day = ["2026-11-20", "2026-11-21", "2026-11-22"][Int(random.next() % 3)]
        return #"{"orderId":"S\#(index)","shipmentId":"S\#(index)","type":"placed","version":1,"#
            + #""consigneeKey":"\#(consignee)","addressKey":"\#(consignee)","#
            + #""consignee":{"name":"Customer","line1":"1 Main St","city":"San Diego","region":"CA","postalCode":"92101","country":"US"},"#
            + #""shipDate":"\#(day)","arrivalDay":"\#(day)","warehouse":"TIJ1","#
            + #""portOfEntry":{"code":"2506","name":"Otay Mesa, CA","timeZone":"America/Los_Angeles"},"#
            + #""currency":"USD","orderValue":"\#(value)","valueUSD":"\#(value)","#
            + #""lines":[{"lineNumber":1,"sku":"TEE","quantity":1,"unitPrice":"\#(value)","valueUSD":"\#(value)","hts":"6109.10.0012","originCountry":"MX","mid":"MXCONDEL4558TIJ","midSource":"built"}],"#
            + #""reasons":[{"rule":"value.fair-retail","text":"bench"}],"allowedLanes":["T11","T01"],"screening":[],"#
            + #""policy":{"id":"bench","version":"bench","regime":"noDeMinimis"},"references":"bench"}"#
    }
}
