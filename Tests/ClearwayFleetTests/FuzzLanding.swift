import ClearwayDomain
import ClearwayFleet
import ClearwayKafka
import Foundation

/// The orders that read the malformed table records: one per malformed `catalog.v1` record (a
/// line of its SKU) and per malformed `fx-rates.v1` record (priced in its currency, shipped on
/// its day). A table record has no outcome of its own; its probe's exception is where it lands.
struct FuzzProbes {
    /// The probe orders, for `orders.v1`.
    private(set) var orders: [SampleRecord] = []
    /// The malformed record's index in the fuzz, by its probe's order id.
    private(set) var fuzzIndex: [String: Int] = [:]

    init(fuzz: [MalformedRecord], shipDate: Day) {
        for (index, record) in fuzz.enumerated() {
            guard ["catalog.v1", "fx-rates.v1"].contains(record.topic), let planted = record.plantedId else { continue }
            let id = "FZ-probe-\(index)"
            let parts = planted.split(separator: "@").map(String.init)
            let (currency, day, sku) =
                record.topic == "catalog.v1" ? ("USD", shipDate.description, planted) : (parts[0], parts[1], "TEE-0001")
            let consignee =
                #"{"name":"Probe Person","line1":"1 Probe Road","city":"Tucson","region":"AZ","postalCode":"85701","country":"US"}"#
            let value =
                #"{"orderId":"\#(id)","type":"placed","version":1,"currency":"\#(currency)","shipDate":"\#(day)","warehouse":"TIJ1","carrier":"dhl","consignee":\#(consignee),"lines":[{"sku":"\#(sku)","quantity":1,"unitPrice":"10.00"}]}"#
            orders.append(SampleRecord(topic: "orders.v1", key: id, value: value))
            fuzzIndex[id] = index
        }
    }
}

/// Where each malformed record was written (found by its bytes as it is read back) and where it
/// ended: DLQ records by their `dlq.source.*` headers, exceptions by order id.
struct FuzzLanding {
    struct Fingerprint: Hashable {
        var topic: String
        var key: Data?
        var value: Data
    }

    let fuzz: [MalformedRecord]
    let prefix: String
    private var unlocatedIndices: [Fingerprint: [Int]] = [:]
    /// "topic/partition/offset" (the full topic name) of each located malformed record.
    private var located: [String: Int] = [:]
    private var locationOf: [Int: String] = [:]
    private var deadLetters: [String: Int] = [:]
    /// Order ids with an exception.
    private var excepted: Set<String> = []
    private let exceptionIdOf: [Int: String]
    private(set) var withoutReason: [String] = []
    private(set) var dlqCount = 0
    private(set) var exceptionCount = 0

    init(fuzz: [MalformedRecord], prefix: String, probes: FuzzProbes) {
        self.fuzz = fuzz
        self.prefix = prefix
        for (index, record) in fuzz.enumerated() {
            unlocatedIndices[
                Fingerprint(topic: prefix + record.topic, key: record.key, value: record.value), default: []
            ]
            .append(index)
        }
        var ids: [Int: String] = [:]
        for (index, record) in fuzz.enumerated() where !["catalog.v1", "fx-rates.v1"].contains(record.topic) {
            ids[index] = record.plantedId
        }
        for (id, index) in probes.fuzzIndex { ids[index] = id }
        exceptionIdOf = ids
    }

    /// Malformed records not yet read back from their topic.
    var unlocated: Int { unlocatedIndices.values.reduce(0) { $0 + $1.count } }

    mutating func add(_ record: ConsumerRecord) {
        let place = "\(record.topic)/\(record.partition)/\(record.offset)"
        let fingerprint = Fingerprint(topic: record.topic, key: record.key, value: record.value)
        if var indices = unlocatedIndices[fingerprint], !indices.isEmpty {
            let index = indices.removeFirst()
            unlocatedIndices[fingerprint] = indices.isEmpty ? nil : indices
            located[place] = index
            locationOf[index] = place
            return
        }
        if record.topic == prefix + "dlq.v1" {
            dlqCount += 1
            let source = ["dlq.source.topic", "dlq.source.partition", "dlq.source.offset"].map {
                record.headers.first(named: $0) ?? "?"
            }
            deadLetters[source.joined(separator: "/"), default: 0] += 1
            if (record.headers.first(named: "dlq.error.message") ?? "").isEmpty
                || (record.headers.first(named: "dlq.error.class") ?? "").isEmpty
            {
                withoutReason.append("DLQ of \(source.joined(separator: "/"))")
            }
        } else if record.topic == prefix + "orders.exceptions.v1" {
            let object = (try? JSONSerialization.jsonObject(with: record.value)) as? [String: Any] ?? [:]
            guard let id = object["orderId"] as? String, id.hasPrefix("FZ-") else { return }
            exceptionCount += 1
            excepted.insert(id)
            if ((object["code"] as? String) ?? "").isEmpty || ((object["detail"] as? String) ?? "").isEmpty {
                withoutReason.append("exception of \(id)")
            }
        }
    }

    /// Whether the record is one of the malformed records (as read back from its topic).
    func isFuzz(_ record: ConsumerRecord) -> Bool {
        located["\(record.topic)/\(record.partition)/\(record.offset)"] != nil
    }

    /// Whether the tally's `topic@partition:offset` is one of the malformed records.
    func isFuzz(tallyPlace: String) -> Bool {
        located[tallyPlace.replacingOccurrences(of: "@", with: "/").replacingOccurrences(of: ":", with: "/")] != nil
    }

    /// How many times the malformed record at `index` has landed.
    func landings(_ index: Int) -> Int {
        let dead = locationOf[index].map { deadLetters[$0] ?? 0 } ?? 0
        return dead + (exceptionIdOf[index].map { excepted.contains($0) ? 1 : 0 } ?? 0)
    }

    /// Malformed records that have not landed (yet).
    var pending: [Int] { fuzz.indices.filter { landings($0) == 0 } }

    var landedMoreThanOnce: [Int] { fuzz.indices.filter { landings($0) > 1 } }

    func summary(_ indices: [Int]) -> String { Self.summary(indices, fuzz) }

    /// Counts per topic and damage.
    static func summary(_ indices: [Int], _ fuzz: [MalformedRecord]) -> String {
        let counts = indices.reduce(into: [String: Int]()) {
            $0["\(fuzz[$1].topic):\(fuzz[$1].damage.rawValue)", default: 0] += 1
        }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// A few of the records, shortened, for the message: up to three of each topic and damage,
    /// with the field the damage changed.
    func samples(_ indices: [Int]) -> String {
        var shown: [String: Int] = [:]
        return indices.filter { index in
            let group = "\(fuzz[index].topic):\(fuzz[index].damage)"
            shown[group, default: 0] += 1
            return shown[group]! <= 3
        }.map { index in
            let record = fuzz[index]
            let text = String(decoding: record.value.prefix(300), as: UTF8.self)
            return
                "\n[\(record.topic) \(record.damage) key \(record.key.map { String(decoding: $0, as: UTF8.self) } ?? "nil") at \(locationOf[index] ?? "unlocated")\(record.detail.map { ": \($0)" } ?? "")] \(text)"
        }.joined()
    }
}
