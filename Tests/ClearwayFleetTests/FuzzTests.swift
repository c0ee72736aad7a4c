import ClearwayContract
import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import Foundation
import Testing

/// Every input topic fuzzed: over 10,000 malformed records (`MalformedRecords`) across
/// `orders.v1`, `catalog.v1`, `fx-rates.v1` and the internal topics the workers read, among good
/// orders, with the fleet (enricher, pga-router, aggregator, structuring, manifest-builder,
/// filer-sim) as processes on the real broker. Each malformed record ends once in the DLQ (found
/// by its `dlq.source.*` headers) or in the exceptions (by the order id planted in it, or its
/// probe order's), with a reason; no worker exits; every good order has one outcome, and the
/// orders decided before the fuzz keep their decisions.
@Suite(.enabled(if: Broker.isAvailable, "needs a broker: run ./scripts/test"))
struct FuzzTests {
    /// Malformed records per topic: 10,400 in all.
    static let counts: [(topic: String, count: Int)] = [
        ("orders.v1", 3_600), ("catalog.v1", 700), ("fx-rates.v1", 500), ("orders.enriched.v1", 1_000),
        ("orders.screened.v1", 1_000), ("released.by-address.v1", 900), ("released.by-conveyance.v1", 1_200),
        ("manifests.v1", 1_500),
    ]

