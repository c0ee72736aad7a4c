import ClearwayRuntime

extension Topics {
    /// `alerts.v1`: structuring signals — several consignees at one address whose released total
    /// for a day passes the one-person-one-day threshold — with the evidence.
    ///
    /// - Value: ``StructuringAlert``; schema `schemas/alerts.v1.schema.json`.
    /// - Key: `addressKey`. Partitions: 6.
    /// - Written by: the structuring watch. Read by: compliance, and the fleet's report.
    public static let alerts = TopicDeclaration("alerts.v1")
}

/// A structuring signal (`alerts.v1`, keyed by `addressKey`): several consignees at one address
/// whose day total passes the threshold.
public struct StructuringAlert: Codable, Hashable, Sendable {
    public var addressKey: String
    public var day: String
    public var thresholdUSD: String
    public var totalUSD: String
    public var consignees: [Consignee]
    public var policyVersion: String
    public var reason: String

    /// One consignee at the address: its orders that day and their total.
    public struct Consignee: Codable, Hashable, Sendable {
        public var consigneeKey: String
        public var orders: [String]
        public var totalUSD: String

        /// Makes one.
        public init(consigneeKey: String, orders: [String], totalUSD: String) {
            self.consigneeKey = consigneeKey
            self.orders = orders
            self.totalUSD = totalUSD
        }
    }

    /// Makes an alert.
    public init(
        addressKey: String, day: String, thresholdUSD: String, totalUSD: String, consignees: [Consignee],
        policyVersion: String, reason: String
    ) {
        self.addressKey = addressKey
        self.day = day
        self.thresholdUSD = thresholdUSD
        self.totalUSD = totalUSD
        self.consignees = consignees
        self.policyVersion = policyVersion
        self.reason = reason
    }
}
