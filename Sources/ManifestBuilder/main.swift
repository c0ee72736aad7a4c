import ClearwayRuntime
import ClearwayWorkers

// The manifest-builder: released.by-conveyance.v1 → manifests.v1 (+ orders.exceptions.v1).
await WorkerMain.run(name: ManifestBuilderHandler.name, defaultHTTPPort: 9105) { environment in
    try ManifestBuilderHandler.definition(environment: environment)
}
