/// Little-endian encoding of snapshot sections.
struct SnapshotWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { append(v) }
    mutating func u32(_ v: UInt32) { append(v) }
    mutating func u64(_ v: UInt64) { append(v) }
    mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }

    private mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// u64 length, then the bytes.
    mutating func blob(_ b: [UInt8]) {
        u64(UInt64(b.count))
        bytes += b
    }

    mutating func string(_ s: String) { blob(Array(s.utf8)) }

    /// A C struct as its bytes (the kernel's uapi layout), u64 length first.
    mutating func raw<T>(_ value: T) {
        u64(UInt64(MemoryLayout<T>.size))
        withUnsafeBytes(of: value) { bytes += $0 }
    }

    /// Zeros up to a multiple of `alignment`.
    mutating func pad(to alignment: Int) {
        let extra = (alignment - bytes.count % alignment) % alignment
        bytes += repeatElement(0, count: extra)
    }
}

/// Reads what `SnapshotWriter` wrote; running off the end is a `SnapshotError`
/// naming `what`, never a trap.
struct SnapshotReader {
    let bytes: [UInt8]
    private(set) var offset = 0
    let what: String

    init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    var isAtEnd: Bool { offset >= bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - offset else {
            throw SnapshotError(
                .corrupt, "\(what) ends early: \(n) more bytes needed at byte \(offset) of \(bytes.count)")
        }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let slice = try take(MemoryLayout<T>.size)
        var v: T = 0
        for (i, b) in slice.enumerated() { v |= T(b) << (8 * i) }
        return v
    }

    mutating func u8() throws -> UInt8 { try integer(UInt8.self) }
    mutating func u16() throws -> UInt16 { try integer(UInt16.self) }
    mutating func u32() throws -> UInt32 { try integer(UInt32.self) }
    mutating func u64() throws -> UInt64 { try integer(UInt64.self) }
    mutating func bool() throws -> Bool {
        let b = try u8()
        guard b <= 1 else { throw SnapshotError(.corrupt, "\(what): a flag byte holds \(b), not 0 or 1") }
        return b == 1
    }

    /// A count that must fit in what is left, `unit` bytes per item.
    mutating func count(unit: Int = 1) throws -> Int {
        let n = try u64()
        guard n <= UInt64(remaining / max(unit, 1)) else {
            throw SnapshotError(
                .corrupt, "\(what): a count of \(n) items is more than the \(remaining) bytes left hold")
        }
        return Int(n)
    }

    mutating func blob() throws -> [UInt8] { Array(try take(try count())) }

    mutating func string() throws -> String {
        let b = try blob()
        guard let s = String(validating: b, as: UTF8.self) else {
            throw SnapshotError(.corrupt, "\(what): a name is not UTF-8")
        }
        return s
    }

    /// A C struct written by `SnapshotWriter.raw`: its recorded size must be this build's.
    mutating func raw<T>(_: T.Type, _ name: String) throws -> T {
        let size = try u64()
        guard size == UInt64(MemoryLayout<T>.size) else {
            throw SnapshotError(
                .corrupt,
                "\(what): \(name) is \(size) bytes in the file, \(MemoryLayout<T>.size) in this build's kernel headers")
        }
        let slice = try take(Int(size))
        return slice.withUnsafeBytes { raw in
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(raw.count, 1), alignment: MemoryLayout<T>.alignment)
            defer { p.deallocate() }
            p.copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            return p.load(as: T.self)
        }
    }

    func expectEnd() throws {
        guard isAtEnd else { throw SnapshotError(.corrupt, "\(what): \(remaining) unexpected bytes at its end") }
    }
}

/// Why a snapshot could not be read, written, taken or restored: one line.
public struct SnapshotError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What kind of problem it is.
    public enum Kind: String, Sendable {
        /// Not a snapshot file at all (wrong magic).
        case notSnapshot
        /// Shorter than its header says.
        case truncated
        /// A checksum, size, count or value that cannot be right.
        case corrupt
        /// A format version this library does not read.
        case unsupportedVersion
        /// Valid, but this host cannot restore it (CPU vendor, a missing KVM capability).
        case wrongHost
        /// Valid, but not for this machine (reset to a snapshot of another configuration),
        /// or state this library cannot save or recreate.
        case incompatible
    }

    /// What kind of problem it is.
    public let kind: Kind
    /// The one line users see.
    public let message: String

    /// An error of `kind` (devices throw these from `restoreSnapshotState(_:)`).
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// `message`.
    public var description: String { message }

    /// The same error with `prefix: ` in front of the message (e.g. the file's path).
    func prefixed(_ prefix: String) -> SnapshotError { SnapshotError(kind, "\(prefix): \(message)") }
}
