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
        #expect(bySKU["TEE-BLK-L"]!.exposure.contains { $0.contains("EO 14256") })
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

    @Test func aJSONCatalogLoadsToo() throws {
        let json = #"[{"sku":"A","hts":"6109.10.0012","originCountry":"MX","mid":"MXTEXDEL4521TIJ"}]"#
        let items = try CatalogItem.loadCatalog(Data(json.utf8))
        #expect(try items[0].resolvedMID().rawValue == "MXTEXDEL4521TIJ")
        #expect(throws: DomainError.self) { try CatalogItem.loadCatalog(Data(#"[{"hts":"x"}]"#.utf8)) }
    }
}
