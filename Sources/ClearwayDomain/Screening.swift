import Foundation

/// Why a decision came out as it did: the rule, where it comes from, the policy version, and a
/// sentence for an auditor.
public struct Reason: Hashable, Sendable, Codable, CustomStringConvertible {
    /// A stable rule id, e.g. `s321.origin-excluded`.
    public var rule: String
    /// The regulation or order it rests on.
    public var citation: String
    /// The version of the policy in force.
    public var policyVersion: String
    /// What happened, in words.
    public var text: String

    /// Makes a reason.
    public init(rule: String, citation: String, policyVersion: String, text: String) {
        self.rule = rule
        self.citation = citation
        self.policyVersion = policyVersion
        self.text = text
    }

    public var description: String { "[\(rule) · \(citation) · policy \(policyVersion)] \(text)" }
}

/// One order line as screening sees it.
public struct ScreeningLine: Hashable, Sendable {
    public var sku: String
    public var hts: HTSCode
    public var origin: CountryCode
    /// The SKU's own PGA flags; when given they replace the reference table's.
    public var skuFlags: Set<PGAFlag>?
    /// Disclaim codes the SKU carries, by flag.
    public var disclaimers: [PGAFlag: DisclaimCode]
    /// An antidumping / countervailing duty case number, if the goods are under one.
    public var adcvdCase: String?

    /// Makes a line.
    public init(
        sku: String, hts: HTSCode, origin: CountryCode, skuFlags: Set<PGAFlag>? = nil,
        disclaimers: [PGAFlag: DisclaimCode] = [:], adcvdCase: String? = nil
    ) {
        self.sku = sku
        self.hts = hts
        self.origin = origin
        self.skuFlags = skuFlags
        self.disclaimers = disclaimers
        self.adcvdCase = adcvdCase
    }
}

/// What screening found for one line.
public struct LineScreening: Hashable, Sendable {
    /// A PGA flag on the line and how it stands.
    public struct FlagFinding: Hashable, Sendable {
        public var flag: PGAFlag
        public var agency: String
        /// The agency's data is required (`PGAFlag.meanings`), not merely possibly required.
        public var isRequired: Bool
        /// The disclaim code answering a "may be required" flag.
        public var disclaimer: DisclaimCode?
        /// Whether this flag takes the line off the de minimis lane under the policy.
        public var excludesDeMinimis: Bool
    }

    public var sku: String
    public var hts: HTSCode
    public var origin: CountryCode
    public var flags: [FlagFinding]
    /// Reasons the line may not use de minimis (empty when it may).
    public var deMinimisExclusions: [Reason]
    /// Section 301 entries covering the line.
    public var section301: [TariffActionList.Entry]
    /// Section 232 entries covering the line.
    public var section232: [TariffActionList.Entry]
    /// The line must take formal entry (an AD/CVD case: Type 03).
    public var requiresFormalEntry: Bool
    /// The line is quota merchandise (the policy's quota list): Type 12 while informal, 02 above.
    public var isQuota: Bool = false
    /// The line is classified in Chapter 99, subchapter III or IV: it carries a Section 301 or
    /// 232 duty (19 CFR 143.21(a)'s parenthetical).
    public var isChapter99: Bool { !section301.isEmpty || !section232.isEmpty }
    /// The HTS number is not in the reference (never read as "unflagged").
    public var unknownHTS: Bool
}

/// Which entry lanes an order may, and must, take, and why.
public struct Screening: Hashable, Sendable {
    public var policyID: String
    public var policyVersion: String
    public var lines: [LineScreening]
    /// The lanes the order may take, most favourable first (T86, T11, T01; T12, T02 for quota
    /// goods; only T03 or T07 for AD/CVD goods).
    public var allowedLanes: [EntryType]
    /// A lane the order must take whatever its value, if any.
    public var requiredLane: EntryType?
    public var reasons: [Reason]

    /// Whether the order may use the de minimis lane (and so counts towards the daily total).
    public var isDeMinimisEligible: Bool { allowedLanes.contains(.t86) }
    /// Lines whose HTS number the reference lacks: these need an exception, not a guess.
    public var unknownHTSLines: [LineScreening] { lines.filter(\.unknownHTS) }
}

