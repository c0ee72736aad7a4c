// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Clearway",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ClearwayKafka", targets: ["ClearwayKafka"]),
        .executable(name: "clearway-bench", targets: ["ClearwayBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
    ],
    swiftLanguageModes: [.v6]
)
