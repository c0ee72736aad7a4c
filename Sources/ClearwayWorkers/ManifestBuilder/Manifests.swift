import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// One record's (or timer's) work on a partition's manifests.
struct Manifests {
    let handler: ManifestBuilderHandler
    let state: PartitionState
    private let encoder = JSONEncoder.sortedKeys()
    private let decoder = JSONDecoder()

    init(handler: ManifestBuilderHandler, state: PartitionState) {
        self.handler = handler
        self.state = state
    }

    /// A release: onto the conveyance's open manifest, or onto the consignee's filed entry there.
    /// `raw` is the release as it came: kept as it is, never encoded again.
    mutating func add(_ release: ConveyanceRelease, _ shipment: ManifestShipment, raw: Data) throws -> [OutputRecord] {
        let conveyance = release.conveyance.id
        let id = release.shipmentId
        if let filed = try load(FiledShipment.self, "filed/\(id)"), filed.version >= release.version {
            return []
        }
        let memberKey = "m/\(conveyance)/\(id)"
        if let member = try load(ConveyanceRelease.self, memberKey) {
            if member.version >= release.version { return [] }
            try removeMember(member)
        }
        // 19 CFR 141.51: a consignee already entered on this conveyance gets no second entry; a
        // later shipment re-states the filed one.
        if shipment.lane != .t86, let entryId = try value("ce/\(conveyance)/\(release.consigneeKey)"),
            let filed = try load(FiledEntry.self, "entry/\(entryId)"), !filed.cancelled
        {
            let gaps = ManifestPlan.gaps(shipment, conveyance: release.conveyance)
            if !gaps.isEmpty { return [try refusal(release, gaps)] }
            return try amend(
                filed, removing: nil, adding: (release, raw),
                reason: "a later shipment of the consignee on this conveyance")
        }
        var outputs: [OutputRecord] = []
        var open = try load(OpenManifest.self, "open/\(conveyance)")
        if open == nil {
            let sequence = (Int(try value("seq/\(conveyance)") ?? "0") ?? 0) + 1
            state.set("seq/\(conveyance)", Data(String(sequence).utf8))
            open = OpenManifest(conveyance: release.conveyance, sequence: sequence, entries: 0)
            let (at, because) = try handler.closing(release.conveyance)
            state.schedule(timer: "close/\(conveyance)", at: at, payload: Data("\(sequence) \(because)".utf8))
        }
        guard var manifest = open else { return [] }
        state.set(memberKey, raw)
        if shipment.lane == .t86 {
            manifest.entries += 1
        } else {
            let countKey = "c/\(conveyance)/\(release.consigneeKey)"
            let count = Int(try value(countKey) ?? "0") ?? 0
            if count == 0 { manifest.entries += 1 }
            state.set(countKey, Data(String(count + 1).utf8))
        }
        state.set("open/\(conveyance)", try encoder.encode(manifest))
        if manifest.entries >= handler.maxEntries {
            outputs += try close(conveyance, sequence: manifest.sequence, because: "max-entries")
        }
        return outputs
    }

    /// A withdrawal: off the open manifest, or an amendment of the filed entry.
    mutating func withdraw(_ release: ConveyanceRelease) throws -> [OutputRecord] {
        let conveyance = release.conveyance.id
        if let member = try load(ConveyanceRelease.self, "m/\(conveyance)/\(release.shipmentId)"),
            member.version == release.version
        {
            try removeMember(member)
            return []
        }
        guard let filed = try load(FiledShipment.self, "filed/\(release.shipmentId)"),
            filed.version == release.version,
            let entry = try load(FiledEntry.self, "entry/\(filed.entryId)"), !entry.cancelled,
            entry.entry.shipmentIds.contains(release.shipmentId)
        else { return [] }
        return try amend(
            entry, removing: release.shipmentId, adding: nil,
            reason: "shipment \(release.shipmentId) withdrawn (cancelled, or decided again)")
    }

