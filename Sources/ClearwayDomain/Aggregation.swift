import Foundation

/// What to do with an order that would push a consignee's de minimis day over the threshold.
public enum OverflowPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// Hold it to the next day (default).
    case hold
    /// Send it on the informal / formal path now.
    case formal
    /// Ask for it to be fulfilled from another warehouse.
    case reroute
}

/// One consignee's arrival day: the orders released into it so far.
public struct DayWindow: Hashable, Sendable, Codable {
    /// An order released into the day.
    public struct Order: Hashable, Sendable, Codable {
        public var orderId: String
        public var valueUSD: Decimal
        public var entryType: EntryType
        /// Whether it uses the de minimis allowance.
        public var usesAllowance: Bool
    }

    public var consigneeKey: String
    public var day: Day
    public var orders: [Order]

    /// An empty day.
    public init(consigneeKey: String, day: Day, orders: [Order] = []) {
        self.consigneeKey = consigneeKey
        self.day = day
        self.orders = orders
    }

    /// What the day's de minimis shipments add up to.
    public var deMinimisTotalUSD: Decimal { orders.filter(\.usesAllowance).reduce(0) { $0 + $1.valueUSD } }
    /// What everything released in the day adds up to.
    public var totalUSD: Decimal { orders.reduce(0) { $0 + $1.valueUSD } }
    /// The day without an order (a cancellation or the old version of an update), and the order.
    public func removing(_ orderId: String) -> (window: DayWindow, removed: Order?) {
        var copy = self
        guard let index = copy.orders.firstIndex(where: { $0.orderId == orderId }) else { return (self, nil) }
        let removed = copy.orders.remove(at: index)
        return (copy, removed)
    }
}

/// An order ready for the daily rule: its value and what screening allowed.
public struct AggregationRequest: Hashable, Sendable {
    public var orderId: String
    /// The order's fair retail value in USD.
    public var valueUSD: Decimal
    /// Screening allowed the de minimis lane.
    public var deMinimisEligible: Bool
    /// Screening requires formal entry (AD/CVD goods).
    public var formalRequired: Bool
    /// The entry type screening requires, if any (Type 03 or 07 for AD/CVD goods).
    public var requiredType: EntryType?
    /// The shipment carries quota merchandise (Type 12 / 02).
    public var quota: Bool
    /// The value of its lines classified in Chapter 99, subchapters III and IV (19 CFR
    /// 143.21(a)'s parenthetical).
    public var chapter99ValueUSD: Decimal

    /// Makes a request.
    public init(
        orderId: String, valueUSD: Decimal, deMinimisEligible: Bool, formalRequired: Bool = false,
        requiredType: EntryType? = nil, quota: Bool = false, chapter99ValueUSD: Decimal = 0
    ) {
        self.orderId = orderId
        self.valueUSD = valueUSD
        self.deMinimisEligible = deMinimisEligible
        self.formalRequired = formalRequired || requiredType?.isFormal == true
        self.requiredType = requiredType ?? (formalRequired ? .t01 : nil)
        self.quota = quota
        self.chapter99ValueUSD = chapter99ValueUSD
    }

    /// The request for a screened shipment.
    public init(_ shipment: ScreenedOrder) throws {
        let lines = shipment.order.lines ?? []
        var chapter99: Decimal = 0
        for (line, result) in zip(lines, shipment.screening)
        where !result.section301.isEmpty || !result.section232.isEmpty {
            chapter99 += try Decimal(parsingPlain: line.valueUSD)
        }
        self.init(
            orderId: shipment.shipmentId, valueUSD: try Decimal(parsingPlain: shipment.order.valueUSD ?? "0"),
            deMinimisEligible: shipment.allowedLanes.contains(.t86), requiredType: shipment.requiredLane,
            quota: shipment.allowedLanes.contains(.t12), chapter99ValueUSD: chapter99)
    }
}

/// What the daily rule decided.
public struct AggregationDecision: Hashable, Sendable {
    public enum Outcome: Hashable, Sendable {
        /// Released now on this entry type.
        case release(EntryType)
        /// Held; re-evaluate when this day begins.
        case hold(until: Day)
        /// Fulfil from another warehouse.
        case reroute
    }

    public var orderId: String
    public var outcome: Outcome
    /// The day after the decision (unchanged for hold and reroute).
    public var window: DayWindow
    public var reasons: [Reason]

    /// The entry type, when released.
    public var entryType: EntryType? {
        if case .release(let type) = outcome { return type }
        return nil
    }
}

