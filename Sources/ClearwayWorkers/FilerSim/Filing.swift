import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// What the simulator remembers of an entry.
struct SimulatedEntry: Codable {
    var manifestId: String
    /// The manifest's master bill (absent in entries stored before it was kept).
    var masterBill: String?
    var entry: ManifestEntry
    var entryNumber: String?
    /// `filed`, `exam`, `hold`, `pga-documents`, `released`, `rejected`, `cancelled`.
    var stage: String
    var amendments: [String]
}

/// One record's (or timer's) filing work on a partition's state.
struct Filing {
    let handler: FilerSimHandler
    let state: PartitionState
    let partition: Int32
    private let encoder = JSONEncoder.sortedKeys()
    private let decoder = JSONDecoder()
    private var customs: SimulatedCustoms { handler.customs }

    init(handler: FilerSimHandler, state: PartitionState, partition: Int32) {
        self.handler = handler
        self.state = state
        self.partition = partition
    }

    /// Files an entry: accepted with the next entry number, or rejected. `filing` tells a
    /// re-filing (a rejected entry's correction) apart in the results' ids.
    mutating func file(
        _ entry: ManifestEntry, manifestId: String, masterBill: String?, filing: String = ""
    ) throws -> [OutputRecord] {
        let key = "entry/\(entry.entryId)"
        if let stored = try load(key) {
            // The same entry again (a redelivery) changes nothing; other contents under its id
            // re-state it (see `restate`).
            return try restate(stored, to: entry, manifestId: manifestId, masterBill: masterBill)
        }
        let conditions = customs.conditions(entry)
        var simulated = SimulatedEntry(
            manifestId: manifestId, masterBill: masterBill, entry: entry, entryNumber: nil, stage: "rejected",
            amendments: [])
        if conditions.contains(where: { $0.severity == .fatal }) {
            state.set(key, try encoder.encode(simulated))
            return try results(simulated, .rejected, conditions: conditions, seed: "rejected\(filing)")
        }
        let number = try nextEntryNumber()
        if try state.value("n/\(number)") != nil {
            // Never happens with partition-owned sequences; ABI's fatal reject if it ever did.
            state.set(key, try encoder.encode(simulated))
            return try results(
                simulated, .rejected,
                conditions: [
                    .init(
                        code: "DUPLICATE-ENTRY-NUMBER", severity: .fatal,
                        text: "entry number \(number) was already used (19 CFR 142.3a)")
                ], seed: "rejected\(filing)")
        }
        state.set("n/\(number)", Data(entry.entryId.utf8))
        simulated.entryNumber = number.description
        simulated.stage = "filed"
        state.set(key, try encoder.encode(simulated))
        state.schedule(
            timer: "dispo/\(entry.entryId)",
            at: customs.nextDisposition(entry.entryId, stage: "filed", now: handler.now()))
        var outputs = try results(simulated, .accepted, conditions: conditions, seed: "accepted\(filing)")
        outputs += try pga(simulated, code: "01", text: "under review", seed: "pga-01\(filing)")
        return outputs
    }

