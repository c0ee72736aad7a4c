import ArgumentParser
import ClearwayContract
import ClearwayFleet
import ClearwayKafka
import ClearwayTestSupport
import Foundation
import Logging
import Synchronization

/// The kinds of fault a run injects.
enum FaultKind: String, CaseIterable, Codable, Sendable {
    /// `kill -9` of a worker process, restarted a second later.
    case kill
    /// SIGTERM (a clean stop, as a deploy does), restarted once it has exited.
    case terminate
    /// SIGSTOP for longer than the session timeout, then SIGCONT: a paused process (a long GC,
    /// a frozen VM) comes back after the group has moved on without it, a zombie.
    case stop
    /// Every connection between the fleet and the broker closed at once.
    case drop
    /// Every connection held for 3–8 s without moving a byte (a hung broker or network).
    case stall
    /// The broker killed (-9) and started again on its storage.
    case brokerRestart = "broker-restart"

    /// Faults that hit one worker process.
    var hitsAProcess: Bool { [.kill, .terminate, .stop].contains(self) }

    /// The kinds a comma-separated list names (`--kinds kill,drop`), among those a plan draws from.
    static func set(_ list: String) throws -> Set<FaultKind> {
        let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let drawn = FaultPlan.weights.map(\.0)
        let kinds = names.compactMap { name in drawn.first { $0.rawValue == name } }
        guard kinds.count == names.count, !kinds.isEmpty else {
            throw ValidationError(
                "--kinds \(list): name one or more of \(drawn.map(\.rawValue).joined(separator: ", ")), separated by commas"
            )
        }
        return Set(kinds)
    }
}

/// A seeded fault schedule: when each fault comes and what kind it is (its target is drawn when
/// it comes, among the processes not already down).
struct FaultPlan: Sendable {
    var faults: [(at: Double, kind: FaultKind)] = []
    var seed: UInt64

    /// The kinds drawn from, and their weights: process faults are the most telling; connection
    /// faults hit everyone.
    static let weights: [(FaultKind, Int)] = [(.kill, 30), (.terminate, 15), (.stop, 20), (.drop, 20), (.stall, 15)]

    /// `kinds`: those to draw from (all of `weights` when nil). `stop` makes zombies, which only a
    /// broker that fences a stale group generation's `TxnOffsetCommit` (KIP-447) stops from
    /// committing; the test broker does not (docs/testing.md).
    init(seed: UInt64, faults count: Int, interval: Double, brokerRestarts: Int, kinds: Set<FaultKind>? = nil) {
        self.seed = seed
        var random = SplitMix(seed: seed ^ 0xFA17)
        let weighted = Self.weights.filter { kinds?.contains($0.0) ?? true }
        let total = weighted.map(\.1).reduce(0, +)
        var at = 5.0
        for _ in 0..<count {
            at += Double.random(in: interval * 0.5...interval * 1.5, using: &random)
            var pick = Int.random(in: 0..<total, using: &random)
            let kind = weighted.first {
                pick -= $0.1; return pick < 0
            }!.0
            faults.append((at, kind))
        }
        // Broker restarts at even points through the run, in place of the faults there.
        for index in 0..<min(brokerRestarts, count) {
            let position = (index + 1) * count / (brokerRestarts + 1)
            faults[min(position, count - 1)].kind = .brokerRestart
        }
    }

    /// Seconds from the first fault's schedule start to the last fault, plus a little.
    var span: Double { (faults.last?.at ?? 0) + 5 }
}

/// A fault as injected: its kind, what it hit, and when (seconds into the schedule).
struct InjectedFault: Codable, Sendable {
    var kind: FaultKind
    var target: String
    var at: Double
}

/// The fault proxy (`scripts/chaos-proxy`), driven through its standard input.
final class ProxyControl: @unchecked Sendable {
    // @unchecked: the process and pipes are set once; commands are serialized by `lock`.
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lock = NSLock()

    init(script: String, port: Int, upstream: String, log: URL) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, String(port), upstream]
        process.standardInput = input
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        let ready = readLine()
        guard ready.hasPrefix("ok listening") else {
            throw SetupFailure(description: "the fault proxy did not start (\(ready)); see \(log.path)")
        }
    }

    /// Sends one command and returns the proxy's answer.
    @discardableResult
    func send(_ command: String) -> String {
        lock.lock()
        defer { lock.unlock() }
        input.fileHandleForWriting.write(Data((command + "\n").utf8))
        return readLine()
    }

    private func readLine() -> String {
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line += byte
        }
        return String(decoding: line, as: UTF8.self)
    }

    func close() {
        try? input.fileHandleForWriting.close()
        process.terminate()
    }
}

