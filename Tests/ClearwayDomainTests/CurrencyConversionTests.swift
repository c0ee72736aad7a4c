import ClearwayDomain
import Foundation
import Testing

struct CurrencyConversionTests {
    let mxn = try! CurrencyCode("MXN")
    let eur = try! CurrencyCode("EUR")
    let export = try! Day("2026-11-20")

    private func rates(quarterly: String?, daily: String?) throws -> ExchangeRates {
        var list: [ExchangeRate] = []
        if let quarterly {
            list.append(
                ExchangeRate(
                    currency: mxn, date: try Day("2026-10-01"), usdPerUnit: try Decimal(parsingPlain: quarterly),
                    kind: .quarterly))
        }
        if let daily {
            list.append(
                ExchangeRate(currency: mxn, date: export, usdPerUnit: try Decimal(parsingPlain: daily), kind: .daily))
        }
        return ExchangeRates(list)
    }

    @Test func quarterlyRateAppliesWhenTheDailyRateIsWithinFivePercent() throws {
        let conversion = try rates(quarterly: "0.0500", daily: "0.0524").toUSD(
            Money(parsing: "1000", currency: mxn), exportedOn: export)
        #expect(conversion.basis == .quarterly)
        #expect(conversion.usd == (try Money.usd("50.00")))
        #expect(conversion.reason.contains("159.34"))
    }

    @Test func dailyRateAppliesAtExactlyFivePercent() throws {
        let conversion = try rates(quarterly: "0.0500", daily: "0.0525").toUSD(
            Money(parsing: "1000", currency: mxn), exportedOn: export)
        #expect(conversion.basis == .dailyVariance)
        #expect(conversion.usd == (try Money.usd("52.50")))
    }

    @Test func dailyRateAppliesBelowByFivePercentToo() throws {
        let conversion = try rates(quarterly: "0.0500", daily: "0.0475").toUSD(
            Money(parsing: "1000", currency: mxn), exportedOn: export)
        #expect(conversion.basis == .dailyVariance)
        #expect(conversion.usd == (try Money.usd("47.50")))
    }

    @Test func quarterlyRateStandsWithoutADailyRate() throws {
        let conversion = try rates(quarterly: "0.0500", daily: nil).toUSD(
            Money(parsing: "19.99", currency: mxn), exportedOn: export)
        #expect(conversion.basis == .quarterly)
        #expect(conversion.usd == (try Money.usd("1.00")))
    }

    @Test func anUnlistedCurrencyUsesTheDailyRateOfTheDateOfExportation() throws {
        let table = ExchangeRates([
            ExchangeRate(currency: eur, date: export, usdPerUnit: try Decimal(parsingPlain: "1.0812"), kind: .daily)
        ])
        let conversion = try table.toUSD(Money(parsing: "100", currency: eur), exportedOn: export)
        #expect(conversion.basis == .daily)
        #expect(conversion.usd == (try Money.usd("108.12")))
    }

    @Test func aMissingRateIsAPreciseErrorNeverAGuess() throws {
        let table = ExchangeRates([
            ExchangeRate(currency: eur, date: try Day("2026-11-19"), usdPerUnit: 1, kind: .daily)
        ])
        #expect {
            try table.toUSD(Money(parsing: "100", currency: eur), exportedOn: export)
        } throws: { error in
            let error = error as! DomainError
            return error.code == .missingRate && error.message.contains("EUR") && error.message.contains("2026-11-20")
        }
    }

    /// Review A11: a currency 19 CFR 159.34(a) lists without its quarterly rate is a gap, not the
    /// daily rate; a currency it does not list takes the daily rate even with a quarterly one loaded.
    @Test func theQuarterlyRateFollowsThe15934aList() throws {
        let day = try Day("2026-11-20")
        let mxnDailyOnly = ExchangeRates([ExchangeRate(currency: mxn, date: day, usdPerUnit: 0.05, kind: .daily)])
        #expect {
            try mxnDailyOnly.toUSD(Money(parsing: "100", currency: mxn), exportedOn: day)
        } throws: { error in
            (error as? DomainError)?.code == .missingRate && "\(error)".contains("159.34(a)")
        }
        let eurBoth = ExchangeRates([
            ExchangeRate(currency: eur, date: try Day("2026-10-01"), usdPerUnit: 1.05, kind: .quarterly),
            ExchangeRate(currency: eur, date: day, usdPerUnit: 1.08, kind: .daily),
        ])
        let conversion = try eurBoth.toUSD(Money(parsing: "100", currency: eur), exportedOn: day)
        #expect(conversion.basis == .daily && conversion.rate == 1.08)
    }

    @Test func aQuarterlyRateOnlyCoversItsQuarter() throws {
        let table = try rates(quarterly: "0.05", daily: nil)
        #expect(throws: DomainError.self) {
            try table.toUSD(Money(parsing: "1", currency: mxn), exportedOn: Day("2027-01-02"))
        }
    }

    @Test func daysParseStrictly() throws {
        #expect(try Day("2024-02-29").next == Day("2024-03-01"))
        #expect(throws: DomainError.self) { try Day("2025-02-29") }
        #expect(throws: DomainError.self) { try Day("2025-1-05") }
        #expect(try Day("2026-11-25").quarterStart == Day("2026-10-01"))
    }
}
