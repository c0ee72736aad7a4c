import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation
import Logging

/// What one deployment (one topic prefix) made of its orders, tallied from its topics: the
/// orders that came in, and per order its outcome — cleared (with the last decision on each of
/// its shipments), an exception, or a dead letter.
public struct FleetTally: Sendable {
    /// The last decision on a shipment, and whether it was ever held.
    public struct Shipment: Sendable {
        public var last: ClearedShipment
        public var wasHeld: Bool
    }

    /// An `orders.exceptions.v1` record, as far as the tally needs it.
    public struct OrderException: Decodable, Sendable {
        public var orderId: String
        public var stage: String
        public var status: String
        public var code: String
    }

    /// The topic prefix of the deployment.
    public let prefix: String
    /// Distinct keys of `orders.v1` records (order ids, or whatever a broken record carried).
    public private(set) var orderKeys: Set<String> = []
    public private(set) var orderRecords = 0
    public private(set) var enriched = 0
    public private(set) var screened = 0
    /// By shipment id.
    public private(set) var shipments: [String: Shipment] = [:]
    /// The shipment ids of each order that reached the aggregator.
    public private(set) var shipmentsByOrder: [String: Set<String>] = [:]
    /// The last exception of each order.
    public private(set) var exceptions: [String: OrderException] = [:]
    /// Dead letters of `orders.v1` by original key; other dead letters by source topic.
    public private(set) var deadOrders: [String: Int] = [:]
    public private(set) var deadLetters = 0
    public private(set) var deadLettersByReason: [String: Int] = [:]
    public private(set) var alerts: [StructuringAlert] = []
    public private(set) var reroutes = 0
    /// Filing: closed manifests and amendments, the entries as they now stand (by entry id),
    /// the shipments on each (after amendments), and the entry results per shipment in order.
    public private(set) var manifestsClosed = 0
    public private(set) var amendments = 0
    public private(set) var entries: [String: ManifestEntry] = [:]
    public private(set) var cancelledEntries: Set<String> = []
    public private(set) var results: [String: [EntryResult]] = [:]
    /// Entry results by order, every record in the order read (one partition per order), repeats
    /// included: what the erp-writeback folds (`OrderCustoms.fold`).
    public private(set) var resultsByOrder: [String: [EntryResult]] = [:]
    /// The `ce_id`s of the filing records counted: a record seen again (a killed worker's
    /// transaction a broker left visible) is dropped, as the topic contract says.
    private var filingIds: Set<String> = []
    /// Shipments the manifest-builder refused to file (`incomplete-entry`), by order.
    public private(set) var filingRefusals: [String: OrderException] = [:]
    /// Write-backs: per order the last `erp-writeback.v1` record of its highest revision.
    public private(set) var writebacks: [String: WritebackResult] = [:]
    /// Records on the outcome topics that were not valid JSON of their kind (should be none).
    public private(set) var unreadable: [String] = []

    public init(prefix: String) { self.prefix = prefix }

    /// This deployment's structuring watch: its consumer group and its input topic.
    public var structuringWatch: (group: String, input: String) {
        (prefix + WorkerName.structuring.rawValue, prefix + Topics.releasedByAddress.name)
    }

    /// The topics the tally reads, with the prefix.
    public var topics: [String] {
        [
            "orders.v1", "orders.enriched.v1", "orders.screened.v1", "shipments.cleared.v1", "orders.exceptions.v1",
            "dlq.v1", "alerts.v1", "reroutes.v1", "manifests.v1", "entry-results.v1", "erp-writeback.v1",
        ].map { prefix + $0 }
    }

    private static let decoder = JSONDecoder()

