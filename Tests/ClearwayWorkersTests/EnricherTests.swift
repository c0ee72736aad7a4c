import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import ServiceLifecycle
import Testing

func catalogJSON(
    _ sku: String, hts: String? = "6109.10.0012", origin: String? = "MX", mid: String? = nil,
    manufacturer: Bool = true
) -> String {
    var object: [String: Any] = ["sku": sku, "description": "Cotton T-shirt \(sku)"]
    if let hts { object["hts"] = hts }
    if let origin { object["originCountry"] = origin }
    if let mid { object["mid"] = mid }
    if manufacturer {
        object["manufacturer"] = [
            "name": "Confecciones del Norte SA", "street": "Blvd Agua Caliente 4558", "city": "Tijuana",
            "country": "MX",
        ]
    }
    return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}

func orderJSON(
    _ id: String, type: String = "placed", version: Int = 1, currency: String = "MXN", shipDate: String = "2026-11-20",
    lines: [(String, Int, String)], name: String = "Maria Lopez", street: String = "12 Oak Street Apt 4"
) -> String {
    let object: [String: Any] = [
        "orderId": id, "type": type, "version": version, "currency": currency, "shipDate": shipDate,
        "warehouse": "TIJ1", "carrier": "estafeta",
        "consignee": [
            "name": name, "line1": street, "city": "San Diego", "region": "CA", "postalCode": "92101-1234",
            "country": "US",
        ],
        "lines": lines.map { ["sku": $0.0, "quantity": $0.1, "unitPrice": $0.2] },
        "erp": ["system": "netsuite", "recordId": "SO-\(id)"],
    ]
    return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct EnricherTests {
    @Test func enrichesParksRedrivesAndPassesCancellationsOn() async throws {
        let deployment = WorkerDeployment.enricher()
        try await deployment.createTopics()
        // Reference data before the worker starts: it loads the tables before the first order.
        try await deployment.publish(
            "catalog.v1",
            [
                ("SKU-A", catalogJSON("SKU-A")),
                ("SKU-B", catalogJSON("SKU-B", hts: "6110.20.2079", mid: "MXCONNOR4558TIJ", manufacturer: false)),
                ("SKU-FIX", catalogJSON("SKU-FIX", hts: nil)),
                ("SKU-OLD", catalogJSON("SKU-OLD")),
                ("SKU-OLD", nil),
            ])
        try await deployment.publish(
            "fx-rates.v1",
            [
                ("MXN@2026-Q4", #"{"currency":"MXN","date":"2026-10-01","usdPerUnit":"0.0540","kind":"quarterly"}"#),
                ("MXN@2026-11-20", #"{"currency":"MXN","date":"2026-11-20","usdPerUnit":"0.0550","kind":"daily"}"#),
            ])
        let o1 = orderJSON("O-1", lines: [("SKU-A", 2, "500.00"), ("SKU-B", 1, "250.00")])
        try await deployment.publish(
            "orders.v1",
            [
                ("O-1", o1),
                ("O-2", orderJSON("O-2", lines: [("SKU-A", 1, "100.00"), ("SKU-FIX", 3, "80.00")])),
                ("O-1", o1),  // the same input delivered twice
                ("O-4", orderJSON("O-4", lines: [("SKU-OLD", 1, "100.00")])),
                ("O-5", orderJSON("O-5", lines: [("SKU-A", 1, "300.00")])),
                ("O-5", #"{"orderId":"O-5","type":"cancelled","version":2}"#),
                ("O-6", "this is not JSON"),
                ("O-7", orderJSON("O-7", currency: "CAD", lines: [("SKU-A", 1, "40.00")])),
                ("O-8", orderJSON("O-8", lines: [("SKU-A", 0, "10.00"), ("SKU-B", 1, "-5.00")])),
                ("O-9", orderJSON("O-9", lines: [("SKU-B", 1, "99.90")], name: "Jose Ruiz")),
            ])
        let watch = try await deployment.watch(["orders.enriched.v1", "orders.exceptions.v1", "dlq.v1"])
        let (group, task) = deployment.start()

        @Sendable func records(_ topic: String, _ seen: ConsumerProbe.Seen) -> [ConsumerRecord] {
            seen.records.filter { $0.topic == deployment.topic(topic) }
        }
        @Sendable func enriched(_ id: String, _ seen: ConsumerProbe.Seen) -> [ConsumerRecord] {
            records("orders.enriched.v1", seen).filter { $0.json["orderId"] as? String == id }
        }
        @Sendable func exceptions(_ id: String, _ seen: ConsumerProbe.Seen) -> [ConsumerRecord] {
            records("orders.exceptions.v1", seen).filter { $0.json["orderId"] as? String == id }
        }
        do {
            try await watch.wait("the first wave", limit: .seconds(60)) { seen in
                enriched("O-9", seen).count == 1 && exceptions("O-8", seen).count == 1
                    && records("dlq.v1", seen).count == 1 && enriched("O-5", seen).count == 2
            }
        } catch {
            let seen = watch.seen.withLock { $0 }
            Issue.record(
                "seen: \(seen.records.map { "\($0.topic) \(String(decoding: $0.value.prefix(60), as: UTF8.self))" })")
            throw error
        }
        var seen = watch.seen.withLock { $0 }

        // O-1: converted at the MXN quarterly rate (the daily rate is within 5%, 19 CFR 159.34).
        let first = try #require(enriched("O-1", seen).first)
        #expect(enriched("O-1", seen).count == 1)
        let order = first.json
        #expect(order["valueUSD"] as? String == "67.50")  // 1,250.00 MXN × 0.0540
        #expect(order["orderValue"] as? String == "1250.00")
        #expect((order["fx"] as? [String: Any])?["basis"] as? String == "quarterly")
        #expect(order["arrivalDay"] as? String == "2026-11-20")
        #expect((order["portOfEntry"] as? [String: Any])?["code"] as? String == "2506")
        let lines = try #require(order["lines"] as? [[String: Any]])
        #expect(lines.map { $0["valueUSD"] as? String } == ["54.00", "13.50"])
        #expect(lines.map { $0["hts"] as? String } == ["6109.10.0012", "6110.20.2079"])
        #expect(lines.map { $0["midSource"] as? String } == ["built", "catalog"])
        // 19 CFR 102 Appendix: CON(fecciones) DEL (only a, an, and, of, the are skipped), 4558, TIJ(uana).
        #expect(lines[0]["mid"] as? String == "MXCONDEL4558TIJ")
        #expect(first.keyString == order["consigneeKey"] as? String)
        #expect(
            (order["reasons"] as? [[String: Any]])?.contains { ($0["text"] as? String)?.contains("159.34") == true }
                == true)

        // Gaps: each goes to exceptions with what would fix it, and the order is parked.
        let o2 = try #require(exceptions("O-2", seen).first?.json)
        #expect(o2["code"] as? String == "missing-hts")
        #expect(o2["status"] as? String == "parked")
        #expect((o2["fix"] as? String)?.contains("catalog.v1") == true)
        #expect(exceptions("O-4", seen).first?.json["code"] as? String == "unknown-sku")
        #expect(exceptions("O-7", seen).first?.json["code"] as? String == "missing-fx-rate")
        let o8 = try #require(exceptions("O-8", seen).first?.json["problems"] as? [[String: Any]])
        #expect(Set(o8.compactMap { $0["code"] as? String }) == ["non-positive-quantity", "non-positive-price"])
        #expect(enriched("O-2", seen).isEmpty && enriched("O-4", seen).isEmpty && enriched("O-7", seen).isEmpty)

        // The cancellation flows on under the same consignee key.
        let o5 = enriched("O-5", seen).map(\.json)
        #expect(o5.map { $0["type"] as? String } == ["placed", "cancelled"])
        #expect(o5[0]["consigneeKey"] as? String == o5[1]["consigneeKey"] as? String)

        // The malformed record is in the DLQ with its bytes and why; O-7 … O-9 after it went on.
        let dead = try #require(records("dlq.v1", seen).first)
        #expect(String(decoding: dead.value, as: UTF8.self) == "this is not JSON")
        #expect(dead.headers.first(named: "dlq.error.class") == "schema-invalid")

        // Fixing the catalog record re-drives O-2; a CAD rate re-drives O-7.
        try await deployment.publish("catalog.v1", [("SKU-FIX", catalogJSON("SKU-FIX", hts: "6109.10.0040"))])
        try await deployment.publish(
            "fx-rates.v1",
            [("CAD@2026-Q4", #"{"currency":"CAD","date":"2026-10-01","usdPerUnit":"0.7150","kind":"quarterly"}"#)])
        try await watch.wait("O-2 and O-7 re-driven", limit: .seconds(30)) { seen in
            enriched("O-2", seen).count == 1 && enriched("O-7", seen).count == 1
        }
        seen = watch.seen.withLock { $0 }
        let o2Lines = try #require(enriched("O-2", seen).first?.json["lines"] as? [[String: Any]])
        #expect(o2Lines.map { $0["hts"] as? String } == ["6109.10.0012", "6109.10.0040"])
        #expect(enriched("O-7", seen).first?.json["valueUSD"] as? String == "28.60")  // 40 CAD × 0.7150

        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()

        // Every record the worker wrote matches its schema.
        seen = watch.seen.withLock { $0 }
        for (topic, schema) in [
            ("orders.enriched.v1", "orders.enriched.v1"), ("orders.exceptions.v1", "orders.exceptions.v1"),
        ] {
            let values = records(topic, seen).map(\.value)
            #expect(!values.isEmpty)
            #expect(try Schemas.problems(values, against: schema) == [])
        }
        // Every output has a ce_id, and no two outputs share one.
        let ids = (records("orders.enriched.v1", seen) + records("orders.exceptions.v1", seen)).compactMap(\.ceID)
        #expect(ids.count == records("orders.enriched.v1", seen).count + records("orders.exceptions.v1", seen).count)
        #expect(Set(ids).count == ids.count)
    }

    @Test func ordersBeforeTheirCatalogRecordsAreParkedAndFixesWhileDownApplyOnRestart() async throws {
        let deployment = WorkerDeployment.enricher()
        try await deployment.createTopics()
        try await deployment.publish(
            "orders.v1",
            [
                ("P-1", orderJSON("P-1", currency: "USD", lines: [("SKU-LATE", 2, "19.99")])),
                ("P-2", orderJSON("P-2", currency: "USD", lines: [("SKU-LATER", 1, "5.00")])),
            ])
        let watch = try await deployment.watch(["orders.enriched.v1", "orders.exceptions.v1"])
        @Sendable func outputs(_ topic: String, _ id: String, _ seen: ConsumerProbe.Seen) -> [ConsumerRecord] {
            seen.records.filter { $0.topic == deployment.topic(topic) && $0.json["orderId"] as? String == id }
        }
        var (group, task) = deployment.start()
        try await watch.wait("both orders parked", limit: .seconds(60)) { seen in
            outputs("orders.exceptions.v1", "P-1", seen).count == 1
                && outputs("orders.exceptions.v1", "P-2", seen).count == 1
        }
        #expect(
            watch.seen.withLock { seen in
                outputs("orders.exceptions.v1", "P-1", seen).first?.json["code"] as? String
            } == "unknown-sku")

        // While it runs: the catalog record re-drives the parked order.
        try await deployment.publish("catalog.v1", [("SKU-LATE", catalogJSON("SKU-LATE"))])
        try await watch.wait("P-1 re-driven") { outputs("orders.enriched.v1", "P-1", $0).count == 1 }

        // While it is down: the fix waits in the topic, and the restarted enricher re-drives.
        await group.triggerGracefulShutdown()
        try await task.value
        try await deployment.publish("catalog.v1", [("SKU-LATER", catalogJSON("SKU-LATER"))])
        (group, task) = deployment.start()
        try await watch.wait("P-2 re-driven after the restart", limit: .seconds(60)) {
            outputs("orders.enriched.v1", "P-2", $0).count == 1
        }
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()
        let seen = watch.seen.withLock { $0 }
        #expect(outputs("orders.enriched.v1", "P-1", seen).count == 1)
        #expect(outputs("orders.enriched.v1", "P-1", seen).first?.json["valueUSD"] as? String == "39.98")
        let enriched = seen.records.filter { $0.topic == deployment.topic("orders.enriched.v1") }.map(\.value)
        #expect(try Schemas.problems(enriched, against: "orders.enriched.v1") == [])
        // Nothing of the parked state is left behind.
        let state = try (0..<Topics.orders.partitions).map {
            try StateInspector.snapshot(directory: deployment.stateDirectory, partition: $0)
        }
        #expect(state.flatMap(\.entries.keys).filter { $0.hasPrefix("parked/") || $0.hasPrefix("wait/") } == [])
        #expect(state.flatMap(\.entries.keys).filter { $0.hasPrefix("order/") }.count == 2)
        // Settled orders are forgotten after the retention (30 days by default).
        #expect(Set(state.flatMap(\.timers.keys)) == ["forget/P-1", "forget/P-2"])
    }

    @Test func schemaCheckCatchesAnInvalidRecord() throws {
        // The validator the tests rely on does fail: a record missing its keys and with a bad HTS.
        let bad = Data(
            #"{"orderId":"X","type":"placed","version":1,"reasons":[],"lines":[{"hts":"6109"}]}"#.utf8)
        let problems = try Schemas.problems([bad], against: "orders.enriched.v1")
        #expect(problems.contains { $0.contains("consigneeKey") })
        #expect(problems.count >= 3)
    }
}
