import Foundation

/// Records whose JSON gives a field twice are refused.
///
/// RFC 8259 leaves a duplicate name's meaning open ("the names within an object SHOULD be
/// unique"); Foundation's `JSONDecoder` takes the last, other readers the first. A record read
/// one way by a worker and another way by an auditor or another team's consumer is not a
/// record anyone can stand behind (`{"orderId":"A",…,"orderId":"B"}`, two `usdPerUnit`), so every
/// worker refuses it: the input goes to the DLQ, a reference record is reported invalid.
///
/// It also refuses what Foundation's decoder lets through but RFC 8259 does not: a comma before a
/// closing bracket, and anything after the document (`{…}{…}`).
public enum DuplicateKeys {
    /// What the scan found.
    enum Finding: Equatable {
        case duplicate(String)
        case trailingComma(offset: Int)
        case trailingContent(offset: Int)
        case tooLong(field: String, bytes: Int)
    }

    /// The longest text a field of a Clearway record may hold, in bytes: far above any name,
    /// address, description or reference an order carries (an ERP reference of 25 kB is still
    /// taken), far below what would let one record fill a partition's state.
    public static let maximumTextBytes = 32_768

    /// The first field given twice in one object of `data`, with its path (`lines[2].sku`), or
    /// nil. Reads any bytes: the decoder reports what is not JSON; this only looks for names.
    public static func first(in data: Data) -> String? {
        if case .duplicate(let field) = scan([UInt8](data)) { return field }
        return nil
    }

    /// What is wrong with `data` that a decoder let through, in words, or nil.
    public static func problem(in data: Data, what: String) -> String? {
        switch scan([UInt8](data)) {
        case .duplicate(let field):
            "\(what) gives the field \(field) twice; JSON readers disagree on which one counts, so it is refused: send it again with each field once"
        case .trailingComma(let offset):
            "\(what) is not JSON: a comma before a closing bracket at byte \(offset)"
        case .trailingContent(let offset):
            "\(what) is not one JSON document: more follows it at byte \(offset)"
        case .tooLong(let field, let bytes):
            "\(what) holds \(bytes) bytes of text in \(field), over the \(maximumTextBytes) any field may hold: shorten it and send it again"
        case nil: nil
        }
    }

    /// Throws `code` with `problem(in:what:)`'s words when there is one.
    public static func check(_ data: Data, code: DomainError.Code, what: String) throws {
        guard let problem = problem(in: data, what: what) else { return }
        throw DomainError(code, problem)
    }

    private struct Frame {
        var isObject: Bool
        var keys: Set<String> = []
        var expectsKey = true
        var name: String
        var index = 0
    }

    private static func scan(_ bytes: [UInt8]) -> Finding? {
        var stack: [Frame] = []
        var previous: UInt8 = 0
        var ended = false
        var lastKey = ""
        var position = 0
        func path(_ stack: [Frame], _ key: String) -> String {
            let parts = stack.dropFirst().map(\.name) + [key]
            return parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        while position < bytes.count {
            let byte = bytes[position]
            if [0x20, 0x09, 0x0A, 0x0D].contains(byte) {
                position += 1
                continue
            }
            if ended { return .trailingContent(offset: position) }
            defer { previous = byte }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let name: String
                if let top = stack.last {
                    name = top.isObject ? lastKey : "[\(top.index)]"
                } else {
                    name = ""
                }
                stack.append(Frame(isObject: byte == UInt8(ascii: "{"), name: name))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if previous == UInt8(ascii: ",") { return .trailingComma(offset: position) }
                if !stack.isEmpty { stack.removeLast() }
                ended = stack.isEmpty
            case UInt8(ascii: ","):
                if !stack.isEmpty {
                    stack[stack.count - 1].expectsKey = stack[stack.count - 1].isObject
                    stack[stack.count - 1].index += 1
                }
            case UInt8(ascii: "\""):
                let start = position
                position += 1
                var escaped = false
                while position < bytes.count {
                    if bytes[position] == UInt8(ascii: "\\") {
                        escaped = true
                        position += 2
                        continue
                    }
                    if bytes[position] == UInt8(ascii: "\"") { break }
                    position += 1
                }
                if position - start - 1 > maximumTextBytes {
                    let field: String
                    if let top = stack.last {
                        field = top.isObject && !top.expectsKey ? lastKey : "[\(top.index)]"
                    } else {
                        field = ""
                    }
                    return .tooLong(field: "\"\(path(stack, field))\"", bytes: position - start - 1)
                }
                if let top = stack.last, top.isObject, top.expectsKey {
                    let raw = Array(bytes[start..<min(position + 1, bytes.count)])
                    let key =
                        escaped
                        ? (try? JSONSerialization.jsonObject(with: Data(raw), options: .fragmentsAllowed))
                            as? String ?? String(decoding: raw, as: UTF8.self)
                        : String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
                    if !stack[stack.count - 1].keys.insert(key).inserted {
                        return .duplicate("\"\(path(stack, key))\"")
                    }
                    stack[stack.count - 1].expectsKey = false
                    lastKey = key
                }
            default: break
            }
            position += 1
        }
        return nil
    }
}
