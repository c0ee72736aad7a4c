import ClearwayKafka
import ClearwayTestSupport
import Foundation
import Testing

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct AdminTests {
    @Test func topicsAreCreatedOnceAndDescribed() async throws {
        let admin = try Broker.admin()
        let plain = Broker.uniqueTopic("admin")
        let compacted = Broker.uniqueTopic("admin-compacted")
        let created = try await admin.createTopics([
            TopicSpecification(name: plain, partitions: 3),
            TopicSpecification(name: compacted, partitions: 2, configs: ["cleanup.policy": "compact"]),
        ])
        #expect(created == [plain: .created, compacted: .created])

        let again = try await admin.createTopics([TopicSpecification(name: plain, partitions: 3)])
        #expect(again == [plain: .alreadyExists])

        let description = try #require(try await admin.describeTopic(plain))
        #expect(description.partitions.map(\.id) == [0, 1, 2])
        #expect(description.partitions.allSatisfy { $0.leader >= 0 })
        #expect(try await admin.listTopics().contains { $0.name == compacted })
        #expect(try await admin.describeTopic(Broker.uniqueTopic("missing")) == nil)

        let configs = try await admin.describeConfigs(topic: compacted)
        #expect(configs["cleanup.policy"] == "compact")
    }
}

/// Failures that need no broker: a bad configuration and an unreachable one.
struct ClientErrorTests {
    @Test func badConfigurationValueIsRefusedWithTheProperty() throws {
        var configuration = KafkaProducerConfiguration()
        configuration.properties["acks"] = "sometimes"
        #expect {
            _ = try KafkaProducer(configuration: configuration, logger: Broker.logger)
        } throws: { error in
            let error = error as! KafkaError
            return error.code == .configuration && error.message.contains("acks") && error.message.contains("sometimes")
        }

        var consumerConfiguration = KafkaConsumerConfiguration(groupID: "g")
        consumerConfiguration.properties["no.such.property"] = "1"
        #expect {
            _ = try KafkaConsumer(configuration: consumerConfiguration, logger: Broker.logger)
        } throws: { error in
            (error as? KafkaError)?.message.contains("no.such.property") == true
        }
    }

    @Test func unreachableBrokerFailsWithinItsBoundAndNamesTheAddress() async throws {
        let address = "127.0.0.1:\(try closedPort())"
        var configuration = KafkaAdminConfiguration(bootstrapServers: [address])
        configuration.requestTimeout = .seconds(2)
        let admin = try KafkaAdminClient(configuration: configuration, logger: Broker.logger)
        let clock = ContinuousClock()
        let start = clock.now
        await #expect {
            _ = try await admin.listTopics()
        } throws: { error in
            let error = error as! KafkaError
            return error.isRetriable && error.message.contains(address)
        }
        #expect(clock.now - start < .seconds(5))

        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: [address])
        producerConfiguration.messageTimeout = .seconds(2)
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: Broker.logger)
        let sendStart = clock.now
        await #expect {
            try await producer.sendAndWait(ProducerRecord(topic: "nowhere", key: nil, value: Data("x".utf8)))
        } throws: { error in
            (error as? KafkaError)?.resultName == "_MSG_TIMED_OUT"
        }
        #expect(clock.now - sendStart < .seconds(5))
        await producer.shutdown(timeout: .milliseconds(100))
    }

    @Test func environmentVariablesBecomeLibrdkafkaProperties() {
        let properties = kafkaProperties(fromEnvironment: [
            "CLEARWAY_KAFKA_SASL_MECHANISM": "PLAIN",
            "CLEARWAY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CLEARWAY_TOPIC_PREFIX": "x.",
        ])
        #expect(properties == ["sasl.mechanism": "PLAIN", "security.protocol": "SASL_SSL"])
    }
}

/// A loopback port nothing listens on.
func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))  // bound, never listening, closed on return
}
