import ClearwayRuntime

extension Topics {
    /// `erp-writeback.v1`: what was written back to the originating sales order in the ERP (entry
    /// number, manifest, status), or why it could not be.
    ///
    /// - Value: not defined yet (the erp-writeback worker is not built; no schema).
    /// - Key: `orderId`. Partitions: 6.
    /// - Written by: the erp-writeback worker. Read by: other teams.
    public static let erpWriteback = TopicDeclaration("erp-writeback.v1")
}
