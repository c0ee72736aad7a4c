import Foundation

/// One damaged record for a topic: what a careless producer, a broken connector or a bit flip
/// could put there. Every one must end in the DLQ (unreadable) or the exceptions (readable but
/// invalid), with a reason; none may change a decision.
public struct MalformedRecord: Hashable, Sendable {
    /// What was done to the valid record it came from.
    public enum Damage: String, CaseIterable, Hashable, Sendable {
        /// Cut short: not JSON any more.
        case truncated
        /// Not JSON: `=` for `:`, a trailing comma, single quotes, two objects, plain text.
        case invalidJSON
        /// A field of the wrong JSON type (a number for a string, an array for an object…).
        case wrongType
        /// A required field left out.
        case missingField
        /// A required field renamed (`order_id`) next to unknown fields: missing and extra at once.
        /// (An unknown field alone is not damage: readers ignore it, so producers can add fields.)
        case renamedField
        /// A field 64 KB long, or a number of 400 digits.
        case hugeValue
        /// A field nested 5,000 arrays deep.
        case deepNesting
        /// Bytes that are not UTF-8 inside a string.
        case invalidUTF8
        /// A field given twice with different values (`{"orderId":"A",…,"orderId":"B"}`).
        case duplicateKey
        /// A date that does not exist (`2026-02-30`, month 13, hour 25).
        case impossibleDate
        /// A negative amount or quantity.
        case negativeAmount
        /// An amount or quantity no shipment has (38 digits, `Int.max`).
        case enormousAmount
        /// A currency code that is not ISO 4217.
        case unknownCurrency
        /// A value outside its enumeration (`"type":"shipped"`, `"entryType":"T99"`).
        case unknownEnum
        /// A record with no key (null).
        case nullKey
        /// A key whose bytes are not UTF-8.
        case nonUTF8Key
        /// Another record's key.
        case otherKey
        /// A record whose outputs could not fit one Kafka record (an order of 600 lines, or a
        /// field of 900 KB: two per topic, the rest of this kind's turns are `hugeValue`).
        case oversized
    }

    /// The logical topic (`orders.v1`), without a deployment's prefix.
    public var topic: String
    /// The key's bytes: nil for a null key, possibly not UTF-8.
    public var key: Data?
    /// The value's bytes, possibly not UTF-8 or not JSON.
    public var value: Data
    public var damage: Damage
    /// The id planted in the record (the `orderId` of order-shaped records, the `sku` of a
    /// catalog record, the `currency` of a rate), when the record came from one that had it: an
    /// exception about it names this id. The value may no longer say so readably.
    public var plantedId: String?
    /// Which field the damage changed, and to what (`lines[0].unitPrice set to -412.50`), where
    /// it changed one: what a test prints about a record that did not land.
    public var detail: String?

    /// Makes a record.
    public init(topic: String, key: Data?, value: Data, damage: Damage, plantedId: String?, detail: String? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.damage = damage
        self.plantedId = plantedId
        self.detail = detail
    }
}

