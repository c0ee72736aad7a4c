import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `shipments.cleared.v1`: the daily rule's decision on each shipment — released on an entry
    /// type (T86 / T11 / T01), held to a later day, cancelled or rerouted — with the day's total,
    /// the regime and the reasons.
    ///
    /// - Value: ``ClearedShipment``; schema `schemas/shipments.cleared.v1.schema.json`.
    /// - Key: `consigneeKey`. Partitions: 6.
    /// - Written by: the aggregator. Read by: other teams, and the fleet's report (`clearway demo`).
    public static let shipmentsCleared = TopicDeclaration("shipments.cleared.v1")
}

/// A `shipments.cleared.v1` record: the daily rule's decision on one shipment, with the order.
public struct ClearedShipment: Codable, Hashable, Sendable {
    /// What was decided.
    public enum Status: String, Codable, Hashable, Sendable {
        case released, held, cancelled, rerouted
    }

    public var orderId: String
    public var shipmentId: String
    public var version: Int
    public var consigneeKey: String
    public var addressKey: String
    public var status: Status
    /// Set when released: T86, or the shipment's own non-de-minimis type (T11, T01, T03, T12,
    /// T02, T07); the entry it goes on is typed by the manifest-builder.
    public var entryType: EntryType?
    /// The arrival day whose window decided (for a held shipment: the day it is held to).
    public var day: String
    public var valueUSD: String
    /// Released T86: the day's de minimis total; else the shipment's own value.
    public var dayTotalUSD: String
    public var regime: Regime
    public var policyVersion: String
    public var reasons: [DecisionReason]
    /// The screened shipment itself (absent for a cancellation), for the manifest.
    public var shipment: ScreenedOrder?

    /// Makes a record.
    public init(
        orderId: String, shipmentId: String, version: Int, consigneeKey: String, addressKey: String, status: Status,
        entryType: EntryType?, day: String, valueUSD: String, dayTotalUSD: String,
        regime: Regime, policyVersion: String, reasons: [DecisionReason], shipment: ScreenedOrder?
    ) {
        self.orderId = orderId
        self.shipmentId = shipmentId
        self.version = version
        self.consigneeKey = consigneeKey
        self.addressKey = addressKey
        self.status = status
        self.entryType = entryType
        self.day = day
        self.valueUSD = valueUSD
        self.dayTotalUSD = dayTotalUSD
        self.regime = regime
        self.policyVersion = policyVersion
        self.reasons = reasons
        self.shipment = shipment
    }
}
