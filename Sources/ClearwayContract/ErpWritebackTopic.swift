import ClearwayDomain
import ClearwayRuntime
import Foundation

extension Topics {
    /// `erp-writeback.v1`: what was written back to the originating sales order in the ERP (entry
    /// numbers, manifests, customs status), or why it could not be.
    ///
    /// - Value: ``WritebackResult``; schema `schemas/erp-writeback.v1.schema.json`.
    /// - Key: `orderId`. Partitions: 6.
    /// - Written by: the erp-writeback worker. Read by: other teams, `clearway reconcile`, and the
    ///   fleet's report.
    public static let erpWriteback = TopicDeclaration("erp-writeback.v1")
}

/// What happened to an order at customs, as the erp-writeback writes it onto the order's ERP
/// record: absolute values (never increments), so writing it twice is writing it once.
///
/// It is folded from the order's `entry-results.v1` records by their times (``fold(_:)``), so a
/// late, earlier event cannot overwrite a later one; only events of the same instant fall back
/// on their arrival order.
public struct OrderCustoms: Codable, Hashable, Sendable {
    /// An order's or a shipment's customs status.
    public enum Status: String, Codable, Hashable, Sendable, CaseIterable {
        /// Filed and accepted: the entry number is known.
        case accepted
        /// Refused by the customs broker or CBP: `conditions` says why.
        case rejected
        /// Disposition 1A: CBP wants to examine the goods.
        case exam
        /// Disposition 1H, or a PGA hold: the goods may not move.
        case held
        /// Disposition 1C: released.
        case released
        /// Taken off its entry (or the entry cancelled), and not filed again.
        case cancelled
    }

    /// One shipment of the order (an order split by its goods has several) on its entry.
    public struct Shipment: Codable, Hashable, Sendable {
        public var shipmentId: String
        public var entryId: String
        public var entryType: EntryType
        public var entryNumber: String?
        public var manifestId: String
        public var masterBill: String?
        public var filerCode: String
        public var status: Status
        /// The codes of the conditions of a rejection (`HTS-NOT-VALID-ON-DATE`, …).
        public var conditions: [String]
        /// The last cargo-release disposition code (1C, 1A, 1H, 1I) and PGA status code.
        public var disposition: String?
        public var pgaStatus: String?
        /// When the entry was accepted or rejected, released, and the last event (ISO 8601).
        public var answeredAt: String
        public var releasedAt: String?
        public var updatedAt: String

        /// Makes a shipment's values.
        public init(
            shipmentId: String, entryId: String, entryType: EntryType, entryNumber: String?, manifestId: String,
            masterBill: String?, filerCode: String, status: Status, conditions: [String], disposition: String?,
            pgaStatus: String?, answeredAt: String, releasedAt: String?, updatedAt: String
        ) {
            self.shipmentId = shipmentId
            self.entryId = entryId
            self.entryType = entryType
            self.entryNumber = entryNumber
            self.manifestId = manifestId
            self.masterBill = masterBill
            self.filerCode = filerCode
            self.status = status
            self.conditions = conditions
            self.disposition = disposition
            self.pgaStatus = pgaStatus
            self.answeredAt = answeredAt
            self.releasedAt = releasedAt
            self.updatedAt = updatedAt
        }
    }

    public var orderId: String
    /// The sales order it is written onto.
    public var erp: OrderEvent.ERPReference
    /// Grows by one each time the values change. An ERP record that holds a higher revision is
    /// never overwritten with a lower one.
    public var revision: Int
    /// The order's status: rejected if a shipment is, then held, exam, accepted, released (all of
    /// them), cancelled (all of them).
    public var status: Status
    /// The entry numbers of its shipments' live entries, sorted, without repeats.
    public var entryNumbers: [String]
    public var shipments: [Shipment]
    /// The last event's time (ISO 8601).
    public var updatedAt: String

    /// Makes an order's values.
    public init(
        orderId: String, erp: OrderEvent.ERPReference, revision: Int, status: Status, entryNumbers: [String],
        shipments: [Shipment], updatedAt: String
    ) {
        self.orderId = orderId
        self.erp = erp
        self.revision = revision
        self.status = status
        self.entryNumbers = entryNumbers
        self.shipments = shipments
        self.updatedAt = updatedAt
    }

    /// The values without the revision: what an ERP record is compared on.
    public var values: OrderCustoms {
        var copy = self
        copy.revision = 0
        return copy
    }
}

