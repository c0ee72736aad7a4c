import Crypto
import Foundation

/// The truck or flight a parcel crosses the border on: one carrier's trip into one port on one
/// arrival day. One manifest covers one conveyance, and all of one consignee's goods on it go on
/// one entry (19 CFR 141.51).
///
/// The trip is the order's `trip` (a truck, trailer or flight number the OMS or carrier gives)
/// and, when the order has none, the warehouse: a carrier's daily run from one warehouse is one
/// trip. So two orders from one warehouse with one carrier arriving on one day share a conveyance.
public struct Conveyance: Codable, Hashable, Sendable, Comparable {
    public var carrier: String
    public var trip: String
    /// The CBP port code.
    public var port: String
    /// The arrival day at the port, in the port's time zone.
    public var arrivalDay: String

    public init(carrier: String, trip: String, port: String, arrivalDay: String) {
        self.carrier = carrier
        self.trip = trip
        self.port = port
        self.arrivalDay = arrivalDay
    }

    /// The conveyance of an enriched order; nil without a port or arrival day. A missing carrier
    /// stays empty: the manifest-builder refuses such a shipment (`carrier` is a data element).
    public init?(of order: EnrichedOrder) {
        guard let port = order.portOfEntry?.code, let day = order.arrivalDay else { return nil }
        let carrier = (order.carrier ?? "").trimmingCharacters(in: .whitespaces)
        let trip = order.trip.flatMap { $0.isEmpty ? nil : $0 } ?? order.warehouse ?? ""
        self.init(carrier: carrier, trip: trip, port: port, arrivalDay: day)
    }

    /// `2506/2026-11-30/dhl/TIJ1`: the key of `released.by-conveyance.v1` and of the
    /// manifest-builder's state.
    public var id: String { "\(port)/\(arrivalDay)/\(carrier.isEmpty ? "-" : carrier)/\(trip.isEmpty ? "-" : trip)" }

    public static func < (lhs: Conveyance, rhs: Conveyance) -> Bool { lhs.id < rhs.id }
}

/// A shipment released for a conveyance, as the manifest-builder files it.
public struct ManifestShipment: Hashable, Sendable {
    public var shipment: ScreenedOrder
    /// The aggregator's decision: T86 under Section 321; any other type means "an entry of the
    /// consignee's", whose final type the manifest decides.
    public var lane: EntryType

    public init(shipment: ScreenedOrder, lane: EntryType) {
        self.shipment = shipment
        self.lane = lane
    }
}

/// One entry on a manifest, with every data element the filer needs for its type.
public struct ManifestEntry: Codable, Hashable, Sendable {
    /// How it reaches CBP: filed through ABI by the filer (T86, T11, T12), or sent to a licensed
    /// broker as a formal-entry request with the same data (T01, T02, T03).
    public enum Submission: String, Codable, Hashable, Sendable {
        case abi = "abi-filing"
        case formalRequest = "formal-entry-request"
    }

    public struct Shipment: Codable, Hashable, Sendable {
        public var orderId: String
        public var shipmentId: String
        public var version: Int
        /// The house bill (T86: one per shipment under the master bill).
        public var houseBill: String?
        public var warehouse: String
        public var shipDate: String
        public var currency: String
        /// The fair retail value in the order's currency and in USD.
        public var value: String
        public var valueUSD: String
        public var fxRate: String?
        public var erp: OrderEvent.ERPReference?
    }

    public struct Line: Codable, Hashable, Sendable {
        public var shipmentId: String
        public var lineNumber: Int
        public var sku: String
        public var hts: String
        public var description: String
        public var originCountry: String
        public var mid: String
        public var quantity: Int
        /// The line's value in the order's currency (quantity × unit price) and in USD.
        public var value: String
        public var currency: String
        public var valueUSD: String
        public var pga: [PGA]
        public var adcvdCase: String?
    }

    /// A PGA flag on a line and how it is answered: the message set's reference, or a disclaimer.
    public struct PGA: Codable, Hashable, Sendable {
        public var flag: String
        public var agency: String
        public var data: String?
        public var disclaimer: String?
    }

    /// `<manifestId>/E<n>`.
    public var entryId: String
    public var entryType: EntryType
    public var submission: Submission
    public var consigneeKey: String
    public var consignee: Consignee
    /// The shipper (seller): the warehouse the goods leave from.
    public var shipper: String
    public var port: String
    public var arrivalDay: String
    public var carrier: String
    public var trip: String
    public var masterBill: String
    public var totalValueUSD: String
    public var shipments: [Shipment]
    public var lines: [Line]
    public var reasons: [DecisionReason]

    /// The shipments' ids.
    public var shipmentIds: [String] { shipments.map(\.shipmentId) }
}

/// A data element an entry needs and a shipment lacks.
public struct FilingGap: Hashable, Sendable {
    public var element: String
    public var detail: String
    public var fix: String
}

