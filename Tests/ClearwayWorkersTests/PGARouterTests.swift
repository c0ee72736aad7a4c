import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import ServiceLifecycle
import Testing

/// A line of a hand-made enriched order.
struct TestLine {
    var sku: String
    var hts: String
    var origin = "MX"
    var flags: [String]? = nil
    var disclaimers: [String: String]? = nil
    var adcvd: String? = nil
}

/// An `orders.enriched.v1` record as the enricher writes it.
func enrichedJSON(_ id: String, arrival: String = "2025-06-10", lines: [TestLine]) -> String {
    let key = String(repeating: "a", count: 32)
    let object: [String: Any] = [
        "orderId": id, "type": "placed", "version": 1, "consigneeKey": key,
        "addressKey": String(repeating: "b", count: 32),
        "consignee": [
            "name": "Ana Diaz", "line1": "500 Harbor Dr", "city": "San Diego", "region": "CA", "postalCode": "92101",
            "country": "US",
        ],
        "shipDate": arrival, "arrivalDay": arrival, "warehouse": "TIJ1",
        "portOfEntry": ["code": "2506", "name": "Otay Mesa, CA", "timeZone": "America/Los_Angeles"],
        "currency": "USD", "orderValue": "\(lines.count * 20).00", "valueUSD": "\(lines.count * 20).00",
        "lines": lines.enumerated().map { index, line in
            var object: [String: Any] = [
                "lineNumber": index + 1, "sku": line.sku, "quantity": 1, "unitPrice": "20.00", "valueUSD": "20.00",
                "hts": line.hts, "originCountry": line.origin, "mid": "MXCONDEL4558TIJ", "midSource": "built",
            ]
            if let flags = line.flags { object["pgaFlags"] = flags }
            if let disclaimers = line.disclaimers { object["pgaDisclaimers"] = disclaimers }
            if let adcvd = line.adcvd { object["adcvdCase"] = adcvd }
            return object
        },
        "reasons": [["rule": "value.fair-retail", "text": "test"]],
    ]
    return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}

extension WorkerDeployment {
    /// The pga-router over these sources, its topics created.
    static func router(_ references: ScreeningReferences) async throws -> WorkerDeployment {
        let deployment = WorkerDeployment(PGARouterHandler.definition(references: references))
        try await deployment.createTopics()
        return deployment
    }

    /// Enriched orders, all under one consignee key.
    func publishEnriched(_ records: [(String, String)]) async throws {
        try await publish(
            "orders.enriched.v1", records.map { (key: String(repeating: "a", count: 32), value: $0.1) })
    }
}

