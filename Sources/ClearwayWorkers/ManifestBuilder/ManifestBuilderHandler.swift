import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// The manifest-builder: groups released shipments per conveyance (carrier and trip, port,
/// arrival day), one open manifest per conveyance, and files it when it closes — at
/// `CLEARWAY_MANIFEST_MAX_ENTRIES` entries, at the port-local cut-off `CLEARWAY_MANIFEST_CUTOFF`,
/// `CLEARWAY_MANIFEST_CLOSE_AFTER` after it opened, and at the latest when the arrival day ends
/// at the port. The entries are `ManifestPlan.entries`: one per Type 86 shipment, one per
/// consignee otherwise (19 CFR 141.51), typed when the manifest closes. A shipment lacking a
/// data element is refused (`orders.exceptions.v1`, `incomplete-entry`) and never filed.
///
/// Reads `released.by-conveyance.v1` (the aggregator's releases keyed by `Conveyance.id`), so one
/// partition owns each conveyance. After a manifest closed, a withdrawn shipment, or a later one
/// for a consignee already entered on the conveyance, amends the filed entry (`cancel` or
/// `replace`, naming it) instead of opening a second entry for that consignee.
///
/// State per partition:
/// - `open/<conveyance>`: the open manifest (`OpenManifest`); `seq/<conveyance>`: the last
///   manifest number used; `m/<conveyance>/<shipmentId>`: its shipments (the releases);
///   `c/<conveyance>/<consigneeKey>`: how many of a consignee's non-T86 shipments it holds;
/// - `filed/<shipmentId>`, `fr/<shipmentId>` (its release as it came) and `entry/<entryId>`:
///   what was filed, for amendments;
///   `ce/<conveyance>/<consigneeKey>`: the consignee's filed entry on the conveyance;
/// - timers `close/<conveyance>` (the close) and `forget/<manifestId>` (the filed state dropped
///   `CLEARWAY_MANIFEST_RETENTION_DAYS` after the arrival day).
///
/// Manifest ids and bill numbers derive from the conveyance and the manifest's number, never
/// from the clock: a replay builds the same ids.
public struct ManifestBuilderHandler: RecordHandler {
    public static let name = WorkerName.manifestBuilder.rawValue

    let timeline: PolicyTimeline
    let ports: PortDirectory
    let maxEntries: Int
    /// Seconds after the arrival day's midnight at the port.
    let cutoff: Int?
    let closeAfter: Duration?
    let retentionDays: Int
    let now: @Sendable () -> Date

    public init(
        timeline: PolicyTimeline, ports: PortDirectory, maxEntries: Int = 250, cutoff: Int? = nil,
        closeAfter: Duration? = nil, retentionDays: Int = 7, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.timeline = timeline
        self.ports = ports
        self.maxEntries = maxEntries
        self.cutoff = cutoff
        self.closeAfter = closeAfter
        self.retentionDays = retentionDays
        self.now = now
    }

