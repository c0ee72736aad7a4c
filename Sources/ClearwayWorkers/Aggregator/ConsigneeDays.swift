import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// What the aggregator remembers of a shipment.
struct ShipmentMemory: Codable {
    var version: Int
    /// The order (absent in state written before it was kept).
    var orderId: String? = nil
    var status: ClearedShipment.Status
    var consigneeKey: String
    var addressKey: String
    /// The window it is released into, or the day it is held to.
    var day: String
    /// A held shipment, to re-evaluate when its day begins.
    var held: ScreenedOrder?
    /// A released shipment's conveyance (absent in state written before manifests).
    var conveyance: Conveyance? = nil
}

/// The consignees' day windows of one partition, and the shipments decided into them: one
/// record's (or timer's) decisions on the partition's state.
struct ConsigneeDays {
    let handler: AggregatorHandler
    let state: PartitionState
    private let encoder = JSONEncoder.sortedKeys()
    private let decoder = JSONDecoder()

    init(handler: AggregatorHandler, state: PartitionState) {
        self.handler = handler
        self.state = state
    }

    /// Applies the daily rule to a shipment for `day` (its arrival day, or the day it was held to).
    mutating func decide(_ arriving: ScreenedOrder, on day: Day, held: Bool) throws -> [OutputRecord] {
        var shipment = arriving
        let id = shipment.shipmentId
        let version = shipment.order.version
        let previous = try load(ShipmentMemory.self, "shipment/\(id)")
        var outputs: [OutputRecord] = []
        if !held, let previous {
            // An update that moved the order to another consignee comes with the earlier
            // consignee's withdrawal, a cancellation of the same version; when both consignees
            // share this partition and the withdrawal came first, the update is no repeat.
            let withdrawnFromAnother =
                previous.status == .cancelled && previous.version == version
                && previous.consigneeKey != shipment.order.consigneeKey
            // A repeat of a version already decided changes nothing; an older one is superseded.
            if previous.version >= version && !withdrawnFromAnother { return [] }
            outputs += try withdraw(id, previous)
        }
        if !held {
            // The watermark follows the input's arrival days, not the days holds push shipments to.
            if let expired = try tooLate(shipment, day: day) { return outputs + [expired] }
            try advanceWatermark(to: day)
        }
        let policy = try handler.timeline.policy(on: day)
        // A held shipment is decided under the policy of the day it is released on (review A6).
        if held { shipment = shipment.rescreened(under: policy) }
        let consignee = shipment.order.consigneeKey
        let windowKey = "window/\(day)/\(consignee)"
        let window = try load(DayWindow.self, windowKey) ?? DayWindow(consigneeKey: consignee, day: day)
        let request = try AggregationRequest(shipment)
        let value = request.valueUSD
        let decision = aggregate(request, into: window, policy: policy, overflow: handler.overflow)
        let reasons = decision.reasons.map {
            DecisionReason(rule: $0.rule, text: "\($0.text) [\($0.citation)]", policyVersion: $0.policyVersion)
        }
        try remember(order: shipment.order.orderId, shipment: id)
        state.set("byday/\(day)/\(id)", Data(shipment.order.orderId.utf8))
        switch decision.outcome {
        case .release(let type):
            try store(decision.window, at: windowKey, day: day)
            let conveyance = Conveyance(of: shipment.order)
            state.set(
                "shipment/\(id)",
                try encoder.encode(
                    ShipmentMemory(
                        version: version, orderId: shipment.order.orderId, status: .released, consigneeKey: consignee,
                        addressKey: shipment.order.addressKey, day: day.description, conveyance: conveyance)))
            let total = type == .t86 ? decision.window.deMinimisTotalUSD : value
            outputs.append(
                try cleared(
                    shipment, status: .released, entryType: type, day: day, total: total, policy: policy,
                    reasons: reasons))
            outputs.append(
                try contribution(
                    AddressContribution(
                        addressKey: shipment.order.addressKey, day: day.description, consigneeKey: consignee,
                        orderId: shipment.order.orderId, shipmentId: id, valueUSD: Money(value, .usd).amountText,
                        thresholdUSD: Money(policy.structuringThresholdUSD, .usd).amountText,
                        policyVersion: policy.version, regime: policy.regime, withdrawn: false),
                    seed: "\(id)/v\(version)/\(day)"))
            if let conveyance {
                outputs.append(
                    try forManifest(
                        ConveyanceRelease(
                            conveyance: conveyance, orderId: shipment.order.orderId, shipmentId: id, version: version,
                            consigneeKey: consignee, withdrawn: false, entryType: type,
                            valueUSD: shipment.order.valueUSD ?? "0.00", policyVersion: policy.version,
                            shipment: shipment)))
            }
        case .hold(let until):
            state.set(
                "shipment/\(id)",
                try encoder.encode(
                    ShipmentMemory(
                        version: version, status: .held, consigneeKey: consignee, addressKey: shipment.order.addressKey,
                        day: until.description, held: shipment)))
            // Released (re-evaluated) when its day begins at the port (the day is counted there).
            let zone = try shipment.order.portOfEntry.map { try $0.zone() } ?? TimeZone(identifier: "UTC")!
            state.schedule(timer: "release/\(id)", at: until.start(in: zone))
            outputs.append(
                try cleared(
                    shipment, status: .held, entryType: nil, day: until, total: value, policy: policy,
                    reasons: reasons))
        case .reroute:
            state.set(
                "shipment/\(id)",
                try encoder.encode(
                    ShipmentMemory(
                        version: version, status: .rerouted, consigneeKey: consignee,
                        addressKey: shipment.order.addressKey, day: day.description)))
            let request = RerouteRequest(
                orderId: shipment.order.orderId, shipmentId: id, consigneeKey: consignee, day: day.description,
                valueUSD: Money(value, .usd).amountText, reason: reasons.map(\.text).joined(separator: "; "))
            outputs.append(
                OutputRecord(
                    topic: Topics.reroutes.name, key: shipment.order.orderId,
                    value: try encoder.encode(request),
                    type: "clearway.reroute.requested.v1", idSeed: "\(id)/v\(version)/reroute/\(day)"))
            outputs.append(
                try cleared(
                    shipment, status: .rerouted, entryType: nil, day: day, total: value, policy: policy,
                    reasons: reasons))
        }
        return outputs
    }

