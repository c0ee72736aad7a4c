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
