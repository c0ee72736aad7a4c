import ClearwayDomain
import Foundation
import Testing

struct PolicyTimelineTests {
    let timeline = try! PolicyTimeline.shipped()
    let ports = try! PortDirectory.shipped()

    @Test func eachEraHasItsRules() throws {
        let early = try timeline.policy(on: Day("2024-06-01"))
        #expect(early.regime == .section321 && early.deMinimisThresholdUSD == 800 && early.excludedOrigins.isEmpty)
        let china = try timeline.policy(on: Day("2025-05-02"))
        #expect(china.excludedOrigins.map(\.rawValue) == ["CN", "HK"])
        #expect(try timeline.policy(on: Day("2025-05-01")).excludedOrigins.isEmpty)
        let suspended = try timeline.policy(on: Day("2025-08-29"))
        #expect(suspended.regime == .noDeMinimis)
        #expect(suspended.informalEntryCeilingUSD == 2500)
        #expect(try timeline.policy(on: Day("2025-08-28")).regime == .section321)
        #expect(try timeline.policy(on: Day("2027-07-01")).id == "us-2027-07-01-statutory-repeal")
        #expect(throws: DomainError.self) { try timeline.policy(on: Day("2015-01-01")) }
    }

    /// Review A10: EO 14195 took de minimis away from goods of China and Hong Kong from
    /// 2025-02-04; it resumed on 2025-02-07, not retroactively (CSMS 64082249).
    @Test func theFebruary2025ChinaWindowIsInTheTimeline() throws {
        #expect(try timeline.policy(on: Day("2025-02-03")).excludedOrigins.isEmpty)
        for day in ["2025-02-04", "2025-02-05", "2025-02-06"] {
            #expect(try timeline.policy(on: Day(day)).excludedOrigins.map(\.rawValue) == ["CN", "HK"], "\(day)")
        }
        #expect(try timeline.policy(on: Day("2025-02-07")).excludedOrigins.isEmpty)
        let day = try Day("2025-02-05")
        let screening = try Screener.shipped().screen(
            [ScreeningLine(sku: "TOY", hts: try HTSCode("9503.00.0090"), origin: try CountryCode("CN"))], on: day,
            policy: try timeline.policy(on: day))
        #expect(!screening.isDeMinimisEligible)
        #expect(screening.reasons.contains { $0.rule == "s321.origin-excluded" && $0.citation.contains("14195") })
    }

    /// Review B1, B2: no policy cites 19 CFR 143.22 for consolidation, nor the e-commerce FAQ for
    /// excluding PGA goods; each cites 141.51 for one entry per consignee per conveyance.
    @Test func thePoliciesCiteTheRulesTheyRestOn() {
        for policy in timeline.policies {
            #expect(!policy.sources.contains { $0.contains("143.22") }, "\(policy.id)")
            #expect(!policy.sources.contains { $0.contains("PGA goods): CBP e-commerce FAQ") }, "\(policy.id)")
            #expect(policy.sources.contains { $0.contains("141.51") }, "\(policy.id)")
        }
    }

    /// Review A9: cigarette paper is IRC-taxed (never de minimis); maple syrup is not quota.
    @Test func theExclusionListsNameWhatTheFAQNames() throws {
        let day = try Day("2024-06-01")
        let policy = try timeline.policy(on: day)
        let screener = try Screener.shipped()
        let papers = screener.screen(
            [ScreeningLine(sku: "PAPER", hts: try HTSCode("4813.10.0000"), origin: try CountryCode("ES"))], on: day,
            policy: policy)
        #expect(papers.reasons.contains { $0.rule == "s321.irc-taxed-excluded" })
        let syrup = screener.screen(
            [ScreeningLine(sku: "SYRUP", hts: try HTSCode("1702.20.4000"), origin: try CountryCode("CA"))], on: day,
            policy: policy)
        #expect(!syrup.reasons.contains { $0.rule == "s321.quota-excluded" })
    }

    @Test func everyPolicyNamesItsSources() {
        for policy in timeline.policies {
            #expect(policy.sources.count >= 2, "\(policy.id)")
            #expect(policy.sources.contains { $0.contains("CFR") || $0.contains("U.S.C.") || $0.contains("Order") })
        }
    }

