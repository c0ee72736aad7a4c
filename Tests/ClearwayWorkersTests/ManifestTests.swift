import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import Testing

/// A screened shipment for the manifest tests: one line, its data complete unless a test
/// takes an element away.
func manifestShipment(
    _ id: String, consignee: Int, value: String, lane: EntryType = .t11, description: String? = "Men's cotton T-shirt",
    mid: String = "MXCONDEL4558TIJ", adcvd: String? = nil, flag: (code: String, required: Bool)? = nil,
    pgaData: [String: String]? = nil, required: EntryType? = nil, carrier: String = "dhl",
    arrival: String = "2026-11-20"
) throws -> ManifestShipment {
    var line: [String: Any] = [
        "lineNumber": 1, "sku": "TEE-\(id)", "quantity": 2, "unitPrice": value, "valueUSD": value,
        "hts": "6109.10.0012", "originCountry": "MX", "mid": mid, "midSource": "built",
    ]
    if let description { line["description"] = description }
    if let adcvd { line["adcvdCase"] = adcvd }
    if let pgaData { line["pgaData"] = pgaData }
    var object: [String: Any] = [
        "orderId": id, "shipmentId": id, "type": "placed", "version": 1, "consigneeKey": key(consignee),
        "addressKey": key(consignee),
        "consignee": [
            "name": "Ana Diaz \(consignee)", "line1": "500 Harbor Dr", "city": "San Diego", "region": "CA",
            "postalCode": "92101", "country": "US",
        ],
        "shipDate": arrival, "arrivalDay": arrival, "warehouse": "TIJ1", "carrier": carrier,
        "portOfEntry": ["code": "2506", "name": "Otay Mesa, CA", "timeZone": "America/Los_Angeles"],
        "currency": "MXN", "orderValue": value, "valueUSD": value, "lines": [line],
        "erp": ["system": "netsuite", "recordId": "SO-\(id)"],
        "reasons": [["rule": "value.fair-retail", "text": "test"]],
        "allowedLanes": [lane.rawValue],
        "screening": [
            [
                "lineNumber": 1, "sku": "TEE-\(id)", "hts": "6109.10.0012",
                "pgaFlags": flag.map {
                    [["flag": $0.code, "agency": "FDA", "dataRequired": $0.required, "excludesDeMinimis": false]]
                }
                    ?? [] as [Any],
                "deMinimisExclusions": [] as [Any], "section301": [] as [Any], "section232": [] as [Any],
            ]
        ],
        "policy": ["id": "test", "version": "test", "regime": "noDeMinimis"], "references": "test",
    ]
    if let required { object["requiredLane"] = required.rawValue }
    let data = try JSONSerialization.data(withJSONObject: object)
    return ManifestShipment(shipment: try JSONDecoder().decode(ScreenedOrder.self, from: data), lane: lane)
}

struct ManifestPlanTests {
    let conveyance = Conveyance(carrier: "dhl", trip: "TIJ1", port: "2506", arrivalDay: "2026-11-20")
    var policy: Policy { get throws { try PolicyTimeline.shipped().policy(on: Day("2026-11-20")) } }

