import ClearwayContract
import ClearwayDomain
import Foundation
import Testing

/// `OrderCustoms.fold`: an order's customs values from its entry results, whatever order they
/// come in — what makes an earlier event arriving late unable to overwrite a later one.
struct OrderCustomsTests {
    static let erp = OrderEvent.ERPReference(system: "netsuite", recordId: "SO400001")

    static func result(
        _ event: EntryResult.Event, at: String, entry: String = "E1", number: String? = "CLW-0100001-5",
        shipment: String = "SO-1", disposition: String? = nil, conditions: [String] = []
    ) -> EntryResult {
        EntryResult(
            orderId: "SO-1", shipmentId: shipment, version: 1, manifestId: "M1", entryId: entry, entryType: .t11,
            filerCode: "CLW", entryNumber: event == .rejected ? nil : number, event: event,
            conditions: conditions.map { .init(code: $0, severity: .fatal, text: "\($0) text") },
            disposition: disposition.map { .init(code: $0, text: "disposition \($0)") }, pga: nil, erp: erp,
            at: "2026-11-30T\(at):00Z", masterBill: "CLWMB0001")
    }

    /// Every order of the same events folds to the same values.
    @Test func arrivalOrderDoesNotMatter() throws {
        let events = [
            Self.result(.accepted, at: "10:00"), Self.result(.hold, at: "10:05", disposition: "1H"),
            Self.result(.holdRemoved, at: "10:10", disposition: "1I"),
            Self.result(.released, at: "10:20", disposition: "1C"),
        ]
        let expected = try #require(OrderCustoms.fold(events))
        #expect(expected.status == .released)
        #expect(expected.entryNumbers == ["CLW-0100001-5"])
        #expect(expected.shipments.first?.releasedAt == "2026-11-30T10:20:00Z")
        #expect(expected.shipments.first?.masterBill == "CLWMB0001")
        for permutation in Self.permutations(events) {
            #expect(OrderCustoms.fold(permutation) == expected)
        }
    }

    /// A hold that arrives after the release it came before leaves the order released.
    @Test func aLateEarlierEventDoesNotOverwriteALaterOne() throws {
        let accepted = Self.result(.accepted, at: "10:00")
        let released = Self.result(.released, at: "10:20", disposition: "1C")
        let lateHold = Self.result(.hold, at: "10:05", disposition: "1H")
        #expect(try #require(OrderCustoms.fold([accepted, released, lateHold])).status == .released)
    }

    /// Two amendments in the same second (an entry re-stated twice): the later arrival wins, and
    /// a repeat counts where it arrived last — so a worker that keeps each result once, moved
    /// to its latest arrival, folds as a reader of every record does.
    @Test func sameInstantAmendmentsFollowTheirArrival() throws {
        let accepted = Self.result(.accepted, at: "10:00")
        var toT03 = Self.result(.amended, at: "10:30")
        toT03.entryType = .t03
        let toT11 = Self.result(.amended, at: "10:30")
        let everyRecord = [accepted, toT03, toT11, toT03]
        let keptOnce = [accepted, toT11, toT03]
        #expect(try #require(OrderCustoms.fold(everyRecord)).shipments.first?.entryType == .t03)
        #expect(OrderCustoms.fold(everyRecord) == OrderCustoms.fold(keptOnce))
        #expect(try #require(OrderCustoms.fold([accepted, toT03, toT11])).shipments.first?.entryType == .t11)
    }

    /// A rejection carries its condition codes; the shipment filed again on another entry is
    /// the live one, with that entry's number.
    @Test func aRejectedShipmentFiledAgainTakesItsNewEntry() throws {
        let rejected = Self.result(.rejected, at: "10:00", conditions: ["IOR-INACTIVE"])
        let first = try #require(OrderCustoms.fold([rejected]))
        #expect(first.status == .rejected)
        #expect(first.shipments.first?.conditions == ["IOR-INACTIVE"])
        #expect(first.entryNumbers.isEmpty)
        let refiled = Self.result(.accepted, at: "11:00", entry: "E1/A1", number: "CLW-0100002-3")
        let second = try #require(OrderCustoms.fold([refiled, rejected]))
        #expect(second.status == .accepted)
        #expect(second.entryNumbers == ["CLW-0100002-3"])
        #expect(second.shipments.first?.conditions == [])
    }

    /// A disposition of an entry the shipment was taken off says nothing about it.
    @Test func dispositionsOfALeftEntryAreIgnored() throws {
        let accepted = Self.result(.accepted, at: "10:00")
        let cancelled = Self.result(.cancelled, at: "10:30")
        let moved = Self.result(.accepted, at: "10:31", entry: "E2", number: "CLW-0100003-1")
        let oldRelease = Self.result(.released, at: "10:40", disposition: "1C")
        let customs = try #require(OrderCustoms.fold([accepted, cancelled, moved, oldRelease]))
        #expect(customs.status == .accepted)
        #expect(customs.shipments.first?.entryId == "E2")
        #expect(customs.entryNumbers == ["CLW-0100003-1"])
    }

    /// An order of two shipments: held if one is held, released once both are; an order whose
    /// only shipment was cancelled is cancelled.
    @Test func theOrdersStatusRollsUpItsShipments() throws {
        let one = Self.result(.accepted, at: "10:00", shipment: "SO-1/a")
        let two = Self.result(.accepted, at: "10:00", entry: "E2", number: "CLW-0100004-0", shipment: "SO-1/b")
        let held = Self.result(.hold, at: "10:10", shipment: "SO-1/a", disposition: "1H")
        #expect(try #require(OrderCustoms.fold([one, two, held])).status == .held)
        let releasedOne = Self.result(.released, at: "10:20", shipment: "SO-1/a", disposition: "1C")
        let releasedTwo = Self.result(
            .released, at: "10:20", entry: "E2", number: "CLW-0100004-0", shipment: "SO-1/b", disposition: "1C")
        let released = try #require(OrderCustoms.fold([one, two, releasedOne, releasedTwo]))
        #expect(released.status == .released)
        #expect(released.entryNumbers == ["CLW-0100001-5", "CLW-0100004-0"])
        let cancelled = Self.result(.cancelled, at: "10:30")
        #expect(try #require(OrderCustoms.fold([Self.result(.accepted, at: "10:00"), cancelled])).status == .cancelled)
    }

    static func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { index in
            var rest = items
            let first = rest.remove(at: index)
            return permutations(rest).map { [first] + $0 }
        }
    }
}
