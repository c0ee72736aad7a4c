import ClearwayDomain
import Foundation
import Testing

struct ScreeningTests {
    let screener = try! Screener.shipped()
    let timeline = try! PolicyTimeline.shipped()

    private func line(
        _ hts: String, _ origin: String, flags: [String]? = nil, disclaim: [String: DisclaimCode] = [:],
        adcvd: String? = nil
    ) throws
        -> ScreeningLine
    {
        ScreeningLine(
            sku: "SKU-\(hts)", hts: try HTSCode(hts), origin: try CountryCode(origin),
            skuFlags: try flags.map { Set(try $0.map(PGAFlag.init)) },
            disclaimers: Dictionary(uniqueKeysWithValues: try disclaim.map { (try PGAFlag($0.key), $0.value) }),
            adcvdCase: adcvd)
    }

    /// Before the Type 86 test (2019-09-28) a manifest release carried no PGA data.
    @Test func foodWithRequiredFDADataLeftTheManifestReleaseLane() throws {
        let day = try Day("2018-06-01")
        let screening = screener.screen([try line("0901.21.0020", "MX")], on: day, policy: try timeline.policy(on: day))
        #expect(!screening.isDeMinimisEligible)
        #expect(screening.allowedLanes == [.t11, .t01])
        #expect(screening.reasons.contains { $0.rule == "s321.pga-excluded" && $0.text.contains("FD4") })
    }

    /// Review A4: from the Type 86 test (84 FR 40079, from 2019-09-28) PGA goods may take Type 86
    /// with the agencies' data, unless fees are collected (APHIS, Fish and Wildlife here).
    @Test func pgaGoodsMayTakeType86UnlessFeesAreCollected() throws {
        let day = try Day("2024-06-01")
        let policy = try timeline.policy(on: day)
        let coffee = screener.screen([try line("0901.21.0020", "MX")], on: day, policy: policy)
        #expect(coffee.isDeMinimisEligible)
        let request = AggregationRequest(orderId: "o1", valueUSD: 30, deMinimisEligible: coffee.isDeMinimisEligible)
        #expect(aggregate(request, into: DayWindow(consigneeKey: "c", day: day), policy: policy).entryType == .t86)
        let plants = screener.screen([try line("0602.90.6000", "MX", flags: ["AQ1"])], on: day, policy: policy)
        #expect(!plants.isDeMinimisEligible)
        #expect(plants.reasons.contains { $0.rule == "s321.pga-excluded" && $0.text.contains("AQ1") })
    }

    @Test func aMayBeRequiredFlagWithADisclaimerStays() throws {
        let day = try Day("2018-06-01")
        let policy = try timeline.policy(on: day)
        let undisclaimed = screener.screen([try line("3304.99.5000", "MX")], on: day, policy: policy)
        #expect(!undisclaimed.isDeMinimisEligible)
        let disclaimed = screener.screen(
            [try line("3304.99.5000", "MX", disclaim: ["FD1": .a])], on: day, policy: policy)
        #expect(disclaimed.isDeMinimisEligible)
        #expect(disclaimed.lines[0].flags[0].disclaimer == .a)
    }

    @Test func chinaOriginIsExcludedFromMay2025() throws {
        let before = try Day("2025-05-01")
        let after = try Day("2025-05-02")
        let phone = try line("8517.13.0000", "CN")
        #expect(screener.screen([phone], on: before, policy: try timeline.policy(on: before)).isDeMinimisEligible)
        let screening = screener.screen([phone], on: after, policy: try timeline.policy(on: after))
        #expect(!screening.isDeMinimisEligible)
        #expect(screening.reasons.contains { $0.rule == "s321.origin-excluded" && $0.citation.contains("14256") })
    }

    @Test func adcvdGoodsAreExcludedAndTakeType03() throws {
        let day = try Day("2025-03-01")
        let screening = screener.screen(
            [try line("7208.10.1500", "CN", adcvd: "A-570-000")], on: day, policy: try timeline.policy(on: day))
        #expect(screening.requiredLane == .t03)
        #expect(screening.allowedLanes == [.t03])
        #expect(screening.lines[0].section232.map(\.rate) == ["25%"])
    }

