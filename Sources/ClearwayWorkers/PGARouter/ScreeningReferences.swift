import ClearwayContract
import ClearwayDomain
import ClearwayKafka
import ClearwayRuntime
import Dispatch
import Foundation
import Logging
import Synchronization

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
