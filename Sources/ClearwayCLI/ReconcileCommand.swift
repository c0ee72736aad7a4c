import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayERP
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import Foundation

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Every decided order's chain to its ERP record, and the gaps; exit status 1 when there are gaps.",
        discussion: """
            Reads the deployment's topics (read_committed, from the beginning): the decisions, the \
            entry results and the write-backs; then reads each order's ERP record back through its \
            adapter (CLEARWAY_ERP_*, as the erp-writeback uses them). Per order: decided, filed, \
            entry accepted, written back, and whether the ERP holds the entry results' values. Gaps: \
            no-entry (released, no entry result and no refusal to file), not-written-back, \
            writeback-failed, erp-differs, erp-unreadable, no-erp-record. --from / --to limit it to \
            decision days (YYYY-MM-DD). --format csv or json writes every order's chain (to --output, \
            or standard output).
            Example: clearway reconcile --from 2026-11-26 --to 2026-11-29 --format csv --output recon.csv
            """)
    @Option(help: "The deployment's topic prefix (default CLEARWAY_TOPIC_PREFIX).") var prefix: String?
    @Option(help: "The first decision day, YYYY-MM-DD.") var from: String?
    @Option(help: "The last decision day, YYYY-MM-DD.") var to: String?
    @Option(help: "table, csv or json.") var format = "table"
    @Option(help: "Write the csv or json here instead of standard output.") var output: String?
    @Option(help: "Wait up to this many seconds for every entry result to be written back, showing progress.")
    var wait: Int?

    func validate() throws {
        guard ["table", "csv", "json"].contains(format) else {
            throw ValidationError("--format must be table, csv or json, not \(format)")
        }
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, (try? Day(value)) == nil { throw ValidationError("\(name) \(value) is not a YYYY-MM-DD day") }
        }
    }

    func run() async throws {
        var configuration = try cliConfiguration()
        if let prefix { configuration.topicPrefix = prefix }
        let directory: ERPDirectory
        do {
            directory = try ERPDirectory(
                environment: ProcessInfo.processInfo.environment, logger: quietLogger("clearway.reconcile.erp"))
        } catch {
            print("the ERP adapters cannot be set up: \(error)")
            throw ExitCode(2)
        }
        do {
            try await reconcile(configuration: configuration, directory: directory)
            try? await directory.shutdown()
        } catch {
            try? await directory.shutdown()
            throw error
        }
    }

    private func reconcile(configuration: WorkerConfiguration, directory: ERPDirectory) async throws {
        var tally = FleetTally(prefix: configuration.topicPrefix)
        let reader = try await TopicReader(
            bootstrapServers: configuration.bootstrapServers, topics: tally.topics,
            properties: configuration.kafkaProperties, logger: quietLogger("clearway.reconcile"))
        let clock = ContinuousClock()
        let start = clock.now
        var lastNew = clock.now
        var (lastLine, lastPrinted) = ("", clock.now)
        while true {
            let records = try await reader.read(for: .seconds(1))
            if !records.isEmpty { lastNew = clock.now }
            for record in records { tally.add(record) }
            let quiet = clock.now - lastNew >= .seconds(2)
            guard let wait else {
                if quiet { break }
                continue
            }
            let progress = tally.writebackProgress
            let line = "\(progress.written) written back, \(progress.pending) pending, \(progress.failed) failed"
            // A line when the counts move, and every 10 s while they do not.
            if line != lastLine || clock.now - lastPrinted >= .seconds(10) {
                print("[reconcile] \(Int(seconds(clock.now - start)))s  \(line)")
                (lastLine, lastPrinted) = (line, clock.now)
            }
            if quiet && progress.pending == 0 && tally.unfiled == 0 { break }
            if clock.now - start > .seconds(wait) { break }
        }
        await reader.close()
        let days: ClosedRange<String>? =
            from == nil && to == nil ? nil : (from ?? "0000-00-00")...(to ?? "9999-99-99")
        let reconciliation = await Reconciliation.make(tally, days: days) { erp, orderId in
            guard let adapter = directory.adapter(for: erp.system) else {
                return .failed(
                    "no adapter for erp.system '\(erp.system)': set CLEARWAY_ERP_<SYSTEM>_ADAPTER (docs/erp.md)")
            }
            // An ERP that fails now and then (a 429, a 503) is read again, up to 12 times, backing
            // off: under the storm test's 35 % faults, six tries left one order in 300 unread.
            var failure = ""
            for attempt in 1...12 {
                do {
                    return .values(try await adapter.read(erp, orderId: orderId))
                } catch let error as ERPError {
                    if case .cannotReadBack = error { return .notReadable }
                    failure = "\(error)"
                } catch {
                    failure = "\(error)"
                }
                try? await Task.sleep(for: .milliseconds(200 * attempt))
            }
            return .failed(failure)
        }
        switch format {
        case "csv": try write(reconciliation.csv)
        case "json":
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try write(String(decoding: try encoder.encode(reconciliation.rows), as: UTF8.self) + "\n")
        default: break
        }
        if format == "table" || output != nil {
            print(
                "reconciliation of \(configuration.topicPrefix)*"
                    + (days.map { " (\($0.lowerBound)…\($0.upperBound))" } ?? ""))
            print(reconciliation.text)
        }
        if !reconciliation.gaps.isEmpty { throw ExitCode(1) }
    }

    private func write(_ text: String) throws {
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output))
        } else {
            print(text, terminator: "")
        }
    }
}