    @Test func oneEntryPerConsigneePerConveyanceTypedWhenTheManifestCloses() throws {
        let shipments = [
            try manifestShipment("A", consignee: 1, value: "300.00", lane: .t86),
            try manifestShipment("B", consignee: 1, value: "400.00", lane: .t86),
            try manifestShipment("C", consignee: 2, value: "1000.00"),
            try manifestShipment("D", consignee: 2, value: "1000.00"),
            try manifestShipment("E", consignee: 3, value: "2000.00"),
            try manifestShipment("F", consignee: 3, value: "1000.00"),
            try manifestShipment("G", consignee: 4, value: "100.00", adcvd: "A-201-999"),
            try manifestShipment("H", consignee: 5, value: "90.00", lane: .t01, required: .t01),
        ]
        let id = ManifestPlan.manifestId(conveyance, sequence: 1)
        let plan = ManifestPlan.entries(
            manifestId: id, conveyance: conveyance, shipments: shipments, policy: try policy)
        #expect(plan.refused.isEmpty)
        func entry(_ shipment: String) -> ManifestEntry? { plan.entries.first { $0.shipmentIds.contains(shipment) } }
        // Type 86: one entry and one house bill per shipment, under the manifest's master bill.
        #expect(entry("A")?.entryType == .t86 && entry("A")?.shipmentIds == ["A"])
        #expect(
            entry("A")?.shipments[0].houseBill != nil
                && entry("A")?.shipments[0].houseBill != entry("B")?.shipments[0].houseBill)
        #expect(Set(plan.entries.map(\.masterBill)) == [ManifestPlan.billNumber(id)])
        // 19 CFR 141.51: a consignee's goods on one conveyance on one entry; T11 within $2,500.
        #expect(entry("C")?.entryId == entry("D")?.entryId && entry("C")?.entryType == .t11)
        #expect(entry("C")?.totalValueUSD == "2000.00" && entry("C")?.submission == .abi)
        // Over $2,500 together: one formal entry, never split into informal ones.
        #expect(entry("E")?.entryId == entry("F")?.entryId && entry("E")?.entryType == .t01)
        #expect(entry("E")?.submission == .formalRequest)
        #expect(entry("E")?.reasons.contains { $0.rule == "entry.over-ceiling" } == true)
        // AD/CVD goods: Type 03 whatever the value; screening's formal requirement: Type 01.
        #expect(entry("G")?.entryType == .t03 && entry("G")?.submission == .formalRequest)
        #expect(entry("H")?.entryType == .t01)
        #expect(plan.entries.count == 6)
        // Every element the filer needs is on the entry.
        let c = try #require(entry("C"))
        #expect(c.consignee.name == "Ana Diaz 2" && c.port == "2506" && c.carrier == "dhl" && c.trip == "TIJ1")
        #expect(c.lines.allSatisfy { $0.currency == "MXN" && $0.value == "2000.00" && $0.mid == "MXCONDEL4558TIJ" })
        #expect(c.shipments.allSatisfy { $0.erp?.system == "netsuite" })
    }

    @Test func aShipmentLackingAnElementIsRefusedAndTheRestIsFiled() throws {
        let shipments = [
            try manifestShipment("OK", consignee: 1, value: "50.00"),
            try manifestShipment("NODESC", consignee: 2, value: "50.00", description: nil),
            try manifestShipment("BADMID", consignee: 3, value: "50.00", mid: "M"),
            try manifestShipment("FDA", consignee: 4, value: "50.00", flag: ("FD4", true)),
            try manifestShipment(
                "FDADATA", consignee: 5, value: "50.00", flag: ("FD4", true), pgaData: ["FD4": "prior notice 123"]),
            try manifestShipment("FDAMAY", consignee: 6, value: "50.00", flag: ("FD1", false)),
        ]
        let plan = ManifestPlan.entries(
            manifestId: "MF-1", conveyance: conveyance, shipments: shipments, policy: try policy)
        let refused = Dictionary(uniqueKeysWithValues: plan.refused.map { ($0.shipment.shipment.shipmentId, $0.gaps) })
        #expect(refused["NODESC"]?.map(\.element) == ["description"])
        #expect(refused["BADMID"]?.map(\.element) == ["mid"])
        #expect(refused["FDA"]?.map(\.element) == ["pga.FD4"])
        #expect(refused["FDA"]?.first?.fix.contains("pgaData") == true)
        #expect(Set(plan.entries.flatMap(\.shipmentIds)) == ["OK", "FDADATA", "FDAMAY"])
        #expect(plan.entries.first { $0.shipmentIds == ["FDADATA"] }?.lines[0].pga[0].data == "prior notice 123")
        // No carrier: nothing on that conveyance can be filed.
        let unknown = Conveyance(carrier: "", trip: "TIJ1", port: "2506", arrivalDay: "2026-11-20")
        let none = ManifestPlan.entries(
            manifestId: "MF-2", conveyance: unknown, shipments: [shipments[0]], policy: try policy)
        #expect(none.entries.isEmpty && none.refused.first?.gaps.map(\.element) == ["carrier"])
    }

    @Test func idsAndBillNumbersAreDerivedNeverDrawn() {
        #expect(ManifestPlan.manifestId(conveyance, sequence: 3) == "MF-2506-20261120-DHL-TIJ1-3")
        #expect(conveyance.id == "2506/2026-11-20/dhl/TIJ1")
        let bill = ManifestPlan.billNumber("MF-2506-20261120-DHL-TIJ1-3")
        #expect(bill == ManifestPlan.billNumber("MF-2506-20261120-DHL-TIJ1-3"))
        #expect(bill.count == 15 && bill.hasPrefix("CLWY") && bill.dropFirst(4).allSatisfy(\.isNumber))
        #expect(bill != ManifestPlan.billNumber("MF-2506-20261120-DHL-TIJ1-4"))
    }
}