    /// Counts one record from any of `topics`.
    public mutating func add(_ record: ConsumerRecord) {
        let topic = String(record.topic.dropFirst(prefix.count))
        let key = record.keyString ?? ""
        switch topic {
        case "orders.v1":
            orderRecords += 1
            orderKeys.insert(key)
        case "orders.enriched.v1": enriched += 1
        case "orders.screened.v1": screened += 1
        case "shipments.cleared.v1":
            guard let shipment = try? Self.decoder.decode(ClearedShipment.self, from: record.value),
                (try? Decimal(parsingPlain: shipment.valueUSD)) != nil
            else {
                unreadable.append("\(record.topic)@\(record.partition):\(record.offset)")
                return
            }
            // A shipment's records share its consignee's partition, so they arrive in order.
            let wasHeld = (shipments[shipment.shipmentId]?.wasHeld ?? false) || shipment.status == .held
            shipments[shipment.shipmentId] = Shipment(last: shipment, wasHeld: wasHeld)
            shipmentsByOrder[shipment.orderId, default: []].insert(shipment.shipmentId)
        case "orders.exceptions.v1":
            guard let exception = try? Self.decoder.decode(OrderException.self, from: record.value) else {
                unreadable.append("\(record.topic)@\(record.partition):\(record.offset)")
                return
            }
            // A refusal to file comes after the order's outcome (its decision): a filing result.
            if exception.stage == WorkerName.manifestBuilder.rawValue {
                filingRefusals[exception.orderId] = exception
            } else {
                exceptions[exception.orderId] = exception
            }
        case "manifests.v1":
            if let id = record.headers.first(named: "ce_id"), !filingIds.insert(topic + "/" + id).inserted { return }
            guard let manifest = try? Self.decoder.decode(ManifestRecord.self, from: record.value) else {
                unreadable.append("\(record.topic)@\(record.partition):\(record.offset)")
                return
            }
            if manifest.kind == .manifest { manifestsClosed += 1 } else { amendments += 1 }
            for entry in manifest.entries { entries[entry.entryId] = entry }
            if let amendment = manifest.amendment, amendment.action == .cancel {
                cancelledEntries.insert(amendment.entryId)
            }
        case "entry-results.v1":
            let repeated = record.headers.first(named: "ce_id").map { !filingIds.insert(topic + "/" + $0).inserted }
            guard let result = try? Self.decoder.decode(EntryResult.self, from: record.value) else {
                if repeated != true { unreadable.append("\(record.topic)@\(record.partition):\(record.offset)") }
                return
            }
            // Every record, repeats too, in arrival order: what the erp-writeback folds.
            resultsByOrder[result.orderId, default: []].append(result)
            if repeated == true { return }
            results[result.shipmentId, default: []].append(result)
        case "dlq.v1":
            deadLetters += 1
            let reason = record.headers.first(named: "dlq.error.class") ?? "unknown"
            deadLettersByReason[reason, default: 0] += 1
            // A mis-keyed record's key names no order of its own (it may be another order's id).
            if record.headers.first(named: "dlq.source.topic") == prefix + "orders.v1", reason != "key-mismatch" {
                deadOrders[key, default: 0] += 1
            }
        case "alerts.v1":
            if let alert = try? Self.decoder.decode(StructuringAlert.self, from: record.value) {
                alerts.append(alert)
            } else {
                unreadable.append("\(record.topic)@\(record.partition):\(record.offset)")
            }
        case "reroutes.v1": reroutes += 1
        case "erp-writeback.v1":
            guard let written = try? Self.decoder.decode(WritebackResult.self, from: record.value) else {
                unreadable.append("\(record.topic)@\(record.partition):\(record.offset)")
                return
            }
            if let held = writebacks[written.orderId], held.revision > written.revision { return }
            writebacks[written.orderId] = written
        default: break
        }
    }

    /// The kinds of outcome an order key has: `cleared`, `exception`, `dlq` (exactly one once
    /// the fleet is done with it).
    public func outcomes(of key: String) -> [String] {
        var kinds: [String] = []
        if shipmentsByOrder[key] != nil { kinds.append("cleared") }
        if exceptions[key] != nil { kinds.append("exception") }
        if deadOrders[key] != nil { kinds.append("dlq") }
        return kinds
    }

    /// Order keys with no outcome yet.
    public var undecided: Int { orderKeys.filter { outcomes(of: $0).isEmpty }.count }

    /// The final shipments, released ones by entry type.
    public func released(_ type: EntryType) -> [ClearedShipment] {
        shipments.values.map(\.last).filter { $0.status == .released && $0.entryType == type }
    }

