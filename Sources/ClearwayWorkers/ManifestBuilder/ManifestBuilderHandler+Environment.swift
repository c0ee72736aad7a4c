import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

extension ManifestBuilderHandler {
    /// From `CLEARWAY_POLICY`, `CLEARWAY_MANIFEST_MAX_ENTRIES` (250), `CLEARWAY_MANIFEST_CUTOFF`
    /// (`HH:MM`, port time; none), `CLEARWAY_MANIFEST_CLOSE_AFTER` (seconds; none) and
    /// `CLEARWAY_MANIFEST_RETENTION_DAYS` (7).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        let timeline: PolicyTimeline
        do {
            timeline = try PolicyTimeline.named(environment["CLEARWAY_POLICY"] ?? "us")
        } catch let error as DomainError {
            throw ConfigurationError("CLEARWAY_POLICY: \(error.message)")
        }
        func whole(_ name: String, default value: Int, minimum: Int) throws -> Int {
            guard let text = environment[name] else { return value }
            guard let number = Int(text), number >= minimum else {
                throw ConfigurationError("\(name) must be a whole number, \(minimum) or more, not \"\(text)\"")
            }
            return number
        }
        var cutoff: Int?
        if let text = environment["CLEARWAY_MANIFEST_CUTOFF"] {
            let parts = text.split(separator: ":").map { Int($0) }
            guard parts.count == 2, let hour = parts[0], let minute = parts[1], (0..<24).contains(hour),
                (0..<60).contains(minute)
            else {
                throw ConfigurationError(
                    "CLEARWAY_MANIFEST_CUTOFF must be a time of day at the port, HH:MM (e.g. 16:30), not \"\(text)\"")
            }
            cutoff = hour * 3600 + minute * 60
        }
        let closeAfter = try environment["CLEARWAY_MANIFEST_CLOSE_AFTER"].map { _ in
            Duration.seconds(try whole("CLEARWAY_MANIFEST_CLOSE_AFTER", default: 0, minimum: 1))
        }
        return definition(
            ManifestBuilderHandler(
                timeline: timeline, ports: try PortDirectory.shipped(),
                maxEntries: try whole("CLEARWAY_MANIFEST_MAX_ENTRIES", default: 250, minimum: 1), cutoff: cutoff,
                closeAfter: closeAfter,
                retentionDays: try whole("CLEARWAY_MANIFEST_RETENTION_DAYS", default: 7, minimum: 1)))
    }
}
