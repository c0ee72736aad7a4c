import ClearwayDomain
import Foundation

/// An open manifest.
struct OpenManifest: Codable {
    var conveyance: Conveyance
    var sequence: Int
    /// Entries it would file now: T86 shipments plus consignees with other shipments.
    var entries: Int
}

/// A filed shipment: where it went, and the version filed (its release, to re-state its entry,
/// is kept as it came under `fr/<shipmentId>`).
struct FiledShipment: Codable {
    var manifestId: String
    var entryId: String
    var version: Int
}

/// A filed entry as it now stands.
struct FiledEntry: Codable {
    var manifestId: String
    var conveyance: Conveyance
    var closedBecause: String
    var entry: ManifestEntry
    var amendments: Int
    var cancelled: Bool
}

/// What a closed manifest leaves in state, to forget after the retention.
struct FiledKeys: Codable {
    var shipments: [String]
    var entries: [String]
    var consignees: [String]
}
