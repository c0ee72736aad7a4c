import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

extension AggregatorHandler {
    /// From `CLEARWAY_POLICY`, `CLEARWAY_OVERFLOW` (`hold`, `formal`, `reroute`) and
    /// `CLEARWAY_AGGREGATOR_RETENTION_DAYS`.
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        let timeline: PolicyTimeline
        do {
            timeline = try PolicyTimeline.named(environment["CLEARWAY_POLICY"] ?? "us")
        } catch let error as DomainError {
            throw ConfigurationError("CLEARWAY_POLICY: \(error.message)")
        }
        var overflow = OverflowPolicy.hold
        if let text = environment["CLEARWAY_OVERFLOW"] {
            guard let policy = OverflowPolicy(rawValue: text) else {
                throw ConfigurationError(
                    "CLEARWAY_OVERFLOW must be \(OverflowPolicy.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\""
                )
            }
            overflow = policy
        }
        var retention = 7
        if let text = environment["CLEARWAY_AGGREGATOR_RETENTION_DAYS"] {
            guard let days = Int(text), days >= 1 else {
                throw ConfigurationError("CLEARWAY_AGGREGATOR_RETENTION_DAYS must be a whole number of days, 1 or more")
            }
            retention = days
        }
        return definition(
            timeline: timeline, overflow: overflow, ports: try PortDirectory.shipped(), retentionDays: retention)
    }
}