    /// Closes the conveyance's open manifest `sequence` (a stale timer finds another or none).
    mutating func close(_ conveyance: String, sequence: Int, because: String) throws -> [OutputRecord] {
        guard let open = try load(OpenManifest.self, "open/\(conveyance)"), open.sequence == sequence else {
            return []
        }
        state.remove("open/\(conveyance)")
        state.cancel(timer: "close/\(conveyance)")
        var raws: [String: Data] = [:]
        let members = try state.keys(withPrefix: "m/\(conveyance)/").compactMap { key -> ConveyanceRelease? in
            defer { state.remove(key) }
            guard let raw = try state.value(key) else { return nil }
            let release = try decoder.decode(ConveyanceRelease.self, from: raw)
            raws[release.shipmentId] = raw
            return release
        }
        let byId = Dictionary(members.map { ($0.shipmentId, $0) }) { first, _ in first }
        for key in try state.keys(withPrefix: "c/\(conveyance)/") { state.remove(key) }
        guard !members.isEmpty else { return [] }
        let manifestId = ManifestPlan.manifestId(open.conveyance, sequence: sequence)
        let policy = try handler.timeline.policy(on: try Day(open.conveyance.arrivalDay))
        let shipments = members.compactMap { release in
            release.shipment.map { ManifestShipment(shipment: $0, lane: release.entryType ?? .t11) }
        }
        let plan = ManifestPlan.entries(
            manifestId: manifestId, conveyance: open.conveyance, shipments: shipments, policy: policy)
        var outputs = try plan.refused.map { refused in
            try refusal(byId[refused.shipment.shipment.shipmentId]!, refused.gaps)
        }
        guard !plan.entries.isEmpty else { return outputs }
        var keys = FiledKeys(shipments: [], entries: [], consignees: [])
        for entry in plan.entries {
            state.set(
                "entry/\(entry.entryId)",
                try encoder.encode(
                    FiledEntry(
                        manifestId: manifestId, conveyance: open.conveyance, closedBecause: because, entry: entry,
                        amendments: 0, cancelled: false)))
            keys.entries.append(entry.entryId)
            if entry.entryType != .t86 {
                let key = "ce/\(conveyance)/\(entry.consigneeKey)"
                state.set(key, Data(entry.entryId.utf8))
                keys.consignees.append(key)
            }
            for shipment in entry.shipments {
                guard let release = byId[shipment.shipmentId], let raw = raws[shipment.shipmentId] else { continue }
                state.set(
                    "filed/\(shipment.shipmentId)",
                    try encoder.encode(
                        FiledShipment(manifestId: manifestId, entryId: entry.entryId, version: release.version)))
                state.set("fr/\(shipment.shipmentId)", raw)
                keys.shipments.append(shipment.shipmentId)
            }
        }
        let zone = try handler.ports.port(open.conveyance.port).zone()
        let forgetAt = try Day(open.conveyance.arrivalDay).adding(days: handler.retentionDays + 1).start(in: zone)
        state.schedule(timer: "forget/\(manifestId)", at: forgetAt, payload: try encoder.encode(keys))
        let record = ManifestRecord(
            kind: .manifest, manifestId: manifestId, conveyance: open.conveyance,
            masterBill: ManifestPlan.billNumber(manifestId), closedBecause: because, policyVersion: policy.version,
            entries: plan.entries, amendment: nil)
        outputs.append(
            OutputRecord(
                topic: Topics.manifests.name, key: manifestId, value: try encoder.encode(record),
                type: ManifestRecord.closedType, idSeed: "manifest/\(manifestId)"))
        return outputs
    }

    /// Forgets a closed manifest's filed state after the retention.
    func forget(_ payload: Data) throws {
        guard let keys = try? decoder.decode(FiledKeys.self, from: payload) else { return }
        for id in keys.shipments {
            state.remove("filed/\(id)")
            state.remove("fr/\(id)")
        }
        for id in keys.entries { state.remove("entry/\(id)") }
        for key in keys.consignees { state.remove(key) }
    }

    // MARK: Helpers

