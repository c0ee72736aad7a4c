import ArgumentParser
import ClearwayContract
import ClearwayDomain
import ClearwayRuntime
import Foundation
import Logging

/// `clearway`: the customs rules from the command line.
@main
struct Clearway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clearway",
        abstract: "Clearway's customs rules from the command line.",
        discussion: "Reads CLEARWAY_POLICY (a shipped timeline name or a file) for the policy timeline.",
        subcommands: [
            MIDCommand.self, HTSCommand.self, PolicyCommand.self, AuditCommand.self, TopicsCommand.self,
            SampleCommand.self,
            ReportCommand.self,
            ReconcileCommand.self,
            ErpSimCommand.self,
        ])
}

/// Fails the command with a message and exit code 2, the way argument errors do.
struct UsageFailure: Error, CustomStringConvertible {
    let description: String
}

func timeline(_ option: String?) throws -> PolicyTimeline {
    try PolicyTimeline.named(option ?? ProcessInfo.processInfo.environment["CLEARWAY_POLICY"] ?? "us")
}

func readFile(_ path: String, what: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read the \(what) file \(path)")
    }
    return data
}

func today() -> Day { Day(Date(), in: TimeZone(identifier: "America/Los_Angeles")!) }

struct MIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mid", abstract: "Build a manufacturer identification code (19 CFR 102 Appendix).",
        discussion:
            "Example: clearway mid --name \"Amalgamated Plastics Corp.\" --street \"11455 Main Street Suite 9999\" --city \"Hong Kong\" --country HK"
    )

    @Option(help: "The manufacturer's name.") var name: String
    @Option(help: "The street-address line.") var street: String
    @Option(help: "The city.") var city: String
    @Option(help: "ISO country code of the country of origin.") var country: String
    @Option(help: "Canadian province (ON, Ontario or XO); required for Canada.") var province: String?

    func run() throws {
        do {
            print(
                try MID(
                    manufacturer: .init(name: name, street: street, city: city, country: country, province: province)))
        } catch let error as DomainError {
            throw ValidationError(error.message)
        }
    }
}

