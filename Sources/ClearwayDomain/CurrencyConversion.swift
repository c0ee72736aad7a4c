import Foundation

/// A calendar day (no time, no zone), written `YYYY-MM-DD`.
public struct Day: StringCodable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Parses `YYYY-MM-DD` (a real date).
    public init(_ text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            (1...12).contains(month), (1...Day.daysIn(month: month, year: year)).contains(day)
        else {
            throw DomainError(.invalidDate, "\(DomainError.quoted(text)) is not a date written YYYY-MM-DD")
        }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Makes a day from its parts (which must form a real date).
    public init(year: Int, month: Int, day: Int) {
        precondition((1...12).contains(month) && (1...Day.daysIn(month: month, year: year)).contains(day))
        self.year = year
        self.month = month
        self.day = day
    }

    /// The calendar day of an instant in a time zone.
    public init(_ instant: Date, in timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: instant)
        self.init(year: parts.year!, month: parts.month!, day: parts.day!)
    }

    /// The instant this day begins in a time zone.
    public func start(in timeZone: TimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar.date(from: DateComponents(year: year, month: month, day: day))!
    }

    /// The next day.
    public var next: Day { adding(days: 1) }

    /// This day moved by a number of days.
    public func adding(days: Int) -> Day {
        Day(dayNumber: dayNumber + days)
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's `days_from_civil`).
    var dayNumber: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The day `number` days after 1970-01-01 (`civil_from_days`).
    init(dayNumber number: Int) {
        let z = number + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month: month, day: day)
    }

    /// The first day of this day's calendar quarter.
    public var quarterStart: Day { Day(year: year, month: (month - 1) / 3 * 3 + 1, day: 1) }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    public var description: String {
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))"
    }

    public static func < (lhs: Day, rhs: Day) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }
}

/// A rate certified by the Federal Reserve Bank of New York: U.S. dollars per one unit of the
/// currency (for MXN about 0.055, not 18).
public struct ExchangeRate: Hashable, Sendable, Codable {
    /// Daily (for one day) or quarterly (the first rate certified in a quarter, 19 CFR 159.34).
    public enum Kind: String, Hashable, Sendable, Codable {
        case daily, quarterly
    }

    public var currency: CurrencyCode
    /// The day it is for; for a quarterly rate, any day of its quarter (the quarter is what counts).
    public var date: Day
    /// U.S. dollars per unit of `currency`.
    public var usdPerUnit: Decimal
    public var kind: Kind

    /// Makes a rate.
    public init(currency: CurrencyCode, date: Day, usdPerUnit: Decimal, kind: Kind) {
        self.currency = currency
        self.date = date
        self.usdPerUnit = usdPerUnit
        self.kind = kind
    }

    /// The most U.S. dollars a unit of any currency may be worth on `fx-rates.v1`.
    public static let maximumUSDPerUnit: Decimal = 1_000

    enum CodingKeys: String, CodingKey { case currency, date, usdPerUnit, kind }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        currency = try container.decode(CurrencyCode.self, forKey: .currency)
        date = try container.decode(Day.self, forKey: .date)
        usdPerUnit = try Decimal(parsingPlain: container.decode(String.self, forKey: .usdPerUnit))
        kind = try container.decode(Kind.self, forKey: .kind)
        guard usdPerUnit > 0 else {
            throw DomainError(.invalidReferenceData, "the \(currency) rate for \(date) must be positive")
        }
        // The dearest currency unit (the Kuwaiti dinar) is worth about 3.3 USD: a rate this far
        // off is a mistake (units for dollars, a misplaced point) that would multiply every value.
        guard usdPerUnit <= Self.maximumUSDPerUnit else {
            throw DomainError(
                .invalidReferenceData,
                "the \(currency) rate for \(date) is \(usdPerUnit.plainText()) USD per unit, more than \(Self.maximumUSDPerUnit) (no currency is worth that much; rates are USD per one unit of the currency)"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(currency, forKey: .currency)
        try container.encode(date, forKey: .date)
        try container.encode(usdPerUnit.plainText(), forKey: .usdPerUnit)
        try container.encode(kind, forKey: .kind)
    }
}

/// A value converted to U.S. dollars, with the rate used and why.
public struct Conversion: Hashable, Sendable {
    /// The value in USD, rounded to cents.
    public var usd: Money
    /// The rate applied (USD per unit); 1 for USD.
    public var rate: Decimal
    /// Which rate applied.
    public var basis: Basis
    /// Why, with the regulation.
    public var reason: String

    public enum Basis: String, Hashable, Sendable, Codable {
        /// The value was in USD already.
        case none
        /// The daily rate of the date of exportation (19 CFR 159.32).
        case daily
        /// The quarterly rate (19 CFR 159.34(a)).
        case quarterly
        /// The daily rate, because it differed from the quarterly rate by 5% or more (159.34(b)).
        case dailyVariance
    }
}

/// Certified exchange rates, and conversion to USD by 19 CFR 159.32 and 159.34.
public struct ExchangeRates: Sendable {
    private var daily: [CurrencyCode: [Day: Decimal]] = [:]
    private var quarterly: [CurrencyCode: [Day: Decimal]] = [:]

