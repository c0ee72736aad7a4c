import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import ClearwayTestSupport
import ClearwayWorkers
import Foundation
import Testing

/// A `released.by-address.v1` record as the aggregator writes it.
func contributionJSON(
    address: String, day: String, consignee: String, shipment: String, value: String, withdrawn: Bool = false
) -> String {
    #"{"addressKey":"\#(address)","consigneeKey":"\#(consignee)","day":"\#(day)","orderId":"\#(shipment)","policyVersion":"whatif.1","shipmentId":"\#(shipment)","thresholdUSD":"800.00","valueUSD":"\#(value)","withdrawn":\#(withdrawn)}"#
}

@Suite(.enabled(if: Broker.isAvailable, "needs CLEARWAY_BOOTSTRAP_SERVERS (scripts/test starts a broker)"))
struct StructuringTests {
    @Test func anAddressIsFlaggedWhenItsConsigneesCrossTheThresholdAndAgainAfterAWithdrawal() async throws {
        let deployment = WorkerDeployment(StructuringHandler.definition(retentionDays: 2))
        try await deployment.createTopics()
        let address = key(500)
        func release(
            _ consignee: Int, _ shipment: String, _ value: String, day: String = "2025-06-10", withdrawn: Bool = false
        )
            -> (key: String, value: String?)
        {
            (
                address,
                contributionJSON(
                    address: address, day: day, consignee: key(consignee), shipment: shipment, value: value,
                    withdrawn: withdrawn)
            )
        }
        try await deployment.publish(
            "released.by-address.v1",
            [
                release(1, "A", "500.00"),
                release(1, "A", "500.00"),  // a repeat changes nothing
                release(2, "B", "250.00"),  // one consignee alone, however much: no signal
                release(3, "C", "100.00"),  // $850 over three consignees: the first alert
                release(2, "B", "0.00", withdrawn: true),  // B cancelled: $600, under again
                release(4, "D", "300.00"),  // $900: over again, a second alert with the new evidence
                release(5, "E", "900.00", day: "2025-06-20"),  // a later day moves the watermark on
                release(6, "F", "700.00", day: "2025-06-10"),  // late for a forgotten day: still counted
                release(7, "G", "200.00", day: "2025-06-10"),  // …with G, over: flagged, not dropped
            ])
        let watch = try await deployment.watch(["alerts.v1"])
        let (group, task) = deployment.start()
        try await watch.wait("three alerts", limit: .seconds(60)) { $0.records.count >= 3 }
        try await Task.sleep(for: .seconds(1))
        await group.triggerGracefulShutdown()
        try await task.value
        await watch.stop()
        let alerts = watch.seen.withLock { $0.records }.map(\.json)
        #expect(alerts.count == 3)
        func evidence(_ alert: [String: Any]) -> [String] {
            ((alert["consignees"] as? [[String: Any]]) ?? []).flatMap { $0["orders"] as? [String] ?? [] }.sorted()
        }
        #expect(alerts.map { $0["totalUSD"] as? String } == ["850.00", "900.00", "900.00"])
        #expect(alerts.map(evidence) == [["A", "B", "C"], ["A", "C", "D"], ["F", "G"]])
        #expect(alerts.allSatisfy { $0["addressKey"] as? String == address && $0["day"] as? String == "2025-06-10" })
        let ids = watch.seen.withLock { $0.records }.compactMap(\.ceID)
        #expect(Set(ids).count == 3, "each crossing its own alert id")
        #expect(
            try Schemas.problems(watch.seen.withLock { $0.records }.map(\.value), against: "alerts.v1") == [])
    }
}
