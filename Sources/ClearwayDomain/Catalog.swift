import Foundation

/// A SKU master record (`catalog.v1`): classification, origin and manufacturer of one SKU.
public struct CatalogItem: Hashable, Sendable, Codable {
    /// The manufacturer, for building its MID.
    public struct Manufacturer: Hashable, Sendable, Codable {
        public var name: String?
        public var street: String?
        public var city: String?
        public var country: String?
        public var province: String?

        /// Makes a manufacturer. `country` is its address country: the MID is built with the SKU's
        /// country of origin (19 CFR 102 Appendix para. 2), `country` standing in only without one.
        public init(
            name: String? = nil, street: String? = nil, city: String? = nil, country: String? = nil,
            province: String? = nil
        ) {
            self.name = name
            self.street = street
            self.city = city
            self.country = country
            self.province = province
        }
    }

    public var sku: String
    public var hts: String?
    public var originCountry: String?
    public var description: String?
    public var manufacturer: Manufacturer?
    public var mid: String?
    public var pgaFlags: [String]?
    /// Disclaim codes by flag, e.g. `{"FD1": "A"}`.
    public var pgaDisclaimers: [String: String]?
    /// The PGA message data on file for a flag, by flag (e.g. `{"FD2": "FDA product code 31A-A-01 …"}`):
    /// what the filer sends for a flag that asks for the agency's data.
    public var pgaData: [String: String]?
    public var adcvdCase: String?

    /// Makes an item.
    public init(
        sku: String, hts: String? = nil, originCountry: String? = nil, description: String? = nil,
        manufacturer: Manufacturer? = nil, mid: String? = nil, pgaFlags: [String]? = nil,
        pgaDisclaimers: [String: String]? = nil, pgaData: [String: String]? = nil, adcvdCase: String? = nil
    ) {
        self.sku = sku
        self.hts = hts
        self.originCountry = originCountry
        self.description = description
        self.manufacturer = manufacturer
        self.mid = mid
        self.pgaFlags = pgaFlags
        self.pgaDisclaimers = pgaDisclaimers
        self.pgaData = pgaData
        self.adcvdCase = adcvdCase
    }

    /// The MID: the one given (validated), else one built from the manufacturer with the SKU's
    /// country of origin as its first two letters — 19 CFR 102 Appendix para. 2: "the ISO code for
    /// the actual country of origin of the goods", not the manufacturer's address country (a CN-origin
    /// good from a Hong Kong manufacturer gets a CN… MID). Without an origin, the manufacturer's
    /// country stands in (the SKU is blocked for its missing origin anyway).
    public func resolvedMID() throws -> MID {
        if let mid, !mid.isEmpty { return try MID(mid) }
        guard let m = manufacturer, let name = m.name, let street = m.street, let city = m.city,
            let country = originCountry ?? m.country
        else {
            throw DomainError(
                .invalidMID,
                "SKU \(sku) has neither an MID nor a manufacturer name, street, city and country to build one from")
        }
        return try MID(
            manufacturer: .init(name: name, street: street, city: city, country: country, province: m.province))
    }

    /// Why the catalog's own MID cannot be filed for this SKU's origin, or nil when it can: its
    /// first two letters must be the ISO code of the goods' country of origin (19 CFR 102 Appendix
    /// para. 2), or for Canadian origin a province code (XA … XY). A mismatch is a wrong MID on the
    /// entry, not a detail: for textiles a reasonable-care failure (19 CFR 102.23).
    public func midOriginMismatch(_ mid: MID, origin: CountryCode) -> String? {
        guard let given = self.mid, !given.isEmpty else { return nil }
        let prefix = String(mid.rawValue.prefix(2))
        let matches =
            origin.rawValue == "CA" ? MID.provinceCodes.values.contains(prefix) : prefix == origin.rawValue
        guard !matches else { return nil }
        let expected = origin.rawValue == "CA" ? "a Canadian province code (XO, XQ, …)" : origin.rawValue
        return
            "SKU \(sku): MID \(mid) starts with \(prefix) but the goods' country of origin is \(origin), so it must start with \(expected) (19 CFR 102 Appendix para. 2: the MID's country is the country of origin)"
    }

