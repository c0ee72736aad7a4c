import ClearwayContract
import ClearwayDomain
import ClearwayERP
import ClearwayERPSim
import Foundation
import Testing

/// The three adapters against the simulator, over real HTTP.
@Suite struct AdapterTests {
    static let systems = ["netsuite", "business-central", "partner-hook"]

    /// The ledger's name of the system an `erp.system` value is served by.
    static func ledgerSystem(_ system: String) -> String { system == "partner-hook" ? "webhook" : system }

    @Test(arguments: systems)
    func aWriteIsAppliedOnceAndItsRepeatAddsNoSideEffect(system: String) async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: system))
                let values = customs(orderId: "SO-1", system: system, recordId: "4711", revision: 1)
                guard case .applied = await adapter.write(values) else {
                    Issue.record("the first write was not applied")
                    return
                }
                let repeated = await adapter.write(values)
                if system == "partner-hook" {
                    // A receiver cannot be asked first: the repeat carries the same webhook-id and is dropped.
                    #expect(repeated == .applied(detail: StandardWebhooks.messageId(orderId: "SO-1", revision: 1)))
                } else {
                    guard case .alreadyApplied = repeated else {
                        Issue.record("the repeat was \(repeated), not already applied")
                        return
                    }
                }
                let ledger = harness.ledger(Self.ledgerSystem(system))
                #expect(ledger.count == 1)
                #expect(ledger.first?.orderId == "SO-1")
                #expect(ledger.first?.revision == 1)
                #expect(ledger.first?.entryNumbers == ["ABC-1234567-8"])
            }
        }
    }

    @Test(arguments: ["netsuite", "business-central"])
    func readGivesBackTheValuesWritten(system: String) async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: system))
                let erp = OrderEvent.ERPReference(system: system, recordId: "4712")
                #expect(try await adapter.read(erp, orderId: "SO-2") == nil)
                let values = customs(orderId: "SO-2", system: system, recordId: "4712", revision: 3, status: .released)
                _ = await adapter.write(values)
                #expect(try await adapter.read(erp, orderId: "SO-2") == values)
            }
        }
    }

    @Test func aWebhookCannotBeReadBack() async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: "partner-hook"))
                await #expect(throws: ERPError.cannotReadBack(system: "partner-hook")) {
                    _ = try await adapter.read(.init(system: "partner-hook", recordId: "1"), orderId: "SO-1")
                }
            }
        }
    }

    @Test(arguments: systems)
    func aLowerRevisionNeverOverwritesAHigherOne(system: String) async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: system))
                let later = customs(orderId: "SO-3", system: system, recordId: "4713", revision: 2, status: .released)
                let earlier = customs(orderId: "SO-3", system: system, recordId: "4713", revision: 1)
                _ = await adapter.write(later)
                let outcome = await adapter.write(earlier)
                if system != "partner-hook" {
                    guard case .alreadyApplied = outcome else {
                        Issue.record("the earlier revision was \(outcome)")
                        return
                    }
                }
                let held = harness.simulator.records().filter { $0.system == Self.ledgerSystem(system) }
                #expect(held.count == 1)
                #expect(held.first?.revision == 2)
                #expect(held.first?.customs?.status == .released)
                #expect(harness.ledger(Self.ledgerSystem(system)).map(\.revision) == [2])
            }
        }
    }

    @Test func businessCentralRereadsAfterA412AndWrites() async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: "business-central"))
                harness.simulator.interfere(recordId: "4714", times: 2)
                let values = customs(orderId: "SO-4", system: "business-central", recordId: "4714", revision: 1)
                guard case .applied = await adapter.write(values) else {
                    Issue.record("not applied after two conflicts")
                    return
                }
                #expect(harness.simulator.stats().refusals["business-central 412"] == 2)
                #expect(harness.ledger("business-central").count == 1)
            }
        }
    }

    @Test func businessCentralGivesUpTheAttemptWhenTheRecordKeepsChanging() async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: "business-central"))
                harness.simulator.interfere(recordId: "4715", times: 10)
                let values = customs(orderId: "SO-5", system: "business-central", recordId: "4715", revision: 1)
                guard case .retry(let reason, _) = await adapter.write(values) else {
                    Issue.record("not a retry")
                    return
                }
                #expect(reason.contains("412"))
                // The first read, then three re-reads: four writes, each stale.
                #expect(harness.simulator.stats().refusals["business-central 412"] == 4)
                #expect(harness.ledger("business-central").isEmpty)
            }
        }
    }

    @Test func businessCentralWritesWithTheETagNeverAStar() async throws {
        try await withHarness { harness in
            // The simulator refuses If-Match: * and a missing If-Match with 400; a write succeeds.
            try await harness.withDirectory { directory in
                let adapter = try #require(directory.adapter(for: "business-central"))
                let values = customs(orderId: "SO-6", system: "business-central", recordId: "4716", revision: 1)
                guard case .applied(let etag) = await adapter.write(values) else {
                    Issue.record("not applied")
                    return
                }
                #expect(etag.hasPrefix("W/\""))
                #expect(harness.simulator.stats().refusals.isEmpty)
            }
        }
    }

    @Test func anAccessTokenRefusedIsFetchedAgainOnce() async throws {
        try await withHarness { harness in
            try await harness.withDirectory { directory in
                for system in ["netsuite", "business-central"] {
                    let adapter = try #require(directory.adapter(for: system))
                    _ = await adapter.write(customs(orderId: "SO-7", system: system, recordId: "4717", revision: 1))
                }
                harness.simulator.revokeTokens()
                for system in ["netsuite", "business-central"] {
                    let adapter = try #require(directory.adapter(for: system))
                    let outcome = await adapter.write(
                        customs(orderId: "SO-7", system: system, recordId: "4717", revision: 2, status: .released))
                    guard case .applied = outcome else {
                        Issue.record("\(system): \(outcome) after the tokens were revoked")
                        return
                    }
                }
                #expect(harness.simulator.stats().requests["token"] == 4)
            }
        }
    }
}
