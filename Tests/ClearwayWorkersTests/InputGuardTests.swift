import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import Testing

/// Records that would be handled by the wrong partition, and records whose outputs could never
/// be written: each ends in the DLQ or the exceptions with a reason, and the partition goes on.
@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct InputGuardTests {
    /// The enricher, pga-router and aggregator of one deployment under the Section 321 what-if
    /// (an $800 Type 86 allowance per consignee and day), run in this process.
    struct Fleet {
        let enricher: WorkerDeployment
        let router: WorkerDeployment
        let aggregator: WorkerDeployment

        init(maximumLines: Int = EnricherHandler.defaultMaximumLines) throws {
            enricher = WorkerDeployment(
                EnricherHandler.definition(
                    warehouses: try WarehouseDirectory.shipped(),
                    secret: try ConsigneeKeySecret(text: WorkerDeployment.consigneeSecret), maximumLines: maximumLines))
            router = WorkerDeployment(
                PGARouterHandler.definition(
                    references: try ScreeningReferences(
                        sources: ScreeningSources(policy: "section321-whatif"), logger: Broker.logger)),
                prefix: enricher.prefix)
            aggregator = WorkerDeployment(
                AggregatorHandler.definition(
                    timeline: try PolicyTimeline.named("section321-whatif"), ports: try PortDirectory.shipped()),
                prefix: enricher.prefix)
        }

        var all: [WorkerDeployment] { [enricher, router, aggregator] }

        func prepare() async throws {
            for deployment in all { try await deployment.createTopics() }
            try await enricher.publish(
                "catalog.v1",
                [
                    ("SKU-A", catalogJSON("SKU-A")),
                    ("SKU-C", catalogJSON("SKU-C", hts: "0901.21.0020")),  // coffee: FDA prior notice
                    ("SKU-X", catalogJSON("SKU-Y")),  // mis-keyed: SKU-Y's record under SKU-X's key
                ])
        }
    }

    /// `orders.v1` is keyed by `orderId`: a null key, a key that is not UTF-8 and another order's
    /// key are refused (DLQ, `key-mismatch`, the key's bytes kept), the orders behind them on the
    /// partition go on, and an update sent with a bad key to move an order to another consignee
    /// does not leave the first consignee's day over $800 (19 CFR 10.151); sent again under its
    /// key, it moves the order.
    @Test func misKeyedOrdersAreRefusedAndNoConsigneeDayPassesItsLimit() async throws {
        let fleet = try Fleet()
        try await fleet.prepare()
        let maria = (name: "Maria Lopez", street: "12 Oak Street Apt 4")
        let jose = (name: "Jose Ruiz", street: "9 Elm Street")
        func order(_ id: String, type: String = "placed", version: Int = 1, value: String, to who: (String, String))
            -> String
        {
            orderJSON(
                id, type: type, version: version, currency: "USD", lines: [("SKU-A", 1, value)], name: who.0,
                street: who.1)
        }
        let moved = order("M-1", type: "updated", version: 2, value: "500.00", to: jose)
        try await fleet.enricher.publish(
            "orders.v1",
            rawKeys: [
                (Data("M-1".utf8), order("M-1", value: "500.00", to: maria)),
                (nil, moved),  // the update, with a null key
                (Data([0xff, 0xfe, 0x4d]), moved),  // …and with a key that is not UTF-8
                (Data("M-9".utf8), moved),  // …and with another order's key
                (nil, order("N-1", value: "10.00", to: jose)),  // a new order with a null key
                (Data("M-2".utf8), order("M-2", value: "500.00", to: maria)),  // over Maria's $800: held
                (Data("M-3".utf8), order("M-3", value: "100.00", to: jose)),  // behind them all
                // A catalog record under another SKU's key enriches nothing.
                (Data("M-4".utf8), orderJSON("M-4", currency: "USD", lines: [("SKU-X", 1, "5.00")])),
            ], partition: 0)
        let watch = try await fleet.enricher.watch([
            "shipments.cleared.v1", "orders.exceptions.v1", "dlq.v1",
        ])
        let running = fleet.all.map { $0.start() }
        let prefix = fleet.enricher.prefix
        @Sendable func records(_ topic: String, _ seen: ConsumerProbe.Seen) -> [ConsumerRecord] {
            seen.records.filter { $0.topic == prefix + topic }
        }
        @Sendable func decisions(_ id: String, _ seen: ConsumerProbe.Seen) -> [[String: Any]] {
            records("shipments.cleared.v1", seen).map(\.json).filter { $0["orderId"] as? String == id }
        }
        try await watch.wait("the orders behind the refused ones decided", limit: .seconds(90)) { seen in
            !decisions("M-3", seen).isEmpty && !decisions("M-2", seen).isEmpty
                && records("dlq.v1", seen).count == 4
                && records("orders.exceptions.v1", seen).contains { $0.json["orderId"] as? String == "M-4" }
        }
        var seen = watch.seen.withLock { $0 }
        // The DLQ is partitioned by the original key: in the order they were read from orders.v1.
        let dead = records("dlq.v1", seen).sorted {
            Int($0.headers.first(named: "dlq.source.offset") ?? "") ?? 0
                < Int($1.headers.first(named: "dlq.source.offset") ?? "") ?? 0
        }
        #expect(dead.allSatisfy { $0.headers.first(named: "dlq.error.class") == "key-mismatch" })
        #expect(dead.allSatisfy { $0.headers.first(named: "dlq.source.topic") == prefix + "orders.v1" })
        // The keys as they came: null, the three bytes, the other order's.
        #expect(dead.map(\.key) == [nil, Data([0xff, 0xfe, 0x4d]), Data("M-9".utf8), nil])
        #expect(dead[0].headers.first(named: "dlq.error.message")?.contains("no key") == true)
        #expect(dead[1].headers.first(named: "dlq.error.message")?.contains("hex fffe4d") == true)
        #expect(dead[2].headers.first(named: "dlq.error.message")?.contains("\"M-1\"") == true)
        #expect(String(decoding: dead[0].value, as: UTF8.self) == moved)

        // The first version stays Maria's; her second order waits for the next day.
        let first = try #require(decisions("M-1", seen).first)
        let mariaKey = try #require(first["consigneeKey"] as? String)
        #expect(first["entryType"] as? String == "T86" && first["status"] as? String == "released")
        #expect(decisions("M-2", seen).first?["status"] as? String == "held")
        #expect(decisions("M-3", seen).first?["consigneeKey"] as? String != mariaKey)
        let m4 = try #require(
            records("orders.exceptions.v1", seen).map(\.json).first { $0["orderId"] as? String == "M-4" })
        #expect(m4["code"] as? String == "invalid-catalog-record")
        #expect((m4["detail"] as? String)?.contains("is for SKU \"SKU-Y\"") == true)

        // Sent again under its key, the update moves the order: withdrawn from Maria, Jose's now.
        try await fleet.enricher.publish("orders.v1", rawKeys: [(Data("M-1".utf8), moved)], partition: 0)
        try await watch.wait("the update applied", limit: .seconds(45)) { seen in
            decisions("M-1", seen).contains {
                $0["status"] as? String == "released" && $0["consigneeKey"] as? String != mariaKey
            }
        }
        for (group, task) in running {
            await group.triggerGracefulShutdown()
            try await task.value
        }
        await watch.stop()
        seen = watch.seen.withLock { $0 }
        let m1 = decisions("M-1", seen)
        #expect(m1.contains { $0["consigneeKey"] as? String == mariaKey && $0["status"] as? String == "cancelled" })
        // No consignee's Type 86 total for a day passes $800 at any point.
        #expect(Self.largestT86DayTotal(records("shipments.cleared.v1", seen).map(\.json)) <= 800)
        #expect(
            try Schemas.problems(records("shipments.cleared.v1", seen).map(\.value), against: "shipments.cleared.v1")
                == [])
    }

    /// The largest running Type 86 total of a consignee's day, replaying the decisions in order
    /// (a later record of a shipment replaces its earlier one).
    static func largestT86DayTotal(_ decisions: [[String: Any]]) -> Decimal {
        var released: [String: [String: Decimal]] = [:]
        var largest: Decimal = 0
        for decision in decisions {
            guard let consignee = decision["consigneeKey"] as? String, let day = decision["day"] as? String,
                let id = decision["shipmentId"] as? String ?? decision["orderId"] as? String
            else { continue }
            for window in released.keys { released[window]?[id] = nil }
            let window = "\(consignee)/\(day)"
            if decision["status"] as? String == "released", decision["entryType"] as? String == "T86",
                let value = (decision["valueUSD"] as? String).flatMap({ Decimal(string: $0) })
            {
                released[window, default: [:]][id] = value
            }
            largest = max(largest, released[window, default: [:]].values.reduce(0, +))
        }
        return largest
    }

    /// An order whose enriched record would pass the record limit, and a hand-made enriched order
    /// whose screened record would: each input goes to the DLQ (`output-too-large`, with what to
    /// do), none of its outputs is written, and the orders behind it go on. An order over the
    /// enricher's line limit is refused on arrival (`too-many-lines`); one at the limit, with
    /// every line flagged, goes through every stage at the default record limit.
    @Test func outputsThatCanNeverBeWrittenSetTheirInputAsideAndThePartitionGoesOn() async throws {
        let fleet = try Fleet(maximumLines: 20_000)
        try await fleet.prepare()
        let bigLines = (0..<4_000).map { _ in ("SKU-A", 1, "1.00") }
        let maximumLines = EnricherHandler.defaultMaximumLines
        let fullLines = (0..<maximumLines).map { _ in ("SKU-C", 1, "1.00") }
        try await fleet.enricher.publish(
            "orders.v1",
            [
                ("BIG", orderJSON("BIG", currency: "USD", lines: bigLines)),
                ("FULL", orderJSON("FULL", currency: "USD", lines: fullLines)),
                ("AFTER", orderJSON("AFTER", currency: "USD", lines: [("SKU-A", 1, "3.00")])),
            ], partition: 0)
        // Straight to the pga-router: an enriched order that fits, whose screened record does not.
        let flagged = TestLine(sku: "COFFEE", hts: "0901.21.0020", origin: "CN", adcvd: "A-570-001")
        let screenedTooLarge = enrichedJSON("WIDE", lines: Array(repeating: flagged, count: 2_500))
        #expect(screenedTooLarge.utf8.count < 900_000)
        try await fleet.router.publishEnriched([
            ("WIDE", screenedTooLarge), ("NARROW", enrichedJSON("NARROW", lines: [flagged])),
        ])
        let watch = try await fleet.enricher.watch([
            "orders.enriched.v1", "orders.screened.v1", "shipments.cleared.v1", "dlq.v1",
        ])
        let running = [fleet.enricher, fleet.router].map { $0.start() }
        let prefix = fleet.enricher.prefix
        @Sendable func records(_ topic: String, _ seen: ConsumerProbe.Seen) -> [ConsumerRecord] {
            seen.records.filter { $0.topic == prefix + topic }
        }
        @Sendable func ids(_ topic: String, _ seen: ConsumerProbe.Seen) -> Set<String> {
            Set(records(topic, seen).compactMap { $0.json["orderId"] as? String })
        }
        try await watch.wait("the orders behind the oversized ones handled", limit: .seconds(90)) { seen in
            ids("orders.screened.v1", seen).isSuperset(of: ["AFTER", "FULL", "NARROW"])
                && records("dlq.v1", seen).count == 2
        }
        for (group, task) in running {
            await group.triggerGracefulShutdown()
            try await task.value
        }
        await watch.stop()
        let seen = watch.seen.withLock { $0 }
        let dead = records("dlq.v1", seen)
        #expect(dead.map { $0.headers.first(named: "dlq.error.class") } == ["output-too-large", "output-too-large"])
        #expect(Set(dead.compactMap(\.keyString)) == ["BIG", String(repeating: "a", count: 32)])
        let message = dead.first { $0.keyString == "BIG" }?.headers.first(named: "dlq.error.message") ?? ""
        #expect(message.contains("orders.enriched.v1") && message.contains("1000000-byte limit"))
        #expect(message.contains("fewer lines"))
        #expect(!ids("orders.enriched.v1", seen).contains("BIG") && !ids("orders.screened.v1", seen).contains("WIDE"))
        // At the line limit, every line flagged: it fits every stage's record at the default limit.
        let full = try #require(records("orders.screened.v1", seen).first { $0.json["orderId"] as? String == "FULL" })
        #expect(full.value.count < 1_000_000 / 2)
    }

    /// The aggregator's decision embeds the screened shipment: a screened record just under the
    /// record limit makes a decision over it. The record goes to the DLQ (none of its outputs is
    /// written, its value not counted for the day) and the next shipment is decided.
    @Test func aDecisionThatWouldPassTheRecordLimitSetsItsShipmentAside() async throws {
        let deployment = try await WorkerDeployment.aggregator()
        let consignee = key(42)
        // 998,800 bytes: under the limit as input, over it with the decision's own fields. No
        // field may hold more than 32 KB of text, so the bulk is reasons of 30,000 characters
        // each (the decision embeds them), the rest in `references`.
        let target = 998_800
        let plain = screenedJSON("HUGE", consignee: consignee, value: "10.00", arrival: "2025-06-10")
        let reason = #",{"rule":"padding","text":"\#(String(repeating: "r", count: 30_000))"}"#
        let reasons = String(repeating: reason, count: (target - plain.utf8.count - 1_000) / reason.utf8.count)
        let withReasons = plain.replacingOccurrences(of: #""text":"test"}]"#, with: #""text":"test"}\#(reasons)]"#)
        let rest = target - withReasons.utf8.count + "test".count
        #expect(rest > 0 && rest <= DuplicateKeys.maximumTextBytes)
        let padded = withReasons.replacingOccurrences(
            of: #""references":"test""#, with: #""references":"\#(String(repeating: "r", count: rest))""#)
        #expect(padded.utf8.count == target)
        try await deployment.publish(
            "orders.screened.v1",
            [
                (consignee, padded),
                (consignee, screenedJSON("SMALL", consignee: consignee, value: "20.00", arrival: "2025-06-10")),
            ], partition: 0)
        let watch = try await deployment.watch(["shipments.cleared.v1", "released.by-address.v1", "dlq.v1"])
        let (group, task) = deployment.start()
        @Sendable func records(_ topic: String, _ seen: ConsumerProbe.Seen) -> [ConsumerRecord] {
            seen.records.filter { $0.topic == deployment.topic(topic) }
        }
        try await watch.wait("SMALL decided", limit: .seconds(60)) { seen in
            records("shipments.cleared.v1", seen).contains { $0.json["orderId"] as? String == "SMALL" }
        }
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()
        let seen = watch.seen.withLock { $0 }
        let dead = records("dlq.v1", seen)
        #expect(dead.map { $0.headers.first(named: "dlq.error.class") } == ["output-too-large"])
        #expect(dead.first?.keyString == consignee)
        #expect(dead.first?.headers.first(named: "dlq.error.message")?.contains("shipments.cleared.v1") == true)
        let decided = records("shipments.cleared.v1", seen).map(\.json)
        #expect(decided.map { $0["orderId"] as? String } == ["SMALL"])
        #expect(decided.first?["dayTotalUSD"] as? String == "20.00", "the set-aside shipment counts for nothing")
        #expect(records("released.by-address.v1", seen).count == 1)
    }

    /// A record whose state change could never reach the changelog (here an order parked whole,
    /// with a 25 kB ERP reference, under a 20 kB record limit) goes to the DLQ
    /// (`state-too-large`), its state untouched, and the next order is parked as usual. The DLQ
    /// record, over the limit too, carries its headers and where the value is, not the value.
    @Test func aStateValueTooLargeForTheChangelogSetsItsInputAside() async throws {
        var deployment = WorkerDeployment.enricher()
        deployment.kafkaProperties = ["message.max.bytes": "20000"]
        try await deployment.createTopics()
        let huge = orderJSON("S-1", currency: "USD", lines: [("SKU-NONE", 1, "5.00")]).replacingOccurrences(
            of: #""recordId":"SO-S-1""#, with: #""recordId":"\#(String(repeating: "x", count: 25_000))""#)
        try await deployment.publish(
            "orders.v1",
            [("S-1", huge), ("S-2", orderJSON("S-2", currency: "USD", lines: [("SKU-NONE", 1, "5.00")]))],
            partition: 0)
        let watch = try await deployment.watch(["orders.exceptions.v1", "dlq.v1"])
        let (group, task) = deployment.start()
        try await watch.wait("S-2 parked", limit: .seconds(60)) { seen in
            seen.records.contains { $0.json["orderId"] as? String == "S-2" }
        }
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()
        let seen = watch.seen.withLock { $0 }
        let dead = seen.records.filter { $0.topic == deployment.topic("dlq.v1") }
        #expect(dead.map(\.keyString) == ["S-1"])
        #expect(dead.first?.headers.first(named: "dlq.error.class") == "state-too-large")
        // Over the limit itself, the DLQ record says where the bytes are instead of copying them.
        #expect(dead.first?.headers.first(named: "dlq.value.omitted")?.contains("offset 0") == true)
        let exceptions = seen.records.filter { $0.topic == deployment.topic("orders.exceptions.v1") }.map(\.json)
        #expect(exceptions.map { $0["orderId"] as? String } == ["S-2"])
        let state = try StateInspector.snapshot(directory: deployment.stateDirectory, partition: 0)
        #expect(state.entries["order/S-1"] == nil && state.entries["order/S-2"] != nil)
    }

    /// Over the line limit: an exception on arrival that says what to do, and an earlier version
    /// of the order withdrawn.
    @Test func anOrderOverTheLineLimitIsRefusedOnArrival() async throws {
        let deployment = WorkerDeployment(
            EnricherHandler.definition(
                warehouses: try WarehouseDirectory.shipped(),
                secret: try ConsigneeKeySecret(text: WorkerDeployment.consigneeSecret), maximumLines: 3))
        try await deployment.createTopics()
        try await deployment.publish("catalog.v1", [("SKU-A", catalogJSON("SKU-A"))])
        try await deployment.publish(
            "orders.v1",
            [
                ("L-1", orderJSON("L-1", currency: "USD", lines: [("SKU-A", 1, "10.00")])),
                (
                    "L-1",
                    orderJSON(
                        "L-1", type: "updated", version: 2, currency: "USD",
                        lines: Array(repeating: ("SKU-A", 1, "10.00"), count: 4))
                ),
            ])
        let watch = try await deployment.watch(["orders.enriched.v1", "orders.exceptions.v1"])
        let (group, task) = deployment.start()
        try await watch.wait("the update refused", limit: .seconds(60)) { seen in
            seen.records.contains { $0.topic == deployment.topic("orders.exceptions.v1") }
                && seen.records.filter { $0.topic == deployment.topic("orders.enriched.v1") }.count == 2
        }
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()
        let seen = watch.seen.withLock { $0 }
        let exception = try #require(
            seen.records.first { $0.topic == deployment.topic("orders.exceptions.v1") }?.json)
        #expect(exception["code"] as? String == "too-many-lines" && exception["status"] as? String == "rejected")
        #expect((exception["fix"] as? String)?.contains("at most 3 lines") == true)
        let written = seen.records.filter { $0.topic.hasSuffix("orders.exceptions.v1") }.map(\.value)
        #expect(try Schemas.problems(written, against: "orders.exceptions.v1") == [])
        let enriched = seen.records.filter { $0.topic == deployment.topic("orders.enriched.v1") }.map(\.json)
        #expect(enriched.map { $0["type"] as? String } == ["placed", "cancelled"])
    }
}
