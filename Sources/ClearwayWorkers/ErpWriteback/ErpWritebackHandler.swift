import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// The erp-writeback's handler (docs/erp-writeback-design.md): reads `entry-results.v1` (key
/// `orderId`); per order keeps the set of its entry results and their fold (`OrderCustoms`),
/// and when the fold changes puts the new revision in the partition's outbox, which commits with
/// the input. The runtime's dispatcher sends it through the worker's `OutboxSender` (the ERP
/// adapters, linked by the `erp-writeback` executable only); its completion comes back here and
/// becomes an `erp-writeback.v1` record — applied, already applied, refused (also an exception
/// with the ERP's words) or given up (also the order's last entry result on the DLQ, so that a
/// replay writes it back).
public struct ErpWritebackHandler: RecordHandler {
    public static let name = WorkerName.erpWriteback.rawValue

    /// What the sender tells of a delivered write (`OutboxSendResult.delivered`).
    public struct Report: Codable, Hashable, Sendable {
        /// `applied` or `already-applied`.
        public var outcome: WritebackResult.Outcome
        /// The ERP's id or version of the record.
        public var detail: String

        /// Makes a report.
        public init(outcome: WritebackResult.Outcome, detail: String) {
            self.outcome = outcome
            self.detail = detail
        }
    }

    /// An order's write-back state.
    struct Order: Codable {
        /// Its entry results so far, without repeats.
        var events: [EntryResult] = []
        /// Their fold as last put in the outbox, with its revision.
        var customs: OrderCustoms?
        /// The last outcome and the revision it was for.
        var outcome: WritebackResult.Outcome?
        var outcomeRevision = 0
        /// The last entry result's bytes: what goes to the DLQ on a give-up.
        var lastResult = Data()
        /// The order names no ERP record (said once, on the exceptions).
        var noReference = false
    }

    /// The most entry results kept per order (the oldest go first); far more than an order's
    /// entries and dispositions come to.
    static let eventLimit = 200

    private let encoder = JSONEncoder.sortedKeys()
    private let decoder = JSONDecoder()

    public init() {}

