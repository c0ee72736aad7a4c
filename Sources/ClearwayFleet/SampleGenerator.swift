import ClearwayDomain
import Foundation

/// One record of the sample: a logical topic (`orders.v1`), its key and its value as it goes on
/// the wire (JSON, or on purpose not).
public struct SampleRecord: Hashable, Sendable {
    public var topic: String
    public var key: String
    public var value: String

    public init(topic: String, key: String, value: String) {
        self.topic = topic
        self.key = key
        self.value = value
    }
}

/// A generated sample: the reference data first, then the orders in the order they are sent.
public struct Sample: Sendable {
    public var catalog: [SampleRecord]
    public var fxRates: [SampleRecord]
    public var orders: [SampleRecord]
    /// The ship days the orders cover.
    public var days: [Day]
    /// Keys of the order records that cannot be read at all: they belong in the DLQ.
    public var unreadableKeys: Set<String>

    /// Every record, reference data first.
    public var records: [SampleRecord] { catalog + fxRates + orders }

    /// The distinct keys of the order records: every one should end with one outcome.
    public var orderKeys: Set<String> { Set(orders.map(\.key)) }
}

/// A seeded generator of realistic data for the demo, the end-to-end test and the pipeline
/// benchmark.
///
/// - The catalog (`catalog.v1`, 227 SKUs): T-shirts made in Mexico, China-origin electronics
///   (Section 301 on headphones), FDA-flagged coffee and cosmetics (a few cosmetics with the FD1
///   disclaimer), toys, Section 232 steel and aluminium (one steel SKU under an AD/CVD case),
///   Scotch whisky (IRC-taxed), and seven SKUs with gaps: no HTS, an invalid HTS (chapter 77 is
///   reserved), no manufacturer, no origin.
/// - FX rates (`fx-rates.v1`): the quarterly and the daily MXN and CAD rates for every ship day,
///   one MXN day 6 % off its quarterly rate (so the daily rate applies, 19 CFR 159.34(d)).
/// - Orders (`orders.v1`) for `consignees` buyers over `days` ship days ending `lastDay`: one-off
///   buyers, repeat buyers on several days, repeat buyers on one day, households of several
///   names at one address, spelling variants of one address, updates, cancellations,
///   redelivered duplicates, and a few records that are wrong (unreadable, unknown warehouse,
///   a currency with no rate, no lines).
///
/// The same seed and settings give the same records, byte for byte.
public struct SampleGenerator: Sendable {
    public var seed: UInt64
    public var consignees: Int
    public var days: Int
    public var lastDay: Day

    public init(seed: UInt64 = 2026, consignees: Int = 1_000, days: Int = 4, lastDay: Day) {
        self.seed = seed
        self.consignees = consignees
        self.days = days
        self.lastDay = lastDay
    }

    /// Roughly what one USD buys, for pricing; the rates published are near these.
    static let unitsPerUSD: [String: Double] = ["MXN": 18.5, "CAD": 1.40, "USD": 1]

    public func generate() -> Sample {
        var random = SplitMix(seed: seed)
        let catalog = Self.catalog(random: &random)
        let shipDays = (0..<max(1, days)).map { lastDay.adding(days: $0 - max(1, days) + 1) }
        let rates = Self.rates(days: shipDays, random: &random)
        var builder = OrderBuilder(catalog: catalog, days: shipDays, random: random)
        builder.build(consignees: consignees)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func json<T: Encodable>(_ value: T) -> String { String(decoding: try! encoder.encode(value), as: UTF8.self) }
        return Sample(
            catalog: catalog.map { SampleRecord(topic: "catalog.v1", key: $0.item.sku, value: json($0.item)) },
            fxRates: rates.map { SampleRecord(topic: "fx-rates.v1", key: $0.tableKey, value: json($0)) },
            orders: builder.events.map { event in
                switch event {
                case .order(let order): SampleRecord(topic: "orders.v1", key: order.orderId, value: json(order))
                case .raw(let key, let text): SampleRecord(topic: "orders.v1", key: key, value: text)
                }
            },
            days: shipDays, unreadableKeys: builder.unreadableKeys)
    }

    // MARK: - Catalog

    /// A SKU and its price in USD, for pricing the orders.
    struct Product {
        var item: CatalogItem
        var priceUSD: Double
        var family: Family
    }

