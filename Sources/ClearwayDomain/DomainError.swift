/// Why a value or a rule could not be applied: a code to act on, and a message for a person
/// that names what was wrong and, where it can, what would fix it.
public struct DomainError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is. Codes are stable: exceptions topics and reports carry them.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable name of the code, e.g. `invalid-hts`.
        public let rawValue: String
        /// Makes a code.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidMoney = Code("invalid-money")
        public static let currencyMismatch = Code("currency-mismatch")
        public static let unsupportedCurrency = Code("unsupported-currency")
        public static let invalidHTS = Code("invalid-hts")
        public static let invalidCountry = Code("invalid-country")
        public static let invalidMID = Code("invalid-mid")
        public static let invalidEntryNumber = Code("invalid-entry-number")
        public static let invalidConsignee = Code("invalid-consignee")
        public static let missingRate = Code("missing-fx-rate")
        public static let invalidReferenceData = Code("invalid-reference-data")
        public static let invalidPolicy = Code("invalid-policy")
        public static let noPolicyInForce = Code("no-policy-in-force")
        public static let unknownPort = Code("unknown-port")
        public static let invalidDate = Code("invalid-date")
        public static let invalidOrder = Code("invalid-order")
    }

    /// What kind of problem this is.
    public var code: Code
    /// What was wrong, for a person.
    public var message: String

    /// Makes an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// A decoding error (or any other) in words a person can act on: what is missing or wrong,
    /// and where in the document.
    public static func explain(_ error: any Error) -> String { describe(error) }

    /// A value from a record, in quotes, for a message: its first 40 characters where it is
    /// longer. A record's field can be as large as the record, and a message that quoted it
    /// whole would make the exception that carries it too large to write.
    public static func quoted(_ text: String) -> String {
        text.count > 40 ? "\"\(text.prefix(40))…\" (\(text.utf8.count) bytes)" : "\"\(text)\""
    }

    /// The most characters of a detail an exception record carries.
    public static let maximumDetailLength = 2_000

    /// `text`, cut to `maximumDetailLength` characters, saying how long it was.
    public static func bounded(_ text: String) -> String {
        guard text.count > maximumDetailLength else { return text }
        return String(text.prefix(maximumDetailLength)) + "… (\(text.utf8.count) bytes in all)"
    }
}

extension Decoder {
    /// Decodes a string and parses it, reporting a parse failure with its place in the document.
    func parseString<T>(_ parse: (String) throws -> T) throws -> T {
        let text = try singleValueContainer().decode(String.self)
        do {
            return try parse(text)
        } catch let error as DomainError {
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath, debugDescription: error.message, underlyingError: error))
        }
    }
}

/// A value written as a string on the wire: decoded through its parsing initializer (so a bad
/// value is refused with its place in the document) and encoded as its canonical text.
protocol StringCodable: Codable {
    init(_ text: String) throws
    /// The canonical text.
    var codingText: String { get }
}

extension StringCodable {
    public init(from decoder: any Decoder) throws { self = try decoder.parseString { try Self($0) } }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(codingText)
    }
}
