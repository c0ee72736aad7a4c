import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

extension EnricherHandler {
    /// The definition from the environment: `CLEARWAY_CONSIGNEE_SECRET` (required) and
    /// `CLEARWAY_WAREHOUSES` (a warehouses file; default the shipped example).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        guard let text = environment["CLEARWAY_CONSIGNEE_SECRET"], !text.isEmpty else {
            throw ConfigurationError(
                "CLEARWAY_CONSIGNEE_SECRET is not set: give every enricher instance the same secret of at least 16 bytes (it keys the consignee hashes)"
            )
        }
        let secret: ConsigneeKeySecret
        do {
            secret = try ConsigneeKeySecret(text: text)
        } catch let error as DomainError {
            throw ConfigurationError("CLEARWAY_CONSIGNEE_SECRET: \(error.message)")
        }
        var warehouses = try WarehouseDirectory.shipped()
        if let path = environment["CLEARWAY_WAREHOUSES"], !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("CLEARWAY_WAREHOUSES: cannot read \(path)")
            }
            do {
                warehouses = try WarehouseDirectory.load(data, ports: PortDirectory.shipped())
            } catch let error as DomainError {
                throw ConfigurationError("CLEARWAY_WAREHOUSES (\(path)): \(error.message)")
            }
        }
        var retention = Duration.seconds(30 * 86_400)
        if let text = environment["CLEARWAY_ENRICHER_RETENTION_DAYS"] {
            guard let days = Int(text), days >= 1 else {
                throw ConfigurationError("CLEARWAY_ENRICHER_RETENTION_DAYS must be a whole number of days, 1 or more")
            }
            retention = .seconds(days * 86_400)
        }
        var maximumLines = defaultMaximumLines
        if let text = environment["CLEARWAY_MAX_ORDER_LINES"] {
            guard let lines = Int(text), lines >= 1 else {
                throw ConfigurationError("CLEARWAY_MAX_ORDER_LINES must be a whole number of lines, 1 or more")
            }
            maximumLines = lines
        }
        return definition(warehouses: warehouses, secret: secret, retention: retention, maximumLines: maximumLines)
    }
}
