import CRdKafka
import Foundation
import Logging
import Synchronization

/// Something a consumer hands out, in the order it happened.
public enum KafkaConsumerEvent: Sendable {
    /// A record.
    case record(ConsumerRecord)
    /// Partitions were added to this consumer's assignment; their records follow.
    case partitionsAssigned([TopicPartition])
    /// Partitions are leaving this consumer's assignment. They stay assigned until
    /// `PartitionRevocation.acknowledge()` is called (or `revokeTimeout` passes), so the
    /// application can finish their work and commit first.
    case partitionsRevoked(PartitionRevocation)
    /// A partition was read up to its end (only with `emitEndOfPartition`); `offset` is the next
    /// offset that will be written there.
    case endOfPartition(TopicPartitionOffset)
    /// A non-fatal error librdkafka reported; the consumer goes on.
    case error(KafkaError)
}

/// Partitions being revoked, held until acknowledged.
public struct PartitionRevocation: Sendable {
    /// The partitions being taken away.
    public let partitions: [TopicPartition]
    /// `true` when the assignment was lost (session timeout, fencing): committing will fail and
    /// other members may already own these partitions.
    public let isLost: Bool
    let gate: DispatchSemaphore

    /// Lets the consumer release the partitions. Call it once the application has committed.
    public func acknowledge() {
        gate.signal()
    }
}

/// A consumer-group member over librdkafka: cooperative-sticky assignment with the revoke handed
/// to the application before the partitions go, manual offset store and commit, pause / resume,
/// seek, committed offsets, positions, group metadata for transactions, and statistics.
///
/// Read it through `events`. A dedicated queue runs librdkafka's blocking poll; commits and other
/// blocking calls run on a second one, so a commit can happen while a revoke is held.
public final class KafkaConsumer: Sendable {
    private let client: RDKafkaClient
    private let poll: PollState
    private let pollQueue: DispatchQueue
    private let blocking: BlockingQueue
    private let configuration: KafkaConsumerConfiguration
    private let logger: Logger

    /// Creates the consumer; throws `KafkaError.Code.configuration` for a bad property.
    public init(configuration: KafkaConsumerConfiguration, logger: Logger) throws {
        let poll = PollState(revokeTimeout: configuration.revokeTimeout, logger: logger)
        let context = ClientContext(logger: logger, onRebalance: { poll.rebalance($0, $1, $2) })
        self.client = try RDKafkaClient(
            type: RD_KAFKA_CONSUMER, properties: configuration.librdkafkaProperties, context: context)
        rd_kafka_poll_set_consumer(client.handle)
        self.poll = poll
        self.pollQueue = DispatchQueue(label: "clearway.kafka.consumer.poll")
        self.blocking = BlockingQueue(label: "clearway.kafka.consumer")
        self.configuration = configuration
        self.logger = logger
    }