    public func finalStatus(_ status: ClearedShipment.Status) -> Int {
        shipments.values.filter { $0.last.status == status }.count
    }

    /// Released after a hold.
    public var releasedAfterHold: Int {
        shipments.values.filter { $0.wasHeld && $0.last.status == .released }.count
    }

    /// Entries (as they now stand) holding two or more shipments of one consignee on one
    /// conveyance (19 CFR 141.51), and the shipments on them.
    public var consolidations: (groups: Int, shipments: Int) {
        let shared = entries.values.filter { !cancelledEntries.contains($0.entryId) && $0.shipments.count >= 2 }
        return (shared.count, shared.reduce(0) { $0 + $1.shipments.count })
    }

    /// The highest Type 86 day total any consignee reached, in USD.
    public var largestT86DayTotal: Decimal {
        var totals: [String: Decimal] = [:]
        for shipment in released(.t86) {
            totals["\(shipment.consigneeKey)/\(shipment.day)", default: 0] += shipment.value
        }
        return totals.values.max() ?? 0
    }

    /// Exceptions per code.
    public var exceptionsByCode: [String: Int] {
        exceptions.values.reduce(into: [:]) { $0[$1.code, default: 0] += 1 }
    }

    /// The shipments released at the end (their last decision), by id.
    public var releasedShipments: [String: ClearedShipment] {
        shipments.filter { $0.value.last.status == .released }.mapValues(\.last)
    }

    /// The entry each shipment is on now, after amendments (cancelled entries hold none).
    public var entryOfShipment: [String: ManifestEntry] {
        var map: [String: ManifestEntry] = [:]
        for entry in entries.values where !cancelledEntries.contains(entry.entryId) {
            for shipment in entry.shipments { map[shipment.shipmentId] = entry }
        }
        return map
    }

    /// A shipment's filing outcome: the last of its accepted / rejected / amended / cancelled
    /// results (dispositions and PGA statuses come after acceptance).
    /// Results on the entry the shipment is on now come first (a shipment moved from one entry
    /// to another has results on both, from topic partitions read in no set order).
    /// `onEntry` is `entryOfShipment`, when the caller has it.
    public func filingOutcome(of shipmentId: String, onEntry: [String: ManifestEntry]? = nil) -> EntryResult? {
        let outcomes = results[shipmentId]?.filter { [.accepted, .rejected, .amended, .cancelled].contains($0.event) }
        guard let outcomes else { return nil }
        if let current = (onEntry ?? entryOfShipment)[shipmentId]?.entryId,
            let last = outcomes.last(where: { $0.entryId == current })
        {
            return last
        }
        return outcomes.last
    }

    /// Released shipments not yet filed for good: neither refused, nor on an entry (as it stands
    /// after amendments) whose last result is accepted, rejected or amended. A shipment whose
    /// entry was cancelled by an amendment is unfiled until its new entry has its result.
    public var unfiledShipments: [ClearedShipment] {
        let onEntry = entryOfShipment
        return releasedShipments.values.filter { shipment in
            guard filingRefusals[shipment.orderId] == nil else { return false }
            guard let entry = onEntry[shipment.shipmentId],
                let outcome = filingOutcome(of: shipment.shipmentId, onEntry: onEntry)
            else { return true }
            return outcome.entryId != entry.entryId || ![.accepted, .rejected, .amended].contains(outcome.event)
        }
    }

    /// How many released shipments are not yet filed for good (`unfiledShipments`).
    public var unfiled: Int { unfiledShipments.count }

    /// Entry results per event, and rejections per condition code.
    public var resultsByEvent: [EntryResult.Event: Int] {
        results.values.joined().reduce(into: [:]) { $0[$1.event, default: 0] += 1 }
    }

    public var rejectionsByCode: [String: Int] {
        results.values.joined().filter { $0.event == .rejected }.flatMap(\.conditions).filter { $0.severity == .fatal }
            .reduce(into: [:]) { $0[$1.code, default: 0] += 1 }
    }

