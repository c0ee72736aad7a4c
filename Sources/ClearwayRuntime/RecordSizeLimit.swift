import ClearwayKafka
import Foundation

/// The largest record the worker's producer can write: librdkafka refuses anything larger
/// (`MSG_SIZE_TOO_LARGE`) when it is handed over, however often it is tried. Outputs are checked
/// against it before any of a record's outputs is sent, so that an input whose outputs can never
/// be written goes to the DLQ whole (none of its outputs half-written) and its partition goes on.
struct RecordSizeLimit: Sendable {
    /// librdkafka's `message.max.bytes`: its default, or the worker's
    /// `CLEARWAY_KAFKA_MESSAGE_MAX_BYTES`.
    let bytes: Int

    /// Room kept for what the runtime adds to every output (the CloudEvents headers, a
    /// `traceparent`: about 300 bytes) and the record's framing (under 64 bytes).
    static let reserve = 1_024
    /// The DLQ class of an input whose outputs can never be written.
    static let errorClass = "output-too-large"
    /// The DLQ class of an input whose state change could never reach the changelog.
    static let stateErrorClass = "state-too-large"
    /// librdkafka's default `message.max.bytes`.
    static let librdkafkaDefault = 1_000_000

    init(kafkaProperties: [String: String]) {
        bytes = kafkaProperties["message.max.bytes"].flatMap { Int($0) } ?? Self.librdkafkaDefault
    }

    /// The bytes of an output as written, less what the runtime adds.
    static func size(of output: OutputRecord) -> Int {
        output.value.count + (output.key?.utf8.count ?? 0) + headerBytes(output.headers)
    }

    /// An output's size as written (with the runtime's reserve), when it cannot be written.
    func oversize(_ output: OutputRecord) -> Int? {
        let size = Self.size(of: output) + Self.reserve
        return size > bytes ? size : nil
    }

    /// The first output that cannot be written, with its size.
    func firstOversized(_ outputs: [OutputRecord]) -> (output: OutputRecord, size: Int)? {
        for output in outputs {
            if let size = oversize(output) { return (output, size) }
        }
        return nil
    }

    /// Why an output cannot be written, and what to do, for the DLQ record's message.
    func refusal(of output: OutputRecord, size: Int) -> String {
        "its output to \(output.topic) would be about \(size) bytes, over the \(bytes)-byte limit of one record (message.max.bytes), so it can never be written; the input is set aside here and the partition goes on. Make the input smaller (an order: fewer lines per order), or raise CLEARWAY_KAFKA_MESSAGE_MAX_BYTES on the workers together with the topic's max.message.bytes (and the broker's message.max.bytes), then publish the input again"
    }

    /// Why a state value cannot be kept, and what to do, for the DLQ record's message.
    func refusal(ofState key: String, size: Int) -> String {
        "it would keep a state value of \(size) bytes (\(key.prefix(80))), over the \(bytes)-byte limit of one changelog record (message.max.bytes), so it could never be committed; the input is set aside here and the partition goes on. Make the input smaller, or raise CLEARWAY_KAFKA_MESSAGE_MAX_BYTES together with the changelog topic's max.message.bytes, then publish the input again"
    }

    /// Whether a record of this key, value and headers fits.
    func fits(key: Data?, value: Data, headers: [KafkaHeader]) -> Bool {
        value.count + (key?.count ?? 0) + Self.headerBytes(headers) + 64 <= bytes
    }

    /// Headers as written: names, values and a few bytes of lengths each.
    static func headerBytes(_ headers: [KafkaHeader]) -> Int {
        headers.reduce(0) { $0 + $1.name.utf8.count + ($1.bytes?.count ?? 0) + 8 }
    }
}