    @Test func malformedRecordsLandOnceWithAReasonAndChangeNoDecision() async throws {
        let run = "fz\(UUID().uuidString.prefix(6).lowercased())"
        let deployment = EndToEndTests.Deployment(prefix: "\(run).", policy: "section321-whatif")
        let prefix = deployment.prefix
        _ = try await TopicAdministration(configuration: deployment.configuration, logger: Broker.logger).apply(
            Topics.all)
        let lastDay = Day(Date(), in: TimeZone(identifier: "UTC")!).adding(days: -2)
        let sample = SampleGenerator(seed: 23, consignees: 160, days: 3, lastDay: lastDay).generate()
        let half = sample.orders.count / 2
        let producer = try Broker.producer()
        func publish(_ records: [(topic: String, key: Data?, value: Data)]) async throws {
            for record in records {
                try await producer.send(
                    ProducerRecord(topic: prefix + record.topic, key: record.key, value: record.value))
            }
            try await producer.flush()
        }
        func wire(_ records: [SampleRecord]) -> [(topic: String, key: Data?, value: Data)] {
            records.map { ($0.topic, Data($0.key.utf8), Data($0.value.utf8)) }
        }
        try await publish(wire(sample.catalog + sample.fxRates + sample.orders[..<half]))

        let names = ["enricher", "pga-router", "aggregator", "structuring", "manifest-builder", "filer-sim"]
        let workers = try names.map { try deployment.start($0) }
        defer { for worker in workers { worker.signal(SIGKILL) } }
        let fuzzedTopics = Self.counts.map(\.topic)
        var tally = FleetTally(prefix: prefix)
        let reader = try await TopicReader(
            bootstrapServers: Broker.bootstrapServers,
            topics: Set(tally.topics + fuzzedTopics.map { prefix + $0 }).sorted(), logger: Broker.logger)
        var records: [ConsumerRecord] = []
        func take(_ batch: [ConsumerRecord]) {
            records += batch
            for record in batch { tally.add(record) }
        }

        // 1. The first half of the orders through every stage: the valid examples of the
        // internal topics, and the decisions the fuzz must not change.
        let internalTopics = fuzzedTopics.filter { !["orders.v1", "catalog.v1", "fx-rates.v1"].contains($0) }
        func written(_ topic: String) -> [ConsumerRecord] { records.filter { $0.topic == prefix + topic } }
        let examplesBy = ContinuousClock.now + .seconds(150)
        while !internalTopics.allSatisfy({ written($0).count >= 12 }) || tally.manifestsClosed < 3 {
            guard ContinuousClock.now < examplesBy else {
                Issue.record(
                    "no examples of every internal topic: \(internalTopics.map { "\($0) \(written($0).count)" })")
                return
            }
            take(try await reader.read(for: .milliseconds(500)))
        }
        let decidedBefore = tally.shipments

        // 2. The malformed records, and the good orders' second half among them.
        let generator = MalformedRecords(seed: 2026)
        var fuzz: [MalformedRecord] = []
        for (topic, count) in Self.counts {
            let examples: [SampleRecord] =
                switch topic {
                case "orders.v1": sample.orders.filter { !$0.key.hasPrefix("SO-X-") }
                case "catalog.v1": sample.catalog
                case "fx-rates.v1": sample.fxRates
                default:
                    written(topic).map {
                        SampleRecord(
                            topic: topic, key: $0.keyString ?? "", value: String(decoding: $0.value, as: UTF8.self))
                    }
                }
            fuzz += generator.records(count: count, topic: topic, validExamples: examples)
        }
        #expect(fuzz.count >= 10_000)
        let probes = FuzzProbes(fuzz: fuzz, shipDate: lastDay)
        // Tables first (their probes come last), then the rest shuffled among the good orders.
        let tables = fuzz.filter { ["catalog.v1", "fx-rates.v1"].contains($0.topic) }
        try await publish(tables.map { ($0.topic, $0.key, $0.value) })
        var random = SplitMix(seed: 7)
        var mixed = wire(Array(sample.orders[half...]))
        for record in fuzz where !tables.contains(record) {
            mixed.insert((record.topic, record.key, record.value), at: random.int(0...mixed.count))
        }
        let started = ContinuousClock.now
        try await publish(mixed)
        try await Task.sleep(for: .seconds(2))  // the tables' tails take the fuzz in
        try await publish(probes.orders.map { ("orders.v1", Data($0.key.utf8), Data($0.value.utf8)) })

        // 3. Wait until every malformed record has landed and every good order has its outcome.
        var landing = FuzzLanding(fuzz: fuzz, prefix: prefix, probes: probes)
        let goodKeys = sample.orderKeys
        let landedBy = ContinuousClock.now + .seconds(240)
        var quietSince = ContinuousClock.now
        while true {
            let batch = try await reader.read(for: .milliseconds(500))
            if !batch.isEmpty { quietSince = .now }
            take(batch)
            for record in batch { landing.add(record) }
            let undecided = goodKeys.filter { tally.outcomes(of: $0).isEmpty }
            let pending = landing.pending
            if pending.isEmpty, undecided.isEmpty, tally.unfiled == 0, ContinuousClock.now - quietSince > .seconds(4) {
                break
            }
            if workers.contains(where: { !$0.process.isRunning }) { break }
            // Nothing more for 60 s: what has not landed will not (a group join on a busy 2-core
            // machine can hold everything for 20 s).
            if ContinuousClock.now - quietSince > .seconds(60) { break }
            if ContinuousClock.now > landedBy {
                Issue.record(
                    "timed out: unlocated \(landing.unlocated), not landed \(pending.count) (\(landing.summary(pending))) \(landing.samples(pending)), undecided good orders \(undecided.count) \(undecided.sorted().prefix(5)), unfiled \(tally.unfiled)"
                )
                break
            }
        }
        let elapsed = ContinuousClock.now - started
        await reader.close()

        // No worker stopped, and each stops cleanly.
        for (name, worker) in zip(names, workers) {
            #expect(worker.process.isRunning, "\(name) exited (\(worker.process.terminationStatus))")
            worker.signal(SIGTERM)
            #expect(await worker.waitForExit(limit: .seconds(15)) == 0, "\(name) did not stop cleanly")
        }
        // Each malformed record once, with a reason.
        let lost = landing.pending
        #expect(lost.isEmpty, "not landed: \(landing.summary(lost)) \(landing.samples(lost))")
        let twice = landing.landedMoreThanOnce
        #expect(twice.isEmpty, "landed more than once: \(landing.summary(twice)) \(landing.samples(twice))")
        #expect(landing.withoutReason.isEmpty, "landed without a reason: \(landing.withoutReason.prefix(5))")
        // Every good order has one outcome; those decided before the fuzz keep their decision
        // (a hold may since have been released).
        for key in goodKeys {
            #expect(tally.outcomes(of: key).count == 1, "\(key): \(tally.outcomes(of: key))")
        }
        // (The sample's own updates and cancellations in the second half change theirs.)
        let changedLater = Set(sample.orders[half...].map(\.key))
        for (id, before) in decidedBefore where !changedLater.contains(before.last.orderId) {
            guard let after = tally.shipments[id]?.last, before.last.status != .held else { continue }
            #expect(
                after.status == before.last.status && after.entryType == before.last.entryType
                    && after.valueUSD == before.last.valueUSD && after.consigneeKey == before.last.consigneeKey,
                "\(id): \(before.last.status) \(before.last.entryType) became \(after.status) \(after.entryType)")
        }
        // Nothing malformed was decided, filed or flagged; no consignee's day passes $800 in T86.
        let outputs = ["shipments.cleared.v1", "manifests.v1", "entry-results.v1", "alerts.v1", "orders.screened.v1"]
        let leaked = records.filter { record in
            outputs.contains { record.topic == prefix + $0 } && !landing.isFuzz(record)
                && record.value.range(of: Data("\"FZ-".utf8)) != nil
        }
        #expect(leaked.isEmpty, "malformed records screened or decided: \(leaked.count)")
        #expect(tally.largestT86DayTotal <= 800)
        let unreadable = tally.unreadable.filter { !landing.isFuzz(tallyPlace: $0) }
        #expect(unreadable.isEmpty, "unreadable outputs: \(unreadable.prefix(5))")
        print(
            "fuzz: \(fuzz.count) malformed records on \(Self.counts.count) topics, \(probes.orders.count) probe orders, \(sample.orders.count) good orders; landed in \(elapsed): DLQ \(landing.dlqCount), exceptions \(landing.exceptionCount); by damage \(landing.summary(Array(fuzz.indices)))"
        )
    }
}
