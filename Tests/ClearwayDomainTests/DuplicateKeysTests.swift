import ClearwayDomain
import Foundation
import Testing

struct DuplicateKeysTests {
    /// Foundation's `JSONDecoder` lets the last of two equal names win; Clearway refuses the
    /// record instead, naming the field and where it is.
    @Test func aFieldGivenTwiceIsFoundWhereverItIs() {
        func first(_ text: String) -> String? { DuplicateKeys.first(in: Data(text.utf8)) }
        #expect(first(#"{"orderId":"A","version":1,"orderId":"B"}"#) == #""orderId""#)
        #expect(first(#"{"lines":[{"sku":"A"},{"sku":"B","sku":"C"}]}"#) == #""lines[1].sku""#)
        #expect(first(#"{"a":{"b":{"c":1,"c":2}}}"#) == #""a.b.c""#)
        // An escaped name is the name it spells.
        #expect(first(#"{"orderId":"A","\u006frderId":"B"}"#) == #""orderId""#)
        // Equal names in different objects, and names inside string values, are fine.
        #expect(first(#"{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}"#) == nil)
        #expect(first(#"{"note":"\"a\":1,\"a\":2","a":1}"#) == nil)
        #expect(first(#"[1,2,{"a":[]}]"#) == nil)
    }

    /// What Foundation's decoder lets through and RFC 8259 does not.
    @Test func aTrailingCommaAndASecondDocumentAreFound() {
        func problem(_ text: String) -> String? { DuplicateKeys.problem(in: Data(text.utf8), what: "the record") }
        #expect(problem(#"{"a":1,}"#)?.contains("a comma before a closing bracket") == true)
        #expect(problem(#"{"a":[1,2,]}"#)?.contains("a comma before a closing bracket") == true)
        #expect(problem(#"{"a":1}{"a":1}"#)?.contains("more follows it") == true)
        #expect(problem(#"{"a":"x,}"} "#) == nil)
    }

    @Test func anOrderGivingAFieldTwiceIsRefused() throws {
        let order =
            #"{"orderId":"SO-1","type":"cancelled","version":1,"orderId":"SO-2"}"#
        #expect(throws: DomainError.self) { try OrderEvent.decode(Data(order.utf8)) }
        do {
            _ = try OrderEvent.decode(Data(order.utf8))
        } catch let error as DomainError {
            #expect(error.code == .invalidOrder && error.message.contains(#""orderId" twice"#))
        }
    }
}
