import ClearwayDomain
import ClearwayRuntime
import Foundation

extension InputRecord {
    /// The record's value as a `T`, a record of `topic`. Refused (`RecordRejected`) as
    /// `schema-invalid`, saying what is wrong and where, or as `duplicate-key` when it gives a
    /// field twice (`DuplicateKeys`: JSON readers disagree on which one counts), or when a value
    /// is out of its range (`WireValues`).
    func decoded<T: Decodable>(_ type: T.Type, topic: String, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        let decoded: T
        do {
            decoded = try decoder.decode(T.self, from: value)
        } catch {
            throw RecordRejected("schema-invalid", "not a \(topic) record: \(DomainError.explain(error))")
        }
        if let problem = DuplicateKeys.problem(in: value, what: "the \(topic) record") {
            throw RecordRejected(DuplicateKeys.first(in: value) == nil ? "schema-invalid" : "duplicate-key", problem)
        }
        if let problem = WireValues.problem(in: value) {
            throw RecordRejected("schema-invalid", "the \(topic) record's \(problem)")
        }
        return decoded
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

extension JSONEncoder {
    /// The workers' encoder for records and state: sorted keys, slashes as they are (the same
    /// value always gives the same bytes).
    static func sortedKeys() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
