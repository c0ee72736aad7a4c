import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `orders.enriched.v1`: each order with its lines' HTS numbers, origins, MIDs and USD values,
    /// its value in USD and its consignee's keys; or a cancellation to pass on.
    ///
    /// - Value: ``EnrichedOrder`` (ClearwayDomain, `Enrichment.swift`: the pga-router's rules read
    ///   it); schema `schemas/orders.enriched.v1.schema.json`.
    /// - Key: `consigneeKey`. Partitions: 6.
    /// - Written by: the enricher. Read by: the pga-router.
    public static let ordersEnriched = TopicDeclaration("orders.enriched.v1")
}
