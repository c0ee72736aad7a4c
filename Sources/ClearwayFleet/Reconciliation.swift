import ClearwayContract
import ClearwayDomain
import Foundation

/// Every decided order's chain — decided, filed, entry accepted, written back, and what its ERP
/// record holds now — and the gaps in it, for finance (`clearway reconcile`).
///
/// An order is in scope when one of its shipments was finally released with a decision day in
/// the period. Accounted ends are not gaps: a shipment the manifest-builder refused to file (an
/// exception says why), an entry CBP rejected (written back as rejected, with its codes), an
/// ERP that cannot be read back (a webhook: its write-back record is the evidence).
public struct Reconciliation: Sendable {
    /// What is wrong with an order's chain.
    public enum Gap: String, Codable, Sendable, CaseIterable {
        /// Released, but no entry result and no refusal to file.
        case noEntry = "no-entry"
        /// Entry results that name no ERP record.
        case noERPRecord = "no-erp-record"
        /// The entry results' values were never written back (or the last write-back is older).
        case notWrittenBack = "not-written-back"
        /// The ERP refused the write-back, or the worker gave up on it.
        case writebackFailed = "writeback-failed"
        /// What the ERP record holds now differs from the entry results' values.
        case erpDiffers = "erp-differs"
        /// The ERP could not be read.
        case erpUnreadable = "erp-unreadable"
    }

    /// One order's chain.
    public struct Row: Codable, Sendable {
        public var orderId: String
        public var erpSystem: String?
        public var erpRecord: String?
        /// The decision day and entry types of its released shipments.
        public var day: String
        public var entryTypes: [String]
        /// `filed`, `refused-to-file` or `not-filed`.
        public var filing: String
        /// The order's customs status from its entry results, and its entry numbers.
        public var status: String?
        public var entryNumbers: [String]
        /// The last write-back's outcome and revision.
        public var writeback: String?
        public var revision: Int?
        /// `matches`, `differs`, `none` (nothing written), `not-readable` (a webhook) or
        /// `unreadable: …`; nil when not read (nothing expected).
        public var erp: String?
        public var gaps: [Gap]
    }

    public var rows: [Row]

    /// The chains of the tally's orders decided in `days` (all when nil); `read` reads an order's
    /// ERP record back (nil: no record written; throwing `cannotReadBack`-like errors is
    /// reported by `readable`).
    public static func make(
        _ tally: FleetTally, days: ClosedRange<String>? = nil,
        read: @Sendable (OrderEvent.ERPReference, String) async -> ERPReading
    ) async -> Reconciliation {
        let released = tally.releasedShipments.values.filter { days?.contains($0.day) ?? true }
        let byOrder = Dictionary(grouping: released, by: \.orderId)
        let results = tally.resultsByOrder
        let onEntry = tally.entryOfShipment
        var rows: [Row] = []
        for (orderId, shipments) in byOrder.sorted(by: { $0.key < $1.key }) {
            var row = Row(
                orderId: orderId, erpSystem: nil, erpRecord: nil, day: shipments.map(\.day).min() ?? "",
                entryTypes: Set(shipments.compactMap { $0.entryType?.rawValue }).sorted(), filing: "filed", status: nil,
                entryNumbers: [], writeback: nil, revision: nil, erp: nil, gaps: [])
            let unfiled = shipments.filter { tally.filingOutcome(of: $0.shipmentId, onEntry: onEntry) == nil }
            if !unfiled.isEmpty {
                row.filing = tally.filingRefusals[orderId] != nil ? "refused-to-file" : "not-filed"
                if row.filing == "not-filed" { row.gaps.append(.noEntry) }
            }
            guard let orderResults = results[orderId], !orderResults.isEmpty else {
                rows.append(row)
                continue
            }
            guard let expected = OrderCustoms.fold(orderResults) else {
                row.gaps.append(.noERPRecord)
                rows.append(row)
                continue
            }
            row.erpSystem = expected.erp.system
            row.erpRecord = expected.erp.recordId
            row.status = expected.status.rawValue
            row.entryNumbers = expected.entryNumbers
            if let written = tally.writebacks[orderId] {
                row.writeback = written.outcome.rawValue
                row.revision = written.revision
                if written.customs.values != expected.values {
                    row.gaps.append(.notWrittenBack)
                } else if written.outcome == .refused || written.outcome == .gaveUp {
                    row.gaps.append(.writebackFailed)
                }
            } else {
                row.gaps.append(.notWrittenBack)
            }
            switch await read(expected.erp, orderId) {
            case .values(let held):
                if held?.values == expected.values {
                    row.erp = "matches"
                } else {
                    row.erp = held == nil ? "none" : "differs"
                    row.gaps.append(.erpDiffers)
                }
            case .notReadable:
                row.erp = "not-readable"
            case .failed(let message):
                row.erp = "unreadable: \(message)"
                row.gaps.append(.erpUnreadable)
            }
            rows.append(row)
        }
        return Reconciliation(rows: rows)
    }

