import Foundation

/// The customs regime a policy puts in force.
public enum Regime: String, Hashable, Sendable, Codable {
    /// Section 321 de minimis (19 U.S.C. 1321, 19 CFR 10.151): one person, one day, a value
    /// threshold; Type 86 is its entry lane.
    case section321
    /// No de minimis: commercial parcels take informal (Type 11) or formal (Type 01) entry.
    case noDeMinimis
}

/// An entry type (CBP Form 7501 instructions, block 2).
public enum EntryType: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
    /// Type 86: Section 321 de minimis, filed electronically.
    case t86 = "T86"
    /// Type 11: informal entry, free and dutiable, up to $2,500 (19 CFR 143.21(a)).
    case t11 = "T11"
    /// Type 01: formal consumption entry, free and dutiable.
    case t01 = "T01"
    /// Type 02: formal quota / visa entry.
    case t02 = "T02"
    /// Type 03: formal AD/CVD entry, whatever the value: there is no informal AD/CVD type.
    case t03 = "T03"
    /// Type 12: informal quota entry (other than textiles).
    case t12 = "T12"
    /// Type 07: formal quota / visa and AD/CVD entry.
    case t07 = "T07"

    public static func < (lhs: EntryType, rhs: EntryType) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Whether it is a formal entry (a licensed broker files it, with a bond).
    public var isFormal: Bool { self == .t01 || self == .t02 || self == .t03 || self == .t07 }

    /// The entry type of goods that are not de minimis, by what they are (CBP Form 7501
    /// instructions, block 2; 19 CFR 143.21(a)): AD/CVD goods take Type 03 whatever the value
    /// (07 with quota goods); quota goods Type 12 while informal, 02 when `formal`; anything
    /// else Type 11 while informal, 01 when `formal`.
    public static func nonDeMinimis(adcvd: Bool, quota: Bool, formal: Bool) -> EntryType {
        switch (adcvd, quota) {
        case (true, true): .t07
        case (true, false): .t03
        case (false, true): formal ? .t02 : .t12
        case (false, false): formal ? .t01 : .t11
        }
    }
}

/// One effective-dated set of rules. Every number and date names its source in `sources`.
public struct Policy: Hashable, Sendable, Codable {
    /// A stable id, e.g. `us-2025-08-29-suspension`.
    public var id: String
    /// The version decisions cite, e.g. `2025-08-29.1`.
    public var version: String
    /// The first arrival day (in the port's time zone) it governs.
    public var effectiveFrom: Day
    /// A line for people.
    public var title: String
    /// The regime.
    public var regime: Regime
    /// The per-consignee, per-day de minimis threshold in USD (Section 321 only).
    public var deMinimisThresholdUSD: Decimal?
    /// The informal-entry ceiling in USD (19 CFR 143.21(a)).
    public var informalEntryCeilingUSD: Decimal
    /// Countries of origin excluded from de minimis.
    public var excludedOrigins: [CountryCode]
    /// PGA flag codes that take a line off the de minimis lane (a "may be required" flag only
    /// when no valid disclaim code answers it).
    public var excludingPGAFlags: [String]
    /// HTS prefixes of goods taxed under the Internal Revenue Code (alcohol, tobacco): never de minimis.
    public var ircTaxedPrefixes: [String]
    /// HTS prefixes of goods subject to quota: never de minimis.
    public var quotaPrefixes: [String]
    /// Whether goods under an AD/CVD case take formal entry, Type 03 (true in every shipped
    /// policy): CBP Form 7501 instructions, block 2, have no informal AD/CVD type.
    public var adcvdRequiresFormalEntry: Bool
    /// 19 CFR 143.21(a)'s parenthetical: articles classified in Chapter 99, subchapters III and
    /// IV (Section 301, 232 and IEEPA duties) valued over this take formal entry; `nil` while CBP
    /// suspends the clause (from 2025-04-30, CSMS 64861116).
    public var chapter99FormalAboveUSD: Decimal?
    /// Exceptions to one entry per consignee per conveyance (19 CFR 141.51) this policy lets
    /// Clearway use, each citing 19 CFR 141.52; none by default.
    public var separateEntryExceptions: [String]?
    /// Goods that keep de minimis under a policy without it (review A13): the informational
    /// materials of 50 U.S.C. 1702(b), which the EO-based suspension left eligible (CSMS
    /// 66065494: de minimis barred for "all goods not identified in 50 U.S.C. 1702(b)").
    public var deMinimisCarveOut: CarveOut?
    /// Where each number and date comes from.
    public var sources: [String]
    /// Anything else a reader should know.
    public var notes: [String]?

