import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// A `released.by-address.v1` record: one released shipment's value for its address's day (or,
/// with `valueUSD` 0.00, its withdrawal: cancelled, or superseded by an update). Keyed by
/// `addressKey`, so every consignee at one address meets in one partition.
public struct AddressContribution: Codable, Hashable, Sendable {
    static let type = "clearway.address.contribution.v1"

    public var addressKey: String
    public var day: String
    public var consigneeKey: String
    public var orderId: String
    public var shipmentId: String
    public var valueUSD: String
    /// The per-person day threshold of the policy in force that day.
    public var thresholdUSD: String
    public var policyVersion: String
}

/// A structuring signal (`alerts.v1`, keyed by `addressKey`): several consignees at one address
/// whose day total passes the threshold.
public struct StructuringAlert: Codable, Hashable, Sendable {
    public var addressKey: String
    public var day: String
    public var thresholdUSD: String
    public var totalUSD: String
    public var consignees: [Consignee]
    public var policyVersion: String
    public var reason: String

    public struct Consignee: Codable, Hashable, Sendable {
        public var consigneeKey: String
        public var orders: [String]
        public var totalUSD: String
    }
}

/// The structuring watch: several consignees at one address whose released total for a day
/// passes the one-person-one-day threshold (19 CFR 10.151; without de minimis, the informal-entry
/// ceiling) → one `alerts.v1` record per address and day, with the evidence. Reads the
/// aggregator's releases re-keyed by address (`released.by-address.v1`).
///
/// State per input partition:
/// - `address/<day>/<addressKey>`: per consignee at the address, its released shipments' values;
/// - `watermark`: the latest day seen; days more than the retention behind it are forgotten.
public struct StructuringHandler: RecordHandler {
    public static let name = "structuring"

    /// Days an address's day is kept behind the latest day seen.
    let retentionDays: Int

    public init(retentionDays: Int = 7) { self.retentionDays = retentionDays }

    public static func definition(retentionDays: Int = 7) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [StandardTopics.releasedByAddress], outputs: [StandardTopics.alerts],
            handler: StructuringHandler(retentionDays: retentionDays), isStateful: true)
    }

    /// From `CLEARWAY_STRUCTURING_RETENTION_DAYS` (7).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        var retention = 7
        if let text = environment["CLEARWAY_STRUCTURING_RETENTION_DAYS"] {
            guard let days = Int(text), days >= 1 else {
                throw ConfigurationError(
                    "CLEARWAY_STRUCTURING_RETENTION_DAYS must be a whole number of days, 1 or more")
            }
            retention = days
        }
        return definition(retentionDays: retention)
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else {
            throw RecordRejected("not-stateful", "the structuring watch needs state")
        }
        let contribution: AddressContribution
        let value: Decimal
        let threshold: Decimal
        let day: Day
        do {
            contribution = try JSONDecoder().decode(AddressContribution.self, from: record.value)
            value = try Decimal(parsingPlain: contribution.valueUSD)
            threshold = try Decimal(parsingPlain: contribution.thresholdUSD)
            day = try Day(contribution.day)
        } catch {
            throw RecordRejected("schema-invalid", "not a released.by-address.v1 record: \(error)")
        }
        if try forget(before: day, state: state) { return [] }
        let key = "address/\(day)/\(contribution.addressKey)"
        var address =
            try state.value(key).map { try JSONDecoder().decode([String: [String: String]].self, from: $0) } ?? [:]
        let wasOver = Self.isOver(address, threshold)
        if value == 0 {
            address[contribution.consigneeKey]?[contribution.shipmentId] = nil
            if address[contribution.consigneeKey]?.isEmpty == true { address[contribution.consigneeKey] = nil }
        } else {
            address[contribution.consigneeKey, default: [:]][contribution.shipmentId] = contribution.valueUSD
        }
        state.set(key, try Self.encoder.encode(address))
        guard !wasOver, Self.isOver(address, threshold) else { return [] }
        let consignees = address.keys.sorted().map { consignee in
            StructuringAlert.Consignee(
                consigneeKey: consignee, orders: address[consignee]!.keys.sorted(),
                totalUSD: Money(Self.sum(address[consignee]!), .usd).amountText)
        }
        let total = address.values.map(Self.sum).reduce(0, +)
        let alert = StructuringAlert(
            addressKey: contribution.addressKey, day: contribution.day,
            thresholdUSD: Money(threshold, .usd).amountText, totalUSD: Money(total, .usd).amountText,
            consignees: consignees, policyVersion: contribution.policyVersion,
            reason:
                "\(consignees.count) consignees at one address received \(Money(total, .usd)) on \(day), over the \(Money(threshold, .usd)) one-person-one-day threshold: possible structuring (19 CFR 10.151)"
        )
        return [
            OutputRecord(
                topic: StandardTopics.alerts.name, key: contribution.addressKey, value: try Self.encoder.encode(alert),
                type: "clearway.alert.structuring.v1",
                idSeed: "\(contribution.addressKey)/\(day)/structuring/\(contribution.shipmentId)")
        ]
    }

    /// Moves the watermark on and forgets the days that fall out of the retention; true when
    /// `day` itself is already forgotten (a late withdrawal or release changes no alert then).
    private func forget(before day: Day, state: PartitionState) throws -> Bool {
        let watermark = try state.value("watermark").flatMap { try? Day(String(decoding: $0, as: UTF8.self)) }
        if let watermark, day < watermark.adding(days: -retentionDays) { return true }
        guard watermark.map({ day > $0 }) ?? true else { return false }
        state.set("watermark", Data(day.description.utf8))
        let cutoff = day.adding(days: -retentionDays)
        for key in try state.keys(withPrefix: "address/") {
            let parts = key.split(separator: "/")
            if parts.count == 3, let kept = try? Day(String(parts[1])), kept < cutoff { state.remove(key) }
        }
        return false
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private static func isOver(_ address: [String: [String: String]], _ threshold: Decimal) -> Bool {
        address.count >= 2 && address.values.map(sum).reduce(0, +) > threshold
    }

    private static func sum(_ values: [String: String]) -> Decimal {
        values.values.compactMap { try? Decimal(parsingPlain: $0) }.reduce(0, +)
    }
}
