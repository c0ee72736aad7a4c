import CRdKafka
import Foundation

/// The C allocator under the Kafka clients.
public enum KafkaAllocator {
    /// Limits glibc's allocator to one arena. glibc gives threads arenas of their own as they
    /// contend, and a worker's librdkafka threads free, on their threads, the messages and
    /// headers the processing thread allocated (one allocation per header), which leaves free
    /// memory scattered over arenas that no longer allocate much. With one arena from the start a
    /// pass-through worker peaked at 49–52 MB instead of 57–63 MB over 200,000 records, at the
    /// same CPU per record within this machine's noise (three runs each).
    ///
    /// Call it first thing in `main`, before any thread starts: a thread started before keeps an
    /// arena of its own. A process whose `GLIBC_TUNABLES` sets `glibc.malloc.*` keeps its own
    /// choice. Returns whether the limit was set (never, off glibc).
    @discardableResult
    public static func useOneArena(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if environment["GLIBC_TUNABLES"]?.contains("glibc.malloc.") == true { return false }
        return clearway_limit_allocator_arenas() == 1
    }
}
