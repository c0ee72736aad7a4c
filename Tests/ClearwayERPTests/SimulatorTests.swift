import AsyncHTTPClient
import ClearwayContract
import ClearwayERP
import ClearwayERPSim
import Crypto
import Foundation
import Testing

/// The simulator's own rules, with raw requests: what the adapters never send.
@Suite struct SimulatorTests {
    /// Sends one request and returns the status and body.
    static func send(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: Data? = nil
    ) async throws -> (status: Int, body: Data) {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .init(rawValue: method)
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(Array(body)) }
            let response = try await client.execute(request, timeout: .seconds(10))
            let collected = try await response.body.collect(upTo: 1 << 20)
            try await client.shutdown()
            return (Int(response.status.code), Data(collected.readableBytesView))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    @Test func theAdminEndpointsShowTheLedgerTheRecordsAndTheStats() async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                for system in ["netsuite", "business-central", "partner-hook"] {
                    let adapter = try #require(directory.adapter(for: system))
                    _ = await adapter.write(customs(orderId: "SO-20", system: system, recordId: "4720", revision: 1))
                }
            }
            struct Ledger: Decodable { var entries: [LedgerEntry] }
            struct Records: Decodable { var records: [SimulatedRecord] }
            let ledger = try JSONDecoder().decode(
                Ledger.self, from: try await Self.send("GET", harness.running.url + "/_sim/ledger").body)
            #expect(ledger.entries.map(\.system).sorted() == ["business-central", "netsuite", "webhook"])
            #expect(ledger.entries.map(\.sequence) == [1, 2, 3])
            #expect(ledger.entries.allSatisfy { $0.orderId == "SO-20" && $0.recordId == "4720" })
            #expect(ledger.entries.first(where: { $0.system == "webhook" })?.receiver == "partner")
            let records = try JSONDecoder().decode(
                Records.self, from: try await Self.send("GET", harness.running.url + "/_sim/records").body)
            #expect(records.records.count == 3)
            #expect(records.records.allSatisfy { $0.revision == 1 && $0.customs?.orderId == "SO-20" })
            let stats = try JSONDecoder().decode(
                SimulatorStats.self, from: try await Self.send("GET", harness.running.url + "/_sim/stats").body)
            #expect(stats.requests["token"] == 2)
            #expect(stats.faults.isEmpty)
            let health = try await Self.send("GET", harness.running.url + "/healthz")
            #expect(health.status == 200)
        }
    }

    @Test func theReceiverChecksSignatureAndTimestampAndDropsARepeatedId() async throws {
        try await withHarness { harness in
            let url = harness.running.url + "/webhook/partner"
            let key = try #require(StandardWebhooks.key(fromSecret: harness.webhookSecrets[1]))
            let values = customs(orderId: "SO-21", system: "partner-hook", recordId: "1", revision: 1)
            let body = try StandardWebhooks.body(type: WebhookAdapter.eventType, at: Date(), data: values)
            func headers(id: String, timestamp: Int, body: Data) -> [(String, String)] {
                [
                    ("webhook-id", id), ("webhook-timestamp", "\(timestamp)"),
                    (
                        "webhook-signature",
                        StandardWebhooks.signature(id: id, timestamp: timestamp, body: body, keys: [key])
                    ),
                ]
            }
            let now = Int(Date().timeIntervalSince1970)
            let first = try await Self.send(
                "POST", url, headers: headers(id: "msg_1", timestamp: now, body: body), body: body)
            #expect(first.status == 200)
            let repeated = try await Self.send(
                "POST", url, headers: headers(id: "msg_1", timestamp: now, body: body), body: body)
            #expect(repeated.status == 200)
            #expect(String(decoding: repeated.body, as: UTF8.self).contains(#""duplicate":true"#))
            var tampered = body
            tampered.append(contentsOf: Array(" ".utf8))
            let forged = try await Self.send(
                "POST", url, headers: headers(id: "msg_2", timestamp: now, body: body), body: tampered)
            #expect(forged.status == 401)
            let stale = try await Self.send(
                "POST", url, headers: headers(id: "msg_3", timestamp: now - 600, body: body), body: body)
            #expect(stale.status == 401)
            let unsigned = try await Self.send("POST", url, body: body)
            #expect(unsigned.status == 400)
            #expect(harness.ledger("webhook").count == 1)
        }
    }

    @Test func businessCentralRequiresTheETagItGave() async throws {
        try await withHarness { harness in
            let base = harness.running.url + "/bc"
            let form =
                "grant_type=client_credentials&client_id=bc-app&client_secret=\(Harness.bcSecret)"
                + "&scope=https%3A%2F%2Fapi.businesscentral.dynamics.com%2F.default"
            let token = try await Self.send(
                "POST", "\(base)/\(Harness.tenant)/oauth2/v2.0/token",
                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Data(form.utf8))
            #expect(token.status == 200)
            let accessToken = try #require(
                (try JSONSerialization.jsonObject(with: token.body) as? [String: Any])?["access_token"] as? String)
            let record =
                "\(base)/v2.0/\(Harness.tenant)/sandbox/api/clearway/customs/v1.0/companies(c1)/salesOrderCustoms(so1)"
            let auth = ("Authorization", "Bearer \(accessToken)")
            let read = try await Self.send("GET", record, headers: [auth])
            #expect(read.status == 200)
            let etag = try #require(
                (try JSONSerialization.jsonObject(with: read.body) as? [String: Any])?["@odata.etag"] as? String)
            let body = Data(#"{"status":"accepted"}"#.utf8)
            let json = ("Content-Type", "application/json")
            #expect(try await Self.send("PATCH", record, headers: [auth, json], body: body).status == 400)
            #expect(
                try await Self.send("PATCH", record, headers: [auth, json, ("If-Match", "*")], body: body).status == 400
            )
            #expect(
                try await Self.send("PATCH", record, headers: [auth, json, ("If-Match", etag)], body: body).status
                    == 200)
            // The ETag changed with the write: the one read before is stale now.
            #expect(
                try await Self.send("PATCH", record, headers: [auth, json, ("If-Match", etag)], body: body).status
                    == 412)
            #expect(try await Self.send("GET", record).status == 401)
        }
    }
}
