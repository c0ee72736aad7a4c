import Foundation

/// A CBP filer code: the first three characters of an entry number, assigned to the filer
/// (broker or self-filing importer).
///
/// CATAIR Appendix E allows the shapes NNN, ANN, AAN, AAA, ANA, NAN, NNA and NAA (N a digit,
/// A a letter A–Z), with NNN running 001–999: so any three letters or digits except `000`.
/// Lowercase letters are accepted and uppercased.
public struct FilerCode: StringCodable, Hashable, Sendable, CustomStringConvertible {
    /// The three characters, uppercase.
    public let text: String

    /// Validates a filer code such as `B76`.
    public init(_ text: String) throws {
        let code = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard code.count == 3, code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }), code != "000" else {
            throw DomainError(
                .invalidEntryNumber,
                "\(DomainError.quoted(text)) is not a filer code: three letters (A–Z) or digits, 001–999 when all digits, e.g. B76"
            )
        }
        self.text = code.uppercased()
    }

    public var description: String { text }
}

/// A CBP entry number, `XXX-NNNNNNN-C`: the filer code, a seven-digit transaction number the filer
/// assigns, and a check digit.
///
/// The check digit is CATAIR Appendix E's mod 10 (Luhn) over the ten characters before it, as
/// quoted by a public ABI library (this project has not read a primary copy of the Appendix):
/// filer-code letters count as digits, A–I → 1–9, J–R → 1–9, S–Z → 2–9; from the right, the
/// digits in positions 1, 3, 5, 7 and 9 are doubled (9 subtracted when the result is over 9) and
/// the others added as they are; the check digit is (10 − sum mod 10) mod 10. CBP's example:
/// filer B76, transaction 0324527 → `B76-0324527-8`. Letters that map to the same digit (A and J,
/// say) give the same check digit, so the digit guards the transaction number and the filer
/// code's digits, not which of those letters was meant.
///
/// An entry number is used once: 19 CFR 142.3a has the filer number each entry uniquely, and ACE
/// rejects a duplicate outright. Nothing here can know what was used before; that is the filer's
/// record to keep.
public struct EntryNumber: StringCodable, Hashable, Sendable, CustomStringConvertible {
    /// The filer code.
    public let filer: FilerCode
    /// The transaction number, 0…9 999 999.
    public let transaction: Int

    /// The transaction numbers there are: seven digits.
    static let transactions = 0...9_999_999

    /// Makes the entry number for a filer's transaction, computing its check digit; throws when
    /// the transaction number is not seven digits.
    public init(filer: FilerCode, transaction: Int) throws {
        guard Self.transactions.contains(transaction) else {
            throw DomainError(.invalidEntryNumber, "transaction number \(transaction) is not seven digits")
        }
        self.filer = filer
        self.transaction = transaction
    }

    /// Parses `B76-0324527-8` or `B7603245278` and verifies the check digit.
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = trimmed.uppercased().split(separator: "-", omittingEmptySubsequences: false)
        let compact = parts.joined()
        let digits = compact.dropFirst(3)
        guard trimmed.allSatisfy(\.isASCII), compact.count == 11, parts.count == 1 || parts.map(\.count) == [3, 7, 1],
            digits.allSatisfy(\.isASCIIDigit)
        else {
            throw DomainError(
                .invalidEntryNumber,
                "\(DomainError.quoted(text)) is not an entry number: expected XXX-NNNNNNN-C (3-character filer code, 7-digit transaction number, check digit), e.g. B76-0324527-8"
            )
        }
        let filer: FilerCode
        do {
            filer = try FilerCode(String(compact.prefix(3)))
        } catch let error as DomainError {
            throw DomainError(
                .invalidEntryNumber, "\(DomainError.quoted(text)) is not an entry number: \(error.message)")
        }
        try self.init(filer: filer, transaction: Int(digits.prefix(7))!)
        let given = digits.last!.wholeNumberValue!
        guard given == checkDigit else {
            throw DomainError(
                .invalidEntryNumber,
                "entry number \(filer)-\(Self.padded(transaction))-\(given): check digit \(given) does not verify (CATAIR Appendix E mod 10 gives \(checkDigit))"
            )
        }
    }

    /// The check digit, derived from the filer code and transaction number.
    public var checkDigit: Int { Self.checkDigit(filer: filer, transaction: transaction) }

    /// The CATAIR Appendix E check digit for a filer's transaction (0…9 999 999).
    public static func checkDigit(filer: FilerCode, transaction: Int) -> Int {
        precondition(transactions.contains(transaction), "transaction number \(transaction) is not seven digits")
        let values = (filer.text + padded(transaction)).map(value(of:))
        var sum = 0
        for (offset, digit) in values.reversed().enumerated() {
            // Offsets 0, 2, 4, … are positions 1, 3, 5, … from the right: doubled.
            let weighted = offset.isMultiple(of: 2) ? digit * 2 : digit
            sum += weighted > 9 ? weighted - 9 : weighted
        }
        return (10 - sum % 10) % 10
    }

    /// `B76-0324527-8`.
    public var description: String { "\(filer)-\(Self.padded(transaction))-\(checkDigit)" }

    /// The transaction number as seven digits.
    static func padded(_ transaction: Int) -> String {
        let digits = String(transaction)
        return String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }

    /// A character's value in the check-digit sum: a digit is itself; A–I → 1–9, J–R → 1–9,
    /// S–Z → 2–9.
    static func value(of character: Character) -> Int {
        if let digit = character.wholeNumberValue { return digit }
        let index = Int(character.asciiValue! - Character("A").asciiValue!)  // A = 0 … Z = 25
        return index < 18 ? index % 9 + 1 : index - 16
    }
}

extension FilerCode {
    var codingText: String { text }
}

extension EntryNumber {
    var codingText: String { description }
}
