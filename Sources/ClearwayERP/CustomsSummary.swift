import ClearwayContract
import Foundation

/// An order's customs values flattened into the scalar fields an ERP record holds (the full
/// values go beside them as JSON, in `detail`).
public struct CustomsSummary: Sendable, Hashable {
    /// The order's status (`accepted`, `released`, …).
    public var status: String
    /// The live entries' numbers, comma-joined.
    public var entryNumbers: String
    /// The live shipments' entry types (`T01`, `T11`, `T86`), sorted, comma-joined.
    public var entryTypes: String
    /// The live shipments' manifest ids, sorted, comma-joined.
    public var manifests: String
    /// The live shipments' master bills, sorted, comma-joined.
    public var masterBills: String
    /// The rejection condition codes of the order's shipments, sorted, comma-joined.
    public var conditions: String
    /// When customs first answered for the order (the earliest live shipment's answer, ISO 8601).
    public var answeredAt: String
    /// When the order was released (its last shipment's release), empty until all are.
    public var releasedAt: String
    /// The last event's time (ISO 8601).
    public var updatedAt: String
    /// The full values as JSON (sorted keys), which ``OrderCustoms`` reads back.
    public var detail: String

    /// Flattens an order's values.
    public init(_ customs: OrderCustoms) {
        let live = customs.shipments.filter { $0.status != .cancelled }
        func joined(_ values: some Sequence<String>) -> String { Set(values).sorted().joined(separator: ",") }
        status = customs.status.rawValue
        entryNumbers = customs.entryNumbers.joined(separator: ",")
        entryTypes = joined(live.map(\.entryType.rawValue))
        manifests = joined(live.map(\.manifestId))
        masterBills = joined(live.compactMap(\.masterBill))
        conditions = joined(customs.shipments.flatMap(\.conditions))
        answeredAt = live.map(\.answeredAt).min() ?? ""
        releasedAt = customs.status == .released ? live.compactMap(\.releasedAt).max() ?? "" : ""
        updatedAt = customs.updatedAt
        detail = Self.json(customs)
    }

    /// The values as the JSON `detail` holds.
    static func json(_ customs: OrderCustoms) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(customs)) ?? Data(), as: UTF8.self)
    }

    /// The values a `detail` holds; nil when empty or not ``OrderCustoms`` JSON.
    static func customs(fromDetail detail: String?) -> OrderCustoms? {
        guard let detail, !detail.isEmpty else { return nil }
        return try? JSONDecoder().decode(OrderCustoms.self, from: Data(detail.utf8))
    }
}

/// Reads an integer a JSON object holds as a number or a numeric string (ERPs do both).
func integer(_ value: Any?) -> Int? {
    switch value {
    case let value as Int: value
    case let value as Double: Int(exactly: value)
    case let value as String: Int(value)
    default: nil
    }
}
