import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `entry-results.v1`: what the customs broker and CBP answered for each shipment's entry —
    /// accepted with an entry number, rejected with ABI-style condition codes, amended,
    /// cancelled, and later the cargo-release dispositions and PGA statuses.
    ///
    /// - Value: ``EntryResult``; schema `schemas/entry-results.v1.schema.json`.
    /// - Key: `orderId`. Partitions: 6.
    /// - Written by: the customs broker (the filer-sim locally). Read by: the erp-writeback, and
    ///   the fleet's report.
    public static let entryResults = TopicDeclaration("entry-results.v1")
}

/// An `entry-results.v1` record (key: `orderId`): what the customs broker and CBP answered for
/// the entry one of the order's shipments is on.
public struct EntryResult: Codable, Hashable, Sendable {
    /// Its CloudEvents type.
    public static let type = "clearway.entry.result.v1"

    /// What happened to the entry.
    public enum Event: String, Codable, Hashable, Sendable, CaseIterable {
        /// Filed and accepted: `entryNumber` is set.
        case accepted
        /// Refused: `conditions` says why (a fatal one at least); nothing was filed.
        case rejected
        /// The entry was re-stated by an amendment (same entry number).
        case amended
        /// The shipment was taken off its entry by an amendment, or the entry was cancelled.
        case cancelled
        /// Cargo release disposition 1C.
        case released
        /// Disposition 1A: exam required.
        case exam
        /// Disposition 1H: hold placed; 1I: hold removed.
        case hold
        case holdRemoved = "hold-removed"
        /// A PGA status for the shipment's flagged lines.
        case pga
    }

    /// An ABI-style condition: a code, its severity and the words.
    public struct Condition: Codable, Hashable, Sendable {
        /// Whether the condition stops the filing.
        public enum Severity: String, Codable, Hashable, Sendable {
            case fatal, warning
        }

        public var code: String
        public var severity: Severity
        public var text: String

        /// Makes a condition.
        public init(code: String, severity: Severity, text: String) {
            self.code = code
            self.severity = severity
            self.text = text
        }
    }

    /// A coded status (a cargo-release disposition, or a PGA status) and its words.
    public struct Status: Codable, Hashable, Sendable {
        public var code: String
        public var text: String
        /// The agency, for a PGA status.
        public var agency: String?

        /// Makes a status.
        public init(code: String, text: String, agency: String? = nil) {
            self.code = code
            self.text = text
            self.agency = agency
        }
    }

    public var orderId: String
    public var shipmentId: String
    public var version: Int
    public var manifestId: String
    /// The manifest's master bill of lading (absent in records written before it was added).
    public var masterBill: String?
    public var entryId: String
    public var entryType: EntryType
    public var filerCode: String
    public var entryNumber: String?
    public var event: Event
    public var conditions: [Condition]
    public var disposition: Status?
    public var pga: Status?
    public var erp: OrderEvent.ERPReference?
    /// When it was answered (ISO 8601).
    public var at: String

    /// Makes a result.
    public init(
        orderId: String, shipmentId: String, version: Int, manifestId: String, entryId: String,
        entryType: EntryType, filerCode: String, entryNumber: String?, event: Event, conditions: [Condition],
        disposition: Status?, pga: Status?, erp: OrderEvent.ERPReference?, at: String, masterBill: String? = nil
    ) {
        self.masterBill = masterBill
        self.orderId = orderId
        self.shipmentId = shipmentId
        self.version = version
        self.manifestId = manifestId
        self.entryId = entryId
        self.entryType = entryType
        self.filerCode = filerCode
        self.entryNumber = entryNumber
        self.event = event
        self.conditions = conditions
        self.disposition = disposition
        self.pga = pga
        self.erp = erp
        self.at = at
    }
}
