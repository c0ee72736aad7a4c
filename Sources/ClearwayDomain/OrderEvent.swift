import Foundation

/// An order event from the OMS / ERP (`orders.v1`, keyed by `orderId`).
public struct OrderEvent: Codable, Hashable, Sendable {
    /// What happened to the order.
    public enum Kind: String, Codable, Hashable, Sendable {
        case placed, updated, cancelled
    }

    /// One order line.
    public struct Line: Codable, Hashable, Sendable {
        public var sku: String
        public var quantity: Int
        /// A decimal string in the order's currency, e.g. `"412.50"`.
        public var unitPrice: String

        public init(sku: String, quantity: Int, unitPrice: String) {
            self.sku = sku
            self.quantity = quantity
            self.unitPrice = unitPrice
        }
    }

    /// Where the order lives in the ERP, for the write-back.
    public struct ERPReference: Codable, Hashable, Sendable {
        public var system: String
        public var recordId: String

        public init(system: String, recordId: String) {
            self.system = system
            self.recordId = recordId
        }
    }

    public var orderId: String
    public var type: Kind
    /// Grows with every change of the order; a later version replaces an earlier one.
    public var version: Int
    public var currency: String?
    /// When the parcel ships from the warehouse: a calendar date, `YYYY-MM-DD`, which is the
    /// date at the warehouse (never a UTC date: an OMS sending UTC dates would move a 23:30
    /// Pacific shipment to the next day), or an RFC 3339 timestamp with its UTC offset
    /// (`2026-11-20T23:30:00-08:00`), which is read as the date in the port's time zone.
    public var shipDate: String?
    public var warehouse: String?
    public var carrier: String?
    /// The truck, trailer or flight the parcel crosses on, when the OMS or carrier knows it; the
    /// manifest's conveyance is the carrier's trip (else its run from the warehouse), port and day.
    public var trip: String?
    public var consignee: Consignee?
    public var lines: [Line]?
    public var erp: ERPReference?

    /// Makes an order event.
    public init(
        orderId: String, type: Kind, version: Int, currency: String? = nil, shipDate: String? = nil,
        warehouse: String? = nil, carrier: String? = nil, trip: String? = nil, consignee: Consignee? = nil,
        lines: [Line]? = nil, erp: ERPReference? = nil
    ) {
        self.orderId = orderId
        self.type = type
        self.version = version
        self.currency = currency
        self.shipDate = shipDate
        self.warehouse = warehouse
        self.carrier = carrier
        self.trip = trip
        self.consignee = consignee
        self.lines = lines
        self.erp = erp
    }

    /// The highest version a reader of JSON holds exactly (2^53 − 1).
    public static let maximumVersion = 9_007_199_254_740_991

    /// Reads an `orders.v1` record and checks what `schemas/orders.v1.schema.json` requires: a
    /// placed or updated order has a currency, a ship date, a warehouse, a consignee and lines.
    /// Throws `invalidOrder` naming the field. (Data gaps a person fixes upstream — an unknown
    /// SKU, a non-positive price — are not schema errors; the enricher reports and parks them.)
    public static func decode(_ data: Data) throws -> OrderEvent {
        let order: OrderEvent
        do {
            order = try JSONDecoder().decode(OrderEvent.self, from: data)
        } catch {
            throw DomainError(.invalidOrder, "not an orders.v1 record: \(describe(error))")
        }
        try DuplicateKeys.check(data, code: .invalidOrder, what: "the orders.v1 record")
        guard !order.orderId.isEmpty else { throw DomainError(.invalidOrder, "orderId is empty") }
        // Up to 2^53 − 1, as the schema says: above it JSON readers (JavaScript's, jq's) round the
        // number, and two versions would read as one.
        guard (1...maximumVersion).contains(order.version) else {
            throw DomainError(
                .invalidOrder,
                "order \(order.orderId): version must be a whole number from 1 to \(maximumVersion) (2^53 − 1), not \(order.version)"
            )
        }
        if order.type == .cancelled {
            // A cancellation needs no ship date, but one it gives must be a date.
            if let text = order.shipDate { try checkShipDate(text, of: order) }
            return order
        }
        var missing: [String] = []
        if order.currency == nil { missing.append("currency") }
        if order.shipDate == nil { missing.append("shipDate") }
        if order.warehouse == nil { missing.append("warehouse") }
        if order.consignee == nil { missing.append("consignee") }
        if order.lines?.isEmpty ?? true { missing.append("lines (at least one)") }
        guard missing.isEmpty else {
            throw DomainError(
                .invalidOrder,
                "order \(order.orderId) (\(order.type.rawValue)) lacks \(missing.joined(separator: ", "))")
        }
        try checkShipDate(order.shipDate!, of: order)
        return order
    }

