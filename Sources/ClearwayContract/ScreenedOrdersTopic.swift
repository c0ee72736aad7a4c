import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `orders.screened.v1`: each shipment of an enriched order with the entry lanes it may or
    /// must take, the PGA flags and exclusions found, and why; cancellations pass on as the
    /// enricher wrote them (an ``EnrichedOrder`` of type `cancelled`).
    ///
    /// - Value: ``ScreenedOrder`` (ClearwayDomain, `ScreenedOrder.swift`: the aggregator's rules
    ///   read it); schema `schemas/orders.screened.v1.schema.json`.
    /// - Key: `consigneeKey`. Partitions: 6.
    /// - Written by: the pga-router. Read by: the aggregator.
    public static let ordersScreened = TopicDeclaration("orders.screened.v1")
}
