import ArgumentParser
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import Foundation
import Logging

/// The Kafka side of the CLI: `CLEARWAY_BOOTSTRAP_SERVERS`, `CLEARWAY_TOPIC_PREFIX` and any
/// `CLEARWAY_KAFKA_*` property, as the workers read them.
func cliConfiguration() throws -> WorkerConfiguration {
    try WorkerConfiguration.fromEnvironment(worker: "clearway-cli", httpPort: 0)
}

/// The CLI's logger: errors only, unless `CLEARWAY_LOG_LEVEL` asks for more (as for a worker).
func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel =
        ProcessInfo.processInfo.environment["CLEARWAY_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .error
    return logger
}

struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate realistic sample data: a catalog, FX rates and orders (seeded, repeatable).",
        discussion: """
            227 SKUs (Mexican T-shirts, Chinese electronics, FDA-flagged coffee and cosmetics, toys, \
            Section 232 metals, Scotch, and SKUs with gaps), the MXN and CAD rates, and orders for \
            --consignees buyers over --days ship days: repeat same-day buyers, households at one \
            address, spelling variants, updates, cancellations, duplicates and a few broken records.
            --out DIR writes catalog.v1.jsonl, fx-rates.v1.jsonl and orders.v1.jsonl, one record per \
            line as KEY<TAB>VALUE (kcat -P -K '\\t' loads them). --publish sends them to the topics \
            of CLEARWAY_TOPIC_PREFIX (or of each --prefix) on CLEARWAY_BOOTSTRAP_SERVERS.
            Example: clearway sample --out sample/ --consignees 1000 --days 4
            """)

    @Option(help: "The seed: the same seed gives the same records.") var seed: UInt64 = 2026
    @Option(help: "How many buyers.") var consignees = 1_000
    @Option(help: "How many ship days.") var days = 4
    @Option(help: "The last ship day, YYYY-MM-DD (default: yesterday, UTC).") var lastDay: String?
    @Option(help: "Write the records as files into this directory.") var out: String?
    @Flag(help: "Publish the records to the topics.") var publish = false
    @Option(help: "Publish to the topics of this prefix (repeatable; default CLEARWAY_TOPIC_PREFIX).")
    var prefix: [String] = []

    func validate() throws {
        guard out != nil || publish else {
            throw ValidationError("say where the sample goes: --out DIR, --publish, or both")
        }
        guard consignees >= 1, days >= 1 else { throw ValidationError("--consignees and --days must be 1 or more") }
    }

    func run() async throws {
        let last: Day
        do {
            last = try lastDay.map(Day.init) ?? Day(Date(), in: TimeZone(identifier: "UTC")!).adding(days: -1)
        } catch let error as DomainError {
            throw ValidationError("--last-day: \(error.message)")
        }
        let sample = SampleGenerator(seed: seed, consignees: consignees, days: days, lastDay: last).generate()
        print(
            "sample (seed \(seed)): \(sample.catalog.count) SKUs, \(sample.fxRates.count) FX rates, "
                + "\(sample.orders.count) order records (\(sample.orderKeys.count) orders) shipped \(sample.days.first!)…\(sample.days.last!)"
        )
        if let out {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for (topic, records) in [
                ("catalog.v1", sample.catalog), ("fx-rates.v1", sample.fxRates), ("orders.v1", sample.orders),
            ] {
                let path = URL(fileURLWithPath: out).appendingPathComponent("\(topic).jsonl")
                let text = records.map { "\($0.key)\t\($0.value)\n" }.joined()
                try Data(text.utf8).write(to: path)
                print("  wrote \(path.path) (\(records.count) records)")
            }
        }
        if publish {
            var configuration = try cliConfiguration()
            for prefix in prefix.isEmpty ? [configuration.topicPrefix] : prefix {
                configuration.topicPrefix = prefix
                try await Self.publish(sample, configuration: configuration)
            }
        }
    }

    /// Reference data first (so the enricher has it when the orders come), then the orders.
    static func publish(_ sample: Sample, configuration: WorkerConfiguration) async throws {
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: configuration.bootstrapServers)
        producerConfiguration.properties.merge(configuration.kafkaProperties) { _, given in given }
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: quietLogger("clearway.sample"))
        for batch in [sample.catalog + sample.fxRates, sample.orders] {
            for record in batch {
                try await producer.send(
                    ProducerRecord(
                        topic: configuration.topicName(record.topic), key: Data(record.key.utf8),
                        value: Data(record.value.utf8)))
            }
            try await producer.flush(timeout: .seconds(60))
        }
        await producer.shutdown()
        print("  published \(sample.records.count) records to \(configuration.topicPrefix)*")
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "What the fleet made of its orders, read from the topics; deployments side by side.",
        discussion: """
            Reads orders.v1 and every outcome topic of each --prefix (read_committed, from the \
            beginning) and prints, per deployment: orders per entry type, held and released, \
            entries of several shipments, cancellations, exceptions by reason, dead letters and alerts. With \
            --wait it first shows progress until every order has an outcome and the topics are quiet.
            Example: clearway report --prefix demo.current. --prefix demo.whatif. --wait 120
            """)

    @Option(help: "A deployment's topic prefix (repeatable; default CLEARWAY_TOPIC_PREFIX).") var prefix: [String] = []
    @Option(help: "A column title per --prefix, in the same order.") var title: [String] = []
    @Option(help: "Wait up to this many seconds for every order to have an outcome, showing progress.")
    var wait: Int?
    @Option(help: "With --wait: seconds without a new record that count as done.") var quiet = 3
    @Flag(help: "With --wait: also wait until every released shipment has an entry result or a refusal to file.")
    var waitForFiling = false

    func validate() throws {
        if !title.isEmpty, title.count != max(1, prefix.count) {
            throw ValidationError("give one --title per --prefix")
        }
    }

    func run() async throws {
        let configuration = try cliConfiguration()
        let prefixes = prefix.isEmpty ? [configuration.topicPrefix] : prefix
        var tallies = prefixes.map { FleetTally(prefix: $0) }
        // With --wait, also each structuring watch's input: its alerts come a stage after the
        // decisions, so the report waits for every watch that runs to have read all of it.
        let watchInputs = wait == nil ? [] : Set(tallies.map(\.structuringWatch.input))
        let reader = try await TopicReader(
            bootstrapServers: configuration.bootstrapServers, topics: tallies.flatMap(\.topics) + watchInputs.sorted(),
            properties: configuration.kafkaProperties, logger: quietLogger("clearway.report"))
        // Which tally each topic belongs to.
        let route = Dictionary(
            tallies.indices.flatMap { index in tallies[index].topics.map { ($0, index) } },
            uniquingKeysWith: { a, _ in a })
        var watchEnds: [TopicPartition: Int64] = [:]
        func take(_ records: [ConsumerRecord]) {
            for record in records {
                if let index = route[record.topic] { tallies[index].add(record) }
                if watchInputs.contains(record.topic) {
                    let partition = TopicPartition(topic: record.topic, partition: record.partition)
                    watchEnds[partition] = max(watchEnds[partition] ?? 0, record.nextOffset.offset)
                }
            }
        }
        let watches =
            wait == nil
            ? []
            : try tallies.map { tally in
                try GroupProbe(
                    group: tally.structuringWatch.group, bootstrapServers: configuration.bootstrapServers,
                    properties: configuration.kafkaProperties, logger: quietLogger("clearway.report"))
            }
        /// The prefixes whose structuring watch has committed (it runs) but not yet past every
        /// release it was given. A watch whose offsets cannot be read is not waited for.
        func watchesBehind() async -> [String] {
            var behind: [String] = []
            for (tally, watch) in zip(tallies, watches) {
                let ends = watchEnds.filter { $0.key.topic == tally.structuringWatch.input }
                if (try? await watch.hasCaughtUp(to: ends)) == false { behind.append(tally.prefix) }
            }
            return behind
        }
        var behind: [String] = []
        let clock = ContinuousClock()
        let start = clock.now
        var lastNew = clock.now
        let limit = Duration.seconds(wait ?? 0)
        repeat {
            let records = try await reader.read(for: .milliseconds(wait == nil ? 1_500 : 1_000))
            if !records.isEmpty { lastNew = clock.now }
            take(records)
            if wait != nil {
                let progress = tallies.map { tally in
                    let filing =
                        waitForFiling
                        ? ", \(tally.releasedShipments.count - tally.unfiled)/\(tally.releasedShipments.count) released filed"
                        : ""
                    return
                        "\(tally.prefix) \(tally.orderKeys.count - tally.undecided)/\(tally.orderKeys.count) orders decided\(filing)"
                }
                print("[report] \(Int(seconds(clock.now - start)))s  " + progress.joined(separator: "  "))
            }
            let settled = tallies.allSatisfy {
                $0.orderKeys.count > 0 && $0.undecided == 0 && (!waitForFiling || $0.unfiled == 0)
            }
            if settled, clock.now - lastNew >= .seconds(quiet) {
                behind = await watchesBehind()
                if behind.isEmpty { break }
                print("[report] waiting for the structuring watch of \(behind.joined(separator: ", "))")
            }
            if wait == nil, records.isEmpty { break }
        } while clock.now - start < limit || wait == nil
        await reader.close()
        for watch in watches { await watch.close() }
        print("")
        print(FleetSummary(tallies: tallies, titles: title.isEmpty ? prefixes : title).text)
        let undecided = tallies.map(\.undecided).reduce(0, +)
        if wait != nil, undecided > 0 {
            print("\(undecided) orders had no outcome within \(wait!) s: is every worker running? (see its log)")
            throw ExitCode(1)
        }
        let unfiled = tallies.map(\.unfiled).reduce(0, +)
        if wait != nil, waitForFiling, unfiled > 0 {
            print(
                "\(unfiled) released shipments had no entry result within \(wait!) s: are the manifest-builder and the filer-sim running, and do their manifests close (CLEARWAY_MANIFEST_CLOSE_AFTER)?"
            )
            throw ExitCode(1)
        }
        if !behind.isEmpty {
            print(
                "the structuring watch of \(behind.joined(separator: ", ")) had not read every release within "
                    + "\(wait ?? 0) s, so its alerts may be incomplete: is it running? (see its log)")
            throw ExitCode(1)
        }
    }
}

func seconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) + Double(attoseconds) / 1e18
}
