import Foundation

/// A Harmonized Tariff Schedule of the United States number: chapter (2 digits), heading (4),
/// subheading (6), U.S. rate line (8) or statistical reporting number (10).
///
/// Accepts `6109.10.0012`, `6109100012`, `6109.10.00` and so on. Chapter 77 is reserved and
/// chapter 00 does not exist (HTSUS General Notes; USITC HTS). Chapter 98 and 99 numbers exist
/// but are never reported alone on a line: see `LineClassification`.
public struct HTSCode: StringCodable, Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The digits, 2 to 10 of them (an even count).
    public let digits: String

    /// Parses an HTS number.
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.filter { $0 != "." }
        guard digits.allSatisfy(\.isASCIIDigit), [2, 4, 6, 8, 10].contains(digits.count) else {
            throw DomainError(
                .invalidHTS,
                "\(DomainError.quoted(text)) is not an HTS number (2, 4, 6, 8 or 10 digits, e.g. 6109.10.0012)")
        }
        if trimmed.contains(".") {
            // Points only where the schedule puts them: 6109.10.00.12 / 6109.10.0012.
            let allowed: Set<Int> = [4, 7, 10]
            let points = trimmed.enumerated().filter { $0.element == "." }.map(\.offset)
            guard Set(points).isSubset(of: allowed), points.count == Set(points).count,
                !trimmed.hasSuffix(".")
            else {
                throw DomainError(
                    .invalidHTS, "\(DomainError.quoted(text)) has points in the wrong places (write 6109.10.0012)")
            }
        }
        let chapter = Int(digits.prefix(2))!
        guard chapter >= 1 else {
            throw DomainError(.invalidHTS, "\(DomainError.quoted(text)): there is no chapter 00 in the HTS")
        }
        guard chapter != 77 else {
            throw DomainError(
                .invalidHTS, "\(DomainError.quoted(text)): chapter 77 is reserved for future use in the HTS")
        }
        self.digits = digits
    }

    /// The chapter, 1–99.
    public var chapter: Int { Int(digits.prefix(2))! }
    /// The 4-digit heading, if the number is that long.
    public var heading: String? { digits.count >= 4 ? String(digits.prefix(4)) : nil }
    /// The 6-digit (international) subheading.
    public var subheading: String? { digits.count >= 6 ? String(digits.prefix(6)) : nil }
    /// The 8-digit U.S. tariff rate line (what Section 301 lists name).
    public var rateLine: String? { digits.count >= 8 ? String(digits.prefix(8)) : nil }
    /// `true` for a full 10-digit statistical reporting number, which entries require.
    public var isStatisticalReportingNumber: Bool { digits.count == 10 }
    /// `true` for chapter 98 (special classification provisions) and 99 (temporary legislation,
    /// Section 301 / 232 and other additional duties).
    public var isSpecialProvision: Bool { chapter >= 98 }

    /// `true` when `prefix` (digits, points ignored) starts this number.
    public func hasPrefix(_ prefix: String) -> Bool { digits.hasPrefix(prefix.filter { $0 != "." }) }

    /// The dotted form: `6109.10.0012`.
    public var description: String {
        var text = ""
        for (index, digit) in digits.enumerated() {
            if index == 4 || index == 6 { text.append(".") }
            text.append(digit)
        }
        return text
    }

    public static func < (lhs: HTSCode, rhs: HTSCode) -> Bool { lhs.digits < rhs.digits }
}

/// The classification reported on one entry line: a chapter 1–97 number, with any chapter 98 / 99
/// numbers reported in addition to it (never alone).
public struct LineClassification: Hashable, Sendable, Codable {
    /// The chapter 1–97 statistical reporting number (10 digits).
    public let primary: HTSCode
    /// Chapter 98 / 99 numbers reported with it.
    public let additional: [HTSCode]

    /// Makes a line's classification; throws when the primary number is not a 10-digit chapter
    /// 1–97 number or an additional one is not chapter 98 / 99.
    public init(primary: HTSCode, additional: [HTSCode] = []) throws {
        guard primary.isStatisticalReportingNumber else {
            throw DomainError(
                .invalidHTS, "\(primary) is not a 10-digit statistical reporting number, which an entry line needs")
        }
        guard !primary.isSpecialProvision else {
            throw DomainError(
                .invalidHTS,
                "\(primary) is a chapter \(primary.chapter) number, which is reported in addition to a chapter 1–97 number, never alone"
            )
        }
        if let stray = additional.first(where: { !$0.isSpecialProvision }) {
            throw DomainError(.invalidHTS, "\(stray) is not a chapter 98/99 number; a line has one chapter 1–97 number")
        }
        self.primary = primary
        self.additional = additional
    }
}

extension HTSCode {
    var codingText: String { description }
}
