import Foundation

/// One row of the USITC HTS JSON export.
public struct HTSRow: Hashable, Sendable, Codable {
    public var htsno: String
    public var indent: String?
    public var description: String
    public var superior: String?
    public var units: [String]?
    public var general: String?
    public var special: String?
    public var other: String?
    public var footnotes: [Footnote]?

    /// A footnote of a row.
    public struct Footnote: Hashable, Sendable, Codable {
        public var columns: [String]?
        public var value: String?
        public var type: String?
    }

    enum CodingKeys: String, CodingKey {
        case htsno, indent, description, superior, units, general, special, other, footnotes
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        htsno = try container.decodeIfPresent(String.self, forKey: .htsno) ?? ""
        // The export writes indent as a string; accept a number too.
        if let text = try? container.decodeIfPresent(String.self, forKey: .indent) {
            indent = text
        } else {
            indent = (try? container.decodeIfPresent(Int.self, forKey: .indent)).flatMap { $0.map(String.init) }
        }
        description = try container.decodeIfPresent(String.self, forKey: .description) ?? ""
        superior = try? container.decodeIfPresent(String.self, forKey: .superior)
        units = try container.decodeIfPresent([String].self, forKey: .units)
        general = try container.decodeIfPresent(String.self, forKey: .general)
        special = try container.decodeIfPresent(String.self, forKey: .special)
        other = try container.decodeIfPresent(String.self, forKey: .other)
        footnotes = try? container.decodeIfPresent([Footnote].self, forKey: .footnotes)
    }
}

/// The HTS as the USITC publishes it (JSON export: `htsno`, `indent`, `description`, `units`,
/// `general`, `special`, `other`, `footnotes`), indexed by number.
public struct HTSReference: Sendable {
    /// One number in the schedule.
    public struct Entry: Hashable, Sendable {
        public var code: HTSCode
        /// Its description, with those of the rows it sits under ("Of cotton" → "T-shirts…: Of cotton").
        public var description: String
        public var units: [String]
        /// The general (column 1) rate of the nearest row that states one.
        public var generalRate: String?
    }

    /// Which release this is, e.g. `2025 Revision 19`.
    public let revision: String
    /// The first day it applies.
    public let effectiveFrom: Day
    private let entries: [String: Entry]

    /// Every numbered row.
    public var count: Int { entries.count }

    /// Reads the USITC JSON export. Rows without a number (headings' text) give context to the
    /// rows beneath them.
    public init(json data: Data, revision: String, effectiveFrom: Day) throws {
        let rows: [HTSRow]
        do {
            rows = try JSONDecoder().decode([HTSRow].self, from: data)
        } catch {
            throw DomainError(
                .invalidReferenceData,
                "HTS reference is not a USITC HTS JSON export (an array of rows): \(describe(error))")
        }
        var entries: [String: Entry] = [:]
        var context: [Int: (description: String, rate: String?)] = [:]
        for (index, row) in rows.enumerated() {
            let level = Int(row.indent ?? "0") ?? 0
            context = context.filter { $0.key < level }
            let rate = row.general.flatMap { $0.isEmpty ? nil : $0 } ?? context.values.compactMap(\.rate).last
            let parents = context.keys.sorted().map { context[$0]!.description }
            context[level] = (row.description, rate)
            guard !row.htsno.isEmpty else { continue }
            let code: HTSCode
            do {
                code = try HTSCode(row.htsno)
            } catch let error as DomainError {
                throw DomainError(.invalidReferenceData, "HTS reference row \(index + 1): \(error.message)")
            }
            let description = (parents + [row.description]).filter { !$0.isEmpty }.suffix(3).joined(separator: ": ")
            entries[code.digits] = Entry(
                code: code, description: description, units: row.units ?? [], generalRate: rate)
        }
        self.revision = revision
        self.effectiveFrom = effectiveFrom
        self.entries = entries
    }

    /// The entry for exactly this number.
    public func entry(_ code: HTSCode) -> Entry? { entries[code.digits] }

    /// Whether the schedule has this number.
    public func contains(_ code: HTSCode) -> Bool { entries[code.digits] != nil }

