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

    /// The definition from the environment: `CLEARWAY_CONSIGNEE_SECRET` (required) and
    /// `CLEARWAY_WAREHOUSES` (a warehouses file; default the shipped example).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        guard let text = environment["CLEARWAY_CONSIGNEE_SECRET"], !text.isEmpty else {
            throw ConfigurationError(
                "CLEARWAY_CONSIGNEE_SECRET is not set: give every enricher instance the same secret of at least 16 bytes (it keys the consignee hashes)"
            )
        }
        let secret: ConsigneeKeySecret
        do {
            secret = try ConsigneeKeySecret(text: text)
        } catch let error as DomainError {
            throw ConfigurationError("CLEARWAY_CONSIGNEE_SECRET: \(error.message)")
        }
        var warehouses = try WarehouseDirectory.shipped()
        if let path = environment["CLEARWAY_WAREHOUSES"], !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("CLEARWAY_WAREHOUSES: cannot read \(path)")
            }
            do {
                warehouses = try WarehouseDirectory.load(data, ports: PortDirectory.shipped())
            } catch let error as DomainError {
                throw ConfigurationError("CLEARWAY_WAREHOUSES (\(path)): \(error.message)")
            }
        }
        var retention = Duration.seconds(30 * 86_400)
        if let text = environment["CLEARWAY_ENRICHER_RETENTION_DAYS"] {
            guard let days = Int(text), days >= 1 else {
                throw ConfigurationError("CLEARWAY_ENRICHER_RETENTION_DAYS must be a whole number of days, 1 or more")
            }
            retention = .seconds(days * 86_400)
        }
        var maximumLines = defaultMaximumLines
        if let text = environment["CLEARWAY_MAX_ORDER_LINES"] {
            guard let lines = Int(text), lines >= 1 else {
                throw ConfigurationError("CLEARWAY_MAX_ORDER_LINES must be a whole number of lines, 1 or more")
            }
            maximumLines = lines
        }
        return definition(warehouses: warehouses, secret: secret, retention: retention, maximumLines: maximumLines)
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
        var session = Session(handler: self, state: state, tables: context.tables)
        return try session.receive(order)
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
        var session = Session(handler: self, state: state, tables: context.tables)
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
            outputs += try session.redrive(orderID)
        }
        return outputs
    }
}

/// What the enricher remembers of an order (`order/<orderId>`).
struct OrderMemory: Codable {
    enum Status: String, Codable { case enriched, parked, cancelled, rejected }
    var version: Int
    var status: Status
    /// The keys it was last published under (enriched), for a later cancellation or update.
    var keys: ConsigneeKeys?
    /// A parked order, whole, to re-drive.
    var order: OrderEvent?
    /// A parked order's gap codes, so an unchanged re-drive does not repeat its exception.
    var gapCodes: [String]?
    /// A parked order's wait keys.
    var waits: [String]?
}

/// One record's (or one re-drive's) work on a partition's state.
struct Session {
    let handler: EnricherHandler
    let state: PartitionState
    let tables: ReferenceTables
    private let encoder = JSONEncoder.sortedKeys()

    init(handler: EnricherHandler, state: PartitionState, tables: ReferenceTables) {
        self.handler = handler
        self.state = state
        self.tables = tables
    }

    mutating func receive(_ order: OrderEvent) throws -> [OutputRecord] {
        let previous = try memory(order.orderId)
        if let previous, previous.version >= order.version {
            // Already handled: the same version again is a duplicate (one logical output, so
            // nothing more); an older one is superseded.
            guard previous.version > order.version else { return [] }
            return [
                try exception(
                    order,
                    gaps: [
                        OrderGap(
                            code: "superseded-version",
                            detail:
                                "version \(order.version) of order \(order.orderId) arrived after version \(previous.version); it is ignored",
                            fix:
                                "nothing, unless the OMS meant it: then send it again as version \(previous.version + 1)"
                        )
                    ], status: "ignored")
            ]
        }
        if order.type == .cancelled { return try cancel(order, previous: previous) }
        if let lines = order.lines, lines.count > handler.maximumLines {
            return try refuseTooManyLines(order, previous: previous, lines: lines.count)
        }
        return try enrich(order, previous: previous)
    }