    /// Reads a SKU master: a JSON array of catalog records, or CSV with a header row (columns
    /// `sku, hts, originCountry, description, manufacturerName, manufacturerStreet,
    /// manufacturerCity, manufacturerCountry, manufacturerProvince, mid, pgaFlags` (`;`-separated),
    /// `pgaDisclaimers` (`FD1=A;EP7=B`), `adcvdCase`).
    public static func loadCatalog(_ data: Data) throws -> [CatalogItem] {
        let text = String(decoding: data, as: UTF8.self)
        if text.drop(while: \.isWhitespace).first == "[" {
            do {
                return try JSONDecoder().decode([CatalogItem].self, from: data)
            } catch {
                throw DomainError(
                    .invalidReferenceData, "catalog JSON is not an array of catalog records: \(describe(error))")
            }
        }
        let rows = CSV.parse(text)
        guard let header = rows.first else { throw DomainError(.invalidReferenceData, "the catalog file is empty") }
        let columns = Dictionary(header.enumerated().map { ($1.trimmingCharacters(in: .whitespaces), $0) }) { a, _ in a
        }
        guard columns["sku"] != nil else {
            throw DomainError(
                .invalidReferenceData, "the catalog CSV needs a header row with at least a \"sku\" column")
        }
        return rows.dropFirst().filter { !$0.allSatisfy(\.isEmpty) }.map { row in
            func field(_ name: String) -> String? {
                guard let index = columns[name], index < row.count else { return nil }
                let value = row[index].trimmingCharacters(in: .whitespaces)
                return value.isEmpty ? nil : value
            }
            let manufacturer = Manufacturer(
                name: field("manufacturerName"), street: field("manufacturerStreet"), city: field("manufacturerCity"),
                country: field("manufacturerCountry"), province: field("manufacturerProvince"))
            let disclaimers = field("pgaDisclaimers").map { text in
                Dictionary(
                    text.split(separator: ";").compactMap { pair -> (String, String)? in
                        let parts = pair.split(separator: "=").map { $0.trimmingCharacters(in: .whitespaces) }
                        return parts.count == 2 ? (parts[0], parts[1]) : nil
                    }
                ) { a, _ in a }
            }
            return CatalogItem(
                sku: field("sku") ?? "", hts: field("hts"), originCountry: field("originCountry"),
                description: field("description"), manufacturer: manufacturer.name == nil ? nil : manufacturer,
                mid: field("mid"),
                pgaFlags: field("pgaFlags").map {
                    $0.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                },
                pgaDisclaimers: disclaimers, adcvdCase: field("adcvdCase"))
        }
    }
}

/// RFC 4180 CSV: quoted fields, doubled quotes, commas and line breaks inside quotes.
enum CSV {
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var iterator = text.makeIterator()
        var pending: Character? = nil
        while let character = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" {
                            field.append("\"")
                        } else {
                            quoted = false
                            pending = next
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(character)
                }
                continue
            }
            switch character {
            case "\"": quoted = true
            case ",":
                row.append(field)
                field = ""
            case "\n", "\r\n", "\r":
                row.append(field)
                rows.append(row)
                row = []
                field = ""
            default: field.append(character)
            }
        }
        if !field.isEmpty || !row.isEmpty {
            row.append(field)
            rows.append(row)
        }
        return rows
    }
}

/// The HTS coverage audit a brand runs on its SKU master before shipping: what would stop a
/// parcel at the border (blocking gaps) and what exposes it (PGA flags, China origin, Section 301
/// and 232).
public struct CatalogAudit: Sendable {
    /// One SKU's findings.
    public struct Finding: Hashable, Sendable {
        public var sku: String
        public var hts: String?
        public var origin: String?
        public var mid: String?
        /// Problems that stop an entry: each names what would fix it.
        public var blocking: [String]
        /// Exposure worth knowing: PGA flags, excluded origin, Section 301 / 232.
        public var exposure: [String]
    }

    public var findings: [Finding]
    public var policy: Policy
    public var day: Day

    /// SKUs with blocking gaps.
    public var blockingCount: Int { findings.filter { !$0.blocking.isEmpty }.count }