    /// The shipped excerpt (for tests and the demo; point production at the full export).
    public static func shippedExcerpt() throws -> HTSReference {
        try HTSReference(
            json: ShippedData.data("hts-excerpt"), revision: "excerpt of the 2025 HTSUS",
            effectiveFrom: Day(year: 2025, month: 1, day: 1))
    }
}

/// A PGA (partner government agency) flag on an HTS number, e.g. `FD2`.
///
/// Whether the agency's data is required, or only *may be* required so that a disclaim code (A–D)
/// can answer the flag, is looked up per flag in `PGAFlag.meanings` — data, not the digit's parity:
/// most odd flags may be disclaimed and most even ones may not, but FW3 is always required (CBP's
/// FWS implementation guide, Aug 2017). A flag not in the table is treated as required.
public struct PGAFlag: StringCodable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let code: String

    /// Parses a flag: two letters and a digit (`FD1`, `EP7`).
    public init(_ text: String) throws {
        let code = text.trimmingCharacters(in: .whitespaces).uppercased()
        let characters = Array(code)
        guard characters.count == 3, characters[0].isLetter, characters[1].isLetter, characters[2].isASCIIDigit,
            characters[2] != "0"
        else {
            throw DomainError(
                .invalidReferenceData, "\"\(text)\" is not a PGA flag (two letters and a digit, e.g. FD2)")
        }
        self.code = code
    }

    /// The agency code, e.g. `FD`.
    public var agencyCode: String { String(code.prefix(2)) }
    /// `true` when the agency's data is required and no disclaim code can answer the flag: from
    /// the flag's row in `meanings`, and `true` for a flag not in it (the safe reading — a filer
    /// who sends the data for a flag that did not need it loses nothing).
    public var isRequired: Bool { Self.meanings[code]?.requirement != .mayBeRequired }
    /// `true` when a disclaim code (A–D) may answer the flag instead of the agency's data.
    public var isDisclaimable: Bool { !isRequired }
    /// What the flag means, from `meanings`; nil for a flag Clearway does not know.
    public var meaning: Meaning? { Self.meanings[code] }

    /// What a flag asks the filer for.
    public enum Requirement: String, Hashable, Sendable {
        /// The agency's data must be sent; no disclaim code answers the flag.
        case required
        /// The data may be required: the filer sends it, or a disclaim code saying the good is
        /// not regulated by the agency.
        case mayBeRequired
    }

    /// One flag's row: what it asks for, what it covers, and where that is written.
    public struct Meaning: Hashable, Sendable {
        /// Required, or may be required (disclaimable).
        public var requirement: Requirement
        /// The agency's program the flag stands for.
        public var program: String
        /// Where the flag's meaning is written.
        public var source: String
    }

    /// The per-flag table (DOMAIN.md, PGA flags). Sources: CBP's "ACE Agency Tariff Code" list of
    /// HTS flags (R = required, M = may be required; all disclaim codes allowed unless an agency's
    /// implementation guide says otherwise), the agencies' CATAIR implementation guides, and for
    /// FWS the implementation guide of August 2017, which keeps two flags: FW1 "likely to contain"
    /// wildlife (may be disclaimed) and FW3, goods that *always* require an FWS declaration
    /// (Form 3-177; the guide's disclaim codes for a declaration already filed with FWS on paper or
    /// in eDecs are not modelled). FW2 is kept as required (DOMAIN.md). TB1 and TB3 take a disclaim
    /// code (CSMS 17-000248). AMS (AM*), NMFS (NM*) and other TTB flags are not listed: their
    /// per-flag meaning is unconfirmed here, so they read as required.
    public static let meanings: [String: Meaning] = {
        let tariffCodes = "CBP ACE Agency Tariff Code list (HTS flags, R/M)"
        func row(_ requirement: Requirement, _ program: String, _ source: String = tariffCodes) -> Meaning {
            Meaning(requirement: requirement, program: program, source: source)
        }
        let fws = "CBP/FWS ACE implementation guide, Aug 2017"
        let ttb = "CSMS 17-000248 (TTB ACE filing guidelines v7.5); ACE Agency Tariff Codes (10-17)"
        return [
            "AL1": row(.mayBeRequired, "APHIS Lacey Act plant declaration"),
            "AL2": row(.required, "APHIS Lacey Act plant declaration"),
            "AQ1": row(.mayBeRequired, "APHIS plant and animal health"),
            "AQ2": row(.required, "APHIS plant and animal health"),
            "DT1": row(.mayBeRequired, "NHTSA motor vehicles and equipment (HS-7)"),
            "DT2": row(.required, "NHTSA motor vehicles and equipment (HS-7)"),
            "EP1": row(.mayBeRequired, "EPA ozone-depleting substances"),
            "EP2": row(.required, "EPA ozone-depleting substances"),
            "EP3": row(.mayBeRequired, "EPA vehicles and engines"),
            "EP4": row(.required, "EPA vehicles and engines"),
            "EP5": row(.mayBeRequired, "EPA pesticides"),
            "EP6": row(.required, "EPA pesticides"),
            "EP7": row(.mayBeRequired, "EPA toxic substances (TSCA)"),
            "EP8": row(.required, "EPA toxic substances (TSCA)"),
            "FD1": row(.mayBeRequired, "FDA"),
            "FD2": row(.required, "FDA"),
            "FD3": row(.mayBeRequired, "FDA prior notice (food)"),
            "FD4": row(.required, "FDA prior notice (food)"),
            "FS3": row(.mayBeRequired, "FSIS meat, poultry and egg products"),
            "FS4": row(.required, "FSIS meat, poultry and egg products"),
            "FW1": row(.mayBeRequired, "FWS: likely to contain wildlife; may be disclaimed", fws),
            "FW2": row(.required, "FWS declaration", "DOMAIN.md (FW2 required)"),
            "FW3": row(.required, "FWS: always requires a declaration (Form 3-177); cannot be disclaimed", fws),
            // TTB: CSMS 17-000248 (2017-04-28, read through a copy) — "for a small set of TB1 flags,
            // disclaim codes A and C are allowed; otherwise, only C" (C: TTB data met by other
            // approved means); the Agency Tariff Codes list (10-17), as quoted by an ABI library,
            // allows A or C on TB3. Which code a flag takes is not modelled here.
            "TB1": row(.mayBeRequired, "TTB alcohol and tobacco (disclaim code C; A for some)", ttb),
            "TB3": row(.mayBeRequired, "TTB alcohol and tobacco (disclaim code A or C)", ttb),
        ]
    }()

    /// The agency's name, where known.
    public var agency: String {
        switch agencyCode {
        case "FD": return code == "FD3" || code == "FD4" ? "FDA (prior notice)" : "FDA"
        case "EP": return "EPA"
        case "DT": return "NHTSA"
        case "AQ": return "APHIS"
        case "AL": return "APHIS (Lacey Act)"
        case "FS": return "FSIS"
        case "FW": return "Fish & Wildlife Service"
        case "AM": return "AMS"
        case "TB": return "TTB"
        case "NM": return "NMFS"
        default: return agencyCode
        }
    }

    public var description: String { code }
    public static func < (lhs: PGAFlag, rhs: PGAFlag) -> Bool { lhs.code < rhs.code }
}

