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
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if n == 0 { break }
                throw FileError(path: path, operation: "read", errno: .current)
            }
            done += n
        }
        return Array(bytes.prefix(done))
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
