import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import Testing

/// The fleet end to end: the sample published to two deployments (the shipped timeline and the
/// Section 321 what-if), the enricher, pga-router, aggregator, structuring watch, manifest-builder
/// and filer-sim of each as separate processes on the real broker (the current deployment's
/// manifest-builder and filer-sim killed with SIGKILL mid-run and restarted), and everything
/// checked from the topics.
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
                    // Manifests close 3 s after they open, or at 20 entries; answers come in 0.5–1 s.
                    "CLEARWAY_MANIFEST_CLOSE_AFTER": "3", "CLEARWAY_MANIFEST_MAX_ENTRIES": "20",
                    "CLEARWAY_FILER_DELAY_MS": "500",
                ], executable: worker, log: URL(fileURLWithPath: logFile(worker)))
        }

        /// Where a worker process's log goes (a restarted one's after its predecessor's).
        func logFile(_ worker: String) -> String {
            try? FileManager.default.createDirectory(
                atPath: stateDirectory + "/logs", withIntermediateDirectories: true)
            var path = "\(stateDirectory)/logs/\(worker).log"
            var run = 1
            while FileManager.default.fileExists(atPath: path) {
                run += 1
                path = "\(stateDirectory)/logs/\(worker)-\(run).log"
            }
            return path
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
                Topics.all)
            for record in sample.catalog + sample.fxRates + sample.orders {
                try await producer.send(
                    ProducerRecord(
                        topic: deployment.prefix + record.topic, key: Data(record.key.utf8),
                        value: Data(record.value.utf8)))
            }
        }
        try await producer.flush()
        await producer.shutdown()

        let names = ["enricher", "pga-router", "aggregator", "structuring", "manifest-builder", "filer-sim"]
        let workers = Locked<[WorkerProcess]>([])
        for deployment in deployments {
            for worker in names { try workers.withLock { $0.append(try deployment.start(worker)) } }
        }
        defer { for worker in workers.withLock({ $0 }) { worker.signal(SIGKILL) } }
        /// Kills the current deployment's manifest-builder and filer-sim (SIGKILL) and starts them again.
        @Sendable func crashFilingWorkers() throws {
            try workers.withLock { workers in
                for name in ["manifest-builder", "filer-sim"] {
                    let index = names.firstIndex(of: name)!
                    workers[index].signal(SIGKILL)
                    workers[index] = try deployments[0].start(name)
                }
            }
        }

        let empty = deployments.map { FleetTally(prefix: $0.prefix) }
        let expected = sample.orderKeys.count
        // The tallies' topics, and the structuring watch's input (to know when it has caught up).
        let watchInputs = deployments.map { $0.prefix + Topics.releasedByAddress.name }
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
        // What the run has come to, for the message if it does not finish.
        let progress = Locked("")
        // The test broker leaves a killed worker's open transaction visible (it does not abort a
        // fenced producer's transaction; Apache Kafka does). The killed deployment's filing can
        // then show what the killed manifest-builder or filer-sim did before the crash and the
        // restarted one did differently (an entry cancelled by an amendment the restarted worker
        // never made): there a shipment counts as filed once it has any filing result.
        let zombiesVisible = ProcessInfo.processInfo.environment["CLEARWAY_BROKER_ABORTS_FENCED_TRANSACTIONS"] != "true"
        let killedPrefix = deployments[0].prefix
        @Sendable func unfiled(_ tally: FleetTally) -> [ClearedShipment] {
            guard zombiesVisible, tally.prefix == killedPrefix else { return tally.unfiledShipments }
            let onEntry = tally.entryOfShipment
            return tally.releasedShipments.values.filter {
                tally.filingOutcome(of: $0.shipmentId, onEntry: onEntry) == nil
                    && tally.filingRefusals[$0.orderId] == nil
            }
        }
        let outcome: (tallies: [FleetTally], records: [ConsumerRecord])
        do {
            outcome = try await within(.seconds(240), "every order of both deployments decided and filed") {
                var tallies = empty
                var records: [ConsumerRecord] = []
                var quietSince = ContinuousClock.now
                var crashed = false
                while true {
                    try Task.checkCancellation()
                    let batch = try await reader.read(for: .milliseconds(500))
                    if !batch.isEmpty { quietSince = .now }
                    take(batch, into: &tallies, &records)
                    // kill -9 of the filing workers once manifests flow: nothing lost, nothing doubled.
                    if !crashed, tallies[0].manifestsClosed >= 3 {
                        try crashFilingWorkers()
                        crashed = true
                    }
                    let done = tallies.allSatisfy {
                        $0.orderKeys.count == expected && $0.undecided == 0 && unfiled($0).isEmpty
                    }
                    let state = tallies.map { tally in
                        let unfiled = unfiled(tally).map { "\($0.shipmentId)@\($0.day)" }.sorted()
                        return
                            "\(tally.prefix) orders \(tally.orderKeys.count)/\(expected), undecided \(tally.undecided), released \(tally.releasedShipments.count), manifests \(tally.manifestsClosed), unfiled \(unfiled.count) \(unfiled.prefix(5))"
                    }
                    progress.withLock { $0 = state.joined(separator: "; ") + (crashed ? "" : "; not crashed yet") }
                    if done, crashed, ContinuousClock.now - quietSince > .seconds(4) { return (tallies, records) }
                }
            }
        } catch {
            let tails = deployments.flatMap { deployment in
                ((try? FileManager.default.contentsOfDirectory(atPath: deployment.stateDirectory + "/logs")) ?? [])
                    .sorted().map { name in
                        let text =
                            (try? String(contentsOfFile: "\(deployment.stateDirectory)/logs/\(name)", encoding: .utf8))
                            ?? ""
                        return "\(deployment.prefix)\(name): "
                            + text.split(separator: "\n").suffix(3).joined(separator: "\n  ")
                    }
            }
            Issue.record("\(error): \(progress.withLock { $0 })\nworker logs:\n\(tails.joined(separator: "\n"))")
            throw error
        }
        var (tallies, records) = outcome
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
        for worker in workers.withLock({ $0 }) {
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

        // Filing: every released shipment ends in exactly one accepted or rejected entry (after
        // amendments) or a refusal naming the missing element; no entry number on two entries;
        // every check digit verifies; no T11 over $2,500; nothing incomplete filed.
        for tally in tallies {
            let onEntry = tally.entryOfShipment
            for (id, shipment) in tally.releasedShipments {
                if let refusal = tally.filingRefusals[shipment.orderId] {
                    #expect(refusal.code == "incomplete-entry" && onEntry[id] == nil, "\(id): refused yet filed")
                    continue
                }
                let outcome = tally.filingOutcome(of: id, onEntry: onEntry)
                if zombiesVisible, tally.prefix == killedPrefix {
                    #expect(outcome != nil, "\(tally.prefix): \(id) has no filing result")
                    continue
                }
                #expect(
                    outcome.map { [.accepted, .rejected, .amended].contains($0.event) } == true,
                    "\(tally.prefix): \(id) ends without an accepted or rejected entry: \(String(describing: outcome))")
                #expect(onEntry[id] != nil && outcome?.entryId == onEntry[id]?.entryId, "\(id) on no entry, or on two")
            }
            #expect(tally.manifestsClosed > 0 && !tally.entries.isEmpty, "\(tally.prefix): nothing filed")
            for (number, entryIds) in tally.entryNumbers {
                #expect(entryIds.count == 1, "entry number \(number) on \(entryIds.sorted())")
                #expect((try? EntryNumber(number))?.description == number, "\(number) does not verify")
            }
            #expect(!tally.entryNumbers.isEmpty, "\(tally.prefix): no entry numbers")
            for entry in tally.entries.values where !tally.cancelledEntries.contains(entry.entryId) {
                let total = (try? Decimal(parsingPlain: entry.totalValueUSD)) ?? 0
                #expect(entry.entryType != .t11 || total <= 2_500, "\(entry.entryId): a T11 of \(total)")
                #expect(entry.entryType != .t86 || entry.shipments.count == 1, "\(entry.entryId): T86 with two bills")
                for line in entry.lines {
                    #expect(
                        (try? HTSCode(line.hts))?.isStatisticalReportingNumber == true && (try? MID(line.mid)) != nil
                            && !line.description.isEmpty, "\(entry.entryId): an incomplete line filed")
                    for flag in line.pga where flag.flag.last.map({ Int(String($0))! % 2 == 0 }) == true {
                        #expect(
                            flag.data != nil || flag.disclaimer != nil, "\(entry.entryId): \(flag.flag) without data")
                    }
                }
            }
            // One entry per consignee per conveyance (19 CFR 141.51), Type 86 aside.
            let perConsignee = Dictionary(
                grouping: tally.entries.values.filter {
                    $0.entryType != .t86 && !tally.cancelledEntries.contains($0.entryId)
                },
                by: { "\($0.consigneeKey)/\($0.port)/\($0.arrivalDay)/\($0.carrier)/\($0.trip)" })
            #expect(
                perConsignee.values.allSatisfy { $0.count == 1 },
                "\(tally.prefix): a consignee with two entries on one conveyance")
        }
        #expect(
            current.entries.values.contains { $0.entryType == .t11 }
                && !current.entries.values.contains { $0.entryType == .t86 })
        #expect(whatif.entries.values.contains { $0.entryType == .t86 })
        #expect(tallies.contains { !$0.filingRefusals.isEmpty }, "the sample's coffees without FDA data are refused")

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
            "manifests.v1", "entry-results.v1",
        ] {
            let values = records.filter { $0.topic.hasSuffix("." + schema) }.map(\.value)
            #expect(!values.isEmpty || schema == "alerts.v1", "no \(schema) records to check")
            #expect(try Schemas.problems(values, against: schema) == [], "\(schema) records off their schema")
        }
        let outputs = records.filter { !$0.topic.hasSuffix(".orders.v1") && !$0.topic.hasSuffix(".dlq.v1") }
        let ids = outputs.compactMap { record in record.headers.first(named: "ce_id").map { "\(record.topic)/\($0)" } }
        #expect(ids.count == outputs.count, "every output carries a ce_id")
        // The killed filing workers' open transactions stay visible on the test broker (above):
        // their records come again with the same ce_id, which is how a consumer drops them (the
        // tally does).
        let fenced = zombiesVisible
        let killed = ["manifests.v1", "entry-results.v1", "orders.exceptions.v1"].map { deployments[0].prefix + $0 }
        let doubled = Dictionary(grouping: ids, by: { $0 }).filter { $0.value.count > 1 }.keys.filter { id in
            !(fenced && killed.contains { id.hasPrefix($0 + "/") })
        }
        #expect(doubled.isEmpty, "outputs written twice: \(doubled.count), e.g. \(doubled.sorted().prefix(5))")
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
            try ManifestBuilderHandler.definition(environment: [:]),
            try FilerSimHandler.definition(environment: [:]),
        ]
        let declared = Dictionary(Topics.all.map { ($0.name, $0) }) { first, _ in first }
        for definition in definitions {
            for topic in definition.declaredTopics {
                #expect(declared[topic.name] == topic, "\(definition.name) needs \(topic.name) as declared")
            }
        }
    }
}
