import ClearwayDomain
import Foundation
import Testing

struct CatalogAuditTests {
    let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/catalog-sample.csv")

    @Test func theSampleCatalogLoadsFromCSV() throws {
        let items = try CatalogItem.loadCatalog(Data(contentsOf: fixture))
        #expect(items.count == 9)
        #expect(items[0].description == "Cotton tee, white, M")
        #expect(items[0].manufacturer?.street == "Av. Industrial 4521, Parque Industrial")
        #expect(items[5].pgaDisclaimers == ["FD1": "A"])
        #expect(items[8].adcvdCase == "A-570-029")
    }

    @Test func theAuditFindsBlockingGapsAndExposure() throws {
        let items = try CatalogItem.loadCatalog(Data(contentsOf: fixture))
        let audit = try CatalogAudit(
            items: items, screener: .shipped(), timeline: .shipped(), day: Day("2025-06-02"))
        let bySKU = Dictionary(uniqueKeysWithValues: audit.findings.map { ($0.sku, $0) })
        #expect(bySKU["TEE-WHT-M"]!.blocking.isEmpty)
        #expect(bySKU["TEE-WHT-M"]!.mid == "MXTEXDEL4521TIJ")
        #expect(bySKU["TEE-BLK-L"]!.exposure.contains { $0.contains("Section 301 list 4A") })
        #expect(bySKU["TEE-BLK-L"]!.exposure.contains { $0.contains("no de minimis under us-2025-05-02") })
        #expect(bySKU["TEE-BLK-L"]!.exposure.contains { $0.contains("textile (Section XI)") })
        #expect(bySKU["SCARF-01"]!.blocking.contains { $0.contains("missing HTS") })
        let mug = bySKU["MUG-01"]!
        #expect(mug.blocking.contains { $0.contains("missing origin") })
        #expect(mug.blocking.contains { $0.contains("no MID") })
        #expect(mug.blocking.contains { $0.contains("not in the HTS reference") })
        #expect(bySKU["COFFEE-250"]!.exposure.contains { $0.contains("FD4") && $0.contains("required") })
        #expect(bySKU["SERUM-30"]!.mid == "XQBORGOO1200MON")
        #expect(bySKU["SERUM-30"]!.exposure.contains { $0.contains("disclaimed A") })
        #expect(bySKU["STEEL-COIL"]!.exposure.contains { $0.contains("Section 232") })
        #expect(audit.blockingCount == 2)
    }

    /// Review C2: the origin exclusion comes from the policy in force on the day (not a line for
    /// every date), and entry types 03 and the Chapter 99 rule are named where they apply.
    @Test func theAuditStatesTheRulesInForceOnItsDay() throws {
        let items = try CatalogItem.loadCatalog(Data(contentsOf: fixture))
        func findings(_ day: String) throws -> [String: CatalogAudit.Finding] {
            let audit = try CatalogAudit(items: items, screener: .shipped(), timeline: .shipped(), day: Day(day))
            return Dictionary(uniqueKeysWithValues: audit.findings.map { ($0.sku, $0) })
        }
        for day in ["2019-06-01", "2026-11-25"] {
            #expect(try !findings(day)["TEE-BLK-L"]!.exposure.contains { $0.contains("no de minimis under") }, "\(day)")
        }
        let before = try findings("2024-06-01")["TEE-BLK-L"]!
        #expect(before.exposure.contains { $0.contains("Chapter 99 article") })
        #expect(try !findings("2026-11-25")["TEE-BLK-L"]!.exposure.contains { $0.contains("Chapter 99 article") })
    }

    /// Regulatory review A8: the MID's country is the goods' country of origin (19 CFR 102 Appendix
    /// para. 2), not the manufacturer's address.
    @Test func theBuiltMIDStartsWithTheCountryOfOrigin() throws {
        let item = CatalogItem(
            sku: "TEE-HK", hts: "6109.10.0012", originCountry: "CN",
            manufacturer: .init(
                name: "Guangzhou Baiyun Garments Ltd", street: "88 Baiyun Road", city: "Guangzhou", country: "HK"))
        #expect(try item.resolvedMID().rawValue == "CNGUABAI88GUA")
        let audit = try CatalogAudit(items: [item], screener: .shipped(), timeline: .shipped(), day: Day("2026-11-25"))
        #expect(audit.findings[0].mid == "CNGUABAI88GUA")
        #expect(audit.findings[0].blocking.isEmpty)
    }

