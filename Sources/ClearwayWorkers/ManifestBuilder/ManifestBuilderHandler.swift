import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Foundation

/// The manifest-builder: groups released shipments per conveyance (carrier and trip, port,
/// arrival day), one open manifest per conveyance, and files it when it closes — at
/// `CLEARWAY_MANIFEST_MAX_ENTRIES` entries, at the port-local cut-off `CLEARWAY_MANIFEST_CUTOFF`,
/// `CLEARWAY_MANIFEST_CLOSE_AFTER` after it opened, and at the latest when the arrival day ends
/// at the port. The entries are `ManifestPlan.entries`: one per Type 86 shipment, one per
/// consignee otherwise (19 CFR 141.51), typed when the manifest closes. A shipment lacking a
/// data element is refused (`orders.exceptions.v1`, `incomplete-entry`) and never filed.
///
/// Reads `released.by-conveyance.v1` (the aggregator's releases keyed by `Conveyance.id`), so one
/// partition owns each conveyance. After a manifest closed, a withdrawn shipment, or a later one
/// for a consignee already entered on the conveyance, amends the filed entry (`cancel` or
/// `replace`, naming it) instead of opening a second entry for that consignee.
///
/// State per partition:
/// - `open/<conveyance>`: the open manifest (`OpenManifest`); `seq/<conveyance>`: the last
///   manifest number used; `m/<conveyance>/<shipmentId>`: its shipments (the releases);
///   `c/<conveyance>/<consigneeKey>`: how many of a consignee's non-T86 shipments it holds;
/// - `filed/<shipmentId>`, `fr/<shipmentId>` (its release as it came) and `entry/<entryId>`:
///   what was filed, for amendments;
///   `ce/<conveyance>/<consigneeKey>`: the consignee's filed entry on the conveyance;
/// - timers `close/<conveyance>` (the close) and `forget/<manifestId>` (the filed state dropped
///   `CLEARWAY_MANIFEST_RETENTION_DAYS` after the arrival day).
///
/// Manifest ids and bill numbers derive from the conveyance and the manifest's number, never
/// from the clock: a replay builds the same ids.
public struct ManifestBuilderHandler: RecordHandler {
    public static let name = WorkerName.manifestBuilder.rawValue

    let timeline: PolicyTimeline
    let ports: PortDirectory
    let maxEntries: Int
    /// Seconds after the arrival day's midnight at the port.
    let cutoff: Int?
    let closeAfter: Duration?
    let retentionDays: Int
    let now: @Sendable () -> Date

    public init(
        timeline: PolicyTimeline, ports: PortDirectory, maxEntries: Int = 250, cutoff: Int? = nil,
        closeAfter: Duration? = nil, retentionDays: Int = 7, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.timeline = timeline
        self.ports = ports
        self.maxEntries = maxEntries
        self.cutoff = cutoff
        self.closeAfter = closeAfter
        self.retentionDays = retentionDays
        self.now = now
    }

    public static func definition(_ handler: ManifestBuilderHandler) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.releasedByConveyance],
            outputs: [Topics.manifests, Topics.exceptions], handler: handler, isStateful: true)
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else {
            throw RecordRejected("not-stateful", "the manifest-builder needs its state")
        }
        let release = try record.decoded(ConveyanceRelease.self, topic: "released.by-conveyance.v1")
        try KeyCheck.require(record, isKeyedBy: release.conveyance.id, field: "conveyance")
        var manifests = Manifests(handler: self, state: state)
        if release.withdrawn { return try manifests.withdraw(release) }
        guard let shipment = release.shipment, let lane = release.entryType else {
            throw RecordRejected(
                "schema-invalid", "release of \(release.shipmentId) without its shipment or entry type")
        }
        // The manifest is planned from the shipment and its refusals traced back by the release's
        // ids: a release carrying another shipment would file one under the other's name.
        guard shipment.shipmentId == release.shipmentId, shipment.order.orderId == release.orderId else {
            throw RecordRejected(
                "schema-invalid",
                "the release of shipment \(release.shipmentId.prefix(80)) (order \(release.orderId.prefix(80))) carries shipment \(shipment.shipmentId.prefix(80)) (order \(shipment.order.orderId.prefix(80))); the aggregator writes them alike: publish the release it wrote"
            )
        }
        return try manifests.add(release, ManifestShipment(shipment: shipment, lane: lane), raw: record.value)
    }

    public func timerFired(key: String, payload: Data, context: HandlerContext) async throws -> [OutputRecord] {
        guard let state = context.state else { return [] }
        var manifests = Manifests(handler: self, state: state)
        if key.hasPrefix("close/") {
            let parts = String(decoding: payload, as: UTF8.self).split(separator: " ")
            guard parts.count == 2, let sequence = Int(parts[0]) else { return [] }
            return try manifests.close(
                String(key.dropFirst("close/".count)), sequence: sequence, because: String(parts[1]))
        }
        if key.hasPrefix("forget/") { try manifests.forget(payload) }
        return []
    }

    /// When a manifest opened now closes by time, and why: the earliest of the cut-off, the
    /// close-after and the end of the arrival day at the port.
    func closing(_ conveyance: Conveyance) throws -> (at: Date, because: String) {
        let zone = try ports.port(conveyance.port).zone()
        let day = try Day(conveyance.arrivalDay)
        var candidates = [(day.next.start(in: zone), "end-of-day")]
        if let cutoff { candidates.append((day.start(in: zone).addingTimeInterval(TimeInterval(cutoff)), "cut-off")) }
        if let closeAfter {
            candidates.append((now().addingTimeInterval(Double(closeAfter.components.seconds)), "close-after"))
        }
        return candidates.min { $0.0 < $1.0 }!
    }
}
