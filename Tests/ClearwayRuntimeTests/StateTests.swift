import ClearwayKafka
import ClearwayTestSupport
import Foundation
import ServiceLifecycle
import Testing

@testable import ClearwayRuntime

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct StateTests {
    private func stateDirectory() -> String {
        NSTemporaryDirectory() + "clearway-state-\(UUID().uuidString)"
    }

    private func start(_ definition: WorkerDefinition, _ configuration: WorkerConfiguration, health: RuntimeHealth)
        -> (ServiceGroup, Task<Void, any Error>)
    {
        let runtime = WorkerRuntime(
            definition: definition, configuration: configuration, health: health, logger: Broker.logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)],
                logger: Broker.logger))
        return (group, Task { try await group.run() })
    }

    private func createTopics(_ deployment: EchoDeployment, _ definition: WorkerDefinition) async throws {
        var configuration = deployment.configuration()
        configuration.topicPrefix = deployment.prefix
        _ = try await TopicAdministration(configuration: configuration, logger: Broker.logger).apply(
            definition.declaredTopics)
    }

    /// A timer whose handler can never succeed would fail again after every restart: it goes to
    /// the DLQ (its key and payload, `dlq.source` naming it) with its state changes undone and
    /// is not fired again, while the other timers and records go on.
    @Test func aTimerThatAlwaysFailsGoesToTheDLQAndTheOthersFire() async throws {
        let deployment = EchoDeployment(partitions: 2)
        let definition = CountingHandler.definition(name: deployment.name, partitions: 2, timerDelay: .zero)
        try await createTopics(deployment, definition)
        try await deployment.produce([("poison-1", "a", []), ("key-1", "b", []), ("key-2", "c", [])])
        var configuration = deployment.configuration()
        configuration.stateDirectory = stateDirectory()
        let (group, task) = start(definition, configuration, health: RuntimeHealth())
        let dead = try await readAll(
            topic: deployment.dlq, partitions: StandardTopics.dlq.partitions, servers: Broker.bootstrapServers,
            expectAtLeast: 1)
        let outputs = try await readAll(
            topic: deployment.output, partitions: 2, servers: Broker.bootstrapServers, expectAtLeast: 5)
        await group.triggerGracefulShutdown()
        try await task.value
        let values = Set(outputs.map { String(decoding: $0.value, as: UTF8.self) })
        #expect(values == ["poison-1=1", "key-1=1", "key-2=1", "timer:key-1", "timer:key-2"])
        #expect(dead.count == 1)
        #expect(dead.first?.keyString == "remind/poison-1")
        #expect(dead.first.map { String(decoding: $0.value, as: UTF8.self) } == "poison-1")
        #expect(dead.first?.headers.first(named: "dlq.error.class") == "test-poison-timer")
        #expect(dead.first?.headers.first(named: "dlq.source")?.hasPrefix("timer remind/poison-1") == true)
        let state = try (0..<Int32(2)).map {
            try StateInspector.snapshot(directory: configuration.stateDirectory, partition: $0)
        }
        #expect(state.allSatisfy { $0.timers.isEmpty }, "the failed timer is not fired again")
        #expect(state.flatMap(\.entries.keys).allSatisfy { !$0.hasPrefix("touched/") })
    }

    @Test func stateRestoredOnANewHostEqualsTheStateBefore() async throws {
        let deployment = EchoDeployment(partitions: 2)
        let definition = CountingHandler.definition(name: deployment.name, partitions: 2, timerDelay: .seconds(3600))
        try await createTopics(deployment, definition)
        try await deployment.produce((0..<300).map { ("key-\($0 % 30)", "v\($0)", []) })

        var configuration = deployment.configuration()
        configuration.stateDirectory = stateDirectory()
        let (group, task) = start(definition, configuration, health: RuntimeHealth())
        let outputs = try await readAll(
            topic: deployment.output, partitions: 2, servers: Broker.bootstrapServers, expectAtLeast: 300)
        #expect(outputs.count == 300)
        await group.triggerGracefulShutdown()
        try await task.value
        let before = try (0..<Int32(2)).map {
            try StateInspector.snapshot(directory: configuration.stateDirectory, partition: $0)
        }
        #expect(before.map(\.entries.count).reduce(0, +) == 30)
        #expect(before.map(\.timers.count).reduce(0, +) == 30)
        #expect(before.flatMap(\.entries.values).allSatisfy { $0 == Data("10".utf8) })

        // A new host: an empty state directory.
        try FileManager.default.removeItem(atPath: configuration.stateDirectory)
        var moved = configuration
        moved.stateDirectory = stateDirectory()
        let health = RuntimeHealth()
        let (second, secondTask) = start(definition, moved, health: health)
        try await within(.seconds(30), "restored and ready") {
            while !health.readiness.ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        await second.triggerGracefulShutdown()
        try await secondTask.value
        let after = try (0..<Int32(2)).map {
            try StateInspector.snapshot(directory: moved.stateDirectory, partition: $0)
        }
        #expect(after == before)
    }

    @Test func timersSetBeforeARestartFireAfterIt() async throws {
        let deployment = EchoDeployment(partitions: 1)
        let definition = CountingHandler.definition(name: deployment.name, partitions: 1, timerDelay: .seconds(4))
        try await createTopics(deployment, definition)
        try await deployment.produce((0..<5).map { ("key-\($0)", "v\($0)", []) })
        var configuration = deployment.configuration()
        configuration.stateDirectory = stateDirectory()
        let (group, task) = start(definition, configuration, health: RuntimeHealth())
        _ = try await readAll(
            topic: deployment.output, partitions: 1, servers: Broker.bootstrapServers, expectAtLeast: 5)
        await group.triggerGracefulShutdown()
        try await task.value
        let pending = try StateInspector.snapshot(directory: configuration.stateDirectory, partition: 0)
        #expect(pending.timers.count == 5)

        let (restarted, restartedTask) = start(definition, configuration, health: RuntimeHealth())
        let outputs = try await readAll(
            topic: deployment.output, partitions: 1, servers: Broker.bootstrapServers, expectAtLeast: 10)
        await restarted.triggerGracefulShutdown()
        try await restartedTask.value
        let fired = outputs.map { String(decoding: $0.value, as: UTF8.self) }.filter { $0.hasPrefix("timer:") }
        #expect(Set(fired) == Set((0..<5).map { "timer:key-\($0)" }))
        #expect(fired.count == 5)
        #expect(try StateInspector.snapshot(directory: configuration.stateDirectory, partition: 0).timers.isEmpty)
    }
}