    enum Family: CaseIterable {
        case apparel, electronics, coffee, cosmetics, toys, metals, spirits, gaps

        /// How often a line is of this family.
        var weight: Double {
            switch self {
            case .apparel: 0.44
            case .electronics: 0.15
            case .coffee: 0.10
            case .cosmetics: 0.10
            case .toys: 0.12
            case .metals: 0.04
            case .spirits: 0.02
            case .gaps: 0.03
            }
        }
    }

    static func catalog(random: inout SplitMix) -> [Product] {
        var products: [Product] = []
        func add(
            _ family: Family, _ count: Int, prefix: String, hts: [String?], origin: [String?], price: ClosedRange<Int>,
            describe: (Int) -> String, maker: (Int) -> CatalogItem.Manufacturer?,
            flags: (Int) -> [String]? = { _ in nil },
            disclaimers: (Int) -> [String: String]? = { _ in nil }, pgaData: (Int) -> [String: String]? = { _ in nil },
            adcvd: (Int) -> String? = { _ in nil }
        ) {
            for index in 0..<count {
                let sku = "\(prefix)-\(String(format: "%04d", index + 1))"
                let item = CatalogItem(
                    sku: sku, hts: hts[index % hts.count], originCountry: origin[index % origin.count],
                    description: describe(index), manufacturer: maker(index), pgaFlags: flags(index),
                    pgaDisclaimers: disclaimers(index), pgaData: pgaData(index), adcvdCase: adcvd(index))
                products.append(
                    Product(item: item, priceUSD: Double(random.int(price)) + 0.99, family: family))
            }
        }
        let mexicanCities = [
            ("Tijuana", "Blvd Agua Caliente"), ("Mexicali", "Calz Justo Sierra"), ("Hermosillo", "Blvd Kino"),
        ]
        add(
            .apparel, 110, prefix: "TEE", hts: ["6109.10.0012", "6109.10.0040", "6109.10.0004"], origin: ["MX"],
            price: 9...38,
            describe: { ["Men's cotton T-shirt", "Women's cotton T-shirt", "White cotton T-shirt"][$0 % 3] },
            maker: {
                let (city, street) = mexicanCities[$0 % 3]
                return .init(
                    name: "Confecciones \(["del Norte", "Baja", "Sonora", "Pacifico", "Rio Bravo"][$0 % 5]) SA de CV",
                    street: "\(street) \(1200 + $0 * 7)", city: city, country: "MX")
            })
        add(
            .electronics, 45, prefix: "ELEC", hts: ["8471.30.0100", "8517.13.0000", "8518.30.2000"], origin: ["CN"],
            price: 25...1_150,
            describe: { ["Portable laptop computer", "Smartphone", "Wired headset"][$0 % 3] },
            maker: {
                .init(
                    name: "\(["Shenzhen Lianhua", "Dongguan Xinda", "Guangzhou Meiyu"][$0 % 3]) Electronics Co Ltd",
                    street: "\(18 + $0) Keji Road", city: ["Shenzhen", "Dongguan", "Guangzhou"][$0 % 3], country: "CN")
            })
        add(
            .coffee, 20, prefix: "COF", hts: ["0901.21.0020", "0901.21.0040"], origin: ["MX", "CO"], price: 9...34,
            describe: { _ in "Roasted coffee, not decaffeinated" },
            maker: {
                .init(
                    name: "Cafe \(["Altura", "Sierra Madre", "Huila"][$0 % 3]) SA", street: "Carrera \(10 + $0) No 45",
                    city: ["Oaxaca", "Bogota"][$0 % 2], country: ["MX", "CO"][$0 % 2])
            },
            // FD4 asks for FDA's prior-notice data: on file for all but two coffees, which the
            // manifest-builder then refuses to file (missing-filing-data) until the PIM adds it.
            pgaData: {
                $0 % 10 == 9
                    ? nil
                    : [
                        "FD4":
                            "FDA prior notice: product code 31A-A-0\($0 % 9), FFR 1\(String(format: "%04d", 2_000 + $0))"
                    ]
            })
        add(
            .cosmetics, 20, prefix: "COS", hts: ["3304.99.5000"], origin: ["CA", "FR"], price: 12...65,
            describe: { _ in "Skin-care preparation" },
            maker: {
                $0 % 2 == 0
                    ? .init(
                        name: "Laurentian Botanicals Inc", street: "\(400 + $0) Rue Saint-Paul", city: "Montreal",
                        country: "CA", province: "QC")
                    : .init(
                        name: "Maison Verlaine SARL", street: "\(12 + $0) Rue de la Paix", city: "Paris", country: "FR")
            },
            // A cosmetic's FD1 is "may be required"; these few are disclaimed (not FDA-regulated use).
            disclaimers: { $0 % 5 == 0 ? ["FD1": "A"] : nil })
        add(
            .toys, 15, prefix: "TOY", hts: ["9503.00.0090"], origin: ["CN"], price: 8...75,
            describe: { _ in "Toy" },
            maker: {
                .init(
                    name: "Shantou Happy Toys Co Ltd", street: "\(3 + $0) Chenghai Road", city: "Shantou", country: "CN"
                )
            })
        add(
            .metals, 6, prefix: "MTL", hts: ["7208.10.1500", "7601.10.6000"], origin: ["MX", "CA"], price: 40...300,
            describe: { ["Hot-rolled steel, pickled", "Unwrought aluminium"][$0 % 2] },
            // The MID's country is the goods' origin (19 CFR 102 Appendix para. 2): the Canadian
            // aluminium comes from a Quebec smelter, the Mexican steel from Monterrey.
            maker: {
                $0 % 2 == 0
                    ? .init(
                        name: "Aceros y Metales del Norte SA", street: "Av Industrial \(200 + $0)", city: "Monterrey",
                        country: "MX")
                    : .init(
                        name: "Alumineries du Saguenay Inc", street: "\(1950 + $0) Boulevard Mellon", city: "Saguenay",
                        country: "CA", province: "QC")
            },
            // An illustrative AD/CVD case number (not a real order): the router must send it formal.
            adcvd: { $0 == 0 ? "A-201-999" : nil })
        add(
            .spirits, 4, prefix: "SPR", hts: ["2208.30.3030"], origin: ["GB"], price: 35...120,
            describe: { _ in "Scotch whisky, 700 ml" },
            maker: {
                .init(name: "Glen Arden Distillers Ltd", street: "\(5 + $0) High Street", city: "Elgin", country: "GB")
            })
        // SKUs the catalog audit flags: what the enricher parks until the PIM fixes them.
        let gapMaker = CatalogItem.Manufacturer(
            name: "Textiles Sol SA de CV", street: "Calle 5 de Mayo 88", city: "Puebla", country: "MX")
        func gap(
            _ number: Int, hts: String? = nil, origin: String?, _ description: String,
            maker: CatalogItem.Manufacturer? = gapMaker, price: Double
        ) -> Product {
            Product(
                item: CatalogItem(
                    sku: String(format: "GAP-%04d", number), hts: hts, originCountry: origin, description: description,
                    manufacturer: maker), priceUSD: price, family: .gaps)
        }
        products += [
            gap(1, origin: "MX", "Hoodie (no HTS yet)", price: 29.99),
            gap(2, origin: "MX", "Socks (no HTS yet)", price: 7.99),
            gap(3, origin: "CN", "Charger (no HTS yet)", price: 19.99),
            gap(4, hts: "7701.00.0000", origin: "MX", "Chapter 77 is reserved", price: 14.99),
            gap(5, hts: "6109.10.0012", origin: "MX", "T-shirt, manufacturer unknown", maker: nil, price: 12.99),
            gap(6, hts: "9503.00.0090", origin: "CN", "Toy, manufacturer unknown", maker: nil, price: 22.99),
            gap(7, hts: "6109.10.0040", origin: nil, "T-shirt, origin unknown", price: 11.99),
        ]
        return products
    }