    /// Entry numbers to the entries that carry them (each must carry one).
    public var entryNumbers: [String: Set<String>] {
        results.values.joined().reduce(into: [:]) { map, result in
            if let number = result.entryNumber { map[number, default: []].insert(result.entryId) }
        }
    }

    /// Orders whose entry results' values are written back (the last write-back holds them and
    /// the ERP took them), orders still waiting, and orders whose write-back failed (refused or
    /// given up), among the orders with an entry result that names an ERP record.
    public var writebackProgress: (written: Int, pending: Int, failed: Int) {
        var progress = (written: 0, pending: 0, failed: 0)
        for (order, results) in resultsByOrder {
            guard let expected = OrderCustoms.fold(results) else { continue }
            guard let written = writebacks[order], written.customs.values == expected.values else {
                progress.pending += 1
                continue
            }
            switch written.outcome {
            case .applied, .alreadyApplied: progress.written += 1
            case .refused, .gaveUp: progress.failed += 1
            }
        }
        return progress
    }

    /// The policy versions the decisions named.
    public var policyVersions: [String] {
        Set(shipments.values.map(\.last.policyVersion)).sorted()
    }
}

/// Reads topics from their beginning with a `read_committed` consumer of its own (no group
/// offsets are committed), a poll turn at a time.
public final class TopicReader: Sendable {
    let consumer: KafkaConsumer

    public init(
        bootstrapServers: [String], topics: [String], properties: [String: String] = [:], logger: Logger
    ) async throws {
        var configuration = KafkaConsumerConfiguration(
            groupID: "clearway-report-\(UUID().uuidString)", bootstrapServers: bootstrapServers)
        configuration.isolationLevel = .readCommitted
        configuration.properties.merge(properties) { _, given in given }
        consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        var offsets: [TopicPartitionOffset] = []
        for topic in topics {
            guard let description = try await consumer.describeTopic(topic) else {
                throw TopicMissing(topic: topic)
            }
            offsets += description.partitions.map {
                TopicPartitionOffset(topic: topic, partition: $0.id, offset: TopicPartitionOffset.beginning)
            }
        }
        try consumer.assign(offsets)
    }

    /// The records that arrive within `duration`.
    public func read(for duration: Duration) async throws -> [ConsumerRecord] {
        let deadline = ContinuousClock.now + duration
        var records: [ConsumerRecord] = []
        while ContinuousClock.now < deadline, let events = try await consumer.poll() {
            for case .record(let record) in events { records.append(record) }
        }
        return records
    }

    public func close() async { try? await consumer.close() }
}

/// How far a consumer group has committed, read without joining it (a consumer of that group id
/// that never subscribes).
public final class GroupProbe: Sendable {
    let consumer: KafkaConsumer

    public init(group: String, bootstrapServers: [String], properties: [String: String] = [:], logger: Logger) throws {
        var configuration = KafkaConsumerConfiguration(groupID: group, bootstrapServers: bootstrapServers)
        configuration.properties.merge(properties) { _, given in given }
        consumer = try KafkaConsumer(configuration: configuration, logger: logger)
    }

    /// Whether the group has committed at or past `ends` (next offsets to read) on every one of
    /// those partitions; `nil` when it has committed nothing on any (no such worker is running).
    public func hasCaughtUp(to ends: [TopicPartition: Int64]) async throws -> Bool? {
        guard !ends.isEmpty else { return true }
        let committed = try await consumer.committed(Array(ends.keys))
        guard committed.contains(where: { $0.offset >= 0 }) else { return nil }
        return committed.allSatisfy { $0.offset >= ends[$0.topicPartition] ?? 0 }
    }

    public func close() async { try? await consumer.close() }
}

/// A topic the report needs is not there.
public struct TopicMissing: Error, CustomStringConvertible {
    public var topic: String
    public var description: String {
        "topic \(topic) does not exist: run `clearway topics apply` with the same CLEARWAY_TOPIC_PREFIX"
    }
}

extension ClearedShipment {
    /// `valueUSD` as a number (the tally counts a record whose amount does not parse as unreadable).
    var value: Decimal { (try? Decimal(parsingPlain: valueUSD)) ?? 0 }
}
