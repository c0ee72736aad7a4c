import ClearwayRuntime
import ClearwayTestSupport
import Foundation

// The runtime's process-level tests (kill -9, SIGTERM, rebalances) start this worker, and
// `scripts/bench runtime` runs it as its pass-through worker (CLEARWAY_TEST_PASS_THROUGH=true).
let environment = ProcessInfo.processInfo.environment
await WorkerMain.run(
    EchoHandler.definition(
        name: environment["CLEARWAY_TEST_WORKER_NAME"] ?? "test-worker",
        input: environment["CLEARWAY_TEST_INPUT"] ?? "test.in",
        output: environment["CLEARWAY_TEST_OUTPUT"] ?? "test.out",
        delay: .microseconds(Int(environment["CLEARWAY_TEST_DELAY_US"] ?? "0") ?? 0),
        passThrough: environment["CLEARWAY_TEST_PASS_THROUGH"] == "true"),
    defaultHTTPPort: 0)
