import Foundation

/// What to do with an order that mixes lines excluded from de minimis and lines that are not.
public enum MixedOrderPolicy: String, Sendable, Codable, CaseIterable {
    /// The whole order takes the stricter path (the default: one parcel, one entry).
    case routeWhole = "route-whole"
    /// Two shipments with derived ids: `<orderId>/1` (the eligible lines) and `<orderId>/2` (the
    /// excluded ones), each with its own lanes.
    case split
}

/// A screened shipment (`orders.screened.v1`, keyed by `consigneeKey`): the enriched order (or
/// the part of it this shipment carries) plus the lanes it may or must take, and why.
public struct ScreenedOrder: Codable, Hashable, Sendable {
    /// The enriched order, with `lines`, `orderValue` and `valueUSD` those of this shipment.
    public var order: EnrichedOrder
    /// The order id, or `<orderId>/1` and `<orderId>/2` for the two halves of a split order.
    public var shipmentId: String
    /// For a split order's half: `eligible` or `excluded`.
    public var split: String?
    /// The entry types the shipment may take, most favourable first.
    public var allowedLanes: [EntryType]
    /// The one it must take, when there is one (AD/CVD → formal).
    public var requiredLane: EntryType?
    /// Per line: flags, exclusions and tariff-action exposure.
    public var screening: [LineResult]
    /// The policy in force on the arrival day.
    public var policy: PolicyReference
    /// Which reference data decided (HTS, PGA, Section 301 / 232 revisions).
    public var references: String

    public struct PolicyReference: Codable, Hashable, Sendable {
        public var id: String
        public var version: String
        public var regime: Regime
    }

    public struct LineResult: Codable, Hashable, Sendable {
        public var lineNumber: Int
        public var sku: String
        public var hts: String
        public var pgaFlags: [Flag]
        public var deMinimisExclusions: [DecisionReason]
        public var section301: [TariffActionList.Entry]
        public var section232: [TariffActionList.Entry]
    }

    public struct Flag: Codable, Hashable, Sendable {
        public var flag: String
        public var agency: String
        /// The agency's data is required (no disclaim code answers the flag), per the flag's row in
        /// `PGAFlag.meanings` — not the digit's parity (FW3 is odd and always required).
        public var dataRequired: Bool
        public var disclaimer: String?
        public var excludesDeMinimis: Bool
    }

    enum CodingKeys: String, CodingKey {
        case shipmentId, split, allowedLanes, requiredLane, screening, policy, references
    }

    public init(
        order: EnrichedOrder, shipmentId: String, split: String?, allowedLanes: [EntryType], requiredLane: EntryType?,
        screening: [LineResult], policy: PolicyReference, references: String
    ) {
        self.order = order
        self.shipmentId = shipmentId
        self.split = split
        self.allowedLanes = allowedLanes
        self.requiredLane = requiredLane
        self.screening = screening
        self.policy = policy
        self.references = references
    }

