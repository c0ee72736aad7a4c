import ClearwayContract
import ClearwayERP
import ClearwayRuntime
import ClearwayWorkers
import Foundation

/// The erp-writeback's outbox sender: each entry (an order's `OrderCustoms`) goes to the adapter
/// that serves its `erp.system` (`ERPDirectory`, from `CLEARWAY_ERP_*`); its destination is that
/// system, so each ERP has its own concurrency bound and circuit.
struct ERPOutboxSender: OutboxSender {
    let directory: ERPDirectory

    func destination(of payload: Data) -> String {
        (try? JSONDecoder().decode(OrderCustoms.self, from: payload))?.erp.system ?? "unreadable"
    }

    func concurrency(of destination: String) -> Int { directory.concurrency(of: destination) }

    func send(_ payload: Data, key: String) async -> OutboxSendResult {
        let customs: OrderCustoms
        do {
            customs = try JSONDecoder().decode(OrderCustoms.self, from: payload)
        } catch {
            return .refused("the outbox entry is not an order's customs values: \(error)")
        }
        guard let adapter = directory.adapter(for: customs.erp.system) else {
            return .refused(
                "no ERP adapter serves erp.system '\(customs.erp.system)': set CLEARWAY_ERP_\(customs.erp.system.uppercased().replacingOccurrences(of: "-", with: "_"))_ADAPTER and its settings (docs/erp.md)"
            )
        }
        let report: ErpWritebackHandler.Report
        switch await adapter.write(customs) {
        case .applied(let detail): report = .init(outcome: .applied, detail: detail)
        case .alreadyApplied(let detail): report = .init(outcome: .alreadyApplied, detail: detail)
        case .refused(let status, let message): return .refused("HTTP \(status): \(message)")
        case .retry(let reason, let after): return .retry(reason, after: after)
        }
        guard let data = try? JSONEncoder().encode(report) else { return .retry("unencodable report", after: nil) }
        return .delivered(data)
    }
}
