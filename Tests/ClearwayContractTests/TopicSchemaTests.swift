import ClearwayContract
import ClearwayDomain
import ClearwayRuntime
import ClearwayTestSupport
import Foundation
import Testing

/// Every topic's wire type against the topic's JSON Schema in `schemas/`: a sample value encoded
/// as the workers encode it is valid, and reads back as the same value.
struct TopicSchemaTests {
    let samples: Samples

    init() throws { samples = try Samples() }

    func check<Value: Codable & Equatable>(_ topic: TopicDeclaration, _ value: Value) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        #expect(try Schemas.problems([data], against: topic.name) == [], "\(Value.self) on \(topic.name)")
        #expect(try JSONDecoder().decode(Value.self, from: data) == value)
    }

    @Test func ordersCarryOrderEvents() throws { try check(Topics.orders, samples.order) }

    @Test func catalogCarriesCatalogItems() throws { try check(Topics.catalog, samples.item) }

    @Test func fxRatesCarryExchangeRates() throws { try check(Topics.fxRates, samples.rate) }

    @Test func enrichedOrdersCarryEnrichedOrders() throws { try check(Topics.ordersEnriched, samples.enriched) }

    @Test func screenedOrdersCarryScreenedOrders() throws { try check(Topics.ordersScreened, samples.screened) }

    /// A line under Section 232, whose list entries carry their origin terms (exemptions).
    @Test func screenedOrdersCarryTariffActionsWithTheirOriginTerms() throws {
        var steel = samples.screened
        let day = try Day("2025-06-09")
        let screening = try Screener.shipped().screen(
            [ScreeningLine(sku: "COIL", hts: try HTSCode("7208.10.1500"), origin: try CountryCode("MX"))], on: day,
            policy: try PolicyTimeline.shipped().policy(on: day))
        let entries = screening.lines[0].section232
        #expect(entries.first?.exceptOrigins == ["GB"])
        steel.screening[0].section232 = entries
        try check(Topics.ordersScreened, steel)
    }

    @Test func clearedShipmentsCarryTheDailyRulesDecision() throws {
        try check(Topics.shipmentsCleared, samples.cleared)
    }

    @Test func manifestsCarryManifestRecords() throws { try check(Topics.manifests, try samples.manifest) }

    @Test func entryResultsCarryTheBrokersAnswers() throws { try check(Topics.entryResults, try samples.entryResult) }

    @Test func erpWritebackCarriesWhatWasWrittenBack() throws { try check(Topics.erpWriteback, try samples.writeback) }

    @Test func exceptionsCarryExceptionRecords() throws { try check(Topics.exceptions, samples.exception) }

    @Test func alertsCarryStructuringAlerts() throws { try check(Topics.alerts, samples.alert) }

    /// Each schema in `schemas/` is named for a declared topic, and says so in its `$id`.
    @Test func everySchemaIsADeclaredTopicsSchema() throws {
        let folder = Schemas.root.appendingPathComponent("schemas")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter {
            $0.hasSuffix(".schema.json")
        }
        #expect(!files.isEmpty)
        let declared = Set(Topics.all.map(\.name))
        for file in files {
            let name = String(file.dropLast(".schema.json".count))
            #expect(declared.contains(name), "\(file) is not the schema of a declared topic")
            let schema = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent(file)))
            #expect((schema as? [String: Any])?["$id"] as? String == "urn:clearway:schema:\(name)")
        }
    }

    @Test func topicNamesAreUnique() {
        #expect(Set(Topics.all.map(\.name)).count == Topics.all.count)
    }
}
