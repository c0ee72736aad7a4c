import ClearwayRuntime

extension Topics {
    /// `reroutes.v1`: requests to fulfil an order from another warehouse (the aggregator's
    /// overflow policy `reroute`).
    ///
    /// - Value: ``RerouteRequest`` (no schema yet).
    /// - Key: `orderId`. Partitions: 6.
    /// - Written by: the aggregator. Read by: the OMS (fulfilment).
    public static let reroutes = TopicDeclaration("reroutes.v1")
}

/// A `reroutes.v1` record: fulfil this order from another warehouse (overflow policy `reroute`).
public struct RerouteRequest: Codable, Hashable, Sendable {
    public var orderId: String
    public var shipmentId: String
    public var consigneeKey: String
    public var day: String
    public var valueUSD: String
    public var reason: String

    /// Makes a request.
    public init(
        orderId: String, shipmentId: String, consigneeKey: String, day: String, valueUSD: String, reason: String
    ) {
        self.orderId = orderId
        self.shipmentId = shipmentId
        self.consigneeKey = consigneeKey
        self.day = day
        self.valueUSD = valueUSD
        self.reason = reason
    }
}
