import ClearwayKafka
import Foundation
import Logging

/// Turns a handler's outputs into Kafka records and hands them to the producer, as Kafka Streams'
/// `RecordCollectorImpl` does: CloudEvents headers, the deterministic `ce_id` that lets readers
/// drop repeats, the topic's deployment prefix; and the DLQ: an input that can never be processed,
/// or an output of a timer or a table change that can never be written, with where it came from
/// and why.
///
/// Used only by the task running the loop. A transaction must be open before anything is sent
/// here (the loop begins it).
final class OutputCollector {
    private let producer: TransactionalProducer
    private let worker: String
    private let prefix: String
    private let sizeLimit: RecordSizeLimit
    private let metrics: RuntimeMetrics
    private let logger: Logger
    private var headerCache: HeaderCache
    private var logicalNames: [String: String] = [:]
    private var lastLogicalName: (topic: String, name: String)?
    private var idHead: (topic: String, bytes: [UInt8])?
    private var idTail: (type: String, index: Int, bytes: [UInt8])?

    init(
        producer: TransactionalProducer, worker: String, prefix: String, sizeLimit: RecordSizeLimit,
        metrics: RuntimeMetrics, logger: Logger
    ) {
        self.producer = producer
        self.worker = worker
        self.prefix = prefix
        self.sizeLimit = sizeLimit
        self.metrics = metrics
        self.logger = logger
        headerCache = HeaderCache(source: worker, prefix: prefix)
    }

    /// Publishes outputs with their CloudEvents headers; `id` gives the `ce_id` header's bytes of
    /// an output from its index and type (an output's own `idSeed` wins).
    func emit(_ outputs: [OutputRecord], traceparent: String?, id: (Int, String) -> [UInt8]) async throws {
        let time = headerCache.time(Date())
        let trace = traceparent.map { KafkaHeader(name: "traceparent", string: $0) }
        for (index, output) in outputs.enumerated() {
            let ceID =
                output.idSeed.map { CloudEvents.idBytes(worker: worker, seed: $0, outputType: output.type) }
                ?? id(index, output.type)
            var headers: [KafkaHeader] = []
            headers.reserveCapacity(headerCache.constant.count + output.headers.count + 4)
            headers.append(KafkaHeader(name: "ce_id", bytes: ceID))
            headers.append(headerCache.type(output.type))
            headers += headerCache.constant
            headers.append(time)
            if let trace { headers.append(trace) }
            headers += output.headers
            let record = ProducerRecord(
                topic: headerCache.topic(output.topic), key: output.key.map { Data(utf8: $0) },
                value: output.value, headers: headers)
            if try !producer.trySend(record) { try await producer.sendWhenRoom(record) }
            metrics.recordsOut.increment()
        }
    }

    /// `CloudEvents.id` of an output of an input record (as its header's bytes), with the bytes
    /// hashed around the record's own built once for a run of records from one topic with outputs
    /// of one type.
    func outputID(of record: InputRecord, inputTopic: String, index: Int, type: String) -> [UInt8] {
        guard record.headers.isEmpty || record.headers.first(named: "ce_id") == nil else {
            return CloudEvents.idBytes(
                worker: worker, input: record, inputTopic: inputTopic, outputIndex: index, outputType: type)
        }
        if idHead?.topic != inputTopic {
            idHead = (inputTopic, CloudEvents.idHead(worker: worker, inputTopic: inputTopic))
        }
        if idTail?.type != type || idTail?.index != index {
            idTail = (type, index, CloudEvents.idTail(outputIndex: index, outputType: type))
        }
        return CloudEvents.idBytes(head: idHead!.bytes, input: record, tail: idTail!.bytes)
    }

    /// A topic's name without the deployment prefix (cached: it is asked for every record, and
    /// runs of records come from one topic).
    func logicalName(of topic: String) -> String {
        if let last = lastLogicalName, last.topic == topic { return last.name }
        let name =
            logicalNames[topic] ?? (topic.hasPrefix(prefix) ? String(topic.dropFirst(prefix.count)) : topic)
        logicalNames[topic] = name
        lastLogicalName = (topic, name)
        return name
    }

    // MARK: The DLQ