/// The "one person, one day" rule: given a consignee's day so far and a screened order, decide
/// the entry type (T86, T11, T01, T03, T12, T02, T07), hold or reroute. Pure.
///
/// Section 321 (19 U.S.C. 1321(a)(2)(C), 19 CFR 10.151): de minimis shipments of one consignee on
/// one day stay within the threshold; an order that would pass it follows the overflow policy; an
/// order over the threshold on its own takes the informal (≤ ceiling, 19 CFR 143.21(a)) or formal
/// path; orders screened off de minimis never use the allowance. Without de minimis (and off it)
/// each shipment takes its own type by what it carries and its value (AD/CVD Type 03, quota Type
/// 12 / 02, Chapter 99 articles over the policy's limit formal, else Type 11 within the
/// informal-entry ceiling and 01 above); the (consignee, day) window counts only the Section 321
/// allowance. The entry a shipment goes on is one per consignee per conveyance (19 CFR 141.51),
/// typed by its total when the conveyance's manifest closes.
public func aggregate(
    _ request: AggregationRequest, into window: DayWindow, policy: Policy, overflow: OverflowPolicy = .hold
) -> AggregationDecision {
    // An update replaces its earlier version.
    let window = window.removing(request.orderId).window
    let version = policy.version
    let ceiling = policy.informalEntryCeilingUSD
    let value = request.valueUSD
    func reason(_ rule: String, _ citation: String, _ text: String) -> Reason {
        Reason(rule: rule, citation: citation, policyVersion: version, text: text)
    }
    func usd(_ amount: Decimal) -> String { "$" + amount.rounded(scale: 2).plainText(minimumFractionDigits: 2) }

    func release(_ type: EntryType, allowance: Bool, _ reasons: [Reason]) -> AggregationDecision {
        var updated = window
        updated.orders.append(
            .init(orderId: request.orderId, valueUSD: value, entryType: type, usesAllowance: allowance))
        return AggregationDecision(orderId: request.orderId, outcome: .release(type), window: updated, reasons: reasons)
    }

    /// The informal or formal path. The shipment's own type, by what it carries and its value;
    /// the entry it goes on (one per consignee per conveyance, 19 CFR 141.51) is typed again by
    /// its total when its manifest closes (`ManifestPlan.entries`), never split to stay informal.
    func informalOrFormal(_ why: Reason) -> AggregationDecision {
        let grouping = reason(
            "entry.per-conveyance", "19 CFR 141.51; 19 CFR 143.21(a)",
            "the entry is one per consignee per conveyance: its type is decided again by the entry's total when the conveyance's manifest closes"
        )
        if let required = request.requiredType {
            return release(
                required, allowance: false,
                [
                    why,
                    reason(
                        "formal.required", "screening",
                        "screening requires entry type \(required.rawValue.dropFirst()) whatever the value"),
                ])
        }
        if let limit = policy.chapter99FormalAboveUSD, request.chapter99ValueUSD > limit {
            let type = EntryType.nonDeMinimis(adcvd: false, quota: request.quota, formal: true)
            return release(
                type, allowance: false,
                [
                    why,
                    reason(
                        "formal.chapter99", "19 CFR 143.21(a)",
                        "\(usd(request.chapter99ValueUSD)) of articles classified in Chapter 99, subchapters III and IV (Section 301 / 232 duties) is over \(usd(limit)): formal entry (Type \(type.rawValue.dropFirst()))"
                    ),
                ])
        }
        guard value <= ceiling else {
            let type = EntryType.nonDeMinimis(adcvd: false, quota: request.quota, formal: true)
            return release(
                type, allowance: false,
                [
                    why,
                    reason(
                        "formal.over-ceiling", "19 CFR 143.21(a)",
                        "\(usd(value)) is over the \(usd(ceiling)) informal-entry ceiling: formal entry (Type \(type.rawValue.dropFirst()))"
                    ),
                ])
        }
        let type = EntryType.nonDeMinimis(adcvd: false, quota: request.quota, formal: false)
        return release(
            type, allowance: false,
            [
                why,
                reason(
                    "informal.entry", "19 CFR 143.21(a)",
                    "\(usd(value)) is within the \(usd(ceiling)) informal-entry ceiling: informal entry (Type \(type.rawValue.dropFirst()))"
                ),
                grouping,
            ])
    }

    let carvedOut = !policy.hasDeMinimis && request.deMinimisEligible ? policy.deMinimisCarveOut?.thresholdUSD : nil
    guard policy.hasDeMinimis || carvedOut != nil, let threshold = policy.deMinimisThresholdUSD ?? carvedOut else {
        return informalOrFormal(
            reason("no-de-minimis", policy.sources.first ?? policy.id, "no de minimis under \(policy.title)"))
    }
    if request.formalRequired || !request.deMinimisEligible {
        return informalOrFormal(
            reason(
                "s321.not-eligible", "screening",
                "screened off de minimis: the order takes another lane and does not use the consignee's allowance"))
    }
    if value > threshold {
        return informalOrFormal(
            reason(
                "s321.over-threshold-alone", "19 CFR 10.151",
                "\(usd(value)) alone is over the \(usd(threshold)) de minimis threshold"))
    }
    let total = window.deMinimisTotalUSD
    if total + value <= threshold {
        return release(
            .t86, allowance: true,
            [
                reason(
                    "s321.within-threshold", "19 U.S.C. 1321(a)(2)(C); 19 CFR 10.151",
                    "the consignee's de minimis total for \(window.day) becomes \(usd(total + value)) of \(usd(threshold)): Type 86"
                )
            ])
    }
    let why = reason(
        "s321.overflow", "19 CFR 10.151",
        "\(usd(value)) on top of \(usd(total)) already entered on \(window.day) would pass the \(usd(threshold)) threshold for one person on one day"
    )
    switch overflow {
    case .hold:
        return AggregationDecision(
            orderId: request.orderId, outcome: .hold(until: window.day.next), window: window,
            reasons: [why, reason("s321.overflow.hold", "overflow policy", "held to \(window.day.next)")])
    case .reroute:
        return AggregationDecision(
            orderId: request.orderId, outcome: .reroute, window: window,
            reasons: [why, reason("s321.overflow.reroute", "overflow policy", "reroute requested")])
    case .formal:
        return informalOrFormal(why)
    }
}