/// A disclaim code answering a "may be required" PGA flag (A–D in ACE).
public enum DisclaimCode: String, Hashable, Sendable, Codable {
    case a = "A", b = "B", c = "C", d = "D"
}

/// Something that holds from one day until (not including) another.
public struct EffectivePeriod: Hashable, Sendable, Codable {
    public var effectiveFrom: Day
    public var effectiveUntil: Day?

    /// Whether `day` falls in the period.
    public func contains(_ day: Day) -> Bool {
        effectiveFrom <= day && (effectiveUntil.map { day < $0 } ?? true)
    }
}

/// The PGA flag table: HTS prefix → flags, effective-dated.
///
/// File format (JSON): `{"source": "…", "entries": [{"htsPrefix": "0901", "flags": ["FD3"],
/// "effectiveFrom": "2019-01-01", "effectiveUntil": null}]}`. A number's flags are those of every
/// entry whose prefix starts it and whose period holds the day.
public struct PGAFlagTable: Sendable, Codable {
    public struct Entry: Hashable, Sendable, Codable {
        public var htsPrefix: String
        public var flags: [PGAFlag]
        public var effectiveFrom: Day
        public var effectiveUntil: Day?
        var period: EffectivePeriod { EffectivePeriod(effectiveFrom: effectiveFrom, effectiveUntil: effectiveUntil) }
    }

