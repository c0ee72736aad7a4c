import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `released.by-conveyance.v1` (internal): the aggregator's releases, and withdrawals of them,
    /// re-keyed by conveyance, so one manifest-builder partition owns each conveyance's manifest.
    ///
    /// - Value: ``ConveyanceRelease`` (no schema: internal to the fleet).
    /// - Key: the conveyance (``Conveyance/id``). Partitions: 6. Kept 30 days.
    /// - Written by: the aggregator. Read by: the manifest-builder.
    public static let releasedByConveyance = TopicDeclaration(
        "released.by-conveyance.v1", retention: .seconds(30 * 24 * 3600))
}

/// A `released.by-conveyance.v1` record (key: `Conveyance.id`): a release, or the withdrawal of
/// one, for the manifest-builder that owns the conveyance's manifest.
public struct ConveyanceRelease: Codable, Hashable, Sendable {
    /// Its CloudEvents type.
    public static let type = "clearway.shipment.released-for-conveyance.v1"

    public var conveyance: Conveyance
    public var orderId: String
    public var shipmentId: String
    /// The version released (for a withdrawal: the version withdrawn).
    public var version: Int
    public var consigneeKey: String
    /// True when the release is taken back: the order was cancelled or decided again.
    public var withdrawn: Bool
    /// The aggregator's entry type (T86, or the informal / formal lane the manifest finalizes).
    public var entryType: EntryType?
    public var valueUSD: String
    public var policyVersion: String
    /// The screened shipment, on a release.
    public var shipment: ScreenedOrder?

    /// Makes a record.
    public init(
        conveyance: Conveyance, orderId: String, shipmentId: String, version: Int, consigneeKey: String,
        withdrawn: Bool, entryType: EntryType?, valueUSD: String, policyVersion: String, shipment: ScreenedOrder?
    ) {
        self.conveyance = conveyance
        self.orderId = orderId
        self.shipmentId = shipmentId
        self.version = version
        self.consigneeKey = consigneeKey
        self.withdrawn = withdrawn
        self.entryType = entryType
        self.valueUSD = valueUSD
        self.policyVersion = policyVersion
        self.shipment = shipment
    }
}