    // One flat JSON object: the enriched order's fields and the screening's side by side.
    public init(from decoder: any Decoder) throws {
        order = try EnrichedOrder(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        shipmentId = try container.decode(String.self, forKey: .shipmentId)
        split = try container.decodeIfPresent(String.self, forKey: .split)
        allowedLanes = try container.decode([EntryType].self, forKey: .allowedLanes)
        requiredLane = try container.decodeIfPresent(EntryType.self, forKey: .requiredLane)
        screening = try container.decode([LineResult].self, forKey: .screening)
        policy = try container.decode(PolicyReference.self, forKey: .policy)
        references = try container.decode(String.self, forKey: .references)
    }

    public func encode(to encoder: any Encoder) throws {
        try order.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(shipmentId, forKey: .shipmentId)
        try container.encodeIfPresent(split, forKey: .split)
        try container.encode(allowedLanes, forKey: .allowedLanes)
        try container.encodeIfPresent(requiredLane, forKey: .requiredLane)
        try container.encode(screening, forKey: .screening)
        try container.encode(policy, forKey: .policy)
        try container.encode(references, forKey: .references)
    }
}

extension ScreenedOrder {
    /// The shipment screened again, at the policy's level, for release under `policy` (a held
    /// shipment whose new day falls under another policy than the one it was screened under:
    /// review A6). A policy without de minimis, or one that excludes a line's origin, quota or
    /// IRC-taxed goods or one of its PGA flags, takes the de minimis lane away; nothing here
    /// grants it (a shipment not eligible when screened is never made eligible without the
    /// reference data). Unchanged under the same policy.
    public func rescreened(under policy: Policy) -> ScreenedOrder {
        guard policy.id != self.policy.id else { return self }
        var reasons: [String] = []
        let lines = order.lines ?? []
        let numbers = lines.compactMap { try? HTSCode($0.hts) }
        if !policy.hasDeMinimis, !(policy.deMinimisCarveOut?.covers(numbers) ?? false) {
            reasons.append("no de minimis under \(policy.title)")
        }
        for (index, line) in lines.enumerated() where policy.hasDeMinimis {
            if let origin = try? CountryCode(line.originCountry), policy.excludedOrigins.contains(origin) {
                reasons.append("\(line.sku): origin \(origin) is excluded from de minimis")
            }
            if let hts = try? HTSCode(line.hts) {
                if policy.quotaPrefixes.contains(where: { hts.hasPrefix($0) }) {
                    reasons.append("\(line.sku): HTS \(hts) is quota merchandise")
                }
                if policy.ircTaxedPrefixes.contains(where: { hts.hasPrefix($0) }) {
                    reasons.append("\(line.sku): HTS \(hts) is taxed under the Internal Revenue Code")
                }
            }
            let flags = index < screening.count ? screening[index].pgaFlags : []
            for flag in flags
            where policy.excludingPGAFlags.contains(where: { flag.flag.hasPrefix($0) })
                && (flag.dataRequired || flag.disclaimer == nil)
            {
                reasons.append("\(line.sku): \(flag.flag) data is required or undisclaimed")
            }
        }
        var shipment = self
        shipment.policy = PolicyReference(id: policy.id, version: policy.version, regime: policy.regime)
        let text =
            reasons.isEmpty
            ? "released on a day under policy \(policy.id), not \(self.policy.id) it was screened under: screened again, nothing changes"
            : "released on a day under policy \(policy.id), not \(self.policy.id) it was screened under: screened again, no de minimis (\(reasons.joined(separator: "; ")))"
        if !reasons.isEmpty { shipment.allowedLanes.removeAll { $0 == .t86 } }
        shipment.order.reasons.append(
            DecisionReason(rule: "hold.rescreened", text: text, policyVersion: policy.version))
        return shipment
    }
}

/// Screens enriched orders into shipments: lanes per the policy in force on the arrival day.
public struct OrderScreening: Sendable {
    public var screener: Screener
    public var timeline: PolicyTimeline
    public var mixedOrders: MixedOrderPolicy
    /// Names the reference data (goes on every record).
    public var references: String

    public init(screener: Screener, timeline: PolicyTimeline, mixedOrders: MixedOrderPolicy, references: String) {
        self.screener = screener
        self.timeline = timeline
        self.mixedOrders = mixedOrders
        self.references = references
    }

    /// The outcome for one enriched order.
    public enum Outcome: Hashable, Sendable {
        /// One shipment, or two for a split order.
        case shipments([ScreenedOrder])
        /// Lines whose HTS number the reference lacks: never taken as unflagged.
        case unknownHTS([OrderGap])
    }

