import ClearwayContract
import ClearwayERP
import ClearwayERPSim
import Crypto
import Foundation
import Testing

/// The settings, the JWT, the signatures and `Retry-After`, without a network.
@Suite struct DirectoryTests {
    @Test func eachAdapterServesTheSystemItsVariablesName() async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                #expect(directory.systems == ["business-central", "netsuite", "partner-hook"])
                #expect(directory.adapter(for: "netsuite") is NetSuiteAdapter)
                #expect(directory.adapter(for: "business-central") is BusinessCentralAdapter)
                #expect(directory.adapter(for: "partner-hook") is WebhookAdapter)
                #expect(directory.adapter(for: "sap") == nil)
                #expect(directory.concurrency(of: "business-central") == 4)
                #expect(directory.concurrency(of: "netsuite") == ERPDirectory.defaultConcurrency)
            }
        }
    }

    @Test(arguments: [
        "CLEARWAY_ERP_NETSUITE_CLIENT_ID", "CLEARWAY_ERP_NETSUITE_CERTIFICATE_ID",
        "CLEARWAY_ERP_NETSUITE_PRIVATE_KEY_FILE", "CLEARWAY_ERP_BUSINESS_CENTRAL_TENANT",
        "CLEARWAY_ERP_BUSINESS_CENTRAL_COMPANY", "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE",
        "CLEARWAY_ERP_PARTNER_HOOK_URL", "CLEARWAY_ERP_PARTNER_HOOK_SECRET_FILE",
    ])
    func aMissingVariableIsNamed(variable: String) async throws {
        var environment = Self.environment
        environment[variable] = nil
        do {
            try await ERPDirectory(environment: environment, logger: quiet("erp")).shutdown()
            Issue.record("no error without \(variable)")
        } catch {
            guard case .configuration(let message)? = error as? ERPError else {
                Issue.record("\(error)")
                return
            }
            #expect(message.hasPrefix(variable))
        }
    }

    @Test(arguments: [("ADAPTER", "sap"), ("CONCURRENCY", "many"), ("TIMEOUT_MS", "-1")])
    func aWrongValueIsNamed(suffix: String, value: String) async throws {
        var environment = Self.environment
        environment["CLEARWAY_ERP_NETSUITE_\(suffix)"] = value
        do {
            try await ERPDirectory(environment: environment, logger: quiet("erp")).shutdown()
            Issue.record("\(suffix)=\(value) was accepted")
        } catch {
            #expect("\(error)".hasPrefix("CLEARWAY_ERP_NETSUITE_\(suffix)=\(value)"))
        }
    }

    @Test func noAdapterVariablesGiveAnEmptyDirectory() async throws {
        let directory = try ERPDirectory(environment: ["PATH": "/bin"], logger: quiet("erp"))
        #expect(directory.systems.isEmpty)
        try await directory.shutdown()
    }

    /// Settings whose files exist (the adapters read them at start); nothing is contacted.
    static let environment: [String: String] = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("erp-directory-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let key = folder.appendingPathComponent("ns.pem")
        try! P256.Signing.PrivateKey().pemRepresentation.write(to: key, atomically: true, encoding: .utf8)
        let secret = folder.appendingPathComponent("bc.secret")
        try! "secret".write(to: secret, atomically: true, encoding: .utf8)
        let hook = folder.appendingPathComponent("hook.secrets")
        try! "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n".write(to: hook, atomically: true, encoding: .utf8)
        return [
            "CLEARWAY_ERP_NETSUITE_ADAPTER": "netsuite",
            "CLEARWAY_ERP_NETSUITE_URL": "https://1234567.suitetalk.api.netsuite.com",
            "CLEARWAY_ERP_NETSUITE_CLIENT_ID": "client",
            "CLEARWAY_ERP_NETSUITE_CERTIFICATE_ID": "cert",
            "CLEARWAY_ERP_NETSUITE_PRIVATE_KEY_FILE": key.path,
            "CLEARWAY_ERP_BUSINESS_CENTRAL_ADAPTER": "business-central",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_TENANT": "contoso.onmicrosoft.com",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_COMPANY": "c0ffee00-0000-4000-8000-000000000001",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_ID": "app",
            "CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE": secret.path,
            "CLEARWAY_ERP_PARTNER_HOOK_ADAPTER": "webhook",
            "CLEARWAY_ERP_PARTNER_HOOK_URL": "https://partner.example/hooks/clearway",
            "CLEARWAY_ERP_PARTNER_HOOK_SECRET_FILE": hook.path,
        ]
    }()

    @Test func theNetSuiteAssertionIsAnES256JWTWithTheM2MClaims() throws {
        let key = P256.Signing.PrivateKey()
        let now = Date(timeIntervalSince1970: 1_764_500_000)
        let jwt = try NetSuiteAssertion.make(
            clientId: "client", certificateId: "cert-1", audience: "https://a.example/token",
            scopes: ["rest_webservices"], key: key, now: now)
        let parts = jwt.split(separator: ".")
        #expect(parts.count == 3)
        let header = try JSONDecoder().decode(NetSuiteAssertion.Header.self, from: #require(Base64URL.decode(parts[0])))
        #expect(header == .init(alg: "ES256", typ: "JWT", kid: "cert-1"))
        let claims = try JSONDecoder().decode(NetSuiteAssertion.Claims.self, from: #require(Base64URL.decode(parts[1])))
        #expect(
            claims
                == .init(
                    iss: "client", scope: ["rest_webservices"], aud: "https://a.example/token", iat: 1_764_500_000,
                    exp: 1_764_503_600))
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: #require(Base64URL.decode(parts[2])))
        #expect(key.publicKey.isValidSignature(signature, for: Data("\(parts[0]).\(parts[1])".utf8)))
    }

    @Test func theWebhookIdIsTheSameForTheSameWriteAndTheSignatureIsStandard() throws {
        #expect(
            StandardWebhooks.messageId(orderId: "SO-1", revision: 2)
                == StandardWebhooks.messageId(orderId: "SO-1", revision: 2))
        #expect(
            StandardWebhooks.messageId(orderId: "SO-1", revision: 2)
                != StandardWebhooks.messageId(orderId: "SO-1", revision: 3))
        #expect(StandardWebhooks.messageId(orderId: "SO-1", revision: 2).hasPrefix("msg_"))
        // The Standard Webhooks reference example (standard-webhooks spec, "Signature scheme").
        let key = try #require(StandardWebhooks.key(fromSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let signature = StandardWebhooks.signature(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Data(#"{"test": 2432232314}"#.utf8), keys: [key, key])
        #expect(
            signature
                == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func retryAfterReadsSecondsAndHTTPDates() {
        let now = Date(timeIntervalSince1970: 1_445_412_480)  // Wed, 21 Oct 2015 07:28:00 GMT
        #expect(RetryAfter.parse("120", now: now) == .seconds(120))
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:28:30 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:27:00 GMT", now: now) == .zero)
        #expect(RetryAfter.parse("soon", now: now) == nil)
        #expect(RetryAfter.parse(nil, now: now) == nil)
    }
}
