import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

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

/// The orders of one partition as the enricher keeps them (last versions, parked orders and what
/// they wait on): one record's (or one re-drive's) work on the partition's state.
struct OrderBook {
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
                        throw DomainError(.invalidReferenceData, DomainError.explain(error))
                    }
                    try DuplicateKeys.check(data, code: .invalidReferenceData, what: "the catalog.v1 record of \(sku)")
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
                        try DuplicateKeys.check(
                            data, code: .invalidReferenceData, what: "the fx-rates.v1 record \(key)")
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
