import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

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

    static func definition(_ handler: FilerSimHandler) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.manifests], outputs: [Topics.entryResults],
            handler: handler, isStateful: true)
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else { throw RecordRejected("not-stateful", "the filer-sim needs its state") }
        let manifest = try record.decoded(ManifestRecord.self, topic: "manifests.v1")
        try KeyCheck.require(record, isKeyedBy: manifest.manifestId, field: "manifestId")
        var filing = Filing(handler: self, state: state, partition: record.partition)
        switch manifest.kind {
        case .manifest:
            var outputs: [OutputRecord] = []
            for entry in manifest.entries {
                outputs += try filing.file(entry, manifestId: manifest.manifestId, masterBill: manifest.masterBill)
            }
            return outputs
        case .amendment:
            guard let amendment = manifest.amendment else {
                throw RecordRejected("schema-invalid", "an amendment of \(manifest.manifestId) without its amendment")
            }
            return try filing.amend(
                amendment, replacement: manifest.entries.first, manifestId: manifest.manifestId,
                masterBill: manifest.masterBill)
        }
    }

    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state, key.hasPrefix("dispo/") else { return [] }
        var filing = Filing(handler: self, state: state, partition: -1)
        return try filing.disposition(String(key.dropFirst("dispo/".count)))
    }
}
