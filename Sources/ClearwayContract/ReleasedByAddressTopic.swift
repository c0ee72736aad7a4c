import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `released.by-address.v1` (internal): each release, and each withdrawal of one, re-keyed by
    /// address, so the structuring watch sees every consignee at one address in one partition.
    ///
    /// - Value: ``AddressContribution`` (no schema: internal to the fleet).
    /// - Key: `addressKey`. Partitions: 6. Kept 30 days.
    /// - Written by: the aggregator. Read by: the structuring watch.
    public static let releasedByAddress = TopicDeclaration(
        "released.by-address.v1", retention: .seconds(30 * 24 * 3600))
}

/// A `released.by-address.v1` record: one released shipment's value for its address's day (or,
/// with `withdrawn`, its withdrawal: cancelled, or superseded by an update). Keyed by
/// `addressKey`, so every consignee at one address meets in one partition.
public struct AddressContribution: Codable, Hashable, Sendable {
    /// Its CloudEvents type.
    public static let type = "clearway.address.contribution.v1"

    public var addressKey: String
    public var day: String
    public var consigneeKey: String
    public var orderId: String
    public var shipmentId: String
    public var valueUSD: String
    /// The per-person day threshold of the policy in force that day.
    public var thresholdUSD: String
    public var policyVersion: String
    /// The regime of that policy (absent in records written before it was carried): what the
    /// threshold is — the de minimis threshold, or without de minimis the informal-entry ceiling.
    public var regime: Regime?
    /// True when the shipment no longer counts (cancelled, or superseded by an update).
    public var withdrawn: Bool

    /// Makes a record.
    public init(
        addressKey: String, day: String, consigneeKey: String, orderId: String, shipmentId: String, valueUSD: String,
        thresholdUSD: String, policyVersion: String, regime: Regime? = nil, withdrawn: Bool
    ) {
        self.addressKey = addressKey
        self.day = day
        self.consigneeKey = consigneeKey
        self.orderId = orderId
        self.shipmentId = shipmentId
        self.valueUSD = valueUSD
        self.thresholdUSD = thresholdUSD
        self.policyVersion = policyVersion
        self.regime = regime
        self.withdrawn = withdrawn
    }
}