/// How the manifest-builder turns the shipments of one closed manifest into entries. Pure.
public enum ManifestPlan {
    /// The deterministic id of a conveyance's `sequence`-th manifest: the same input builds the
    /// same ids after a crash or on another host.
    public static func manifestId(_ conveyance: Conveyance, sequence: Int) -> String {
        let carrier = conveyance.carrier.isEmpty ? "NOCARRIER" : conveyance.carrier.uppercased()
        let day = conveyance.arrivalDay.replacingOccurrences(of: "-", with: "")
        return "MF-\(conveyance.port)-\(day)-\(carrier)-\(conveyance.trip.uppercased())-\(sequence)"
    }

    /// A bill number derived from `seed`: a 4-letter issuer code and 11 digits (the shape of a
    /// bill of lading: SCAC + number), the same for the same seed.
    public static func billNumber(_ seed: String, issuer: String = "CLWY") -> String {
        let digest = SHA256.hash(data: Data(seed.utf8))
        let number = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % 100_000_000_000
        let digits = String(number)
        return issuer + String(repeating: "0", count: 11 - digits.count) + digits
    }

    /// The entries of a manifest, and the shipments refused for a missing data element.
    ///
    /// - T86 (Section 321): one entry, one house bill, per shipment, under the manifest's master
    ///   bill (CBP's Type 86 FAQ: one bill per entry).
    /// - Otherwise one entry per consignee per conveyance (19 CFR 141.51): Type 11 while its total
    ///   stays within the informal-entry ceiling (19 CFR 143.21(a)) and no line forces another
    ///   type; Type 03 when a line is under an AD/CVD case, whatever the value (CBP Form 7501
    ///   instructions, block 2: there is no informal AD/CVD type); else Type 01. Formal types go
    ///   to a licensed broker as a formal-entry request.
    /// - A shipment lacking an element its entry type needs is refused, never filed; the rest of
    ///   the manifest is. Quota goods take Type 12 within the ceiling and 02 above; Chapter 99
    ///   articles (Section 301 / 232) over the policy's `chapter99FormalAboveUSD` take formal
    ///   entry (19 CFR 143.21(a)).
    public static func entries(
        manifestId: String, conveyance: Conveyance, shipments: [ManifestShipment], policy: Policy
    ) -> (entries: [ManifestEntry], refused: [(shipment: ManifestShipment, gaps: [FilingGap])]) {
        let masterBill = billNumber(manifestId)
        var refused: [(ManifestShipment, [FilingGap])] = []
        var accepted: [ManifestShipment] = []
        for shipment in shipments.sorted(by: { $0.shipment.shipmentId < $1.shipment.shipmentId }) {
            let gaps = gaps(shipment, conveyance: conveyance)
            if gaps.isEmpty { accepted.append(shipment) } else { refused.append((shipment, gaps)) }
        }
        var entries: [ManifestEntry] = []
        func nextId() -> String { "\(manifestId)/E\(entries.count + 1)" }
        let ceiling = policy.informalEntryCeilingUSD
        for shipment in accepted where shipment.lane == .t86 {
            let id = nextId()
            let value = usd(shipment.shipment.order.valueUSD)
            entries.append(
                entry(
                    id: id, type: .t86, [shipment], conveyance: conveyance, masterBill: masterBill,
                    houseBills: [shipment.shipment.shipmentId: billNumber(id + "/" + shipment.shipment.shipmentId)],
                    reasons: [
                        DecisionReason(
                            rule: "entry.t86",
                            text:
                                "Section 321 shipment of \(dollars(value)): its own Type 86 entry and house bill under master bill \(masterBill), apart from the consignee's other goods on the conveyance, which take another form of entry [CBP Type 86 FAQ; 19 CFR 10.151; 19 CFR 141.52(c)]",
                            policyVersion: policy.version)
                    ]))
        }
        let formal = accepted.filter { $0.lane != .t86 }
        let byConsignee = Dictionary(grouping: formal, by: \.shipment.order.consigneeKey)
        for consignee in byConsignee.keys.sorted() {
            let group = byConsignee[consignee]!
            let total = group.reduce(Decimal(0)) { $0 + usd($1.shipment.order.valueUSD) }
            let adcvd = group.flatMap { $0.shipment.order.lines ?? [] }.compactMap(\.adcvdCase)
            let forcedFormal = group.filter {
                $0.shipment.requiredLane?.isFormal == true || $0.lane.isFormal
            }
            let quota = group.contains { $0.lane == .t12 || $0.lane == .t02 || $0.shipment.allowedLanes.contains(.t12) }
            let chapter99 = group.reduce(Decimal(0)) {
                $0 + ((try? AggregationRequest($1.shipment))?.chapter99ValueUSD ?? 0)
            }
            var reasons = [
                DecisionReason(
                    rule: "entry.per-consignee-conveyance",
                    text:
                        "\(group.count) shipment\(group.count == 1 ? "" : "s") of one consignee on conveyance \(conveyance.id): one entry at \(dollars(total)) [19 CFR 141.51]",
                    policyVersion: policy.version)
            ]
            func because(_ rule: String, _ text: String) {
                reasons.append(DecisionReason(rule: rule, text: text, policyVersion: policy.version))
            }
            let type: EntryType
            if !adcvd.isEmpty {
                type = .nonDeMinimis(adcvd: true, quota: quota, formal: true)
                because(
                    "entry.t03",
                    "goods under AD/CVD case \(Set(adcvd).sorted().joined(separator: ", ")): Type \(type.rawValue.dropFirst()) whatever the value [CBP Form 7501 instructions, block 2]"
                )
            } else if !forcedFormal.isEmpty {
                type = .nonDeMinimis(adcvd: false, quota: quota, formal: true)
                because(
                    "entry.formal-required",
                    "a formal entry is required for \(forcedFormal.map(\.shipment.shipmentId).joined(separator: ", ")): Type \(type.rawValue.dropFirst())"
                )
            } else if let limit = policy.chapter99FormalAboveUSD, chapter99 > limit {
                type = .nonDeMinimis(adcvd: false, quota: quota, formal: true)
                because(
                    "entry.chapter99",
                    "\(dollars(chapter99)) of articles classified in Chapter 99, subchapters III and IV, is over \(dollars(limit)): formal entry (Type \(type.rawValue.dropFirst())) [19 CFR 143.21(a)]"
                )
            } else if total > ceiling {
                type = .nonDeMinimis(adcvd: false, quota: quota, formal: true)
                because(
                    "entry.over-ceiling",
                    "\(dollars(total)) is over the \(dollars(ceiling)) informal-entry ceiling: one formal entry (Type \(type.rawValue.dropFirst())), never split into informal ones [19 CFR 143.21(a); 19 CFR 141.51]"
                )
            } else {
                type = .nonDeMinimis(adcvd: false, quota: quota, formal: false)
                because(
                    type == .t12 ? "entry.t12" : "entry.t11",
                    "\(dollars(total)) is within the \(dollars(ceiling)) informal-entry ceiling: informal entry (Type \(type.rawValue.dropFirst())) [19 CFR 143.21(a)]"
                )
            }
            entries.append(
                entry(
                    id: nextId(), type: type, group, conveyance: conveyance, masterBill: masterBill, houseBills: [:],
                    reasons: reasons))
        }
        return (entries, refused)
    }

