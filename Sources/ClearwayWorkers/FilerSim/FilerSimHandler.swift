import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// What the simulator decides for an entry; a real broker's answers replace it behind the same
/// topics (`manifests.v1` in, `entry-results.v1` out), with the manifest-builder unchanged.
struct SimulatedCustoms: Sendable {
    var filer: FilerCode
    var seed: UInt64
    var rejectRate: Double
    var examRate: Double
    var holdRate: Double
    var pgaDocumentsRate: Double
    var delay: Duration

    /// A number in [0, 1) fixed by the seed and `text`.
    func roll(_ text: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        return Double(hash >> 11) / Double(UInt64(1) << 53)
    }

    /// ABI's edits on an entry: real checks (data the entry type needs, its value limit), then a
    /// seeded share of rejections a filer meets (an inactive importer, an HTS not valid on the date).
    func conditions(_ entry: ManifestEntry) -> [EntryResult.Condition] {
        var conditions: [EntryResult.Condition] = []
        func add(_ code: String, _ severity: EntryResult.Condition.Severity, _ text: String) {
            conditions.append(.init(code: code, severity: severity, text: text))
        }
        let total = (try? Decimal(parsingPlain: entry.totalValueUSD)) ?? 0
        if entry.entryType == .t86, total > 800 {
            add("T86-OVER-LIMIT", .fatal, "Type 86 value \(entry.totalValueUSD) is over $800 (19 CFR 10.151)")
        }
        if entry.entryType == .t11, total > 2_500 {
            add("INFORMAL-OVER-LIMIT", .fatal, "Type 11 value \(entry.totalValueUSD) is over $2,500 (19 CFR 143.21(a))")
        }
        for line in entry.lines {
            if (try? HTSCode(line.hts))?.isStatisticalReportingNumber != true {
                add(
                    "HTS-INVALID", .fatal,
                    "line \(line.lineNumber) of \(line.shipmentId): HTS \(line.hts) is not a 10-digit number")
            }
            if (try? MID(line.mid)) == nil {
                add("MID-MISSING", .fatal, "line \(line.lineNumber) of \(line.shipmentId): no valid manufacturer id")
            }
            if line.description.count < 6 {
                add(
                    "DESCRIPTION-VAGUE", .warning,
                    "line \(line.lineNumber) of \(line.shipmentId): \"\(line.description)\" may be too vague for CBP")
            }
        }
        let roll = roll("reject/\(entry.entryId)")
        if roll < rejectRate / 2 {
            add("IOR-INACTIVE", .fatal, "importer of record for consignee \(entry.consignee.name) is not active in ACE")
        } else if roll < rejectRate {
            add(
                "HTS-NOT-VALID-ON-DATE", .fatal,
                "HTS \(entry.lines.first?.hts ?? "") is not valid for the arrival date \(entry.arrivalDay)")
        }
        return conditions
    }

    /// When the next disposition of an entry comes.
    func nextDisposition(_ entryId: String, stage: String, now: Date) -> Date {
        let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
        return now.addingTimeInterval(seconds * (1 + roll("delay/\(stage)/\(entryId)")))
    }
}

/// What the simulator remembers of an entry.
struct SimulatedEntry: Codable {
    var manifestId: String
    var entry: ManifestEntry
    var entryNumber: String?
    /// `filed`, `exam`, `hold`, `pga-documents`, `released`, `rejected`, `cancelled`.
    var stage: String
    var amendments: [String]
}

/// The customs-filer simulator: plays the customs broker and CBP's ABI answers for tests, the
/// demo and benchmarks. Reads `manifests.v1`; per entry writes `entry-results.v1` (one record per
/// shipment, keyed by its order): accepted with an entry number from the filer code's sequence,
/// or rejected with ABI-style condition codes (fatal or warning); later, after seeded delays, the
/// cargo-release dispositions (1A exam, 1H / 1I hold placed / removed, 1C released) and, for
/// PGA-flagged lines, PGA statuses (01 under review, 10 documents required, 07 may proceed).
///
/// Entry numbers never repeat (19 CFR 142.3a): the transaction number is the input partition
/// (two digits) and that partition's durable sequence (five), so restarts, rebalances and
/// other instances cannot reuse one; a partition that used up its 99,999 numbers refuses to file
/// (the DLQ says to configure another filer code). An amendment keeps its entry's number.
public struct FilerSimHandler: RecordHandler {
    public static let name = WorkerName.filerSim.rawValue

    let customs: SimulatedCustoms
    let now: @Sendable () -> Date

    init(customs: SimulatedCustoms, now: @escaping @Sendable () -> Date = { Date() }) {
        self.customs = customs
        self.now = now
    }