/// The changelog replay drops work that was rolled back, even when a later commit passes its tag.
struct ChangelogReplayTests {
    @Test func rolledBackWorkIsDroppedAndCommittedWorkKept() {
        var replay = ChangelogReplay()
        // Run A commits up to 20, then writes up to 30 and dies before committing.
        replay.add(key: "w", change: .put(Data("a10".utf8)), tag: 10, from: 0, writer: "A")
        replay.add(key: "w", change: .put(Data("a20".utf8)), tag: 20, from: 10, writer: "A")
        replay.add(key: "zombie", change: .put(Data("z".utf8)), tag: 30, from: 20, writer: "A")
        // Run B restarts from 20: a timer-only transaction at 20, then 20 → 30 again.
        replay.add(key: "t", change: .put(Data("b20".utf8)), tag: 20, from: 20, writer: "B")
        replay.add(key: "w", change: .put(Data("b30".utf8)), tag: 30, from: 20, writer: "B")
        let changes = replay.changes(upTo: 30)
        #expect(changes.map(\.key) == ["w", "w", "t", "w"])
        #expect(changes.last?.change == .put(Data("b30".utf8)))
        // Committed at 20: B's 20 → 30 is not in yet.
        #expect(replay.changes(upTo: 20).map(\.key) == ["w", "w", "t"])
    }
}
