import Crypto
import Foundation

/// The consignee of a shipment: "one person" in the Section 321 per-day rule (19 CFR 10.151).
///
/// Names and addresses are normalized before they are compared — case, punctuation, whitespace,
/// USPS street-suffix, directional and unit abbreviations (USPS Publication 28, Appendices B, C1
/// and C2), ZIP+4 cut to ZIP5 — so "12 Oak Street Apt 4" and "12 OAK ST #4" are one address.
/// State stores keep only keyed hashes (`ConsigneeKeys`), never the name or address itself.
public struct Consignee: Hashable, Sendable, Codable {
    public var name: String
    public var line1: String
    public var line2: String?
    public var city: String
    public var region: String
    public var postalCode: String
    public var country: String

    /// Makes a consignee.
    public init(
        name: String, line1: String, line2: String? = nil, city: String, region: String, postalCode: String,
        country: String
    ) {
        self.name = name
        self.line1 = line1
        self.line2 = line2
        self.city = city
        self.region = region
        self.postalCode = postalCode
        self.country = country
    }

    /// The normalized name: upper case, letters and digits, single spaces.
    public var normalizedName: String { Normalizer.words(name).joined(separator: " ") }

    /// The normalized address: street and unit, city, region, ZIP5 and country.
    public func normalizedAddress() throws -> String {
        let street = Normalizer.street(line1 + " " + (line2 ?? ""))
        let city = Normalizer.words(city).joined(separator: " ")
        let region = Normalizer.words(region).joined()
        let country = try CountryCode(self.country.isEmpty ? "US" : self.country).rawValue
        let postal = Normalizer.postalCode(postalCode, country: country)
        guard !street.isEmpty, !city.isEmpty else {
            throw DomainError(.invalidConsignee, "the consignee's address needs a street line and a city")
        }
        return [street, city, region, postal, country].joined(separator: "|")
    }

    /// The keyed hashes that identify this consignee and this address.
    public func keys(secret: ConsigneeKeySecret) throws -> ConsigneeKeys {
        let name = normalizedName
        guard !name.isEmpty else { throw DomainError(.invalidConsignee, "the consignee has no name") }
        let address = try normalizedAddress()
        return ConsigneeKeys(
            consigneeKey: secret.hash("consignee|" + name + "|" + address),
            addressKey: secret.hash("address|" + address))
    }
}

/// The secret that keys consignee hashes (HMAC-SHA256). Keep it out of the code and rotate it
/// with care: a new secret gives every consignee a new key, which starts new daily windows.
public struct ConsigneeKeySecret: Sendable {
    private let bytes: [UInt8]

    /// A secret from bytes; at least 16 of them.
    public init(_ bytes: some Sequence<UInt8>) throws {
        let data = Data(bytes)
        guard data.count >= 16 else {
            throw DomainError(.invalidConsignee, "the consignee key secret must be at least 16 bytes")
        }
        self.bytes = Array(data)
    }

    /// A secret from text (its UTF-8 bytes).
    public init(text: String) throws { try self.init(Array(text.utf8)) }

    /// The built-in development key's text, the one `scripts/demo` uses. It is in the source, so
    /// hashes keyed by it protect nothing: workers refuse it unless told that the run is a
    /// development run (`CLEARWAY_DEVELOPMENT_RUN=true`).
    public static let developmentText = "demo-consignee-secret-not-for-production"

    /// The built-in development key.
    public static let development = try! ConsigneeKeySecret(text: developmentText)

    /// Whether this is the built-in development key.
    public var isDevelopmentKey: Bool { bytes == Self.development.bytes }

    func hash(_ text: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: bytes))
        return hexString(code.prefix(16))
    }
}

/// A consignee's keys: `consigneeKey` (name + address) picks the daily window; `addressKey`
/// (address alone) finds several names at one address. Both are hex HMAC-SHA256 (128 bits).
public struct ConsigneeKeys: Hashable, Sendable, Codable {
    public var consigneeKey: String
    public var addressKey: String

    /// Keys as computed earlier (read back from state or a record).
    public init(consigneeKey: String, addressKey: String) {
        self.consigneeKey = consigneeKey
        self.addressKey = addressKey
    }
}

