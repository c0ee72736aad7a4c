import ClearwayKafka
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// What `/healthz` and `/readyz` report, updated by the runtime.
public final class RuntimeHealth: Sendable {
    private struct State {
        var lastPollTurn = ContinuousClock.now
        var assignment: Set<TopicPartition> = []
        var restoring = false
        var lag: Int64 = 0
        var stopped = false
    }
    private let state = Mutex(State())
    /// The poll loop must have turned within this for `/healthz`. Default: 30 s.
    public let livenessWindow: Duration
    /// The total consumer lag at or under which the worker counts as caught up. Default: 1,000.
    public let readyLag: Int64

    /// Makes a health record.
    public init(livenessWindow: Duration = .seconds(30), readyLag: Int64 = 1000) {
        self.livenessWindow = livenessWindow
        self.readyLag = readyLag
    }

    func pollTurned() { state.withLock { $0.lastPollTurn = .now } }
    func assigned(_ partitions: [TopicPartition]) { state.withLock { $0.assignment.formUnion(partitions) } }
    func revoked(_ partitions: [TopicPartition]) { state.withLock { $0.assignment.subtract(partitions) } }
    func restoring(_ value: Bool) { state.withLock { $0.restoring = value } }
    /// Takes the consumer lag librdkafka reports and keeps that of the partitions assigned now:
    /// its statistics go on listing a partition revoked by a rebalance, at the lag it had then,
    /// which would keep a worker "not ready" for good. Returns the lag kept.
    @discardableResult
    func lag(_ byPartition: [TopicPartition: Int64]) -> [TopicPartition: Int64] {
        state.withLock { state in
            let current = byPartition.filter { state.assignment.contains($0.key) }
            state.lag = current.values.reduce(0, +)
            return current
        }
    }
    func stopped() { state.withLock { $0.stopped = true } }

    /// The poll loop turned recently.
    public var isLive: Bool { state.withLock { !$0.stopped && ContinuousClock.now - $0.lastPollTurn < livenessWindow } }

    /// Assigned, restored and caught up; with the reason when not.
    public var readiness: (ready: Bool, reason: String) {
        state.withLock { state in
            if state.stopped { return (false, "stopped") }
            if state.assignment.isEmpty { return (false, "no partitions assigned") }
            if state.restoring { return (false, "restoring state") }
            if state.lag > readyLag { return (false, "lag \(state.lag) > \(readyLag)") }
            return (true, "assigned \(state.assignment.count) partition(s), lag \(state.lag)")
        }
    }
}

/// The runtime's metrics, through the swift-metrics API (the executable picks the backend).
struct RuntimeMetrics: Sendable {
    let recordsIn: Metrics.Counter
    let recordsOut: Metrics.Counter
    let deadLettered: Metrics.Counter
    let retries: Metrics.Counter
    let rebalances: Metrics.Counter
    let transactionsAborted: Metrics.Counter
    let handlerDuration: Metrics.Timer
    let commitDuration: Metrics.Timer
    let endToEndLag: Metrics.Recorder
    /// Seconds the loop waited for its next records: its share of the time (`rate()`) says
    /// whether a worker waits on its inputs or is busy, as Kafka Streams' `poll-ratio` does.
    let pollWait: Metrics.FloatingPointCounter
    let worker: String

    init(worker: String) {
        self.worker = worker
        let labels = [("worker", worker)]
        recordsIn = Metrics.Counter(label: "clearway_records_in_total", dimensions: labels)
        recordsOut = Metrics.Counter(label: "clearway_records_out_total", dimensions: labels)
        deadLettered = Metrics.Counter(label: "clearway_dlq_records_total", dimensions: labels)
        retries = Metrics.Counter(label: "clearway_retries_total", dimensions: labels)
        rebalances = Metrics.Counter(label: "clearway_rebalances_total", dimensions: labels)
        transactionsAborted = Metrics.Counter(label: "clearway_transactions_aborted_total", dimensions: labels)
        handlerDuration = Metrics.Timer(
            label: "clearway_handler_duration_seconds", dimensions: labels, preferredDisplayUnit: .seconds)
        commitDuration = Metrics.Timer(
            label: "clearway_commit_duration_seconds", dimensions: labels, preferredDisplayUnit: .seconds)
        endToEndLag = Metrics.Recorder(label: "clearway_end_to_end_lag_seconds", dimensions: labels, aggregate: false)
        pollWait = Metrics.FloatingPointCounter(label: "clearway_poll_wait_seconds_total", dimensions: labels)
    }

    func handled(since start: ContinuousClock.Instant) {
        handlerDuration.record(since: start)
    }

    func polled(since start: ContinuousClock.Instant) {
        pollWait.increment(by: (ContinuousClock.now - start) / .seconds(1))
    }

    func committed(since start: ContinuousClock.Instant) {
        commitDuration.record(since: start)
    }

    func consumerLag(_ partition: TopicPartition, _ value: Int64) {
        Metrics.Gauge(
            label: "clearway_consumer_lag",
            dimensions: [("worker", worker), ("topic", partition.topic), ("partition", String(partition.partition))]
        ).record(value)
    }
}

extension Metrics.Timer {
    fileprivate func record(since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Serves `/metrics` (Prometheus text), `/healthz` and `/readyz` on a port.
public struct ObservabilityServer: Service {
    let application: Application<RouterResponder<BasicRequestContext>>

    /// Makes the server.
    public init(port: Int, registry: PrometheusCollectorRegistry, health: RuntimeHealth, logger: Logger) {
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        router.get("healthz") { _, _ -> Response in
            let live = health.isLive
            return Response(
                status: live ? .ok : .serviceUnavailable,
                body: .init(byteBuffer: ByteBuffer(string: live ? "ok\n" : "poll loop stalled\n")))
        }
        router.get("readyz") { _, _ -> Response in
            let (ready, reason) = health.readiness
            return Response(
                status: ready ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: reason + "\n")))
        }
        application = Application(
            router: router, configuration: .init(address: .hostname("0.0.0.0", port: port)), logger: logger)
    }

    public func run() async throws { try await application.run() }
}
