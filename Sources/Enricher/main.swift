import ClearwayRuntime
import ClearwayWorkers

// The enricher: orders.v1 + catalog.v1 + fx-rates.v1 → orders.enriched.v1 / orders.exceptions.v1.
await WorkerMain.run(name: EnricherHandler.name, defaultHTTPPort: 9101) { environment in
    try EnricherHandler.definition(environment: environment)
}