/// How far each worker's consumer group has committed, to time a fault's recovery: from the
/// fault to every partition that had work waiting committing past where it stood.
final class GroupProgress: Sendable {
    let consumers: [WorkerName: KafkaConsumer]
    let partitions: [WorkerName: [TopicPartition]]

    init(fleet: ChaosFleet) async throws {
        var consumers: [WorkerName: KafkaConsumer] = [:]
        var partitions: [WorkerName: [TopicPartition]] = [:]
        for (worker, input) in ChaosFleet.inputs {
            var configuration = KafkaConsumerConfiguration(
                groupID: fleet.prefix + worker.rawValue, bootstrapServers: fleet.servers)
            configuration.isolationLevel = .readCommitted
            let consumer = try KafkaConsumer(configuration: configuration, logger: fleet.logger)
            guard let description = try await consumer.describeTopic(fleet.prefix + input) else {
                throw SetupFailure(description: "topic \(fleet.prefix + input) is missing")
            }
            consumers[worker] = consumer
            partitions[worker] = description.partitions.map {
                TopicPartition(topic: fleet.prefix + input, partition: $0.id)
            }
        }
        self.consumers = consumers
        self.partitions = partitions
    }

    /// The partitions of `workers` with records waiting (beyond a trailing transaction marker),
    /// with the offsets their groups have committed.
    func waiting(_ workers: [WorkerName]) async -> [WorkerName: [TopicPartition: Int64]] {
        await withTaskGroup(of: (WorkerName, [TopicPartition: Int64]).self) { group in
            for worker in workers {
                group.addTask { (worker, await self.waiting(worker)) }
            }
            var waiting: [WorkerName: [TopicPartition: Int64]] = [:]
            for await (worker, offsets) in group where !offsets.isEmpty { waiting[worker] = offsets }
            return waiting
        }
    }

    private func waiting(_ worker: WorkerName) async -> [TopicPartition: Int64] {
        guard let consumer = consumers[worker], let partitions = partitions[worker],
            let committed = try? await consumer.committed(partitions, timeout: .seconds(5))
        else { return [:] }
        var waiting: [TopicPartition: Int64] = [:]
        for offset in committed {
            guard let high = try? await consumer.watermarks(offset.topicPartition, timeout: .seconds(5)).high
            else { continue }
            if high > max(offset.offset, 0) + 1 { waiting[offset.topicPartition] = offset.offset }
        }
        return waiting
    }

    /// Whether every one of these partitions has committed past its offset.
    func moved(_ waiting: [WorkerName: [TopicPartition: Int64]]) async -> Bool {
        for (worker, offsets) in waiting {
            guard let consumer = consumers[worker],
                let committed = try? await consumer.committed(Array(offsets.keys), timeout: .seconds(5))
            else { return false }
            if committed.contains(where: { $0.offset <= offsets[$0.topicPartition] ?? 0 }) { return false }
        }
        return true
    }

    func close() async {
        for consumer in consumers.values { try? await consumer.close() }
    }
}

/// Injects a plan's faults into a fleet, restarts what it stopped, and times each recovery.
final class FaultInjector: Sendable {
    let fleet: ChaosFleet
    let brokerControl: String?
    let logger: Logger
    /// Instances down or paused by a fault now (not to be hit again until back).
    private let down = Mutex<Set<ChaosFleet.Instance>>([])
    private let timings = Mutex<[(kind: FaultKind, seconds: Double?)]>([])
    private let progress = Mutex<GroupProgress?>(nil)
    /// Restarts and SIGCONTs still to come, and recovery timings still running.
    private let comebacks = Mutex<[Task<Void, Never>]>([])
    private let timers = Mutex<[Task<Void, Never>]>([])

    init(fleet: ChaosFleet, brokerControl: String?, logger: Logger) {
        self.fleet = fleet
        self.brokerControl = brokerControl
        self.logger = logger
    }

