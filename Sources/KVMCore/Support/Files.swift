import Glibc

/// A file that could not be read or written (a snapshot, a multiboot module);
/// names the path and the errno.
public struct FileError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file, or the temporary file beside it that was being written.
    public let path: String
    /// What failed: "open", "read", "create", "write", "fsync", "close", "rename onto", "stat".
    public let operation: String
    /// The system call's errno.
    public let errno: Errno

    /// "cannot OPERATION PATH: MESSAGE (ENAME)".
    public var description: String { "cannot \(operation) \(path): \(errno.message) (\(errno.name))" }
}

package enum Files {
    /// The whole file at `path`, refusing files larger than `limit` bytes before
    /// reading them (a guest image larger than guest RAM cannot run anyway).
    package static func read(_ path: String, limit: UInt64 = .max) throws -> [UInt8] {
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
        // One byte more than the size, so the read that finds EOF needs no growth.
        var bytes = [UInt8](repeating: 0, count: Int(min(max(size, 4095), limit == .max ? .max - 1 : limit) + 1))
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
        bytes.removeLast(bytes.count - done) // in place: no second copy of a large kernel
        return bytes
    }

    /// A small text file (sysfs, procfs) with trailing whitespace removed; nil when unreadable.
    package static func text(_ path: String) -> String? {
        guard let bytes = try? read(path, limit: 1 << 24) else { return nil }
        var text = String(decoding: bytes, as: UTF8.self)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }

    /// Names in a directory, sorted, without "." and ".."; empty when unreadable.
    package static func list(_ directory: String) -> [String] {
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
    /// new ones, never a mix (see `writeAtomically(to:mode:_:)`).
    package static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        try writeAtomically(to: path, mode: mode) { fd in
            try bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                try writeAll(fd, base, count: raw.count, at: 0)
            }
        }
    }

    /// Creates `path` so that it holds either its old contents or all of the new
    /// ones: `body` writes a temporary file beside it (`PATH.tmp-PID`), then
    /// fsync, rename, fsync of the directory. A failure removes the temporary
    /// file; temporary files of `path` left by processes that died mid-write
    /// (SIGKILL, an OOM kill, a power cut) are removed first.
    package static func writeAtomically(to path: String, mode: mode_t = 0o644, _ body: (Int32) throws -> Void) throws {
        let temporary = path + ".tmp-\(getpid())"
        removeAbandonedTemporaries(of: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError(path: temporary, operation: "create", errno: .current) }
        do {
            do {
                try body(fd)
            } catch let error as KVMError {
                throw FileError(path: temporary, operation: "write", errno: error.errno)
            }
            guard fsync(fd) == 0 else { throw FileError(path: temporary, operation: "fsync", errno: .current) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard close(fd) == 0 else {
            let err = Errno.current
            unlink(temporary)
            throw FileError(path: temporary, operation: "close", errno: err)
        }
        guard rename(temporary, path) == 0 else {
            let err = Errno.current
            unlink(temporary)
            throw FileError(path: path, operation: "rename onto", errno: err)
        }
        let dirfd = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    /// The directory holding `path` ("." for a bare name).
    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Unlinks `PATH.tmp-PID` files whose process no longer exists.
    static func removeAbandonedTemporaries(of path: String) {
        let directory = directory(of: path)
        let prefix =
            String(path[(path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex)...]) + ".tmp-"
        for name in list(directory) where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink("\(directory)/\(name)") }
        }
    }
}

/// A file larger than the caller allows (a multiboot module larger than guest RAM).
public struct FileTooLarge: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file.
    public let path: String
    /// Its size in bytes (or the bytes read before giving up).
    public let size: UInt64
    /// The most bytes allowed.
    public let limit: UInt64
    /// "PATH is SIZE bytes, larger than the LIMIT bytes allowed".
    public var description: String { "\(path) is \(size) bytes, larger than the \(limit) bytes allowed" }
}