    // MARK: - FX rates

    static func rates(days: [Day], random: inout SplitMix) -> [ExchangeRate] {
        var rates: [ExchangeRate] = []
        for (currency, quarterly) in [("MXN", Decimal(string: "0.0540")!), ("CAD", Decimal(string: "0.7150")!)] {
            let code = try! CurrencyCode(currency)
            var quarters = Set<Day>()
            for day in days where quarters.insert(day.quarterStart).inserted {
                rates.append(
                    ExchangeRate(currency: code, date: day.quarterStart, usdPerUnit: quarterly, kind: .quarterly))
            }
            for (index, day) in days.enumerated() {
                // Within ±2 % of the quarterly rate, except one MXN day 6 % above it (19 CFR 159.34(d)).
                let drift = currency == "MXN" && index == days.count / 2 ? 0.06 : Double(random.int(-20...20)) / 1000
                let daily = (quarterly * Decimal(1 + drift)).rounded(scale: 6)
                rates.append(ExchangeRate(currency: code, date: day, usdPerUnit: daily, kind: .daily))
            }
            // The day after the last ship day: a warehouse a day from the border exports then
            // (the date of exportation is the border crossing, 19 CFR 152.1(c)). At the quarterly
            // rate, drawing nothing from the generator, so the rest of the sample stays as it was.
            if let last = days.last {
                let next = last.adding(days: 1)
                if quarters.insert(next.quarterStart).inserted {
                    rates.append(
                        ExchangeRate(currency: code, date: next.quarterStart, usdPerUnit: quarterly, kind: .quarterly))
                }
                rates.append(ExchangeRate(currency: code, date: next, usdPerUnit: quarterly, kind: .daily))
            }
        }
        return rates
    }
}

