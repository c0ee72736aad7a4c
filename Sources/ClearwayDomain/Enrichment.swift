import Foundation

/// Something that stops an order from being enriched, and what would fix it.
public struct OrderGap: Codable, Hashable, Sendable {
    /// A stable code, e.g. `unknown-sku`, `missing-hts`, `missing-fx-rate`.
    public var code: String
    /// What is wrong, with the values involved.
    public var detail: String
    /// What a person does to fix it.
    public var fix: String
    /// The SKU concerned, for a line's gap.
    public var sku: String?
    /// The 1-based line number, for a line's gap.
    public var line: Int?
    /// The reference-data key whose arrival may fix it: `catalog:<sku>` or `fx:<currency>`; nil
    /// when only a new version of the order (or a configuration change) can.
    public var waitsOn: String?

    public init(code: String, detail: String, fix: String, sku: String? = nil, line: Int? = nil, waitsOn: String? = nil)
    {
        self.code = code
        self.detail = DomainError.bounded(detail)
        self.fix = fix
        self.sku = sku
        self.line = line
        self.waitsOn = waitsOn
    }
}

/// A reason on a decision: which rule, and the words an auditor reads.
public struct DecisionReason: Codable, Hashable, Sendable {
    public var rule: String
    public var text: String
    /// The policy version the rule came from, when a policy decided.
    public var policyVersion: String?

    public init(rule: String, text: String, policyVersion: String? = nil) {
        self.rule = rule
        self.text = text
        self.policyVersion = policyVersion
    }
}

/// An enriched order (`orders.enriched.v1`, keyed by `consigneeKey`).
public struct EnrichedOrder: Codable, Hashable, Sendable {
    /// A line with what customs needs to know about it.
    public struct Line: Codable, Hashable, Sendable {
        public var lineNumber: Int
        public var sku: String
        public var quantity: Int
        public var unitPrice: String
        /// quantity × unit price converted to USD, rounded to cents.
        public var valueUSD: String
        /// The 10-digit HTS number, dotted (`6109.10.0012`).
        public var hts: String
        public var originCountry: String
        public var description: String?
        public var mid: String
        /// `catalog` when the catalog gave the MID, `built` when built from the manufacturer.
        public var midSource: String
        public var pgaFlags: [String]?
        public var pgaDisclaimers: [String: String]?
        /// The PGA message data filed for a flag (by flag), from the catalog.
        public var pgaData: [String: String]? = nil
        public var adcvdCase: String?
    }

    /// The exchange rate used and why (19 CFR 159).
    public struct FX: Codable, Hashable, Sendable {
        public var currency: String
        public var rate: String
        public var basis: String
        public var dateOfExportation: String
    }

    public var orderId: String
    public var type: OrderEvent.Kind
    public var version: Int
    public var consigneeKey: String
    public var addressKey: String
    public var consignee: Consignee?
    public var shipDate: String?
    /// The calendar day of arrival at the port, in the port's time zone.
    public var arrivalDay: String?
    public var warehouse: String?
    public var carrier: String?
    /// The order's trip, when it names one (`OrderEvent.trip`).
    public var trip: String? = nil
    public var portOfEntry: Port?
    public var currency: String?
    /// The order's fair retail value in its own currency.
    public var orderValue: String?
    /// The order's fair retail value in USD: the order total converted once, rounded to cents.
    public var valueUSD: String?
    public var fx: FX?
    public var lines: [Line]?
    public var erp: OrderEvent.ERPReference?
    public var reasons: [DecisionReason]
}

/// A catalog record with its checks done once (HTS-10, origin, MID), however many order lines
/// use it.
public struct CatalogEntry: Sendable {
    public let item: CatalogItem
    let gaps: [OrderGap]
    let hts: HTSCode?
    let origin: CountryCode?
    let mid: MID?

    /// Checks an item.
    public init(_ item: CatalogItem) {
        self.item = item
        (gaps, hts, origin, mid) = Enrichment.check(item)
    }
}

