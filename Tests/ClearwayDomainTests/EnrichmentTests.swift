import ClearwayDomain
import Foundation
import Testing

struct EnrichmentTests {
    let secret = try! ConsigneeKeySecret(text: "a-test-secret-of-16+-bytes")

    func references(catalog: [CatalogItem], rates: [ExchangeRate] = []) throws -> EnrichmentReferences {
        let items = Dictionary(uniqueKeysWithValues: catalog.map { ($0.sku, CatalogEntry($0)) })
        return EnrichmentReferences(
            catalogItem: { items[$0] },
            rates: { currency, day in
                let keys = Set(ExchangeRate.tableKeys(currency, day))
                return rates.filter { keys.contains($0.tableKey) }
            },
            warehouses: try WarehouseDirectory.shipped(), secret: secret)
    }

    var consignee: Consignee {
        Consignee(
            name: "Ana Diaz", line1: "500 Harbor Dr", city: "San Diego", region: "CA", postalCode: "92101",
            country: "US")
    }

    func item(_ sku: String, hts: String? = "6109.10.0012") -> CatalogItem {
        CatalogItem(
            sku: sku, hts: hts, originCountry: "MX", description: "tee",
            manufacturer: .init(name: "Amalgamated Plastics Corp.", street: "11455 Main Street", city: "Tijuana"))
    }

    func order(
        _ currency: String, shipDate: String = "2026-11-20", warehouse: String = "YYZ1", lines: [OrderEvent.Line]
    )
        -> OrderEvent
    {
        OrderEvent(
            orderId: "T-1", type: .placed, version: 1, currency: currency, shipDate: shipDate, warehouse: warehouse,
            consignee: consignee, lines: lines)
    }

    @Test func aDailyRateFivePercentOffTheQuarterlyRateApplies() throws {
        // 19 CFR 159.34(b): the daily rate 0.80 differs from the quarterly 0.74 by 8.1%. Shipped
        // from Toronto on the 20th, exported (across the border) on the 21st.
        let rates = [
            ExchangeRate(
                currency: try CurrencyCode("CAD"), date: try Day("2026-10-01"), usdPerUnit: 0.74, kind: .quarterly),
            ExchangeRate(
                currency: try CurrencyCode("CAD"), date: try Day("2026-11-21"), usdPerUnit: 0.80, kind: .daily),
        ]
        let result = Enrichment.enrich(
            order("CAD", lines: [.init(sku: "S", quantity: 3, unitPrice: "33.33")]),
            references: try references(catalog: [item("S")], rates: rates))
        guard case .enriched(let enriched) = result else { Issue.record("not enriched: \(result)"); return }
        #expect(enriched.valueUSD == "79.99")  // 99.99 × 0.80 = 79.992
        #expect(enriched.fx?.basis == "dailyVariance")
        #expect(enriched.arrivalDay == "2026-11-21")  // Toronto → Buffalo, one day in transit
        #expect(enriched.portOfEntry?.code == "0901")
        #expect(enriched.lines?.first?.mid == "MXAMAPLA1145TIJ")
        #expect(enriched.reasons.contains { $0.text.contains("159.34(b)") })
    }