    /// From `CLEARWAY_FILER_CODE` (`CLW`), `CLEARWAY_FILER_SEED` (2026),
    /// `CLEARWAY_FILER_REJECT_RATE` (0.05), `CLEARWAY_FILER_EXAM_RATE` (0.05),
    /// `CLEARWAY_FILER_HOLD_RATE` (0.03), `CLEARWAY_FILER_PGA_DOCUMENTS_RATE` (0.1) and
    /// `CLEARWAY_FILER_DELAY_MS` (2000: dispositions come after one to two of these).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        let filer: FilerCode
        do {
            filer = try FilerCode(environment["CLEARWAY_FILER_CODE"] ?? "CLW")
        } catch let error as DomainError {
            throw ConfigurationError("CLEARWAY_FILER_CODE: \(error.message)")
        }
        func rate(_ name: String, _ value: Double) throws -> Double {
            guard let text = environment[name] else { return value }
            guard let rate = Double(text), (0...1).contains(rate) else {
                throw ConfigurationError("\(name) must be a share between 0 and 1, not \"\(text)\"")
            }
            return rate
        }
        var seed: UInt64 = 2026
        if let text = environment["CLEARWAY_FILER_SEED"] {
            guard let value = UInt64(text) else {
                throw ConfigurationError("CLEARWAY_FILER_SEED must be a whole number")
            }
            seed = value
        }
        var delay = 2000
        if let text = environment["CLEARWAY_FILER_DELAY_MS"] {
            guard let value = Int(text), value >= 0 else {
                throw ConfigurationError("CLEARWAY_FILER_DELAY_MS must be a whole number of milliseconds")
            }
            delay = value
        }
        let customs = SimulatedCustoms(
            filer: filer, seed: seed, rejectRate: try rate("CLEARWAY_FILER_REJECT_RATE", 0.05),
            examRate: try rate("CLEARWAY_FILER_EXAM_RATE", 0.05), holdRate: try rate("CLEARWAY_FILER_HOLD_RATE", 0.03),
            pgaDocumentsRate: try rate("CLEARWAY_FILER_PGA_DOCUMENTS_RATE", 0.1), delay: .milliseconds(delay))
        return definition(FilerSimHandler(customs: customs))
    }

    static func definition(_ handler: FilerSimHandler) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.manifests], outputs: [Topics.entryResults],
            handler: handler, isStateful: true)
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else { throw RecordRejected("not-stateful", "the filer-sim needs its state") }
        let manifest: ManifestRecord
        do {
            manifest = try JSONDecoder().decode(ManifestRecord.self, from: record.value)
        } catch {
            throw RecordRejected("schema-invalid", "not a manifests.v1 record: \(error)")
        }
        try KeyCheck.require(record, isKeyedBy: manifest.manifestId, field: "manifestId")
        var filing = Filing(handler: self, state: state, partition: record.partition)
        switch manifest.kind {
        case .manifest:
            var outputs: [OutputRecord] = []
            for entry in manifest.entries { outputs += try filing.file(entry, manifestId: manifest.manifestId) }
            return outputs
        case .amendment:
            guard let amendment = manifest.amendment else {
                throw RecordRejected("schema-invalid", "an amendment of \(manifest.manifestId) without its amendment")
            }
            return try filing.amend(amendment, replacement: manifest.entries.first, manifestId: manifest.manifestId)
        }
    }

    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state, key.hasPrefix("dispo/") else { return [] }
        var filing = Filing(handler: self, state: state, partition: -1)
        return try filing.disposition(String(key.dropFirst("dispo/".count)))
    }
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
    mutating func file(_ entry: ManifestEntry, manifestId: String, filing: String = "") throws -> [OutputRecord] {
        let key = "entry/\(entry.entryId)"
        if let stored = try load(key) {
            // The same entry again (a redelivery) changes nothing; other contents under its id
            // re-state it (see `restate`).
            return try restate(stored, to: entry, manifestId: manifestId)
        }
        let conditions = customs.conditions(entry)
        var simulated = SimulatedEntry(
            manifestId: manifestId, entry: entry, entryNumber: nil, stage: "rejected", amendments: [])
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
    mutating func amend(_ amendment: ManifestRecord.Amendment, replacement: ManifestEntry?, manifestId: String) throws
        -> [OutputRecord]
    {
        let key = "entry/\(amendment.entryId)"
        guard var simulated = try load(key) else {
            // Never filed here (another filer's, or forgotten): file the replacement as new.
            if let replacement { return try file(replacement, manifestId: manifestId) }
            return []
        }
        if simulated.amendments.contains(amendment.amendmentId) {
            guard let replacement else { return [] }
            return try restate(simulated, to: replacement, manifestId: manifestId)
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
                return outputs + (try file(replacement, manifestId: manifestId, filing: "/\(amendment.amendmentId)"))
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
    private mutating func restate(_ stored: SimulatedEntry, to entry: ManifestEntry, manifestId: String) throws
        -> [OutputRecord]
    {
        guard stored.entry != entry else { return [] }
        let removed = stored.entry.shipments.filter { !entry.shipmentIds.contains($0.shipmentId) }
        let added = entry.shipmentIds.filter { !stored.entry.shipmentIds.contains($0) }
        let restatement = ManifestRecord.Amendment(
            amendmentId: "\(entry.entryId)/R\(stored.amendments.count + 1)", action: .replace, entryId: entry.entryId,
            removedShipments: removed, addedShipments: added, reason: "the entry came again with other contents")
        return try amend(restatement, replacement: entry, manifestId: manifestId)
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
            at: ISO8601DateFormatter().string(from: handler.now()))
        return OutputRecord(
            topic: Topics.entryResults.name, key: shipment.orderId, value: try encoder.encode(result),
            type: EntryResult.type, idSeed: "\(simulated.entry.entryId)/\(shipment.shipmentId)/\(seed)")
    }
}