    /// Joins the group for these topics.
    public func subscribe(topics: [String]) throws {
        try withTopicPartitionList(topics.map { TopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA) }) {
            let err = rd_kafka_subscribe(client.handle, $0)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.result(err, context: "subscribe to \(topics.joined(separator: ", "))")
            }
        }
    }

    /// Reads these partitions directly, outside any group rebalancing (offsets as given).
    public func assign(_ offsets: [TopicPartitionOffset]) throws {
        try withTopicPartitionList(offsets) {
            let err = rd_kafka_assign(client.handle, $0)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "assign") }
        }
    }

    /// The consumer's events. One reader at a time. Ends after `close()` or when the reading task
    /// is cancelled; throws when the consumer hits a fatal error.
    public var events: Events { Events(consumer: self) }

    /// The consumer's events as an `AsyncSequence`.
    public struct Events: AsyncSequence, Sendable {
        let consumer: KafkaConsumer

        public func makeAsyncIterator() -> Iterator { Iterator(consumer: consumer) }

        /// Iterates the events, fetching them from librdkafka in batches.
        public struct Iterator: AsyncIteratorProtocol {
            let consumer: KafkaConsumer
            var buffer: [KafkaConsumerEvent] = []
            var index = 0

            public mutating func next() async throws -> KafkaConsumerEvent? {
                while index == buffer.count {
                    if Task.isCancelled { return nil }
                    guard let batch = try await consumer.poll() else { return nil }
                    buffer = batch
                    index = 0
                }
                defer { index += 1 }
                return buffer[index]
            }
        }
    }

    /// One poll turn: up to `pollBatchSize` events, waiting at most 100 ms for the first; an empty
    /// array when nothing came, `nil` once the consumer is closed. For loops that must act on time
    /// as well as on events; `events` suits the rest.
    public func poll() async throws -> [KafkaConsumerEvent]? {
        let client = self.client
        let poll = self.poll
        let batchSize = configuration.pollBatchSize
        return try await withCheckedThrowingContinuation { continuation in
            pollQueue.async { poll.pollBatch(client: client, into: continuation, batchSize: batchSize) }
        }
    }

    // MARK: Offsets

    /// Marks offsets as processed, for the next commit (or auto-commit). Give the *next* offset to
    /// read, as `ConsumerRecord.nextOffset` does.
    public func store(_ offsets: [TopicPartitionOffset]) throws {
        try withTopicPartitionList(offsets) { list in
            let err = rd_kafka_offsets_store(client.handle, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.result(err, context: "store offsets \(offsets)")
            }
            _ = try [TopicPartitionOffset](list, checkErrors: true)
        }
    }

    /// Marks a record as processed.
    public func store(_ record: ConsumerRecord) throws {
        try store([record.nextOffset])
    }

    /// Commits the given offsets, or every stored offset when `offsets` is `nil`, and waits for
    /// the broker. Nothing to commit is not an error.
    public func commit(_ offsets: [TopicPartitionOffset]? = nil) async throws {
        let client = self.client
        try await blocking.run {
            let err: rd_kafka_resp_err_t
            if let offsets {
                err = withTopicPartitionList(offsets) { rd_kafka_commit(client.handle, $0, 0) }
            } else {
                err = rd_kafka_commit(client.handle, nil, 0)
            }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET else {
                throw KafkaError.result(err, context: client.explain("commit"))
            }
        }
    }

    /// The group's committed offsets for these partitions (`invalidOffset` where none).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) async throws
        -> [TopicPartitionOffset]
    {
        let client = self.client
        return try await blocking.run {
            try withTopicPartitionList(partitions) { list in
                let err = rd_kafka_committed(client.handle, list, Int32(timeout.milliseconds))
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError.result(err, context: client.explain("committed offsets"))
                }
                return try [TopicPartitionOffset](list, checkErrors: true)
            }
        }
    }

    /// The low and high watermarks the partition's leader reports now. The high watermark counts
    /// transaction markers too, so it shows when a commit or abort has been written.
    public func watermarks(_ partition: TopicPartition, timeout: Duration = .seconds(10)) async throws
        -> (low: Int64, high: Int64)
    {
        let client = self.client
        let pair: [Int64] = try await blocking.run {
            var low: Int64 = 0
            var high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(
                client.handle, partition.topic, partition.partition, &low, &high, Int32(timeout.milliseconds))
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.result(err, context: client.explain("watermarks of \(partition)"))
            }
            return [low, high]
        }
        return (pair[0], pair[1])
    }

    /// The next offset this consumer will read per partition (`invalidOffset` before the first).
    public func positions(_ partitions: [TopicPartition]) throws -> [TopicPartitionOffset] {
        try withTopicPartitionList(partitions) { list in
            let err = rd_kafka_position(client.handle, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "positions") }
            return try [TopicPartitionOffset](list)
        }
    }

    /// The partitions currently assigned to this consumer.
    public func assignment() throws -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let err = rd_kafka_assignment(client.handle, &list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { throw KafkaError.result(err, context: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return try [TopicPartitionOffset](list).map(\.topicPartition).sorted()
    }

    /// Moves the read position of assigned partitions.
    public func seek(_ offsets: [TopicPartitionOffset], timeout: Duration = .seconds(10)) async throws {
        let client = self.client
        try await blocking.run {
            try withTopicPartitionList(offsets) { list in
                if let error = rd_kafka_seek_partitions(client.handle, list, Int32(timeout.milliseconds)) {
                    throw KafkaError.consuming(error, context: "seek \(offsets)")
                }
                _ = try [TopicPartitionOffset](list, checkErrors: true)
            }
        }
    }

    // MARK: Flow control

    /// Stops fetching these partitions; polling goes on (and keeps the member in the group).
    public func pause(_ partitions: [TopicPartition]) throws {
        try withTopicPartitionList(partitions) { list in
            let err = rd_kafka_pause_partitions(client.handle, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "pause") }
            _ = try [TopicPartitionOffset](list, checkErrors: true)
        }
    }

    /// Fetches paused partitions again.
    public func resume(_ partitions: [TopicPartition]) throws {
        try withTopicPartitionList(partitions) { list in
            let err = rd_kafka_resume_partitions(client.handle, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "resume") }
            _ = try [TopicPartitionOffset](list, checkErrors: true)
        }
    }

    // MARK: Group

    /// The member's group metadata, for `KafkaProducer.sendOffsetsToTransaction`.
    public func groupMetadata() throws -> ConsumerGroupMetadata {
        guard let metadata = rd_kafka_consumer_group_metadata(client.handle) else {
            throw KafkaError(code: .librdkafka, message: "this consumer has no group metadata (no group.id?)")
        }
        defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
        var buffer: UnsafeMutableRawPointer?
        var size = 0
        if let error = rd_kafka_consumer_group_metadata_write(metadata, &buffer, &size) {
            throw KafkaError.consuming(error, context: "group metadata")
        }
        defer { rd_kafka_mem_free(nil, buffer) }
        return ConsumerGroupMetadata(bytes: Data(bytes: buffer!, count: size))
    }

    /// The member id the group coordinator gave this consumer (empty before it joins).
    public var memberID: String {
        guard let id = rd_kafka_memberid(client.handle) else { return "" }
        defer { rd_kafka_mem_free(nil, id) }
        return String(cString: id)
    }

    /// The latest librdkafka statistics (with `statisticsInterval` set), e.g. consumer lag.
    public var statistics: KafkaStatistics? { client.context.statistics.withLock { $0 } }

    /// Broker metadata for a topic (partitions, leaders).
    public func describeTopic(_ topic: String, timeout: Duration = .seconds(10)) async throws -> TopicDescription? {
        let client = self.client
        return try await blocking.run { try client.metadata(topic: topic, timeout: timeout).first }
    }

    /// Leaves the group (revoking the assignment without waiting for acknowledgements: commit
    /// before closing) and ends `events`.
    public func close() async throws {
        let client = self.client
        let poll = self.poll
        poll.beginClosing()
        let err: rd_kafka_resp_err_t = await withCheckedContinuation { continuation in
            pollQueue.async {
                let err = rd_kafka_consumer_close(client.handle)
                poll.closed()
                continuation.resume(returning: err)
            }
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.result(err, context: "close") }
    }
}