    public static func definition(_ handler: ManifestBuilderHandler) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.releasedByConveyance],
            outputs: [Topics.manifests, Topics.exceptions], handler: handler, isStateful: true)
    }

    /// From `CLEARWAY_POLICY`, `CLEARWAY_MANIFEST_MAX_ENTRIES` (250), `CLEARWAY_MANIFEST_CUTOFF`
    /// (`HH:MM`, port time; none), `CLEARWAY_MANIFEST_CLOSE_AFTER` (seconds; none) and
    /// `CLEARWAY_MANIFEST_RETENTION_DAYS` (7).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        let timeline: PolicyTimeline
        do {
            timeline = try PolicyTimeline.named(environment["CLEARWAY_POLICY"] ?? "us")
        } catch let error as DomainError {
            throw ConfigurationError("CLEARWAY_POLICY: \(error.message)")
        }
        func whole(_ name: String, default value: Int, minimum: Int) throws -> Int {
            guard let text = environment[name] else { return value }
            guard let number = Int(text), number >= minimum else {
                throw ConfigurationError("\(name) must be a whole number, \(minimum) or more, not \"\(text)\"")
            }
            return number
        }
        var cutoff: Int?
        if let text = environment["CLEARWAY_MANIFEST_CUTOFF"] {
            let parts = text.split(separator: ":").map { Int($0) }
            guard parts.count == 2, let hour = parts[0], let minute = parts[1], (0..<24).contains(hour),
                (0..<60).contains(minute)
            else {
                throw ConfigurationError(
                    "CLEARWAY_MANIFEST_CUTOFF must be a time of day at the port, HH:MM (e.g. 16:30), not \"\(text)\"")
            }
            cutoff = hour * 3600 + minute * 60
        }
        let closeAfter = try environment["CLEARWAY_MANIFEST_CLOSE_AFTER"].map { _ in
            Duration.seconds(try whole("CLEARWAY_MANIFEST_CLOSE_AFTER", default: 0, minimum: 1))
        }
        return definition(
            ManifestBuilderHandler(
                timeline: timeline, ports: try PortDirectory.shipped(),
                maxEntries: try whole("CLEARWAY_MANIFEST_MAX_ENTRIES", default: 250, minimum: 1), cutoff: cutoff,
                closeAfter: closeAfter,
                retentionDays: try whole("CLEARWAY_MANIFEST_RETENTION_DAYS", default: 7, minimum: 1)))
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else {
            throw RecordRejected("not-stateful", "the manifest-builder needs its state")
        }
        let release: ConveyanceRelease
        do {
            release = try JSONDecoder().decode(ConveyanceRelease.self, from: record.value)
        } catch {
            throw RecordRejected("schema-invalid", "not a released.by-conveyance.v1 record: \(error)")
        }
        try KeyCheck.require(record, isKeyedBy: release.conveyance.id, field: "conveyance")
        var manifests = Manifests(handler: self, state: state)
        if release.withdrawn { return try manifests.withdraw(release) }
        guard let shipment = release.shipment, let lane = release.entryType else {
            throw RecordRejected(
                "schema-invalid", "release of \(release.shipmentId) without its shipment or entry type")
        }
        return try manifests.add(release, ManifestShipment(shipment: shipment, lane: lane), raw: record.value)
    }

    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else { return [] }
        var manifests = Manifests(handler: self, state: state)
        if key.hasPrefix("close/") {
            let parts = String(decoding: payload, as: UTF8.self).split(separator: " ")
            guard parts.count == 2, let sequence = Int(parts[0]) else { return [] }
            return try manifests.close(
                String(key.dropFirst("close/".count)), sequence: sequence, because: String(parts[1]))
        }
        if key.hasPrefix("forget/") { try manifests.forget(payload) }
        return []
    }

    /// When a manifest opened now closes by time, and why: the earliest of the cut-off, the
    /// close-after and the end of the arrival day at the port.
    func closing(_ conveyance: Conveyance) throws -> (at: Date, because: String) {
        let zone = try ports.port(conveyance.port).zone()
        let day = try Day(conveyance.arrivalDay)
        var candidates = [(day.next.start(in: zone), "end-of-day")]
        if let cutoff { candidates.append((day.start(in: zone).addingTimeInterval(TimeInterval(cutoff)), "cut-off")) }
        if let closeAfter {
            candidates.append((now().addingTimeInterval(Double(closeAfter.components.seconds)), "close-after"))
        }
        return candidates.min { $0.0 < $1.0 }!
    }
}

/// An open manifest.
struct OpenManifest: Codable {
    var conveyance: Conveyance
    var sequence: Int
    /// Entries it would file now: T86 shipments plus consignees with other shipments.
    var entries: Int
}

/// A filed shipment: where it went, and the version filed (its release, to re-state its entry,
/// is kept as it came under `fr/<shipmentId>`).
struct FiledShipment: Codable {
    var manifestId: String
    var entryId: String
    var version: Int
}

/// A filed entry as it now stands.
struct FiledEntry: Codable {
    var manifestId: String
    var conveyance: Conveyance
    var closedBecause: String
    var entry: ManifestEntry
    var amendments: Int
    var cancelled: Bool
}

/// What a closed manifest leaves in state, to forget after the retention.
struct FiledKeys: Codable {
    var shipments: [String]
    var entries: [String]
    var consignees: [String]
}

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
