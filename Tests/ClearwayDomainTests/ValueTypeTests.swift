import ClearwayDomain
import Foundation
import PropertyBased
import Testing

struct MoneyTests {
    @Test func parsesDecimalStringsExactly() throws {
        let price = try Money(parsing: "412.50", currency: CurrencyCode("mxn"))
        #expect(price.amount == Decimal(string: "412.5"))
        #expect(price.currency.rawValue == "MXN")
        #expect(price.amountText == "412.50")
        // 0.1 + 0.2 is exactly 0.3 in decimal, unlike binary floating point.
        #expect(try Money.usd("0.1").adding(.usd("0.2")) == .usd("0.3"))
    }

    @Test(arguments: ["", "1,000.00", "1e3", "12.", ".5", "abc", "--1", "1.2.3"])
    func refusesWhatIsNotAPlainDecimal(_ text: String) {
        #expect(throws: DomainError.self) { try Money.usd(text) }
    }

    @Test func refusesToMixCurrencies() throws {
        #expect(throws: DomainError.self) {
            try Money.usd("1").adding(Money(parsing: "1", currency: CurrencyCode("CAD")))
        }
    }

    @Test func roundsHalfAwayFromZeroToCents() throws {
        #expect(try Money.usd("2.345").rounded().amountText == "2.35")
        #expect(try Money.usd("2.344").rounded().amountText == "2.34")
    }

    @Test func additionIsExactForAnyCents() async {
        await propertyCheck(input: Gen.int(in: 0...10_000_000), Gen.int(in: 0...10_000_000)) { a, b in
            let sum = try Money.usd(centsText(a)).adding(Money.usd(centsText(b)))
            #expect(sum == (try Money.usd(centsText(a + b))))
        }
    }

    private func centsText(_ cents: Int) -> String { "\(cents / 100).\(String(format: "%02d", cents % 100))" }
}

struct HTSCodeTests {
    @Test func acceptsDottedAndPlainForms() throws {
        let dotted = try HTSCode("6109.10.0012")
        let plain = try HTSCode("6109100012")
        #expect(dotted == plain)
        #expect(dotted.description == "6109.10.0012")
        #expect(dotted.chapter == 61)
        #expect(dotted.heading == "6109")
        #expect(dotted.subheading == "610910")
        #expect(dotted.rateLine == "61091000")
        #expect(dotted.isStatisticalReportingNumber)
        #expect(try HTSCode("6109.10.00.12") == dotted)
        #expect(try HTSCode("6109.10.00").isStatisticalReportingNumber == false)
    }

    @Test(arguments: [
        "7701.00.0000", "0012.34.5678", "61091000123", "6109-10-0012", "61.09.10", "6109.10.0012.", "ABCD",
    ])
    func refusesInvalidNumbers(_ text: String) {
        #expect(throws: DomainError.self) { try HTSCode(text) }
    }

    @Test func chapter77IsReserved() {
        #expect {
            try HTSCode("7708.00.0000")
        } throws: { error in
            (error as! DomainError).message.contains("reserved")
        }
    }

    @Test func aChapter99NumberNeverStandsAloneOnALine() throws {
        #expect(throws: DomainError.self) { try LineClassification(primary: HTSCode("9903.88.0300")) }
        #expect(throws: DomainError.self) { try LineClassification(primary: HTSCode("9801.00.1097")) }
        let line = try LineClassification(primary: HTSCode("8518.30.2000"), additional: [HTSCode("9903.88.15")])
        #expect(line.additional.count == 1)
        #expect(throws: DomainError.self) { try LineClassification(primary: HTSCode("8518.30.20")) }
    }

    @Test func anyTenDigitsOutsideReservedChaptersRoundTrip() async {
        await propertyCheck(input: Gen.int(in: 100_000_000...9_799_999_999)) { number in
            let digits = String(format: "%010ld", number)
            let chapter = Int(digits.prefix(2))!
            if chapter == 77 || chapter == 0 {
                #expect(throws: DomainError.self) { try HTSCode(digits) }
            } else {
                let code = try HTSCode(digits)
                #expect(try HTSCode(code.description) == code)
            }
        }
    }
}

struct CountryAndEntryNumberTests {
    @Test func countryCodesMustBeAssigned() throws {
        #expect(try CountryCode("mx").rawValue == "MX")
        #expect(throws: DomainError.self) { try CountryCode("XX") }
        #expect(throws: DomainError.self) { try CountryCode("MEX") }
    }

    @Test(arguments: ["ABC-1234567-6", "123-1234567-6", "A1B-0000001-3", "abc12345676"])
    func entryNumbersInEveryFilerCodeFormat(_ text: String) throws {
        let entry = try EntryNumber(text)
        #expect(entry.description.count == 13)
        #expect((0...9_999_999).contains(entry.transaction))
    }

    @Test(arguments: ["AB-1234567-8", "ABC-123456-78", "ABC-12345678", "ABC-1234567-X", "A#C-1234567-8"])
    func malformedEntryNumbersAreRefused(_ text: String) {
        #expect(throws: DomainError.self) { try EntryNumber(text) }
    }
}
