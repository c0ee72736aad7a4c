import Foundation

/// An ISO 4217 currency code: three letters, upper case.
public struct CurrencyCode: StringCodable, Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The code, e.g. `USD`.
    public let rawValue: String

    /// The U.S. dollar.
    public static let usd = CurrencyCode(unchecked: "USD")

    /// Parses a currency code; lower case is accepted.
    public init(_ text: String) throws {
        let code = text.trimmingCharacters(in: .whitespaces).uppercased()
        guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw DomainError(
                .unsupportedCurrency, "\"\(text)\" is not an ISO 4217 currency code (three letters, e.g. MXN)")
        }
        rawValue = code
    }

    init(unchecked: String) { rawValue = unchecked }

    /// Whether the code is one of ISO 4217's (as Foundation lists them): `XQZ` has the shape of
    /// a code but names no currency, and no rate will ever come for it.
    public var isISO4217: Bool { Self.iso4217.contains(rawValue) }

    private static let iso4217 = Set(Locale.Currency.isoCurrencies.map(\.identifier))

    public var description: String { rawValue }
    public static func < (lhs: CurrencyCode, rhs: CurrencyCode) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// An amount of money in one currency. Decimal, never binary floating point; written as a decimal
/// string such as `"412.50"` on the wire.
public struct Money: Hashable, Sendable, CustomStringConvertible {
    /// The amount.
    public let amount: Decimal
    /// Its currency.
    public let currency: CurrencyCode

    /// Makes an amount.
    public init(_ amount: Decimal, _ currency: CurrencyCode) {
        self.amount = amount
        self.currency = currency
    }

    /// Parses a decimal string (`"412.50"`, `"-3"`, `"0.125"`): digits with at most one point, an
    /// optional leading minus, no exponent, no grouping.
    public init(parsing text: String, currency: CurrencyCode) throws {
        self.init(try Decimal(parsingPlain: text), currency)
    }

    /// A dollar amount.
    public static func usd(_ text: String) throws -> Money { try Money(parsing: text, currency: .usd) }

    /// Zero in a currency.
    public static func zero(_ currency: CurrencyCode) -> Money { Money(0, currency) }

    /// The sum; both must be in the same currency.
    public func adding(_ other: Money) throws -> Money {
        guard other.currency == currency else {
            throw DomainError(.currencyMismatch, "cannot add \(other) to \(self): convert to one currency first")
        }
        return Money(amount + other.amount, currency)
    }

    /// The difference; both must be in the same currency.
    public func subtracting(_ other: Money) throws -> Money {
        try adding(Money(-other.amount, other.currency))
    }

    /// The amount times a whole quantity.
    public func times(_ quantity: Int) -> Money { Money(amount * Decimal(quantity), currency) }

    /// Rounded half away from zero to `scale` decimal places (cents by default).
    public func rounded(scale: Int = 2) -> Money { Money(amount.rounded(scale: scale), currency) }

    /// The amount as a plain decimal string with at least two decimals (`"412.50"`).
    public var amountText: String { amount.plainText(minimumFractionDigits: 2) }

    public var description: String { "\(amountText) \(currency)" }
}

extension Money: Comparable {
    /// Orders amounts of one currency; amounts of different currencies order by currency code.
    public static func < (lhs: Money, rhs: Money) -> Bool {
        lhs.currency == rhs.currency ? lhs.amount < rhs.amount : lhs.currency < rhs.currency
    }
}

extension Decimal {
    /// Parses a plain decimal string strictly: `-?digits(.digits)?`.
    public init(parsingPlain text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var body = Substring(trimmed)
        if body.hasPrefix("-") { body = body.dropFirst() }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
            let value = Decimal(string: trimmed, locale: Locale(identifier: "en_US_POSIX"))
        else {
            throw DomainError(
                .invalidMoney, "\(DomainError.quoted(text)) is not a decimal amount (write it like \"412.50\")")
        }
        self = value
    }

    /// Rounded half away from zero to `scale` decimal places.
    public func rounded(scale: Int) -> Decimal {
        var value = self
        var result = Decimal()
        NSDecimalRound(&result, &value, scale, .plain)
        return result
    }

    /// A plain decimal string (no exponent, no grouping) with at least this many decimals.
    public func plainText(minimumFractionDigits: Int = 0) -> String {
        var text = NSDecimalNumber(decimal: self).stringValue
        if minimumFractionDigits > 0 {
            let fraction = text.split(separator: ".", omittingEmptySubsequences: false)
            let digits = fraction.count == 2 ? fraction[1].count : 0
            if fraction.count == 1 { text += "." }
            text += String(repeating: "0", count: max(0, minimumFractionDigits - digits))
        }
        return text
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension CurrencyCode {
    var codingText: String { rawValue }
}