/// What the poll queue works with. `@unchecked Sendable`: every field but `closing` is touched
/// only on the consumer's serial poll queue (in `pollBatch` and in the rebalance callback it
/// serves); `closing` is atomic.
private final class PollState: @unchecked Sendable {
    private let revokeTimeout: Duration
    private let logger: Logger
    private let closing = Atomic<Bool>(false)
    private var isClosed = false
    private var pending: CheckedContinuation<[KafkaConsumerEvent]?, any Error>?
    private var events: [KafkaConsumerEvent] = []
    /// Events that arrived after a revoke resumed the reader early; handed out next time.
    private var carried: [KafkaConsumerEvent] = []
    private var topicNames: [OpaquePointer: String] = [:]
    private var lastTopic: (handle: OpaquePointer, name: String)?

    init(revokeTimeout: Duration, logger: Logger) {
        self.revokeTimeout = revokeTimeout
        self.logger = logger
    }

    func beginClosing() { closing.store(true, ordering: .releasing) }
    func closed() { isClosed = true }

    /// One poll turn: up to `batchSize` events, waiting at most 100 ms for the first.
    func pollBatch(
        client: RDKafkaClient, into continuation: CheckedContinuation<[KafkaConsumerEvent]?, any Error>, batchSize: Int
    ) {
        if isClosed {
            continuation.resume(returning: nil)
            return
        }
        pending = continuation
        events = carried
        carried = []
        // Room for a full turn at once: grown by doubling, the array was copied about ten times
        // a turn (scripts/bench runtime, perf: about 1 % of a pass-through worker's CPU).
        var timeout: Int32 = events.isEmpty ? 100 : 0
        while events.count < batchSize {
            let message = rd_kafka_consumer_poll(client.handle, timeout)
            guard let message else { break }
            if events.isEmpty { events.reserveCapacity(batchSize) }  // not on the idle turns
            defer { rd_kafka_message_destroy(message) }
            if message.pointee.err == RD_KAFKA_RESP_ERR__FATAL {
                let error = client.fatalError() ?? KafkaError.result(message.pointee.err)
                if let pending { pending.resume(throwing: error) }
                pending = nil
                isClosed = true
                return
            }
            let event = makeEvent(message)
            if pending == nil {
                carried.append(event)  // the reader was already resumed by a revoke
                break
            }
            events.append(event)
            timeout = 0
        }
        if let pending {
            pending.resume(returning: events)
            self.pending = nil
        }
        events = []
    }

