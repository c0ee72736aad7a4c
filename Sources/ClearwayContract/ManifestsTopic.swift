import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `manifests.v1`: closed manifests — one conveyance (carrier and trip, port, arrival day)
    /// with its entries and every data element the filer needs — and later amendments of filed
    /// entries.
    ///
    /// - Value: ``ManifestRecord`` (its entries are ClearwayDomain's ``ManifestEntry``); schema
    ///   `schemas/manifests.v1.schema.json`.
    /// - Key: `manifestId`. Partitions: 6.
    /// - Written by: the manifest-builder. Read by: the filer-sim or the real customs broker.
    public static let manifests = TopicDeclaration("manifests.v1")
}

/// A `manifests.v1` record (key: `manifestId`): a closed manifest with every entry on it, or a
/// later amendment of one of its filed entries.
public struct ManifestRecord: Codable, Hashable, Sendable {
    /// A closed manifest, or an amendment of one of its entries.
    public enum Kind: String, Codable, Hashable, Sendable {
        case manifest, amendment
    }

    /// What an amendment does to the filed entry it names.
    public struct Amendment: Codable, Hashable, Sendable {
        /// What becomes of the entry.
        public enum Action: String, Codable, Hashable, Sendable {
            /// The entry is withdrawn whole (its only shipment was cancelled or decided again).
            case cancel
            /// The entry is re-stated: `entries` holds it as it now stands, under the same id.
            case replace
        }

        /// `<entryId>/A<n>`.
        public var amendmentId: String
        public var action: Action
        /// The filed entry it amends.
        public var entryId: String
        /// Shipments taken off the entry, and shipments added to it.
        public var removedShipments: [ManifestEntry.Shipment]
        public var addedShipments: [String]
        public var reason: String

        /// Makes an amendment.
        public init(
            amendmentId: String, action: Action, entryId: String, removedShipments: [ManifestEntry.Shipment],
            addedShipments: [String], reason: String
        ) {
            self.amendmentId = amendmentId
            self.action = action
            self.entryId = entryId
            self.removedShipments = removedShipments
            self.addedShipments = addedShipments
            self.reason = reason
        }
    }

    /// The CloudEvents type of a closed manifest.
    public static let closedType = "clearway.manifest.closed.v1"
    /// The CloudEvents type of an amendment.
    public static let amendedType = "clearway.manifest.amended.v1"

    public var kind: Kind
    public var manifestId: String
    public var conveyance: Conveyance
    public var masterBill: String
    /// Why it closed: `max-entries`, `cut-off`, `close-after` or `end-of-day` (for an amendment,
    /// the manifest's).
    public var closedBecause: String?
    public var policyVersion: String
    /// A manifest's entries; an amendment's re-stated entry (none for a cancel).
    public var entries: [ManifestEntry]
    public var amendment: Amendment?

    /// Makes a record.
    public init(
        kind: Kind, manifestId: String, conveyance: Conveyance, masterBill: String, closedBecause: String?,
        policyVersion: String, entries: [ManifestEntry], amendment: Amendment?
    ) {
        self.kind = kind
        self.manifestId = manifestId
        self.conveyance = conveyance
        self.masterBill = masterBill
        self.closedBecause = closedBecause
        self.policyVersion = policyVersion
        self.entries = entries
        self.amendment = amendment
    }
}