    /// Re-states a filed entry without `removing` and with `adding`: a cancel when nothing is
    /// left (or a Type 86 house bill is withdrawn), else a replace typed anew.
    private mutating func amend(
        _ filed: FiledEntry, removing: String?, adding: (release: ConveyanceRelease, raw: Data)?, reason: String
    ) throws -> [OutputRecord] {
        var filed = filed
        let entryId = filed.entry.entryId
        var releases = try filed.entry.shipmentIds.filter { $0 != removing }.compactMap {
            try load(ConveyanceRelease.self, "fr/\($0)")
        }
        if let adding { releases.append(adding.release) }
        if let removing {
            state.remove("filed/\(removing)")
            state.remove("fr/\(removing)")
        }
        filed.amendments += 1
        let amendmentId = "\(entryId)/A\(filed.amendments)"
        let removed = filed.entry.shipments.filter { $0.shipmentId == removing }
        let policy = try handler.timeline.policy(on: try Day(filed.conveyance.arrivalDay))
        var entries: [ManifestEntry] = []
        if !releases.isEmpty {
            let shipments = releases.compactMap { release in
                release.shipment.map { ManifestShipment(shipment: $0, lane: release.entryType ?? .t11) }
            }
            let plan = ManifestPlan.entries(
                manifestId: filed.manifestId, conveyance: filed.conveyance, shipments: shipments, policy: policy)
            if var entry = plan.entries.first, plan.entries.count == 1 {
                entry.entryId = entryId
                entry.masterBill = filed.entry.masterBill
                entry.reasons.append(
                    DecisionReason(
                        rule: "entry.amended", text: "\(amendmentId) re-states \(entryId): \(reason)",
                        policyVersion: policy.version))
                entries = [entry]
            }
        }
        let action: ManifestRecord.Amendment.Action = entries.isEmpty ? .cancel : .replace
        filed.cancelled = entries.isEmpty
        if let entry = entries.first { filed.entry = entry }
        state.set("entry/\(entryId)", try encoder.encode(filed))
        if let adding {
            state.set(
                "filed/\(adding.release.shipmentId)",
                try encoder.encode(
                    FiledShipment(manifestId: filed.manifestId, entryId: entryId, version: adding.release.version)))
            state.set("fr/\(adding.release.shipmentId)", adding.raw)
        }
        let record = ManifestRecord(
            kind: .amendment, manifestId: filed.manifestId, conveyance: filed.conveyance,
            masterBill: filed.entry.masterBill, closedBecause: filed.closedBecause, policyVersion: policy.version,
            entries: entries,
            amendment: .init(
                amendmentId: amendmentId, action: action, entryId: entryId, removedShipments: removed,
                addedShipments: adding.map { [$0.release.shipmentId] } ?? [], reason: reason))
        return [
            OutputRecord(
                topic: Topics.manifests.name, key: filed.manifestId, value: try encoder.encode(record),
                type: ManifestRecord.amendedType, idSeed: "amendment/\(amendmentId)")
        ]
    }

    /// Takes a shipment off its conveyance's open manifest.
    private func removeMember(_ member: ConveyanceRelease) throws {
        let conveyance = member.conveyance.id
        state.remove("m/\(conveyance)/\(member.shipmentId)")
        guard var open = try load(OpenManifest.self, "open/\(conveyance)") else { return }
        if member.entryType == .t86 {
            open.entries -= 1
        } else {
            let countKey = "c/\(conveyance)/\(member.consigneeKey)"
            let count = (Int(try value(countKey) ?? "1") ?? 1) - 1
            if count <= 0 {
                open.entries -= 1
                state.remove(countKey)
            } else {
                state.set(countKey, Data(String(count).utf8))
            }
        }
        state.set("open/\(conveyance)", try encoder.encode(open))
    }

    /// A shipment that cannot be filed: an exception naming every missing element and its fix.
    private func refusal(_ release: ConveyanceRelease, _ gaps: [FilingGap]) throws -> OutputRecord {
        let problems = gaps.map {
            OrderGap(
                code: "missing-\($0.element.replacingOccurrences(of: ".", with: "-").lowercased())", detail: $0.detail,
                fix: $0.fix)
        }
        let record = ExceptionRecord(
            orderId: release.orderId, version: release.version, stage: ManifestBuilderHandler.name,
            status: "rejected", code: "incomplete-entry",
            detail:
                "shipment \(release.shipmentId) is not filed on conveyance \(release.conveyance.id): it lacks \(gaps.map(\.element).joined(separator: ", ")) (\(gaps[0].detail))",
            fix: gaps.map(\.fix).joined(separator: "; "), problems: problems)
        return OutputRecord(
            topic: Topics.exceptions.name, key: release.orderId, value: try encoder.encode(record),
            type: "clearway.order.exception.v1", idSeed: "\(release.shipmentId)/v\(release.version)/incomplete-entry")
    }

    private func value(_ key: String) throws -> String? {
        try state.value(key).map { String(decoding: $0, as: UTF8.self) }
    }

    private func load<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        guard let data = try state.value(key) else { return nil }
        return try decoder.decode(T.self, from: data)
    }
}
