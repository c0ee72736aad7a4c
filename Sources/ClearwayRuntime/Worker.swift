import ClearwayKafka
import Foundation

/// A topic a worker reads or writes, as it must exist on the cluster.
public struct TopicDeclaration: Hashable, Sendable {
    /// The name without the deployment's prefix, e.g. `orders.v1`.
    public var name: String
    public var partitions: Int32
    /// -1 takes the broker's default.
    public var replicationFactor: Int16
    /// `cleanup.policy=compact` (keyed state: catalogs, changelogs).
    public var compacted: Bool
    /// `retention.ms`; `nil` keeps the broker's default.
    public var retention: Duration?

    /// Declares a topic.
    public init(
        _ name: String, partitions: Int32 = 6, replicationFactor: Int16 = -1, compacted: Bool = false,
        retention: Duration? = nil
    ) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.compacted = compacted
        self.retention = retention
    }

    /// The topic's configs for a create request.
    public var configs: [String: String] {
        var configs: [String: String] = ["cleanup.policy": compacted ? "compact" : "delete"]
        if let retention {
            let (seconds, attoseconds) = retention.components
            configs["retention.ms"] = String(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        }
        return configs
    }
}

/// A record a handler wants published.
public struct OutputRecord: Sendable, Hashable {
    /// The topic, without the deployment's prefix.
    public var topic: String
    public var key: String?
    public var value: Data
    /// The CloudEvents type, e.g. `clearway.order.enriched.v1`.
    public var type: String
    /// Extra headers beyond the CloudEvents ones the runtime adds.
    public var headers: [KafkaHeader]
    /// What the output's `ce_id` is derived from, when the handler names it (e.g. an order id and
    /// version, so the same order has one id whether it was enriched at once or re-driven later).
    /// Unset, the id derives from the input record and the output's position among its outputs.
    public var idSeed: String?

    /// Makes an output.
    public init(
        topic: String, key: String?, value: Data, type: String, headers: [KafkaHeader] = [], idSeed: String? = nil
    ) {
        self.topic = topic
        self.key = key
        self.value = value
        self.type = type
        self.headers = headers
        self.idSeed = idSeed
    }
}

/// The input record as a handler sees it.
public typealias InputRecord = ConsumerRecord

/// What a handler gets besides the record.
public struct HandlerContext: Sendable {
    /// The worker's name.
    public var worker: String
    /// The topic prefix of this deployment.
    public var topicPrefix: String
    /// The record's topic without the prefix.
    public var inputTopic: String
    /// Which attempt this is (1 for the first).
    public var attempt: Int
    /// The record's partition state, for a stateful worker.
    public var state: PartitionState?
    /// The worker's reference tables (`WorkerDefinition.tables`), kept whole on every instance.
    public var tables: ReferenceTables = ReferenceTables(tables: [:])
}

/// Turns one input record into output records. Throw `RecordRejected` for a record that can
/// never be processed (it goes to the DLQ), `TransientFailure` for one worth retrying; any other
/// error counts as rejected.
public protocol RecordHandler: Sendable {
    func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord]

    /// A timer the handler scheduled (`PartitionState.schedule`) is due. Its outputs and state
    /// changes commit like a record's. Default: nothing.
    func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord]

    /// Keys of reference tables changed (per table name), or — when `changes` is nil — anything may
    /// have changed: the partition was just assigned, or work since the last commit was rolled
    /// back. Called once per assigned partition of a stateful worker, through the same
    /// transactional path as records; give outputs an `idSeed`. Default: nothing.
    func tablesChanged(_ changes: [String: Set<String>]?, context: HandlerContext) async throws -> [OutputRecord]

    /// An outbox entry (`PartitionState.enqueue(outbox:_:)`) was sent, refused or given up on
    /// by the runtime's dispatcher (`WorkerDefinition.outbox`). Called in the transaction like a
    /// record, with the entry's partition state: remove the entry if it still holds `payload`.
    /// The same completion can come again after a rollback. Default: nothing.
    func outboxCompleted(_ completion: OutboxCompletion, context: HandlerContext) async throws -> [OutputRecord]
}

