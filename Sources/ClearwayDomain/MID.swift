import Foundation

/// A manufacturer identification code, built per 19 CFR Part 102, Appendix ("Textile and Apparel
/// Manufacturer or Shipper Identification Code"), which CBP applies to all MIDs:
///
/// 1. the ISO country code of the country of origin — for Canada, the province code (XA Alberta,
///    XC British Columbia, XM Manitoba, XB New Brunswick, XW Newfoundland and Labrador, XT
///    Northwest Territories, XN Nova Scotia, XV Nunavut, XO Ontario, XP Prince Edward Island,
///    XQ Quebec, XS Saskatchewan, XY Yukon);
/// 2. the first three characters of each of the first two "words" of the manufacturer's name
///    (only three when the name is one word: Bergstrom → BER); two or more initials together
///    count as one word (A.B.C. Company → ABCCOM, O.A.S.I.S. Corp. → OASCOR) — both from the
///    Appendix itself; the words "a", "an", "and", "of", "the" are skipped, a hyphenated name
///    counts as one word (Rawles-Aden Corp. → RAWCOR) and digits count (20th Century Fox →
///    20TCEN) — from CBP's MID instructions as republished by carriers, not from the Appendix
///    text this project could read;
/// 3. the first four digits of the largest number on the street-address line, punctuation
///    between digit groups ignored ("12-34 56 Akasaka Road" → 1234) and a numbered street name
///    skipped ("7 12th Street" → 7); nothing when there is no number (carriers' MID instructions);
/// 4. the first three letters of the city;
///
/// at most 15 characters, no spaces. Letters with diacritics are transliterated, never dropped
/// (Mérida → MER, Peñoles → PEN, Zürich → ZUR): the code is letters A–Z and digits, and the
/// Appendix builds it from the name's letters, so "Ñandú" is NAN and not AND (DOMAIN.md, MID; the
/// same folding as the consignee's normalization). A Mexican postal code written on the street
/// line ("C.P. 22014") is not part of the street address and is left out of the number. Example: Amalgamated Plastics Corp., 11455 Main Street
/// Suite 9999, Hong Kong → `HKAMAPLA1145HON`.
public struct MID: StringCodable, Hashable, Sendable, CustomStringConvertible {
    /// The code.
    public let rawValue: String

    /// The manufacturer data an MID is built from.
    public struct Manufacturer: Hashable, Sendable, Codable {
        /// The manufacturer's name.
        public var name: String
        /// The street-address line.
        public var street: String
        /// The city.
        public var city: String
        /// The ISO code of the goods' country of origin (19 CFR 102 Appendix para. 2: "the actual
        /// country of origin of the goods"), not necessarily the manufacturer's address country.
        public var country: String
        /// The Canadian province (postal abbreviation, name or MID code); required for Canada.
        public var province: String?

        /// Makes manufacturer data.
        public init(name: String, street: String, city: String, country: String, province: String? = nil) {
            self.name = name
            self.street = street
            self.city = city
            self.country = country
            self.province = province
        }
    }

