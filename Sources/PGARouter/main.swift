import ClearwayRuntime
import ClearwayWorkers
import Logging

// The pga-router: orders.enriched.v1 → orders.screened.v1 (lanes, flags, exclusions, reasons).
await WorkerMain.run(name: PGARouterHandler.name, defaultHTTPPort: 9102) { environment in
    let references = try ScreeningReferences(
        sources: ScreeningSources.fromEnvironment(environment), logger: Logger(label: "clearway.pga-router"))
    // Reference files are reloaded when they change or on SIGHUP, for the life of the process.
    Task { await references.watch(interval: .seconds(2)) }
    return PGARouterHandler.definition(references: references)
}