/// The reference data an order is enriched from.
public struct EnrichmentReferences: Sendable {
    /// The catalog record of a SKU, nil when the SKU is unknown or retired; throws
    /// `invalidReferenceData` for a record that cannot be read.
    public var catalogItem: @Sendable (String) throws -> CatalogEntry?
    /// The certified rates that can apply to a currency on a date (`ExchangeRate.tableKeys`).
    public var rates: @Sendable (CurrencyCode, Day) throws -> [ExchangeRate]
    public var warehouses: WarehouseDirectory
    public var secret: ConsigneeKeySecret

    public init(
        catalogItem: @escaping @Sendable (String) throws -> CatalogEntry?,
        rates: @escaping @Sendable (CurrencyCode, Day) throws -> [ExchangeRate], warehouses: WarehouseDirectory,
        secret: ConsigneeKeySecret
    ) {
        self.catalogItem = catalogItem
        self.rates = rates
        self.warehouses = warehouses
        self.secret = secret
    }
}

/// What enrichment made of an order.
public enum EnrichmentResult: Hashable, Sendable {
    case enriched(EnrichedOrder)
    /// The order cannot go on until these are fixed; every gap is reported, not just the first.
    case gaps([OrderGap])
}

/// Joins an order with the SKU master and the certified exchange rates.
public enum Enrichment {
    /// The most units one order line may hold (`implausible-quantity` above).
    public static let maximumQuantity = 1_000_000
    /// A unit price of this many units of any currency or more is not a price
    /// (`implausible-price`): a trillion, about 700 million USD in won, the cheapest unit priced.
    public static let maximumUnitPrice: Decimal = 1_000_000_000_000

