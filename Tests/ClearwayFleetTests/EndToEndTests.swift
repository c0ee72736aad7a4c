import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import Testing

/// The fleet end to end: the sample published to two deployments (the shipped timeline and the
/// Section 321 what-if), the enricher, pga-router, aggregator and structuring watch of each as separate processes
/// on the real broker, and everything checked from the topics.
@Suite(.enabled(if: Broker.isAvailable, "needs a broker: run ./scripts/test"))
struct EndToEndTests {
    /// One deployment: its prefix, policy and worker processes.
    struct Deployment {
        let prefix: String
        let policy: String
        let stateDirectory = NSTemporaryDirectory() + "clearway-e2e-\(UUID().uuidString)"

        var configuration: WorkerConfiguration {
            var configuration = WorkerConfiguration(worker: "e2e", httpPort: 0)
            configuration.bootstrapServers = Broker.bootstrapServers
            configuration.topicPrefix = prefix
            return configuration
        }

        func start(_ worker: String) throws -> WorkerProcess {
            try WorkerProcess(
                environment: [
                    "CLEARWAY_TOPIC_PREFIX": prefix, "CLEARWAY_POLICY": policy,
                    "CLEARWAY_STATE_DIR": "\(stateDirectory)/\(worker)", "CLEARWAY_HTTP_PORT": "0",
                    "CLEARWAY_INSTANCE_ID": "e2e", "CLEARWAY_SESSION_TIMEOUT_MS": "6000",
                    "CLEARWAY_CONSIGNEE_SECRET": "e2e-secret-of-at-least-16-bytes", "CLEARWAY_LOG_LEVEL": "warning",
                ], executable: worker)
        }
    }