extension OrderCustoms {
    /// An order's customs values from its entry results (revision 0): per shipment, the entry
    /// of its last filing answer (accepted, rejected, amended or cancelled, by `at`), and that
    /// entry's later dispositions and PGA statuses. Results with different times fold the same
    /// in any order; of two with the same time and lifecycle rank (two amendments in one
    /// second), the one later in `results` wins, so give them in arrival order, a repeated
    /// result at its latest arrival. Nil when no result names an ERP record.
    public static func fold(_ results: [EntryResult]) -> OrderCustoms? {
        guard let first = results.first, let erp = results.lazy.compactMap(\.erp).first else { return nil }
        // By time, then lifecycle; events of the same instant and rank keep their arrival order
        // (the topic's, one partition per order), the later arrival last.
        let ordered = results.enumerated().sorted(by: {
            ($0.element.at, $0.element.event.rank, $0.offset) < ($1.element.at, $1.element.event.rank, $1.offset)
        }).map(\.element)
        var shipments: [String: Shipment] = [:]
        for result in ordered {
            var shipment = shipments[result.shipmentId]
            switch result.event {
            case .accepted, .rejected, .amended, .cancelled:
                let keepsNumber = shipment?.entryId == result.entryId ? shipment?.entryNumber : nil
                let status: Status =
                    switch result.event {
                    case .rejected: .rejected
                    case .cancelled: .cancelled
                    default:
                        // An amendment re-states the entry; its release stands unless CBP answers again.
                        shipment?.entryId == result.entryId && result.event == .amended ? shipment!.status : .accepted
                    }
                shipment = Shipment(
                    shipmentId: result.shipmentId, entryId: result.entryId, entryType: result.entryType,
                    entryNumber: result.entryNumber ?? keepsNumber, manifestId: result.manifestId,
                    masterBill: result.masterBill, filerCode: result.filerCode, status: status,
                    conditions: result.event == .rejected ? result.conditions.map(\.code) : [],
                    disposition: shipment?.entryId == result.entryId ? shipment?.disposition : nil,
                    pgaStatus: shipment?.entryId == result.entryId ? shipment?.pgaStatus : nil,
                    answeredAt: shipment?.entryId == result.entryId ? shipment!.answeredAt : result.at,
                    releasedAt: shipment?.entryId == result.entryId ? shipment?.releasedAt : nil, updatedAt: result.at)
            case .released, .exam, .hold, .holdRemoved, .pga:
                // A disposition of an entry the shipment is no longer on says nothing about it.
                guard var current = shipment, current.entryId == result.entryId, current.status != .cancelled,
                    current.status != .rejected
                else { continue }
                switch result.event {
                case .released:
                    current.status = .released
                    current.releasedAt = current.releasedAt ?? result.at
                case .exam: current.status = .exam
                case .hold: current.status = .held
                case .holdRemoved: current.status = current.releasedAt == nil ? .accepted : .released
                default: break
                }
                if let disposition = result.disposition { current.disposition = disposition.code }
                if let pga = result.pga {
                    current.pgaStatus = pga.code
                    if pga.code == "02" { current.status = .held }
                }
                current.updatedAt = result.at
                shipment = current
            }
            shipments[result.shipmentId] = shipment
        }
        let all = shipments.values.sorted(by: { $0.shipmentId < $1.shipmentId })
        let live = all.filter { $0.status != .cancelled }
        let status: Status =
            if live.isEmpty { .cancelled } else if live.contains(where: { $0.status == .rejected }) {
                .rejected
            } else if live.contains(where: { $0.status == .held }) {
                .held
            } else if live.contains(where: { $0.status == .exam }) {
                .exam
            } else if live.allSatisfy({ $0.status == .released }) { .released } else { .accepted }
        return OrderCustoms(
            orderId: first.orderId, erp: erp, revision: 0, status: status,
            entryNumbers: Array(Set(live.compactMap(\.entryNumber))).sorted(), shipments: all,
            updatedAt: all.map(\.updatedAt).max() ?? first.at)
    }
}

extension EntryResult.Event {
    /// Where the event comes in an entry's life, to order events of the same instant.
    var rank: Int {
        switch self {
        case .rejected: 0
        case .accepted: 1
        case .amended: 2
        case .cancelled: 3
        case .pga: 4
        case .exam: 5
        case .hold: 6
        case .holdRemoved: 7
        case .released: 8
        }
    }
}

/// An `erp-writeback.v1` record (key: `orderId`): what became of one write-back of an order's
/// customs values to its ERP record.
public struct WritebackResult: Codable, Hashable, Sendable {
    /// The CloudEvents type.
    public static let type = "clearway.erp.writeback.v1"

    /// What became of it.
    public enum Outcome: String, Codable, Hashable, Sendable, CaseIterable {
        /// The ERP record now holds these values.
        case applied
        /// The ERP record already held them, or a later revision (a repeat after a restart).
        case alreadyApplied = "already-applied"
        /// The ERP refused the values (`message` has its words); also on `orders.exceptions.v1`.
        case refused
        /// The ERP kept failing and the worker stopped trying; the last entry result is on the
        /// DLQ, from which a replay writes it back.
        case gaveUp = "gave-up"
    }

    public var orderId: String
    public var erp: OrderEvent.ERPReference
    public var revision: Int
    public var outcome: Outcome
    /// How many requests it took (attempts, not counting token requests).
    public var attempts: Int
    /// The ERP's words on a refusal or the last failure; the ERP's record id or version on success.
    public var message: String?
    /// The values written (or meant to be).
    public var customs: OrderCustoms
    /// When the outcome was known (ISO 8601).
    public var at: String

    /// Makes a result.
    public init(
        orderId: String, erp: OrderEvent.ERPReference, revision: Int, outcome: Outcome, attempts: Int,
        message: String?, customs: OrderCustoms, at: String
    ) {
        self.orderId = orderId
        self.erp = erp
        self.revision = revision
        self.outcome = outcome
        self.attempts = attempts
        self.message = message
        self.customs = customs
        self.at = at
    }
}
