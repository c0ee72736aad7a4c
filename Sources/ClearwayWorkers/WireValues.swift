import ClearwayDomain
import Foundation

/// The values of an internal record (`orders.enriched.v1` to `entry-results.v1`), checked by
/// field name as their schemas' patterns say, before a worker acts on them: amounts (`…USD`,
/// `unitPrice`, `orderValue`, `value`, `fx.rate`, `fxRate`) are plain non-negative decimals under
/// `maximumIntegerDigits` digits, quantities whole numbers from 1 to `maximumQuantity`, versions
/// and line numbers whole numbers from 1, days
/// (`day`, `arrivalDay`, `dateOfExportation`) real dates, currencies ISO 4217 codes.
///
/// The workers write these values themselves, so one out of range was not written by them: a
/// record with a negative value would lower a consignee's day total and let another shipment
/// through under the threshold (19 CFR 10.151), an impossible day would open a window that never
/// closes. Such a record is refused (the DLQ, `schema-invalid`, naming the field) rather than
/// counted.
enum WireValues {
    /// A trillion dollars: no shipment's value comes near.
    static let maximumIntegerDigits = 12
    /// No line of a parcel holds more units (the enricher's limit).
    static let maximumQuantity = Enrichment.maximumQuantity
    /// 2^53 − 1: above it, JSON readers round whole numbers differently.
    static let maximumWholeNumber = 9_007_199_254_740_991.0

    /// `rate` is an amount only as the exchange rate (`fx.rate`, a manifest shipment's `fxRate`);
    /// a duty rate reads `"50%"`.
    static let amountFields: Set<String> = ["unitPrice", "orderValue", "usdPerUnit", "value", "fxRate"]
    static let dayFields: Set<String> = ["day", "arrivalDay", "dateOfExportation"]

    /// The first value out of range in `data` (a JSON document), with its path, or nil.
    static func problem(in data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) else { return nil }
        return problem(in: object, path: "")
    }

    private static func problem(in value: Any, path: String) -> String? {
        switch value {
        case let object as [String: Any]:
            for (name, field) in object.sorted(by: { $0.key < $1.key }) {
                let place = path.isEmpty ? name : "\(path).\(name)"
                if let problem = check(name, field, place) ?? problem(in: field, path: place) { return problem }
            }
        case let array as [Any]:
            for (index, element) in array.enumerated() {
                if let problem = problem(in: element, path: "\(path)[\(index)]") { return problem }
            }
        default: break
        }
        return nil
    }

    private static func check(_ name: String, _ value: Any, _ place: String) -> String? {
        if name.hasSuffix("USD") || amountFields.contains(name) || place.hasSuffix("fx.rate"),
            let text = value as? String
        {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count),
                parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { ("0"..."9").contains($0) } })
            else { return "\(place) is \"\(text.prefix(40))\", not a non-negative decimal amount like \"412.50\"" }
            guard parts[0].drop(while: { $0 == "0" }).count <= maximumIntegerDigits else {
                return "\(place) is \(text.prefix(40)), more than any shipment is worth"
            }
        } else if name == "version" || name == "lineNumber", let number = value as? NSNumber {
            // Whole numbers from 1, as the schemas say, within what every JSON reader holds exactly
            // (a policy's `version` is text, and not checked here).
            guard number.doubleValue >= 1, number.doubleValue <= maximumWholeNumber,
                number.doubleValue == number.doubleValue.rounded()
            else { return "\(place) is \(value), not a whole number from 1 to 2^53 − 1" }
        } else if name == "quantity" {
            guard let number = value as? NSNumber, (1...maximumQuantity).contains(number.intValue),
                number.doubleValue == Double(number.intValue)
            else { return "\(place) is \(value), not a whole number from 1 to \(maximumQuantity)" }
        } else if name == "shipDate", let text = value as? String, text.count > 10 {
            let formatter = ISO8601DateFormatter()
            guard formatter.date(from: text) != nil else {
                return "\(place) is \"\(text.prefix(40))\", neither a date nor a timestamp with its UTC offset"
            }
        } else if dayFields.contains(name) || name == "shipDate", let text = value as? String {
            do { _ = try Day(text) } catch { return "\(place): \(DomainError.explain(error))" }
        } else if name == "currency", let text = value as? String,
            (try? CurrencyCode(text))?.isISO4217 != true || text != text.uppercased()
        {
            return "\(place) is \"\(text.prefix(40))\", not an ISO 4217 currency code"
        }
        return nil
    }
}
