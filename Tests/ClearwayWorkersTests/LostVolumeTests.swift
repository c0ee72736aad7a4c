import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import Testing

/// A stateful worker's volume lost under load: its partitions run on another host meanwhile, and
/// when they come back the state is rebuilt from the changelog.
@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct LostVolumeTests {
    /// Sixty consignees, six orders each on one day, in three waves: two orders on host A, three
    /// on host B (while A's state directory is deleted), the last on A again with an empty
    /// directory. Each consignee's sixth order passes $800 only with the five before it, so A
    /// decides it right only if it rebuilt what A and B had decided from the changelog.
    @Test func aStateDirectoryLostWhileItsPartitionsRanElsewhereIsRebuiltFromTheChangelog() async throws {
        let timeline = try PolicyTimeline.named("section321-whatif")
        let deployment = WorkerDeployment(AggregatorHandler.definition(timeline: timeline, ports: try .shipped()))
        try await deployment.createTopics()
        let consignees = 60
        // Any five of these stay within $800; all six pass it (870).
        let values = [120, 180, 150, 90, 200, 130]
        func order(_ consignee: Int, _ index: Int) -> (key: String, value: String?) {
            let id = key(3000 + consignee)
            return (
                id,
                screenedJSON(
                    "V\(consignee)-\(index)", consignee: id, value: "\(values[(index + consignee) % 6]).00",
                    arrival: "2026-06-10")
            )
        }
        func wave(_ indices: ClosedRange<Int>) -> [(key: String, value: String?)] {
            (0..<consignees).flatMap { consignee in indices.map { order(consignee, $0) } }
        }

        // The same orders through an aggregator that never loses anything, beside the test.
        let reference = WorkerDeployment(
            AggregatorHandler.definition(timeline: timeline, ports: try .shipped()))
        try await reference.createTopics()
        try await reference.publish("orders.screened.v1", wave(0...5))
        let referenceWatch = try await reference.watch(["shipments.cleared.v1"])
        let (referenceGroup, referenceTask) = reference.start()

        let scratch = NSTemporaryDirectory() + "clearway-lost-volume-\(UUID().uuidString)"
        // The hosts' logs stay in `scratch` when the test fails.
        let volumeA = scratch + "/a"
        func start(_ instance: String, state: String, log: String) throws -> WorkerProcess {
            try WorkerProcess(
                environment: [
                    "CLEARWAY_BOOTSTRAP_SERVERS": Broker.bootstrapServers.joined(separator: ","),
                    "CLEARWAY_TOPIC_PREFIX": deployment.prefix, "CLEARWAY_INSTANCE_ID": instance,
                    "CLEARWAY_STATE_DIR": state, "CLEARWAY_POLICY": "section321-whatif",
                    "CLEARWAY_SESSION_TIMEOUT_MS": "6000", "CLEARWAY_HTTP_PORT": "0", "CLEARWAY_LOG_LEVEL": "info",
                ], executable: "aggregator", log: URL(fileURLWithPath: log))
        }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let input = Topics.ordersScreened
        let committed = try CommittedOffsets(
            group: deployment.prefix + AggregatorHandler.name,
            partitions: (0..<input.partitions).map {
                TopicPartition(topic: deployment.topic(input.name), partition: $0)
            })

        // Wave 1 on A.
        try await deployment.publish("orders.screened.v1", wave(0...1))
        let hostA = try start("a", state: volumeA, log: scratch + "/a1.log")
        try await committed.wait(
            for: Int64(2 * consignees), limit: .seconds(120), "A deciding wave 1 (logs: \(scratch))")
        hostA.signal(SIGTERM)
        #expect(await hostA.waitForExit(limit: .seconds(20)) == 0)
        // Wave 2 arrives while the partitions move to B; A's volume is lost meanwhile.
        try await deployment.publish("orders.screened.v1", wave(2...4))
        let hostB = try start("b", state: scratch + "/b", log: scratch + "/b.log")
        try FileManager.default.removeItem(atPath: volumeA)
        try await committed.wait(
            for: Int64(5 * consignees), limit: .seconds(120), "B deciding wave 2 (logs: \(scratch))")
        hostB.signal(SIGTERM)
        #expect(await hostB.waitForExit(limit: .seconds(20)) == 0)
        // Wave 3 arrives while the partitions move back to A, whose volume is empty.
        try await deployment.publish("orders.screened.v1", wave(5...5))
        let clock = ContinuousClock()
        let moved = clock.now
        let hostA2 = try start("a", state: volumeA, log: scratch + "/a2.log")
        try await committed.wait(
            for: Int64(6 * consignees), limit: .seconds(120), "A deciding wave 3 (logs: \(scratch))")
        let caughtUp = clock.now - moved

        // Every order decided, and each sixth one held to the next day and released there.
        let expected = 6 * consignees + consignees
        let watch = try await deployment.watch(["shipments.cleared.v1"])
        try await watch.wait("every decision", limit: .seconds(60)) {
            Set($0.records.compactMap(\.ceID)).count >= expected
        }
        try await referenceWatch.wait("every reference decision", limit: .seconds(60)) {
            Set($0.records.compactMap(\.ceID)).count >= expected
        }
        hostA2.signal(SIGTERM)
        #expect(await hostA2.waitForExit(limit: .seconds(20)) == 0)
        await referenceGroup.triggerGracefulShutdown()
        try await referenceTask.value
        await watch.stop()
        await referenceWatch.stop()

        let decided = decisions(watch.seen.withLock { $0.records })
        let referenceDecided = decisions(referenceWatch.seen.withLock { $0.records })
        // Exactly once: one decision per order (a held one: held, then released), by ce_id.
        #expect(decided.count == 6 * consignees)
        #expect(decided.values.allSatisfy { $0.count == 1 || ($0.count == 2 && $0[0].hasPrefix("held")) })
        #expect(decided.values.filter { $0.count == 2 }.count == consignees, "each consignee's sixth order held")
        // The same decisions as the run that lost nothing (so A's after the move too).
        let differing = decided.keys.filter { decided[$0] != referenceDecided[$0] }.sorted()
        #expect(
            differing.isEmpty,
            "\(differing.prefix(5).map { "\($0): \(decided[$0]!) vs \(referenceDecided[$0] ?? [])" })")
        // No consignee-day T86 total over $800.
        var totals: [String: Decimal] = [:]
        for record in watch.seen.withLock({ $0.records }).map(\.json) {
            guard record["entryType"] as? String == "T86", record["status"] as? String == "released" else { continue }
            let slot = "\(record["consigneeKey"] as? String ?? "")/\(record["day"] as? String ?? "")"
            totals[slot, default: 0] += Decimal(string: record["valueUSD"] as? String ?? "0")!
        }
        let over = totals.filter { $0.value > 800 }
        #expect(over.isEmpty, "T86 day totals over $800: \(over)")
        // A rebuilt every partition from the changelog, up to where B had committed.
        let restores = try String(contentsOfFile: scratch + "/a2.log", encoding: .utf8).split(separator: "\n")
            .compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: String]
            }
            .filter { $0["message"] == "state restored from the changelog" }
        #expect(Set(restores.compactMap { $0["kafka.partition"] }).count == Int(input.partitions))
        #expect(restores.compactMap { $0["restore.offset"].flatMap { Int($0) } }.reduce(0, +) == 5 * consignees)
        print(
            "lost volume: A caught up \(caughtUp) after the move back; restores: "
                + restores.map {
                    "p\($0["kafka.partition"] ?? "?") \($0["restore.records"] ?? "?") changes in \($0["restore.duration"] ?? "?")"
                }
                .joined(separator: ", "))
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// Each order's decisions (status, entry type, day, value, day total), in order, a repeat of
    /// one ce_id counted once.
    private func decisions(_ records: [ConsumerRecord]) -> [String: [String]] {
        var seen = Set<String>()
        var decisions: [String: [String]] = [:]
        for record in records {
            guard let id = record.ceID, seen.insert(id).inserted else { continue }
            let object = record.json
            guard let shipment = object["shipmentId"] as? String else { continue }
            decisions[shipment, default: []].append(
                [
                    object["status"] as? String ?? "?", object["entryType"] as? String ?? "-",
                    object["day"] as? String ?? "?", object["valueUSD"] as? String ?? "?",
                    object["dayTotalUSD"] as? String ?? "?",
                ].joined(separator: " "))
        }
        return decisions
    }
}