// MARK: - Orders

/// Builds the order stream day by day.
struct OrderBuilder {
    enum Event {
        case order(OrderEvent)
        case raw(key: String, text: String)
    }

    /// A buyer: how they write their name and address, and where their orders ship from.
    struct Buyer {
        var consignee: Consignee
        /// The same person and address written another way (case, abbreviations, ZIP+4).
        var variant: Consignee?
        var warehouse: String
        var currency: String
    }

    let catalog: [SampleGenerator.Product]
    let days: [Day]
    var random: SplitMix
    private(set) var events: [Event] = []
    private(set) var unreadableKeys: Set<String> = []
    private var ordersMade = 0
    private var byFamily: [SampleGenerator.Family: [SampleGenerator.Product]] = [:]

    init(catalog: [SampleGenerator.Product], days: [Day], random: SplitMix) {
        self.catalog = catalog
        self.days = days
        self.random = random
        byFamily = Dictionary(grouping: catalog, by: \.family)
    }

    static let firstNames = [
        "Maria", "James", "Ana", "Robert", "Sofia", "Michael", "Lucia", "David", "Emma", "Daniel", "Olivia", "Jose",
        "Grace", "Kevin", "Isabel", "Brian", "Chloe", "Luis", "Hannah", "Victor", "Nora", "Tomas", "Julia", "Omar",
    ]
    static let lastNames = [
        "Garcia", "Smith", "Lopez", "Johnson", "Martinez", "Brown", "Hernandez", "Davis", "Gonzalez", "Miller",
        "Wilson", "Perez", "Anderson", "Ramirez", "Thomas", "Torres", "Moore", "Flores", "Clark", "Nguyen",
    ]
    static let streets = [
        "Oak", "Maple", "Cedar", "Pine", "Elm", "Sunset", "Mission", "Harbor", "Valley", "Lincoln", "Park", "Lake",
    ]
    /// (written out, USPS abbreviation).
    static let suffixes = [
        ("Street", "ST"), ("Avenue", "AVE"), ("Boulevard", "BLVD"), ("Road", "RD"), ("Drive", "DR"), ("Lane", "LN"),
    ]
    static let cities = [
        ("San Diego", "CA", "92101"), ("Chula Vista", "CA", "91910"), ("Los Angeles", "CA", "90012"),
        ("Phoenix", "AZ", "85004"), ("Tucson", "AZ", "85701"), ("El Paso", "TX", "79901"),
        ("Houston", "TX", "77002"), ("Seattle", "WA", "98101"), ("Buffalo", "NY", "14202"),
        ("Chicago", "IL", "60601"), ("Denver", "CO", "80202"), ("Miami", "FL", "33130"),
    ]
    /// (warehouse, currency, weight).
    static let origins = [
        ("TIJ1", "MXN", 0.34), ("MXL1", "MXN", 0.14), ("NOG1", "MXN", 0.12), ("TIJ1", "USD", 0.10),
        ("YYZ1", "CAD", 0.20), ("YVR1", "CAD", 0.10),
    ]

