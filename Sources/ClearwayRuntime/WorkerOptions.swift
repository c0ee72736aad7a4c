import ArgumentParser
import Foundation

/// The flags every worker executable takes; each mirrors a `CLEARWAY_*` variable and wins over it.
public struct WorkerOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap list (CLEARWAY_BOOTSTRAP_SERVERS; default 127.0.0.1:9092).")
    var bootstrapServers: String?
    @Option(help: "Prefix of every topic name (CLEARWAY_TOPIC_PREFIX; default clearway.).")
    var topicPrefix: String?
    @Option(help: "Where stateful workers keep SQLite (CLEARWAY_STATE_DIR; default ./state/<worker>).")
    var stateDir: String?
    @Option(help: "Port of /metrics, /healthz, /readyz; 0 turns it off (CLEARWAY_HTTP_PORT).")
    var httpPort: Int?
    @Option(help: "This instance's stable name (CLEARWAY_INSTANCE_ID; default host-pid).")
    var instanceID: String?
    @Option(help: "Join with a static group.instance.id: true or false (CLEARWAY_STATIC_MEMBERSHIP).")
    var staticMembership: String?
    @Option(help: "exactly-once or at-least-once (CLEARWAY_DELIVERY; default exactly-once).")
    var delivery: String?
    @Option(help: "Longest wait before a commit, ms (CLEARWAY_COMMIT_INTERVAL_MS; default 100).")
    var commitIntervalMs: Int?
    @Option(help: "Most input records per transaction (CLEARWAY_MAX_BATCH; default 10000).")
    var maxBatch: Int?
    @Option(help: "Bound on a graceful stop, ms (CLEARWAY_SHUTDOWN_TIMEOUT_MS; default 10000).")
    var shutdownTimeoutMs: Int?
    @Option(help: "Consumer session timeout, ms (CLEARWAY_SESSION_TIMEOUT_MS; default 45000).")
    var sessionTimeoutMs: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (CLEARWAY_LOG_LEVEL).")
    var logLevel: String?
    @Option(
        name: .customLong("kafka"),
        help:
            "A librdkafka property, name=value; repeatable (CLEARWAY_KAFKA_<NAME>). Secrets: use CLEARWAY_KAFKA_<NAME>_FILE."
    )
    var kafka: [String] = []

    public init() {}

    /// The environment with these flags laid over it.
    public func overlay(on environment: [String: String]) throws -> [String: String] {
        var result = environment
        let pairs: [(String, String?)] = [
            ("CLEARWAY_BOOTSTRAP_SERVERS", bootstrapServers), ("CLEARWAY_TOPIC_PREFIX", topicPrefix),
            ("CLEARWAY_STATE_DIR", stateDir), ("CLEARWAY_HTTP_PORT", httpPort.map(String.init)),
            ("CLEARWAY_INSTANCE_ID", instanceID), ("CLEARWAY_STATIC_MEMBERSHIP", staticMembership),
            ("CLEARWAY_DELIVERY", delivery), ("CLEARWAY_COMMIT_INTERVAL_MS", commitIntervalMs.map(String.init)),
            ("CLEARWAY_MAX_BATCH", maxBatch.map(String.init)),
            ("CLEARWAY_SHUTDOWN_TIMEOUT_MS", shutdownTimeoutMs.map(String.init)),
            ("CLEARWAY_SESSION_TIMEOUT_MS", sessionTimeoutMs.map(String.init)), ("CLEARWAY_LOG_LEVEL", logLevel),
        ]
        for (name, value) in pairs { if let value { result[name] = value } }
        for property in kafka {
            let parts = property.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                // Not echoed: it may be a secret typed without its name.
                throw ConfigurationError(
                    "a --kafka value is not name=value: write it as, e.g., --kafka sasl.mechanism=PLAIN (secrets: CLEARWAY_KAFKA_<NAME>_FILE)"
                )
            }
            result["CLEARWAY_KAFKA_" + parts[0].uppercased().replacingOccurrences(of: ".", with: "_")] = parts[1]
        }
        return result
    }
}