    /// Applies an amendment to a filed entry: cancelled, or re-stated under its number.
    mutating func amend(
        _ amendment: ManifestRecord.Amendment, replacement: ManifestEntry?, manifestId: String, masterBill: String?
    ) throws -> [OutputRecord] {
        let key = "entry/\(amendment.entryId)"
        guard var simulated = try load(key) else {
            // Never filed here (another filer's, or forgotten): file the replacement as new.
            if let replacement { return try file(replacement, manifestId: manifestId, masterBill: masterBill) }
            return []
        }
        if simulated.amendments.contains(amendment.amendmentId) {
            guard let replacement else { return [] }
            return try restate(simulated, to: replacement, manifestId: manifestId, masterBill: masterBill)
        }
        simulated.amendments.append(amendment.amendmentId)
        let seed = amendment.amendmentId
        var outputs: [OutputRecord] = []
        // The shipments taken off: cancelled on this entry.
        var removed = simulated
        removed.entry.shipments = amendment.removedShipments
        if !removed.entry.shipments.isEmpty {
            outputs += try results(removed, .cancelled, conditions: [], seed: "\(seed)/removed")
        }
        switch amendment.action {
        case .cancel:
            if simulated.stage != "rejected" { state.cancel(timer: "dispo/\(amendment.entryId)") }
            simulated.stage = "cancelled"
            simulated.entry.shipments = []
            state.set(key, try encoder.encode(simulated))
        case .replace:
            guard let replacement else { break }
            if simulated.entryNumber == nil {
                // A rejected entry's correction is filed anew.
                state.remove(key)
                return outputs
                    + (try file(
                        replacement, manifestId: manifestId, masterBill: masterBill, filing: "/\(amendment.amendmentId)"
                    ))
            }
            simulated.entry = replacement
            let conditions = customs.conditions(replacement).filter { $0.severity == .warning }
            // Goods added to an entry already released (or brought back onto a cancelled one)
            // need their own release: the entry's dispositions run again, for every shipment.
            if (!amendment.addedShipments.isEmpty && simulated.stage == "released") || simulated.stage == "cancelled" {
                simulated.stage = "filed"
                state.schedule(
                    timer: "dispo/\(amendment.entryId)",
                    at: customs.nextDisposition(amendment.entryId, stage: "filed", now: handler.now()))
            }
            state.set(key, try encoder.encode(simulated))
            outputs += try results(simulated, .amended, conditions: conditions, seed: "\(seed)/amended")
        }
        return outputs
    }

    /// An entry that came again with other contents under its id — a manifest built again
    /// differently after a crash (its closes follow the clock), where a broker that does not
    /// abort a fenced producer's open transaction showed the first build too — is re-stated to
    /// the later contents, as an amendment would (`<entryId>/R<n>`); the same contents again
    /// change nothing.
    private mutating func restate(
        _ stored: SimulatedEntry, to entry: ManifestEntry, manifestId: String, masterBill: String?
    ) throws -> [OutputRecord] {
        guard stored.entry != entry else { return [] }
        let removed = stored.entry.shipments.filter { !entry.shipmentIds.contains($0.shipmentId) }
        let added = entry.shipmentIds.filter { !stored.entry.shipmentIds.contains($0) }
        let restatement = ManifestRecord.Amendment(
            amendmentId: "\(entry.entryId)/R\(stored.amendments.count + 1)", action: .replace, entryId: entry.entryId,
            removedShipments: removed, addedShipments: added, reason: "the entry came again with other contents")
        return try amend(restatement, replacement: entry, manifestId: manifestId, masterBill: masterBill)
    }

    private func load(_ key: String) throws -> SimulatedEntry? {
        try state.value(key).map { try decoder.decode(SimulatedEntry.self, from: $0) }
    }

    /// The next cargo-release (and PGA) answer for an entry.
    mutating func disposition(_ entryId: String) throws -> [OutputRecord] {
        let key = "entry/\(entryId)"
        guard var simulated = try state.value(key).map({ try decoder.decode(SimulatedEntry.self, from: $0) }) else {
            return []
        }
        let now = handler.now()
        let flagged = simulated.entry.lines.contains { !$0.pga.isEmpty }
        // An amended entry's dispositions run again: their ids tell the rounds apart.
        let round = simulated.amendments.isEmpty ? "" : "/\(simulated.amendments.count)"
        func status(_ code: String, _ text: String) -> EntryResult.Status { .init(code: code, text: text) }
        var outputs: [OutputRecord] = []
        var next: String?
        switch simulated.stage {
        case "filed":
            let roll = customs.roll("dispo/\(entryId)")
            if roll < customs.examRate {
                outputs += try results(simulated, .exam, disposition: status("1A", "exam required"), seed: "1A\(round)")
                next = "exam"
            } else if roll < customs.examRate + customs.holdRate {
                outputs += try results(simulated, .hold, disposition: status("1H", "hold placed"), seed: "1H\(round)")
                next = "hold"
            } else if flagged, customs.roll("pga/\(entryId)") < customs.pgaDocumentsRate {
                outputs += try pga(simulated, code: "10", text: "documents required", seed: "pga-10\(round)")
                next = "pga-documents"
            } else {
                outputs += try release(simulated, flagged: flagged, round: round)
            }
        case "exam":
            outputs += try release(simulated, flagged: flagged, round: round)
        case "hold":
            outputs += try results(
                simulated, .holdRemoved, disposition: status("1I", "hold removed"), seed: "1I\(round)")
            outputs += try release(simulated, flagged: flagged, round: round)
        case "pga-documents":
            outputs += try release(simulated, flagged: flagged, round: round)
        default:
            return []
        }
        simulated.stage = next ?? "released"
        state.set(key, try encoder.encode(simulated))
        if let next {
            state.schedule(timer: "dispo/\(entryId)", at: customs.nextDisposition(entryId, stage: next, now: now))
        }
        return outputs
    }

