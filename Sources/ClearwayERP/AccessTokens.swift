import Crypto
import Foundation
import Logging

/// An OAuth 2.0 access token source for one ERP: fetches a token with the client-credentials
/// grant, keeps it until shortly before it expires, and drops it when the ERP refuses it.
protocol AccessTokenProvider: Sendable {
    /// A valid access token. Throws ``ERPError/credentialsRejected`` when the token endpoint
    /// refuses the credentials, ``ERPError/unavailable`` when it cannot be reached.
    func token() async throws(ERPError) -> String
    /// Forgets `token` (the ERP answered 401 to it), so that the next ``token()`` fetches anew.
    func invalidate(_ token: String) async
}

/// How the credentials' settings are named where the operator sets them, so that a refusal says
/// what to fix. ``ERPDirectory`` names its environment variables (and files).
public struct CredentialNames: Sendable, Hashable {
    /// The client (application) id.
    public var clientId: String
    /// The client secret's file (Business Central) or the private key's file (NetSuite).
    public var secret: String
    /// The certificate id (NetSuite).
    public var certificateId: String
    /// The tenant (Business Central).
    public var tenant: String

    /// Names the settings; the defaults are plain words.
    public init(
        clientId: String = "the client id", secret: String = "the secret's file",
        certificateId: String = "the certificate id", tenant: String = "the tenant"
    ) {
        self.clientId = clientId
        self.secret = secret
        self.certificateId = certificateId
        self.tenant = tenant
    }
}

/// The token cache both grants share: one fetch at a time, the token kept until a minute (or half
/// its lifetime, if shorter) before it expires.
actor OAuthTokenCache: AccessTokenProvider {
    /// Asks the token endpoint: the token and its lifetime.
    typealias Fetch = @Sendable () async throws(ERPError) -> (token: String, lifetime: Duration)

    private let fetch: Fetch
    private var current: (token: String, refreshAt: ContinuousClock.Instant)?
    private var pending: Task<(token: String, lifetime: Duration), any Error>?

    init(fetch: @escaping Fetch) { self.fetch = fetch }

    func token() async throws(ERPError) -> String {
        if let current, ContinuousClock.now < current.refreshAt { return current.token }
        let task: Task<(token: String, lifetime: Duration), any Error>
        if let pending {
            task = pending
        } else {
            let fetch = self.fetch
            task = Task { try await fetch() }
            pending = task
        }
        do {
            let (token, lifetime) = try await task.value
            if pending == task {
                pending = nil
                current = (token, .now + lifetime - min(.seconds(60), lifetime / 2))
            }
            return token
        } catch {
            if pending == task { pending = nil }
            throw error as? ERPError ?? .unavailable(system: "", message: "\(error)")
        }
    }

    func invalidate(_ token: String) {
        if current?.token == token { current = nil }
    }
}

/// Posts a client-credentials grant to a token endpoint and reads the answer.
struct TokenEndpoint: Sendable {
    var system: String
    var url: String
    var http: ERPHTTPClient
    var timeout: Duration
    var logger: Logger
    /// What to fix when the endpoint refuses the credentials, from its error body.
    var hint: @Sendable (ERPErrorBody) -> String

