import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Dispatch
import Foundation
import Logging
import Synchronization

/// Where the pga-router's reference data comes from: files (reloaded when they change or on
/// SIGHUP) or the shipped excerpts.
public struct ScreeningSources: Sendable {
    public var htsReference: String?
    public var pgaFlags: String?
    public var section301: String?
    public var section232: String?
    /// A shipped timeline name or a file.
    public var policy: String
    public var mixedOrders: MixedOrderPolicy

    public init(
        htsReference: String? = nil, pgaFlags: String? = nil, section301: String? = nil, section232: String? = nil,
        policy: String = "us", mixedOrders: MixedOrderPolicy = .routeWhole
    ) {
        self.htsReference = htsReference
        self.pgaFlags = pgaFlags
        self.section301 = section301
        self.section232 = section232
        self.policy = policy
        self.mixedOrders = mixedOrders
    }

    /// From `CLEARWAY_HTS_REFERENCE`, `CLEARWAY_PGA_FLAGS`, `CLEARWAY_SECTION301`,
    /// `CLEARWAY_SECTION232`, `CLEARWAY_POLICY` and `CLEARWAY_MIXED_ORDERS`.
    public static func fromEnvironment(_ environment: [String: String]) throws -> ScreeningSources {
        func path(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var mixed = MixedOrderPolicy.routeWhole
        if let text = environment["CLEARWAY_MIXED_ORDERS"] {
            guard let policy = MixedOrderPolicy(rawValue: text) else {
                throw ConfigurationError(
                    "CLEARWAY_MIXED_ORDERS must be \(MixedOrderPolicy.allCases.map(\.rawValue).joined(separator: " or ")), not \"\(text)\""
                )
            }
            mixed = policy
        }
        return ScreeningSources(
            htsReference: path("CLEARWAY_HTS_REFERENCE"), pgaFlags: path("CLEARWAY_PGA_FLAGS"),
            section301: path("CLEARWAY_SECTION301"), section232: path("CLEARWAY_SECTION232"),
            policy: path("CLEARWAY_POLICY") ?? "us", mixedOrders: mixed)
    }

    var files: [String] { [htsReference, pgaFlags, section301, section232, policy].compactMap { $0 } }

    /// Reads every source; throws `ConfigurationError` naming the file at fault.
    public func load() throws -> OrderScreening {
        func read(_ path: String, _ what: String) throws -> Data {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("cannot read the \(what) file \(path)")
            }
            return data
        }
        func named<T>(_ what: String, _ body: () throws -> T) throws -> T {
            do { return try body() } catch let error as DomainError {
                throw ConfigurationError("\(what): \(error.message)")
            }
        }
        let hts = try named("HTS reference") {
            try htsReference.map {
                try HTSReference(
                    json: read($0, "HTS reference"), revision: ($0 as NSString).lastPathComponent,
                    effectiveFrom: Day(year: 2025, month: 1, day: 1))
            } ?? .shippedExcerpt()
        }
        let flags = try named("PGA flags") {
            try pgaFlags.map { try PGAFlagTable.load(read($0, "PGA flags")) } ?? .shipped()
        }
        let s301 = try named("Section 301") {
            try section301.map { try TariffActionList.load(read($0, "Section 301")) } ?? .shippedSection301()
        }
        let s232 = try named("Section 232") {
            try section232.map { try TariffActionList.load(read($0, "Section 232")) } ?? .shippedSection232()
        }
        let timeline = try named("policy (CLEARWAY_POLICY)") { try PolicyTimeline.named(policy) }
        // FNV-1a over the files' bytes: the same files give the same name on every instance.
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325
        for data in files.compactMap({ FileManager.default.contents(atPath: $0) }) {
            for byte in data {
                digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        return OrderScreening(
            screener: Screener(pgaFlags: flags, section301: s301, section232: s232, htsReference: hts),
            timeline: timeline, mixedOrders: mixedOrders,
            references:
                "hts \(hts.revision); pga \(pgaFlags.map { ($0 as NSString).lastPathComponent } ?? "shipped"); policy \(timeline.name); digest \(String(digest, radix: 16))"
        )
    }
}