    /// The elements `shipment` lacks for filing (CBP's Type 86 FAQ lists them for Type 86; the
    /// informal and formal entries need the same and more, CBP Form 7501): 10-digit HTS, origin,
    /// MID, value in USD and the original currency, quantity, description, consignee name and
    /// address, shipper, port, arrival date, carrier, and PGA data or a disclaimer for a flag
    /// that asks for one. The HTS number's validity on the date was checked by the pga-router
    /// against the HTS reference (`hts-not-in-reference`).
    public static func gaps(_ item: ManifestShipment, conveyance: Conveyance) -> [FilingGap] {
        let order = item.shipment.order
        var gaps: [FilingGap] = []
        func gap(_ element: String, _ detail: String, _ fix: String) {
            gaps.append(FilingGap(element: element, detail: detail, fix: fix))
        }
        if conveyance.carrier.isEmpty {
            gap("carrier", "the order names no carrier", "send an updated order with the carrier that takes the parcel")
        }
        if conveyance.trip.isEmpty {
            gap("trip", "the order names neither a trip nor a warehouse", "send an updated order with its warehouse")
        }
        if order.consignee?.name.trimmingCharacters(in: .whitespaces).isEmpty ?? true {
            gap("consignee.name", "no consignee name", "send an updated order with the consignee's name")
        }
        if let consignee = order.consignee {
            let missing = [
                ("line1", consignee.line1), ("city", consignee.city), ("region", consignee.region),
                ("postalCode", consignee.postalCode), ("country", consignee.country),
            ].filter { $0.1.trimmingCharacters(in: .whitespaces).isEmpty }.map(\.0)
            if !missing.isEmpty {
                gap(
                    "consignee.address", "the consignee's address lacks \(missing.joined(separator: ", "))",
                    "send an updated order with the consignee's full address")
            }
        } else {
            gap("consignee.address", "no consignee address", "send an updated order with the consignee's address")
        }
        if order.warehouse?.isEmpty ?? true {
            gap("shipper", "no warehouse to name as shipper", "send an updated order with its warehouse")
        }
        if order.currency == nil || order.orderValue == nil {
            gap(
                "value.original-currency", "no value in the order's own currency",
                "send an updated order with its currency and prices")
        }
        if (try? Decimal(parsingPlain: order.valueUSD ?? "")).map({ $0 > 0 }) != true {
            gap("value.usd", "no positive USD value", "check the order's prices and the FX rate for its ship date")
        }
        let lines = order.lines ?? []
        if lines.isEmpty { gap("lines", "the shipment has no lines", "send an updated order with its lines") }
        for line in lines {
            let name = "line \(line.lineNumber) (\(line.sku))"
            if (try? HTSCode(line.hts))?.isStatisticalReportingNumber != true {
                gap(
                    "hts", "\(name): \"\(line.hts)\" is not a 10-digit HTS number",
                    "correct the SKU's HTS number on catalog.v1")
            }
            if (try? CountryCode(line.originCountry)) == nil {
                gap("origin", "\(name): no valid country of origin", "set the SKU's originCountry on catalog.v1")
            }
            if (try? MID(line.mid)) == nil {
                gap(
                    "mid", "\(name): \"\(line.mid)\" is not a valid MID",
                    "set the SKU's manufacturer (or MID) on catalog.v1")
            }
            if line.quantity <= 0 {
                gap("quantity", "\(name): quantity \(line.quantity)", "send an updated order with the quantity")
            }
            if line.description?.trimmingCharacters(in: .whitespaces).isEmpty ?? true {
                gap("description", "\(name): no description of the goods", "set the SKU's description on catalog.v1")
            }
            for flag in item.shipment.screening.first(where: { $0.lineNumber == line.lineNumber })?.pgaFlags ?? []
            where flag.dataRequired && flag.disclaimer == nil && line.pgaData?[flag.flag] == nil {
                gap(
                    "pga.\(flag.flag)",
                    "\(name): \(flag.agency) flag \(flag.flag) asks for the agency's data, and the SKU has neither its PGA message data nor a disclaimer",
                    "add the \(flag.flag) message data (pgaData) or, where the flag allows one, a disclaim code (pgaDisclaimers) to the SKU on catalog.v1"
                )
            }
        }
        return gaps
    }

