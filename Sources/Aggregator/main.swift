import ClearwayRuntime
import ClearwayWorkers

// The aggregator: orders.screened.v1 → shipments.cleared.v1 (+ alerts.v1, reroutes.v1).
await WorkerMain.run(name: AggregatorHandler.name, defaultHTTPPort: 9103) { environment in
    try AggregatorHandler.definition(environment: environment)
}