/// Screening: the regime's exclusions and the PGA, Section 301 and 232 exposure of an order.
/// Pure: reference data in, decision out.
public struct Screener: Sendable {
    public var pgaFlags: PGAFlagTable
    public var section301: TariffActionList
    public var section232: TariffActionList
    /// When given, a number missing from it is reported (`unknownHTS`), never taken as unflagged.
    public var htsReference: HTSReference?

    /// Makes a screener.
    public init(
        pgaFlags: PGAFlagTable, section301: TariffActionList, section232: TariffActionList,
        htsReference: HTSReference? = nil
    ) {
        self.pgaFlags = pgaFlags
        self.section301 = section301
        self.section232 = section232
        self.htsReference = htsReference
    }

    /// The screener over the shipped excerpts.
    public static func shipped() throws -> Screener {
        try Screener(
            pgaFlags: .shipped(), section301: .shippedSection301(), section232: .shippedSection232(),
            htsReference: .shippedExcerpt())
    }

    /// Screens an order's lines for arrival on `day` under `policy`.
    public func screen(_ lines: [ScreeningLine], on day: Day, policy: Policy) -> Screening {
        let version = policy.version
        func reason(_ rule: String, _ citation: String, _ text: String) -> Reason {
            Reason(rule: rule, citation: citation, policyVersion: version, text: text)
        }
        // Review B2: the e-commerce FAQ does not exclude PGA goods as such. Before the Type 86 test
        // a manifest release carried no PGA data; from it, only fee-collecting programs keep a
        // line off Type 86 (CBP's Type 86 FAQ; 84 FR 40079).
        let pgaCitation =
            policy.sources.contains { $0.contains("84 FR 40079") }
            ? "CBP Type 86 FAQ (fee collection); 84 FR 40079" : "19 CFR 10.151; manifest release carries no PGA data"
        var results: [LineScreening] = []
        for line in lines {
            var exclusions: [Reason] = []
            let unknown = htsReference.map { !$0.contains(line.hts) } ?? false
            // Per-SKU flags win over the table (an unflagged number does not prove a good unregulated).
            let flags = (line.skuFlags ?? pgaFlags.flags(for: line.hts, on: day)).sorted()
            var findings: [LineScreening.FlagFinding] = []
            for flag in flags {
                let listed = policy.excludingPGAFlags.contains { flag.code.hasPrefix($0) }
                let disclaimer = flag.isRequired ? nil : line.disclaimers[flag]
                let excludes = policy.hasDeMinimis && listed && disclaimer == nil
                findings.append(
                    .init(
                        flag: flag, agency: flag.agency, isRequired: flag.isRequired, disclaimer: disclaimer,
                        excludesDeMinimis: excludes))
                if excludes {
                    exclusions.append(
                        reason(
                            "s321.pga-excluded", pgaCitation,
                            flag.isRequired
                                ? "\(line.sku): \(flag) — \(flag.agency) data is required, so the line cannot enter under de minimis"
                                : "\(line.sku): \(flag) — \(flag.agency) data may be required and no disclaim code answers it"
                        ))
                }
            }
            let quota = policy.quotaPrefixes.first(where: { line.hts.hasPrefix($0) })
            if policy.hasDeMinimis {
                if policy.excludedOrigins.contains(line.origin) {
                    exclusions.append(
                        reason(
                            "s321.origin-excluded",
                            policy.sources.first { $0.contains("14256") || $0.contains("14195") }
                                ?? "policy \(policy.id)",
                            "\(line.sku): origin \(line.origin) is excluded from de minimis from \(policy.effectiveFrom)"
                        ))
                }
                if let adcvd = line.adcvdCase {
                    exclusions.append(
                        reason(
                            "s321.adcvd-excluded", "CBP e-commerce FAQ",
                            "\(line.sku): goods under AD/CVD case \(adcvd) cannot use de minimis"))
                }
                if let prefix = quota {
                    exclusions.append(
                        reason(
                            "s321.quota-excluded", "CBP e-commerce FAQ",
                            "\(line.sku): HTS \(line.hts) (under \(prefix)) is quota merchandise, never de minimis"))
                }
                if let prefix = policy.ircTaxedPrefixes.first(where: { line.hts.hasPrefix($0) }) {
                    exclusions.append(
                        reason(
                            "s321.irc-taxed-excluded", "CBP e-commerce FAQ; 26 U.S.C. ch. 51–52",
                            "\(line.sku): HTS \(line.hts) (under \(prefix)) is taxed under the Internal Revenue Code (alcohol / tobacco), never de minimis"
                        ))
                }
            }
            let formal = line.adcvdCase != nil && policy.adcvdRequiresFormalEntry
            results.append(
                LineScreening(
                    sku: line.sku, hts: line.hts, origin: line.origin, flags: findings, deMinimisExclusions: exclusions,
                    section301: line.origin.rawValue == "CN" ? section301.matches(line.hts, on: day) : [],
                    section232: section232.matches(line.hts, origin: line.origin, on: day), requiresFormalEntry: formal,
                    isQuota: quota != nil, unknownHTS: unknown)
            )
        }

        var reasons = results.flatMap(\.deMinimisExclusions)
        var allowed: [EntryType] = [.t11, .t01]
        var required: EntryType?
        let quota = results.contains(where: \.isQuota)
        if results.contains(where: \.requiresFormalEntry) {
            // CBP Form 7501 instructions, block 2: AD/CVD goods are Type 03 (07 with quota
            // goods) whatever their value; there is no informal AD/CVD type.
            let type = EntryType.nonDeMinimis(adcvd: true, quota: quota, formal: true)
            required = type
            allowed = [type]
            reasons.append(
                reason(
                    "formal.adcvd", "CBP Form 7501 instructions, block 2",
                    "goods under an AD/CVD case: entry type \(type.rawValue.dropFirst()) whatever the value; there is no informal AD/CVD type"
                ))
        } else if quota {
            allowed = [.t12, .t02]
            reasons.append(
                reason(
                    "entry.quota", "CBP Form 7501 instructions, block 2; 19 CFR 143.21(a)",
                    "quota merchandise: Type 12 (informal quota) within $\(policy.informalEntryCeilingUSD.plainText()), Type 02 above"
                ))
        }
        if !policy.hasDeMinimis, required == nil, !quota, let carveOut = policy.deMinimisCarveOut,
            carveOut.covers(results.map(\.hts))
        {
            allowed.insert(.t86, at: 0)
            reasons.append(
                reason(
                    "de-minimis.carve-out", carveOut.citation,
                    "every line is informational material (50 U.S.C. 1702(b)), which kept de minimis under \(policy.title): Type 86 within $\(carveOut.thresholdUSD.plainText()) a day"
                ))
        } else if !policy.hasDeMinimis {
            reasons.append(
                reason(
                    "no-de-minimis", policy.sources.first ?? policy.id,
                    "no de minimis under \(policy.title); informal (T11) up to $\(policy.informalEntryCeilingUSD.plainText()), formal (T01) above"
                ))
        } else if results.allSatisfy(\.deMinimisExclusions.isEmpty) && required == nil {
            allowed.insert(.t86, at: 0)
            reasons.append(
                reason(
                    "s321.eligible", "19 U.S.C. 1321; 19 CFR 10.151",
                    "no line is excluded: the order may enter under de minimis (Type 86) within the daily threshold"))
        }
        for line in results {
            for entry in line.section301 {
                reasons.append(
                    reason(
                        "s301.exposure", entry.citation ?? "Section 301",
                        "\(line.sku): HTS \(line.hts) of China origin is on Section 301 list \(entry.list ?? "?") (\(entry.rate ?? "rate not given"))"
                    ))
            }
            for entry in line.section232 {
                reasons.append(
                    reason(
                        "s232.exposure", entry.citation ?? "Section 232",
                        "\(line.sku): HTS \(line.hts) is under Section 232 (\(entry.list ?? "metal"), \(entry.rate ?? "rate not given"))"
                    ))
            }
        }
        return Screening(
            policyID: policy.id, policyVersion: version, lines: results, allowedLanes: allowed, requiredLane: required,
            reasons: reasons)
    }
}
