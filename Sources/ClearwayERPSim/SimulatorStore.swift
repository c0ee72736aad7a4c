import ClearwayContract
import Foundation

/// One side effect a simulated ERP applied: an order's customs values changed on its record. A
/// write that leaves the values as they were (a repeat, or only the revision differs) is not one.
public struct LedgerEntry: Codable, Sendable, Hashable {
    /// Its place in the ledger, from 1.
    public var sequence: Int
    /// `netsuite`, `business-central` or `webhook`.
    public var system: String
    /// The webhook receiver's name (`/webhook/<name>`); nil for the ERPs.
    public var receiver: String?
    /// The sales order's id.
    public var recordId: String
    /// The order.
    public var orderId: String
    /// The revision written.
    public var revision: Int
    /// The order's customs status written.
    public var status: String
    /// The entry numbers written.
    public var entryNumbers: [String]
    /// When it was applied (ISO 8601).
    public var at: String
}

/// What a simulated ERP holds for one order now.
public struct SimulatedRecord: Codable, Sendable, Hashable {
    /// `netsuite`, `business-central` or `webhook`.
    public var system: String
    /// The webhook receiver's name; nil for the ERPs.
    public var receiver: String?
    /// The record's key: the external id (NetSuite), `<company>/<sales order id>` (Business
    /// Central), the order id (webhook).
    public var key: String
    /// The NetSuite internal id or the Business Central ETag.
    public var version: String
    /// The revision the record holds (0 for a record not written yet).
    public var revision: Int
    /// The values it holds; nil for a Business Central record not written yet.
    public var customs: OrderCustoms?
}

/// What the simulator has served and injected.
public struct SimulatorStats: Codable, Sendable, Hashable {
    /// Requests by system (`netsuite`, `business-central`, `webhook`, `token`).
    public var requests: [String: Int] = [:]
    /// Faults injected by kind (`server-error`, `too-many-requests`, `timeout`, `drop`,
    /// `server-error-after-apply`, `concurrency-limit`).
    public var faults: [String: Int] = [:]
    /// Refusals: bad tokens, stale ETags, bad signatures, bad requests.
    public var refusals: [String: Int] = [:]
}

/// A NetSuite custom record: its internal id and fields.
struct NetSuiteRecord: Sendable {
    var internalId: Int
    /// The fields as JSON (an object).
    var fields: Data
    var revision: Int
    var customs: OrderCustoms?
}

/// A Business Central API page record: its version (in the ETag) and fields.
struct BusinessCentralRecord: Sendable {
    var recordId: String
    var version: Int
    var revision: Int
    /// The text fields (status, entryNumbers, …, detail).
    var fields: [String: String]
    var customs: OrderCustoms?

    var etag: String { "W/\"" + Data("'\(version);\(recordId);'".utf8).base64EncodedString() + "\"" }
}

/// What a webhook receiver keeps per order: the highest revision.
struct WebhookRecord: Sendable {
    var revision: Int
    var customs: OrderCustoms
}

/// The simulator's state, behind one lock.
struct SimulatorStore: Sendable {
    var netsuite: [String: NetSuiteRecord] = [:]
    var nextInternalId = 1001
    var businessCentral: [String: BusinessCentralRecord] = [:]
    var webhook: [String: WebhookRecord] = [:]
    var seenWebhookIds: Set<String> = []
    var ledger: [LedgerEntry] = []
    /// Access tokens: their system and expiry.
    var tokens: [String: (system: String, expires: ContinuousClock.Instant)] = [:]
    /// Business Central records another user changes right after the next reads (how many).
    var interference: [String: Int] = [:]
    var random: SplitMix64
    /// NetSuite record requests in flight.
    var netsuiteInFlight = 0
    var stats = SimulatorStats()

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    /// Adds a ledger entry when the values differ from what the record held.
    mutating func record(
        system: String, receiver: String? = nil, before: OrderCustoms?, after: OrderCustoms, at: String
    ) {
        guard before?.values != after.values else { return }
        ledger.append(
            LedgerEntry(
                sequence: ledger.count + 1, system: system, receiver: receiver, recordId: after.erp.recordId,
                orderId: after.orderId, revision: after.revision, status: after.status.rawValue,
                entryNumbers: after.entryNumbers, at: at))
    }

    var records: [SimulatedRecord] {
        let netsuite = netsuite.map { key, record in
            SimulatedRecord(
                system: "netsuite", key: key, version: "\(record.internalId)", revision: record.revision,
                customs: record.customs)
        }
        let businessCentral = businessCentral.map { key, record in
            SimulatedRecord(
                system: "business-central", key: key, version: record.etag, revision: record.revision,
                customs: record.customs)
        }
        let webhook = webhook.map { key, record in
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            return SimulatedRecord(
                system: "webhook", receiver: parts.first, key: parts.last ?? key, version: "",
                revision: record.revision,
                customs: record.customs)
        }
        return (netsuite + businessCentral + webhook).sorted(by: {
            ($0.system, $0.receiver ?? "", $0.key) < ($1.system, $1.receiver ?? "", $1.key)
        })
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same faults.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The current time, ISO 8601.
func nowISO8601() -> String { ISO8601DateFormatter().string(from: Date()) }
