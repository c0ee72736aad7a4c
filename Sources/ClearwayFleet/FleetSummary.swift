import ClearwayContract
import ClearwayDomain
import Foundation

/// A readable summary of one or more deployments, side by side: one row per measure, one column
/// per deployment.
public struct FleetSummary: Sendable {
    public var tallies: [FleetTally]
    public var titles: [String]

    public init(tallies: [FleetTally], titles: [String]) {
        self.tallies = tallies
        self.titles = titles
    }

    /// The rows: a label and one cell per deployment.
    public var rows: [(label: String, cells: [String])] {
        var rows: [(String, [String])] = []
        func row(_ label: String, _ cell: (FleetTally) -> String) { rows.append((label, tallies.map(cell))) }
        func count(_ value: Int) -> String { value.formatted(.number.grouping(.automatic)) }
        func usd(_ value: Decimal) -> String { "$" + value.formatted(.number.precision(.fractionLength(2))) }
        row("policy") { $0.policyVersions.joined(separator: ", ") }
        row("orders in (records)") { "\(count($0.orderKeys.count)) (\(count($0.orderRecords)))" }
        row("  with an outcome") { count($0.orderKeys.count - $0.undecided) }
        row("enriched → screened") { "\(count($0.enriched)) → \(count($0.screened))" }
        row("shipments decided") { count($0.shipments.count) }
        // Every type some deployment released, in EntryType order (T03 for AD/CVD goods, T12 /
        // T02 for quota goods, appear only when there are some).
        let releasedTypes = EntryType.allCases.filter { type in
            [.t86, .t11, .t01].contains(type) || tallies.contains { !$0.released(type).isEmpty }
        }
        for type in releasedTypes {
            row("  released \(type.rawValue)") { tally in
                let released = tally.released(type)
                let value = released.reduce(Decimal(0)) { $0 + $1.value }
                return released.isEmpty ? "0" : "\(count(released.count))  \(usd(value))"
            }
        }
        row("  held (waiting for their day)") { count($0.finalStatus(.held)) }
        row("  released after a hold") { count($0.releasedAfterHold) }
        row("  cancelled") { count($0.finalStatus(.cancelled)) }
        row("  rerouted") { count($0.finalStatus(.rerouted)) }
        row("entries of 2+ shipments") { tally in
            let (groups, shipments) = tally.consolidations
            return groups == 0 ? "0" : "\(count(groups)) (\(count(shipments)) shipments)"
        }
        row("largest T86 day total") { $0.released(.t86).isEmpty ? "-" : usd($0.largestT86DayTotal) }
        row("exceptions") { count($0.exceptions.count) }
        let codes = Set(tallies.flatMap { $0.exceptionsByCode.keys }).sorted()
        for code in codes {
            row("  \(code)") { count($0.exceptionsByCode[code] ?? 0) }
        }
        row("dead letters (DLQ)") { count($0.deadLetters) }
        let reasons = Set(tallies.flatMap { $0.deadLettersByReason.keys }).sorted()
        for reason in reasons {
            row("  \(reason)") { count($0.deadLettersByReason[reason] ?? 0) }
        }
        row("structuring alerts") { count($0.alerts.count) }
        row("manifests closed (amendments)") { "\(count($0.manifestsClosed)) (\(count($0.amendments)))" }
        let filed = tallies.map { tally in tally.entries.values.filter { !tally.cancelledEntries.contains($0.entryId) }
        }
        row("entries filed") { tally in count(filed[tallies.firstIndex { $0.prefix == tally.prefix }!].count) }
        let types = Set(filed.flatMap { $0.map(\.entryType) }).sorted()
        for type in types {
            row("  \(type.rawValue)") { tally in
                count(filed[tallies.firstIndex { $0.prefix == tally.prefix }!].filter { $0.entryType == type }.count)
            }
        }
        row("shipments refused (incomplete entry)") { count($0.filingRefusals.count) }
        for event in EntryResult.Event.allCases {
            row("entry results: \(event.rawValue)") { count($0.resultsByEvent[event] ?? 0) }
        }
        let rejections = Set(tallies.flatMap { $0.rejectionsByCode.keys }).sorted()
        for code in rejections {
            row("  rejected \(code)") { count($0.rejectionsByCode[code] ?? 0) }
        }
        row("example entry number") { tally in
            tally.results.values.joined().first { $0.event == .accepted }?.entryNumber ?? "-"
        }
        if tallies.contains(where: { !$0.writebacks.isEmpty }) {
            let progress = tallies.map(\.writebackProgress)
            let index = { (tally: FleetTally) in tallies.firstIndex { $0.prefix == tally.prefix }! }
            // A deployment without an erp-writeback (a what-if) shows none.
            func cell(_ tally: FleetTally, _ value: Int) -> String { tally.writebacks.isEmpty ? "-" : count(value) }
            row("orders written back to the ERP") { cell($0, progress[index($0)].written) }
            row("  pending") { cell($0, progress[index($0)].pending) }
            row("  failed (refused, gave up)") { cell($0, progress[index($0)].failed) }
        }
        return rows
    }

    /// The table as text.
    public var text: String {
        let rows = self.rows
        let labelWidth = max(32, (rows.map(\.label.count).max() ?? 0) + 2)
        let widths = titles.indices.map { column in
            max(titles[column].count, rows.map { $0.cells[column].count }.max() ?? 0) + 3
        }
        func line(_ label: String, _ cells: [String]) -> String {
            var text = label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
            for (column, cell) in cells.enumerated() {
                text += cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            while text.last == " " { text.removeLast() }
            return text
        }
        var lines = [line("", titles), line("", widths.map { String(repeating: "─", count: $0 - 3) })]
        lines += rows.map { line($0.label, $0.cells) }
        return lines.joined(separator: "\n")
    }
}
