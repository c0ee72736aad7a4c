import Foundation

/// A record header: a name and optional bytes. Kafka allows repeated names; order is kept.
///
/// The bytes are held as `[UInt8]`, not `Data`: a worker writes several headers on every record,
/// and `Data` costs two allocations past 14 bytes and a run-time exclusivity check on every read
/// (scripts/bench runtime, perf: about 3 % of a pass-through worker's CPU).
public struct KafkaHeader: Sendable, Hashable {
    /// The header's name.
    public var name: String
    /// The header's value; `nil` is a header with a null value.
    public var bytes: [UInt8]?

    /// The header's value as `Data`; `nil` is a header with a null value.
    public var value: Data? {
        get { bytes.map { Data($0) } }
        set { bytes = newValue.map { [UInt8]($0) } }
    }

    /// Makes a header from bytes.
    public init(name: String, bytes: [UInt8]?) {
        self.name = name
        self.bytes = bytes
    }

    /// Makes a header from bytes.
    public init(name: String, value: Data?) {
        self.init(name: name, bytes: value.map { [UInt8]($0) })
    }

    /// Makes a header from a UTF-8 string.
    public init(name: String, string: String) {
        self.init(name: name, bytes: Array(string.utf8))
    }

    /// The value as UTF-8 text, if it is valid UTF-8.
    public var stringValue: String? { bytes.flatMap { String(validating: $0, as: UTF8.self) } }
}

extension Array where Element == KafkaHeader {
    /// The value of the first header with this name, as UTF-8 text.
    public func first(named name: String) -> String? {
        first { $0.name == name }?.stringValue
    }
}

/// A record to produce.
public struct ProducerRecord: Sendable {
    /// The topic to write to.
    public var topic: String
    /// The partition, or `nil` to let the partitioner choose from the key.
    public var partition: Int32?
    /// The key; records with equal keys go to the same partition.
    public var key: Data?
    /// The value.
    public var value: Data
    /// Headers, in order.
    public var headers: [KafkaHeader]
    /// The record's timestamp, or `nil` for the time of sending.
    public var timestamp: Date?
    /// Sent with a null value (`value` is ignored): on a compacted topic, the key's deletion.
    public var isTombstone = false

    /// A tombstone: a record with a key and a null value, which deletes the key from a compacted
    /// topic (an empty value is a value, not a deletion).
    public static func tombstone(
        topic: String, partition: Int32? = nil, key: Data, headers: [KafkaHeader] = []
    ) -> ProducerRecord {
        var record = ProducerRecord(topic: topic, partition: partition, key: key, value: Data(), headers: headers)
        record.isTombstone = true
        return record
    }

    /// Makes a record.
    public init(
        topic: String, partition: Int32? = nil, key: Data? = nil, value: Data,
        headers: [KafkaHeader] = [], timestamp: Date? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// Makes a record with a UTF-8 key.
    public init(
        topic: String, partition: Int32? = nil, key: String, value: Data, headers: [KafkaHeader] = [],
        timestamp: Date? = nil
    ) {
        self.init(
            topic: topic, partition: partition, key: Data(key.utf8), value: value,
            headers: headers, timestamp: timestamp)
    }
}

/// A record read by a consumer.
public struct ConsumerRecord: Sendable {
    /// The topic it was read from.
    public var topic: String
    /// The partition it was read from.
    public var partition: Int32
    /// Its offset in the partition.
    public var offset: Int64
    /// The key, if any.
    public var key: Data?
    /// The value (empty for a null value; see `isTombstone`).
    public var value: Data
    /// `true` when the value is null: a tombstone on a compacted topic.
    public var isTombstone: Bool
    /// Headers, in order.
    public var headers: [KafkaHeader]
    /// The record's timestamp, if the broker gave one.
    public var timestamp: Date?

    /// The key as UTF-8 text.
    public var keyString: String? { key.flatMap { String(data: $0, encoding: .utf8) } }

    /// Where the consumer should resume after this record: its offset plus one.
    public var nextOffset: TopicPartitionOffset {
        TopicPartitionOffset(topic: topic, partition: partition, offset: offset + 1)
    }
}

/// A topic and a partition.
public struct TopicPartition: Sendable, Hashable, CustomStringConvertible, Comparable {
    /// The topic's name.
    public var topic: String
    /// The partition's number.
    public var partition: Int32

    /// Makes a topic-partition.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    /// The partition and the topic's length, not the topic's bytes: dictionaries keyed by
    /// partition (offsets to commit, retries) are looked up for every record, and a client reads
    /// few topics, so hashing the name bought nothing but time. Equal values still hash equal.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(partition)
        hasher.combine(topic.utf8.count)
    }

    public static func < (lhs: TopicPartition, rhs: TopicPartition) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// A topic, a partition and an offset (for commits, seeks and positions: the *next* offset to read).
public struct TopicPartitionOffset: Sendable, Hashable, CustomStringConvertible {
    /// The topic's name.
    public var topic: String
    /// The partition's number.
    public var partition: Int32
    /// The offset, or one of the logical offsets below.
    public var offset: Int64

    /// No offset is known (nothing committed, no position yet).
    public static let invalidOffset: Int64 = -1001
    /// The start of the partition.
    public static let beginning: Int64 = -2
    /// The end of the partition.
    public static let end: Int64 = -1

    /// Makes a topic-partition-offset.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    /// The topic and partition.
    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    public var description: String { "\(topic)[\(partition)]@\(offset)" }
}

/// What librdkafka reported for one produced record.
public struct DeliveryReport: Sendable {
    /// The id `KafkaProducer.send` returned for the record.
    public var id: UInt64
    /// The topic.
    public var topic: String
    /// The partition it was written to (or meant for).
    public var partition: Int32
    /// Its offset, when written.
    public var offset: Int64
    /// Why it was not written, or `nil` when it was.
    public var error: KafkaError?
}

extension Data {
    /// The UTF-8 bytes of a string, copied straight from its storage (the generic
    /// `Data(string.utf8)` walks the string and costs microseconds on a hot path).
    public init(utf8 string: String) {
        var string = string
        self = string.withUTF8 { Data($0) }
    }
}