    /// A held shipment's day has begun: decide again in that day's window.
    mutating func releaseHeld(_ id: String) throws -> [OutputRecord] {
        guard let memory = try load(ShipmentMemory.self, "shipment/\(id)"), memory.status == .held,
            let shipment = memory.held
        else { return [] }
        return try decide(shipment, on: try Day(memory.day), held: true)
    }

    /// Frees every shipment of a cancelled order and passes the cancellation on.
    mutating func cancel(_ order: EnrichedOrder) throws -> [OutputRecord] {
        let ids = try load([String].self, "order/\(order.orderId)") ?? []
        var outputs: [OutputRecord] = []
        for id in ids {
            guard let memory = try load(ShipmentMemory.self, "shipment/\(id)"), memory.status != .cancelled,
                memory.consigneeKey == order.consigneeKey
            else { continue }
            guard memory.version <= order.version else { continue }
            outputs += try withdraw(id, memory)
            state.set(
                "shipment/\(id)",
                try encoder.encode(
                    ShipmentMemory(
                        version: order.version, status: .cancelled, consigneeKey: memory.consigneeKey,
                        addressKey: memory.addressKey, day: memory.day)))
            let day = try Day(memory.day)
            let policy = try handler.timeline.policy(on: day)
            let record = ClearedShipment(
                orderId: order.orderId, shipmentId: id, version: order.version, consigneeKey: memory.consigneeKey,
                addressKey: memory.addressKey, status: .cancelled, entryType: nil, day: memory.day, valueUSD: "0.00",
                dayTotalUSD: Money(try dayTotal(memory.consigneeKey, day), .usd).amountText,
                regime: policy.regime, policyVersion: policy.version,
                reasons: [
                    DecisionReason(
                        rule: "order.cancelled",
                        text:
                            "cancelled before manifesting (was \(memory.status.rawValue)); its value no longer counts for the day",
                        policyVersion: policy.version)
                ] + order.reasons, shipment: nil)
            outputs.append(
                OutputRecord(
                    topic: Topics.shipmentsCleared.name, key: memory.consigneeKey,
                    value: try encoder.encode(record), type: AggregatorHandler.clearedType,
                    idSeed: "\(id)/v\(order.version)/cancelled"))
        }
        return outputs
    }

