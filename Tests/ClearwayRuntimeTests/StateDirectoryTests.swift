import Foundation
import Testing

@testable import ClearwayRuntime

/// The state directory holds consignee names and addresses: only the worker's user may open it.
struct StateDirectoryTests {
    private func permissions(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func aNewStateDirectoryIsOwnerOnly() throws {
        let root = NSTemporaryDirectory() + "clearway-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try PartitionStore(directory: root + "/enricher", name: "partition-0")
        #expect(try permissions(root + "/enricher") == 0o700)
        _ = try ReferenceTable(name: "catalog", directory: root + "/enricher/tables")
        #expect(try permissions(root + "/enricher/tables") == 0o700)
    }

    @Test func anExistingWiderStateDirectoryIsTightened() throws {
        let root = NSTemporaryDirectory() + "clearway-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(
            atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try StateDirectory.create(root)
        #expect(try permissions(root) == 0o700)
    }
}

/// What the worker logs of its librdkafka properties.
struct KafkaSecretsTests {
    @Test func propertiesFromFilesAndSecretNamesAreMaskedInLogs() throws {
        let path = NSTemporaryDirectory() + "clearway-secret-\(UUID().uuidString)"
        try Data("from-a-file\n".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try WorkerConfiguration.fromEnvironment(
            worker: "test", httpPort: 0,
            environment: [
                "CLEARWAY_KAFKA_SASL_USERNAME_FILE": path, "CLEARWAY_KAFKA_SASL_PASSWORD": "given-plainly",
                "CLEARWAY_KAFKA_SASL_OAUTHBEARER_CONFIG": "principal=x", "CLEARWAY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            ])
        #expect(configuration.kafkaProperties["sasl.username"] == "from-a-file")
        let redacted = configuration.redactedKafkaProperties
        #expect(redacted["sasl.username"] == "••••")
        #expect(redacted["sasl.password"] == "••••")
        #expect(redacted["sasl.oauthbearer.config"] == "••••")
        #expect(redacted["security.protocol"] == "SASL_SSL")
    }
}
