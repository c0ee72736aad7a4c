import ClearwayERP
import ClearwayRuntime
import ClearwayWorkers
import Logging

// The ERP write-back: entry-results.v1 → the order's ERP record (NetSuite, Business Central,
// a signed webhook) and erp-writeback.v1. Which adapter serves which erp.system, and its
// credentials: CLEARWAY_ERP_<SYSTEM>_* (docs/erp.md). A rejected credential stops it at start.
await WorkerMain.run(name: ErpWritebackHandler.name, defaultHTTPPort: 9107) { environment in
    let directory = try ERPDirectory(environment: environment, logger: Logger(label: "clearway.erp-writeback.erp"))
    do {
        for system in directory.systems { try await directory.adapter(for: system)?.checkCredentials() }
    } catch {
        try? await directory.shutdown()
        throw error
    }
    return ErpWritebackHandler.definition(sender: ERPOutboxSender(directory: directory))
}