    @Test func everyGapIsReportedWithWhatItWaitsOn() throws {
        let result = Enrichment.enrich(
            order(
                "MXN", warehouse: "NOWHERE",
                lines: [
                    .init(sku: "UNKNOWN", quantity: 1, unitPrice: "10.00"),
                    .init(sku: "SHORT", quantity: 1, unitPrice: "10.00"),
                    .init(sku: "S", quantity: -1, unitPrice: "0"),
                ]),
            references: try references(catalog: [item("S"), item("SHORT", hts: "6109.10")]))
        guard case .gaps(let gaps) = result else { Issue.record("enriched: \(result)"); return }
        #expect(
            gaps.map(\.code) == [
                "unknown-warehouse", "unknown-sku", "invalid-hts", "non-positive-quantity", "non-positive-price",
            ])
        #expect(gaps.first { $0.code == "unknown-sku" }?.waitsOn == "catalog:UNKNOWN")
        #expect(gaps.first { $0.code == "invalid-hts" }?.detail.contains("10") == true)
        #expect(gaps.allSatisfy { !$0.fix.isEmpty })
    }

    @Test func aMissingRateIsAGapNeverAGuess() throws {
        let result = Enrichment.enrich(
            order("MXN", lines: [.init(sku: "S", quantity: 1, unitPrice: "100")]),
            references: try references(catalog: [item("S")]))
        #expect(
            result
                == .gaps([
                    OrderGap(
                        code: "missing-fx-rate",
                        detail:
                            "no MXN quarterly rate for the quarter of 2026-11-21, the date of exportation (19 CFR 159.34(a) certifies one for MXN); publish it on the fx-rates topic",
                        fix:
                            "publish the certified MXN rate for 2026-11-21 (daily) or its quarter (quarterly) on fx-rates.v1",
                        waitsOn: "fx:MXN")
                ]))
    }

    /// Review A11: the date of exportation is the border crossing (19 CFR 152.1(c)): shipped from
    /// Toronto on 2026-03-31, a day from the border, the goods are exported on 2026-04-01 and take
    /// the second quarter's rate.
    @Test func theDateOfExportationIsTheBorderCrossing() throws {
        let rates = [
            ExchangeRate(
                currency: try CurrencyCode("CAD"), date: try Day("2026-01-01"), usdPerUnit: 0.70, kind: .quarterly),
            ExchangeRate(
                currency: try CurrencyCode("CAD"), date: try Day("2026-04-01"), usdPerUnit: 0.72, kind: .quarterly),
        ]
        let result = Enrichment.enrich(
            order("CAD", shipDate: "2026-03-31", lines: [.init(sku: "S", quantity: 1, unitPrice: "100.00")]),
            references: try references(catalog: [item("S")], rates: rates))
        guard case .enriched(let enriched) = result else { Issue.record("not enriched: \(result)"); return }
        #expect(enriched.arrivalDay == "2026-04-01")
        #expect(enriched.fx?.dateOfExportation == "2026-04-01")
        #expect(enriched.fx?.rate == "0.72" && enriched.valueUSD == "72.00")
    }

    /// Review, item 7: a ship timestamp with its UTC offset is read at the port, so an OMS's UTC
    /// clock cannot move a 23:30 Pacific shipment to the next day; a plain date is the warehouse's.
    @Test func aShipTimestampIsReadInThePortsTimeZone() throws {
        let references = try references(catalog: [item("S")])
        let late = order(
            "USD", shipDate: "2026-11-21T07:30:00Z", warehouse: "TIJ1",
            lines: [.init(sku: "S", quantity: 1, unitPrice: "10.00")])
        guard case .enriched(let enriched) = Enrichment.enrich(late, references: references) else {
            Issue.record("not enriched")
            return
        }
        #expect(enriched.shipDate == "2026-11-20" && enriched.arrivalDay == "2026-11-20")
        let offset = order(
            "USD", shipDate: "2026-11-20T23:30:00-08:00", warehouse: "TIJ1",
            lines: [.init(sku: "S", quantity: 1, unitPrice: "10.00")])
        guard case .enriched(let same) = Enrichment.enrich(offset, references: references) else {
            Issue.record("not enriched")
            return
        }
        #expect(same.arrivalDay == "2026-11-20")
        var noOffset = order("USD", shipDate: "2026-11-20T23:30", lines: [.init(sku: "S", quantity: 1, unitPrice: "1")])
        noOffset.orderId = "T-2"
        #expect(throws: DomainError.self) { try OrderEvent.decode(try JSONEncoder().encode(noOffset)) }
    }

    @Test func anOrderMissingRequiredFieldsIsNamedPrecisely() {
        #expect {
            try OrderEvent.decode(Data(#"{"orderId":"A","type":"placed","version":1,"currency":"USD"}"#.utf8))
        } throws: { error in
            "\(error)".contains("shipDate, warehouse, consignee, lines")
        }
        #expect(throws: DomainError.self) {
            try OrderEvent.decode(Data(#"{"orderId":"A","type":"shipped","version":1}"#.utf8))
        }
        #expect((try? OrderEvent.decode(Data(#"{"orderId":"A","type":"cancelled","version":2}"#.utf8)))?.version == 2)
    }

    @Test func dayArithmeticAgreesWithTheCalendar() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = try Day("1999-12-25")
        for offset in stride(from: -800, through: 12_000, by: 7) {
            let date = calendar.date(byAdding: .day, value: offset, to: start.start(in: calendar.timeZone))!
            #expect(start.adding(days: offset) == Day(date, in: calendar.timeZone))
        }
        #expect(try Day("2028-02-28").next == Day("2028-02-29"))
        #expect(try Day("2026-12-31").next.description == "2027-01-01")
    }

    @Test func rateKeysNameTheDayOrTheQuarter() throws {
        let day = try Day("2026-11-20")
        #expect(ExchangeRate.tableKeys(try CurrencyCode("MXN"), day) == ["MXN@2026-11-20", "MXN@2026-Q4"])
    }
}