    /// Sends an input record to the DLQ: its original key, value and headers, plus where it came
    /// from and why.
    func deadLetter(_ record: InputRecord, errorClass: String, message: String, omitValue: Bool = false) async throws {
        metrics.deadLettered.increment()
        let message = Self.bounded(message)
        logger.warning(
            "record sent to the DLQ",
            metadata: [
                "kafka.topic": "\(record.topic)", "kafka.partition": "\(record.partition)",
                "kafka.offset": "\(record.offset)", "error.class": "\(errorClass)", "error.message": "\(message)",
            ])
        let headers =
            record.headers + [
                KafkaHeader(name: "dlq.source.topic", string: record.topic),
                KafkaHeader(name: "dlq.source.partition", string: String(record.partition)),
                KafkaHeader(name: "dlq.source.offset", string: String(record.offset)),
                KafkaHeader(name: "dlq.worker", string: worker),
                KafkaHeader(name: "dlq.error.class", string: errorClass),
                KafkaHeader(name: "dlq.error.message", string: message),
                KafkaHeader(name: "dlq.time", string: CloudEvents.timestamp(Date())),
            ]
        try await sendDeadLetter(
            key: record.key, value: record.isTombstone ? nil : record.value, headers: headers, omitValue: omitValue,
            whereValueIs:
                "read it from \(record.topic) partition \(record.partition) offset \(record.offset) while the topic retains it"
        )
    }

    /// Sends to the DLQ what a timer or a table change could not make (there is no input record
    /// to copy): the key and value it concerns, `dlq.source` saying what it was, and why.
    func deadLetter(key: Data?, value: Data, source: String, errorClass: String, message: String) async throws {
        metrics.deadLettered.increment()
        let message = Self.bounded(message)
        logger.warning(
            "sent to the DLQ",
            metadata: ["dlq.source": "\(source)", "error.class": "\(errorClass)", "error.message": "\(message)"])
        let headers = [
            KafkaHeader(name: "dlq.source", string: source),
            KafkaHeader(name: "dlq.worker", string: worker),
            KafkaHeader(name: "dlq.error.class", string: errorClass),
            KafkaHeader(name: "dlq.error.message", string: message),
            KafkaHeader(name: "dlq.time", string: CloudEvents.timestamp(Date())),
        ]
        try await sendDeadLetter(
            key: key, value: value, headers: headers,
            whereValueIs: "the worker's state still holds what it was made from")
    }

    /// Outputs of a timer or a table change (no input record to set aside) that can never be
    /// written go to the DLQ in their place, keyed as they would have been, with why; the rest
    /// are returned to be published.
    func divertOversized(_ outputs: [OutputRecord], from source: String) async throws -> [OutputRecord] {
        guard sizeLimit.firstOversized(outputs) != nil else { return outputs }
        var kept: [OutputRecord] = []
        for output in outputs {
            guard let size = sizeLimit.oversize(output) else {
                kept.append(output)
                continue
            }
            try await deadLetter(
                key: output.key.map { Data(utf8: $0) }, value: output.value, source: "\(source), to \(output.topic)",
                errorClass: RecordSizeLimit.errorClass, message: sizeLimit.refusal(of: output, size: size))
        }
        return kept
    }

    /// Writes a DLQ record. One that could never be written as it is (over the producer's
    /// limit: an input near the topic's own limit) would stop the partition: it goes without its
    /// value, and `dlq.value.omitted` says where the bytes still are.
    /// The most characters of a reason the DLQ headers and the log carry. A reason quotes the
    /// record (a key, a field), and the record can be as large as a record may be: quoted whole,
    /// it would make the dead letter too large to write, and the worker would stop on it.
    static let maximumMessageLength = 2_000

    static func bounded(_ message: String) -> String {
        guard message.count > maximumMessageLength else { return message }
        return String(message.prefix(maximumMessageLength)) + "… (\(message.utf8.count) bytes in all)"
    }

    private func sendDeadLetter(
        key: Data?, value: Data?, headers: [KafkaHeader], omitValue: Bool = false, whereValueIs: String
    ) async throws {
        var dead = ProducerRecord(
            topic: prefix + StandardTopics.dlq.name, key: key, value: value ?? Data(), headers: headers)
        dead.isTombstone = value == nil
        if let value, omitValue || !sizeLimit.fits(key: key, value: value, headers: headers) {
            dead.value = Data()
            dead.isTombstone = true
            dead.headers.append(
                KafkaHeader(
                    name: "dlq.value.omitted",
                    string: "the value (\(value.count) bytes) could not be copied here; \(whereValueIs)"))
        }
        try await producer.send(dead)
    }
}