    /// A shipment for a day already forgotten: an exception (deciding it against an empty window
    /// could give the consignee a second allowance for that day).
    private func tooLate(_ shipment: ScreenedOrder, day: Day) throws -> OutputRecord? {
        guard let text = try state.value("watermark"), let watermark = try? Day(String(decoding: text, as: UTF8.self)),
            day < watermark.adding(days: -handler.retentionDays)
        else { return nil }
        let gap = OrderGap(
            code: "day-expired",
            detail:
                "shipment \(shipment.shipmentId) arrives on \(day), more than \(handler.retentionDays) days before the latest day seen (\(watermark)); that day's windows are no longer kept",
            fix:
                "decide it by hand, or raise CLEARWAY_AGGREGATOR_RETENTION_DAYS and replay; late data this old usually means a stuck upstream"
        )
        let record = ExceptionRecord(
            orderId: shipment.order.orderId, version: shipment.order.version, stage: AggregatorHandler.name,
            status: "rejected", code: gap.code, detail: gap.detail, fix: gap.fix, problems: [gap])
        return OutputRecord(
            topic: Topics.exceptions.name, key: shipment.order.orderId, value: try encoder.encode(record),
            type: "clearway.order.exception.v1", idSeed: "\(shipment.shipmentId)/v\(shipment.order.version)/expired")
    }

    /// Moves the watermark to a later day and forgets the days that fall out of the retention.
    private func advanceWatermark(to day: Day) throws {
        if let text = try state.value("watermark"), let watermark = try? Day(String(decoding: text, as: UTF8.self)),
            watermark >= day
        {
            return
        }
        state.set("watermark", Data(day.description.utf8))
        let cutoff = day.adding(days: -handler.retentionDays)
        var days = try load([String].self, "days") ?? []
        let expired = days.filter { (try? Day($0)).map { $0 < cutoff } ?? true }
        guard !expired.isEmpty else { return }
        for old in expired {
            for key in try state.keys(withPrefix: "window/\(old)/") { state.remove(key) }
            // Kept here before the structuring watch existed; still removed from older state.
            for key in try state.keys(withPrefix: "address/\(old)/") { state.remove(key) }
            for key in try state.keys(withPrefix: "byday/\(old)/") {
                if let order = try state.value(key) { state.remove("order/\(String(decoding: order, as: UTF8.self))") }
                state.remove("shipment/\(key.dropFirst("byday/\(old)/".count))")
                state.remove(key)
            }
        }
        days.removeAll { expired.contains($0) }
        state.set("days", try encoder.encode(days))
    }

    // MARK: Helpers

