import ClearwayRuntime
import ClearwayWorkers

// The structuring watch: released.by-address.v1 (the aggregator's releases keyed by address) → alerts.v1.
await WorkerMain.run(name: StructuringHandler.name, defaultHTTPPort: 9104) { environment in
    try StructuringHandler.definition(environment: environment)
}
