import Foundation

/// The damages themselves, on a `Mutation`'s JSON object or its serialized bytes.
extension Mutation {
    /// A step into a JSON value.
    enum Step: Hashable {
        case key(String)
        case index(Int)
    }

    /// Where a value sits, and the value.
    typealias Leaf = (path: [Step], value: Any)

    /// Applies `damage`, or — where the record has no field it applies to (no date, no
    /// currency, no enumeration) — a wrong type on a required field; returns the damage done.
    mutating func apply(_ damage: MalformedRecord.Damage, random: inout SplitMix) -> MalformedRecord.Damage {
        let leaves = Self.leaves(of: object)
        func has(_ test: (Leaf) -> Bool) -> Bool { leaves.contains(where: test) }
        let applicable =
            switch damage {
            case .impossibleDate: has { ($0.value as? String).map(Self.isDate) ?? false }
            case .unknownCurrency:
                has { if case .key(let name) = $0.path.last { name.lowercased().hasSuffix("currency") } else { false } }
            case .unknownEnum:
                has { if case .key(let name) = $0.path.last { Self.enumFields.contains(name) } else { false } }
            default: true
            }
        let done = applicable ? damage : .wrongType
        switch done {
        case .truncated:
            finish = { [cut = random.int(1...100)] bytes in
                // Any proper prefix of a JSON object is not JSON.
                bytes = Array(bytes.prefix(max(1, bytes.count * cut / 101)))
            }
        case .invalidJSON: breakSyntax(random: &random)
        case .wrongType:
            let required = requiredFields
            let path: [Step] = required.isEmpty ? random.pick(leaves).path : [.key(random.pick(required))]
            set(path, to: Self.otherType(than: get(path)))
        case .missingField:
            let required = requiredFields
            object[required.isEmpty ? random.pick(object.keys.sorted()) : random.pick(required)] = nil
        case .renamedField:
            let required = requiredFields
            let field = required.isEmpty ? random.pick(object.keys.sorted()) : random.pick(required)
            object[Self.snakeCase(field)] = object[field]
            object[field] = nil
            object["x_source_system"] = "oms-legacy"
            object["x_batch"] = ["id": 7, "at": "2026-01-01T00:00:00Z"]
        case .hugeValue:
            if random.chance(0.5), let number = leaves.first(where: { $0.value is NSNumber && !Self.isBool($0.value) })
            {
                rawValue(at: number.path, Array(("9" + String(repeating: "0", count: 400)).utf8))
            } else {
                let strings = leaves.filter { $0.value is String }
                set(
                    (strings.isEmpty ? leaves : strings).map(\.path).randomElement(using: &random)!,
                    to: String(repeating: "W", count: 64_000))
            }
        case .deepNesting:
            let path = random.pick(leaves).path
            rawValue(
                at: path, Array((String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)).utf8))
        case .invalidUTF8:
            let strings = leaves.filter { $0.value is String }
            guard let leaf = strings.isEmpty ? nil : random.pick(strings) else {
                breakSyntax(random: &random)
                return .invalidJSON
            }
            let bad: [[UInt8]] = [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80]]
            let text = Array((leaf.value as! String).utf8)
            rawValue(
                at: leaf.path,
                [0x22] + text.prefix(text.count / 2) + random.pick(bad) + text.dropFirst(text.count / 2) + [0x22])
        case .duplicateKey:
            // The first occurrence is the real one; a reader that lets the last win reads the other.
            let field = random.pick(object.keys.sorted())
            let other = Self.otherValue(than: object[field]!, tag: tag)
            let text =
                (try? JSONSerialization.data(withJSONObject: [field: other], options: [.fragmentsAllowed]))
                .map { Array($0.dropFirst().dropLast()) } ?? []
            finish = { bytes in
                guard bytes.last == UInt8(ascii: "}") else { return }
                bytes.removeLast()
                bytes += Array(",".utf8) + text + Array("}".utf8)
            }
        case .impossibleDate:
            let dates = leaves.filter { ($0.value as? String).map(Self.isDate) ?? false }
            let impossible = [
                "2026-02-30", "2025-13-01", "2026-04-31", "0000-00-00", "2026-11-20T25:61:00Z", "2025-02-29",
            ]
            if dates.isEmpty {
                object["shipDate"] = random.pick(impossible)
            } else {
                set(random.pick(dates).path, to: random.pick(impossible))
            }
        case .negativeAmount, .enormousAmount:
            let amounts = leaves.filter { leaf in
                if let text = leaf.value as? String { return Self.isAmount(text) }
                return leaf.value is NSNumber && !Self.isBool(leaf.value) && Self.isQuantity(leaf.path)
            }
            guard let leaf = amounts.isEmpty ? nil : random.pick(amounts) else {
                breakSyntax(random: &random)
                return .invalidJSON
            }
            let negative = done == .negativeAmount
            if let text = leaf.value as? String {
                set(leaf.path, to: negative ? "-" + text : "99999999999999999999999999999999999999.99")
            } else {
                let number = (leaf.value as! NSNumber).intValue
                set(leaf.path, to: negative ? -max(1, number) : Int.max)
            }
        case .unknownCurrency:
            let codes = leaves.filter {
                if case .key(let name) = $0.path.last { name.lowercased().hasSuffix("currency") } else { false }
            }
            // (Lower case is not among them: `usd` is USD, as `CurrencyCode` reads it.)
            let unknown = random.pick(["XQZ", "US", "€", "DOLLARS", "", "ZZZ"])
            if codes.isEmpty { object["currency"] = unknown } else { set(random.pick(codes).path, to: unknown) }
        case .unknownEnum:
            let enums = leaves.filter { leaf in
                guard case .key(let name) = leaf.path.last else { return false }
                return Self.enumFields.contains(name) && leaf.value is String
            }
            let unknown = random.pick(["shipped", "T99", "", "PLACED", "released ", "unknown"])
            if enums.isEmpty { object["type"] = unknown } else { set(random.pick(enums).path, to: unknown) }
        case .nullKey: keyBytes = nil
        case .nonUTF8Key: keyBytes = Data([0xFF, 0xFE] + Array(key.utf8.prefix(8)))
        case .otherKey:
            if topic == "catalog.v1" || topic == "fx-rates.v1" {
                // A table's key is what its readers look up: the record sits under a key of its
                // own (another SKU, another day), never over a good record's.
                key = topic == "catalog.v1" ? tag + "-K" : Mutation.shifted(key)
                planted = key
                keyBytes = Data(key.utf8)
            } else {
                keyBytes = Data((otherKey == key ? key + "-other" : otherKey).utf8)
            }
        case .oversized:
            if topic == "orders.v1", let lines = object["lines"] as? [Any], let first = lines.first {
                object["lines"] = Array(repeating: first, count: 600)
            } else {
                let strings = leaves.filter { $0.value is String && $0.path.count > 1 }
                let path = (strings.isEmpty ? leaves : strings).map(\.path).randomElement(using: &random)!
                set(path, to: String(repeating: "L", count: 900_000))
            }
        }
        return done
    }

    /// A rate's key on a day 20 years later: a key no other record has.
    static func shifted(_ key: String) -> String {
        let parts = key.split(separator: "@")
        guard parts.count == 2, let year = Int(parts[1].prefix(4)) else { return key + "-K" }
        return "\(parts[0])@\(year + 20)\(parts[1].dropFirst(4))"
    }

    /// The required fields the record has (a cancellation needs only its id, type and version).
    var requiredFields: [String] {
        let cancelled = topic == "orders.v1" && object["type"] as? String == "cancelled"
        let fields = cancelled ? ["orderId", "type", "version"] : MalformedRecords.requiredFields[topic] ?? []
        return fields.filter { object[$0] != nil }
    }

    static let enumFields: Set<String> = ["type", "status", "entryType", "event", "kind", "action", "severity", "lane"]

    /// A damage that always breaks the syntax.
    mutating func breakSyntax(random: inout SplitMix) {
        let way = random.int(0...5)
        finish = { bytes in
            switch way {
            case 0:  // `=` for the first `:` (the end of the first key: keys hold no quotes)
                bytes = Mutation.replaceFirst(Array("\":".utf8), with: Array("\"=".utf8), in: bytes)
            case 1: bytes = Array(bytes.dropLast()) + Array(",}".utf8)  // a trailing comma
            case 2: bytes = bytes.map { $0 == UInt8(ascii: "\"") ? UInt8(ascii: "'") : $0 }
            case 3: bytes += bytes  // two objects
            case 4: bytes = Array("ORDER SHIPPED 2 ITEMS ".utf8) + bytes
            default: bytes = Array("\u{FEFF}".utf8) + Array(bytes.dropFirst())  // a BOM for the `{`
            }
        }
    }

    static func replaceFirst(_ pattern: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= pattern.count else { return bytes }
        for index in 0...(bytes.count - pattern.count) where bytes[index..<index + pattern.count].elementsEqual(pattern)
        {
            return Array(bytes[..<index]) + replacement + Array(bytes[(index + pattern.count)...])
        }
        return bytes
    }

    /// Puts `bytes` (raw JSON, or not JSON at all) where the value at `path` is.
    mutating func rawValue(at path: [Step], _ bytes: [UInt8]) {
        let marker = "@@RAW\(raw.count)@@"
        set(path, to: marker)
        raw[marker] = bytes
        let text = String(decoding: bytes.prefix(20), as: UTF8.self)
        changed =
            "\(Self.describe(path)) set to \(bytes.count > 60 ? "\(text)… (\(bytes.count) bytes)" : String(decoding: bytes, as: UTF8.self))"
    }

    static func snakeCase(_ name: String) -> String {
        name.reduce(into: "") { result, character in
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        } + (name.contains(where: \.isUppercase) ? "" : "_")
    }

    static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        let type = String(cString: number.objCType)
        return type == "c" || type == "B"
    }

    static func isDate(_ text: String) -> Bool {
        text.count >= 10
            && text.prefix(10).enumerated().allSatisfy { index, character in
                index == 4 || index == 7 ? character == "-" : character.isASCII && character.isNumber
            }
    }

    static func isAmount(_ text: String) -> Bool {
        guard let dot = text.firstIndex(of: "."), !text.hasPrefix("-") else { return false }
        return !text[..<dot].isEmpty && (text[..<dot] + text[text.index(after: dot)...]).allSatisfy(\.isNumber)
    }

    static func isQuantity(_ path: [Step]) -> Bool {
        guard case .key(let name) = path.last else { return false }
        return ["quantity", "version", "sequence", "count"].contains(name)
    }

    static func otherType(than value: Any?) -> Any {
        switch value {
        case is String: 42
        case let number as NSNumber where isBool(number): "yes"
        case is NSNumber: "12x"
        case is [Any]: ["0": "not a list"]
        case is [String: Any]: ["not", "an", "object"]
        default: true
        }
    }

    static func otherValue(than value: Any, tag: String) -> Any {
        switch value {
        case let text as String: text == tag ? "SO-000001" : text + "-2"
        case let number as NSNumber where !isBool(number): number.intValue + 1
        default: "other"
        }
    }

    // MARK: Paths

    static func leaves(of value: Any, at path: [Step] = [], depth: Int = 0) -> [Leaf] {
        guard depth < 12 else { return [] }
        switch value {
        case let object as [String: Any]:
            return object.keys.sorted().flatMap { leaves(of: object[$0]!, at: path + [.key($0)], depth: depth + 1) }
        case let array as [Any]:
            return array.prefix(4).enumerated().flatMap { leaves(of: $1, at: path + [.index($0)], depth: depth + 1) }
        case is NSNull: return []
        default: return [(path, value)]
        }
    }

    func get(_ path: [Step]) -> Any? { Self.get(path[...], in: object) }

    static func get(_ path: ArraySlice<Step>, in value: Any) -> Any? {
        guard let step = path.first else { return value }
        switch (step, value) {
        case (.key(let name), let object as [String: Any]):
            return object[name].flatMap { get(path.dropFirst(), in: $0) }
        case (.index(let index), let array as [Any]) where index < array.count:
            return get(path.dropFirst(), in: array[index])
        default: return nil
        }
    }

    mutating func set(_ path: [Step], to newValue: Any) {
        object = Self.set(path[...], to: newValue, in: object) as? [String: Any] ?? object
        let text = "\(newValue)"
        changed =
            "\(Self.describe(path)) set to \(text.count > 60 ? "\(text.prefix(20))… (\(text.count) characters)" : text)"
    }

    /// A path as a reader writes it: `lines[0].unitPrice`.
    static func describe(_ path: [Step]) -> String {
        path.enumerated().map { index, step in
            switch step {
            case .key(let name): index == 0 ? name : ".\(name)"
            case .index(let position): "[\(position)]"
            }
        }.joined()
    }

    static func set(_ path: ArraySlice<Step>, to newValue: Any, in value: Any) -> Any {
        guard let step = path.first else { return newValue }
        switch (step, value) {
        case (.key(let name), var object as [String: Any]):
            object[name] = set(path.dropFirst(), to: newValue, in: object[name] ?? NSNull())
            return object
        case (.index(let index), var array as [Any]) where index < array.count:
            array[index] = set(path.dropFirst(), to: newValue, in: array[index])
            return array
        default: return value
        }
    }
}
