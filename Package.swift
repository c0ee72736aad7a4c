// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Clearway",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ClearwayKafka", targets: ["ClearwayKafka"]),
        .library(name: "ClearwayDomain", targets: ["ClearwayDomain"]),
        .executable(name: "clearway", targets: ["ClearwayCLI"]),
        .executable(name: "clearway-bench", targets: ["ClearwayBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
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
        // The customs rules: pure, no Kafka, no network.
        .target(
            name: "ClearwayDomain",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Resources")]
        ),
        // The `clearway` command-line tool.
        .executableTarget(
            name: "ClearwayCLI",
            dependencies: [
                "ClearwayDomain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ClearwayBench",
            dependencies: [
                "ClearwayKafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "ClearwayKafkaTests",
            dependencies: ["ClearwayKafka"]
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
