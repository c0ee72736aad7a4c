import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import Foundation
import Logging

/// `scripts/chaos` and `scripts/soak`: the whole fleet, every worker as two exactly-once
/// processes, under faults or at a steady rate, checked from its topics and its ERPs at the end.
@main
struct Chaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clearway-chaos",
        abstract: "The whole fleet under faults (run) or at a steady rate (soak), checked from its topics.",
        subcommands: [ChaosRun.self, Soak.self], defaultSubcommand: ChaosRun.self)
}

/// What both runs need: where the broker is, the proxy in front of it, the binaries and the data.
struct FleetOptions: ParsableArguments {
    @Option(help: "The broker's own listener (host:port); it must advertise 127.0.0.1:<proxy-port>.")
    var broker: String
    @Option(help: "The port of the fault proxy every client goes through (the broker advertises it).")
    var proxyPort: Int
    @Option(help: "The proxy (scripts/chaos-proxy).")
    var proxy = "scripts/chaos-proxy"
    @Option(help: "Where worker logs, state and the report go.")
    var work = ".chaos"
    @Option(help: "Seed of the order stream and of the fault schedule.")
    var seed: UInt64 = 2026
    @Option(help: "Buyers in the order stream (about 1.9 orders each over four days).")
    var consignees = 1_000
    @Option(help: "Ship days the orders cover.")
    var days = 4
    @Option(help: "Instances of each worker.")
    var instances = 2
    @Option(help: "Seconds to wait, after the last order and fault, for every order's outcome.")
    var settle = 600
    @Option(help: "Write the report as JSON to this file too.")
    var output: String?
}

struct ChaosRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Faults on a fleet working through a seeded order stream; lost and doubled.")

    @OptionGroup var fleet: FleetOptions
    @Option(
        help: "Faults to inject (kill -9, SIGTERM, SIGSTOP past the session timeout, dropped and stalled connections).")
    var faults = 50
    @Option(help: "Seconds between faults, on average.")
    var interval = 4.0
    @Option(help: "scripts/broker, to restart the broker mid-run (with --broker-restarts).")
    var brokerControl: String?
    @Option(help: "Times to kill -9 and restart the broker mid-run (needs a durable broker).")
    var brokerRestarts = 0
    @Option(
        help: "The kinds of fault to draw from, comma-separated (kill,terminate,stop,drop,stall); all by default.",
        transform: FaultKind.set)
    var kinds: Set<FaultKind>?

    func run() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let run = try await ChaosFleet.start(fleet)
        defer { run.stopAll() }
        let plan = FaultPlan(
            seed: fleet.seed, faults: faults, interval: interval,
            brokerRestarts: brokerControl == nil ? 0 : brokerRestarts,
            kinds: kinds)
        say(
            "\(run.orderCount) orders over \(fleet.days) days, \(run.instances.count) worker processes; "
                + "\(plan.faults.count) faults over about \(Int(plan.span)) s")
        // The orders go out over the fault schedule, so every fault meets a fleet at work.
        let publishing = Task { try await run.publishOrders(over: .seconds(plan.span)) }
        let injector = FaultInjector(fleet: run, brokerControl: brokerControl, logger: run.logger)
        let injected = try await injector.inject(plan)
        try await publishing.value
        say("faults done (\(injected.count)); waiting for every order's outcome (up to \(fleet.settle) s)")
        let verdict = try await Verdict.collect(run, settle: .seconds(fleet.settle))
        let recoveries = await injector.recoveries()
        let report = ChaosReport(
            verdict: verdict, faults: injected, recoveries: recoveries, seconds: seconds(clock.now - started),
            processes: run.exitsUnexpected())
        show(report.text)
        if let output = fleet.output { try report.json().write(to: URL(fileURLWithPath: output)) }
        guard report.passed else { throw ExitCode(1) }
    }
}

/// Prints a progress line.
func say(_ line: String) {
    show("[chaos] \(line)")
}

/// Writes a line to standard output at once (print's buffer holds it when output is a file).
func show(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