/// The manifest-builder and the filer-sim on the broker.
@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct FilingTests {
    @Test func manifestsCloseOnSizeAndTimeAmendAfterCloseAndEntryNumbersVerify() async throws {
        // Two days ahead: the end of the arrival day is far; size and close-after decide.
        let arrival = Day(Date(), in: TimeZone(identifier: "America/Los_Angeles")!).adding(days: 2).description
        let builder = WorkerDeployment(
            ManifestBuilderHandler.definition(
                ManifestBuilderHandler(
                    timeline: try .shipped(), ports: try .shipped(), maxEntries: 3, closeAfter: .seconds(3))))
        try await builder.createTopics()
        let filer = WorkerDeployment(
            try FilerSimHandler.definition(environment: [
                "CLEARWAY_FILER_CODE": "B76", "CLEARWAY_FILER_REJECT_RATE": "0", "CLEARWAY_FILER_EXAM_RATE": "0",
                "CLEARWAY_FILER_HOLD_RATE": "0", "CLEARWAY_FILER_DELAY_MS": "200",
            ]), prefix: builder.prefix)
        try await filer.createTopics()
        let encoder = JSONEncoder()
        func release(_ shipment: ManifestShipment, withdrawn: Bool = false) throws -> (key: String, value: String?) {
            let conveyance = Conveyance(of: shipment.shipment.order)!
            let record = ConveyanceRelease(
                conveyance: conveyance, orderId: shipment.shipment.order.orderId,
                shipmentId: shipment.shipment.shipmentId, version: 1,
                consigneeKey: shipment.shipment.order.consigneeKey,
                withdrawn: withdrawn, entryType: withdrawn ? nil : shipment.lane,
                valueUSD: shipment.shipment.order.valueUSD ?? "0.00", policyVersion: "test",
                shipment: withdrawn ? nil : shipment.shipment)
            return (conveyance.id, String(decoding: try encoder.encode(record), as: UTF8.self))
        }
        let s1 = try manifestShipment("S1", consignee: 1, value: "300.00", lane: .t86, arrival: arrival)
        let s2 = try manifestShipment("S2", consignee: 2, value: "1000.00", arrival: arrival)
        let s3 = try manifestShipment("S3", consignee: 2, value: "1000.00", arrival: arrival)
        let s4 = try manifestShipment("S4", consignee: 3, value: "200.00", lane: .t86, arrival: arrival)
        let s5 = try manifestShipment("S5", consignee: 2, value: "800.00", arrival: arrival)
        let s7 = try manifestShipment("S7", consignee: 4, value: "70.00", arrival: arrival)
        let watch = try await builder.watch(["manifests.v1", "entry-results.v1", "orders.exceptions.v1"])
        let (group, task) = builder.start()
        let (filerGroup, filerTask) = filer.start()
        // Three entries (S1; S2 + S3; S4): the manifest closes on size.
        try await builder.publish(
            "released.by-conveyance.v1", [try release(s1), try release(s2), try release(s3), try release(s4)])
        try await watch.wait("the first manifest", limit: .seconds(60)) { seen in
            seen.records.contains { $0.topic == builder.topic("manifests.v1") }
        }
        // After it closed: the consignee's later shipment re-states its entry (now over $2,500:
        // formal), S1's withdrawal cancels its house bill, and S7 opens the next manifest.
        try await builder.publish(
            "released.by-conveyance.v1", [try release(s5), try release(s1, withdrawn: true), try release(s7)])
        try await watch.wait("amendments, the second manifest and every answer", limit: .seconds(60)) { seen in
            let results = seen.records.filter { $0.topic == builder.topic("entry-results.v1") }.map(\.json)
            let released = Set(
                results.filter { $0["event"] as? String == "released" }.compactMap { $0["shipmentId"] as? String })
            return released.isSuperset(of: ["S2", "S3", "S4", "S5", "S7"])
                && results.contains { $0["shipmentId"] as? String == "S1" && $0["event"] as? String == "cancelled" }
        }
        await group.triggerGracefulShutdown()
        await filerGroup.triggerGracefulShutdown()
        try await task.value
        try await filerTask.value
        await watch.stop()

        let seen = watch.seen.withLock { $0 }
        let manifests = seen.records.filter { $0.topic == builder.topic("manifests.v1") }
        let decoded = try manifests.map { try JSONDecoder().decode(ManifestRecord.self, from: $0.value) }
        let closed = decoded.filter { $0.kind == .manifest }
        #expect(closed.map(\.closedBecause) == ["max-entries", "close-after"])
        #expect(closed.first?.entries.count == 3 && closed.first?.manifestId.hasSuffix("-1") == true)
        #expect(
            closed.last?.manifestId.hasSuffix("-2") == true && closed.last?.entries.flatMap(\.shipmentIds) == ["S7"])
        let amendments = decoded.compactMap(\.amendment)
        let replace = try #require(decoded.first { $0.amendment?.action == .replace })
        #expect(replace.entries.first?.shipmentIds.sorted() == ["S2", "S3", "S5"])
        #expect(
            replace.entries.first?.entryType == .t01, "$2,800 for one consignee on one conveyance is one formal entry")
        #expect(amendments.contains { $0.action == .cancel && $0.removedShipments.map(\.shipmentId) == ["S1"] })
        for record in manifests {
            #expect(
                record.key.map { String(decoding: $0, as: UTF8.self) }
                    == (try? JSONDecoder().decode(ManifestRecord.self, from: record.value))?.manifestId)
        }
        #expect(try Schemas.problems(manifests.map(\.value), against: "manifests.v1") == [])

        let results = seen.records.filter { $0.topic == builder.topic("entry-results.v1") }
        #expect(try Schemas.problems(results.map(\.value), against: "entry-results.v1") == [])
        let answers = try results.map { try JSONDecoder().decode(EntryResult.self, from: $0.value) }
        func number(_ shipment: String, _ event: EntryResult.Event) -> String? {
            answers.first { $0.shipmentId == shipment && $0.event == event }?.entryNumber
        }
        // Numbers: filer B76, check digits that verify, one per entry; an amendment keeps it.
        let accepted = answers.filter { $0.event == .accepted }
        #expect(Set(accepted.map(\.shipmentId)) == ["S1", "S2", "S3", "S4", "S7"])
        for answer in accepted {
            let parsed = try EntryNumber(try #require(answer.entryNumber))
            #expect(parsed.filer.text == "B76" && parsed.description == answer.entryNumber)
        }
        let byEntry = Dictionary(grouping: accepted, by: \.entryId).mapValues { Set($0.compactMap(\.entryNumber)) }
        #expect(
            byEntry.values.allSatisfy { $0.count == 1 } && Set(byEntry.values.flatMap { $0 }).count == byEntry.count)
        #expect(number("S5", .amended) == number("S2", .accepted) && number("S5", .amended) != nil)
        #expect(number("S1", .cancelled) == number("S1", .accepted))
        #expect(answers.allSatisfy { $0.erp?.recordId == "SO-\($0.shipmentId)" })
    }
}

