import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `catalog.v1` (compacted): the SKU master from the PIM — HTS-10, origin, description,
    /// manufacturer or MID, PGA flags and disclaimers, AD/CVD case. A tombstone retires a SKU.
    ///
    /// - Value: ``CatalogItem`` (ClearwayDomain, `Catalog.swift`); schema
    ///   `schemas/catalog.v1.schema.json`.
    /// - Key: `sku`. Partitions: 6.
    /// - Written by: outside (the PIM). Read by: the enricher, which keeps it whole as a reference
    ///   table.
    public static let catalog = TopicDeclaration("catalog.v1", compacted: true)
}
