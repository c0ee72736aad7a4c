import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// What a worker executable's `main` calls: JSON logs, Prometheus metrics, the runtime and the
/// HTTP endpoint in one `ServiceGroup` that stops gracefully on SIGTERM / SIGINT.
public enum WorkerMain {
    /// Runs a worker until it is told to stop. Exits the process with 1 and a message on a
    /// configuration or start-up error.
    public static func run(
        _ definition: WorkerDefinition, defaultHTTPPort: Int,
        environment processEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        arguments: [String] = Array(CommandLine.arguments.dropFirst())
    ) async {
        await run(
            name: definition.name, defaultHTTPPort: defaultHTTPPort, environment: processEnvironment,
            arguments: arguments
        ) { _ in definition }
    }

    /// Runs a worker whose definition depends on its configuration (files, secrets): `define`
    /// gets the environment with the command-line flags applied; its errors end the process with
    /// 1 and the message, like any configuration error.
    public static func run(
        name: String, defaultHTTPPort: Int,
        environment processEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        define: ([String: String]) async throws -> WorkerDefinition
    ) async {
        let environment: [String: String]
        do {
            environment = try WorkerOptions.parse(arguments).overlay(on: processEnvironment)
        } catch {
            WorkerOptions.exit(withError: error)
        }
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel =
                environment["CLEARWAY_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
            return handler
        }
        let logger = Logger(label: "clearway.\(name)")
        do {
            let definition = try await define(environment)
            let configuration = try WorkerConfiguration.fromEnvironment(
                worker: definition.name, httpPort: defaultHTTPPort, environment: environment)
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let health = RuntimeHealth()
            let bound = configuration.shutdownTimeout
            let runtime = WorkerRuntime(
                definition: definition, configuration: configuration, health: health, logger: logger
            ) { doing in
                // The bound is a promise to the orchestrator: past it the process ends anyway. What
                // was not committed is handled again by the partitions' next owner (exactly-once:
                // the open transaction is aborted; at-least-once: the records come again).
                let message =
                    "the graceful stop did not end within CLEARWAY_SHUTDOWN_TIMEOUT_MS (\(bound)) while \(doing); "
                    + "exiting with 1. Uncommitted work is redone by the partitions' next owner; check that the "
                    + "brokers answer"
                logger.critical("\(message)")
                FileHandle.standardError.write(Data("\(name): \(message)\n".utf8))
                _exit(1)
            }
            // The group stops its services last to first: the runtime, listed last, starts its stop
            // (and its bound) at the signal, and `/healthz` answers while it stops.
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
            if configuration.httpPort > 0 {
                services.append(
                    .init(
                        service: ObservabilityServer(
                            port: configuration.httpPort, registry: registry, health: health, logger: logger)))
            }
            services.append(.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup))
            var groupConfiguration = ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            // A backstop after the runtime's own bound, which ends the process with the step it was
            // held up in: cancelled at the same moment, the loop would fail with a less useful error.
            groupConfiguration.maximumGracefulShutdownDuration = bound + .seconds(5)
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            logger.critical("worker failed", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            exit(1)
        }
    }
}

/// One JSON object per line on standard error: `time`, `level`, `logger`, `message` and metadata.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: String] = [
            "time": CloudEvents.timestamp(Date()), "level": "\(event.level)", "logger": label,
            "message": "\(event.message)",
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            object[key] = "\(value)"
        }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }
}