/// USPS Publication 28 normalization.
enum Normalizer {
    /// Upper-case words of letters and digits; `#` kept as its own word.
    static func words(_ text: String) -> [String] {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return asciiWords(text) }
        var spaced = ""
        for character in text.uppercased().folding(options: .diacriticInsensitive, locale: nil) {
            if character == "#" {
                spaced += " # "
            } else if character.isLetter || character.isNumber {
                spaced.append(character)
            } else if character == "'" || character == "’" || character == "." {
                continue  // O'NEIL → ONEIL, ST. → ST
            } else {
                spaced += " "
            }
        }
        return spaced.split(separator: " ").map(String.init)
    }

    /// `words` for ASCII text, byte by byte (the common case, and many times faster than
    /// Unicode case folding).
    private static func asciiWords(_ text: String) -> [String] {
        var words: [String] = []
        var current: [UInt8] = []
        func flush() {
            if !current.isEmpty { words.append(String(decoding: current, as: UTF8.self)) }
            current.removeAll(keepingCapacity: true)
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): current.append(byte - 32)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): current.append(byte)
            case UInt8(ascii: "'"), UInt8(ascii: "."): continue  // O'NEIL → ONEIL, ST. → ST
            case UInt8(ascii: "#"):
                flush()
                words.append("#")
            default: flush()
            }
        }
        flush()
        return words
    }

    /// A street line with suffixes and directionals abbreviated; a unit designator followed by
    /// its number becomes `#` (so APT 4, UNIT 4 and #4 match).
    static func street(_ text: String) -> String {
        let tokens = words(text)
        var result: [String] = []
        for (index, word) in tokens.enumerated() {
            let isUnit = (unitDesignators.contains(word) && index + 1 < tokens.count && index > 0) || word == "#"
            if isUnit {
                if result.last != "#" { result.append("#") }
            } else if let abbreviation = suffixes[word] ?? directionals[word] {
                result.append(abbreviation)
            } else {
                result.append(word)
            }
        }
        while result.last == "#" { result.removeLast() }
        return result.joined(separator: " ")
    }

    /// ZIP5 for U.S. ZIP codes (ZIP+4 cut); other countries' codes as words without spaces.
    static func postalCode(_ text: String, country: String) -> String {
        let compact = words(text).joined()
        if country == "US" { return String(compact.prefix(5)) }
        return compact
    }

    /// USPS Publication 28, Appendix C2: the secondary unit designators that take a number, in
    /// full and abbreviated (those that read as street names — PIER, LOT, FRONT — are left out).
    static let unitDesignators: Set<String> = [
        "APARTMENT", "APT", "BUILDING", "BLDG", "DEPARTMENT", "DEPT", "FLOOR", "FL", "HANGAR", "HNGR", "OFFICE", "OFC",
        "ROOM", "RM", "SPACE", "SPC", "SUITE", "STE", "TRAILER", "TRLR", "UNIT",
    ]

    /// USPS Publication 28, Appendix B (directionals).
    static let directionals: [String: String] = [
        "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE", "NORTHWEST": "NW", "SOUTHEAST": "SE",
        "SOUTHWEST": "SW",
    ]

    /// USPS Publication 28, Appendix C1 (street suffixes), the common ones: name → standard
    /// abbreviation (standard abbreviations map to themselves through `words` unchanged).
    static let suffixes: [String: String] = [
        "ALLEY": "ALY", "AVENUE": "AVE", "AV": "AVE", "AVEN": "AVE", "BOULEVARD": "BLVD", "BOUL": "BLVD",
        "CIRCLE": "CIR", "CIRC": "CIR", "COURT": "CT", "CRESCENT": "CRES", "DRIVE": "DR", "DRV": "DR",
        "EXPRESSWAY": "EXPY", "FREEWAY": "FWY", "HIGHWAY": "HWY", "HIWAY": "HWY", "LANE": "LN", "LOOP": "LOOP",
        "PARKWAY": "PKWY", "PKY": "PKWY", "PLACE": "PL", "PLAZA": "PLZ", "ROAD": "RD", "ROUTE": "RTE",
        "SQUARE": "SQ", "STREET": "ST", "STR": "ST", "STRT": "ST", "TERRACE": "TER", "TRAIL": "TRL", "TURNPIKE": "TPKE",
        "WAY": "WAY", "CENTER": "CTR", "CROSSING": "XING", "HEIGHTS": "HTS", "POINT": "PT", "RIDGE": "RDG",
    ]
}

/// Lower-case hexadecimal of bytes.
func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
}
