import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// The structuring watch: several consignees at one address whose released total for a day
/// passes the one-person-one-day threshold (19 CFR 10.151; without de minimis, the informal-entry
/// ceiling) → an `alerts.v1` record with the evidence when the address crosses it. Reads the
/// aggregator's releases re-keyed by address (`released.by-address.v1`).
///
/// State per input partition, constant work per record however many buyers share an address
/// (a freight forwarder's can have hundreds):
/// - `s/<day>/<addressKey>/<consigneeKey>/<shipmentId>`: a released shipment's value;
/// - `c/<day>/<addressKey>/<consigneeKey>`: the consignee's total there that day;
/// - `a/<day>/<addressKey>`: the address's day total and how many consignees have a value;
/// - `days`, `watermark`: the days kept; those more than the retention behind the latest day
///   seen are forgotten. A late record for a forgotten day is still counted (its day comes back
///   until the next day is seen), so nothing is dropped.
public struct StructuringHandler: RecordHandler {
    public static let name = WorkerName.structuring.rawValue

    /// Days an address's day is kept behind the latest day seen.
    let retentionDays: Int

    public init(retentionDays: Int = 7) { self.retentionDays = retentionDays }

    public static func definition(retentionDays: Int = 7) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.releasedByAddress], outputs: [Topics.alerts],
            handler: StructuringHandler(retentionDays: retentionDays), isStateful: true)
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else {
            throw RecordRejected("not-stateful", "the structuring watch needs state")
        }
        let contribution = try record.decoded(
            AddressContribution.self, topic: "released.by-address.v1", decoder: Self.decoder)
        let value: Decimal
        let threshold: Decimal
        let day: Day
        do {
            value = contribution.withdrawn ? 0 : try Decimal(parsingPlain: contribution.valueUSD)
            threshold = try Decimal(parsingPlain: contribution.thresholdUSD)
            day = try Day(contribution.day)
        } catch {
            throw RecordRejected(
                "schema-invalid", "not a released.by-address.v1 record: \(DomainError.explain(error))")
        }
        try KeyCheck.require(record, isKeyedBy: contribution.addressKey, field: "addressKey")
        try keep(day, state: state)
        let address = "\(day)/\(contribution.addressKey)"
        let shipmentKey = "s/\(address)/\(contribution.consigneeKey)/\(contribution.shipmentId)"
        let consigneeKey = "c/\(address)/\(contribution.consigneeKey)"
        let old = try Self.amount(state.value(shipmentKey)) ?? 0
        if contribution.withdrawn {
            state.remove(shipmentKey)
        } else {
            state.set(shipmentKey, Self.text(value))
        }
        guard value != old else { return [] }
        let consigneeBefore = try Self.amount(state.value(consigneeKey)) ?? 0
        let consigneeAfter = consigneeBefore - old + value
        if consigneeAfter > 0 { state.set(consigneeKey, Self.text(consigneeAfter)) } else { state.remove(consigneeKey) }
        let before = try AddressDay(state.value("a/\(address)"))
        var after = before
        after.totalUSD += value - old
        after.consignees +=
            (consigneeBefore <= 0 && consigneeAfter > 0 ? 1 : 0) - (consigneeBefore > 0 && consigneeAfter <= 0 ? 1 : 0)
        state.set("a/\(address)", after.data)
        guard !before.isOver(threshold), after.isOver(threshold) else { return [] }
        // Crossed: the evidence, read once.
        var orders: [String: [String]] = [:]
        var totals: [String: Decimal] = [:]
        for key in try state.keys(withPrefix: "s/\(address)/") {
            let parts = key.split(separator: "/")
            guard parts.count == 5, let amount = try Self.amount(state.value(key)), amount > 0 else { continue }
            orders[String(parts[3]), default: []].append(String(parts[4]))
            totals[String(parts[3]), default: 0] += amount
        }
        let consignees = orders.keys.sorted().map {
            StructuringAlert.Consignee(
                consigneeKey: $0, orders: orders[$0]!.sorted(), totalUSD: Money(totals[$0]!, .usd).amountText)
        }
        let alert = StructuringAlert(
            addressKey: contribution.addressKey, day: contribution.day,
            thresholdUSD: Money(threshold, .usd).amountText, totalUSD: Money(after.totalUSD, .usd).amountText,
            consignees: consignees, policyVersion: contribution.policyVersion,
            reason: contribution.regime == .noDeMinimis
                ? "\(consignees.count) consignees at one address received \(Money(after.totalUSD, .usd)) on \(day), over the \(Money(threshold, .usd)) informal-entry ceiling: goods possibly split across names to stay informal (19 CFR 141.51, 143.21(a))"
                : "\(consignees.count) consignees at one address received \(Money(after.totalUSD, .usd)) on \(day), over the \(Money(threshold, .usd)) one-person-one-day threshold: possible structuring (19 CFR 10.151)"
        )
        // The id follows the input record (the runtime's default), so a second crossing after a
        // withdrawal is a new alert, and a replay of the same input the same one.
        return [
            OutputRecord(
                topic: Topics.alerts.name, key: contribution.addressKey, value: try Self.encoder.encode(alert),
                type: "clearway.alert.structuring.v1")
        ]
    }

    /// An address's day: its total and how many consignees have a value in it.
    struct AddressDay {
        var totalUSD: Decimal = 0
        var consignees = 0

        init(_ data: Data?) throws {
            guard let data else { return }
            let parts = String(decoding: data, as: UTF8.self).split(separator: "|")
            totalUSD = try Decimal(parsingPlain: String(parts.first ?? "0"))
            consignees = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        }

        var data: Data { Data("\(Money(totalUSD, .usd).amountText)|\(consignees)".utf8) }

        func isOver(_ threshold: Decimal) -> Bool { consignees >= 2 && totalUSD > threshold }
    }

    /// Notes the day; when it moves the watermark on, forgets the days that fall out of the
    /// retention.
    private func keep(_ day: Day, state: PartitionState) throws {
        var days = try state.value("days").map { try Self.decoder.decode([String].self, from: $0) } ?? []
        if !days.contains(day.description) {
            days.append(day.description)
            state.set("days", try Self.encoder.encode(days))
        }
        let watermark = try state.value("watermark").flatMap { try? Day(String(decoding: $0, as: UTF8.self)) }
        guard watermark.map({ day > $0 }) ?? true else { return }
        state.set("watermark", Data(day.description.utf8))
        let cutoff = day.adding(days: -retentionDays)
        let expired = days.filter { (try? Day($0)).map { $0 < cutoff } ?? true }
        guard !expired.isEmpty else { return }
        for old in expired {
            for prefix in ["s", "c", "a"] {
                for key in try state.keys(withPrefix: "\(prefix)/\(old)/") { state.remove(key) }
            }
        }
        state.set("days", try Self.encoder.encode(days.filter { !expired.contains($0) }))
    }

    private static let decoder = JSONDecoder()
    private static let encoder = JSONEncoder.sortedKeys()

    private static func amount(_ data: Data?) throws -> Decimal? {
        try data.map { try Decimal(parsingPlain: String(decoding: $0, as: UTF8.self)) }
    }

    private static func text(_ amount: Decimal) -> Data { Data(Money(amount, .usd).amountText.utf8) }
}
