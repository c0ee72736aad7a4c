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
        String(
            decoding: idBytes(
                worker: worker, input: input, inputTopic: inputTopic, outputIndex: outputIndex,
                outputType: outputType),
            as: UTF8.self)
    }

    /// `id(worker:input:inputTopic:outputIndex:outputType:)` as the bytes of its `ce_id` header.
    static func idBytes(worker: String, input: InputRecord, inputTopic: String, outputIndex: Int, outputType: String)
        -> [UInt8]
    {
        guard let inputID = input.headers.first(named: "ce_id") else {
            return idBytes(
                head: idHead(worker: worker, inputTopic: inputTopic), input: input,
                tail: idTail(outputIndex: outputIndex, outputType: outputType))
        }
        return idBytes(worker: worker, outputIndex: outputIndex, outputType: outputType) { hasher in
            hasher.update(text: inputID)
        }
    }

    /// The id of an output of an input without a `ce_id`, with the bytes hashed before and after
    /// the input's key and value given (`idHead`, `idTail`), so a caller can build them once:
    /// hashing the worker, topic and type from their strings for every record cost about as
    /// much as hashing the record.
    static func id(head: [UInt8], input: InputRecord, tail: [UInt8]) -> String {
        String(decoding: idBytes(head: head, input: input, tail: tail), as: UTF8.self)
    }

    /// `id(head:input:tail:)` as the bytes of its `ce_id` header: written straight from the
    /// digest, where the id's `String` would be built and then copied into the header.
    static func idBytes(head: [UInt8], input: InputRecord, tail: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        head.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        if let key = input.key { hasher.update(bytes: key) }
        withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        hasher.update(bytes: input.value)
        tail.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return idText(hasher.finalize())
    }

    /// What an id of an input without a `ce_id` hashes before the input's key: the worker and
    /// the input topic, each followed by a zero byte.
    static func idHead(worker: String, inputTopic: String) -> [UInt8] {
        Array(worker.utf8) + [0] + Array(inputTopic.utf8) + [0]
    }

    /// What an id hashes after the input: the output's type and its index among the outputs,
    /// each after a zero byte.
    static func idTail(outputIndex: Int, outputType: String) -> [UInt8] {
        [0] + Array(outputType.utf8) + [0] + Array(String(outputIndex).utf8)
    }

    /// The `ce_id` bytes of an output of a timer firing: from the partition, the timer and its due
    /// time.
    static func idBytes(
        worker: String, timer: String, partition: Int32, due: Int64, outputIndex: Int, outputType: String
    ) -> [UInt8] {
        idBytes(worker: worker, outputIndex: outputIndex, outputType: outputType) { hasher in
            hasher.update(text: "timer\u{0}\(partition)\u{0}\(timer)\u{0}\(due)")
        }
    }

    /// The `ce_id` bytes of an output whose handler named what it derives from
    /// (`OutputRecord.idSeed`).
    static func idBytes(worker: String, seed: String, outputType: String) -> [UInt8] {
        idBytes(worker: worker, outputIndex: 0, outputType: outputType) { hasher in
            hasher.update(text: "seed\u{0}\(seed)")
        }
    }

    private static func idBytes(
        worker: String, outputIndex: Int, outputType: String, identity: (inout SHA256) -> Void
    ) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(text: worker)
        hasher.update(text: "\u{0}")
        identity(&hasher)
        hasher.update(text: "\u{0}")
        hasher.update(text: outputType)
        hasher.update(text: "\u{0}")
        hasher.update(text: String(outputIndex))
        return idText(hasher.finalize())
    }

    /// The id text of a digest, as its UTF-8 bytes: the digest's first 16 bytes in lower-case hex.
    private static func idText(_ digest: SHA256Digest) -> [UInt8] {
        let length = 32
        return [UInt8](unsafeUninitializedCapacity: length) { text, count in
            digest.withUnsafeBytes { bytes in
                for index in 0..<(length / 2) {
                    text[2 * index] = hexDigit(bytes[index] >> 4)
                    text[2 * index + 1] = hexDigit(bytes[index] & 0x0f)
                }
            }
            count = length
        }
    }

    /// RFC 3339 in UTC with milliseconds (`2026-11-25T12:00:00.123Z`), without Foundation's
    /// formatters, which cost tens of microseconds a call.
    static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text = ""
        text.reserveCapacity(24)
        func append(_ value: Int, width: Int) {
            let digits = String(value)
            text += String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        append(Int(parts.tm_year) + 1900, width: 4)
        text += "-"
        append(Int(parts.tm_mon) + 1, width: 2)
        text += "-"
        append(Int(parts.tm_mday), width: 2)
        text += "T"
        append(Int(parts.tm_hour), width: 2)
        text += ":"
        append(Int(parts.tm_min), width: 2)
        text += ":"
        append(Int(parts.tm_sec), width: 2)
        text += "."
        append(Int(milliseconds % 1000), width: 3)
        text += "Z"
        return text
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}

extension SHA256 {
    /// Hashes a string's UTF-8 bytes straight from its storage (no `Data` on the way).
    fileprivate mutating func update(text: String) {
        var text = text
        text.withUTF8 { update(bufferPointer: UnsafeRawBufferPointer($0)) }
    }

    /// Hashes bytes in one call (`update(data:)` goes through `DataProtocol`'s regions).
    fileprivate mutating func update(bytes: Data) {
        bytes.withUnsafeBytes { update(bufferPointer: $0) }
    }
}

extension WorkerConfiguration {
    /// The `ce_time` text of an instant (for tests and tools).
    public static func cloudEventsTime(_ date: Date) -> String { CloudEvents.timestamp(date) }
}

/// The parts of output headers that repeat: built once (source, spec version, content type), once
/// per event type and topic, and once per millisecond (`ce_time`). CloudEvents Kafka binding.
struct HeaderCache {
    let constant: [KafkaHeader]
    private let prefix: String
    private var types: [String: KafkaHeader] = [:]
    private var topics: [String: String] = [:]
    // The last of each, asked again for nearly every record: a comparison, where the dictionary
    // hashes the string every time.
    private var lastType: (type: String, header: KafkaHeader)?
    private var lastTopic: (name: String, topic: String)?
    private var lastTime: (milliseconds: Int64, header: KafkaHeader)?

    init(source: String, prefix: String) {
        constant = [
            KafkaHeader(name: "ce_source", string: source),
            KafkaHeader(name: "ce_specversion", string: CloudEvents.specVersion),
            KafkaHeader(name: "content-type", string: "application/json"),
        ]
        self.prefix = prefix
    }

    mutating func type(_ type: String) -> KafkaHeader {
        if let lastType, lastType.type == type { return lastType.header }
        let header = types[type] ?? KafkaHeader(name: "ce_type", string: type)
        types[type] = header
        lastType = (type, header)
        return header
    }

    mutating func topic(_ name: String) -> String {
        if let lastTopic, lastTopic.name == name { return lastTopic.topic }
        let topic = topics[name] ?? prefix + name
        topics[name] = topic
        lastTopic = (name, topic)
        return topic
    }

    mutating func time(_ date: Date) -> KafkaHeader {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        if let lastTime, lastTime.milliseconds == milliseconds { return lastTime.header }
        let header = KafkaHeader(name: "ce_time", string: CloudEvents.timestamp(date))
        lastTime = (milliseconds, header)
        return header
    }
}
