import ClearwayDomain
import ClearwayFleet
import ClearwayTestSupport
import Foundation
import Testing

struct SampleGeneratorTests {
    let generator = SampleGenerator(
        seed: 2026, consignees: 1_000, days: 4, lastDay: Day(year: 2026, month: 11, day: 25))

    @Test func theSameSeedGivesTheSameRecordsAndAnotherSeedOthers() {
        #expect(generator.generate().records == generator.generate().records)
        var other = generator
        other.seed = 2027
        #expect(other.generate().orders != generator.generate().orders)
    }

    @Test func theSampleHasWhatTheDemoPromises() throws {
        let sample = generator.generate()
        #expect(sample.catalog.count >= 200)
        #expect(sample.days.map(\.description) == ["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25"])
        let orders = sample.orders.filter { !sample.unreadableKeys.contains($0.key) }.compactMap {
            try? JSONDecoder().decode(OrderEvent.self, from: Data($0.value.utf8))
        }
        #expect(orders.count == sample.orders.count - sample.unreadableKeys.count)
        let placed = orders.filter { $0.type == .placed }
        #expect(Set(placed.map(\.orderId)).count > 1_500)
        #expect(orders.contains { $0.type == .updated } && orders.contains { $0.type == .cancelled })
        #expect(placed.count > Set(placed.map(\.orderId)).count, "redelivered duplicates")
        // Repeat same-day buyers, and one address written two ways.
        let names = Dictionary(grouping: placed) { "\($0.consignee!.name.uppercased())/\($0.shipDate!)" }
        #expect(names.values.contains { $0.count >= 3 })
        #expect(placed.contains { $0.consignee!.line1.contains(" #") && $0.consignee!.postalCode.contains("-") })
        // Households: three names at one address on one day.
        let addresses = Dictionary(grouping: placed) {
            "\($0.consignee!.line1)/\($0.consignee!.postalCode)/\($0.shipDate!)"
        }
        #expect(addresses.values.contains { Set($0.map(\.consignee!.name)).count >= 3 })
        // The reference data and the orders are on their schemas, but for the records broken on purpose.
        #expect(try Schemas.problems(sample.catalog.map { Data($0.value.utf8) }, against: "catalog.v1") == [])
        #expect(try Schemas.problems(sample.fxRates.map { Data($0.value.utf8) }, against: "fx-rates.v1") == [])
        let readable = sample.orders.filter { !sample.unreadableKeys.contains($0.key) }.map { Data($0.value.utf8) }
        #expect(try Schemas.problems(readable, against: "orders.v1") == [])
    }
}
