import ArgumentParser
import ClearwayContract
import ClearwayKafka
import Foundation

/// The fleet at a steady rate for a long while, with its resident memory and lag sampled: a
/// leak or a backlog that builds shows as a slope.
struct Soak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak", abstract: "The fleet at a steady order rate; resident memory and lag over time.")

    @OptionGroup var fleet: FleetOptions
    @Option(help: "Minutes of steady input.")
    var minutes = 30.0
    @Option(help: "Seconds between samples.")
    var every = 10.0

    /// One sample: seconds into the run, total resident memory (MiB), and lag (records) per worker.
    struct Sample: Codable, Sendable {
        var at: Double
        var residentMiB: [String: Double]
        var lag: [String: Int64]
    }

    struct Report: Codable, Sendable {
        var minutes: Double
        var orders: Int
        var samples: [Sample]
        /// Least-squares slopes over the second half (after warm-up), per minute.
        var residentSlopeMiBPerMinute: [String: Double]
        var lagSlopePerMinute: [String: Double]
        var verdict: Verdict
    }

    func run() async throws {
        let run = try await ChaosFleet.start(fleet)
        defer { run.stopAll() }
        let rate = Double(run.orderCount) / (minutes * 60)
        say(
            "\(run.orderCount) orders over \(minutes) min (\(String(format: "%.1f", rate))/s), \(run.instances.count) processes"
        )
        let publishing = Task { try await run.publishOrders(over: .seconds(minutes * 60)) }
        let progress = try await GroupProgress(fleet: run)
        let clock = ContinuousClock()
        let start = clock.now
        var samples: [Sample] = []
        while clock.now - start < .seconds(minutes * 60) {
            try await Task.sleep(for: .seconds(every))
            run.noteUnexpectedExits(except: [])
            let memory = run.residentMemory()
            let byWorker = Dictionary(
                grouping: memory, by: { String($0.key.split(separator: "-").dropLast().joined(separator: "-")) }
            )
            .mapValues { $0.map(\.value).max() ?? 0 }
            let sample = Sample(at: seconds(clock.now - start), residentMiB: byWorker, lag: await progress.lag())
            samples.append(sample)
            if samples.count % 6 == 0 {
                say(
                    "\(Int(sample.at)) s: RSS (largest instance) "
                        + sample.residentMiB.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }
                        .joined(separator: ", ") + "; lag "
                        + sample.lag.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                        .joined(separator: ", "))
            }
        }
        try await publishing.value
        await progress.close()
        let verdict = try await Verdict.collect(run, settle: .seconds(fleet.settle))
        let half = samples.suffix(samples.count / 2)
        let workers = Set(samples.flatMap(\.residentMiB.keys))
        let report = Report(
            minutes: minutes, orders: run.orderCount, samples: samples,
            residentSlopeMiBPerMinute: Dictionary(
                uniqueKeysWithValues: workers.map { worker in
                    (worker, slope(half.map { ($0.at / 60, $0.residentMiB[worker] ?? 0) }))
                }),
            lagSlopePerMinute: Dictionary(
                uniqueKeysWithValues: workers.map { worker in
                    (worker, slope(half.map { ($0.at / 60, Double($0.lag[worker] ?? 0)) }))
                }),
            verdict: verdict)
        show("")
        show("Soak: \(minutes) min, \(run.orderCount) orders; lost \(verdict.lost), doubled \(verdict.doubled)")
        show("worker             RSS first→last (MiB)   slope 2nd half   lag max   lag slope 2nd half")
        for worker in workers.sorted() {
            let first = samples.first?.residentMiB[worker] ?? 0
            let last = samples.last?.residentMiB[worker] ?? 0
            let lagMax = samples.map { $0.lag[worker] ?? 0 }.max() ?? 0
            show(
                worker.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + String(format: " %6.1f → %6.1f", first, last)
                    + String(format: "        %+6.2f/min", report.residentSlopeMiBPerMinute[worker] ?? 0)
                    + String(format: "   %7lld", lagMax)
                    + String(format: "   %+8.1f/min", report.lagSlopePerMinute[worker] ?? 0))
        }
        for check in verdict.checks where check.failures > 0 {
            show(
                "  \(check.counts == .known ? "KNOWN" : "FAIL") \(check.name): \(check.failures), e.g. \(check.examples)"
            )
        }
        if let output = fleet.output {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: output))
        }
        guard verdict.checks.allSatisfy({ $0.failures == 0 }), run.exitsUnexpected().isEmpty else { throw ExitCode(1) }
    }
}

/// The least-squares slope of y over x.
func slope(_ points: [(Double, Double)]) -> Double {
    guard points.count >= 2 else { return 0 }
    let n = Double(points.count)
    let meanX = points.map(\.0).reduce(0, +) / n
    let meanY = points.map(\.1).reduce(0, +) / n
    let covariance = points.map { ($0.0 - meanX) * ($0.1 - meanY) }.reduce(0, +)
    let variance = points.map { ($0.0 - meanX) * ($0.0 - meanX) }.reduce(0, +)
    return variance == 0 ? 0 : covariance / variance
}

extension GroupProgress {
    /// Records waiting per worker: high watermark minus committed offset, over its partitions.
    func lag() async -> [String: Int64] {
        var lag: [String: Int64] = [:]
        for (worker, consumer) in consumers {
            guard let partitions = partitions[worker],
                let committed = try? await consumer.committed(partitions, timeout: .seconds(5))
            else { continue }
            var total: Int64 = 0
            for offset in committed {
                guard let high = try? await consumer.watermarks(offset.topicPartition, timeout: .seconds(5)).high
                else { continue }
                total += max(0, high - max(offset.offset, 0))
            }
            lag[worker.rawValue] = total
        }
        return lag
    }
}