    /// Enriches a placed or updated order (a cancellation needs only its keys: `cancellation`).
    public static func enrich(_ order: OrderEvent, references: EnrichmentReferences) -> EnrichmentResult {
        var gaps: [OrderGap] = []
        var reasons: [DecisionReason] = []

        var keys: ConsigneeKeys?
        if let consignee = order.consignee {
            do {
                keys = try consignee.keys(secret: references.secret)
            } catch let error as DomainError {
                gaps.append(
                    OrderGap(
                        code: "invalid-consignee", detail: error.message,
                        fix: "send an updated order with the consignee's full name and street address"))
            } catch {}
        }

        var route: (warehouse: Warehouse, port: Port)?
        if let code = order.warehouse {
            if let warehouse = references.warehouses.warehouses[code],
                let port = try? references.warehouses.ports.port(warehouse.port)
            {
                route = (warehouse, port)
            } else {
                gaps.append(
                    OrderGap(
                        code: "unknown-warehouse",
                        detail:
                            "warehouse \(code) is not in the warehouse → port configuration (known: \(references.warehouses.warehouses.keys.sorted().joined(separator: ", ")))",
                        fix:
                            "add \(code) with its port of entry and transit days to the warehouses file (CLEARWAY_WAREHOUSES) and restart the enricher"
                    ))
            }
        }
        // A timestamp is read in the port's time zone (the warehouse is a truck ride from it);
        // a date is the date at the warehouse already.
        let shipDay = order.shipDate.flatMap { text in
            ShipDate.instant(text).map { instant in
                Day(instant, in: (try? route?.port.zone()) ?? TimeZone(identifier: "UTC")!)
            } ?? (try? Day(text))
        }

        var currency: CurrencyCode?
        if let text = order.currency {
            currency = try? CurrencyCode(text)
            if currency?.isISO4217 != true {
                currency = nil
                gaps.append(
                    OrderGap(
                        code: "unsupported-currency", detail: "currency \"\(text)\" is not a supported ISO 4217 code",
                        fix: "send an updated order priced in a supported currency (e.g. USD, MXN, CAD)"))
            }
        }

        var lines: [EnrichedOrder.Line] = []
        var total: Money?
        var lineValues: [Money] = []
        for (index, line) in (order.lines ?? []).enumerated() {
            let number = index + 1
            var lineOK = true
            if line.quantity <= 0 {
                lineOK = false
                gaps.append(
                    OrderGap(
                        code: "non-positive-quantity",
                        detail: "line \(number) (\(line.sku)) has quantity \(line.quantity)",
                        fix: "send an updated order with a quantity of 1 or more", sku: line.sku, line: number))
            } else if line.quantity > Self.maximumQuantity {
                lineOK = false
                gaps.append(
                    OrderGap(
                        code: "implausible-quantity",
                        detail:
                            "line \(number) (\(line.sku)) has quantity \(line.quantity), more than the \(Self.maximumQuantity) units a line of one shipment may hold",
                        fix:
                            "send an updated order with the quantity shipped (a larger consignment is a formal entry of its own)",
                        sku: line.sku, line: number))
            }
            var price: Money?
            if let currency {
                do {
                    let parsed = try Money(parsing: line.unitPrice, currency: currency)
                    if parsed.amount >= Self.maximumUnitPrice {
                        lineOK = false
                        gaps.append(
                            OrderGap(
                                code: "implausible-price",
                                detail:
                                    "line \(number) (\(line.sku)) has unit price \(line.unitPrice.prefix(60)) \(currency), not a price (at most \(Self.maximumUnitPrice) units of any currency)",
                                fix: "send an updated order with the price the consignee paid (fair retail value)",
                                sku: line.sku, line: number))
                    } else if parsed.amount <= 0 {
                        lineOK = false
                        gaps.append(
                            OrderGap(
                                code: "non-positive-price",
                                detail: "line \(number) (\(line.sku)) has unit price \(line.unitPrice) \(currency)",
                                fix: "send an updated order with the price the consignee paid (fair retail value)",
                                sku: line.sku, line: number))
                    } else {
                        price = parsed
                    }
                } catch {
                    lineOK = false
                    gaps.append(
                        OrderGap(
                            code: "invalid-price",
                            detail:
                                "line \(number) (\(line.sku)): unit price \"\(line.unitPrice)\" is not a decimal amount",
                            fix: "send an updated order with the unit price as a decimal string such as \"412.50\"",
                            sku: line.sku, line: number))
                }
            }
            let entry: CatalogEntry?
            do {
                entry = try references.catalogItem(line.sku)
            } catch {
                gaps.append(
                    OrderGap(
                        code: "invalid-catalog-record",
                        detail: "the catalog record of \(line.sku) cannot be read: \(describe(error))",
                        fix: "publish a valid catalog.v1 record for \(line.sku)", sku: line.sku, line: number,
                        waitsOn: "catalog:\(line.sku)"))
                continue
            }
            guard let entry else {
                gaps.append(
                    OrderGap(
                        code: "unknown-sku", detail: "SKU \(line.sku) (line \(number)) is not in the catalog",
                        fix: "publish the SKU on catalog.v1 with its HTS-10, origin and manufacturer",
                        sku: line.sku, line: number, waitsOn: "catalog:\(line.sku)"))
                continue
            }
            let item = entry.item
            gaps += entry.gaps.map { gap in
                var gap = gap
                gap.line = number
                return gap
            }
            guard entry.gaps.isEmpty, lineOK, let price, let hts = entry.hts, let origin = entry.origin,
                let mid = entry.mid
            else { continue }
            let value = price.times(line.quantity)
            lineValues.append(value)
            total = try? total.map { try $0.adding(value) } ?? value
            let builtMID = item.mid?.isEmpty ?? true
            if builtMID {
                reasons.append(
                    DecisionReason(
                        rule: "mid.built",
                        text:
                            "line \(number) (\(line.sku)): MID \(mid) built from the manufacturer's name, street and city (19 CFR 102 Appendix)"
                    ))
            }
            lines.append(
                EnrichedOrder.Line(
                    lineNumber: number, sku: line.sku, quantity: line.quantity, unitPrice: price.amountText,
                    valueUSD: "", hts: hts.description, originCountry: origin.rawValue, description: item.description,
                    mid: mid.rawValue, midSource: builtMID ? "built" : "catalog", pgaFlags: item.pgaFlags,
                    pgaDisclaimers: item.pgaDisclaimers, pgaData: item.pgaData, adcvdCase: item.adcvdCase))
        }

        // Value: the fair retail value in the country of shipment (19 CFR 10.151), converted at the
        // rate of the date of exportation (19 CFR 159.32, 159.34): "the actual date the merchandise
        // finally leaves the country of exportation" (19 CFR 152.1(c)), for a truck the border
        // crossing, so the arrival day at the port, not the ship date (review A11: a warehouse a
        // day from the border ships on the 31st of March and exports on the 1st of April).
        var fx: EnrichedOrder.FX?
        var orderUSD: Money?
        if gaps.isEmpty, let currency, let shipDay, let total {
            let exported = route.map { shipDay.adding(days: $0.warehouse.transitDays) } ?? shipDay
            do {
                let rates = ExchangeRates(try references.rates(currency, exported))
                let conversion = try rates.toUSD(total, exportedOn: exported)
                orderUSD = conversion.usd
                for index in lines.indices {
                    lines[index].valueUSD = try rates.toUSD(lineValues[index], exportedOn: exported).usd.amountText
                }
                if currency != .usd {
                    fx = EnrichedOrder.FX(
                        currency: currency.rawValue, rate: conversion.rate.plainText(),
                        basis: conversion.basis.rawValue, dateOfExportation: exported.description)
                }
                reasons.insert(
                    DecisionReason(
                        rule: "value.fair-retail",
                        text:
                            "order value \(total) is the sum of quantity × unit price, the fair retail value in the country of shipment (19 CFR 10.151); \(conversion.reason)"
                    ), at: 0)
            } catch let error as DomainError where error.code == .missingRate {
                gaps.append(
                    OrderGap(
                        code: "missing-fx-rate", detail: error.message,
                        fix:
                            "publish the certified \(currency) rate for \(exported) (daily) or its quarter (quarterly) on fx-rates.v1",
                        waitsOn: "fx:\(currency)"))
            } catch {
                gaps.append(
                    OrderGap(
                        code: "invalid-fx-rate", detail: "the \(currency) rates cannot be read: \(describe(error))",
                        fix: "publish valid fx-rates.v1 records for \(currency)", waitsOn: "fx:\(currency)"))
            }
        }
        guard gaps.isEmpty, let keys, let route, let shipDay, let currency, let total, let orderUSD else {
            return .gaps(gaps)
        }
        let arrival = shipDay.adding(days: route.warehouse.transitDays)
        reasons.insert(
            DecisionReason(
                rule: "port.route",
                text:
                    "warehouse \(route.warehouse.code) ships through port \(route.port.code) (\(route.port.name)); arrival day \(arrival) is the ship date plus \(route.warehouse.transitDays) day(s), a day in \(route.port.timeZone)"
            ), at: 1)
        return .enriched(
            EnrichedOrder(
                orderId: order.orderId, type: order.type, version: order.version, consigneeKey: keys.consigneeKey,
                addressKey: keys.addressKey, consignee: order.consignee, shipDate: shipDay.description,
                arrivalDay: arrival.description, warehouse: route.warehouse.code, carrier: order.carrier,
                trip: order.trip, portOfEntry: route.port, currency: currency.rawValue, orderValue: total.amountText,
                valueUSD: orderUSD.amountText, fx: fx, lines: lines, erp: order.erp, reasons: reasons))
    }

