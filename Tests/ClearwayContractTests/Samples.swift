import ClearwayContract
import ClearwayDomain
import Foundation

/// One order taken through the rules, for a sample record of every topic: each value is what a
/// worker would write for it, built by the domain's own functions where it has them.
struct Samples {
    struct NotProduced: Error, CustomStringConvertible { var description: String }

    let order = OrderEvent(
        orderId: "SO-1001", type: .placed, version: 1, currency: "USD", shipDate: "2025-06-09", warehouse: "TIJ1",
        carrier: "dhl", trip: "TIJ1-0609",
        consignee: Consignee(
            name: "Ana Diaz", line1: "500 Harbor Dr", city: "San Diego", region: "CA", postalCode: "92101",
            country: "US"),
        lines: [.init(sku: "TEE", quantity: 2, unitPrice: "12.50")],
        erp: .init(system: "netsuite", recordId: "4711"))
    let item = CatalogItem(
        sku: "TEE", hts: "6109.10.0012", originCountry: "MX", description: "cotton t-shirt",
        manufacturer: .init(name: "Amalgamated Plastics Corp.", street: "11455 Main Street", city: "Tijuana"))
    let rate: ExchangeRate
    let enriched: EnrichedOrder
    let screened: ScreenedOrder
    let policy: Policy

    init() throws {
        rate = ExchangeRate(
            currency: try CurrencyCode("CAD"), date: try Day("2025-06-09"), usdPerUnit: 0.73, kind: .daily)
        let entry = CatalogEntry(item)
        let references = EnrichmentReferences(
            catalogItem: { $0 == "TEE" ? entry : nil }, rates: { _, _ in [] },
            warehouses: try WarehouseDirectory.shipped(),
            secret: try ConsigneeKeySecret(text: "a-test-secret-of-16+-bytes"))
        guard case .enriched(let enriched) = Enrichment.enrich(order, references: references) else {
            throw NotProduced(description: "the sample order was not enriched")
        }
        self.enriched = enriched
        let timeline = try PolicyTimeline.named("us")
        let screening = OrderScreening(
            screener: try Screener.shipped(), timeline: timeline, mixedOrders: .routeWhole, references: "samples")
        guard case .shipments(let shipments) = try screening.screen(enriched), let first = shipments.first else {
            throw NotProduced(description: "the sample order was not screened")
        }
        screened = first
        policy = try timeline.policy(on: try Day(enriched.arrivalDay ?? ""))
    }

    var conveyance: Conveyance {
        get throws {
            guard let conveyance = Conveyance(of: enriched) else {
                throw NotProduced(description: "the sample order has no conveyance")
            }
            return conveyance
        }
    }

    var cleared: ClearedShipment {
        ClearedShipment(
            orderId: order.orderId, shipmentId: screened.shipmentId, version: 1, consigneeKey: enriched.consigneeKey,
            addressKey: enriched.addressKey, status: .released, entryType: .t86, day: enriched.arrivalDay ?? "",
            valueUSD: enriched.valueUSD ?? "0.00", dayTotalUSD: enriched.valueUSD ?? "0.00",
            regime: policy.regime, policyVersion: policy.version,
            reasons: [DecisionReason(rule: "deminimis.within", text: "within the day", policyVersion: policy.version)],
            shipment: screened)
    }

    var manifest: ManifestRecord {
        get throws {
            let conveyance = try conveyance
            let manifestId = ManifestPlan.manifestId(conveyance, sequence: 1)
            let plan = ManifestPlan.entries(
                manifestId: manifestId, conveyance: conveyance,
                shipments: [ManifestShipment(shipment: screened, lane: .t86)], policy: policy)
            guard !plan.entries.isEmpty else {
                throw NotProduced(description: "the sample shipment was refused: \(plan.refused.map(\.gaps))")
            }
            return ManifestRecord(
                kind: .manifest, manifestId: manifestId, conveyance: conveyance,
                masterBill: ManifestPlan.billNumber(manifestId), closedBecause: "end-of-day",
                policyVersion: policy.version, entries: plan.entries, amendment: nil)
        }
    }

    var entryResult: EntryResult {
        get throws {
            let manifest = try manifest
            let entry = manifest.entries[0]
            return EntryResult(
                orderId: order.orderId, shipmentId: screened.shipmentId, version: 1, manifestId: manifest.manifestId,
                entryId: entry.entryId, entryType: entry.entryType, filerCode: "CLW", entryNumber: "CLW-0000001-8",
                event: .accepted,
                conditions: [.init(code: "DESCRIPTION-VAGUE", severity: .warning, text: "may be too vague")],
                disposition: nil, pga: nil, erp: order.erp, at: "2025-06-09T10:00:00Z", masterBill: manifest.masterBill)
        }
    }

    var writeback: WritebackResult {
        get throws {
            var released = try entryResult
            released.event = .released
            released.disposition = .init(code: "1C", text: "released")
            released.at = "2025-06-09T12:00:00Z"
            var customs = OrderCustoms.fold([try entryResult, released])!
            customs.revision = 2
            return WritebackResult(
                orderId: customs.orderId, erp: customs.erp, revision: 2, outcome: .applied, attempts: 3,
                message: "customrecord_clw_customs 4411", customs: customs, at: "2025-06-09T12:00:01Z")
        }
    }

    var exception: ExceptionRecord {
        let gap = OrderGap(
            code: "unknown-sku", detail: "SKU NOPE is not in the catalog", fix: "publish NOPE", sku: "NOPE")
        return ExceptionRecord(
            orderId: order.orderId, version: 1, stage: WorkerName.enricher.rawValue, status: "parked", code: gap.code,
            detail: gap.detail, fix: gap.fix, problems: [gap])
    }

    var alert: StructuringAlert {
        StructuringAlert(
            addressKey: enriched.addressKey, day: enriched.arrivalDay ?? "", thresholdUSD: "800.00",
            totalUSD: "900.00",
            consignees: [
                .init(consigneeKey: enriched.consigneeKey, orders: ["SO-1001"], totalUSD: "450.00"),
                .init(consigneeKey: String(repeating: "c", count: 32), orders: ["SO-1002"], totalUSD: "450.00"),
            ], policyVersion: policy.version, reason: "2 consignees at one address over the threshold")
    }
}