    /// Regulatory review A8: a catalog MID naming another country than the origin blocks the SKU in
    /// the audit, and the enricher parks its order lines with a gap a person can act on.
    @Test func aCatalogMIDOfAnotherCountryThanTheOriginIsBlocking() throws {
        let item = CatalogItem(sku: "TEE-MX", hts: "6109.10.0012", originCountry: "MX", mid: "CNGUABAI123GUA")
        let audit = try CatalogAudit(items: [item], screener: .shipped(), timeline: .shipped(), day: Day("2026-11-25"))
        #expect(audit.blockingCount == 1)
        #expect(audit.findings[0].blocking.contains { $0.contains("wrong MID country") && $0.contains("MX") })

        let secret = try ConsigneeKeySecret(text: "a-test-secret-of-16+-bytes")
        let references = EnrichmentReferences(
            catalogItem: { $0 == item.sku ? CatalogEntry(item) : nil }, rates: { _, _ in [] },
            warehouses: try WarehouseDirectory.shipped(), secret: secret)
        let order = OrderEvent(
            orderId: "T-1", type: .placed, version: 1, currency: "USD", shipDate: "2026-11-20", warehouse: "TIJ1",
            consignee: Consignee(
                name: "Ana Diaz", line1: "500 Harbor Dr", city: "San Diego", region: "CA", postalCode: "92101",
                country: "US"),
            lines: [.init(sku: item.sku, quantity: 1, unitPrice: "10.00")])
        guard case .gaps(let gaps) = Enrichment.enrich(order, references: references) else {
            Issue.record("an order with a wrong-country MID was enriched")
            return
        }
        let gap = try #require(gaps.first { $0.code == "mid-origin-mismatch" })
        #expect(gap.detail.contains("CNGUABAI123GUA") && gap.detail.contains("102 Appendix"))
        #expect(gap.waitsOn == "catalog:TEE-MX")
        #expect(gap.line == 1)
        // A Canadian origin takes a province code.
        let canadian = CatalogItem(sku: "C", originCountry: "CA", mid: "XOMAPAPP250TOR")
        #expect(canadian.midOriginMismatch(try canadian.resolvedMID(), origin: try CountryCode("CA")) == nil)
    }

    /// Regulatory review A5: FW3 always requires the FWS declaration; a disclaimer cannot answer it,
    /// so the audit rejects the disclaimer and blocks the SKU, and under Section 321 the line stays
    /// off the de minimis lane.
    @Test func anFW3FlagIsRequiredAndItsDisclaimerRejected() throws {
        let item = CatalogItem(
            sku: "BELT-CROC", hts: "4203.30.0000", originCountry: "MX", mid: "MXPIEFIN12LEO", pgaFlags: ["FW3"],
            pgaDisclaimers: ["FW3": "A"])
        var screener = try Screener.shipped()
        screener.htsReference = nil
        let day = try Day("2024-06-01")
        let audit = try CatalogAudit(items: [item], screener: screener, timeline: .shipped(), day: day)
        let finding = audit.findings[0]
        #expect(finding.exposure.contains { $0.contains("PGA FW3") && $0.contains("data required") })
        #expect(finding.exposure.contains { $0.contains("disclaimer A rejected") })
        #expect(!finding.exposure.contains { $0.contains("may be required") || $0.contains("disclaimed A") })
        #expect(finding.blocking.contains { $0.contains("FW3 cannot be disclaimed") })

        let flag = try PGAFlag("FW3")
        #expect(flag.isRequired && !flag.isDisclaimable)
        #expect(try PGAFlag("FW1").isDisclaimable)
        #expect(try PGAFlag("FW2").isRequired)
        #expect(try PGAFlag("TB1").isDisclaimable)  // CSMS 17-000248: disclaim code C
        // Not in the table: read as required.
        #expect(try PGAFlag("ZZ1").isRequired && PGAFlag("ZZ1").meaning == nil)
        let screening = screener.screen(
            [
                ScreeningLine(
                    sku: item.sku, hts: try HTSCode("4203.30.0000"), origin: try CountryCode("MX"), skuFlags: [flag],
                    disclaimers: [flag: .a])
            ], on: day, policy: try PolicyTimeline.shipped().policy(on: day))
        #expect(!screening.isDeMinimisEligible)
        #expect(screening.lines[0].flags[0].isRequired && screening.lines[0].flags[0].disclaimer == nil)
    }

    @Test func aJSONCatalogLoadsToo() throws {
        let json = #"[{"sku":"A","hts":"6109.10.0012","originCountry":"MX","mid":"MXTEXDEL4521TIJ"}]"#
        let items = try CatalogItem.loadCatalog(Data(json.utf8))
        #expect(try items[0].resolvedMID().rawValue == "MXTEXDEL4521TIJ")
        #expect(throws: DomainError.self) { try CatalogItem.loadCatalog(Data(#"[{"hts":"x"}]"#.utf8)) }
    }
}
