import ClearwayContract
import ClearwayERP
import ClearwayERPSim
import Crypto
import Foundation
import Testing

/// Credentials, signatures and faults: what the adapters make of them.
@Suite struct FailureTests {
    @Test func aWebhookSignedWithTheOldAndTheNewSecretVerifies() async throws {
        try await withHarness { harness in
            // The adapter signs with both secrets; the receiver knows only the new one.
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: "partner-hook"))
                let outcome = await adapter.write(
                    customs(orderId: "SO-10", system: "partner-hook", recordId: "1", revision: 1))
                #expect(outcome == .applied(detail: StandardWebhooks.messageId(orderId: "SO-10", revision: 1)))
                #expect(harness.ledger("webhook").count == 1)
            }
        }
    }

    @Test func aWebhookWithABadSignatureIsRefused() async throws {
        try await withHarness { harness in
            var environment = harness.environment
            environment["CLEARWAY_ERP_PARTNER_HOOK_SECRET_FILE"] = try harness.file(
                "old.secrets", harness.webhookSecrets[0])
            try await harness.withDirectory(environment) { directory in
                let adapter = try #require(directory.adapter(for: "partner-hook"))
                let outcome = await adapter.write(
                    customs(orderId: "SO-11", system: "partner-hook", recordId: "1", revision: 1))
                guard case .retry(let reason, _) = outcome else {
                    Issue.record("a bad signature gave \(outcome)")
                    return
                }
                #expect(reason.contains("HTTP 401"))
                #expect(harness.simulator.stats().refusals["webhook 401"] == 1)
                #expect(harness.ledger("webhook").isEmpty)
            }
        }
    }

    @Test func aRejectedBusinessCentralSecretNamesItsVariable() async throws {
        try await withHarness { harness in
            var environment = harness.environment
            environment["CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE"] = try harness.file("wrong.secret", "nope")
            try await harness.withDirectory(environment) { directory in
                let adapter = try #require(directory.adapter(for: "business-central"))
                do {
                    try await adapter.checkCredentials()
                    Issue.record("a wrong secret was accepted")
                } catch let ERPError.credentialsRejected(system, message) {
                    #expect(system == "business-central")
                    #expect(message.contains("CLEARWAY_ERP_BUSINESS_CENTRAL_CLIENT_SECRET_FILE"))
                    #expect(message.contains("AADSTS7000215"))
                    #expect(!message.contains("nope"))
                }
            }
        }
    }

    @Test func aRejectedNetSuiteKeyNamesItsVariables() async throws {
        try await withHarness { harness in
            var environment = harness.environment
            environment["CLEARWAY_ERP_NETSUITE_PRIVATE_KEY_FILE"] = try harness.file(
                "other.pem", P256.Signing.PrivateKey().pemRepresentation)
            try await harness.withDirectory(environment) { directory in
                let adapter = try #require(directory.adapter(for: "netsuite"))
                do {
                    try await adapter.checkCredentials()
                    Issue.record("a foreign key was accepted")
                } catch let ERPError.credentialsRejected(system, message) {
                    #expect(system == "netsuite")
                    #expect(message.contains("CLEARWAY_ERP_NETSUITE_PRIVATE_KEY_FILE"))
                    #expect(message.contains("CLEARWAY_ERP_NETSUITE_CERTIFICATE_ID"))
                }
                // A write with rejected credentials waits for the fix: a retry, nothing refused.
                let outcome = await adapter.write(
                    customs(orderId: "SO-12", system: "netsuite", recordId: "1", revision: 1))
                guard case .retry = outcome else {
                    Issue.record("a write with rejected credentials gave \(outcome)")
                    return
                }
            }
        }
    }

    @Test func goodCredentialsPassTheCheck() async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                for system in directory.systems {
                    try await #require(directory.adapter(for: system)).checkCredentials()
                }
            }
        }
    }

    @Test(arguments: ["netsuite", "business-central", "partner-hook"])
    func aTooManyRequestsAnswerIsARetryAfterItsRetryAfter(system: String) async throws {
        var faults = ERPSimulatorConfiguration.Faults()
        faults.tooManyRequests = 1
        faults.retryAfterSeconds = 7
        try await withHarness(faults: faults) { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: system))
                let outcome = await adapter.write(customs(orderId: "SO-13", system: system, recordId: "1", revision: 1))
                guard case .retry(_, let after) = outcome else {
                    Issue.record("a 429 gave \(outcome)")
                    return
                }
                #expect(after == .seconds(7))
            }
        }
    }

    enum Fault: String, CaseIterable {
        case serverError, timeout, drop
    }

    @Test(arguments: Fault.allCases)
    func aFaultBeforeAnAnswerIsARetryAndAppliesNothing(fault: Fault) async throws {
        var faults = ERPSimulatorConfiguration.Faults()
        switch fault {
        case .serverError: faults.serverErrors = 1
        case .timeout:
            faults.timeouts = 1
            faults.timeoutHold = .seconds(2)
        case .drop: faults.drops = 1
        }
        try await withHarness(faults: faults, timeoutMilliseconds: 300) { harness in
            try await harness.withDirectory { directory in
                for system in ["netsuite", "business-central", "partner-hook"] {
                    let adapter = try #require(directory.adapter(for: system))
                    let outcome = await adapter.write(
                        customs(orderId: "SO-14", system: system, recordId: "1", revision: 1))
                    guard case .retry(let reason, _) = outcome else {
                        Issue.record("\(fault) on \(system) gave \(outcome)")
                        continue
                    }
                    switch fault {
                    case .serverError: #expect(reason.contains("HTTP 503"), "\(reason)")
                    case .timeout: #expect(reason.contains("timed out"), "\(reason)")
                    case .drop: #expect(reason.contains("closed"), "\(reason)")
                    }
                }
                #expect(harness.simulator.ledger().isEmpty)
            }
        }
    }

    @Test func aWriteAnsweredWithAnErrorAfterItWasAppliedIsAppliedOnceWhenRepeated() async throws {
        var faults = ERPSimulatorConfiguration.Faults()
        faults.serverErrorsAfterApply = 1
        try await withHarness(faults: faults) { harness in
            try await harness.withDirectory { directory in
                for system in ["netsuite", "business-central", "partner-hook"] {
                    let adapter = try #require(directory.adapter(for: system))
                    let values = customs(orderId: "SO-15", system: system, recordId: "1", revision: 1)
                    guard case .retry = await adapter.write(values) else {
                        Issue.record("\(system): a 500 after applying was not a retry")
                        continue
                    }
                    _ = await adapter.write(values)
                    #expect(harness.ledger(AdapterTests.ledgerSystem(system)).count == 1)
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aRefusedConnectionIsARetryAtOnceAndAFailedCheckIsUnavailable() async throws {
        let harness = try await Harness.start()
        let directory = try ERPDirectory(environment: harness.environment, logger: quiet("erp"))
        await harness.stop()
        for system in ["netsuite", "business-central", "partner-hook"] {
            let adapter = try #require(directory.adapter(for: system))
            let outcome = await adapter.write(customs(orderId: "SO-16", system: system, recordId: "1", revision: 1))
            guard case .retry(let reason, _) = outcome else {
                Issue.record("\(system): a refused connection gave \(outcome)")
                continue
            }
            #expect(reason.lowercased().contains("refused"), "\(reason)")
        }
        await #expect(throws: ERPError.self) { try await directory.adapter(for: "netsuite")?.checkCredentials() }
        try await directory.shutdown()
    }

    @Test func netSuitesConcurrencyLimitIsARetryUntilTheWriteGetsThrough() async throws {
        var faults = ERPSimulatorConfiguration.Faults()
        faults.latencyBySystem["netsuite"] = .milliseconds(200)
        try await withHarness(faults: faults, netsuiteConcurrencyLimit: 1) { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: "netsuite"))
                try await adapter.checkCredentials()
                let outcomes = await withTaskGroup(of: ERPWriteOutcome.self) { group in
                    for order in 1...4 {
                        group.addTask {
                            await adapter.write(
                                customs(orderId: "SO-3\(order)", system: "netsuite", recordId: "\(order)", revision: 1))
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let limited = outcomes.filter {
                    if case .retry(let reason, _) = $0 { reason.contains("CONCURRENCY_LIMIT_EXCEEDED") } else { false }
                }
                #expect(!limited.isEmpty)
                #expect(harness.simulator.stats().faults["concurrency-limit"] == limited.count)
                for order in 1...4 {
                    _ = await adapter.write(
                        customs(orderId: "SO-3\(order)", system: "netsuite", recordId: "\(order)", revision: 1))
                }
                #expect(harness.ledger("netsuite").count == 4)
            }
        }
    }
}
