import ClearwayDomain
import ClearwayFleet
import Foundation
import Testing

struct MalformedRecordsTests {
    let sample = SampleGenerator(seed: 5, consignees: 40, days: 2, lastDay: Day(year: 2026, month: 11, day: 25))
        .generate()

    @Test func theSameSeedGivesTheSameRecordsAndEveryDamageIsThere() {
        let orders = sample.orders.filter { !$0.key.hasPrefix("SO-X-") }
        let records = MalformedRecords(seed: 1).records(count: 400, topic: "orders.v1", validExamples: orders)
        #expect(records == MalformedRecords(seed: 1).records(count: 400, topic: "orders.v1", validExamples: orders))
        #expect(records != MalformedRecords(seed: 2).records(count: 400, topic: "orders.v1", validExamples: orders))
        #expect(Set(records.map(\.damage)) == Set(MalformedRecord.Damage.allCases))
        #expect(Set(records.compactMap(\.plantedId)).count == records.count, "each record its own order id")
        // Tables never get a null or non-UTF-8 key (a compacted topic refuses the first).
        let catalog = MalformedRecords(seed: 1).records(count: 100, topic: "catalog.v1", validExamples: sample.catalog)
        #expect(catalog.allSatisfy { $0.key.flatMap { String(data: $0, encoding: .utf8) } != nil })
    }

    /// What the enricher reads as an order: every damage but the key's and the values a rule
    /// judges (amounts, currencies, the too-long order) leaves no order to read.
    @Test func damagedOrdersDoNotDecode() {
        let orders = sample.orders.filter { !$0.key.hasPrefix("SO-X-") }
        let judged: Set<MalformedRecord.Damage> = [
            .nullKey, .nonUTF8Key, .otherKey, .negativeAmount, .enormousAmount, .unknownCurrency, .oversized,
            .hugeValue,
        ]
        for record in MalformedRecords(seed: 3).records(count: 600, topic: "orders.v1", validExamples: orders)
        where !judged.contains(record.damage) {
            #expect(
                (try? OrderEvent.decode(record.value)) == nil,
                "\(record.damage): \(String(decoding: record.value.prefix(200), as: UTF8.self))")
        }
    }
}
