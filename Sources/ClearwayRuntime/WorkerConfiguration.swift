import ClearwayKafka
import Foundation

/// How a worker's outputs and input offsets are committed.
public enum DeliveryMode: String, Sendable, CaseIterable {
    /// Outputs and input offsets commit atomically in one Kafka transaction (default).
    case exactlyOnce = "exactly-once"
    /// Offsets are committed only after every output derived from them is acknowledged; a crash
    /// can repeat outputs (consumers drop them by `ce_id`).
    case atLeastOnce = "at-least-once"
}

/// Retry of transient failures: exponential backoff with jitter.
public struct RetryPolicy: Sendable, Hashable {
    /// The first backoff. Default: 200 ms.
    public var initialBackoff: Duration = .milliseconds(200)
    /// The longest backoff. Default: 30 s.
    public var maximumBackoff: Duration = .seconds(30)
    /// Attempts before the record goes to the DLQ as `retries-exhausted`. Default: 8.
    public var maximumAttempts = 8
    /// The backoff varies by up to this fraction either way. Default: 0.2.
    public var jitter = 0.2

    public init() {}

    /// The wait before attempt `attempt` (2 for the first retry).
    public func backoff(beforeAttempt attempt: Int) -> Duration {
        let base = initialBackoff * Int(pow(2, Double(max(0, attempt - 2))).rounded())
        let capped = min(base, maximumBackoff)
        let factor = 1 + Double.random(in: -jitter...jitter)
        return capped * factor
    }
}

/// A worker's settings, with documented defaults. Executables fill it from the `CLEARWAY_*`
/// environment (`fromEnvironment`) and their flags.
public struct WorkerConfiguration: Sendable {
    /// `CLEARWAY_BOOTSTRAP_SERVERS`. Default: `127.0.0.1:9092`.
    public var bootstrapServers: [String] = ["127.0.0.1:9092"]
    /// `CLEARWAY_TOPIC_PREFIX`. Default: `clearway.`.
    public var topicPrefix = "clearway."
    /// `CLEARWAY_STATE_DIR`. Default: `./state/<worker>`.
    public var stateDirectory: String
    /// `CLEARWAY_HTTP_PORT` for `/metrics`, `/healthz`, `/readyz`; 0 turns the endpoint off.
    public var httpPort: Int
    /// `CLEARWAY_INSTANCE_ID`: this instance's stable name (transactional id, static membership).
    /// Default: host name and process id.
    public var instanceID: String
    /// `CLEARWAY_STATIC_MEMBERSHIP=true`: join as `group.instance.id = <worker>-<instanceID>`, so a
    /// restart within the session timeout does not rebalance. Default: off.
    public var staticMembership = false
    /// `CLEARWAY_DELIVERY`: `exactly-once` (default) or `at-least-once`.
    public var delivery: DeliveryMode = .exactlyOnce
    /// `CLEARWAY_COMMIT_INTERVAL_MS`: the longest a transaction (or an offset commit) waits. Default: 100 ms.
    public var commitInterval: Duration = .milliseconds(100)
    /// `CLEARWAY_MAX_BATCH`: the most input records per transaction. Default: 10,000, so under
    /// load a transaction ends on time (`commitInterval`), as Kafka Streams' do under exactly-once
    /// (`commit.interval.ms` = 100); the cap bounds the work redone after a crash.
    public var maximumBatch = 10_000
    /// `CLEARWAY_SHUTDOWN_TIMEOUT_MS`: the bound on a graceful stop. Default: 10 s.
    public var shutdownTimeout: Duration = .seconds(10)
    /// `CLEARWAY_SESSION_TIMEOUT_MS`. Default: 45 s.
    public var sessionTimeout: Duration = .seconds(45)
    /// Transient-failure retries.
    public var retry = RetryPolicy()
    /// How a worker with an outbox sends it (`CLEARWAY_OUTBOX_*`).
    public var outbox = OutboxPolicy()
    /// `CLEARWAY_KAFKA_<PROPERTY>` (and `CLEARWAY_KAFKA_<PROPERTY>_FILE` for secrets read from a
    /// file): any librdkafka property, e.g. SASL and SSL settings.
    public var kafkaProperties: [String: String] = [:]
    /// The names of the `kafkaProperties` read from files (`CLEARWAY_KAFKA_<PROPERTY>_FILE`):
    /// secrets whatever their name, so logs mask them.
    public var kafkaPropertiesFromFiles: Set<String> = []