extension RecordHandler {
    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] { [] }

    public func tablesChanged(_ changes: [String: Set<String>]?, context: HandlerContext) async throws
        -> [OutputRecord]
    { [] }

    public func outboxCompleted(_ completion: OutboxCompletion, context: HandlerContext) async throws
        -> [OutputRecord]
    { [] }
}

/// A record that can never be processed as it is: the runtime sends it to the DLQ with this reason.
public struct RecordRejected: Error, Sendable, CustomStringConvertible {
    /// A short class, e.g. `schema-invalid`, `unreadable-json`.
    public var errorClass: String
    /// What is wrong, for the person who will fix it.
    public var message: String

    /// Makes a rejection.
    public init(_ errorClass: String, _ message: String) {
        self.errorClass = errorClass
        self.message = message
    }

    public var description: String { "\(errorClass): \(message)" }
}

/// A failure worth retrying (a dependency down, a timeout): the runtime pauses the partition and
/// redelivers the record after a backoff, without blocking the other partitions.
public struct TransientFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Makes a failure.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A worker: its name, its topics and its handler.
public struct WorkerDefinition: Sendable {
    /// The worker's name: its consumer group, its `ce_source`, its metrics label.
    public var name: String
    /// Topics it reads.
    public var inputs: [TopicDeclaration]
    /// Topics it writes (the DLQ is added by the runtime).
    public var outputs: [TopicDeclaration]
    public var handler: any RecordHandler
    /// Whether the worker keeps durable state per input partition (SQLite + changelog topic).
    /// A stateful worker reads one input topic.
    public var isStateful: Bool
    /// Compacted topics every instance keeps whole in local SQLite (`ReferenceTable`), loaded
    /// before the first record is handled.
    public var tables: [TopicDeclaration]
    /// What sends the entries a stateful worker's handler puts in its partitions' outbox
    /// (`PartitionState.enqueue(outbox:_:)`), off the poll loop; nil for a worker without one.
    public var outbox: (any OutboxSender)?

    /// Defines a worker.
    public init(
        name: String, inputs: [TopicDeclaration], outputs: [TopicDeclaration], handler: any RecordHandler,
        isStateful: Bool = false, tables: [TopicDeclaration] = [], outbox: (any OutboxSender)? = nil
    ) {
        precondition(!isStateful || inputs.count == 1, "a stateful worker reads one input topic")
        precondition(outbox == nil || isStateful, "an outbox is partition state: the worker must be stateful")
        self.outbox = outbox
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.handler = handler
        self.isStateful = isStateful
        self.tables = tables
    }

    /// The compacted topic its state changes go to: `<worker>.changelog`, partitioned like its input.
    public var changelog: TopicDeclaration? {
        guard isStateful, let input = inputs.first else { return nil }
        return TopicDeclaration("\(name).changelog", partitions: input.partitions, compacted: true)
    }

    /// Every topic the worker needs, the DLQ included.
    public var declaredTopics: [TopicDeclaration] {
        var topics = inputs + tables + outputs
        if !topics.contains(where: { $0.name == StandardTopics.dlq.name }) { topics.append(StandardTopics.dlq) }
        if let changelog { topics.append(changelog) }
        return topics
    }
}

/// The topics the runtime itself declares for every worker, whatever it does: the dead letters.
/// Clearway's own topics are declared in `ClearwayContract` (`Topics`), one file each.
public enum StandardTopics {
    /// `dlq.v1`: unreadable or poison records, with their original bytes and error headers
    /// (key: the original key); kept 30 days.
    public static let dlq = TopicDeclaration("dlq.v1", retention: .seconds(30 * 24 * 3600))
}
