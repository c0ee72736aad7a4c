import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Dispatch
import Foundation
import Logging
import Synchronization

/// The pga-router: stateless. Each enriched order becomes a screened shipment (or two, for a
/// split mixed order) with the lanes it may or must take and why; a line whose HTS number the
/// reference lacks is an exception, never "unflagged".
public struct PGARouterHandler: RecordHandler {
    public static let name = WorkerName.pgaRouter.rawValue
    static let screenedType = "clearway.order.screened.v1"
    static let exceptionType = "clearway.order.exception.v1"

    public let references: ScreeningReferences

    public init(references: ScreeningReferences) { self.references = references }

    public static func definition(references: ScreeningReferences) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.ordersEnriched],
            outputs: [Topics.ordersScreened, Topics.exceptions],
            handler: PGARouterHandler(references: references))
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        let order = try record.decoded(EnrichedOrder.self, topic: "orders.enriched.v1")
        try KeyCheck.require(record, isKeyedBy: order.consigneeKey, field: "consigneeKey")
        let encoder = JSONEncoder.sortedKeys()
        // A cancellation flows on as it is: the aggregator frees every shipment of the order.
        if order.type == .cancelled {
            return [
                OutputRecord(
                    topic: Topics.ordersScreened.name, key: order.consigneeKey, value: record.value,
                    type: Self.screenedType,
                    idSeed: "\(order.orderId)/v\(order.version)/cancelled/\(order.consigneeKey)")
            ]
        }
        let screening = references.screening
        let outcome: OrderScreening.Outcome
        do {
            outcome = try screening.screen(order)
        } catch let error as DomainError {
            throw RecordRejected("schema-invalid", error.message)
        }
        switch outcome {
        case .shipments(let shipments):
            return try shipments.map { shipment in
                OutputRecord(
                    topic: Topics.ordersScreened.name, key: order.consigneeKey,
                    value: try encoder.encode(shipment), type: Self.screenedType,
                    idSeed: "\(shipment.shipmentId)/v\(order.version)/screened")
            }
        case .unknownHTS(let gaps):
            let first = gaps[0]
            let exception = ExceptionRecord(
                orderId: order.orderId, version: order.version, stage: Self.name, status: "rejected", code: first.code,
                detail: gaps.count == 1 ? first.detail : "\(first.detail) (and \(gaps.count - 1) more)", fix: first.fix,
                problems: gaps)
            return [
                OutputRecord(
                    topic: Topics.exceptions.name, key: order.orderId, value: try encoder.encode(exception),
                    type: Self.exceptionType, idSeed: "\(order.orderId)/v\(order.version)/pga-router/exception")
            ]
        }
    }
}