    // MARK: Helpers

    private func release(_ simulated: SimulatedEntry, flagged: Bool, round: String) throws -> [OutputRecord] {
        var outputs: [OutputRecord] = []
        if flagged { outputs += try pga(simulated, code: "07", text: "may proceed", seed: "pga-07\(round)") }
        outputs += try results(
            simulated, .released, disposition: .init(code: "1C", text: "released"), seed: "1C\(round)")
        return outputs
    }

    /// The entry number for the next accepted entry of this partition.
    private func nextEntryNumber() throws -> EntryNumber {
        guard (0..<100).contains(partition) else {
            throw RecordRejected(
                "too-many-partitions",
                "the filer-sim numbers entries per input partition (two digits); manifests.v1 partition \(partition) is beyond 99"
            )
        }
        let sequence = (Int(String(decoding: try state.value("seq") ?? Data("0".utf8), as: UTF8.self)) ?? 0) + 1
        guard sequence < 100_000 else {
            throw RecordRejected(
                "entry-numbers-used-up",
                "partition \(partition) has used all 99,999 transaction numbers of filer \(customs.filer); configure another CLEARWAY_FILER_CODE"
            )
        }
        state.set("seq", Data(String(sequence).utf8))
        return try EntryNumber(filer: customs.filer, transaction: Int(partition) * 100_000 + sequence)
    }

    /// A PGA status for every shipment of the entry with a flagged line.
    private func pga(_ simulated: SimulatedEntry, code: String, text: String, seed: String) throws -> [OutputRecord] {
        var flagged = simulated
        let agencies = Dictionary(grouping: simulated.entry.lines.filter { !$0.pga.isEmpty }, by: \.shipmentId)
        flagged.entry.shipments = simulated.entry.shipments.filter { agencies[$0.shipmentId] != nil }
        guard !flagged.entry.shipments.isEmpty else { return [] }
        return try flagged.entry.shipments.map { shipment in
            let agency = Set(agencies[shipment.shipmentId]!.flatMap { $0.pga.map(\.agency) }).sorted().joined(
                separator: ", ")
            return try output(
                simulated, shipment, .pga, conditions: [], disposition: nil,
                pga: .init(code: code, text: text, agency: agency), seed: seed)
        }
    }

    private func results(
        _ simulated: SimulatedEntry, _ event: EntryResult.Event, conditions: [EntryResult.Condition] = [],
        disposition: EntryResult.Status? = nil, seed: String
    ) throws -> [OutputRecord] {
        try simulated.entry.shipments.map {
            try output(simulated, $0, event, conditions: conditions, disposition: disposition, pga: nil, seed: seed)
        }
    }

    private func output(
        _ simulated: SimulatedEntry, _ shipment: ManifestEntry.Shipment, _ event: EntryResult.Event,
        conditions: [EntryResult.Condition], disposition: EntryResult.Status?, pga: EntryResult.Status?, seed: String
    ) throws -> OutputRecord {
        let result = EntryResult(
            orderId: shipment.orderId, shipmentId: shipment.shipmentId, version: shipment.version,
            manifestId: simulated.manifestId, entryId: simulated.entry.entryId, entryType: simulated.entry.entryType,
            filerCode: customs.filer.description, entryNumber: simulated.entryNumber, event: event,
            conditions: conditions, disposition: disposition, pga: pga, erp: shipment.erp,
            at: ISO8601DateFormatter().string(from: handler.now()), masterBill: simulated.masterBill)
        return OutputRecord(
            topic: Topics.entryResults.name, key: shipment.orderId, value: try encoder.encode(result),
            type: EntryResult.type, idSeed: "\(simulated.entry.entryId)/\(shipment.shipmentId)/\(seed)")
    }
}
