import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `orders.v1`: orders placed, updated or cancelled, as the OMS/ERP connector sends them.
    ///
    /// - Value: ``OrderEvent`` (ClearwayDomain, `Enrichment.swift`: the enricher's rules read it
    ///   as it is); schema `schemas/orders.v1.schema.json`.
    /// - Key: `orderId`. Partitions: 6.
    /// - Written by: outside (the OMS/ERP connector). Read by: the enricher.
    public static let orders = TopicDeclaration("orders.v1")
}
