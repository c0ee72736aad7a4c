import ClearwayContract
import Crypto
import Foundation
import Hummingbird

/// The simulated webhook receivers (`POST /webhook/<name>`): Standard Webhooks verification, one
/// effect per `webhook-id`, the highest revision kept per order.
extension ERPSimulator {
    func webhook(_ call: SimulatorCall, receiver: String) async throws -> Response {
        if let fault = try await injectFault(call, system: "webhook") { return fault }
        guard let id = call.header("webhook-id"), let timestampText = call.header("webhook-timestamp"),
            let signatures = call.header("webhook-signature")
        else {
            return refuse(.badRequest, "webhook-id, webhook-timestamp and webhook-signature are required")
        }
        guard let timestamp = Int(timestampText) else {
            return refuse(.badRequest, "webhook-timestamp is not a number")
        }
        let tolerance = Int(configuration.webhookTolerance.components.seconds)
        guard abs(Int(Date().timeIntervalSince1970) - timestamp) <= tolerance else {
            return refuse(.unauthorized, "webhook-timestamp is more than \(tolerance) s from now")
        }
        guard verifies(signatures, signed: Data("\(id).\(timestampText).".utf8) + call.body) else {
            return refuse(.unauthorized, "no webhook-signature verifies with the receiver's secrets")
        }
        guard let payload = call.json, payload["type"] is String, let data = payload["data"],
            let dataJSON = try? JSONSerialization.data(withJSONObject: data),
            let customs = try? JSONDecoder().decode(OrderCustoms.self, from: dataJSON)
        else {
            return refuse(.badRequest, "the body is not {type, timestamp, data: OrderCustoms}")
        }
        let at = nowISO8601()
        let duplicate = store.withLock { store in
            guard store.seenWebhookIds.insert("\(receiver)/\(id)").inserted else { return true }
            let key = "\(receiver)/\(customs.orderId)"
            let held = store.webhook[key]
            // A receiver keeps the highest revision: a lower one arriving late changes nothing.
            if let held, held.revision > customs.revision { return false }
            store.record(system: "webhook", receiver: receiver, before: held?.customs, after: customs, at: at)
            store.webhook[key] = WebhookRecord(revision: customs.revision, customs: customs)
            return false
        }
        if !duplicate, let fault = injectFaultAfterApply(system: "webhook") { return fault }
        return .json(.ok, ["received": id, "duplicate": duplicate])
    }

    /// Whether one of the `v1,<base64>` signatures is the HMAC of `signed` with one of the secrets.
    func verifies(_ signatures: String, signed: Data) -> Bool {
        for candidate in signatures.split(separator: " ") where candidate.hasPrefix("v1,") {
            guard let mac = Data(base64Encoded: String(candidate.dropFirst(3))) else { continue }
            for key in webhookKeys
            where HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: signed, using: SymmetricKey(data: key)) {
                return true
            }
        }
        return false
    }

    func refuse(_ status: HTTPResponse.Status, _ message: String) -> Response {
        errorResponse(
            system: "webhook", status: status, code: status == .unauthorized ? "invalid_signature" : "bad_request",
            message: message)
    }
}