extension FilingTests {
    /// A manifest that comes again with other contents under its id (built again differently
    /// after a crash, where the broker showed the first build too) re-states its entries under
    /// their numbers; the same manifest again changes nothing.
    @Test func theFilerReStatesAnEntryThatComesAgainWithOtherContents() async throws {
        let filer = WorkerDeployment(
            try FilerSimHandler.definition(environment: [
                "CLEARWAY_FILER_REJECT_RATE": "0", "CLEARWAY_FILER_EXAM_RATE": "0", "CLEARWAY_FILER_HOLD_RATE": "0",
                "CLEARWAY_FILER_DELAY_MS": "60000",
            ]))
        try await filer.createTopics()
        let conveyance = Conveyance(carrier: "dhl", trip: "TIJ1", port: "2506", arrivalDay: "2026-11-20")
        let policy = try PolicyTimeline.shipped().policy(on: Day("2026-11-20"))
        func manifest(_ shipments: [ManifestShipment]) throws -> (key: String, value: String?) {
            let plan = ManifestPlan.entries(
                manifestId: "MF-TEST-1", conveyance: conveyance, shipments: shipments, policy: policy)
            let record = ManifestRecord(
                kind: .manifest, manifestId: "MF-TEST-1", conveyance: conveyance,
                masterBill: ManifestPlan.billNumber("MF-TEST-1"), closedBecause: "close-after",
                policyVersion: policy.version, entries: plan.entries, amendment: nil)
            return ("MF-TEST-1", String(decoding: try JSONEncoder().encode(record), as: UTF8.self))
        }
        let first = try manifestShipment("R1", consignee: 1, value: "100.00")
        let second = try manifestShipment("R2", consignee: 1, value: "200.00")
        let watch = try await filer.watch(["entry-results.v1"])
        let (group, task) = filer.start()
        try await filer.publish(
            "manifests.v1", [try manifest([first]), try manifest([first]), try manifest([first, second])])
        try await watch.wait("the re-stated entry", limit: .seconds(60)) { seen in
            seen.records.contains { $0.json["shipmentId"] as? String == "R2" }
        }
        try await Task.sleep(for: .seconds(1))
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()
        let answers = try watch.seen.withLock { $0 }.records.map {
            try JSONDecoder().decode(EntryResult.self, from: $0.value)
        }
        .filter { $0.event != .pga }
        // (Each order's results on its own partition: compared in order per shipment.)
        #expect(
            answers.map { "\($0.shipmentId) \($0.event.rawValue)" }.sorted() == [
                "R1 accepted", "R1 amended", "R2 amended",
            ])
        #expect(Set(answers.compactMap(\.entryNumber)).count == 1)
    }
}