    /// Screens a placed or updated enriched order.
    public func screen(_ order: EnrichedOrder) throws -> Outcome {
        guard let arrival = order.arrivalDay, let lines = order.lines else {
            throw DomainError(.invalidOrder, "order \(order.orderId) has no arrival day or lines to screen")
        }
        let day = try Day(arrival)
        let policy = try timeline.policy(on: day)
        let screeningLines = try lines.map { line in
            ScreeningLine(
                sku: line.sku, hts: try HTSCode(line.hts), origin: try CountryCode(line.originCountry),
                skuFlags: line.pgaFlags.map { Set($0.compactMap { try? PGAFlag($0) }) },
                disclaimers: Dictionary(
                    (line.pgaDisclaimers ?? [:]).compactMap { key, value -> (PGAFlag, DisclaimCode)? in
                        guard let flag = try? PGAFlag(key), let code = DisclaimCode(rawValue: value) else { return nil }
                        return (flag, code)
                    }
                ) { first, _ in first }, adcvdCase: line.adcvdCase)
        }
        let whole = screener.screen(screeningLines, on: day, policy: policy)
        let unknown = zip(lines, whole.lines).filter { $0.1.unknownHTS }
        guard unknown.isEmpty else {
            return .unknownHTS(
                unknown.map { line, result in
                    OrderGap(
                        code: "hts-not-in-reference",
                        detail:
                            "line \(line.lineNumber) (\(line.sku)): HTS \(result.hts) is not in the HTS reference (\(screener.htsReference?.revision ?? "none")), so its PGA flags are unknown",
                        fix:
                            "correct the SKU's HTS number on catalog.v1, or load a newer HTS reference into the pga-router",
                        sku: line.sku, line: line.lineNumber)
                })
        }
        let excluded = Set(whole.lines.indices.filter { !whole.lines[$0].deMinimisExclusions.isEmpty })
        if mixedOrders == .split, !excluded.isEmpty, excluded.count < lines.count {
            let parts: [(suffix: String, split: String, indices: [Int])] = [
                ("1", "eligible", lines.indices.filter { !excluded.contains($0) }),
                ("2", "excluded", lines.indices.filter { excluded.contains($0) }),
            ]
            return .shipments(
                try parts.map { part in
                    let subset = part.indices.map { screeningLines[$0] }
                    let result = screener.screen(subset, on: day, policy: policy)
                    var shipment = order
                    shipment.lines = part.indices.map { lines[$0] }
                    shipment.orderValue = try sum(
                        shipment.lines!.map { line in
                            try Decimal(parsingPlain: line.unitPrice) * Decimal(line.quantity)
                        })
                    shipment.valueUSD = try sum(shipment.lines!.map { try Decimal(parsingPlain: $0.valueUSD) })
                    var made = screened(shipment, shipmentId: "\(order.orderId)/\(part.suffix)", result, policy)
                    made.split = part.split
                    made.order.reasons.append(
                        DecisionReason(
                            rule: "mixed.split",
                            text:
                                "the order mixes lines excluded from de minimis with eligible ones; split (mixed-order policy split): this shipment carries the \(part.split) lines",
                            policyVersion: policy.version))
                    return made
                })
        }
        var shipment = screened(order, shipmentId: order.orderId, whole, policy)
        if !excluded.isEmpty, excluded.count < lines.count {
            shipment.order.reasons.append(
                DecisionReason(
                    rule: "mixed.route-whole",
                    text:
                        "the order mixes lines excluded from de minimis with eligible ones; the whole order takes the stricter path (mixed-order policy route-whole)",
                    policyVersion: policy.version))
        }
        return .shipments([shipment])
    }

    private func sum(_ values: [Decimal]) throws -> String {
        Money(values.reduce(0, +), .usd).amountText
    }

    private func screened(_ order: EnrichedOrder, shipmentId: String, _ result: Screening, _ policy: Policy)
        -> ScreenedOrder
    {
        var order = order
        order.reasons += result.reasons.map {
            DecisionReason(rule: $0.rule, text: "\($0.text) [\($0.citation)]", policyVersion: $0.policyVersion)
        }
        let lines = order.lines ?? []
        return ScreenedOrder(
            order: order, shipmentId: shipmentId, split: nil, allowedLanes: result.allowedLanes,
            requiredLane: result.requiredLane,
            screening: zip(lines, result.lines).map { line, screening in
                ScreenedOrder.LineResult(
                    lineNumber: line.lineNumber, sku: line.sku, hts: line.hts,
                    pgaFlags: screening.flags.map {
                        ScreenedOrder.Flag(
                            flag: $0.flag.code, agency: $0.agency, dataRequired: $0.isRequired,
                            disclaimer: $0.disclaimer?.rawValue, excludesDeMinimis: $0.excludesDeMinimis)
                    },
                    deMinimisExclusions: screening.deMinimisExclusions.map {
                        DecisionReason(
                            rule: $0.rule, text: "\($0.text) [\($0.citation)]", policyVersion: $0.policyVersion)
                    }, section301: screening.section301, section232: screening.section232)
            },
            policy: .init(id: policy.id, version: policy.version, regime: policy.regime), references: references)
    }
}
