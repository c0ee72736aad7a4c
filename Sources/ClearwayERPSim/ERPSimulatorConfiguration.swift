import Foundation

/// What `clearway erp-sim` simulates and how badly it behaves.
public struct ERPSimulatorConfiguration: Sendable {
    /// The simulated NetSuite account: the integration's client id and the public key of the
    /// certificate its JWTs are signed with.
    public struct NetSuite: Sendable {
        /// The integration record's client id (the JWT's `iss`).
        public var clientId: String
        /// The certificate's P-256 public key, PEM (`-----BEGIN PUBLIC KEY-----`).
        public var publicKeyPEM: String

        /// Makes the account.
        public init(clientId: String, publicKeyPEM: String) {
            self.clientId = clientId
            self.publicKeyPEM = publicKeyPEM
        }
    }

    /// The simulated Business Central tenant and its app registration.
    public struct BusinessCentral: Sendable {
        /// The tenant in the token URL and the API's path.
        public var tenant: String
        /// The app registration's client id and secret.
        public var clientId: String
        /// The client secret's value.
        public var clientSecret: String

        /// Makes the tenant.
        public init(tenant: String, clientId: String, clientSecret: String) {
            self.tenant = tenant
            self.clientId = clientId
            self.clientSecret = clientSecret
        }
    }

    /// The faults injected into the ERP endpoints (not the token endpoints, `/_sim` or
    /// `/healthz`), decided by a seeded random number generator. Each request draws one number:
    /// the shares are of all requests and add up (at most 1).
    public struct Faults: Sendable {
        /// The share answered 503 before anything is applied.
        public var serverErrors = 0.0
        /// The share answered 429 with `Retry-After: retryAfterSeconds`, before anything is applied.
        public var tooManyRequests = 0.0
        /// The `Retry-After` of a 429, in seconds (default 1).
        public var retryAfterSeconds = 1
        /// The share held for `timeoutHold` (longer than the client waits), then answered 504,
        /// nothing applied.
        public var timeouts = 0.0
        /// How long a timed-out request is held (default 30 s).
        public var timeoutHold: Duration = .seconds(30)
        /// The share whose connection is closed without an answer, nothing applied.
        public var drops = 0.0
        /// The share of writes answered 500 AFTER they were applied (the client retries a write
        /// that took effect: the adapters must make the repeat harmless). Default 0.
        public var serverErrorsAfterApply = 0.0
        /// Latency added to every ERP request, and per system (`netsuite`, `business-central`,
        /// `webhook`) on top.
        public var latency: Duration = .zero
        /// Latency per system, on top of `latency`.
        public var latencyBySystem: [String: Duration] = [:]
        /// The seed: the same seed and the same requests give the same faults.
        public var seed: UInt64 = 1

        /// No faults, no latency.
        public init() {}
    }

    /// The address to bind (default 127.0.0.1).
    public var host = "127.0.0.1"
    /// The NetSuite account; nil: no `/netsuite` endpoints.
    public var netsuite: NetSuite?
    /// The Business Central tenant; nil: no `/bc` endpoints.
    public var businessCentral: BusinessCentral?
    /// The webhook receiver's secrets (`whsec_` + base64); empty: no `/webhook` endpoints.
    public var webhookSecrets: [String] = []
    /// How far a webhook's timestamp may be from now (default 5 minutes).
    public var webhookTolerance: Duration = .seconds(300)
    /// The access tokens' lifetime in seconds (default 3600).
    public var tokenLifetime = 3600
    /// NetSuite's account concurrency limit: a record request beyond this many in flight is
    /// answered 429 `CONCURRENCY_LIMIT_EXCEEDED` (nil: no limit).
    public var netsuiteConcurrencyLimit: Int?
    /// The faults.
    public var faults = Faults()

    /// Nothing simulated yet: set the systems wanted.
    public init() {}
}
