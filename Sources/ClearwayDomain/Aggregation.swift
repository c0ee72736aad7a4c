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
        /// The informal entry it is consolidated on, if any.
        public var consolidationGroup: String?
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
    /// A consolidation group's total.
    public func total(ofGroup id: String) -> Decimal {
        orders.filter { $0.consolidationGroup == id }.reduce(0) { $0 + $1.valueUSD }
    }

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
    /// Screening requires formal entry.
    public var formalRequired: Bool

    /// Makes a request.
    public init(orderId: String, valueUSD: Decimal, deMinimisEligible: Bool, formalRequired: Bool = false) {
        self.orderId = orderId
        self.valueUSD = valueUSD
        self.deMinimisEligible = deMinimisEligible
        self.formalRequired = formalRequired
    }

    /// The request for a screened order.
    public init(orderId: String, valueUSD: Decimal, screening: Screening) {
        self.init(
            orderId: orderId, valueUSD: valueUSD, deMinimisEligible: screening.isDeMinimisEligible,
            formalRequired: screening.requiredLane == .t01)
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
    /// The informal entry it joins, when consolidated.
    public var consolidationGroup: String?
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
/// T86 / T11 / T01, hold, consolidate or reroute. Pure.
///
/// Section 321 (19 U.S.C. 1321(a)(2)(C), 19 CFR 10.151): de minimis shipments of one consignee on
/// one day stay within the threshold; an order that would pass it follows the overflow policy; an
/// order over the threshold on its own takes the informal (≤ ceiling, 19 CFR 143.21(a)) or formal
/// path; orders screened off de minimis never use the allowance. Without de minimis, same-consignee
/// same-day orders consolidate on one informal entry while the group stays within the ceiling
/// (19 CFR 143.22), and a larger order takes formal entry.
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

    func release(_ type: EntryType, allowance: Bool, group: String? = nil, _ reasons: [Reason]) -> AggregationDecision {
        var updated = window
        updated.orders.append(
            .init(
                orderId: request.orderId, valueUSD: value, entryType: type, consolidationGroup: group,
                usesAllowance: allowance))
        return AggregationDecision(
            orderId: request.orderId, outcome: .release(type), consolidationGroup: group, window: updated,
            reasons: reasons)
    }

    /// The informal or formal path by value, consolidating where the policy allows.
    func informalOrFormal(_ why: Reason) -> AggregationDecision {
        if request.formalRequired {
            return release(
                .t01, allowance: false,
                [why, reason("formal.required", "screening", "screening requires formal entry (Type 01)")])
        }
        guard value <= ceiling else {
            return release(
                .t01, allowance: false,
                [
                    why,
                    reason(
                        "formal.over-ceiling", "19 CFR 143.21(a)",
                        "\(usd(value)) is over the \(usd(ceiling)) informal-entry ceiling: formal entry (Type 01)"),
                ])
        }
        guard policy.consolidation == .sameConsigneeSameDay else {
            return release(
                .t11, allowance: false,
                [
                    why,
                    reason(
                        "informal.entry", "19 CFR 143.21(a)",
                        "\(usd(value)) is within the \(usd(ceiling)) informal-entry ceiling: informal entry (Type 11)"),
                ])
        }
        let groups = window.orders.compactMap(\.consolidationGroup).reduce(into: [String]()) { groups, id in
            if !groups.contains(id) { groups.append(id) }
        }
        if let open = groups.first(where: { window.total(ofGroup: $0) + value <= ceiling }) {
            let total = window.total(ofGroup: open) + value
            return release(
                .t11, allowance: false, group: open,
                [
                    why,
                    reason(
                        "informal.consolidated", "19 CFR 143.22",
                        "consolidated with the consignee's same-day informal entry \(open): \(usd(total)) of \(usd(ceiling))"
                    ),
                ])
        }
        let number = (groups.compactMap { Int($0.split(separator: "-").last ?? "") }.max() ?? 0) + 1
        let id = "\(window.consigneeKey.prefix(16))-\(window.day)-\(number)"
        let text =
            groups.isEmpty
            ? "first informal entry of the consignee's day: \(id) at \(usd(value))"
            : "the consignee's open informal entries cannot take \(usd(value)) within \(usd(ceiling)): new entry \(id)"
        return release(.t11, allowance: false, group: id, [why, reason("informal.new-entry", "19 CFR 143.22", text)])
    }

    guard policy.hasDeMinimis, let threshold = policy.deMinimisThresholdUSD else {
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
            orderId: request.orderId, outcome: .hold(until: window.day.next), consolidationGroup: nil, window: window,
            reasons: [why, reason("s321.overflow.hold", "overflow policy", "held to \(window.day.next)")])
    case .reroute:
        return AggregationDecision(
            orderId: request.orderId, outcome: .reroute, consolidationGroup: nil, window: window,
            reasons: [why, reason("s321.overflow.reroute", "overflow policy", "reroute requested")])
    case .formal:
        return informalOrFormal(why)
    }
}
