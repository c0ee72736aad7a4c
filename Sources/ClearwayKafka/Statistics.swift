import Foundation

/// A snapshot of librdkafka's statistics (`statistics.interval.ms`), reduced to what Clearway
/// reads: per-partition consumer lag and offsets. `json` keeps the whole document.
public struct KafkaStatistics: Sendable {
    /// Per assigned partition: how far the committed position is behind the high watermark.
    public var consumerLag: [TopicPartition: Int64]
    /// Per partition: the high watermark the broker last reported.
    public var highWatermark: [TopicPartition: Int64]
    /// The statistics document as librdkafka wrote it.
    public var json: Data

    private struct Document: Decodable {
        struct Topic: Decodable { var partitions: [String: Partition] }
        struct Partition: Decodable {
            var partition: Int32
            var consumer_lag: Int64?
            var hi_offset: Int64?
        }
        var topics: [String: Topic]?
    }

    /// Reads librdkafka's statistics JSON.
    public init(json: Data) throws {
        let document = try JSONDecoder().decode(Document.self, from: json)
        var lag: [TopicPartition: Int64] = [:]
        var high: [TopicPartition: Int64] = [:]
        for (topic, entry) in document.topics ?? [:] {
            for partition in entry.partitions.values where partition.partition >= 0 {
                let key = TopicPartition(topic: topic, partition: partition.partition)
                if let value = partition.consumer_lag, value >= 0 { lag[key] = value }
                if let value = partition.hi_offset, value >= 0 { high[key] = value }
            }
        }
        self.consumerLag = lag
        self.highWatermark = high
        self.json = json
    }
}