    func inject(_ plan: FaultPlan) async throws -> [InjectedFault] {
        let progress = try await GroupProgress(fleet: fleet)
        var random = SplitMix(seed: plan.seed ^ 0x7A26E7)
        var injected: [InjectedFault] = []
        let clock = ContinuousClock()
        let start = clock.now
        for (index, planned) in plan.faults.enumerated() {
            try await clock.sleep(until: start + .milliseconds(Int(planned.at * 1000)))
            fleet.noteUnexpectedExits(except: down.withLock { $0 })
            var kind = planned.kind
            let candidates = fleet.instances.filter { !down.withLock { $0 }.contains($0) }
            if kind.hitsAProcess && candidates.isEmpty { kind = .drop }
            let target = kind.hitsAProcess ? candidates.randomElement(using: &random)! : nil
            let affected = target.map { [$0.worker] } ?? ChaosFleet.inputs.map(\.0)
            // What was waiting is read as the fault lands, beside it: reading it first would
            // delay every fault by the round trips.
            let waitingAtFault = Task { await progress.waiting(affected) }
            let faultAt = clock.now
            let what = try await apply(kind, to: target, random: &random)
            injected.append(InjectedFault(kind: kind, target: what, at: seconds(faultAt - start)))
            say(
                "fault \(index + 1)/\(plan.faults.count) at \(Int(seconds(faultAt - start))) s: \(kind.rawValue) \(what)"
            )
            // Recovery: until every partition that had work waiting has committed past it.
            let task = Task {
                let waiting = await waitingAtFault.value
                var recovered: Double?
                if !waiting.isEmpty {
                    while clock.now - faultAt < .seconds(300), !Task.isCancelled {
                        if await progress.moved(waiting) {
                            recovered = seconds(clock.now - faultAt)
                            break
                        }
                        try? await Task.sleep(for: .milliseconds(250))
                    }
                }
                // Still waiting when the run is judged: the partition had nothing real to do (the
                // high watermark counts an aborted transaction's records and markers); left out.
                let measured = Task.isCancelled && recovered == nil ? nil : recovered ?? 300
                self.timings.withLock { $0.append((kind, waiting.isEmpty ? nil : measured)) }
            }
            timers.withLock { $0.append(task) }
        }
        // Every process back before the fleet is judged.
        for task in comebacks.withLock({ $0 }) { await task.value }
        self.progress.withLock { $0 = progress }
        return injected
    }

    /// Applies one fault; returns what it hit.
    private func apply(_ kind: FaultKind, to target: ChaosFleet.Instance?, random: inout SplitMix) async throws
        -> String
    {
        switch kind {
        case .kill, .terminate, .stop:
            guard let target, let process = fleet.process(target) else { return "nothing" }
            down.withLock { _ = $0.insert(target) }
            let pause = Double.random(in: 2...4, using: &random)
            let fleet = self.fleet
            let task = Task {
                switch kind {
                case .kill:
                    process.signal(SIGKILL)
                    _ = await process.waitForExit(limit: .seconds(10))
                    try? await Task.sleep(for: .seconds(1))
                    try? fleet.restart(target)
                case .terminate:
                    process.signal(SIGTERM)
                    if await process.waitForExit(limit: .seconds(30)) == nil {
                        say("\(target.name) did not stop within 30 s of SIGTERM; killing it")
                        process.signal(SIGKILL)
                        _ = await process.waitForExit(limit: .seconds(10))
                    }
                    try? fleet.restart(target)
                default:
                    process.signal(SIGSTOP)
                    try? await Task.sleep(for: ChaosFleet.sessionTimeout + .milliseconds(Int(pause * 1000)))
                    process.signal(SIGCONT)
                }
                self.down.withLock { _ = $0.remove(target) }
            }
            comebacks.withLock { $0.append(task) }
            return target.name
        case .drop:
            return fleet.proxy.send("drop")
        case .stall:
            return fleet.proxy.send("stall \(Int.random(in: 3...8, using: &random))")
        case .brokerRestart:
            guard let brokerControl else { return "no broker control" }
            // system(3) on a thread of its own: Foundation's Process was seen to leave this child
            // unreaped (and so "running") after it had exited.
            let status = await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(returning: system("'\(brokerControl)' restart --kill >/dev/null"))
                }
            }
            return status == 0 ? "restarted" : "restart failed (status \(status))"
        }
    }

    /// The recovery times measured: per fault, seconds from the fault to the partitions that had
    /// work waiting moving again (300: not within 300 s); faults with nothing waiting are left
    /// out. Call once the run is judged: timings still running then are stopped.
    func recoveries() async -> [(kind: FaultKind, seconds: Double)] {
        let running = timers.withLock { $0 }
        for task in running { task.cancel() }
        for task in running { await task.value }
        await progress.withLock({ $0 })?.close()
        return timings.withLock { $0.compactMap { timing in timing.seconds.map { (timing.kind, $0) } } }
    }
}
