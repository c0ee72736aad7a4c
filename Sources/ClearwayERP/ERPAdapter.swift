import ClearwayContract
import ClearwayDomain

/// Writes an order's customs values onto its record in one ERP, and reads them back.
///
/// Each adapter makes a repeated write harmless the way its ERP allows (NetSuite: upsert by
/// external id with absolute values; Business Central: `If-Match` on the record's ETag; a
/// webhook: a deterministic `webhook-id` the receiver drops repeats by), and never lets a lower
/// ``OrderCustoms/revision`` overwrite a higher one it can see.
public protocol ERPAdapter: Sendable {
    /// The `erp.system` value it serves (`netsuite`, `business-central`, …).
    var system: String { get }

    /// Writes the values. Never throws: every failure is an outcome.
    func write(_ customs: OrderCustoms) async -> ERPWriteOutcome

    /// The customs values the ERP holds for the order now (`nil`: none written yet), for
    /// `clearway reconcile`. A webhook receiver cannot be read back: it throws
    /// ``ERPError/cannotReadBack``.
    func read(_ erp: OrderEvent.ERPReference, orderId: String) async throws -> OrderCustoms?

    /// Checks the credentials (fetches a token): a worker calls it at start, so that a rejected
    /// credential stops it with a clear message instead of failing every write.
    func checkCredentials() async throws
}

/// What became of one write attempt.
public enum ERPWriteOutcome: Sendable, Equatable {
    /// The record now holds the values; `detail` is the ERP's id or version of it.
    case applied(detail: String)
    /// The record already held these values or a later revision: nothing was changed.
    case alreadyApplied(detail: String)
    /// The ERP refused the values for good (a 4xx other than 408, 409, 412 and 429); its words.
    case refused(status: Int, message: String)
    /// Worth trying again: a 5xx, a 429 or the concurrency limit, a timeout, a dropped
    /// connection, a 412 that re-reading did not settle; `after` is the ERP's `Retry-After`.
    case retry(reason: String, after: Duration?)
}

/// An ERP adapter's errors outside a write.
public enum ERPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The token endpoint refused the credentials; what to fix.
    case credentialsRejected(system: String, message: String)
    /// The configuration is incomplete or wrong; what to fix.
    case configuration(String)
    /// A read failed.
    case unavailable(system: String, message: String)
    /// The adapter cannot read the ERP's values back (a webhook).
    case cannotReadBack(system: String)

    public var description: String {
        switch self {
        case .credentialsRejected(let system, let message):
            "the ERP '\(system)' refused the credentials: \(message)"
        case .configuration(let message): message
        case .unavailable(let system, let message): "the ERP '\(system)' could not be read: \(message)"
        case .cannotReadBack(let system): "the ERP '\(system)' is a webhook receiver: it cannot be read back"
        }
    }
}
