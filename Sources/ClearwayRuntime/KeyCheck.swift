import ClearwayKafka
import Foundation

/// A keyed topic's promise: the record's key is the one its body implies (`orders.v1` by
/// `orderId`, `orders.screened.v1` by `consigneeKey`, …), so the partition that owns the key —
/// and the state it keeps for that key — is the one that handles the record.
///
/// A record with a null key, a key that is not UTF-8, or another key lands on a partition that
/// may hold none of the key's history (an update of an order seen elsewhere, a consignee whose
/// day is counted elsewhere). Handled there, it would be decided against the wrong state: an
/// update that moves an order to another consignee would never free the first consignee's day
/// (19 CFR 10.151). Such a record is refused — the DLQ, `key-mismatch`, with its key's bytes as
/// they came — rather than re-keyed: the topic belongs to its producer, who must fix the key,
/// and a worker writing into its own input would reorder the key's records.
public enum KeyCheck {
    /// The DLQ class of a mis-keyed record.
    public static let errorClass = "key-mismatch"

    /// Throws `RecordRejected` (`key-mismatch`) unless the record's key is `expected`'s UTF-8
    /// bytes. `field` names the body field the key comes from, for the message.
    public static func require(_ record: InputRecord, isKeyedBy expected: String, field: String) throws {
        if let key = record.key, key.elementsEqual(expected.utf8) { return }
        throw RecordRejected(errorClass, message(record, expected: expected, field: field))
    }

    /// What is wrong with the record's key and what to do, for the person who will fix it.
    static func message(_ record: InputRecord, expected: String, field: String) -> String {
        let topic = record.topic
        let expected = expected.count > 80 ? String(expected.prefix(80)) + "…" : expected
        let fix =
            "\(topic) is keyed by \(field): publish the record again with the key \"\(expected)\" so that the partition owning it handles it"
        guard let key = record.key else { return "the record has no key (null); \(fix)" }
        guard let text = String(data: key, encoding: .utf8) else {
            let shown = key.prefix(32).map { String(format: "%02x", $0) }.joined()
            return
                "the record's key is not UTF-8 (\(key.count) bytes, hex \(shown)\(key.count > 32 ? "…" : "")); \(fix)"
        }
        let shown = text.count > 80 ? String(text.prefix(80)) + "…" : text
        return "the record's key \"\(shown)\" is not its \(field) \"\(expected)\"; \(fix)"
    }
}
