import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

extension FilerSimHandler {
    /// From `CLEARWAY_FILER_CODE` (`CLW`), `CLEARWAY_FILER_SEED` (2026),
    /// `CLEARWAY_FILER_REJECT_RATE` (0.05), `CLEARWAY_FILER_EXAM_RATE` (0.05),
    /// `CLEARWAY_FILER_HOLD_RATE` (0.03), `CLEARWAY_FILER_PGA_DOCUMENTS_RATE` (0.1) and
    /// `CLEARWAY_FILER_DELAY_MS` (2000: dispositions come after one to two of these).
    public static func definition(environment: [String: String]) throws -> WorkerDefinition {
        let filer: FilerCode
        do {
            filer = try FilerCode(environment["CLEARWAY_FILER_CODE"] ?? "CLW")
        } catch let error as DomainError {
            throw ConfigurationError("CLEARWAY_FILER_CODE: \(error.message)")
        }
        func rate(_ name: String, _ value: Double) throws -> Double {
            guard let text = environment[name] else { return value }
            guard let rate = Double(text), (0...1).contains(rate) else {
                throw ConfigurationError("\(name) must be a share between 0 and 1, not \"\(text)\"")
            }
            return rate
        }
        var seed: UInt64 = 2026
        if let text = environment["CLEARWAY_FILER_SEED"] {
            guard let value = UInt64(text) else {
                throw ConfigurationError("CLEARWAY_FILER_SEED must be a whole number")
            }
            seed = value
        }
        var delay = 2000
        if let text = environment["CLEARWAY_FILER_DELAY_MS"] {
            guard let value = Int(text), value >= 0 else {
                throw ConfigurationError("CLEARWAY_FILER_DELAY_MS must be a whole number of milliseconds")
            }
            delay = value
        }
        let customs = SimulatedCustoms(
            filer: filer, seed: seed, rejectRate: try rate("CLEARWAY_FILER_REJECT_RATE", 0.05),
            examRate: try rate("CLEARWAY_FILER_EXAM_RATE", 0.05), holdRate: try rate("CLEARWAY_FILER_HOLD_RATE", 0.03),
            pgaDocumentsRate: try rate("CLEARWAY_FILER_PGA_DOCUMENTS_RATE", 0.1), delay: .milliseconds(delay))
        return definition(FilerSimHandler(customs: customs))
    }
}