struct HTSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hts", abstract: "Check HTS numbers.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an HTS number's form and, with a reference, that the schedule has it.",
            discussion: "Example: clearway hts check 6109.10.0012 --reference hts.json (a USITC HTS JSON export)")

        @Argument(help: "The HTS number, e.g. 6109.10.0012 or 6109100012.") var code: String
        @Option(help: "A USITC HTS JSON export to look the number up in (default: the shipped excerpt).")
        var reference: String?

        func run() throws {
            let parsed: HTSCode
            do {
                parsed = try HTSCode(code)
                _ = try LineClassification(primary: parsed)
            } catch let error as DomainError {
                print("✘ \(code): \(error.message)")
                throw ExitCode(1)
            }
            let table: HTSReference
            if let reference {
                table = try HTSReference(
                    json: readFile(reference, what: "HTS reference"), revision: reference, effectiveFrom: today())
            } else {
                table = try HTSReference.shippedExcerpt()
            }
            guard let entry = table.entry(parsed) else {
                print("✘ \(parsed): well formed, but not in the HTS reference (\(table.revision))")
                throw ExitCode(1)
            }
            print("✔ \(parsed): \(entry.description)")
            if let rate = entry.generalRate { print("  general rate: \(rate)") }
            if !entry.units.isEmpty { print("  units: \(entry.units.joined(separator: ", "))") }
        }
    }
}

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Show the policy timeline.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The regime in force on a day at a port, and its rules.",
            discussion: "Example: clearway policy show --date 2025-06-01 --port 2506")

        @Option(help: "The arrival day, YYYY-MM-DD (default: today at the port).") var date: String?
        @Option(help: "The port of entry code, e.g. 2506 (Otay Mesa).") var port: String?
        @Option(help: "A shipped timeline (us, section321-whatif) or a timeline file (default: CLEARWAY_POLICY or us).")
        var policy: String?

        func run() throws {
            do {
                let timeline = try timeline(policy)
                var day = today()
                var portLine = ""
                if let port {
                    let found = try PortDirectory.shipped().port(port)
                    day = try found.arrivalDay(Date())
                    portLine = "port \(found.code) \(found.name) (\(found.timeZone))"
                }
                if let date { day = try Day(date) }
                let current = try timeline.policy(on: day)
                print("\(timeline.name): \(current.title)")
                print("  arrival day         \(day)\(portLine.isEmpty ? "" : " at " + portLine)")
                print("  policy              \(current.id) (version \(current.version)), from \(current.effectiveFrom)")
                print("  regime              \(current.regime.rawValue)")
                if let threshold = current.deMinimisThresholdUSD {
                    print("  de minimis          $\(threshold.plainText()) per consignee per day (Type 86)")
                    if !current.excludedOrigins.isEmpty {
                        print(
                            "  excluded origins    \(current.excludedOrigins.map(\.rawValue).joined(separator: ", "))")
                    }
                    print("  PGA flags excluding \(current.excludingPGAFlags.joined(separator: " "))")
                    print("  quota (never T86)   HTS \(current.quotaPrefixes.joined(separator: " "))")
                    print("  IRC-taxed (never)   HTS \(current.ircTaxedPrefixes.joined(separator: " "))")
                } else {
                    print(
                        "  de minimis          commercial de minimis (19 U.S.C. 1321(a)(2)(C)) not available; the $100 gift and $200 accompanied allowances are not modelled"
                    )
                }
                let ceiling = "$" + current.informalEntryCeilingUSD.plainText()
                print(
                    "  entries             one per consignee per conveyance (19 CFR 141.51), typed when the manifest closes"
                )
                print(
                    "  informal ceiling    \(ceiling) (Type 11; quota goods Type 12); above: Type 01 (quota Type 02) [19 CFR 143.21(a)]"
                )
                if let limit = current.chapter99FormalAboveUSD {
                    print(
                        "  Chapter 99 rule     articles in Ch. 99 subch. III/IV (Section 301/232) over $\(limit.plainText()): formal [19 CFR 143.21(a)]"
                    )
                } else {
                    print("  Chapter 99 rule     suspended (CSMS 64861116, from 2025-04-30)")
                }
                print(
                    "  AD/CVD goods        \(current.adcvdRequiresFormalEntry ? "Type 03 whatever the value (07 with quota goods)" : "by value") [CBP Form 7501 instructions, block 2]"
                )
                if !current.quotaPrefixes.isEmpty && !current.hasDeMinimis {
                    print("  quota goods         HTS \(current.quotaPrefixes.joined(separator: " ")): Type 12 / 02")
                }
                for exception in current.separateEntryExceptions ?? [] { print("  separate entries    \(exception)") }
                print("  scope               non-postal entries (postal shipments: 19 CFR 145.31, not modelled)")
                print("  sources:")
                for source in current.sources { print("    - \(source)") }
                for note in current.notes ?? [] { print("  note: \(note)") }
                if let next = timeline.policies.first(where: { $0.effectiveFrom > day }) {
                    print("  next change         \(next.effectiveFrom): \(next.title)")
                }
            } catch let error as DomainError {
                throw ValidationError(error.message)
            }
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Audit reference data.", subcommands: [Catalog.self])

    struct Catalog: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The HTS coverage audit of a SKU master (CSV or JSON).",
            discussion: """
                Reports missing or invalid HTS, origin, manufacturer or MID (blocking gaps), and PGA, \
                China-origin, Section 301 and 232 exposure. Exits 1 when any SKU has a blocking gap.
                Example: clearway audit catalog skus.csv --date 2026-12-01
                """)

        @Argument(help: "The SKU master: a JSON array of catalog.v1 records, or CSV with a header row.")
        var file: String
        @Option(help: "The arrival day the exposure is judged for (default: today).") var date: String?
        @Option(help: "A USITC HTS JSON export (default: the shipped excerpt).") var reference: String?
        @Option(help: "A shipped timeline or a timeline file (default: CLEARWAY_POLICY or us).") var policy: String?

        func run() throws {
            do {
                let items = try CatalogItem.loadCatalog(readFile(file, what: "catalog"))
                var screener = try Screener.shipped()
                if let reference {
                    screener.htsReference = try HTSReference(
                        json: readFile(reference, what: "HTS reference"), revision: reference, effectiveFrom: today())
                }
                let day = try date.map(Day.init) ?? today()
                let audit = try CatalogAudit(items: items, screener: screener, timeline: timeline(policy), day: day)
                print("SKU\tHTS\tORIGIN\tMID\tSTATUS\tFINDINGS")
                for finding in audit.findings {
                    let status = finding.blocking.isEmpty ? "ok" : "BLOCKED"
                    let notes = (finding.blocking + finding.exposure).joined(separator: "; ")
                    print(
                        [finding.sku, finding.hts ?? "-", finding.origin ?? "-", finding.mid ?? "-", status, notes]
                            .joined(separator: "\t"))
                }
                let exposed = audit.findings.filter { !$0.exposure.isEmpty }.count
                let pga = audit.findings.filter { $0.exposure.contains { $0.hasPrefix("PGA") } }.count
                let china = audit.findings.filter { ["CN", "HK"].contains($0.origin ?? "") }.count
                let s301 = audit.findings.filter { $0.exposure.contains { $0.hasPrefix("Section 301") } }.count
                print("")
                print("\(items.count) SKUs audited for \(day) under \(audit.policy.id):")
                print("  \(audit.blockingCount) with blocking gaps, \(exposed) with exposure")
                print("  PGA-flagged \(pga), China/Hong Kong origin \(china), Section 301 \(s301)")
                if audit.blockingCount > 0 {
                    print("fix the BLOCKED SKUs before they ship: each finding says what is missing")
                    throw ExitCode(1)
                }
            } catch let error as DomainError {
                throw ValidationError(error.message)
            }
        }
    }
}

struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics", abstract: "Clearway's Kafka topics.", subcommands: [Apply.self, List.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the topics Clearway declares that are missing, and check the others (idempotent).",
            discussion: """
                Uses CLEARWAY_BOOTSTRAP_SERVERS, CLEARWAY_TOPIC_PREFIX and CLEARWAY_KAFKA_* (SASL, SSL).
                Example: CLEARWAY_BOOTSTRAP_SERVERS=kafka:9092 clearway topics apply
                """)

        @Option(help: "Replication factor for topics it creates (default: the broker's).")
        var replicationFactor: Int16?

        func run() async throws {
            let configuration = try WorkerConfiguration.fromEnvironment(worker: "clearway-cli", httpPort: 0)
            let logger = quietLogger("clearway.topics")
            let topics = Topics.all.map { topic -> TopicDeclaration in
                var topic = topic
                if let replicationFactor { topic.replicationFactor = replicationFactor }
                return topic
            }
            let results = try await TopicAdministration(configuration: configuration, logger: logger).apply(topics)
            for (name, outcome) in results { print("\(name)\t\(outcome)") }
            if results.contains(where: { if case .partitionMismatch = $0.outcome { true } else { false } }) {
                print("some topics differ from their declaration; repartitioning moves keys, so it is left to you")
                throw ExitCode(1)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the topics Clearway declares.")

        func run() throws {
            let prefix = ProcessInfo.processInfo.environment["CLEARWAY_TOPIC_PREFIX"] ?? "clearway."
            for topic in Topics.all {
                let configs = topic.configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                print("\(prefix)\(topic.name)\tpartitions=\(topic.partitions)\t\(configs.joined(separator: " "))")
            }
        }
    }
}
