import ClearwayContract
import Foundation
import Testing

@testable import ClearwayERP

/// How an ERP's error answer becomes a write outcome, from the ERPs' documented error bodies.
@Suite struct OutcomeTests {
    static func response(_ status: Int, _ body: String, headers: [String: String] = [:]) -> ERPResponse {
        ERPResponse(status: status, headers: headers, body: Data(body.utf8))
    }

    static func netsuiteError(_ status: Int, code: String, detail: String) -> String {
        #"{"type":"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1","title":"Bad Request","status":\#(status),"o:errorDetails":[{"detail":"\#(detail)","o:errorCode":"\#(code)"}]}"#
    }

    @Test(arguments: ["SSS_REQUEST_LIMIT_EXCEEDED", "WS_REQUEST_BLOCKED", "CONCURRENCY_LIMIT_EXCEEDED"])
    func netSuitesConcurrencyLimitIsARetryWhateverItsStatus(code: String) {
        let outcome = NetSuiteAdapter.outcome(
            Self.response(400, Self.netsuiteError(400, code: code, detail: "Request limit exceeded.")))
        guard case .retry(let reason, _) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(reason.contains(code))
    }

    @Test func aNetSuiteRefusalCarriesItsWords() {
        let outcome = NetSuiteAdapter.outcome(
            Self.response(
                400,
                Self.netsuiteError(
                    400, code: "INVALID_KEY_OR_REF", detail: "Invalid value 99 for custrecord_clw_sales_order.")))
        #expect(
            outcome
                == .refused(
                    status: 400, message: "INVALID_KEY_OR_REF: Invalid value 99 for custrecord_clw_sales_order."))
    }

    @Test func anODataErrorIsReadAndA409IsARetry() {
        let body = #"{"error":{"code":"Internal_EntityWithSameKeyExists","message":"The record already exists."}}"#
        #expect(
            Self.response(400, body).failureOutcome()
                == .refused(status: 400, message: "Internal_EntityWithSameKeyExists: The record already exists."))
        #expect(
            Self.response(409, body).failureOutcome()
                == .retry(reason: "HTTP 409: Internal_EntityWithSameKeyExists: The record already exists.", after: nil))
    }

    @Test func a503HonoursItsRetryAfterDate() {
        let later = Date().addingTimeInterval(90)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let outcome = Self.response(503, "", headers: ["retry-after": formatter.string(from: later)]).failureOutcome()
        guard case .retry(_, let after?) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(after > .seconds(85) && after <= .seconds(91))
    }

    @Test func aPlainTextErrorIsQuoted() {
        #expect(Self.response(403, "Forbidden\n").failureOutcome() == .refused(status: 403, message: "Forbidden"))
    }
}
