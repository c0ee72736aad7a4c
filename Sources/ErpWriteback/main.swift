import ClearwayERP
import ClearwayRuntime
import ClearwayWorkers

// The ERP write-back: entry-results.v1 → the order's ERP record (NetSuite, Business Central,
// a signed webhook) and erp-writeback.v1. Which adapter serves which erp.system, and its
// credentials: CLEARWAY_ERP_<SYSTEM>_* (docs/erp.md). A rejected credential stops it at start.
await WorkerMain.run(name: ErpWritebackHandler.name, defaultHTTPPort: 9107) { environment in
    let directory = try ERPDirectory(environment: environment)
    try await directory.checkCredentials()
    return ErpWritebackHandler.definition(sender: ERPOutboxSender(directory: directory))
}