    /// Makes a table from rates; a later rate for the same currency and day (or quarter) wins.
    public init(_ rates: [ExchangeRate] = []) {
        for rate in rates { insert(rate) }
    }

    /// Adds or replaces a rate.
    public mutating func insert(_ rate: ExchangeRate) {
        switch rate.kind {
        case .daily: daily[rate.currency, default: [:]][rate.date] = rate.usdPerUnit
        case .quarterly: quarterly[rate.currency, default: [:]][rate.date.quarterStart] = rate.usdPerUnit
        }
    }

    /// The currencies 19 CFR 159.34(a) has a quarterly rate certified for, by the countries it
    /// lists: Australia, Brazil, Canada, Denmark, Hong Kong, India, Iran, Japan, Malaysia, Mexico,
    /// New Zealand, Norway, the People's Republic of China, the Philippines, South Africa,
    /// Singapore, Sri Lanka, Sweden, Switzerland, Thailand, the United Kingdom and Venezuela. The
    /// list also names Austria, Belgium, Finland, France, Germany, Ireland, Italy, the
    /// Netherlands, Portugal and Spain, whose currencies the euro replaced; whether CBP certifies
    /// a quarterly euro rate in their place is unconfirmed, so the euro takes the daily rate.
    public static let quarterlyCertified: Set<String> = [
        "AUD", "BRL", "CAD", "DKK", "HKD", "INR", "IRR", "JPY", "MYR", "MXN", "NZD", "NOK", "CNY", "PHP", "ZAR",
        "SGD", "LKR", "SEK", "CHF", "THB", "GBP", "VES", "VEF",
    ]

    /// Converts a foreign value to USD at the rate for the date of exportation.
    ///
    /// 19 CFR 159.32: the rate is that of the date of exportation. 19 CFR 159.34: for a currency
    /// with a quarterly rate (the first rate the FRBNY certifies in the quarter), that rate applies
    /// throughout the quarter unless the daily rate of the date of exportation differs from it by
    /// 5% or more; then the daily rate applies. Without a daily rate for that date the quarterly
    /// rate stands. A currency with no applicable rate is an error, never a guess.
    public func toUSD(_ value: Money, exportedOn date: Day) throws -> Conversion {
        if value.currency == .usd {
            return Conversion(usd: value.rounded(), rate: 1, basis: .none, reason: "value already in USD")
        }
        let dailyRate = daily[value.currency]?[date]
        let certifiedQuarterly = Self.quarterlyCertified.contains(value.currency.rawValue)
        if certifiedQuarterly, quarterly[value.currency]?[date.quarterStart] == nil {
            // A currency 159.34(a) lists takes its quarterly rate: a missing one is a gap, never
            // a fall back to the daily rate (review A11).
            throw DomainError(
                .missingRate,
                "no \(value.currency) quarterly rate for the quarter of \(date), the date of exportation (19 CFR 159.34(a) certifies one for \(value.currency)); publish it on the fx-rates topic"
            )
        }
        // A currency 159.34(a) does not list takes the daily rate (159.32), whatever quarterly
        // rate may be loaded for it.
        if certifiedQuarterly, let quarterlyRate = quarterly[value.currency]?[date.quarterStart] {
            if let dailyRate {
                let variance = abs(dailyRate - quarterlyRate) / quarterlyRate
                if variance >= Decimal(string: "0.05")! {
                    return Conversion(
                        usd: Money(value.amount * dailyRate, .usd).rounded(), rate: dailyRate, basis: .dailyVariance,
                        reason:
                            "19 CFR 159.34(b): the \(value.currency) daily rate for \(date) (\(dailyRate.plainText())) differs from the quarterly rate (\(quarterlyRate.plainText())) by \(percent(variance)), 5% or more, so the daily rate applies"
                    )
                }
            }
            return Conversion(
                usd: Money(value.amount * quarterlyRate, .usd).rounded(), rate: quarterlyRate, basis: .quarterly,
                reason:
                    "19 CFR 159.34(a): the \(value.currency) quarterly rate for the quarter of \(date) (\(quarterlyRate.plainText()))"
                    + (dailyRate == nil ? "; no daily rate certified for that date" : "; the daily rate is within 5%"))
        }
        guard let dailyRate else {
            throw DomainError(
                .missingRate,
                "no \(value.currency) rate for \(date), the date of exportation (19 CFR 159.32); publish the certified daily or quarterly rate on the fx-rates topic"
            )
        }
        return Conversion(
            usd: Money(value.amount * dailyRate, .usd).rounded(), rate: dailyRate, basis: .daily,
            reason: "19 CFR 159.32: the \(value.currency) rate certified for \(date), the date of exportation")
    }

    private func percent(_ fraction: Decimal) -> String {
        (fraction * 100).rounded(scale: 2).plainText() + "%"
    }
}

extension Day {
    var codingText: String { description }
}
