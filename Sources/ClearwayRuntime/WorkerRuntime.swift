import ClearwayKafka
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Runs one worker: consume its inputs, hand each record to its handler, publish the outputs —
/// with exactly-once effect by default (outputs and input offsets in one Kafka transaction), dead
/// letters for records that can never be processed, retries without blocking the poll loop, and
/// a graceful stop on SIGTERM.
public final class WorkerRuntime: Service {
    let definition: WorkerDefinition
    let configuration: WorkerConfiguration
    let logger: Logger
    let health: RuntimeHealth
    let metrics: RuntimeMetrics
    let stopOverrun: (@Sendable (_ doing: String) -> Void)?

    /// Makes the runtime; nothing connects until `run()`. `stopOverrun` is called, with what the
    /// stop was doing, when a graceful stop has not ended `configuration.shutdownTimeout` after it
    /// began (a broker that stopped answering holds a commit or the group leave);
    /// `WorkerMain` ends the process there.
    public init(
        definition: WorkerDefinition, configuration: WorkerConfiguration, health: RuntimeHealth = RuntimeHealth(),
        logger: Logger, stopOverrun: (@Sendable (_ doing: String) -> Void)? = nil
    ) {
        self.definition = definition
        self.stopOverrun = stopOverrun
        self.configuration = configuration
        self.health = health
        self.logger = logger
        self.metrics = RuntimeMetrics(worker: definition.name)
    }

    /// Consumes until a graceful shutdown (or cancellation), then commits, leaves the group and
    /// returns.
    public func run() async throws {
        try await TopicAdministration(configuration: configuration, logger: logger).requireTopics(
            definition.declaredTopics)
        let loop = try ProcessingLoop(runtime: self)
        let overrun = StopWatchdog()
        defer { overrun.disarm() }
        // A stop asked for while starting (reference tables loading, `initTransactions`) waits for
        // the start and then ends the loop at once; the bound runs from the signal either way.
        try await withGracefulShutdownHandler {
            try await loop.start()
            try await loop.run()
        } onGracefulShutdown: { [stopOverrun, configuration] in
            loop.requestStop()
            if let stopOverrun {
                overrun.arm(after: configuration.shutdownTimeout) { stopOverrun("\(loop.stopPhase)") }
            }
        }
        health.stopped()
    }
}

/// Calls a function once a time has passed, unless disarmed first.
final class StopWatchdog: Sendable {
    private let disarmed = AtomicFlag()

    func arm(after delay: Duration, _ body: @escaping @Sendable () -> Void) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(delay / .milliseconds(1)))) {
            [disarmed] in
            if !disarmed.isSet { body() }
        }
    }

    func disarm() { disarmed.set() }
}

/// A flag one task sets and another reads.
final class AtomicFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