    /// Review B5: Section 232 has a country dimension: Mexico and Canada were exempt from
    /// 2019-05-20 to 2025-03-11; the United Kingdom stayed at 25% from 2025-06-04.
    @Test func section232FollowsTheCountryExemptions() throws {
        func rates(_ origin: String, _ day: String) throws -> [String?] {
            let day = try Day(day)
            return screener.screen([try line("7208.10.1500", origin)], on: day, policy: try timeline.policy(on: day))
                .lines[0].section232.map(\.rate)
        }
        #expect(try rates("MX", "2019-06-01").isEmpty)
        #expect(try rates("CA", "2024-06-01").isEmpty)
        #expect(try rates("CN", "2019-06-01") == ["25%"])
        #expect(try rates("MX", "2025-03-12") == ["25%"])
        #expect(try rates("MX", "2026-11-25") == ["50%"])
        #expect(try rates("GB", "2026-11-25") == ["25%"])
    }

    @Test func alcoholIsTaxedUnderTheIRCAndNeverDeMinimis() throws {
        let day = try Day("2025-03-01")
        let screening = screener.screen(
            [try line("2208.30.3030", "GB", flags: [])], on: day, policy: try timeline.policy(on: day))
        #expect(screening.reasons.contains { $0.rule == "s321.irc-taxed-excluded" })
    }

    @Test func skuFlagsOverrideTheTableAndUnknownNumbersAreReported() throws {
        let day = try Day("2018-06-01")
        let policy = try timeline.policy(on: day)
        let flaggedBySKU = screener.screen([try line("6109.10.0012", "MX", flags: ["FD2"])], on: day, policy: policy)
        #expect(!flaggedBySKU.isDeMinimisEligible)
        let unknown = screener.screen([try line("6109.10.0099", "MX")], on: day, policy: policy)
        #expect(unknown.unknownHTSLines.count == 1)
    }

    @Test func section301ExposureIsReportedForChinaOrigin() throws {
        let day = try Day("2026-11-25")
        let screening = screener.screen(
            [try line("6109.10.0012", "CN"), try line("6109.10.0012", "MX")], on: day,
            policy: try timeline.policy(on: day))
        #expect(screening.lines[0].section301.map(\.list) == ["4A"])
        #expect(screening.lines[1].section301.isEmpty)
        #expect(!screening.isDeMinimisEligible)  // suspended for all countries
        #expect(screening.reasons.contains { $0.rule == "no-de-minimis" })
    }
}

struct AggregationTests {
    let timeline = try! PolicyTimeline.shipped()
    let today = try! Day("2025-03-10")

    private func request(_ id: String, _ value: Decimal, eligible: Bool = true) -> AggregationRequest {
        AggregationRequest(orderId: id, valueUSD: value, deMinimisEligible: eligible)
    }

    @Test func underSection321TheSecondOrderThatPassesEightHundredIsHeld() throws {
        let policy = try timeline.policy(on: today)
        let window = DayWindow(consigneeKey: "c1", day: today)
        let first = aggregate(request("o1", 500), into: window, policy: policy)
        #expect(first.entryType == .t86)
        let second = aggregate(request("o2", 400), into: first.window, policy: policy)
        #expect(second.outcome == .hold(until: try Day("2025-03-11")))
        #expect(second.window.deMinimisTotalUSD == 500)
        #expect(second.reasons.contains { $0.rule == "s321.overflow.hold" && $0.policyVersion == policy.version })

        // Released when its day comes: the next day's window is empty.
        let nextDay = DayWindow(consigneeKey: "c1", day: try Day("2025-03-11"))
        #expect(aggregate(request("o2", 400), into: nextDay, policy: policy).entryType == .t86)
    }

    @Test func sevenHundredTodayAndSevenHundredTomorrowAreBothT86() throws {
        let policy = try timeline.policy(on: today)
        let monday = aggregate(request("o1", 700), into: DayWindow(consigneeKey: "c1", day: today), policy: policy)
        let tuesday = aggregate(
            request("o2", 700), into: DayWindow(consigneeKey: "c1", day: today.next), policy: policy)
        #expect(monday.entryType == .t86 && tuesday.entryType == .t86)
    }