    public var source: String
    public var entries: [Entry]

    /// The flags on a number on a day.
    public func flags(for code: HTSCode, on day: Day) -> Set<PGAFlag> {
        Set(entries.filter { code.hasPrefix($0.htsPrefix) && $0.period.contains(day) }.flatMap(\.flags))
    }

    /// Reads the table.
    public static func load(_ data: Data) throws -> PGAFlagTable {
        do {
            let table = try JSONDecoder().decode(PGAFlagTable.self, from: data)
            for entry in table.entries where entry.htsPrefix.filter({ $0 != "." }).contains(where: { !$0.isASCIIDigit })
            {
                throw DomainError(.invalidReferenceData, "PGA flag table: \"\(entry.htsPrefix)\" is not an HTS prefix")
            }
            return table
        } catch let error as DomainError {
            throw error
        } catch {
            throw DomainError(.invalidReferenceData, "PGA flag table is not valid: \(describe(error))")
        }
    }

    /// The shipped excerpt.
    public static func shipped() throws -> PGAFlagTable { try load(ShippedData.data("pga-flags")) }
}

/// A list of HTS numbers under an additional-duty action (Section 301, Section 232),
/// effective-dated.
///
/// File format (JSON): `{"action": "section301", "source": "…", "entries": [{"hts": "6109.10.00",
/// "list": "4A", "rate": "7.5%", "effectiveFrom": "2020-02-14", "effectiveUntil": null,
/// "citation": "85 FR 3741", "origins": null, "exceptOrigins": ["MX"]}]}`. Section 301 lists name 8-digit subheadings; Section 232 lists
/// name headings, subheadings or full numbers. A number is covered when a listed number starts it.
public struct TariffActionList: Sendable, Codable {
    public struct Entry: Hashable, Sendable, Codable {
        public var hts: String
        public var list: String?
        public var rate: String?
        public var effectiveFrom: Day
        public var effectiveUntil: Day?
        public var citation: String?
        /// When given, the entry covers goods of these origins only (ISO codes).
        public var origins: [String]?
        /// Origins the entry does not cover (an exemption, e.g. Mexico and Canada from Section
        /// 232 from 2019-05-20 to 2025-03-11).
        public var exceptOrigins: [String]?
        var period: EffectivePeriod { EffectivePeriod(effectiveFrom: effectiveFrom, effectiveUntil: effectiveUntil) }

        /// Whether it covers goods of `origin` (every origin when nil).
        func covers(_ origin: CountryCode?) -> Bool {
            guard let origin else { return origins == nil }
            if let origins, !origins.contains(origin.rawValue) { return false }
            return !(exceptOrigins ?? []).contains(origin.rawValue)
        }
    }

    public var action: String
    public var source: String
    public var entries: [Entry]

    /// The entries covering a number of an origin (any, when nil) on a day.
    public func matches(_ code: HTSCode, origin: CountryCode? = nil, on day: Day) -> [Entry] {
        entries.filter { code.hasPrefix($0.hts) && $0.period.contains(day) && $0.covers(origin) }
    }

    /// Reads a list.
    public static func load(_ data: Data) throws -> TariffActionList {
        do {
            let list = try JSONDecoder().decode(TariffActionList.self, from: data)
            for entry in list.entries { _ = try HTSCode(entry.hts) }
            return list
        } catch let error as DomainError {
            throw DomainError(.invalidReferenceData, "tariff action list: \(error.message)")
        } catch {
            throw DomainError(.invalidReferenceData, "tariff action list is not valid: \(describe(error))")
        }
    }

    /// The shipped Section 301 excerpt.
    public static func shippedSection301() throws -> TariffActionList { try load(ShippedData.data("section301")) }
    /// The shipped Section 232 excerpt.
    public static func shippedSection232() throws -> TariffActionList { try load(ShippedData.data("section232")) }
}

extension PGAFlag {
    var codingText: String { code }
}