    /// Defaults for a worker.
    public init(worker: String, httpPort: Int) {
        stateDirectory = "./state/\(worker)"
        self.httpPort = httpPort
        instanceID = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Reads the `CLEARWAY_*` variables over the defaults; a bad value is an error naming the
    /// variable.
    public static func fromEnvironment(
        worker: String, httpPort: Int, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> WorkerConfiguration {
        var configuration = WorkerConfiguration(worker: worker, httpPort: httpPort)
        func integer(_ name: String) throws -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text), value >= 0 else {
                throw ConfigurationError("\(name)=\(text) is not a whole number ≥ 0")
            }
            return value
        }
        if let servers = environment["CLEARWAY_BOOTSTRAP_SERVERS"] {
            configuration.bootstrapServers = servers.split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }.filter { !$0.isEmpty }
            guard !configuration.bootstrapServers.isEmpty else {
                throw ConfigurationError("CLEARWAY_BOOTSTRAP_SERVERS is empty; give host:port[,host:port…]")
            }
        }
        if let prefix = environment["CLEARWAY_TOPIC_PREFIX"] { configuration.topicPrefix = prefix }
        if let directory = environment["CLEARWAY_STATE_DIR"] { configuration.stateDirectory = directory }
        if let port = try integer("CLEARWAY_HTTP_PORT") { configuration.httpPort = port }
        if let id = environment["CLEARWAY_INSTANCE_ID"], !id.isEmpty { configuration.instanceID = id }
        if let flag = environment["CLEARWAY_STATIC_MEMBERSHIP"] {
            guard let value = Bool(flag.lowercased()) else {
                throw ConfigurationError("CLEARWAY_STATIC_MEMBERSHIP=\(flag) must be true or false")
            }
            configuration.staticMembership = value
        }
        if let mode = environment["CLEARWAY_DELIVERY"] {
            guard let value = DeliveryMode(rawValue: mode) else {
                throw ConfigurationError("CLEARWAY_DELIVERY=\(mode) must be exactly-once or at-least-once")
            }
            configuration.delivery = value
        }
        if let ms = try integer("CLEARWAY_COMMIT_INTERVAL_MS") { configuration.commitInterval = .milliseconds(ms) }
        if let count = try integer("CLEARWAY_MAX_BATCH") { configuration.maximumBatch = max(1, count) }
        if let ms = try integer("CLEARWAY_SHUTDOWN_TIMEOUT_MS") { configuration.shutdownTimeout = .milliseconds(ms) }
        if let ms = try integer("CLEARWAY_SESSION_TIMEOUT_MS") { configuration.sessionTimeout = .milliseconds(ms) }
        if let count = try integer("CLEARWAY_OUTBOX_LIMIT") { configuration.outbox.limit = max(1, count) }
        if let count = try integer("CLEARWAY_OUTBOX_MAX_ATTEMPTS") {
            configuration.outbox.maximumAttempts = max(1, count)
        }
        if let count = try integer("CLEARWAY_OUTBOX_CIRCUIT_FAILURES") {
            configuration.outbox.circuitFailures = max(1, count)
        }
        if let ms = try integer("CLEARWAY_OUTBOX_BACKOFF_MS") {
            configuration.outbox.initialBackoff = .milliseconds(ms)
        }
        (configuration.kafkaProperties, configuration.kafkaPropertiesFromFiles) = try kafkaPropertiesWithSecrets(
            environment)
        return configuration
    }

    /// `CLEARWAY_KAFKA_*` properties, and the names of those read from a file (a variable whose
    /// name ends in `_FILE` names the file that holds the value).
    static func kafkaPropertiesWithSecrets(_ environment: [String: String]) throws -> (
        properties: [String: String], fromFiles: Set<String>
    ) {
        var plain: [String: String] = [:]
        var files: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("CLEARWAY_KAFKA_") {
            if name.hasSuffix("_FILE") { files[String(name.dropLast(5))] = value } else { plain[name] = value }
        }
        var properties = ClearwayKafka.kafkaProperties(fromEnvironment: plain)
        var fromFiles = Set<String>()
        for (name, path) in files {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("\(name)_FILE=\(path): the file cannot be read")
            }
            let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            let property = ClearwayKafka.kafkaProperties(fromEnvironment: [name: value])
            properties.merge(property) { _, fromFile in fromFile }
            fromFiles.formUnion(property.keys)
        }
        return (properties, fromFiles)
    }

    /// The librdkafka properties with secret values masked, for logs: those read from files, and
    /// those whose names say they are secret (`sasl.password`, `ssl.key.password`,
    /// `sasl.oauthbearer.client.secret`, `sasl.oauthbearer.config`, `sasl.jaas.config`, …).
    public var redactedKafkaProperties: [String: String] {
        kafkaProperties.reduce(into: [:]) { result, entry in
            let secret =
                kafkaPropertiesFromFiles.contains(entry.key)
                || ["password", "secret", "key", "token", "jaas", "oauthbearer.config"].contains {
                    entry.key.contains($0)
                }
            result[entry.key] = secret ? "••••" : entry.value
        }
    }

    /// A worker's consumer group: `<prefix><worker>`, so deployments with their own topic prefix
    /// on one cluster never share a group (or, with `transactionalID`, fence each other).
    public func groupID(worker: String) -> String { topicPrefix + worker }

    /// A worker instance's transactional id: `<prefix><worker>-<instanceID>`.
    public func transactionalID(worker: String) -> String { "\(topicPrefix)\(worker)-\(instanceID)" }

    /// The full topic name of a declared topic.
    public func topicName(_ logical: String) -> String { topicPrefix + logical }
}

/// A configuration value that cannot be used; the message names the variable.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
