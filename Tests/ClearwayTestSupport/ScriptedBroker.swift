import Foundation

/// A broker of a test's own, run by `scripts/broker` from its own run directory
/// (`CLEARWAY_BROKER_DIR`), so that it can be killed and restarted without disturbing the shared
/// test broker. Durable (`start --durable`: tansu's S3 storage engine on a local S3 server, its
/// data in the run directory) or memory.
public struct ScriptedBroker: Sendable {
    /// The run directory: the broker's pid, port, log and (durable) data.
    public let directory: URL
    /// `127.0.0.1:<port>`; the same across restarts.
    public let address: String

    public var bootstrapServers: [String] { [address] }

    /// The project's `scripts/broker`, found from this file's place in the package.
    public static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/broker")

    /// Starts a broker from a new run directory under the temporary directory.
    public static func start(durable: Bool) async throws -> ScriptedBroker {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "clearway-broker-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let address = try await run(durable ? ["start", "--durable"] : ["start"], directory: directory)
        return ScriptedBroker(directory: directory, address: address)
    }

    /// Stops the broker (SIGTERM, or SIGKILL with `kill`) and starts it again on the same port
    /// with the same storage; returns when it answers a metadata request.
    public func restart(kill: Bool) async throws {
        let address = try await Self.run(kill ? ["restart", "--kill"] : ["restart"], directory: directory)
        guard address == self.address else {
            throw SetupFailure(description: "the broker came back on \(address), not \(self.address)")
        }
    }

    /// Stops the broker and its S3 server, and removes the run directory with its data.
    public func stop() async throws {
        _ = try await Self.run(["stop"], directory: directory)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `scripts/broker` with these arguments; what it printed, trimmed.
    private static func run(_ arguments: [String], directory: URL) async throws -> String {
        let process = Process()
        process.executableURL = script
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["CLEARWAY_BROKER_DIR": directory.path]) {
            _, new in new
        }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Its output is a line or two, far below a pipe's buffer: read once it has ended.
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw SetupFailure(
                description:
                    "scripts/broker \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): \(said)"
            )
        }
        return printed.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
