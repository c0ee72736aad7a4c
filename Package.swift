// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Clearway",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ClearwayKafka", targets: ["ClearwayKafka"]),
        .library(name: "ClearwayDomain", targets: ["ClearwayDomain"]),
        .library(name: "ClearwayRuntime", targets: ["ClearwayRuntime"]),
        .library(name: "ClearwayContract", targets: ["ClearwayContract"]),
        // For an executable of one's own on the runtime: jemalloc with the workers' options.
        .library(name: "ClearwayAllocator", targets: ["ClearwayAllocator"]),
        .executable(name: "clearway", targets: ["ClearwayCLI"]),
        .executable(name: "clearway-bench", targets: ["ClearwayBench"]),
        .executable(name: "clearway-test-worker", targets: ["ClearwayTestWorker"]),
        .executable(name: "clearway-chaos", targets: ["ClearwayChaos"]),
        .executable(name: "enricher", targets: ["Enricher"]),
        .executable(name: "pga-router", targets: ["PGARouter"]),
        .executable(name: "aggregator", targets: ["Aggregator"]),
        .executable(name: "structuring", targets: ["Structuring"]),
        .executable(name: "manifest-builder", targets: ["ManifestBuilder"]),
        .executable(name: "filer-sim", targets: ["FilerSim"]),
        .executable(name: "erp-writeback", targets: ["ErpWriteback"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // The one C entry point: librdkafka 2.8 as built by scripts/bootstrap (found via pkg-config).
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka"),
        // A small Kafka client over librdkafka; the only module that imports CRdKafka.
        .target(
            name: "ClearwayKafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The worker runtime: consume → handle → publish with exactly-once effect, dead letters,
        // retries, lifecycle, health, metrics and declared topics.
        .target(
            name: "ClearwayRuntime",
            dependencies: [
                "ClearwayKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The customs rules: pure, no Kafka, no network.
        .target(
            name: "ClearwayDomain",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Resources")]
        ),
        // The topic contract: one file per topic with its declaration (name, key, partitions) and
        // its wire types; what the workers write and the fleet's tools read.
        .target(name: "ClearwayContract", dependencies: ["ClearwayDomain", "ClearwayRuntime"]),
        // The workers' handlers: the domain rules on the runtime, one folder per worker.
        .target(
            name: "ClearwayWorkers",
            dependencies: [
                "ClearwayContract", "ClearwayDomain", "ClearwayRuntime", "ClearwayKafka",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // jemalloc as the worker executables' allocator, with the options they run with
        // (allocator.c says why); Debian's libjemalloc-dev, which scripts/bootstrap installs.
        .target(name: "ClearwayAllocator", linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]),
        // One executable per worker.
        .executableTarget(name: "Enricher", dependencies: ["ClearwayWorkers", "ClearwayRuntime", "ClearwayAllocator"]),
        .executableTarget(
            name: "Aggregator", dependencies: ["ClearwayWorkers", "ClearwayRuntime", "ClearwayAllocator"]),
        .executableTarget(
            name: "Structuring", dependencies: ["ClearwayWorkers", "ClearwayRuntime", "ClearwayAllocator"]),
        .executableTarget(
            name: "ManifestBuilder", dependencies: ["ClearwayWorkers", "ClearwayRuntime", "ClearwayAllocator"]),
        .executableTarget(
            name: "FilerSim", dependencies: ["ClearwayWorkers", "ClearwayRuntime", "ClearwayAllocator"]),
        // The only worker that links the ERP adapters.
        .executableTarget(
            name: "ErpWriteback",
            dependencies: [
                "ClearwayWorkers", "ClearwayRuntime", "ClearwayAllocator", "ClearwayERP", "ClearwayContract",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "PGARouter",
            dependencies: [
                "ClearwayWorkers", "ClearwayRuntime", "ClearwayAllocator",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The ERP adapters (NetSuite, Business Central, signed webhook) and their HTTP client:
        // linked by the erp-writeback and the CLI only, no other worker.
        .target(
            name: "ClearwayERP",
            dependencies: [
                "ClearwayContract", "ClearwayDomain",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The ERP simulators `clearway erp-sim` serves: NetSuite, Business Central and a webhook
        // receiver, with a ledger of side effects and fault injection.
        .target(
            name: "ClearwayERPSim",
            dependencies: [
                "ClearwayContract", "ClearwayDomain",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The fleet as a whole: the sample-data generator and the report read from the topics.
        .target(
            name: "ClearwayFleet",
            dependencies: [
                "ClearwayContract", "ClearwayDomain", "ClearwayKafka", "ClearwayRuntime",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The `clearway` command-line tool.
        .executableTarget(
            name: "ClearwayCLI",
            dependencies: [
                "ClearwayContract",
                "ClearwayERP",
                "ClearwayERPSim",
                "ClearwayDomain",
                "ClearwayFleet",
                "ClearwayKafka",
                "ClearwayRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // A small worker the runtime's process-level tests start, kill and stop.
        .executableTarget(
            name: "ClearwayTestWorker",
            dependencies: ["ClearwayRuntime", "ClearwayTestSupport", "ClearwayAllocator"],
            path: "Tests/ClearwayTestWorker"
        ),
        // The whole fleet under faults (scripts/chaos) and at a steady rate (scripts/soak).
        .executableTarget(
            name: "ClearwayChaos",
            dependencies: [
                "ClearwayKafka", "ClearwayRuntime", "ClearwayContract", "ClearwayDomain", "ClearwayFleet",
                "ClearwayERPSim", "ClearwayTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ClearwayChaos"
        ),
        // The benchmarks (scripts/bench), beside the package's product.
        .executableTarget(
            name: "ClearwayBench",
            dependencies: [
                "ClearwayKafka", "ClearwayRuntime", "ClearwayContract", "ClearwayWorkers", "ClearwayDomain",
                "ClearwayFleet", "ClearwayERP", "ClearwayERPSim",
                "ClearwayTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/ClearwayBench"
        ),
        // Helpers the test targets share: the local broker, time bounds, probes.
        .target(
            name: "ClearwayTestSupport",
            dependencies: ["ClearwayKafka", "ClearwayRuntime", .product(name: "Logging", package: "swift-log")],
            path: "Tests/ClearwayTestSupport"
        ),
        .testTarget(
            name: "ClearwayKafkaTests",
            dependencies: ["ClearwayKafka", "ClearwayTestSupport"]
        ),
        .testTarget(
            name: "ClearwayRuntimeTests",
            dependencies: [
                "ClearwayRuntime", "ClearwayKafka", "ClearwayTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ClearwayWorkersTests",
            dependencies: [
                "ClearwayContract", "ClearwayWorkers", "ClearwayDomain", "ClearwayRuntime", "ClearwayKafka",
                "ClearwayTestSupport",
            ]
        ),
        .testTarget(
            name: "ClearwayFleetTests",
            dependencies: [
                "ClearwayFleet", "ClearwayContract", "ClearwayWorkers", "ClearwayDomain", "ClearwayRuntime",
                "ClearwayKafka", "ClearwayTestSupport",
            ]
        ),
        .testTarget(
            name: "ClearwayERPTests",
            dependencies: [
                "ClearwayERP", "ClearwayERPSim", "ClearwayContract", "ClearwayDomain", "ClearwayTestSupport",
                "ClearwayFleet", "ClearwayKafka", "ClearwayRuntime",
                .product(name: "Crypto", package: "swift-crypto"),
                // Raw requests to the simulator: its admin endpoints, a bad signature.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "ClearwayContractTests",
            dependencies: ["ClearwayContract", "ClearwayDomain", "ClearwayRuntime", "ClearwayTestSupport"]
        ),
        .testTarget(
            name: "ClearwayDomainTests",
            dependencies: [
                "ClearwayDomain",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