    /// A cancellation as it flows on: the order's keys (from its last enriched version) so the
    /// aggregator can free the capacity it held.
    public static func cancellation(
        _ order: OrderEvent, keys: ConsigneeKeys, reason: String
    ) -> EnrichedOrder {
        EnrichedOrder(
            orderId: order.orderId, type: .cancelled, version: order.version, consigneeKey: keys.consigneeKey,
            addressKey: keys.addressKey, erp: order.erp,
            reasons: [DecisionReason(rule: "order.cancelled", text: reason)])
    }

    /// The gaps of one catalog record: HTS-10, origin, MID (`line` is filled in per order line).
    static func check(_ item: CatalogItem) -> (gaps: [OrderGap], hts: HTSCode?, origin: CountryCode?, mid: MID?) {
        let line: Int? = nil
        var gaps: [OrderGap] = []
        let waits = "catalog:\(item.sku)"
        var hts: HTSCode?
        if let text = item.hts, !text.isEmpty {
            do {
                let code = try HTSCode(text)
                // An entry line needs the 10-digit statistical reporting number, and a chapter 98/99
                // number never stands alone on a line (HTSUS General Note / chapter 99 notes).
                _ = try LineClassification(primary: code)
                if code.isStatisticalReportingNumber {
                    hts = code
                } else {
                    gaps.append(
                        OrderGap(
                            code: "invalid-hts",
                            detail:
                                "SKU \(item.sku): HTS \(code) has \(code.digits.count) digits; an entry needs all 10",
                            fix: "publish the SKU's 10-digit HTS statistical reporting number on catalog.v1",
                            sku: item.sku, line: line, waitsOn: waits))
                }
            } catch let error as DomainError {
                gaps.append(
                    OrderGap(
                        code: "invalid-hts", detail: "SKU \(item.sku): \(error.message)",
                        fix: "publish a valid 10-digit HTS number for the SKU on catalog.v1", sku: item.sku, line: line,
                        waitsOn: waits))
            } catch {}
        } else {
            gaps.append(
                OrderGap(
                    code: "missing-hts", detail: "SKU \(item.sku) has no HTS number in the catalog",
                    fix: "classify the SKU and publish its 10-digit HTS number on catalog.v1", sku: item.sku,
                    line: line,
                    waitsOn: waits))
        }
        var origin: CountryCode?
        if let text = item.originCountry, !text.isEmpty {
            origin = try? CountryCode(text)
            if origin == nil {
                gaps.append(
                    OrderGap(
                        code: "invalid-origin",
                        detail: "SKU \(item.sku): origin \"\(text)\" is not an ISO country code",
                        fix: "publish the SKU's ISO 3166 country of origin on catalog.v1", sku: item.sku, line: line,
                        waitsOn: waits))
            }
        } else {
            gaps.append(
                OrderGap(
                    code: "missing-origin", detail: "SKU \(item.sku) has no country of origin in the catalog",
                    fix: "publish the SKU's country of origin on catalog.v1", sku: item.sku, line: line, waitsOn: waits)
            )
        }
        var mid: MID?
        do {
            let resolved = try item.resolvedMID()
            // The MID's first two letters are the goods' country of origin (19 CFR 102 Appendix
            // para. 2); a catalog MID naming another country would be filed wrong, so the line waits
            // for a corrected record like any other catalog gap.
            if let origin, let mismatch = item.midOriginMismatch(resolved, origin: origin) {
                gaps.append(
                    OrderGap(
                        code: "mid-origin-mismatch", detail: mismatch,
                        fix:
                            "publish the SKU on catalog.v1 with an MID that starts with its country of origin, or without an MID so that it is built from the manufacturer",
                        sku: item.sku, line: line, waitsOn: waits))
            } else {
                mid = resolved
            }
        } catch let error as DomainError {
            gaps.append(
                OrderGap(
                    code: "missing-mid", detail: error.message,
                    fix:
                        "publish the manufacturer's MID, or its name, street, city and country, for the SKU on catalog.v1",
                    sku: item.sku, line: line, waitsOn: waits))
        } catch {}
        return (gaps, hts, origin, mid)
    }
}