    @Test func oneOrderOverTheThresholdTakesTheFormalPath() throws {
        let policy = try timeline.policy(on: today)
        let decision = aggregate(request("o1", 900), into: DayWindow(consigneeKey: "c1", day: today), policy: policy)
        #expect(decision.entryType == .t11)
        #expect(decision.window.deMinimisTotalUSD == 0)
        #expect(aggregate(request("o2", 3000), into: decision.window, policy: policy).entryType == .t01)
    }

    @Test func overflowCanGoFormalOrReroute() throws {
        let policy = try timeline.policy(on: today)
        let first = aggregate(request("o1", 500), into: DayWindow(consigneeKey: "c1", day: today), policy: policy)
        #expect(aggregate(request("o2", 400), into: first.window, policy: policy, overflow: .formal).entryType == .t11)
        #expect(
            aggregate(request("o2", 400), into: first.window, policy: policy, overflow: .reroute).outcome == .reroute)
    }

    @Test func ordersScreenedOffDeMinimisNeverUseTheAllowance() throws {
        let policy = try timeline.policy(on: today)
        let regulated = aggregate(
            request("o1", 600, eligible: false), into: DayWindow(consigneeKey: "c1", day: today), policy: policy)
        #expect(regulated.entryType == .t11)
        let then = aggregate(request("o2", 800), into: regulated.window, policy: policy)
        #expect(then.entryType == .t86)
    }

    @Test func aCancellationFreesCapacityAndAnUpdateReplaces() throws {
        let policy = try timeline.policy(on: today)
        let first = aggregate(request("o1", 500), into: DayWindow(consigneeKey: "c1", day: today), policy: policy)
        let (freed, removed) = first.window.removing("o1")
        #expect(removed?.valueUSD == 500)
        #expect(aggregate(request("o2", 400), into: freed, policy: policy).entryType == .t86)
        // An update of o1 to $300 replaces the $500 version, leaving room for $400 more.
        let updated = aggregate(request("o1", 300), into: first.window, policy: policy)
        #expect(updated.window.deMinimisTotalUSD == 300)
        #expect(aggregate(request("o2", 400), into: updated.window, policy: policy).entryType == .t86)
    }

    /// Review A1 (b), B1: under the suspension a consignee's orders of one day are not grouped
    /// into informal entries by the aggregator (nor split to stay under $2,500): each takes its
    /// own type, and the entry (one per consignee per conveyance, 19 CFR 141.51) is typed by its
    /// total when the manifest closes (`FilingRulesTests`).
    @Test func underTheSuspensionEachShipmentTakesItsOwnTypeAndTheEntryIsTypedAtClose() throws {
        let day = try Day("2026-11-25")
        let policy = try timeline.policy(on: day)
        let window = DayWindow(consigneeKey: "c1", day: day)
        let first = aggregate(request("o1", 2000), into: window, policy: policy)
        let second = aggregate(request("o2", 1000), into: first.window, policy: policy)
        #expect(first.entryType == .t11 && second.entryType == .t11)
        #expect(second.reasons.contains { $0.rule == "entry.per-conveyance" && $0.citation.contains("141.51") })
        #expect(!second.reasons.contains { $0.citation.contains("143.22") })
        #expect(aggregate(request("o4", 2600), into: second.window, policy: policy).entryType == .t01)
    }

    /// Review A2: AD/CVD goods are Type 03 whatever their value; quota goods Type 12, or 02 when
    /// formal (CBP Form 7501 instructions, block 2).
    @Test func adcvdGoodsAreType03AndQuotaGoodsType12Or02() throws {
        let day = try Day("2026-11-25")
        let policy = try timeline.policy(on: day)
        let screener = try Screener.shipped()
        let adcvd = screener.screen(
            [
                ScreeningLine(
                    sku: "NAILS", hts: try HTSCode("7317.00.5502"), origin: try CountryCode("CN"),
                    adcvdCase: "A-570-909")
            ], on: day, policy: policy)
        #expect(adcvd.requiredLane == .t03 && adcvd.allowedLanes == [.t03])
        #expect(adcvd.reasons.contains { $0.rule == "formal.adcvd" && $0.citation.contains("7501") })
        let window = DayWindow(consigneeKey: "c1", day: day)
        let fifty = AggregationRequest(
            orderId: "o1", valueUSD: 50, deMinimisEligible: false, requiredType: adcvd.requiredLane)
        #expect(aggregate(fifty, into: window, policy: policy).entryType == .t03)

        let sugar = screener.screen(
            [ScreeningLine(sku: "SUGAR", hts: try HTSCode("1701.14.1000"), origin: try CountryCode("MX"))], on: day,
            policy: policy)
        #expect(sugar.allowedLanes == [.t12, .t02])
        let forty = AggregationRequest(orderId: "o2", valueUSD: 40, deMinimisEligible: false, quota: true)
        #expect(aggregate(forty, into: window, policy: policy).entryType == .t12)
        let large = AggregationRequest(orderId: "o3", valueUSD: 3000, deMinimisEligible: false, quota: true)
        #expect(aggregate(large, into: window, policy: policy).entryType == .t02)
        #expect(EntryType.nonDeMinimis(adcvd: true, quota: true, formal: true) == .t07)
    }

    /// Review A13: under the EO-based suspension informational materials (50 U.S.C. 1702(b)) kept
    /// de minimis (CSMS 66065494); the codified policy, whose carve-out is unconfirmed, has none.
    @Test func informationalMaterialsKeptDeMinimisUnderTheExecutiveOrders() throws {
        let screener = try Screener.shipped()
        func decide(_ day: String) throws -> AggregationDecision {
            let day = try Day(day)
            let policy = try timeline.policy(on: day)
            let screening = screener.screen(
                [ScreeningLine(sku: "BOOK", hts: try HTSCode("4901.99.0070"), origin: try CountryCode("GB"))], on: day,
                policy: policy)
            let request = AggregationRequest(
                orderId: "o1", valueUSD: 30, deMinimisEligible: screening.isDeMinimisEligible)
            return aggregate(request, into: DayWindow(consigneeKey: "c1", day: day), policy: policy)
        }
        #expect(try decide("2025-10-01").entryType == .t86)
        #expect(try decide("2026-07-01").entryType == .t11)
        let tee = try Screener.shipped().screen(
            [ScreeningLine(sku: "TEE", hts: try HTSCode("6109.10.0012"), origin: try CountryCode("MX"))],
            on: try Day("2025-10-01"), policy: try timeline.policy(on: Day("2025-10-01")))
        #expect(!tee.isDeMinimisEligible)
    }

    /// Review A3: before CBP suspended 19 CFR 143.21(a)'s Chapter 99 clause (2025-04-30),
    /// articles classified in Chapter 99 subchapters III/IV over $250 took formal entry.
    @Test func chapter99ArticlesOver250TookFormalEntryUntilTheClauseWasSuspended() throws {
        let before = try Day("2024-06-01")
        let policy = try timeline.policy(on: before)
        #expect(policy.chapter99FormalAboveUSD == 250)
        let tee = AggregationRequest(orderId: "o1", valueUSD: 900, deMinimisEligible: true, chapter99ValueUSD: 900)
        let decided = aggregate(tee, into: DayWindow(consigneeKey: "c1", day: before), policy: policy)
        #expect(decided.entryType == .t01)
        #expect(decided.reasons.contains { $0.rule == "formal.chapter99" && $0.citation == "19 CFR 143.21(a)" })
        let after = try Day("2025-05-01")
        #expect(try timeline.policy(on: after).chapter99FormalAboveUSD == nil)
        let later = aggregate(
            tee, into: DayWindow(consigneeKey: "c1", day: after), policy: try timeline.policy(on: after))
        #expect(later.entryType == .t11)
    }

    /// No sequence of orders ever takes a consignee's T86 day past $800.
    @Test func theDeMinimisTotalNeverPassesTheThreshold() throws {
        let policy = try timeline.policy(on: today)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var window = DayWindow(consigneeKey: "c", day: today)
            for index in 0..<12 {
                let cents = Int.random(in: 1...90_000, using: &generator)
                let value = Decimal(cents) / 100
                window = aggregate(request("o\(index)", value), into: window, policy: policy).window
                #expect(window.deMinimisTotalUSD <= 800)
            }
        }
    }
}