    /// Validates a given MID: a country part (an ISO code, or X + a Canadian province letter),
    /// then letters and digits ending with the city's letters; 15 characters at most.
    public init(_ text: String) throws {
        let code = text.trimmingCharacters(in: .whitespaces).uppercased()
        let characters = Array(code)
        func fail(_ why: String) -> DomainError {
            DomainError(.invalidMID, "\(DomainError.quoted(text)) is not a valid MID: \(why)")
        }
        guard characters.count <= 15 else { throw fail("longer than 15 characters") }
        guard characters.count >= 4, characters.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw fail("an MID is letters and digits only, like HKAMAPLA1145HON")
        }
        let country = String(characters[0..<2])
        guard Self.provinceCodes.values.contains(country) || CountryCode.assigned.contains(country) else {
            throw fail("\(country) is neither an ISO country code nor a Canadian province code")
        }
        guard country != "CA" else { throw fail("Canadian MIDs start with the province code (e.g. XO), not CA") }
        guard characters.last!.isLetter else { throw fail("an MID ends with the city's letters") }
        guard characters[2...].contains(where: \.isLetter) else { throw fail("the name and city parts are missing") }
        rawValue = code
    }

    /// Builds the MID for a manufacturer.
    public init(manufacturer: Manufacturer) throws {
        func fail(_ why: String) -> DomainError {
            DomainError(.invalidMID, "cannot build an MID for \"\(manufacturer.name)\": \(why)")
        }
        // Appendix para. 2: the first two characters are "the ISO code for the actual country of
        // origin of the goods" — the caller passes the origin here, not the manufacturer's address.
        let country = try CountryCode(manufacturer.country)
        var prefix = country.rawValue
        if country.rawValue == "CA" {
            guard let province = manufacturer.province, let code = Self.provinceCode(province) else {
                throw fail(
                    "a Canadian manufacturer needs its province (e.g. ON or Ontario) for the MID's first two letters")
            }
            prefix = code
        }
        let words = Self.nameWords(manufacturer.name)
        guard !words.isEmpty else { throw fail("the name has no letters") }
        let name = words.prefix(2).map { String($0.prefix(3)) }.joined()
        let number = Self.largestNumber(in: manufacturer.street).map { String($0.prefix(4)) } ?? ""
        let city = String(Self.folded(manufacturer.city).filter { $0.isASCII && $0.isLetter }.prefix(3))
        guard !city.isEmpty else { throw fail("the city has no letters") }
        rawValue = prefix + name + number + city
    }

    public var description: String { rawValue }

    /// Upper case with diacritics folded (É → E, Ñ → N, Ü → U, ß → SS) and the letters Unicode
    /// does not decompose transliterated (Ø → O, Æ → AE, Ł → L), as `Normalizer.words` folds a
    /// consignee; anything still outside A–Z (a CJK name, say) is left for the caller to drop.
    static func folded(_ text: String) -> String {
        let transliterations: [Character: String] = [
            "Ø": "O", "Æ": "AE", "Œ": "OE", "Ł": "L", "Đ": "D", "Ð": "D", "Þ": "TH", "Ħ": "H", "Ŧ": "T",
        ]
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.uppercased() }
        let upper = text.uppercased().folding(options: .diacriticInsensitive, locale: nil)
        guard !upper.utf8.allSatisfy({ $0 < 0x80 }) else { return upper }
        return upper.map { transliterations[$0] ?? String($0) }.joined()
    }

    /// Canadian provinces and territories: postal abbreviation → MID code.
    static let provinceCodes: [String: String] = [
        "AB": "XA", "BC": "XC", "MB": "XM", "NB": "XB", "NL": "XW", "NT": "XT", "NS": "XN", "NU": "XV",
        "ON": "XO", "PE": "XP", "QC": "XQ", "SK": "XS", "YT": "XY",
    ]

    static let provinceNames: [String: String] = [
        "ALBERTA": "AB", "BRITISH COLUMBIA": "BC", "MANITOBA": "MB", "NEW BRUNSWICK": "NB",
        "NEWFOUNDLAND": "NL", "NEWFOUNDLAND AND LABRADOR": "NL", "NORTHWEST TERRITORIES": "NT",
        "NOVA SCOTIA": "NS", "NUNAVUT": "NU", "ONTARIO": "ON", "PRINCE EDWARD ISLAND": "PE", "QUEBEC": "QC",
        "QUÉBEC": "QC", "SASKATCHEWAN": "SK", "YUKON": "YT",
        // PQ, Quebec's abbreviation before Canada Post's QC, still appears on old address files.
        "PQ": "QC",
    ]

    /// The MID code of a province given as abbreviation (ON), name (Ontario) or MID code (XO).
    static func provinceCode(_ text: String) -> String? {
        let key = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: ".", with: "")
        if let code = provinceCodes[key] { return code }
        if let abbreviation = provinceNames[key] { return provinceCodes[abbreviation] }
        return provinceCodes.values.contains(key) ? key : nil
    }

    /// The name's words as the MID counts them.
    static func nameWords(_ name: String) -> [String] {
        let ignored: Set<String> = ["A", "AN", "AND", "OF", "THE"]
        // Apostrophes vanish (MEN'S → MENS) and hyphens join (RAWLES-ADEN → RAWLESADEN); any
        // other character but a letter or digit separates words.
        let cleaned = folded(name).filter { $0 != "'" && $0 != "’" && $0 != "-" }
        let tokens = cleaned.split { !($0.isASCII && ($0.isLetter || $0.isNumber)) }.map(String.init)
        // Adjacent single letters are initials and make one word: A.B.C. → ABC.
        var words: [String] = []
        var initials = ""
        for token in tokens {
            if token.count == 1 {
                initials += token
                continue
            }
            if !initials.isEmpty { words.append(initials) }
            initials = ""
            words.append(token)
        }
        if !initials.isEmpty { words.append(initials) }
        return words.filter { !ignored.contains($0) }
    }

    /// The largest number written on a street line, as its digits: groups joined by commas or
    /// hyphens read as one number, and a number with an ordinal suffix (12th) is a street name.
    static func largestNumber(in street: String) -> String? {
        var numbers: [String] = []
        var current = ""
        let characters = Array(withoutPostalCode(street).uppercased())
        var index = 0
        func finish(at end: Int) {
            defer { current = "" }
            guard !current.isEmpty else { return }
            let suffix = String(characters[end..<min(end + 2, characters.count)])
            let followedByLetter = end < characters.count && characters[end].isLetter
            if followedByLetter && ["ST", "ND", "RD", "TH"].contains(suffix) { return }
            numbers.append(current)
        }
        while index < characters.count {
            let character = characters[index]
            if character.isASCIIDigit {
                current.append(character)
            } else if (character == "," || character == "-") && !current.isEmpty && index + 1 < characters.count
                && characters[index + 1].isASCIIDigit
            {
                // 12,34 or 12-34: one number
            } else {
                finish(at: index)
            }
            index += 1
        }
        finish(at: characters.count)
        let significant = numbers.map { String($0.drop { $0 == "0" }) }.filter { !$0.isEmpty }
        return significant.max { ($0.count, $0) < ($1.count, $1) }
    }
}

extension MID {
    /// The street line without a Mexican postal code ("C.P. 22014", "CP 22014", "Código Postal
    /// 22014"): Mexican addresses often carry it on the street line, and as the largest number it
    /// would otherwise become the MID's number ("Blvd. Agua Caliente 10535, Col. Aviación,
    /// C.P. 22014" → 1053, not 2201). The Appendix takes the number from the street address; a
    /// postal code is not one (regulatory review, finding C4).
    static func withoutPostalCode(_ street: String) -> String {
        street.replacing(#/(?i)(\bC\.?\s?P\.?|C[OÓ]DIGO\s+POSTAL)\s*:?\s*\d{5}\b/#, with: " ")
    }

    var codingText: String { rawValue }
}