    @Test func everyOrderHasExactlyOneOutcomeAndEveryRecordItsSchema() async throws {
        let run = "e2e\(UUID().uuidString.prefix(6).lowercased())"
        let deployments = [
            Deployment(prefix: "\(run).current.", policy: "us"),
            Deployment(prefix: "\(run).whatif.", policy: "section321-whatif"),
        ]
        let sample = SampleGenerator(
            seed: 11, consignees: 400, days: 3, lastDay: Day(Date(), in: TimeZone(identifier: "UTC")!).adding(days: -2)
        ).generate()
        let producer = try Broker.producer()
        for deployment in deployments {
            _ = try await TopicAdministration(configuration: deployment.configuration, logger: Broker.logger).apply(
                StandardTopics.all)
            for record in sample.catalog + sample.fxRates + sample.orders {
                try await producer.send(
                    ProducerRecord(
                        topic: deployment.prefix + record.topic, key: Data(record.key.utf8),
                        value: Data(record.value.utf8)))
            }
        }
        try await producer.flush()
        await producer.shutdown()

        var workers: [WorkerProcess] = []
        for deployment in deployments {
            for worker in ["enricher", "pga-router", "aggregator", "structuring"] {
                workers.append(try deployment.start(worker))
            }
        }
        defer { for worker in workers { worker.signal(SIGKILL) } }

        let empty = deployments.map { FleetTally(prefix: $0.prefix) }
        let expected = sample.orderKeys.count
        // The tallies' topics, and the structuring watch's input (to know when it has caught up).
        let watchInputs = deployments.map { $0.prefix + StandardTopics.releasedByAddress.name }
        let reader = try await TopicReader(
            bootstrapServers: Broker.bootstrapServers, topics: empty.flatMap(\.topics) + watchInputs,
            logger: Broker.logger)
        @Sendable func take(
            _ batch: [ConsumerRecord], into tallies: inout [FleetTally], _ records: inout [ConsumerRecord]
        ) {
            for record in batch {
                records.append(record)
                for index in tallies.indices where record.topic.hasPrefix(tallies[index].prefix) {
                    tallies[index].add(record)
                }
            }
        }
        var (tallies, records) = try await within(.seconds(180), "every order of both deployments decided") {
            var tallies = empty
            var records: [ConsumerRecord] = []
            var quietSince = ContinuousClock.now
            while true {
                try Task.checkCancellation()
                let batch = try await reader.read(for: .milliseconds(500))
                if !batch.isEmpty { quietSince = .now }
                take(batch, into: &tallies, &records)
                let done = tallies.allSatisfy { $0.orderKeys.count == expected && $0.undecided == 0 }
                if done, ContinuousClock.now - quietSince > .seconds(3) { return (tallies, records) }
            }
        }
        // The alerts come one stage later: wait until each structuring watch has committed past
        // the last release it was given, then read what it wrote.
        let ends = Dictionary(
            records.filter { watchInputs.contains($0.topic) }.map {
                (TopicPartition(topic: $0.topic, partition: $0.partition), $0.offset + 1)
            }, uniquingKeysWith: max)
        for deployment in deployments {
            let probe = try GroupProbe(
                group: deployment.prefix + StructuringHandler.name, bootstrapServers: Broker.bootstrapServers,
                logger: Broker.logger)
            let partitions = ends.filter { $0.key.topic.hasPrefix(deployment.prefix) }
            try await within(.seconds(60), "the structuring watch of \(deployment.prefix) caught up") {
                while try await probe.hasCaughtUp(to: partitions) != true {
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            await probe.close()
        }
        take(try await reader.read(for: .seconds(2)), into: &tallies, &records)
        await reader.close()
        for worker in workers {
            worker.signal(SIGTERM)
            #expect(await worker.waitForExit(limit: .seconds(15)) == 0, "a worker did not stop cleanly on SIGTERM")
        }

        for tally in tallies {
            // Exactly one outcome per order: cleared, exception or dead letter.
            let wrong = tally.orderKeys.sorted().compactMap { key -> String? in
                let outcomes = tally.outcomes(of: key)
                return outcomes.count == 1 ? nil : "\(key): \(outcomes)"
            }
            #expect(wrong.isEmpty, "\(tally.prefix): orders without exactly one outcome: \(wrong.prefix(10))")
            for key in sample.unreadableKeys {
                #expect(tally.outcomes(of: key) == ["dlq"], "\(tally.prefix): \(key) belongs in the DLQ")
            }
            // No consignee's Type 86 total for a day passes $800 (19 CFR 10.151).
            #expect(tally.largestT86DayTotal <= 800, "\(tally.prefix): a T86 day total of \(tally.largestT86DayTotal)")
            #expect(tally.unreadable.isEmpty, "\(tally.prefix): unreadable outcome records \(tally.unreadable)")
        }
        let (current, whatif) = (tallies[0], tallies[1])
        // The two timelines decide differently, as they must: no de minimis today, and under the
        // what-if both T86 entries and holds for the day's overflow.
        #expect(current.released(.t86).isEmpty && !current.released(.t11).isEmpty)
        #expect(current.consolidations.groups > 0)
        #expect(!whatif.released(.t86).isEmpty && whatif.releasedAfterHold + whatif.finalStatus(.held) > 0)
        #expect(whatif.largestT86DayTotal > 500, "the sample should push some days near the threshold")
        // Households (three names at one address, each under $800, together over it) are flagged
        // however their consignees are partitioned; an address-day is flagged again only after a
        // cancellation took it back under, with the new evidence.
        #expect(!whatif.alerts.isEmpty)
        for alert in whatif.alerts {
            let total = alert.consignees.compactMap { Decimal(string: $0.totalUSD) }.reduce(0, +)
            #expect(alert.consignees.count >= 2 && total > 800 && alert.totalUSD == Money(total, .usd).amountText)
        }

        // Every exception says why and what would fix it.
        let exceptions = records.filter { $0.topic.hasSuffix("orders.exceptions.v1") }
        #expect(!exceptions.isEmpty)
        for record in exceptions {
            let object = (try? JSONSerialization.jsonObject(with: record.value)) as? [String: Any] ?? [:]
            for field in ["code", "detail", "fix"] {
                #expect(
                    !((object[field] as? String) ?? "").isEmpty, "an exception without a \(field): \(object)")
            }
        }
        // Every record a worker wrote matches its schema; and no output was written twice.
        for schema in [
            "orders.enriched.v1", "orders.screened.v1", "shipments.cleared.v1", "orders.exceptions.v1", "alerts.v1",
        ] {
            let values = records.filter { $0.topic.hasSuffix("." + schema) }.map(\.value)
            #expect(!values.isEmpty || schema == "alerts.v1", "no \(schema) records to check")
            #expect(try Schemas.problems(values, against: schema) == [], "\(schema) records off their schema")
        }
        let outputs = records.filter { !$0.topic.hasSuffix(".orders.v1") && !$0.topic.hasSuffix(".dlq.v1") }
        let ids = outputs.compactMap { record in record.headers.first(named: "ce_id").map { "\(record.topic)/\($0)" } }
        #expect(ids.count == outputs.count, "every output carries a ce_id")
        #expect(Set(ids).count == ids.count, "an output was written twice")
    }
}

struct DeclaredTopicsTests {
    /// `clearway topics apply` creates every topic a worker checks for at start, its changelog
    /// included (a worker whose topics are missing refuses to start).
    @Test func topicsApplyDeclaresEveryTopicTheStatefulWorkersNeed() throws {
        let definitions = [
            EnricherHandler.definition(
                warehouses: try WarehouseDirectory.shipped(),
                secret: try ConsigneeKeySecret(text: "a-secret-of-at-least-16-bytes")),
            AggregatorHandler.definition(timeline: try PolicyTimeline.shipped(), ports: try PortDirectory.shipped()),
            StructuringHandler.definition(),
        ]
        let declared = Dictionary(StandardTopics.all.map { ($0.name, $0) }) { first, _ in first }
        for definition in definitions {
            for topic in definition.declaredTopics {
                #expect(declared[topic.name] == topic, "\(definition.name) needs \(topic.name) as declared")
            }
        }
    }
}
