import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// The aggregator: per consignee and arrival day, the shipments released under the regime in
/// force, their totals and the held ones — deciding each shipment's entry type, hold or reroute
/// by the domain's `aggregate` (the "one person, one day" rule, 19 CFR 10.151; the entry types
/// of CBP Form 7501, block 2; the informal-entry ceiling, 19 CFR 143.21(a)), exactly once through
/// the runtime's state and transactions. A held shipment is screened again, at the policy's
/// level, under the policy of the day it is released on. Every release, and
/// every withdrawal of one, also goes to `released.by-address.v1` keyed by `addressKey`, where
/// the structuring watch (`StructuringHandler`) sees all consignees at one address together,
/// whichever partition each consignee has here, and to `released.by-conveyance.v1` keyed by
/// its conveyance, where one manifest-builder instance builds each conveyance's manifest.
///
/// State per input partition (all of a consignee's shipments share its partition):
/// - `window/<day>/<consigneeKey>`: the `DayWindow` (shipments released into it);
/// - `shipment/<shipmentId>`: what was decided last (`ShipmentMemory`), a held shipment whole;
/// - `order/<orderId>`: the order's shipment ids (a cancellation frees all of them);
/// - `byday/<day>/<shipmentId>` and `days`: what to forget when a day expires;
/// - `watermark`: the latest arrival day seen. Days more than the retention behind it are
///   forgotten (event time, so a replay of old days keeps its windows while it runs), and a
///   record for such a day is an exception, never decided against an empty window;
/// - timers `release/<shipmentId>`: a held shipment's day begins at its port.
public struct AggregatorHandler: RecordHandler {
    public static let name = WorkerName.aggregator.rawValue
    static let clearedType = "clearway.shipment.cleared.v1"

    let timeline: PolicyTimeline
    let overflow: OverflowPolicy
    let ports: PortDirectory
    /// Days a window is kept after its day, then tombstoned.
    let retentionDays: Int

    public init(
        timeline: PolicyTimeline, overflow: OverflowPolicy = .hold, ports: PortDirectory, retentionDays: Int = 7
    ) {
        self.timeline = timeline
        self.overflow = overflow
        self.ports = ports
        self.retentionDays = retentionDays
    }

    public static func definition(
        timeline: PolicyTimeline, overflow: OverflowPolicy = .hold, ports: PortDirectory, retentionDays: Int = 7
    ) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.ordersScreened],
            outputs: [
                Topics.shipmentsCleared, Topics.releasedByAddress,
                Topics.releasedByConveyance, Topics.reroutes, Topics.exceptions,
            ],
            handler: AggregatorHandler(
                timeline: timeline, overflow: overflow, ports: ports, retentionDays: retentionDays),
            isStateful: true)
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else { throw RecordRejected("not-stateful", "the aggregator needs its state") }
        let order = try record.decoded(EnrichedOrder.self, topic: "orders.screened.v1")
        try KeyCheck.require(record, isKeyedBy: order.consigneeKey, field: "consigneeKey")
        var days = ConsigneeDays(handler: self, state: state)
        if order.type == .cancelled { return try days.cancel(order) }
        let shipment: ScreenedOrder
        do {
            shipment = try JSONDecoder().decode(ScreenedOrder.self, from: record.value)
        } catch {
            throw RecordRejected(
                "schema-invalid",
                "a placed or updated orders.screened.v1 record without its screening: \(DomainError.explain(error))")
        }
        guard let arrival = shipment.order.arrivalDay, let arrivalDay = try? Day(arrival) else {
            throw RecordRejected("schema-invalid", "shipment \(shipment.shipmentId) has no arrival day")
        }
        return try days.decide(shipment, on: arrivalDay, held: false)
    }

    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else { return [] }
        var days = ConsigneeDays(handler: self, state: state)
        if key.hasPrefix("release/") { return try days.releaseHeld(String(key.dropFirst("release/".count))) }
        return []
    }
}
