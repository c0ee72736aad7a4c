import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

extension EnricherHandler {
    /// The definition from the environment: the consignee key secret (required), from
    /// `CLEARWAY_CONSIGNEE_SECRET` or the file `CLEARWAY_CONSIGNEE_SECRET_FILE` names; the built-in
    /// development key only with `CLEARWAY_DEVELOPMENT_RUN=true`. `CLEARWAY_WAREHOUSES` (a
    /// warehouses file; default the shipped example).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        let secret = try consigneeKeySecret(environment: environment)
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

    /// The consignee key secret from `CLEARWAY_CONSIGNEE_SECRET` or `CLEARWAY_CONSIGNEE_SECRET_FILE`
    /// (one of them, not both). Errors name the variable and never show the secret.
    static func consigneeKeySecret(environment: [String: String]) throws -> ConsigneeKeySecret {
        let name: String
        let text: String
        switch (environment["CLEARWAY_CONSIGNEE_SECRET"], environment["CLEARWAY_CONSIGNEE_SECRET_FILE"]) {
        case (.some, .some):
            throw ConfigurationError(
                "CLEARWAY_CONSIGNEE_SECRET and CLEARWAY_CONSIGNEE_SECRET_FILE are both set: give one of them")
        case (.some(let value), nil):
            (name, text) = ("CLEARWAY_CONSIGNEE_SECRET", value)
        case (nil, .some(let path)):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("CLEARWAY_CONSIGNEE_SECRET_FILE=\(path): the file cannot be read")
            }
            (name, text) = (
                "CLEARWAY_CONSIGNEE_SECRET_FILE",
                String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            )
        case (nil, nil):
            (name, text) = ("CLEARWAY_CONSIGNEE_SECRET", "")
        }
        guard !text.isEmpty else {
            throw ConfigurationError(
                "\(name) is not set: give every enricher instance the same secret of at least 16 bytes (it keys the consignee hashes), e.g. made with `openssl rand -hex 32`; CLEARWAY_CONSIGNEE_SECRET_FILE reads it from a file"
            )
        }
        let secret: ConsigneeKeySecret
        do {
            secret = try ConsigneeKeySecret(text: text)
        } catch let error as DomainError {
            throw ConfigurationError("\(name): \(error.message)")
        }
        if secret.isDevelopmentKey && environment["CLEARWAY_DEVELOPMENT_RUN"] != "true" {
            throw ConfigurationError(
                "\(name) is the built-in development key, which is in the source code, so its consignee hashes protect nothing; generate a real secret (e.g. `openssl rand -hex 32`) and give every enricher instance the same one, or set CLEARWAY_DEVELOPMENT_RUN=true if this is a development run"
            )
        }
        return secret
    }
}