    /// An order of more lines than its records downstream can carry: refused here, with what to
    /// do, and an earlier version withdrawn (this version replaces it, and cannot go on).
    private mutating func refuseTooManyLines(_ order: OrderEvent, previous: OrderMemory?, lines: Int) throws
        -> [OutputRecord]
    {
        var outputs: [OutputRecord] = []
        if let old = previous?.keys, previous?.status == .enriched {
            outputs.append(
                try cancellation(
                    order, keys: old,
                    reason:
                        "version \(order.version) has \(lines) lines, more than can be filed as one record; the earlier version is withdrawn"
                ))
        }
        clearParking(order.orderId, previous: previous)
        try remember(order.orderId, OrderMemory(version: order.version, status: .rejected, keys: nil))
        let gap = OrderGap(
            code: "too-many-lines",
            detail:
                "order \(order.orderId) has \(lines) lines; an order may have at most \(handler.maximumLines), for its enriched and screened records and its shipment decision to fit one Kafka record each",
            fix:
                "split it into orders of at most \(handler.maximumLines) lines (each its own shipment), or raise CLEARWAY_MAX_ORDER_LINES on the enricher together with the record size limits (CLEARWAY_KAFKA_MESSAGE_MAX_BYTES on every worker, the topics' max.message.bytes)"
        )
        outputs.append(try exception(order, gaps: [gap], status: "rejected"))
        return outputs
    }

    /// Re-evaluates a parked order after reference data changed.
    mutating func redrive(_ orderID: String) throws -> [OutputRecord] {
        guard let memory = try memory(orderID), memory.status == .parked, let order = memory.order else {
            // Not parked any more: drop stale index entries.
            state.remove("parked/\(orderID)")
            return []
        }
        return try enrich(order, previous: memory, redriven: true)
    }

    private mutating func enrich(_ order: OrderEvent, previous: OrderMemory?, redriven: Bool = false) throws
        -> [OutputRecord]
    {
        let references = EnrichmentReferences(
            catalogItem: { [tables] sku in
                try tables[Topics.catalog.name]?.value(sku) { data in
                    let item: CatalogItem
                    do {
                        item = try JSONDecoder().decode(CatalogItem.self, from: data)
                    } catch {
                        throw DomainError(.invalidReferenceData, "\(error)")
                    }
                    // catalog.v1 is keyed by sku: a record under another SKU's key would enrich
                    // this SKU's lines with that SKU's HTS number, origin and manufacturer.
                    guard item.sku == sku else {
                        throw DomainError(
                            .invalidReferenceData,
                            "the record under the key \"\(sku)\" is for SKU \"\(item.sku)\" (catalog.v1 is keyed by sku); publish \(sku)'s own record under its key, and \(item.sku)'s under \"\(item.sku)\""
                        )
                    }
                    return CatalogEntry(item)
                }
            },
            rates: { [tables] currency, day in
                try ExchangeRate.tableKeys(currency, day).compactMap { key in
                    try tables[Topics.fxRates.name]?.value(key) { data in
                        let rate = try JSONDecoder().decode(ExchangeRate.self, from: data)
                        // fx-rates.v1 is keyed by currency and date: a rate under another key
                        // would convert this currency or day at another's rate (19 CFR 159.32).
                        guard rate.tableKey == key else {
                            throw DomainError(
                                .invalidReferenceData,
                                "the record under the key \"\(key)\" is the rate \"\(rate.tableKey)\" (fx-rates.v1 is keyed by currency@date, or currency@YYYY-Qn for a quarterly rate); publish it under its own key"
                            )
                        }
                        return rate
                    }
                }
            }, warehouses: handler.warehouses, secret: handler.secret)
        var outputs: [OutputRecord] = []
        switch Enrichment.enrich(order, references: references) {
        case .enriched(let enriched):
            let keys = ConsigneeKeys(consigneeKey: enriched.consigneeKey, addressKey: enriched.addressKey)
            // An earlier version published under other keys is withdrawn there first.
            if let old = previous?.keys, old != keys, previous?.status == .enriched {
                outputs.append(
                    try cancellation(
                        order, keys: old,
                        reason: "version \(order.version) changed the consignee; this version is withdrawn"))
            }
            clearParking(order.orderId, previous: previous)
            try remember(order.orderId, OrderMemory(version: order.version, status: .enriched, keys: keys))
            outputs.append(
                OutputRecord(
                    topic: Topics.ordersEnriched.name, key: enriched.consigneeKey,
                    value: try encoder.encode(enriched), type: EnricherHandler.enrichedType,
                    idSeed: "\(order.orderId)/v\(order.version)/enriched"))
        case .gaps(let gaps):
            let codes = gaps.map(\.code)
            let waits = Set(gaps.compactMap(\.waitsOn)).sorted()
            if redriven, previous?.gapCodes == codes, previous?.waits == waits { return [] }
            if let old = previous?.keys, previous?.status == .enriched {
                outputs.append(
                    try cancellation(
                        order, keys: old,
                        reason: "version \(order.version) has data gaps and is parked; the earlier version is withdrawn"
                    ))
            }
            clearParking(order.orderId, previous: previous)
            try remember(
                order.orderId,
                OrderMemory(
                    version: order.version, status: .parked, keys: nil,
                    order: order, gapCodes: codes, waits: waits))
            state.set("parked/\(order.orderId)", Data())
            for wait in waits { state.set("wait/\(wait)/\(order.orderId)", Data()) }
            outputs.append(try exception(order, gaps: gaps, status: "parked"))
        }
        return outputs
    }

