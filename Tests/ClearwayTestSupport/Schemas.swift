import Foundation

/// Checks records against the JSON Schemas in `schemas/` with a real validator (the Python
/// `jsonschema` package, through `scripts/validate-json`).
public enum Schemas {
    /// The repository's root (this file is at Tests/ClearwayTestSupport/).
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The problems found in `values` against schema `name` (e.g. `orders.enriched.v1`): one line
    /// per problem, naming the record's line and the path; empty when every record is valid.
    public static func problems(_ values: [Data], against name: String) throws -> [String] {
        let file = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("records-\(UUID()).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        var lines = Data()
        for value in values {
            // One document per line: re-serialize so a record's own line breaks do not split it.
            let object = try JSONSerialization.jsonObject(with: value, options: [.fragmentsAllowed])
            lines += try JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed]) + Data("\n".utf8)
        }
        try lines.write(to: file)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("scripts/validate-json").path, name, file.path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let complaint = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        switch process.terminationStatus {
        case 0: return []
        case 1: return printed.split(separator: "\n").map(String.init)
        default:
            throw SetupFailure(description: "scripts/validate-json could not run (run scripts/bootstrap): \(complaint)")
        }
    }
}