/// A seeded, deterministic generator of malformed records, each made from a valid record of its
/// topic (`SampleGenerator`'s for `orders.v1`, `catalog.v1`, `fx-rates.v1`; the workers' own
/// outputs for the internal topics) by one `MalformedRecord.Damage`.
///
/// Order-shaped records get a fresh id (`FZ-<topic>-<n>` in `orderId` and `shipmentId`, and as the
/// key where the topic is keyed by it), catalog records a fresh SKU and key, rates a fresh
/// day (`plantedId` says which), so what a damaged record leads to is never confused with a good
/// record's outcome. The same seed, count, topic and examples give the same records, byte for byte.
public struct MalformedRecords: Sendable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// `count` malformed records for `topic`, cycling through every damage that applies to it,
    /// from `validExamples` (records of that topic; JSON objects).
    public func records(count: Int, topic: String, validExamples: [SampleRecord]) -> [MalformedRecord] {
        let examples = validExamples.compactMap { example -> (SampleRecord, [String: Any])? in
            guard let object = try? JSONSerialization.jsonObject(with: Data(example.value.utf8)) as? [String: Any]
            else { return nil }
            return (example, object)
        }
        guard !examples.isEmpty, count > 0 else { return [] }
        var random = SplitMix(seed: seed ^ UInt64(truncatingIfNeeded: topic.utf8.reduce(5381) { $0 &* 33 &+ Int($1) }))
        let damages = MalformedRecord.Damage.allCases.filter { Self.applies($0, to: topic) }
        let tag = topic.replacingOccurrences(of: ".v1", with: "").filter { $0.isLetter || $0.isNumber }
        return (0..<count).map { index in
            let (example, object) = random.pick(examples)
            var mutation = Mutation(
                topic: topic, key: example.key, object: object, tag: "FZ-\(tag)-\(String(format: "%05d", index))",
                otherKey: random.pick(examples).0.key)
            mutation.plant()
            var damage = damages[index % damages.count]
            // 900 KB records are few (two per topic): they load the broker, not the workers.
            if damage == .oversized, topic != "orders.v1", index / damages.count >= 2 { damage = .hugeValue }
            damage = mutation.apply(damage, random: &random)
            return MalformedRecord(
                topic: topic, key: mutation.keyBytes, value: mutation.valueBytes, damage: damage,
                plantedId: mutation.planted, detail: mutation.changed)
        }
    }

    /// Tables (compacted topics) refuse records without a key, and their keys are text.
    static func applies(_ damage: MalformedRecord.Damage, to topic: String) -> Bool {
        let table = ["catalog.v1", "fx-rates.v1"].contains(topic)
        return !(table && [.nullKey, .nonUTF8Key].contains(damage))
    }

    /// Top-level fields each topic's readers need (its schema's `required`, or its wire type's
    /// non-optional fields).
    static let requiredFields: [String: [String]] = [
        "orders.v1": ["orderId", "type", "version", "currency", "shipDate", "warehouse", "consignee", "lines"],
        "catalog.v1": ["sku", "hts", "originCountry"],
        "fx-rates.v1": ["currency", "date", "usdPerUnit", "kind"],
        "orders.enriched.v1": ["orderId", "type", "version", "consigneeKey", "addressKey"],
        "orders.screened.v1": ["orderId", "type", "version", "consigneeKey", "addressKey"],
        "released.by-address.v1": ["addressKey", "day", "consigneeKey", "orderId", "shipmentId", "valueUSD"],
        "released.by-conveyance.v1": ["conveyance", "orderId", "shipmentId", "version", "consigneeKey", "valueUSD"],
        "manifests.v1": ["kind", "manifestId", "conveyance", "masterBill", "policyVersion", "entries"],
        "entry-results.v1": ["orderId", "shipmentId", "version", "manifestId", "entryId", "entryType", "event"],
    ]
}

/// One record being damaged: its key and JSON object, and raw bytes to put in place of marker
/// strings once it is serialized.
struct Mutation {
    let topic: String
    var key: String
    var keyBytes: Data?
    var object: [String: Any]
    let tag: String
    let otherKey: String
    var planted: String?
    /// The last field `set` changed, and to what.
    var changed: String?
    /// Marker string → the bytes that replace it (quotes included) in the serialized value.
    var raw: [String: [UInt8]] = [:]
    /// Applied to the serialized bytes last.
    var finish: ((inout [UInt8]) -> Void)?

    init(topic: String, key: String, object: [String: Any], tag: String, otherKey: String) {
        self.topic = topic
        self.key = key
        self.object = object
        self.tag = tag
        self.otherKey = otherKey
    }

    /// Gives the record an id of its own, and the key that goes with it.
    mutating func plant() {
        switch topic {
        case "catalog.v1":
            object["sku"] = tag
            key = tag
            planted = tag
        case "fx-rates.v1":
            // A currency nobody prices in, on a day of its own: only its probe order reads it.
            let number = Int(tag.suffix(5)) ?? 0
            let currency = Self.probeCurrencies[number % Self.probeCurrencies.count]
            let day = Self.day(offset: number / Self.probeCurrencies.count)
            object["currency"] = currency
            object["date"] = day
            object["kind"] = "daily"
            key = "\(currency)@\(day)"
            planted = key
        default:
            if object["orderId"] != nil {
                object["orderId"] = tag
                planted = tag
                if topic == "orders.v1" || topic == "entry-results.v1" { key = tag }
            }
            if object["shipmentId"] != nil { object["shipmentId"] = tag }
        }
        keyBytes = Data(key.utf8)
    }

    /// Currencies of the rates' probe orders: ISO 4217 codes the sample never prices in.
    static let probeCurrencies = ["EUR", "GBP", "JPY", "CHF", "AUD", "NZD", "SEK", "NOK", "DKK", "SGD", "HKD", "KRW"]

    /// 2024-01-01 plus `offset` days, `YYYY-MM-DD`.
    static func day(offset: Int) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: DateComponents(year: 2024, month: 1, day: 1))!
        let date = calendar.date(byAdding: .day, value: offset, to: start)!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    var valueBytes: Data {
        var bytes = [UInt8](
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data())
        for (marker, replacement) in raw {
            bytes = Self.replace(Array("\"\(marker)\"".utf8), with: replacement, in: bytes)
        }
        finish?(&bytes)
        return Data(bytes)
    }

    static func replace(_ pattern: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        guard !pattern.isEmpty, bytes.count >= pattern.count else { return bytes }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count + replacement.count)
        var index = 0
        while index < bytes.count {
            if index + pattern.count <= bytes.count, bytes[index..<index + pattern.count].elementsEqual(pattern) {
                result += replacement
                index += pattern.count
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return result
    }
}