    private mutating func cancel(_ order: OrderEvent, previous: OrderMemory?) throws -> [OutputRecord] {
        clearParking(order.orderId, previous: previous)
        var keys = previous?.keys
        if keys == nil, let consignee = previous?.order?.consignee ?? order.consignee {
            keys = try? consignee.keys(secret: handler.secret)
        }
        try remember(order.orderId, OrderMemory(version: order.version, status: .cancelled, keys: keys))
        guard let keys else {
            return [
                try exception(
                    order,
                    gaps: [
                        OrderGap(
                            code: "cancelled-unknown-order",
                            detail:
                                "order \(order.orderId) was cancelled before the enricher saw it placed, and the cancellation names no consignee",
                            fix: "nothing to free downstream; include the consignee in cancellations to pass them on")
                    ], status: "ignored")
            ]
        }
        let reason =
            previous?.status == .parked
            ? "cancelled while parked for data gaps; nothing was released for it" : "cancelled by the OMS"
        return [try cancellation(order, keys: keys, reason: reason)]
    }

    private func cancellation(_ order: OrderEvent, keys: ConsigneeKeys, reason: String) throws -> OutputRecord {
        var cancelled = order
        cancelled.type = .cancelled
        return OutputRecord(
            topic: Topics.ordersEnriched.name, key: keys.consigneeKey,
            value: try encoder.encode(Enrichment.cancellation(cancelled, keys: keys, reason: reason)),
            type: EnricherHandler.enrichedType,
            idSeed: "\(order.orderId)/v\(order.version)/cancelled/\(keys.consigneeKey)")
    }

    private func exception(_ order: OrderEvent, gaps: [OrderGap], status: String) throws -> OutputRecord {
        let first = gaps[0]
        let record = ExceptionRecord(
            orderId: order.orderId, version: order.version, stage: EnricherHandler.name, status: status,
            code: first.code,
            detail: gaps.count == 1 ? first.detail : "\(first.detail) (and \(gaps.count - 1) more problem(s))",
            fix: first.fix, problems: gaps)
        return OutputRecord(
            topic: Topics.exceptions.name, key: order.orderId, value: try encoder.encode(record),
            type: EnricherHandler.exceptionType,
            idSeed: "\(order.orderId)/v\(order.version)/exception/\(gaps.map(\.code).joined(separator: ","))")
    }

    private func clearParking(_ orderID: String, previous: OrderMemory?) {
        guard previous?.status == .parked else { return }
        state.remove("parked/\(orderID)")
        for wait in previous?.waits ?? [] { state.remove("wait/\(wait)/\(orderID)") }
    }

    private func memory(_ orderID: String) throws -> OrderMemory? {
        guard let data = try state.value("order/\(orderID)") else { return nil }
        return try JSONDecoder().decode(OrderMemory.self, from: data)
    }

    private func remember(_ orderID: String, _ memory: OrderMemory) throws {
        state.set("order/\(orderID)", try encoder.encode(memory))
        if memory.status == .parked {
            state.cancel(timer: "forget/\(orderID)")
        } else {
            state.schedule(timer: "forget/\(orderID)", at: Date() + handler.retention.timeInterval)
        }
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

extension JSONEncoder {
    /// The workers' encoder for records and state: sorted keys, slashes as they are (the same
    /// value always gives the same bytes).
    static func sortedKeys() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