    /// Whether de minimis exists under this policy.
    public var hasDeMinimis: Bool { regime == .section321 && deMinimisThresholdUSD != nil }

    /// Goods that keep de minimis where the policy otherwise has none.
    public struct CarveOut: Hashable, Sendable, Codable {
        /// HTS prefixes of the goods.
        public var htsPrefixes: [String]
        /// Their per-consignee, per-day threshold in USD.
        public var thresholdUSD: Decimal
        /// Where it comes from.
        public var citation: String

        /// Whether every one of these HTS numbers is carved out.
        public func covers(_ numbers: [HTSCode]) -> Bool {
            !numbers.isEmpty && numbers.allSatisfy { hts in htsPrefixes.contains { hts.hasPrefix($0) } }
        }
    }

    /// The day total per person a structuring signal compares an address's consignees against:
    /// the de minimis threshold, or without de minimis the informal-entry ceiling.
    public var structuringThresholdUSD: Decimal { deMinimisThresholdUSD ?? informalEntryCeilingUSD }
}

/// The effective-dated sequence of policies: which rules govern a shipment arriving on a day.
public struct PolicyTimeline: Hashable, Sendable, Codable {
    /// The timeline's name (`us` for the shipped one).
    public var name: String
    /// What it is.
    public var description: String
    /// The policies, in effective order.
    public private(set) var policies: [Policy]

    /// Makes a timeline; throws when it is empty, ids repeat or dates do not increase.
    public init(name: String, description: String, policies: [Policy]) throws {
        self.name = name
        self.description = description
        self.policies = policies
        try validate()
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        description = try container.decode(String.self, forKey: .description)
        policies = try container.decode([Policy].self, forKey: .policies)
        try validate()
    }

    private func validate() throws {
        guard !policies.isEmpty else { throw DomainError(.invalidPolicy, "policy timeline \(name) has no policies") }
        for (earlier, later) in zip(policies, policies.dropFirst()) where !(earlier.effectiveFrom < later.effectiveFrom)
        {
            throw DomainError(
                .invalidPolicy,
                "policy timeline \(name): \(later.id) (\(later.effectiveFrom)) must start after \(earlier.id) (\(earlier.effectiveFrom))"
            )
        }
        guard Set(policies.map(\.id)).count == policies.count else {
            throw DomainError(.invalidPolicy, "policy timeline \(name) repeats a policy id")
        }
        for policy in policies where policy.regime == .section321 && policy.deMinimisThresholdUSD == nil {
            throw DomainError(.invalidPolicy, "policy \(policy.id) is Section 321 but has no deMinimisThresholdUSD")
        }
    }

    /// The policy governing arrivals on `day`.
    public func policy(on day: Day) throws -> Policy {
        guard let policy = policies.last(where: { $0.effectiveFrom <= day }) else {
            throw DomainError(
                .noPolicyInForce,
                "timeline \(name) has no policy for \(day); its first starts \(policies[0].effectiveFrom)")
        }
        return policy
    }

    /// A what-if: this timeline with one of its policies forced for every day.
    public func forcing(_ id: String) throws -> PolicyTimeline {
        guard var policy = policies.first(where: { $0.id == id }) else {
            throw DomainError(
                .invalidPolicy,
                "timeline \(name) has no policy \(id); it has \(policies.map(\.id).joined(separator: ", "))")
        }
        policy.effectiveFrom = Day(year: 1900, month: 1, day: 1)
        return try PolicyTimeline(
            name: "\(name)+forced:\(id)", description: "what-if: \(policy.title)", policies: [policy])
    }

