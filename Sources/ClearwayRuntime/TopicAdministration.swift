import ClearwayKafka
import Logging

/// Creates or checks declared topics through the admin API.
public struct TopicAdministration: Sendable {
    let configuration: WorkerConfiguration
    let logger: Logger

    /// What applying a declaration found.
    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        case created
        case exists
        /// It exists with another partition count (not changed: that would move keys).
        case partitionMismatch(declared: Int32, actual: Int32)

        public var description: String {
            switch self {
            case .created: "created"
            case .exists: "exists"
            case .partitionMismatch(let declared, let actual):
                "exists with \(actual) partitions, declared \(declared) (left as it is)"
            }
        }
    }

    /// Makes the administration for a deployment.
    public init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    private func admin() throws -> KafkaAdminClient {
        try KafkaAdminClient(
            configuration: ClientSettings(configuration: configuration, worker: nil).admin(), logger: logger)
    }

    /// Creates the missing topics and checks the rest; idempotent.
    public func apply(_ topics: [TopicDeclaration]) async throws -> [(name: String, outcome: Outcome)] {
        let admin = try admin()
        let existing = Dictionary(
            try await admin.listTopics().map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var results: [(String, Outcome)] = []
        var missing: [TopicDeclaration] = []
        for topic in unique(topics) {
            let name = configuration.topicName(topic.name)
            if let found = existing[name] {
                let actual = Int32(found.partitions.count)
                results.append(
                    (
                        name,
                        actual == topic.partitions
                            ? .exists : .partitionMismatch(declared: topic.partitions, actual: actual)
                    ))
            } else {
                missing.append(topic)
            }
        }
        if !missing.isEmpty {
            let created = try await admin.createTopics(
                missing.map {
                    TopicSpecification(
                        name: configuration.topicName($0.name), partitions: $0.partitions,
                        replicationFactor: $0.replicationFactor, configs: $0.configs)
                })
            for topic in missing {
                let name = configuration.topicName(topic.name)
                results.append((name, created[name] == .alreadyExists ? .exists : .created))
            }
        }
        return results.sorted { $0.0 < $1.0 }
    }

    /// Throws, naming the missing topics and the command that creates them, unless all exist.
    public func requireTopics(_ topics: [TopicDeclaration]) async throws {
        let names = Set(try await admin().listTopics().map(\.name))
        let missing = unique(topics).map { configuration.topicName($0.name) }.filter { !names.contains($0) }
        guard missing.isEmpty else {
            throw ConfigurationError(
                "topics missing on \(configuration.bootstrapServers.joined(separator: ",")): \(missing.joined(separator: ", ")); create them with `clearway topics apply` (same CLEARWAY_BOOTSTRAP_SERVERS and CLEARWAY_TOPIC_PREFIX)"
            )
        }
    }

    private func unique(_ topics: [TopicDeclaration]) -> [TopicDeclaration] {
        var seen = Set<String>()
        return topics.filter { seen.insert($0.name).inserted }
    }
}