    mutating func buyer(_ index: Int) -> Buyer {
        let name = "\(random.pick(Self.firstNames)) \(random.pick(Self.lastNames))"
        let number = random.int(10...9_899)
        let street = random.pick(Self.streets)
        let (suffix, abbreviation) = random.pick(Self.suffixes)
        let unit = random.chance(0.4) ? random.int(1...40) : nil
        let (city, state, zip) = random.pick(Self.cities)
        let consignee = Consignee(
            name: name, line1: "\(number) \(street) \(suffix)" + (unit.map { " Apt \($0)" } ?? ""), line2: nil,
            city: city, region: state, postalCode: zip, country: "US")
        var variant: Consignee?
        if random.chance(0.12) {
            variant = Consignee(
                name: name.uppercased() + ".",
                line1: "\(number) \(street.uppercased()) \(abbreviation)" + (unit.map { " #\($0)" } ?? ""),
                line2: nil, city: city.uppercased(), region: state, postalCode: "\(zip)-\(random.int(1000...9999))",
                country: "US")
        }
        var pick = Double.random(in: 0..<1, using: &random)
        var origin = Self.origins[0]
        for candidate in Self.origins {
            pick -= candidate.2
            if pick < 0 {
                origin = candidate
                break
            }
        }
        return Buyer(consignee: consignee, variant: variant, warehouse: origin.0, currency: origin.1)
    }

    /// The buyers and their orders, then updates, cancellations, duplicates and the wrong
    /// records, day by day.
    mutating func build(consignees: Int) {
        var perDay: [[OrderEvent]] = Array(repeating: [], count: days.count)
        var made = 0
        while made < consignees {
            // About one buyer in 60 is a household: three names at one address, each under the
            // threshold, together over it on one day (the structuring signal).
            if consignees - made >= 3, random.chance(1.0 / 60) {
                let first = buyer(made)
                let day = random.int(0...days.count - 1)
                for member in 0..<3 {
                    var person = first
                    person.variant = nil
                    if member > 0 {
                        person.consignee.name = "\(random.pick(Self.firstNames)) \(random.pick(Self.lastNames))"
                    }
                    perDay[day].append(order(for: person, day: days[day], targetUSD: Double(random.int(320...560))))
                }
                made += 3
                continue
            }
            let person = buyer(made)
            made += 1
            let profile = Double.random(in: 0..<1, using: &random)
            var plan: [Int] = []
            if profile < 0.55 {
                plan = [random.int(0...days.count - 1)]
            } else if profile < 0.80 {
                plan = (0..<random.int(2...3)).map { _ in random.int(0...days.count - 1) }
            } else {
                let day = random.int(0...days.count - 1)
                plan = Array(repeating: day, count: random.int(2...4))
                if random.chance(0.3) { plan.append(random.int(0...days.count - 1)) }
            }
            // Half the same-day repeat buyers spend a few hundred dollars an order: two or three
            // of those pass $800 in a day (the de minimis overflow, or an entry of several shipments).
            let bigSpender = profile >= 0.80 && random.chance(0.5)
            for (position, day) in plan.enumerated() {
                var writer = person
                if position > 0, let variant = person.variant { writer.consignee = variant }
                let target = bigSpender ? Double(random.int(250...520)) : nil
                perDay[day].append(order(for: writer, day: days[day], targetUSD: target))
            }
        }
        for day in perDay.indices {
            var stream: [Event] = perDay[day].shuffled(using: &random).map { .order($0) }
            // Follow-ups come later in the day than the order they change.
            for original in perDay[day] {
                let roll = Double.random(in: 0..<1, using: &random)
                var followUp: OrderEvent?
                if roll < 0.03 {
                    var update = original
                    update.type = .updated
                    update.version = 2
                    if var lines = update.lines {
                        lines[0].quantity += 1
                        update.lines = lines
                    }
                    followUp = update
                } else if roll < 0.06 {
                    followUp = OrderEvent(
                        orderId: original.orderId, type: .cancelled, version: 2, consignee: original.consignee)
                } else if roll < 0.07 {
                    followUp = original  // redelivered by the OMS connector: a duplicate
                }
                if let followUp {
                    let after = stream.firstIndex { if case .order(let o) = $0 { o == original } else { false } }!
                    stream.insert(.order(followUp), at: random.int(after + 1...stream.count))
                }
            }
            events += stream
        }
        events += wrongRecords()
    }