    private static func entry(
        id: String, type: EntryType, _ shipments: [ManifestShipment], conveyance: Conveyance, masterBill: String,
        houseBills: [String: String], reasons: [DecisionReason]
    ) -> ManifestEntry {
        let first = shipments[0].shipment.order
        let consignee = first.consignee!
        let total = shipments.reduce(Decimal(0)) { $0 + usd($1.shipment.order.valueUSD) }
        return ManifestEntry(
            entryId: id, entryType: type, submission: type.isFormal ? .formalRequest : .abi,
            consigneeKey: first.consigneeKey,
            consignee: consignee,
            shipper: first.warehouse ?? "", port: conveyance.port, arrivalDay: conveyance.arrivalDay,
            carrier: conveyance.carrier, trip: conveyance.trip, masterBill: masterBill,
            totalValueUSD: Money(total, .usd).amountText,
            shipments: shipments.map { item in
                let order = item.shipment.order
                return .init(
                    orderId: order.orderId, shipmentId: item.shipment.shipmentId, version: order.version,
                    houseBill: houseBills[item.shipment.shipmentId], warehouse: order.warehouse ?? "",
                    shipDate: order.shipDate ?? "", currency: order.currency ?? "", value: order.orderValue ?? "",
                    valueUSD: order.valueUSD ?? "", fxRate: order.fx?.rate, erp: order.erp)
            },
            lines: shipments.flatMap { item in
                (item.shipment.order.lines ?? []).map { line in
                    let flags = item.shipment.screening.first { $0.lineNumber == line.lineNumber }?.pgaFlags ?? []
                    let value = (try? Decimal(parsingPlain: line.unitPrice)).map {
                        ($0 * Decimal(line.quantity)).rounded(scale: 2).plainText(minimumFractionDigits: 2)
                    }
                    return ManifestEntry.Line(
                        shipmentId: item.shipment.shipmentId, lineNumber: line.lineNumber, sku: line.sku,
                        hts: line.hts, description: line.description ?? "", originCountry: line.originCountry,
                        mid: line.mid, quantity: line.quantity, value: value ?? line.unitPrice,
                        currency: item.shipment.order.currency ?? "", valueUSD: line.valueUSD,
                        pga: flags.map {
                            .init(
                                flag: $0.flag, agency: $0.agency, data: line.pgaData?[$0.flag],
                                disclaimer: $0.disclaimer)
                        }, adcvdCase: line.adcvdCase)
                }
            }, reasons: reasons)
    }

    private static func usd(_ text: String?) -> Decimal { (try? Decimal(parsingPlain: text ?? "0")) ?? 0 }
    private static func dollars(_ amount: Decimal) -> String {
        "$" + amount.rounded(scale: 2).plainText(minimumFractionDigits: 2)
    }
}
