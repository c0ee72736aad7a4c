import ClearwayDomain
import ClearwayRuntime

extension Topics {
    /// `orders.exceptions.v1`: orders that cannot proceed — parked for a data fix, rejected, or
    /// ignored — with reason codes, details and what would fix them.
    ///
    /// - Value: ``ExceptionRecord``; schema `schemas/orders.exceptions.v1.schema.json`.
    /// - Key: `orderId`. Partitions: 6.
    /// - Written by: any worker (its name in `stage`: ``WorkerName``). Read by: operations, other
    ///   teams, and the fleet's report.
    public static let exceptions = TopicDeclaration("orders.exceptions.v1")
}

/// An `orders.exceptions.v1` record: an order that cannot proceed, why, and what would fix it.
public struct ExceptionRecord: Codable, Hashable, Sendable {
    public var orderId: String
    public var version: Int
    /// The worker that stopped it.
    public var stage: String
    /// `parked` (waits for a fix and is re-driven), `rejected` (stops here: fix the data and send
    /// a new version), or `ignored` (nothing will happen to it, and nothing needs to).
    public var status: String
    /// The first problem's code, detail and fix; `problems` has them all.
    public var code: String
    public var detail: String
    public var fix: String
    public var problems: [OrderGap]

    /// Makes a record.
    public init(
        orderId: String, version: Int, stage: String, status: String, code: String, detail: String, fix: String,
        problems: [OrderGap]
    ) {
        self.orderId = orderId
        self.version = version
        self.stage = stage
        self.status = status
        self.code = code
        // A detail quotes the record, which can be as large as a record may be (DomainError.bounded).
        self.detail = DomainError.bounded(detail)
        self.fix = fix
        self.problems = problems
    }
}
