import CRdKafka
import Foundation
import Logging
import Synchronization

/// What librdkafka's callbacks reach: the client's logger, its last error, its latest statistics
/// and the producer's or consumer's own handlers. librdkafka holds it unretained as the handle's
/// opaque; `RDKafkaClient` keeps it alive for longer than the handle.
final class ClientContext: Sendable {
    let logger: Logger
    /// The last client-wide error librdkafka reported: its text and code.
    let lastError = Mutex<(text: String, code: rd_kafka_resp_err_t)?>(nil)
    let statistics = Mutex<KafkaStatistics?>(nil)
    /// A delivery report, on librdkafka's poll thread (producer only).
    let onDelivery: (@Sendable (UnsafePointer<rd_kafka_message_t>) -> Void)?
    /// A rebalance, on the consumer's poll thread (consumer only).
    let onRebalance:
        (
            @Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) ->
                Void
        )?

    init(
        logger: Logger,
        onDelivery: (@Sendable (UnsafePointer<rd_kafka_message_t>) -> Void)? = nil,
        onRebalance: (
            @Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) ->
                Void
        )? = nil
    ) {
        self.logger = logger
        self.onDelivery = onDelivery
        self.onRebalance = onRebalance
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext? {
        opaque.map { Unmanaged<ClientContext>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// Owns one `rd_kafka_t`. `@unchecked Sendable`: the handle is created once, never reassigned,
/// and librdkafka documents every call made on it through this library as thread-safe.
final class RDKafkaClient: @unchecked Sendable {
    let handle: OpaquePointer
    let context: ClientContext
    /// The bootstrap list, for messages.
    let brokersDescription: String

    init(type: rd_kafka_type_t, properties: [String: String], context: ClientContext) throws {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(code: .configuration, message: "librdkafka could not allocate a configuration")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, name, value, &errorText, errorText.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(
                    code: .configuration,
                    message: "Kafka property \(name)=\"\(value)\" was refused: \(string(fromCBuffer: errorText))")
            }
        }
        // Unretained: `self.context` outlives the handle, which deinit destroys first.
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_log_cb(conf, logCallback)
        rd_kafka_conf_set_error_cb(conf, errorCallback)
        rd_kafka_conf_set_stats_cb(conf, statisticsCallback)
        if context.onDelivery != nil { rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback) }
        if context.onRebalance != nil { rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback) }

        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)  // not taken over when rd_kafka_new fails
            throw KafkaError(
                code: .configuration, message: "librdkafka refused the configuration: \(string(fromCBuffer: errorText))"
            )
        }
        self.handle = handle
        self.context = context
        self.brokersDescription = properties["bootstrap.servers"].map { "broker(s) \($0)" } ?? "the brokers"
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    /// The last error librdkafka reported for the client as a whole (e.g. a refused connection).
    var lastError: String? { context.lastError.withLock { $0?.text } }

    /// `message`, with the last client-wide error appended when there is one, and what to check
    /// when that error is a refused login or a failed TLS handshake.
    func explain(_ message: String) -> String {
        guard let last = context.lastError.withLock({ $0 }) else { return message }
        var hint = ""
        switch last.code {
        case RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
            hint =
                "; the brokers refused this client's login: check sasl.mechanism, sasl.username and sasl.password "
                + "(CLEARWAY_KAFKA_SASL_MECHANISM, CLEARWAY_KAFKA_SASL_USERNAME, CLEARWAY_KAFKA_SASL_PASSWORD_FILE)"
        case RD_KAFKA_RESP_ERR__SSL:
            hint =
                "; the TLS handshake failed: check security.protocol and ssl.ca.location "
                + "(CLEARWAY_KAFKA_SECURITY_PROTOCOL, CLEARWAY_KAFKA_SSL_CA_LOCATION)"
        default: break
        }
        return "\(message) (last error from librdkafka: \(last.text))\(hint)"
    }

    /// The client's fatal error, if it has one.
    func fatalError() -> KafkaError? {
        var text = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(handle, &text, text.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        var error = KafkaError.result(err, context: string(fromCBuffer: text))
        error.isFatal = true
        return error
    }

    /// Broker metadata for one topic or all of them (blocking: call it off the cooperative pool).
    func metadata(topic: String?, timeout: Duration) throws -> [TopicDescription] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        var topicHandle: OpaquePointer?
        if let topic { topicHandle = rd_kafka_topic_new(handle, topic, nil) }
        defer { if let topicHandle { rd_kafka_topic_destroy(topicHandle) } }
        let err = rd_kafka_metadata(
            handle, topic == nil ? 1 : 0, topicHandle, &metadata, Int32(timeout.milliseconds))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError.result(
                err, context: explain("no metadata from \(brokersDescription) within \(timeout)"))
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var result: [TopicDescription] = []
        for t in UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt)) {
            let name = String(cString: t.topic)
            if t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { continue }
            let partitions = UnsafeBufferPointer(start: t.partitions, count: Int(t.partition_cnt)).map { p in
                TopicDescription.Partition(
                    id: p.id, leader: p.leader,
                    replicas: Array(UnsafeBufferPointer(start: p.replicas, count: Int(p.replica_cnt))),
                    inSyncReplicas: Array(UnsafeBufferPointer(start: p.isrs, count: Int(p.isr_cnt))))
            }
            result.append(TopicDescription(name: name, partitions: partitions.sorted { $0.id < $1.id }))
        }
        return result.sorted { $0.name < $1.name }
    }

}

