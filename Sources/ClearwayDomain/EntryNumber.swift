import Foundation

/// A CBP entry number, `XXX-NNNNNNN-C`: a three-character filer code (each character a letter or
/// a digit: NNN, ANN, AAN, AAA, ANA, NAN, NNA, NAA), a seven-digit transaction number and a check
/// digit.
///
/// Only the format is validated. The check-digit formula (CATAIR Appendix E) has not been
/// confirmed from a primary source here, so the digit is carried as given, not verified.
public struct EntryNumber: StringCodable, Hashable, Sendable, CustomStringConvertible {
    /// The filer code.
    public let filerCode: String
    /// The seven-digit transaction number.
    public let transactionNumber: String
    /// The check digit, as given.
    public let checkDigit: Character

    /// Parses `ABC-1234567-8` or `ABC12345678`.
    public init(_ text: String) throws {
        let compact = text.trimmingCharacters(in: .whitespaces).uppercased().filter { $0 != "-" }
        let characters = Array(compact)
        let dashed = text.trimmingCharacters(in: .whitespaces)
        guard characters.count == 11,
            characters[0..<3].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }),
            characters[3...].allSatisfy(\.isASCIIDigit),
            !dashed.contains("-") || dashed.split(separator: "-").map(\.count) == [3, 7, 1]
        else {
            throw DomainError(
                .invalidEntryNumber,
                "\"\(text)\" is not an entry number (filer code, 7-digit transaction number, check digit: ABC-1234567-8)"
            )
        }
        filerCode = String(characters[0..<3])
        transactionNumber = String(characters[3..<10])
        checkDigit = characters[10]
    }

    public var description: String { "\(filerCode)-\(transactionNumber)-\(checkDigit)" }
}

extension EntryNumber {
    var codingText: String { description }
}
