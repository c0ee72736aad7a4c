import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// The enricher: joins each order (`orders.v1`) with the SKU master (`catalog.v1`) and the
/// certified exchange rates (`fx-rates.v1`), both kept whole in local SQLite, and publishes
/// `orders.enriched.v1` keyed by `consigneeKey`. An order with a data gap goes to
/// `orders.exceptions.v1` and is parked; when a catalog or rate record fixes the gap, the
/// parked order is re-driven at once.
///
/// Per orders partition the state holds, without raw names or addresses outside parked orders:
/// - `order/<orderId>`: the last version seen, whether it was enriched, parked or cancelled, and
///   its consignee keys (so a cancellation or an update can free what downstream holds);
/// - `parked/<orderId>`: an index of parked orders;
/// - `wait/<catalog:SKU | fx:CUR>/<orderId>`: which parked orders a reference key may fix.
public struct EnricherHandler: RecordHandler {
    public static let name = WorkerName.enricher.rawValue
    static let enrichedType = "clearway.order.enriched.v1"
    static let exceptionType = "clearway.order.exception.v1"

    let warehouses: WarehouseDirectory
    let secret: ConsigneeKeySecret
    /// How long an order is remembered after its last change (enriched or cancelled), for
    /// duplicates, stale versions and cancellations; then it is forgotten, so state stays small.
    let retention: Duration
    /// The most lines an order may have. Each line adds a few hundred bytes to the enriched
    /// record and more to the screened one and the shipment decision downstream, and each of
    /// those must fit one Kafka record (librdkafka's `message.max.bytes`, 1,000,000 by default);
    /// an order of more lines is refused on arrival (`too-many-lines`) rather than stopping at a
    /// later stage. `CLEARWAY_MAX_ORDER_LINES`; default `defaultMaximumLines`.
    let maximumLines: Int
    /// 500 lines: a screened order of 500 lines with several reasons each is under half of the
    /// default record limit (tests check the enricher's and the pga-router's outputs there).
    public static let defaultMaximumLines = 500

    public init(
        warehouses: WarehouseDirectory, secret: ConsigneeKeySecret, retention: Duration = .seconds(30 * 86_400),
        maximumLines: Int = defaultMaximumLines
    ) {
        self.warehouses = warehouses
        self.secret = secret
        self.retention = retention
        self.maximumLines = maximumLines
    }

    /// The worker: stateful (parked orders), with the catalog and the rates as reference tables.
    public static func definition(
        warehouses: WarehouseDirectory, secret: ConsigneeKeySecret, retention: Duration = .seconds(30 * 86_400),
        maximumLines: Int = defaultMaximumLines
    ) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.orders],
            outputs: [Topics.ordersEnriched, Topics.exceptions],
            handler: EnricherHandler(
                warehouses: warehouses, secret: secret, retention: retention, maximumLines: maximumLines),
            isStateful: true, tables: [Topics.catalog, Topics.fxRates])
    }

    // MARK: Records

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else { throw RecordRejected("not-stateful", "the enricher needs its state") }
        guard !record.isTombstone else {
            throw RecordRejected(
                "schema-invalid", "an orders.v1 record has no value (a tombstone); cancel an order with type cancelled")
        }
        let order: OrderEvent
        do {
            order = try OrderEvent.decode(record.value)
        } catch let error as DomainError {
            throw RecordRejected("schema-invalid", error.message)
        }
        try KeyCheck.require(record, isKeyedBy: order.orderId, field: "orderId")
        var orders = OrderBook(handler: self, state: state, tables: context.tables)
        return try orders.receive(order)
    }

    /// `forget/<orderId>`: the retention of a settled order ran out.
    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state, key.hasPrefix("forget/") else { return [] }
        let orderID = String(key.dropFirst("forget/".count))
        if let data = try state.value("order/\(orderID)"),
            let memory = try? JSONDecoder().decode(OrderMemory.self, from: data), memory.status != .parked
        {
            state.remove("order/\(orderID)")
        }
        return []
    }

    public func tablesChanged(_ changes: [String: Set<String>]?, context: HandlerContext) async throws
        -> [OutputRecord]
    {
        guard let state = context.state else { return [] }
        var orders = OrderBook(handler: self, state: state, tables: context.tables)
        var orderIDs: [String] = []
        if let changes {
            var waits: [String] = []
            for sku in changes[Topics.catalog.name] ?? [] { waits.append("catalog:\(sku)") }
            let currencies = Set((changes[Topics.fxRates.name] ?? []).map { $0.prefix { $0 != "@" } })
            for currency in currencies { waits.append("fx:\(currency)") }
            for wait in waits {
                for key in try state.keys(withPrefix: "wait/\(wait)/") {
                    orderIDs.append(String(key.dropFirst("wait/\(wait)/".count)))
                }
            }
        } else {
            orderIDs = try state.keys(withPrefix: "parked/").map { String($0.dropFirst("parked/".count)) }
        }
        var outputs: [OutputRecord] = []
        for orderID in Set(orderIDs).sorted() {
            outputs += try orders.redrive(orderID)
        }
        return outputs
    }
}