    func request(_ form: [(String, String)]) async throws(ERPError) -> (token: String, lifetime: Duration) {
        let body = form.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&")
        let request = ERPRequest(
            method: .post, url: url, body: Data(body.utf8), contentType: "application/x-www-form-urlencoded")
        let response = try await http.send(request, system: system, timeout: timeout, logger: logger)
        guard response.isSuccess else {
            let error = response.error
            let words = error.words ?? "no error body"
            if response.status == 408 || response.status == 429 || response.status >= 500 {
                throw .unavailable(
                    system: system, message: "the token endpoint answered HTTP \(response.status): \(words)")
            }
            logger.warning(
                "erp.token.refused", metadata: ["erp.system": "\(system)", "http.status": "\(response.status)"])
            throw .credentialsRejected(
                system: system,
                message: "the token endpoint \(url) answered HTTP \(response.status) (\(words)); \(hint(error))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
            let token = object["access_token"] as? String, !token.isEmpty
        else {
            throw .unavailable(system: system, message: "the token endpoint \(url) answered without an access_token")
        }
        // Microsoft's v1 endpoints send expires_in as a string.
        let seconds =
            (object["expires_in"] as? Int) ?? (object["expires_in"] as? String).flatMap { Int($0) } ?? 3600
        logger.debug("erp.token.fetched", metadata: ["erp.system": "\(system)", "token.lifetime": "\(seconds)"])
        return (token, .seconds(max(seconds, 1)))
    }

    /// `application/x-www-form-urlencoded` for one name or value.
    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// NetSuite's OAuth 2.0 machine-to-machine (client credentials) grant: a JWT signed ES256 with the
/// private key of the certificate uploaded to the integration's M2M setup.
struct NetSuiteTokenProvider: AccessTokenProvider {
    let cache: OAuthTokenCache

    init(
        endpoint: TokenEndpoint, clientId: String, certificateId: String, scopes: [String],
        key: P256.Signing.PrivateKey
    ) {
        // Crypto's key types are not `Sendable`: the token cache's task keeps the key's bytes.
        let keyBytes = key.rawRepresentation
        cache = OAuthTokenCache { () async throws(ERPError) in
            let assertion: String
            do {
                let key = try P256.Signing.PrivateKey(rawRepresentation: keyBytes)
                assertion = try NetSuiteAssertion.make(
                    clientId: clientId, certificateId: certificateId, audience: endpoint.url, scopes: scopes,
                    key: key, now: Date())
            } catch {
                throw .configuration("cannot sign the NetSuite client assertion: \(error)")
            }
            return try await endpoint.request([
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion),
            ])
        }
    }

    func token() async throws(ERPError) -> String { try await cache.token() }
    func invalidate(_ token: String) async { await cache.invalidate(token) }
}

/// The JWT NetSuite's M2M grant takes as its client assertion.
public enum NetSuiteAssertion {
    /// The JWT's claims.
    public struct Claims: Codable, Sendable, Equatable {
        /// The integration record's client id.
        public var iss: String
        /// `rest_webservices` (and others the integration allows).
        public var scope: [String]
        /// The token endpoint's URL.
        public var aud: String
        /// Issued at, and expiry (at most an hour later), in Unix seconds.
        public var iat: Int
        /// Expiry, in Unix seconds.
        public var exp: Int

        /// Makes the claims.
        public init(iss: String, scope: [String], aud: String, iat: Int, exp: Int) {
            self.iss = iss
            self.scope = scope
            self.aud = aud
            self.iat = iat
            self.exp = exp
        }
    }

    /// The JWT's header.
    public struct Header: Codable, Sendable, Equatable {
        /// `ES256`.
        public var alg: String
        /// `JWT`.
        public var typ: String
        /// The certificate id NetSuite gave the uploaded certificate.
        public var kid: String

        /// Makes the header.
        public init(alg: String, typ: String, kid: String) {
            self.alg = alg
            self.typ = typ
            self.kid = kid
        }
    }

    /// A signed assertion (`header.claims.signature`, each base64url), valid for an hour.
    public static func make(
        clientId: String, certificateId: String, audience: String, scopes: [String], key: P256.Signing.PrivateKey,
        now: Date
    ) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let iat = Int(now.timeIntervalSince1970)
        let header = try encoder.encode(Header(alg: "ES256", typ: "JWT", kid: certificateId))
        let claims = try encoder.encode(Claims(iss: clientId, scope: scopes, aud: audience, iat: iat, exp: iat + 3600))
        let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(claims)
        let signature = try key.signature(for: Data(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature.rawRepresentation)
    }
}

/// Base64url without padding (RFC 4648 §5), as JWTs use it.
public enum Base64URL {
    /// Encodes bytes.
    public static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes text; nil when it is not base64url.
    public static func decode(_ text: some StringProtocol) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

/// The Microsoft identity platform's client-credentials grant with a client secret, as Business
/// Central's service-to-service authentication uses it.
struct ClientSecretTokenProvider: AccessTokenProvider {
    let cache: OAuthTokenCache

    init(endpoint: TokenEndpoint, clientId: String, clientSecret: String, scope: String) {
        cache = OAuthTokenCache { [endpoint] () async throws(ERPError) in
            try await endpoint.request([
                ("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", clientSecret),
                ("scope", scope),
            ])
        }
    }

    func token() async throws(ERPError) -> String { try await cache.token() }
    func invalidate(_ token: String) async { await cache.invalidate(token) }
}