    /// The day boundary is midnight at the port: 23:30 in Otay Mesa on 2025-08-28 is still the
    /// Section 321 era although it is already 2025-08-29 in UTC.
    @Test func theDayIsCountedInThePortsTimeZone() throws {
        let otayMesa = try ports.port("2506")
        let lateEvening = ISO8601DateFormatter().date(from: "2025-08-29T06:30:00Z")!  // 23:30 PDT on the 28th
        #expect(try otayMesa.arrivalDay(lateEvening) == Day("2025-08-28"))
        #expect(try timeline.policy(on: otayMesa.arrivalDay(lateEvening)).regime == .section321)
        let buffalo = try ports.port("0901")
        #expect(try buffalo.arrivalDay(lateEvening) == Day("2025-08-29"))
        #expect(try timeline.policy(on: buffalo.arrivalDay(lateEvening)).regime == .noDeMinimis)
        #expect(throws: DomainError.self) { try ports.port("9999") }
    }

    @Test func aWhatIfPolicyCanBeForced() throws {
        let whatIf = try PolicyTimeline.named("section321-whatif")
        #expect(try whatIf.policy(on: Day("2026-11-25")).regime == .section321)
        let forced = try timeline.forcing("us-2016-03-10-section321-800")
        #expect(try forced.policy(on: Day("2026-11-25")).deMinimisThresholdUSD == 800)
        #expect(throws: DomainError.self) { try timeline.forcing("nope") }
        #expect(throws: DomainError.self) { try PolicyTimeline.named("/no/such/file.json") }
    }

    @Test func aBrokenTimelineSaysWhatIsWrong() {
        let json = #"{"name":"x","description":"d","policies":[{"id":"a"}]}"#
        #expect {
            try PolicyTimeline.load(Data(json.utf8))
        } throws: { error in
            (error as! DomainError).message.contains("missing")
        }
    }
}

struct ReferenceDataTests {
    @Test func theUSITCExportLoadsWithContext() throws {
        let reference = try HTSReference.shippedExcerpt()
        let tee = try #require(reference.entry(HTSCode("6109.10.0012")))
        #expect(tee.description.contains("Of cotton"))
        #expect(tee.generalRate == "16.5%")
        #expect(tee.units == ["doz.", "kg"])
        #expect(!reference.contains(try HTSCode("6109.10.0099")))
    }

    @Test func flagsAreEffectiveDatedAndClassified() throws {
        let table = try PGAFlagTable.shipped()
        let coffee = table.flags(for: try HTSCode("0901.21.0020"), on: try Day("2026-01-01"))
        #expect(coffee.map(\.code) == ["FD4"])
        #expect(coffee.first!.isRequired)
        #expect(try PGAFlag("FD1").isRequired == false)
        #expect(try PGAFlag("EP7").agency == "EPA")
        #expect(table.flags(for: try HTSCode("0901.21.0020"), on: try Day("2015-01-01")).isEmpty)
        #expect(throws: DomainError.self) { try PGAFlag("F1") }
    }

    @Test func section301MatchesEightDigitsByDate() throws {
        let list = try TariffActionList.shippedSection301()
        let tee = try HTSCode("6109.10.0012")
        #expect(list.matches(tee, on: try Day("2019-10-01")).map(\.rate) == ["15%"])
        #expect(list.matches(tee, on: try Day("2026-01-01")).map(\.rate) == ["7.5%"])
        #expect(list.matches(tee, on: try Day("2019-01-01")).isEmpty)
        #expect(list.matches(try HTSCode("8517.13.0000"), on: try Day("2026-01-01")).isEmpty)
    }

    @Test func aBadReferenceFileSaysWhere() {
        #expect {
            try PGAFlagTable.load(
                Data(
                    #"{"source":"s","entries":[{"htsPrefix":"0901","flags":["X"],"effectiveFrom":"2020-01-01"}]}"#.utf8)
            )
        } throws: { error in
            (error as! DomainError).message.contains("entries")
        }
    }
}