    /// The worker: stateful on `entry-results.v1`, its outbox sent by `sender`.
    public static func definition(sender: any OutboxSender) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.entryResults],
            outputs: [Topics.erpWriteback, Topics.exceptions, Topics.dlq], handler: ErpWritebackHandler(),
            isStateful: true, outbox: sender)
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else {
            throw RecordRejected("not-stateful", "the erp-writeback needs its state")
        }
        let result = try record.decoded(EntryResult.self, topic: "entry-results.v1", decoder: decoder)
        try KeyCheck.require(record, isKeyedBy: result.orderId, field: "orderId")
        let key = "order/\(result.orderId)"
        var order = try state.value(key).map { try decoder.decode(Order.self, from: $0) } ?? Order()
        order.lastResult = record.value
        guard result.erp != nil || order.events.contains(where: { $0.erp != nil }) else {
            // Nothing to write back to; said once per order.
            defer { order.noReference = true }
            let said = order.noReference
            order.events = []
            state.set(key, try encoder.encode(order))
            return said ? [] : [try noReference(result)]
        }
        // A repeat counts at its latest arrival (`OrderCustoms.fold` breaks ties of time by it).
        let known = order.events.contains(result)
        order.events.removeAll { $0 == result }
        order.events.append(result)
        if order.events.count > Self.eventLimit { order.events.removeFirst(order.events.count - Self.eventLimit) }
        guard var folded = OrderCustoms.fold(order.events) else { return [] }
        if let current = order.customs, current.values == folded.values {
            // Nothing new, unless this is a replay of an order whose write-back was given up on.
            guard known, order.outcome == .gaveUp, order.outcomeRevision == current.revision,
                try state.outbox(result.orderId) == nil
            else {
                state.set(key, try encoder.encode(order))
                return []
            }
            folded = current
        } else {
            folded.revision = (order.customs?.revision ?? 0) + 1
        }
        order.customs = folded
        state.set(key, try encoder.encode(order))
        state.enqueue(outbox: result.orderId, try encoder.encode(folded))
        return []
    }

    public func outboxCompleted(_ completion: OutboxCompletion, context: HandlerContext) async throws
        -> [OutputRecord]
    {
        guard let state = context.state else { return [] }
        let customs = try decoder.decode(OrderCustoms.self, from: completion.payload)
        if try state.outbox(completion.key) == completion.payload { state.removeFromOutbox(completion.key) }
        let key = "order/\(customs.orderId)"
        var order = try state.value(key).map { try decoder.decode(Order.self, from: $0) } ?? Order()
        let outcome: WritebackResult.Outcome
        let message: String
        switch completion.outcome {
        case .delivered(let data):
            let report = try decoder.decode(Report.self, from: data)
            (outcome, message) = (report.outcome, report.detail)
        case .refused(let words): (outcome, message) = (.refused, words)
        case .gaveUp(let failure): (outcome, message) = (.gaveUp, failure)
        }
        if customs.revision >= order.outcomeRevision {
            order.outcome = outcome
            order.outcomeRevision = customs.revision
            state.set(key, try encoder.encode(order))
        }
        let written = WritebackResult(
            orderId: customs.orderId, erp: customs.erp, revision: customs.revision, outcome: outcome,
            attempts: completion.attempts, message: message, customs: customs,
            at: Date().formatted(.iso8601))
        var outputs = [
            OutputRecord(
                topic: Topics.erpWriteback.name, key: customs.orderId, value: try encoder.encode(written),
                type: WritebackResult.type)
        ]
        switch outcome {
        case .refused:
            outputs.append(try refusal(customs, order: order, message: message))
        case .gaveUp:
            outputs.append(
                deadLetter(
                    customs, order: order, message: message, attempts: completion.attempts,
                    source: context.topicPrefix + Topics.entryResults.name))
        default: break
        }
        return outputs
    }

    // MARK: Outputs

    private func noReference(_ result: EntryResult) throws -> OutputRecord {
        let exception = ExceptionRecord(
            orderId: result.orderId, version: result.version, stage: Self.name, status: "ignored",
            code: "NO-ERP-RECORD",
            detail:
                "the order's entry results name no ERP record (erp.system, erp.recordId), so nothing is written back",
            fix: "send the order on orders.v1 with its erp {system, recordId}", problems: [])
        return OutputRecord(
            topic: Topics.exceptions.name, key: result.orderId, value: try encoder.encode(exception),
            type: "clearway.order.exception.v1")
    }

    private func refusal(_ customs: OrderCustoms, order: Order, message: String) throws -> OutputRecord {
        let exception = ExceptionRecord(
            orderId: customs.orderId, version: order.events.map(\.version).max() ?? 1, stage: Self.name,
            status: "rejected", code: "ERP-REFUSED",
            detail:
                "\(customs.erp.system) refused the customs values of revision \(customs.revision) for record \(customs.erp.recordId): \(message)",
            fix:
                "fix what the ERP names (the record, its fields or the integration's permissions), then replay the order's last entry result from the DLQ or wait for its next event",
            problems: [])
        return OutputRecord(
            topic: Topics.exceptions.name, key: customs.orderId, value: try encoder.encode(exception),
            type: "clearway.order.exception.v1")
    }

    private func deadLetter(
        _ customs: OrderCustoms, order: Order, message: String, attempts: Int, source: String
    ) -> OutputRecord {
        let text =
            "gave up writing revision \(customs.revision) to \(customs.erp.system) after \(attempts) attempts: \(message)"
        return OutputRecord(
            topic: Topics.dlq.name, key: customs.orderId, value: order.lastResult, type: EntryResult.type,
            headers: [
                KafkaHeader(name: "dlq.source.topic", string: source),
                KafkaHeader(name: "dlq.worker", string: Self.name),
                KafkaHeader(name: "dlq.error.class", string: "erp-gave-up"),
                KafkaHeader(name: "dlq.error.message", string: text),
                KafkaHeader(name: "dlq.time", string: Date().formatted(.iso8601)),
            ])
    }
}
