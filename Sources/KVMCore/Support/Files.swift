import Glibc

/// A file that could not be read or written; names the path and the errno.
public struct FileError: Error, Equatable, CustomStringConvertible, Sendable {
    public let path: String
    public let operation: String
    public let errno: Errno

    public var description: String { "cannot \(operation) \(path): \(errno.message) (\(errno.name))" }
}

public enum Files {
    /// The whole file at `path`, refusing files larger than `limit` bytes before
    /// reading them (a guest image larger than guest RAM cannot run anyway).
    public static func read(_ path: String, limit: UInt64 = .max) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, operation: "open", errno: .current) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, operation: "stat", errno: .current) }
        guard info.st_mode & S_IFMT != S_IFDIR else {
            throw FileError(path: path, operation: "read", errno: Errno(rawValue: EISDIR))
        }
        let size = UInt64(max(0, info.st_size))
        guard size <= limit else { throw FileTooLarge(path: path, size: size, limit: limit) }
        // /proc and /sys files report size 0 or 4096 whatever they hold: read to EOF.
        var bytes = [UInt8](repeating: 0, count: Int(min(max(size, 4096), limit == .max ? max(size, 4096) : limit + 1)))
        var done = 0
        while true {
            if done == bytes.count {
                guard UInt64(done) <= limit else { throw FileTooLarge(path: path, size: UInt64(done), limit: limit) }
                bytes.append(contentsOf: repeatElement(0, count: bytes.count))
            }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw FileError(path: path, operation: "read", errno: .current) }
            if n == 0 { break }
            done += n
        }
        guard UInt64(done) <= limit else { throw FileTooLarge(path: path, size: UInt64(done), limit: limit) }
        return Array(bytes.prefix(done))
    }

    /// A small text file (sysfs, procfs) with trailing whitespace removed; nil when unreadable.
    public static func text(_ path: String) -> String? {
        guard let bytes = try? read(path, limit: 1 << 24) else { return nil }
        var text = String(decoding: bytes, as: UTF8.self)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }

    /// Names in a directory, sorted, without "." and ".."; empty when unreadable.
    public static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Writes `bytes` so that `path` holds either its old contents or all of the
    /// new ones, never a mix: a temporary file beside it, fsync, rename, fsync of
    /// the directory.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError(path: temporary, operation: "create", errno: .current) }
        var failure: FileError?
        var done = 0
        while done < bytes.count && failure == nil {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = FileError(path: temporary, operation: "write", errno: .current) } else { done += n }
        }
        if failure == nil && fsync(fd) != 0 { failure = FileError(path: temporary, operation: "fsync", errno: .current) }
        if close(fd) != 0 && failure == nil { failure = FileError(path: temporary, operation: "close", errno: .current) }
        if failure == nil && rename(temporary, path) != 0 { failure = FileError(path: path, operation: "rename onto", errno: .current) }
        if let failure {
            unlink(temporary)
            throw failure
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dirfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }
}

/// A file larger than the caller allows.
public struct FileTooLarge: Error, Equatable, CustomStringConvertible, Sendable {
    public let path: String
    public let size: UInt64
    public let limit: UInt64
    public var description: String { "\(path) is \(size) bytes, larger than the \(limit) bytes allowed" }
}
