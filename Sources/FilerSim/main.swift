import ClearwayRuntime
import ClearwayWorkers

// The customs-filer simulator: manifests.v1 → entry-results.v1.
await WorkerMain.run(name: FilerSimHandler.name, defaultHTTPPort: 9106) { environment in
    try FilerSimHandler.definition(environment: environment)
}
