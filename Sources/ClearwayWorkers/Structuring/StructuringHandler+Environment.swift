import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

extension StructuringHandler {
    /// From `CLEARWAY_STRUCTURING_RETENTION_DAYS` (7).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        var retention = 7
        if let text = environment["CLEARWAY_STRUCTURING_RETENTION_DAYS"] {
            guard let days = Int(text), days >= 1 else {
                throw ConfigurationError(
                    "CLEARWAY_STRUCTURING_RETENTION_DAYS must be a whole number of days, 1 or more")
            }
            retention = days
        }
        return definition(retentionDays: retention)
    }
}
