import ClearwayDomain
import Foundation
import PropertyBased
import Testing

struct EntryNumberTests {
    /// CBP's worked example in CATAIR Appendix E.
    @Test func filerB76Transaction0324527ChecksTo8() throws {
        let filer = try FilerCode("B76")
        #expect(EntryNumber.checkDigit(filer: filer, transaction: 324_527) == 8)
        let entry = try EntryNumber(filer: filer, transaction: 324_527)
        #expect(entry.checkDigit == 8)
        #expect(entry.description == "B76-0324527-8")
    }

    @Test func parsesWithAndWithoutHyphens() throws {
        let entry = try EntryNumber("B76-0324527-8")
        #expect(entry.filer.text == "B76")
        #expect(entry.transaction == 324_527)
        #expect(try EntryNumber("B7603245278") == entry)
        #expect(try EntryNumber("  b76-0324527-8\n") == entry)
        #expect(try EntryNumber("B7603245278").description == "B76-0324527-8")
    }

    @Test func aWrongCheckDigitIsRefusedNamingTheRightOne() {
        #expect {
            try EntryNumber("B76-0324527-7")
        } throws: { error in
            (error as? DomainError)?.message
                == "entry number B76-0324527-7: check digit 7 does not verify (CATAIR Appendix E mod 10 gives 8)"
        }
    }

    @Test(arguments: [
        "", "B76-0324527", "B760324527", "B76032452788", "B76-032452-78", "B76-03245278-", "B760-324527-8",
        "-B76-0324527-8", "B76-0324527-8-", "B76 0324527 8", "B76-0324527-X", "B76-O324527-8", "B76-032452٧-8",
        "B76–0324527–8",
    ])
    func malformedNumbersAreRefusedWithTheExpectedShape(_ text: String) {
        #expect {
            try EntryNumber(text)
        } throws: { error in
            (error as? DomainError)?.message.contains("expected XXX-NNNNNNN-C") == true
        }
    }

    @Test(arguments: ["B7!-0324527-8", "000-0324527-8", "ıAB-0000000-0"])
    func aBadFilerCodeIsRefusedInAnEntryNumber(_ text: String) {
        #expect(throws: DomainError.self) { try EntryNumber(text) }
    }

    @Test func transactionNumbersAreSevenDigits() throws {
        let filer = try FilerCode("B76")
        #expect(throws: DomainError.self) { try EntryNumber(filer: filer, transaction: -1) }
        #expect(throws: DomainError.self) { try EntryNumber(filer: filer, transaction: 10_000_000) }
        #expect(try EntryNumber(filer: filer, transaction: 0).description.hasPrefix("B76-0000000-"))
        #expect(try EntryNumber(filer: filer, transaction: 9_999_999).description.hasPrefix("B76-9999999-"))
    }

    /// One filer code of each shape in CATAIR Appendix E: NNN, ANN, AAN, AAA, ANA, NAN, NNA, NAA.
    @Test(arguments: ["001", "999", "A12", "AB3", "ABC", "A1B", "1A2", "12A", "1AB", "b7c"])
    func everyFilerCodeShapeIsAccepted(_ text: String) throws {
        let filer = try FilerCode(text)
        #expect(filer.text == text.uppercased())
        let entry = try EntryNumber(filer: filer, transaction: 1)
        #expect(try EntryNumber(entry.description) == entry)
    }

    @Test(arguments: ["000", "", "B7", "AB", "ABCD", "A1A1", "1A2B", "B7!", "A 1", "É12", "ıAB", "٧12"])
    func otherFilerCodesAreRefused(_ text: String) {
        #expect(throws: DomainError.self) { try FilerCode(text) }
    }

    /// With transaction 0000000 only the filer code counts. From the right, the filer code's
    /// characters are positions 10 (added), 9 (doubled) and 8 (added). By hand:
    /// A00: 1 → 9. I00: 9 → 1. J00: 1 → 9. R00: 9 → 1. S00: 2 → 8. Z00: 9 → 1.
    /// 0A0: 2×1 = 2 → 8. 0I0: 2×9 = 18 − 9 = 9 → 1. 0J0: 2 → 8. 0R0: 9 → 1. 0S0: 2×2 = 4 → 6.
    /// 0Z0: 9 → 1. 00T: 3 → 7. 0T0: 2×3 = 6 → 4. JSZ: 1 + 2×2 + 9 = 14 → 6. AIR: 1 + 9 + 9 = 19 → 1.
    @Test(
        arguments: zip(
            [
                "A00", "I00", "J00", "R00", "S00", "Z00", "0A0", "0I0", "0J0", "0R0", "0S0", "0Z0", "00T", "0T0", "JSZ",
                "AIR",
            ],
            [9, 1, 9, 1, 8, 1, 8, 1, 8, 1, 6, 1, 7, 4, 6, 1]))
    func filerCodeLettersCountAsAppendixEDigits(_ filer: String, _ expected: Int) throws {
        #expect(try EntryNumber.checkDigit(filer: FilerCode(filer), transaction: 0) == expected)
    }

    /// Every letter against the table A–I → 1–9, J–R → 1–9, S–Z → 2–9, in the first (added)
    /// position: check digit (10 − value) mod 10.
    @Test func everyLetterTakesItsAppendixEValue() throws {
        let values = Array(zip("ABCDEFGHI", 1...9)) + zip("JKLMNOPQR", 1...9) + zip("STUVWXYZ", 2...9)
        #expect(values.count == 26)
        for (letter, value) in values {
            #expect(try EntryNumber.checkDigit(filer: FilerCode("\(letter)00"), transaction: 0) == (10 - value) % 10)
        }
        // Letters with the same value are not told apart.
        #expect(try EntryNumber(filer: FilerCode("A76"), transaction: 324_527).checkDigit == 9)
        #expect(try EntryNumber(filer: FilerCode("J76"), transaction: 324_527).checkDigit == 9)
    }

    @Test func anyEntryNumberRoundTripsThroughItsText() async {
        await propertyCheck(count: 500, input: filerCodes, transactions) { filer, transaction in
            let entry = try EntryNumber(filer: filer, transaction: transaction)
            #expect(try EntryNumber(entry.description) == entry)
            #expect(try EntryNumber(entry.description.filter { $0 != "-" }) == entry)
            #expect(try EntryNumber(entry.description.lowercased()) == entry)
        }
    }

    /// Luhn catches every single-digit error. Only digits are changed: letters with the same value
    /// (A and J) give the same check digit.
    @Test func changingAnyOneDigitBreaksTheCheck() async {
        await propertyCheck(count: 200, input: filerCodes, transactions) { filer, transaction in
            let text = Array(try EntryNumber(filer: filer, transaction: transaction).description.filter { $0 != "-" })
            for (index, character) in text.enumerated() where character.isNumber {
                for replacement in "0123456789" where replacement != character {
                    var changed = text
                    changed[index] = replacement
                    #expect(throws: DomainError.self) { try EntryNumber(String(changed)) }
                }
            }
        }
    }

    @Test func encodesAsItsTextInJSON() throws {
        let entries = try [EntryNumber("B76-0324527-8"), EntryNumber(filer: FilerCode("9zz"), transaction: 42)]
        let data = try JSONEncoder().encode(entries)
        let expected = #"["B76-0324527-8","9ZZ-0000042-\#(entries[1].checkDigit)"]"#
        #expect(String(decoding: data, as: UTF8.self) == expected)
        #expect(try JSONDecoder().decode([EntryNumber].self, from: data) == entries)
        #expect(try JSONDecoder().decode(FilerCode.self, from: Data(#""b76""#.utf8)) == FilerCode("B76"))
        #expect(try String(decoding: JSONEncoder().encode(FilerCode("b76")), as: UTF8.self) == #""B76""#)
    }

    @Test func decodingABadNumberReportsTheCheckDigit() {
        #expect {
            try JSONDecoder().decode([EntryNumber].self, from: Data(#"["B76-0324527-7"]"#.utf8))
        } throws: { error in
            guard case .dataCorrupted(let context) = error as? DecodingError else { return false }
            return context.debugDescription.contains("CATAIR Appendix E mod 10 gives 8")
        }
    }

    /// Any filer code: 1…36³ − 1 written in base 36 with digits 0–9 A–Z (0 would be 000).
    private let filerCodes = Gen.int(in: 1...46_655).map { (number: Int) -> FilerCode in
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let text = String([number / 1296, number / 36 % 36, number % 36].map { alphabet[$0] })
        return try! FilerCode(text)
    }

    private let transactions = Gen.int(in: 0...9_999_999)
}
