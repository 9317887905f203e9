/// Little-endian reads from a byte array that throw, never trap, past the end.
struct ByteReader {
    let bytes: [UInt8]
    let what: String

    init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    func read<T: FixedWidthInteger>(_ type: T.Type = T.self, at offset: Int) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else {
            throw GuestImageError.truncated(
                "\(what) is truncated: needs \(size) bytes at offset \(offset), file has \(bytes.count)")
        }
        var value: T = 0
        for i in (0..<size).reversed() { value = value << 8 | T(bytes[offset + i]) }
        return value
    }

    /// `count` bytes at `offset`, checked against the file's size.
    func slice(at offset: UInt64, count: UInt64) throws -> ArraySlice<UInt8> {
        guard offset <= UInt64(bytes.count), count <= UInt64(bytes.count) - offset else {
            throw GuestImageError.truncated(
                "\(what) is truncated: \(count) bytes at offset \(offset) run past its end (\(bytes.count) bytes)")
        }
        return bytes[Int(offset)..<Int(offset + count)]
    }
}