    /// librdkafka's rebalance callback, served inside `rd_kafka_consumer_poll` on the poll queue.
    func rebalance(
        _ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        let partitions = ((try? [TopicPartitionOffset](list)) ?? []).map(\.topicPartition).sorted()
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    logger.error(
                        "incremental assign failed", metadata: ["kafka.error": "\(KafkaError.consuming(error))"])
                }
            } else {
                _ = rd_kafka_assign(rk, list)
            }
            logger.info("partitions assigned", metadata: ["kafka.partitions": "\(partitions)"])
            events.append(.partitionsAssigned(partitions))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            if !closing.load(ordering: .acquiring), let pending {
                // Hand the revoke to the reader now, with what came before it, and hold the
                // partitions until it has committed.
                let revocation = PartitionRevocation(
                    partitions: partitions, isLost: lost, gate: DispatchSemaphore(value: 0))
                pending.resume(returning: events + [.partitionsRevoked(revocation)])
                self.pending = nil
                events = []
                if revocation.gate.wait(timeout: .now() + .milliseconds(Int(revokeTimeout.milliseconds))) == .timedOut {
                    logger.warning(
                        "revoke not acknowledged in time; releasing the partitions",
                        metadata: ["kafka.partitions": "\(partitions)"])
                }
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) {
                    logger.error(
                        "incremental unassign failed", metadata: ["kafka.error": "\(KafkaError.consuming(error))"])
                }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
            logger.info("partitions revoked", metadata: ["kafka.partitions": "\(partitions)", "kafka.lost": "\(lost)"])
        default:
            logger.error("rebalance failed", metadata: ["kafka.error": "\(KafkaError.result(err))"])
            _ = rd_kafka_assign(rk, nil)
        }
    }

    private func makeEvent(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaConsumerEvent {
        let m = message.pointee
        let topic = topicName(m.rkt)
        switch m.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            break
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            return .endOfPartition(TopicPartitionOffset(topic: topic, partition: m.partition, offset: m.offset))
        default:
            let detail = rd_kafka_message_errstr(message).map { String(cString: $0) }
            return .error(KafkaError.result(m.err, context: "\(topic)[\(m.partition)]: \(detail ?? "consume error")"))
        }
        var headers: [KafkaHeader] = []
        var headerList: OpaquePointer?
        if rd_kafka_message_headers(message, &headerList) == RD_KAFKA_RESP_ERR_NO_ERROR, let headerList {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(headerList, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(
                    KafkaHeader(
                        name: String(cString: name!),
                        bytes: value.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) }))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(message, &timestampType)
        return .record(
            ConsumerRecord(
                topic: topic, partition: m.partition, offset: m.offset,
                key: m.key.map { Data(bytes: $0, count: m.key_len) },
                value: m.payload.map { Data(bytes: $0, count: m.len) } ?? Data(),
                isTombstone: m.payload == nil, headers: headers,
                timestamp: milliseconds >= 0 ? Date(timeIntervalSince1970: Double(milliseconds) / 1000) : nil))
    }

    /// The topic's name, remembered per topic handle; the last one is compared first, for runs of
    /// records come from one topic (a dictionary lookup hashes the pointer per record: perf,
    /// scripts/bench runtime, about 1 % of a pass-through worker's CPU).
    private func topicName(_ rkt: OpaquePointer?) -> String {
        guard let rkt else { return "" }
        if let lastTopic, lastTopic.handle == rkt { return lastTopic.name }
        let name = topicNames[rkt] ?? String(cString: rd_kafka_topic_name(rkt))
        topicNames[rkt] = name
        lastTopic = (rkt, name)
        return name
    }
}