    /// What reading an order's ERP record gave.
    public enum ERPReading: Sendable {
        /// The customs values it holds (nil: none written).
        case values(OrderCustoms?)
        /// The ERP cannot be read back (a webhook receiver).
        case notReadable
        /// The read failed.
        case failed(String)
    }

    /// The rows with a gap.
    public var gaps: [Row] { rows.filter { !$0.gaps.isEmpty } }

    /// The summary and the gaps, as a table.
    public var text: String {
        func count(_ value: Int) -> String { value.formatted(.number.grouping(.automatic)) }
        func counted(_ filter: (Row) -> Bool) -> Int { rows.count(where: filter) }
        let gaps = self.gaps
        var lines = [
            "orders decided (released)        \(count(self.rows.count))",
            "  filed                          \(count(counted { $0.filing == "filed" }))",
            "  refused to file (exception)    \(count(counted { $0.filing == "refused-to-file" }))",
            "  entry accepted                 \(count(counted { !$0.entryNumbers.isEmpty }))",
            "  entry rejected                 \(count(counted { $0.status == "rejected" }))",
            "  written back                   \(count(counted { ["applied", "already-applied"].contains($0.writeback ?? "") }))",
            "  ERP holds the values           \(count(counted { $0.erp == "matches" }))",
            "  ERP not readable (webhook)     \(count(counted { $0.erp == "not-readable" }))",
            "gaps                             \(count(gaps.count))",
        ]
        for gap in Gap.allCases {
            let found = gaps.count(where: { $0.gaps.contains(gap) })
            if found > 0 {
                lines.append("  \(gap.rawValue.padding(toLength: 31, withPad: " ", startingAt: 0))\(count(found))")
            }
        }
        if !gaps.isEmpty {
            lines.append("")
            lines.append(
                "order            erp                      gaps                     entry numbers  write-back  erp")
            for row in gaps.prefix(50) {
                let erp = [row.erpSystem, row.erpRecord].compactMap { $0 }.joined(separator: "/")
                lines.append(
                    [
                        row.orderId.padding(toLength: 16, withPad: " ", startingAt: 0),
                        erp.padding(toLength: 24, withPad: " ", startingAt: 0),
                        row.gaps.map(\.rawValue).joined(separator: ",").padding(
                            toLength: 24, withPad: " ", startingAt: 0),
                        row.entryNumbers.joined(separator: ",").padding(toLength: 14, withPad: " ", startingAt: 0),
                        (row.writeback ?? "-").padding(toLength: 11, withPad: " ", startingAt: 0), row.erp ?? "-",
                    ].joined(separator: " "))
            }
            if gaps.count > 50 { lines.append("… and \(gaps.count - 50) more (--format csv or json lists them all)") }
        }
        return lines.joined(separator: "\n")
    }

    /// Every row as CSV (RFC 4180), for a spreadsheet.
    public var csv: String {
        func field(_ text: String) -> String {
            text.contains(where: { [",", "\"", "\n"].contains($0) })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var lines = [
            "orderId,erpSystem,erpRecord,day,entryTypes,filing,status,entryNumbers,writeback,revision,erp,gaps"
        ]
        for row in rows {
            lines.append(
                [
                    row.orderId, row.erpSystem ?? "", row.erpRecord ?? "", row.day,
                    row.entryTypes.joined(separator: " "),
                    row.filing, row.status ?? "", row.entryNumbers.joined(separator: " "), row.writeback ?? "",
                    row.revision.map(String.init) ?? "", row.erp ?? "", row.gaps.map(\.rawValue).joined(separator: " "),
                ].map(field).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