@Sendable func shipments(_ seen: ConsumerProbe.Seen, prefix: String) -> [String: [String: Any]] {
    var result: [String: [String: Any]] = [:]
    for record in seen.records where record.topic == prefix + "orders.screened.v1" {
        let object = record.json
        if let id = object["shipmentId"] as? String { result[id] = object }
    }
    return result
}

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct PGARouterTests {
    // Flagged by its SKU for APHIS (agricultural fees: off Type 86 even with the agency's data,
    // CBP's Type 86 FAQ); an FDA flag alone no longer keeps goods off Type 86 from 2019-09-28.
    let coffee = TestLine(sku: "COFFEE", hts: "0901.21.0020", flags: ["AQ2"])
    let tee = TestLine(sku: "TEE", hts: "6109.10.0012")

    func lanes(_ shipment: [String: Any]?) -> [String] { shipment?["allowedLanes"] as? [String] ?? [] }

    @Test func regulatedExcludedAndMixedOrdersTakeTheirLanesWholeOrSplit() async throws {
        let whole = try await WorkerDeployment.router(
            ScreeningReferences(sources: ScreeningSources(), logger: Broker.logger))
        let split = try await WorkerDeployment.router(
            ScreeningReferences(sources: ScreeningSources(mixedOrders: .split), logger: Broker.logger))
        let orders: [(String, String)] = [
            ("FOOD", enrichedJSON("FOOD", lines: [coffee])),
            (
                "COSMETIC",
                enrichedJSON(
                    "COSMETIC", lines: [TestLine(sku: "CREAM", hts: "3304.99.5000", disclaimers: ["FD1": "A"])])
            ),
            ("CHINA", enrichedJSON("CHINA", lines: [TestLine(sku: "TEE-CN", hts: "6109.10.0012", origin: "CN")])),
            (
                "CHINA-EARLY",
                enrichedJSON(
                    "CHINA-EARLY", arrival: "2025-04-30",
                    lines: [TestLine(sku: "TEE-CN", hts: "6109.10.0012", origin: "CN")])
            ),
            ("ADCVD", enrichedJSON("ADCVD", lines: [TestLine(sku: "PIPE", hts: "6109.10.0012", adcvd: "A-201-805")])),
            ("MIXED", enrichedJSON("MIXED", lines: [coffee, tee])),
            ("UNKNOWN", enrichedJSON("UNKNOWN", lines: [TestLine(sku: "PHONE", hts: "8517.62.0090")])),
            ("TODAY", enrichedJSON("TODAY", arrival: "2026-11-20", lines: [tee])),
        ]
        for deployment in [whole, split] { try await deployment.publishEnriched(orders) }
        let outputs = ["orders.screened.v1", "orders.exceptions.v1"]
        let watches = [try await whole.watch(outputs), try await split.watch(outputs)]
        let (wholeGroup, wholeTask) = whole.start()
        let (splitGroup, splitTask) = split.start()
        for (deployment, watch) in zip([whole, split], watches) {
            try await watch.wait("every order screened", limit: .seconds(60)) { seen in
                seen.records.count >= (deployment.prefix == whole.prefix ? 8 : 9)
            }
        }
        for (group, task) in [(wholeGroup, wholeTask), (splitGroup, splitTask)] {
            await group.triggerGracefulShutdown()
            try await task.value
        }
        for watch in watches { await watch.stop() }

        let routed = shipments(watches[0].seen.withLock { $0 }, prefix: whole.prefix)
        // A fee-collecting agency's flag → off the de minimis lane; a disclaimed FDA flag stays on it.
        #expect(lanes(routed["FOOD"]) == ["T11", "T01"])
        #expect(lanes(routed["COSMETIC"]) == ["T86", "T11", "T01"])
        let cosmeticFlags =
            (routed["COSMETIC"]?["screening"] as? [[String: Any]])?.first?["pgaFlags"] as? [[String: Any]]
        #expect(cosmeticFlags?.first?["disclaimer"] as? String == "A")
        // China origin after 2025-05-02 is excluded (EO 14256); before, it was not.
        #expect(lanes(routed["CHINA"]) == ["T11", "T01"])
        #expect(lanes(routed["CHINA-EARLY"]) == ["T86", "T11", "T01"])
        #expect(lanes(routed["ADCVD"]).contains("T86") == false)
        // Route-whole: the mixed order is one shipment on the stricter path.
        #expect(lanes(routed["MIXED"]) == ["T11", "T01"])
        #expect(routed["MIXED/1"] == nil)
        // Under the suspension (from 2025-08-29) there is no de minimis lane at all.
        #expect(lanes(routed["TODAY"]) == ["T11", "T01"])
        #expect((routed["TODAY"]?["policy"] as? [String: Any])?["regime"] as? String == "noDeMinimis")
        // An HTS number missing from the reference is an exception, never "unflagged".
        let exceptions = watches[0].seen.withLock { $0 }.records.filter {
            $0.topic == whole.topic("orders.exceptions.v1")
        }
        #expect(exceptions.map { $0.json["code"] as? String } == ["hts-not-in-reference"])
        #expect(routed["UNKNOWN"] == nil)

        // Split: two shipments with derived ids, each with its own lanes and lines.
        let divided = shipments(watches[1].seen.withLock { $0 }, prefix: split.prefix)
        #expect(lanes(divided["MIXED/1"]) == ["T86", "T11", "T01"])
        #expect(lanes(divided["MIXED/2"]) == ["T11", "T01"])
        #expect((divided["MIXED/1"]?["lines"] as? [[String: Any]])?.map { $0["sku"] as? String } == ["TEE"])
        #expect(divided["MIXED/2"]?["valueUSD"] as? String == "20.00")
        #expect(divided["MIXED"] == nil)

        for watch in watches {
            let values = watch.seen.withLock { $0 }.records.filter { $0.topic.hasSuffix("orders.screened.v1") }.map(
                \.value)
            #expect(try Schemas.problems(values, against: "orders.screened.v1") == [])
            let exceptions = watch.seen.withLock { $0 }.records.filter { $0.topic.hasSuffix("orders.exceptions.v1") }
            #expect(try Schemas.problems(exceptions.map(\.value), against: "orders.exceptions.v1") == [])
        }
    }

    @Test func aReloadedReferenceAppliesMidStreamWithoutDroppingOrRepeatingARecord() async throws {
        let directory = NSTemporaryDirectory() + "clearway-router-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let flagsFile = directory + "/pga-flags.json"
        let unflagged = #"{"source": "test", "entries": []}"#
        try Data(unflagged.utf8).write(to: URL(fileURLWithPath: flagsFile))
        let references = try ScreeningReferences(sources: ScreeningSources(pgaFlags: flagsFile), logger: Broker.logger)
        let deployment = try await WorkerDeployment.router(references)
        let watcher = Task { await references.watch(interval: .milliseconds(100)) }
        defer { watcher.cancel() }
        let watch = try await deployment.watch(["orders.screened.v1", "orders.exceptions.v1"])
        let (group, task) = deployment.start()

        try await deployment.publishEnriched((0..<50).map { ("A\($0)", enrichedJSON("A\($0)", lines: [tee])) })
        try await watch.wait("the first half", limit: .seconds(60)) { $0.records.count >= 50 }
        // The PGA table now flags chapter 61 for APHIS (for the test); the router reloads it.
        let flagged =
            #"{"source": "test", "entries": [{"htsPrefix": "6109", "flags": ["AQ2"], "effectiveFrom": "2016-01-01", "effectiveUntil": null}]}"#
        try Data(flagged.utf8).write(to: URL(fileURLWithPath: flagsFile))
        try await within(.seconds(10), "the reload") {
            while references.reloadCount < 1 { try await Task.sleep(for: .milliseconds(50)) }
        }
        try await deployment.publishEnriched((0..<50).map { ("B\($0)", enrichedJSON("B\($0)", lines: [tee])) })
        try await watch.wait("the second half", limit: .seconds(60)) { $0.records.count >= 100 }
        try await Task.sleep(for: .milliseconds(500))  // anything extra would show now
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()

        let seen = watch.seen.withLock { $0 }
        let routed = shipments(seen, prefix: deployment.prefix)
        #expect(seen.records.count == 100)
        #expect(routed.count == 100)
        #expect((0..<50).allSatisfy { lanes(routed["A\($0)"]) == ["T86", "T11", "T01"] })
        #expect((0..<50).allSatisfy { lanes(routed["B\($0)"]) == ["T11", "T01"] })
        #expect(Set(routed.values.compactMap { $0["references"] as? String }).count == 2)
    }
}