    /// An order of 1–3 lines (near `targetUSD` when given).
    mutating func order(for buyer: Buyer, day: Day, targetUSD: Double?) -> OrderEvent {
        ordersMade += 1
        let orderID = "SO-\(String(format: "%06d", ordersMade))"
        let rate = SampleGenerator.unitsPerUSD[buyer.currency] ?? 1
        var lines: [OrderEvent.Line] = []
        if let targetUSD {
            let product = random.pick(byFamily[.apparel]!)
            let quantity = max(1, Int(targetUSD / product.priceUSD))
            lines.append(.init(sku: product.item.sku, quantity: quantity, unitPrice: price(product.priceUSD * rate)))
        } else {
            for _ in 0..<random.int(1...3) {
                let product = pickProduct()
                let quantity = product.family == .apparel ? random.int(1...4) : random.int(1...2)
                lines.append(
                    .init(sku: product.item.sku, quantity: quantity, unitPrice: price(product.priceUSD * rate)))
            }
        }
        let carrier: String =
            switch buyer.warehouse {
            case "YYZ1", "YVR1": random.pick(["canada-post", "ups", "fedex"])
            default: random.pick(["estafeta", "dhl", "fedex", "ups"])
            }
        // The Canadian warehouses' orders are sales orders in the Canadian subsidiary's Business
        // Central (its records are keyed by their SystemId, a GUID); the rest are NetSuite's.
        let erp: OrderEvent.ERPReference =
            switch buyer.warehouse {
            case "YYZ1", "YVR1":
                .init(
                    system: "business-central",
                    recordId: String(format: "5a1e0000-0000-4000-8000-%012d", 400_000 + ordersMade))
            default: .init(system: "netsuite", recordId: "SO\(400_000 + ordersMade)")
            }
        return OrderEvent(
            orderId: orderID, type: .placed, version: 1, currency: buyer.currency, shipDate: day.description,
            warehouse: buyer.warehouse, carrier: carrier, consignee: buyer.consignee, lines: lines, erp: erp)
    }

    mutating func pickProduct() -> SampleGenerator.Product {
        var pick = Double.random(in: 0..<1, using: &random)
        for family in SampleGenerator.Family.allCases {
            pick -= family.weight
            if pick < 0 { return random.pick(byFamily[family]!) }
        }
        return random.pick(byFamily[.apparel]!)
    }

    func price(_ amount: Double) -> String { String(format: "%.2f", amount) }

    /// Records an OMS connector gets wrong: two unreadable, one with no lines (all three for the
    /// DLQ), one from a warehouse nobody configured and one in a currency with no rate (both
    /// exceptions the enricher explains).
    mutating func wrongRecords() -> [Event] {
        let day = days.last!.description
        let consignee =
            #"{"name":"Pat Doe","line1":"1 Main Street","city":"San Diego","region":"CA","postalCode":"92101","country":"US"}"#
        let line = #"[{"sku":"TEE-0001","quantity":1,"unitPrice":"250.00"}]"#
        unreadableKeys = ["SO-X-0001", "SO-X-0002", "SO-X-0003"]
        return [
            .raw(key: "SO-X-0001", text: #"{"orderId":"SO-X-0001","type":"placed","version":1,"lines":["#),
            .raw(key: "SO-X-0002", text: "ORDER SO-X-0002 SHIPPED 2 ITEMS"),
            .raw(
                key: "SO-X-0003",
                text:
                    #"{"orderId":"SO-X-0003","type":"placed","version":1,"currency":"MXN","shipDate":"\#(day)","warehouse":"TIJ1","consignee":\#(consignee),"lines":[]}"#
            ),
            .raw(
                key: "SO-X-0004",
                text:
                    #"{"orderId":"SO-X-0004","type":"placed","version":1,"currency":"MXN","shipDate":"\#(day)","warehouse":"GDL9","consignee":\#(consignee),"lines":\#(line)}"#
            ),
            .raw(
                key: "SO-X-0005",
                text:
                    #"{"orderId":"SO-X-0005","type":"placed","version":1,"currency":"EUR","shipDate":"\#(day)","warehouse":"TIJ1","consignee":\#(consignee),"lines":\#(line)}"#
            ),
        ]
    }
}
