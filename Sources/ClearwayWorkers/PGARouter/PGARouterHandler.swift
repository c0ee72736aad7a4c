import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Dispatch
import Foundation
import Logging
import Synchronization

/// Where the pga-router's reference data comes from: files (reloaded when they change or on
/// SIGHUP) or the shipped excerpts.
public struct ScreeningSources: Sendable {
    public var htsReference: String?
    public var pgaFlags: String?
    public var section301: String?
    public var section232: String?
    /// A shipped timeline name or a file.
    public var policy: String
    public var mixedOrders: MixedOrderPolicy

    public init(
        htsReference: String? = nil, pgaFlags: String? = nil, section301: String? = nil, section232: String? = nil,
        policy: String = "us", mixedOrders: MixedOrderPolicy = .routeWhole
    ) {
        self.htsReference = htsReference
        self.pgaFlags = pgaFlags
        self.section301 = section301
        self.section232 = section232
        self.policy = policy
        self.mixedOrders = mixedOrders
    }

    /// From `CLEARWAY_HTS_REFERENCE`, `CLEARWAY_PGA_FLAGS`, `CLEARWAY_SECTION301`,
    /// `CLEARWAY_SECTION232`, `CLEARWAY_POLICY` and `CLEARWAY_MIXED_ORDERS`.
    public static func fromEnvironment(_ environment: [String: String]) throws -> ScreeningSources {
        func path(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var mixed = MixedOrderPolicy.routeWhole
        if let text = environment["CLEARWAY_MIXED_ORDERS"] {
            guard let policy = MixedOrderPolicy(rawValue: text) else {
                throw ConfigurationError(
                    "CLEARWAY_MIXED_ORDERS must be \(MixedOrderPolicy.allCases.map(\.rawValue).joined(separator: " or ")), not \"\(text)\""
                )
            }
            mixed = policy
        }
        return ScreeningSources(
            htsReference: path("CLEARWAY_HTS_REFERENCE"), pgaFlags: path("CLEARWAY_PGA_FLAGS"),
            section301: path("CLEARWAY_SECTION301"), section232: path("CLEARWAY_SECTION232"),
            policy: path("CLEARWAY_POLICY") ?? "us", mixedOrders: mixed)
    }

    var files: [String] { [htsReference, pgaFlags, section301, section232, policy].compactMap { $0 } }

    /// Reads every source; throws `ConfigurationError` naming the file at fault.
    public func load() throws -> OrderScreening {
        func read(_ path: String, _ what: String) throws -> Data {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("cannot read the \(what) file \(path)")
            }
            return data
        }
        func named<T>(_ what: String, _ body: () throws -> T) throws -> T {
            do { return try body() } catch let error as DomainError {
                throw ConfigurationError("\(what): \(error.message)")
            }
        }
        let hts = try named("HTS reference") {
            try htsReference.map {
                try HTSReference(
                    json: read($0, "HTS reference"), revision: ($0 as NSString).lastPathComponent,
                    effectiveFrom: Day(year: 2025, month: 1, day: 1))
            } ?? .shippedExcerpt()
        }
        let flags = try named("PGA flags") {
            try pgaFlags.map { try PGAFlagTable.load(read($0, "PGA flags")) } ?? .shipped()
        }
        let s301 = try named("Section 301") {
            try section301.map { try TariffActionList.load(read($0, "Section 301")) } ?? .shippedSection301()
        }
        let s232 = try named("Section 232") {
            try section232.map { try TariffActionList.load(read($0, "Section 232")) } ?? .shippedSection232()
        }
        let timeline = try named("policy (CLEARWAY_POLICY)") { try PolicyTimeline.named(policy) }
        // FNV-1a over the files' bytes: the same files give the same name on every instance.
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325
        for data in files.compactMap({ FileManager.default.contents(atPath: $0) }) {
            for byte in data {
                digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        return OrderScreening(
            screener: Screener(pgaFlags: flags, section301: s301, section232: s232, htsReference: hts),
            timeline: timeline, mixedOrders: mixedOrders,
            references:
                "hts \(hts.revision); pga \(pgaFlags.map { ($0 as NSString).lastPathComponent } ?? "shipped"); policy \(timeline.name); digest \(String(digest, radix: 16))"
        )
    }
}

/// The reference data in use, swapped whole by a reload: a record is screened with the old set
/// or the new one, never a mix, and the poll loop never stops for it.
public final class ScreeningReferences: Sendable {
    private let current: Mutex<OrderScreening>
    private let sources: ScreeningSources
    private let logger: Logger
    private let stamps: Mutex<[String: Date]>
    private let reloads = Atomic<Int>(0)

    public init(sources: ScreeningSources, logger: Logger) throws {
        self.sources = sources
        self.logger = logger
        current = Mutex(try sources.load())
        stamps = Mutex(Self.modificationDates(sources.files))
    }

    public var screening: OrderScreening { current.withLock { $0 } }

    /// How many reloads succeeded.
    public var reloadCount: Int { reloads.load(ordering: .relaxed) }

    /// Reloads every source; on an error keeps the data in use and logs what to fix.
    public func reload(reason: String) {
        do {
            let fresh = try sources.load()
            current.withLock { $0 = fresh }
            reloads.add(1, ordering: .relaxed)
            logger.info(
                "reference data reloaded", metadata: ["reason": "\(reason)", "references": "\(fresh.references)"])
        } catch {
            logger.error(
                "reference data reload failed; the previous data stays in use",
                metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }

    /// Reloads when a source file's modification time changes (checked every `interval`) or on
    /// SIGHUP, until the task is cancelled.
    public func watch(interval: Duration) async {
        signal(SIGHUP, SIG_IGN)
        let hangups = DispatchSource.makeSignalSource(signal: SIGHUP)
        hangups.setEventHandler { [self] in reload(reason: "SIGHUP") }
        hangups.resume()
        defer { hangups.cancel() }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = Self.modificationDates(sources.files)
            let changed = stamps.withLock { stamps in
                defer { stamps = now }
                return stamps != now
            }
            if changed { reload(reason: "a source file changed") }
        }
    }

    static func modificationDates(_ files: [String]) -> [String: Date] {
        var dates: [String: Date] = [:]
        for file in files {
            dates[file] = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date
        }
        return dates
    }
}

/// The pga-router: stateless. Each enriched order becomes a screened shipment (or two, for a
/// split mixed order) with the lanes it may or must take and why; a line whose HTS number the
/// reference lacks is an exception, never "unflagged".
public struct PGARouterHandler: RecordHandler {
    public static let name = WorkerName.pgaRouter.rawValue
    static let screenedType = "clearway.order.screened.v1"
    static let exceptionType = "clearway.order.exception.v1"

    public let references: ScreeningReferences

    public init(references: ScreeningReferences) { self.references = references }

    public static func definition(references: ScreeningReferences) -> WorkerDefinition {
        WorkerDefinition(
            name: name, inputs: [Topics.ordersEnriched],
            outputs: [Topics.ordersScreened, Topics.exceptions],
            handler: PGARouterHandler(references: references))
    }

    public func handle(_ record: InputRecord, context: HandlerContext) async throws -> [OutputRecord] {
        let order: EnrichedOrder
        do {
            order = try JSONDecoder().decode(EnrichedOrder.self, from: record.value)
        } catch {
            throw RecordRejected("schema-invalid", "not an orders.enriched.v1 record: \(error)")
        }
        try KeyCheck.require(record, isKeyedBy: order.consigneeKey, field: "consigneeKey")
        let encoder = JSONEncoder.sortedKeys()
        // A cancellation flows on as it is: the aggregator frees every shipment of the order.
        if order.type == .cancelled {
            return [
                OutputRecord(
                    topic: Topics.ordersScreened.name, key: order.consigneeKey, value: record.value,
                    type: Self.screenedType,
                    idSeed: "\(order.orderId)/v\(order.version)/cancelled/\(order.consigneeKey)")
            ]
        }
        let screening = references.screening
        let outcome: OrderScreening.Outcome
        do {
            outcome = try screening.screen(order)
        } catch let error as DomainError {
            throw RecordRejected("schema-invalid", error.message)
        }
        switch outcome {
        case .shipments(let shipments):
            return try shipments.map { shipment in
                OutputRecord(
                    topic: Topics.ordersScreened.name, key: order.consigneeKey,
                    value: try encoder.encode(shipment), type: Self.screenedType,
                    idSeed: "\(shipment.shipmentId)/v\(order.version)/screened")
            }
        case .unknownHTS(let gaps):
            let first = gaps[0]
            let exception = ExceptionRecord(
                orderId: order.orderId, version: order.version, stage: Self.name, status: "rejected", code: first.code,
                detail: gaps.count == 1 ? first.detail : "\(first.detail) (and \(gaps.count - 1) more)", fix: first.fix,
                problems: gaps)
            return [
                OutputRecord(
                    topic: Topics.exceptions.name, key: order.orderId, value: try encoder.encode(exception),
                    type: Self.exceptionType, idSeed: "\(order.orderId)/v\(order.version)/pga-router/exception")
            ]
        }
    }
}