    private static func checkShipDate(_ text: String, of order: OrderEvent) throws {
        guard ShipDate.instant(text) == nil else { return }
        do {
            _ = try Day(text)
        } catch let error as DomainError {
            throw DomainError(
                .invalidOrder,
                "order \(order.orderId): shipDate: \(error.message); give the date at the warehouse (YYYY-MM-DD) or a timestamp with its UTC offset (2026-11-20T23:30:00-08:00)"
            )
        }
    }
}

/// A warehouse that ships to the U.S., and the port its parcels enter through.
public struct Warehouse: Codable, Hashable, Sendable {
    public var code: String
    public var name: String?
    /// The port of entry's code (`ports.json`).
    public var port: String
    /// Whole days from shipping to arrival at the port.
    public var transitDays: Int
}

/// Which port each warehouse's parcels enter through (`warehouses.json`: `[{"code", "name",
/// "port", "transitDays"}]`).
public struct WarehouseDirectory: Sendable {
    public let warehouses: [String: Warehouse]
    public let ports: PortDirectory

    /// Makes a directory; every warehouse's port must be known.
    public init(_ warehouses: [Warehouse], ports: PortDirectory) throws {
        for warehouse in warehouses {
            _ = try ports.port(warehouse.port)
            guard warehouse.transitDays >= 0 else {
                throw DomainError(.invalidReferenceData, "warehouse \(warehouse.code): transitDays must be 0 or more")
            }
        }
        self.warehouses = Dictionary(warehouses.map { ($0.code, $0) }) { _, last in last }
        self.ports = ports
    }

    /// Reads a warehouses file.
    public static func load(_ data: Data, ports: PortDirectory) throws -> WarehouseDirectory {
        do {
            return try WarehouseDirectory(JSONDecoder().decode([Warehouse].self, from: data), ports: ports)
        } catch let error as DomainError {
            throw error
        } catch {
            throw DomainError(.invalidReferenceData, "warehouses file is not valid: \(describe(error))")
        }
    }

    /// The shipped example warehouses (Tijuana, Mexicali, Toronto, Vancouver).
    public static func shipped() throws -> WarehouseDirectory {
        try load(ShippedData.data("warehouses"), ports: PortDirectory.shipped())
    }
}

extension ExchangeRate {
    /// The key of this rate on `fx-rates.v1`: `MXN@2026-11-20` for a daily rate, `MXN@2026-Q4`
    /// for a quarterly one.
    public var tableKey: String {
        kind == .daily ? Self.dailyKey(currency, date) : Self.quarterlyKey(currency, date)
    }

    /// The keys of the rates that can apply to a date: that day's daily rate and its quarter's rate.
    public static func tableKeys(_ currency: CurrencyCode, _ date: Day) -> [String] {
        [dailyKey(currency, date), quarterlyKey(currency, date)]
    }

    static func dailyKey(_ currency: CurrencyCode, _ date: Day) -> String { "\(currency)@\(date)" }
    static func quarterlyKey(_ currency: CurrencyCode, _ date: Day) -> String {
        "\(currency)@\(date.year)-Q\((date.month - 1) / 3 + 1)"
    }
}

/// A ship date given as a timestamp with its UTC offset (RFC 3339).
enum ShipDate {
    /// The instant, when `text` is a timestamp with an offset; nil for a plain date.
    static func instant(_ text: String) -> Date? {
        guard text.contains("T") else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
