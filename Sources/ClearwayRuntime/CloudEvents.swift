import ClearwayKafka
import Crypto
import Foundation

/// CloudEvents binary-mode headers (CloudEvents Kafka protocol binding) and W3C trace context.
enum CloudEvents {
    static let specVersion = "1.0"

    /// A deterministic event id: the same input always yields the same id for the same output,
    /// wherever and however often it is processed. The input is identified by its own `ce_id`
    /// when it has one, else by its topic, key and bytes.
    static func id(worker: String, input: InputRecord, inputTopic: String, outputIndex: Int, outputType: String)
        -> String
    {
        var hasher = SHA256()
        hasher.update(data: Data(worker.utf8))
        hasher.update(data: Data([0]))
        if let inputID = input.headers.first(named: "ce_id") {
            hasher.update(data: Data(inputID.utf8))
        } else {
            hasher.update(data: Data(inputTopic.utf8))
            hasher.update(data: Data([0]))
            hasher.update(data: input.key ?? Data())
            hasher.update(data: Data([0]))
            hasher.update(data: input.value)
        }
        hasher.update(data: Data("\u{0}\(outputType)\u{0}\(outputIndex)".utf8))
        return hasher.finalize().prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// The headers of an output record.
    static func headers(
        id: String, type: String, source: String, time: Date, traceparent: String?, extra: [KafkaHeader]
    ) -> [KafkaHeader] {
        var headers = [
            KafkaHeader(name: "ce_id", string: id),
            KafkaHeader(name: "ce_type", string: type),
            KafkaHeader(name: "ce_source", string: source),
            KafkaHeader(name: "ce_specversion", string: specVersion),
            KafkaHeader(name: "ce_time", string: timestamp(time)),
            KafkaHeader(name: "content-type", string: "application/json"),
        ]
        if let traceparent { headers.append(KafkaHeader(name: "traceparent", string: traceparent)) }
        return headers + extra
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