// MARK: - Topic-partition lists

/// Lends a librdkafka list built from `offsets` for the duration of `body`.
func withTopicPartitionList<T>(
    _ offsets: [TopicPartitionOffset], _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> T
) rethrows -> T {
    let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for entry in offsets {
        rd_kafka_topic_partition_list_add(list, entry.topic, entry.partition).pointee.offset = entry.offset
    }
    return try body(list)
}

/// Lends a librdkafka list of partitions (offsets unset) for the duration of `body`.
func withTopicPartitionList<T>(
    _ partitions: [TopicPartition], _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> T
) rethrows -> T {
    try withTopicPartitionList(
        partitions.map {
            TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: TopicPartitionOffset.invalidOffset)
        },
        body)
}

extension Array where Element == TopicPartitionOffset {
    /// The entries of a librdkafka list; throws the first per-partition error if `checkErrors`.
    init(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>, checkErrors: Bool = false) throws {
        self = []
        for element in UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)) {
            let topic = String(cString: element.topic)
            if checkErrors && element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError.result(element.err, context: "\(topic)[\(element.partition)]")
            }
            append(TopicPartitionOffset(topic: topic, partition: element.partition, offset: element.offset))
        }
    }
}

// MARK: - C callbacks (context comes back through the handle's opaque, unretained)

private func logCallback(
    _ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ buffer: UnsafePointer<CChar>?
) {
    guard let rk, let context = ClientContext.from(rd_kafka_opaque(rk)), let buffer else { return }
    let line = String(cString: buffer)
    // A refused login or TLS handshake reaches the error callback only when the client's queue
    // is served, which no call does while it waits for its first metadata: the log line (from
    // librdkafka's own thread) is what says it then, so `explain` can name what to check.
    if line.contains("SASL authentication error") {
        context.lastError.withLock { $0 = (line, RD_KAFKA_RESP_ERR__AUTHENTICATION) }
    } else if line.contains("SSL handshake failed") {
        context.lastError.withLock { $0 = (line, RD_KAFKA_RESP_ERR__SSL) }
    }
    let swiftLevel: Logger.Level =
        switch level {
        case 0...3: .error
        case 4: .warning
        case 5, 6: .info
        default: .debug
        }
    context.logger.log(
        level: swiftLevel, "\(line)",
        metadata: ["kafka.facility": "\(facility.map { String(cString: $0) } ?? "")"])
}

private func errorCallback(
    _ rk: OpaquePointer?, _ err: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?
) {
    guard let context = ClientContext.from(opaque) else { return }
    let text = reason.map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(err)))
    context.lastError.withLock { $0 = (text, rd_kafka_resp_err_t(err)) }
    context.logger.debug("librdkafka error", metadata: ["kafka.error": "\(text)"])
}

private func statisticsCallback(
    _ rk: OpaquePointer?, _ json: UnsafeMutablePointer<CChar>?, _ length: Int, _ opaque: UnsafeMutableRawPointer?
) -> Int32 {
    guard let context = ClientContext.from(opaque), let json else { return 0 }
    let data = Data(bytes: json, count: length)
    if let statistics = try? KafkaStatistics(json: data) {
        context.statistics.withLock { $0 = statistics }
    }
    return 0  // librdkafka frees the JSON
}

private func deliveryCallback(
    _ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?
) {
    guard let message, let context = ClientContext.from(opaque) else { return }
    context.onDelivery?(message)
}

private func rebalanceCallback(
    _ rk: OpaquePointer?, _ err: rd_kafka_resp_err_t,
    _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let rk, let partitions, let context = ClientContext.from(opaque) else { return }
    context.onRebalance?(rk, err, partitions)
}

/// The text in a NUL-terminated C buffer that librdkafka filled.
func string(fromCBuffer buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
