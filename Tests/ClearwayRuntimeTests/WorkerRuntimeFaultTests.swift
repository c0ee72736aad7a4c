import ClearwayTestSupport
import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import ClearwayKafka
@testable import ClearwayRuntime

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Broker faults through librdkafka's mock cluster, survived without loss or duplicates.
struct WorkerRuntimeFaultTests {
    /// The deployment's group's committed input offsets, summed over its two partitions.
    private func committedInputs(of deployment: EchoDeployment, servers: [String]) throws -> CommittedOffsets {
        try CommittedOffsets(
            group: deployment.prefix + deployment.name,
            partitions: (0..<2).map { TopicPartition(topic: deployment.input, partition: $0) }, servers: servers)
    }

    /// Runs the echo worker in-process until its 300 inputs have outputs (read_committed), stops
    /// it gracefully, and returns the output values.
    private func echoEveryInput(_ deployment: EchoDeployment, _ configuration: WorkerConfiguration) async throws
        -> [String]
    {
        let (group, task) = runInProcess(EchoHandler.definition(name: deployment.name), configuration)
        let outputs = try await readAll(
            topic: deployment.output, partitions: 2, servers: configuration.bootstrapServers, expectAtLeast: 300)
        await group.triggerGracefulShutdown()
        try await task.value
        return outputs.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// A mock cluster with the echo worker's topics (two partitions, on every broker) and 300
    /// input records.
    private func mockDeployment(brokers: Int) async throws -> (KafkaMockCluster, EchoDeployment) {
        let cluster = try KafkaMockCluster(brokers: brokers, logger: Broker.logger)
        let deployment = EchoDeployment(partitions: 2)
        for topic in [deployment.input, deployment.output, deployment.dlq] {
            try cluster.createTopic(topic, partitions: 2, replicationFactor: Int32(brokers))
        }
        try await deployment.produce(
            (0..<300).map { ("k\($0 % 7)", String($0), []) }, servers: cluster.bootstrapServers)
        return (cluster, deployment)
    }

    @Test func injectedProduceAndCoordinatorErrorsAreSurvived() async throws {
        let (cluster, deployment) = try await mockDeployment(brokers: 3)
        let servers = cluster.bootstrapServers
        cluster.pushRequestErrors(.produce, [.notLeaderForPartition, .requestTimedOut, .notEnoughReplicas])
        cluster.pushRequestErrors(.endTransaction, [.notCoordinator, .coordinatorNotAvailable])
        cluster.pushRequestErrors(.addPartitionsToTransaction, [.coordinatorNotAvailable])
        let values = try await echoEveryInput(deployment, deployment.configuration(servers: servers))
        #expect(values.count == 300)
        #expect(Set(values) == Set((0..<300).map { "out:\($0)" }))
    }

    @Test func aStopHeldUpByASilentBrokerEndsAtTheBoundAndSaysWhy() async throws {
        let (cluster, deployment) = try await mockDeployment(brokers: 1)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("stop-\(deployment.name).log")
        defer { try? FileManager.default.removeItem(at: log) }
        // A commit interval far off keeps the transaction open, so the stop has one to commit; the
        // HTTP endpoint on, as deployed (the group then stops two services).
        let port = try freePort()
        let worker = try WorkerProcess(
            environment: deployment.environment(
                instance: "overrun",
                extra: [
                    "CLEARWAY_BOOTSTRAP_SERVERS": cluster.bootstrapServers.joined(separator: ","),
                    "CLEARWAY_SHUTDOWN_TIMEOUT_MS": "2000", "CLEARWAY_COMMIT_INTERVAL_MS": "600000",
                    "CLEARWAY_HTTP_PORT": String(port),
                ]), log: log)
        // The mock cluster hands a read_committed reader open transactions' records too.
        _ = try await readAll(
            topic: deployment.output, partitions: 2, servers: cluster.bootstrapServers, expectAtLeast: 300)
        try cluster.setRoundTripTime(.seconds(30), broker: 1)
        let clock = ContinuousClock()
        let start = clock.now
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(limit: .seconds(20))
        let took = clock.now - start
        #expect(status == 1)
        #expect(took >= .seconds(2) && took < .seconds(4), "the stop took \(took)")
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(
            text.contains(
                "did not end within CLEARWAY_SHUTDOWN_TIMEOUT_MS (2.0 seconds) while committing the last transaction"),
            "\(text.suffix(600))")
    }

    @Test func exactlyOnceAbortsATransactionWhoseOutputsFailedAndRedoesIt() async throws {
        let (cluster, deployment) = try await mockDeployment(brokers: 1)
        let servers = cluster.bootstrapServers
        // Not retriable: the transaction holding these produce requests can only abort, and the
        // producer refuses records until it is. Its commit may run in the background while the
        // next records are handled; those are redone too.
        cluster.pushRequestErrors(.produce, [.messageSizeTooLarge, .messageSizeTooLarge])
        let values = try await echoEveryInput(deployment, deployment.configuration(servers: servers))
        // The worker went on (before, the refused record stopped it) and stopped cleanly. The
        // mock cluster lists no aborted transactions in its fetch responses, so a read_committed
        // reader there sees aborted outputs too: this checks that nothing is lost. That nothing
        // is doubled is checked against the real broker (`everyInputHasOneLogicalOutputAcrossKill9`).
        #expect(Set(values) == Set((0..<300).map { "out:\($0)" }))
    }

    @Test func atLeastOnceReproducesOutputsWhoseDeliveryFailed() async throws {
        let (cluster, deployment) = try await mockDeployment(brokers: 1)
        let servers = cluster.bootstrapServers
        // Not retriable: the outputs in these produce requests fail delivery for good.
        cluster.pushRequestErrors(.produce, [.messageSizeTooLarge, .messageSizeTooLarge])
        var configuration = deployment.configuration(servers: servers)
        configuration.delivery = .atLeastOnce
        let values = try await echoEveryInput(deployment, configuration)
        #expect(Set(values) == Set((0..<300).map { "out:\($0)" }), "every failed output was produced again")

        #expect(try await committedInputs(of: deployment, servers: servers).total() == 300)
    }
}

extension WorkerRuntimeFaultTests {
    /// A broker that refuses a record's output every time (a topic whose `max.message.bytes` is
    /// below the worker's limit): the records since the last commit are handled one per commit,
    /// the one refused three times goes to the DLQ (`output-refused`, with what to do), and every
    /// other input is committed: the partition goes on.
    @Test(arguments: [DeliveryMode.exactlyOnce, .atLeastOnce])
    func aRecordWhoseOutputTheBrokerAlwaysRefusesIsSetAsideAndThePartitionGoesOn(_ delivery: DeliveryMode)
        async throws
    {
        let (cluster, deployment) = try await mockDeployment(brokers: 1)
        let servers = cluster.bootstrapServers
        // More refusals than the first batch's produce requests in flight can take (idempotence
        // allows five): the first record handled alone after them is refused again and again.
        cluster.pushRequestErrors(.produce, Array(repeating: .messageSizeTooLarge, count: 12))
        var configuration = deployment.configuration(servers: servers)
        configuration.delivery = delivery
        let (group, task) = runInProcess(EchoHandler.definition(name: deployment.name), configuration)
        let dead = try await readAll(
            topic: deployment.dlq, partitions: 2, servers: servers, expectAtLeast: 1, limit: .seconds(90))
        if delivery == .atLeastOnce {
            // (The mock cluster keeps no offsets committed in a transaction, so only here.)
            try await committedInputs(of: deployment, servers: servers).wait(
                for: 300, limit: .seconds(60), "every input committed")
        }
        #expect(dead.allSatisfy { $0.headers.first(named: "dlq.error.class") == "output-refused" })
        let message = dead.first?.headers.first(named: "dlq.error.message") ?? ""
        #expect(message.contains("refused its output for good") && message.contains("max.message.bytes"))
        // One input set aside (its DLQ record may itself have been refused and written again,
        // then without its value); every other input has its output.
        let setAside = Set(
            dead.compactMap { record in
                record.headers.first(named: "dlq.source.partition").flatMap { partition in
                    record.headers.first(named: "dlq.source.offset").map { "\(partition)@\($0)" }
                }
            })
        #expect(setAside.count == 1)
        let outputs = try await readAll(
            topic: deployment.output, partitions: 2, servers: servers, expectAtLeast: 300 - setAside.count)
        let values = Set(outputs.map { String(decoding: $0.value, as: UTF8.self) })
        #expect((0..<300).filter { !values.contains("out:\($0)") }.count <= setAside.count)
        await group.triggerGracefulShutdown()
        try await task.value
    }
}