    /// Reads a timeline from JSON.
    public static func load(_ data: Data) throws -> PolicyTimeline {
        do {
            return try JSONDecoder().decode(PolicyTimeline.self, from: data)
        } catch let error as DomainError {
            throw error
        } catch {
            throw DomainError(.invalidPolicy, "policy timeline is not valid: \(describe(error))")
        }
    }

    /// The shipped timelines, by name: `us` (the law as it stands) and `section321-whatif`
    /// (Section 321 at $800 as if it had never been suspended).
    public static let shippedNames = ["us", "section321-whatif"]

    /// A shipped timeline by name, or a timeline file by path (what `CLEARWAY_POLICY` holds).
    public static func named(_ nameOrPath: String) throws -> PolicyTimeline {
        if shippedNames.contains(nameOrPath) {
            return try load(ShippedData.data("policy-\(nameOrPath)"))
        }
        let url = URL(fileURLWithPath: nameOrPath)
        guard let data = try? Data(contentsOf: url) else {
            throw DomainError(
                .invalidPolicy,
                "no policy timeline \"\(nameOrPath)\": give a file path or one of \(shippedNames.joined(separator: ", "))"
            )
        }
        return try load(data)
    }

    /// The shipped timeline of the law as it stands.
    public static func shipped() throws -> PolicyTimeline { try named("us") }
}

/// A port of entry and the time zone its calendar day is counted in.
public struct Port: Hashable, Sendable, Codable {
    /// The CBP port code, e.g. `2506`.
    public var code: String
    /// Its name.
    public var name: String
    /// Its IANA time zone, e.g. `America/Los_Angeles`.
    public var timeZone: String

    /// The port's time zone.
    public func zone() throws -> TimeZone {
        guard let zone = TimeZone(identifier: timeZone) else {
            throw DomainError(.unknownPort, "port \(code) has an unknown time zone \(timeZone)")
        }
        return zone
    }

    /// The calendar day of arrival at this port (19 CFR 10.151's "one day" is counted here).
    public func arrivalDay(_ instant: Date) throws -> Day { Day(instant, in: try zone()) }
}

/// The ports Clearway knows.
public struct PortDirectory: Sendable {
    public let ports: [String: Port]

    /// Makes a directory.
    public init(_ ports: [Port]) { self.ports = Dictionary(ports.map { ($0.code, $0) }) { _, last in last } }

    /// A port by code.
    public func port(_ code: String) throws -> Port {
        guard let port = ports[code] else {
            throw DomainError(
                .unknownPort, "unknown port of entry \(code); known: \(ports.keys.sorted().joined(separator: ", "))")
        }
        return port
    }

    /// Reads `[{"code", "name", "timeZone"}]`.
    public static func load(_ data: Data) throws -> PortDirectory {
        do {
            let ports = try JSONDecoder().decode([Port].self, from: data)
            for port in ports { _ = try port.zone() }
            return PortDirectory(ports)
        } catch let error as DomainError {
            throw error
        } catch {
            throw DomainError(.invalidReferenceData, "ports file is not valid: \(describe(error))")
        }
    }

    /// The shipped U.S. land-border ports.
    public static func shipped() throws -> PortDirectory { try load(ShippedData.data("ports")) }
}

/// The reference data shipped with the library (`Resources/`).
public enum ShippedData {
    /// The bytes of a shipped JSON file, by base name.
    public static func data(_ name: String) throws -> Data {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Resources") else {
            throw DomainError(.invalidReferenceData, "shipped data \(name).json is missing from the build")
        }
        return try Data(contentsOf: url)
    }
}

/// A decoding error in words a person can act on.
func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, let context):
        return "missing \"\(key.stringValue)\" at \(path(context))"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
        DecodingError.dataCorrupted(let context):
        if let underlying = context.underlyingError as? DomainError { return "\(path(context)): \(underlying.message)" }
        return "\(path(context)): \(context.debugDescription)"
    case let error as DomainError:
        return error.message
    default:
        return "\(error)"
    }
}

private func path(_ context: DecodingError.Context) -> String {
    let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    return path.isEmpty ? "the top level" : path
}
