import Foundation

/// Where a worker keeps its SQLite files (partition state, reference tables, the outbox). They
/// hold what the worker's inputs hold, consignee names and addresses among them, so only the
/// worker's own user may open the directory: it is made 0700, also when it was already there
/// with wider permissions.
enum StateDirectory {
    /// Creates `path` and its missing parents, then makes `path` 0700.
    static func create(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
    }
}
