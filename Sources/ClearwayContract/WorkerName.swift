/// The fleet's workers by name: each one's consumer group, its `ce_source`, the `stage` of the
/// `orders.exceptions.v1` records it writes, and the prefix of its changelog topic.
public enum WorkerName: String, CaseIterable, Sendable {
    case enricher
    case pgaRouter = "pga-router"
    case aggregator
    case structuring
    case manifestBuilder = "manifest-builder"
    case filerSim = "filer-sim"
    case erpWriteback = "erp-writeback"
}