    /// Audits a catalog for shipments arriving on `day`.
    public init(items: [CatalogItem], screener: Screener, timeline: PolicyTimeline, day: Day) throws {
        let policy = try timeline.policy(on: day)
        self.policy = policy
        self.day = day
        findings = items.map { item in
            var blocking: [String] = []
            var exposure: [String] = []
            var hts: HTSCode?
            if let text = item.hts {
                do {
                    let code = try HTSCode(text)
                    _ = try LineClassification(primary: code)
                    if let reference = screener.htsReference, !reference.contains(code) {
                        blocking.append(
                            "HTS \(code) is not in the HTS reference (\(reference.revision)): check the number")
                    }
                    hts = code
                } catch let error as DomainError {
                    blocking.append("invalid HTS: \(error.message)")
                } catch {}
            } else {
                blocking.append("missing HTS: add the 10-digit HTS number")
            }
            var origin: CountryCode?
            if let text = item.originCountry {
                origin = try? CountryCode(text)
                if origin == nil { blocking.append("invalid origin \"\(text)\": use the ISO country code of origin") }
            } else {
                blocking.append("missing origin: add the ISO country code of origin")
            }
            var mid: String?
            do {
                let resolved = try item.resolvedMID()
                mid = resolved.rawValue
                if let origin, let mismatch = item.midOriginMismatch(resolved, origin: origin) {
                    blocking.append(
                        "wrong MID country: \(mismatch); correct the MID, or remove it to have it built from the manufacturer"
                    )
                }
            } catch let error as DomainError {
                blocking.append("no MID: \(error.message)")
            } catch {}
            if let hts, let origin {
                let flags = item.pgaFlags.map { Set($0.compactMap { try? PGAFlag($0) }) }
                let disclaimers = Dictionary(
                    (item.pgaDisclaimers ?? [:]).compactMap { key, value -> (PGAFlag, DisclaimCode)? in
                        guard let flag = try? PGAFlag(key), let code = DisclaimCode(rawValue: value) else { return nil }
                        return (flag, code)
                    }
                ) { a, _ in a }
                let screening = screener.screen(
                    [
                        ScreeningLine(
                            sku: item.sku, hts: hts, origin: origin, skuFlags: flags, disclaimers: disclaimers,
                            adcvdCase: item.adcvdCase)
                    ], on: day, policy: policy)
                let line = screening.lines[0]
                for flag in line.flags {
                    // A disclaimer on a flag that cannot take one (FW3, FD4, …: PGAFlag.meanings) is
                    // rejected: the line needs the agency's data, and without it the manifest builder
                    // refuses the entry, so the audit blocks it here.
                    let rejected = flag.isRequired ? disclaimers[flag.flag] : nil
                    let unknown = flag.flag.meaning == nil ? ", not in Clearway's flag table: treated as required" : ""
                    let answer =
                        rejected.map { ", disclaimer \($0.rawValue) rejected: \(flag.flag) cannot be disclaimed" }
                        ?? flag.disclaimer.map { ", disclaimed \($0.rawValue)" } ?? ""
                    exposure.append(
                        "PGA \(flag.flag) (\(flag.agency), data \(flag.isRequired ? "required" : "may be required")\(answer)\(unknown))"
                    )
                    if let rejected, item.pgaData?[flag.flag.code] == nil {
                        blocking.append(
                            "PGA \(flag.flag) cannot be disclaimed (disclaimer \(rejected.rawValue) given): add the \(flag.agency) data for \(flag.flag) (pgaData) and remove the disclaimer"
                        )
                    }
                }
                // The policy in force on the day says whether the origin is excluded (review C2:
                // not a line printed for every date).
                if policy.hasDeMinimis, policy.excludedOrigins.contains(origin) {
                    exposure.append("\(origin) origin: no de minimis under \(policy.id) (from \(policy.effectiveFrom))")
                }
                for entry in line.section301 {
                    exposure.append("Section 301 list \(entry.list ?? "?") \(entry.rate ?? "")")
                }
                for entry in line.section232 { exposure.append("Section 232 \(entry.list ?? "") \(entry.rate ?? "")") }
                if let limit = policy.chapter99FormalAboveUSD, line.isChapter99 {
                    exposure.append(
                        "Chapter 99 article: formal entry when such articles on an entry pass $\(limit.plainText()) (19 CFR 143.21(a))"
                    )
                }
                if let adcvd = item.adcvdCase {
                    exposure.append("AD/CVD case \(adcvd): entry type 03 whatever the value (CBP Form 7501, block 2)")
                }
                if line.isQuota {
                    exposure.append("quota merchandise: entry type 12 (informal) or 02 (CBP Form 7501, block 2)")
                }
                if policy.ircTaxedPrefixes.contains(where: { hts.hasPrefix($0) }) {
                    exposure.append("taxed under the Internal Revenue Code (26 U.S.C. ch. 51-52): never de minimis")
                }
                if let chapter = Int(hts.description.prefix(2)), (50...63).contains(chapter) {
                    // Section XI (chapters 50-63): textiles need the MID on formal and informal
                    // entries alike (19 CFR 102.23; the 2011 final rule extending it).
                    exposure.append("textile (Section XI): the MID is required on formal and informal entries")
                }
            }
            return Finding(
                sku: item.sku, hts: hts?.description ?? item.hts, origin: origin?.rawValue ?? item.originCountry,
                mid: mid,
                blocking: blocking, exposure: exposure)
        }
    }
}