    /// Takes a shipment out of whatever it holds: its window's capacity (and its address's day:
    /// a withdrawal for the structuring watch) or its hold timer.
    private func withdraw(_ id: String, _ memory: ShipmentMemory) throws -> [OutputRecord] {
        switch memory.status {
        case .released:
            let key = "window/\(memory.day)/\(memory.consigneeKey)"
            if let window = try load(DayWindow.self, key) {
                state.set(key, try encoder.encode(window.removing(id).window))
            }
            let policy = try handler.timeline.policy(on: try Day(memory.day))
            let manifest = try memory.conveyance.map {
                try forManifest(
                    ConveyanceRelease(
                        conveyance: $0, orderId: memory.orderId ?? id, shipmentId: id, version: memory.version,
                        consigneeKey: memory.consigneeKey, withdrawn: true, entryType: nil, valueUSD: "0.00",
                        policyVersion: policy.version, shipment: nil))
            }
            return [
                try contribution(
                    AddressContribution(
                        addressKey: memory.addressKey, day: memory.day, consigneeKey: memory.consigneeKey,
                        orderId: memory.orderId ?? id, shipmentId: id, valueUSD: "0.00",
                        thresholdUSD: Money(policy.structuringThresholdUSD, .usd).amountText,
                        policyVersion: policy.version, regime: policy.regime, withdrawn: true),
                    seed: "\(id)/v\(memory.version)/\(memory.day)/withdrawn")
            ] + (manifest.map { [$0] } ?? [])
        case .held:
            state.cancel(timer: "release/\(id)")
        case .cancelled, .rerouted:
            break
        }
        return []
    }

    /// A released shipment's value (or its withdrawal) for its address's day, keyed by
    /// `addressKey`: the structuring watch sees every consignee at an address together.
    private func contribution(_ contribution: AddressContribution, seed: String) throws -> OutputRecord {
        OutputRecord(
            topic: Topics.releasedByAddress.name, key: contribution.addressKey,
            value: try encoder.encode(contribution), type: AddressContribution.type, idSeed: seed)
    }

    /// A release (or its withdrawal) for the manifest of its conveyance, keyed by the conveyance.
    private func forManifest(_ release: ConveyanceRelease) throws -> OutputRecord {
        OutputRecord(
            topic: Topics.releasedByConveyance.name, key: release.conveyance.id,
            value: try encoder.encode(release), type: ConveyanceRelease.type,
            idSeed:
                "\(release.shipmentId)/v\(release.version)/\(release.conveyance.id)/\(release.withdrawn ? "withdrawn" : "released")"
        )
    }

    private func store(_ window: DayWindow, at key: String, day: Day) throws {
        var days = try load([String].self, "days") ?? []
        if !days.contains(day.description) {
            days.append(day.description)
            state.set("days", try encoder.encode(days))
        }
        state.set(key, try encoder.encode(window))
    }

    private func remember(order: String, shipment: String) throws {
        var ids = try load([String].self, "order/\(order)") ?? []
        guard !ids.contains(shipment) else { return }
        ids.append(shipment)
        state.set("order/\(order)", try encoder.encode(ids))
    }

    private func dayTotal(_ consignee: String, _ day: Day) throws -> Decimal {
        try load(DayWindow.self, "window/\(day)/\(consignee)")?.totalUSD ?? 0
    }

    private func cleared(
        _ shipment: ScreenedOrder, status: ClearedShipment.Status, entryType: EntryType?, day: Day, total: Decimal,
        policy: Policy, reasons: [DecisionReason]
    ) throws -> OutputRecord {
        let record = ClearedShipment(
            orderId: shipment.order.orderId, shipmentId: shipment.shipmentId, version: shipment.order.version,
            consigneeKey: shipment.order.consigneeKey, addressKey: shipment.order.addressKey, status: status,
            entryType: entryType, day: day.description, valueUSD: shipment.order.valueUSD ?? "0.00",
            dayTotalUSD: Money(total, .usd).amountText, regime: policy.regime,
            policyVersion: policy.version, reasons: reasons, shipment: shipment)
        return OutputRecord(
            topic: Topics.shipmentsCleared.name, key: shipment.order.consigneeKey,
            value: try encoder.encode(record), type: AggregatorHandler.clearedType,
            idSeed: "\(shipment.shipmentId)/v\(shipment.order.version)/\(status.rawValue)/\(day)")
    }

    private func load<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        guard let data = try state.value(key) else { return nil }
        return try decoder.decode(T.self, from: data)
    }
}
