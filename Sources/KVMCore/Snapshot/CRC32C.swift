/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final
/// XOR 0xFFFFFFFF), the checksum of the snapshot format: the one iSCSI, ext4 and
/// Btrfs use. `CRC32C.checksum("123456789")` is 0xE3069283. Slicing-by-8 tables.
enum CRC32C {
    /// 8 tables of 256 entries: table k gives the CRC of a byte followed by k zero bytes.
    // nonisolated(unsafe): filled once by the static initializer (swift_once), only read after.
    nonisolated(unsafe) private static let tables: UnsafeMutablePointer<UInt32> = {
        let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let previous = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
        return t
    }()

    /// The CRC of `count` bytes at `start`, continuing from `crc` (the CRC of
    /// what came before; 0 to start).
    static func checksum(_ start: UnsafeRawPointer, count: Int, continuing crc: UInt32 = 0) -> UInt32 {
        let t = tables
        var c = ~crc
        var p = start
        var n = count
        while n >= 8 {
            let w = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)) ^ UInt64(c)
            c =
                t[7 * 256 + Int(w & 0xFF)] ^ t[6 * 256 + Int((w >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((w >> 16) & 0xFF)] ^ t[4 * 256 + Int((w >> 24) & 0xFF)]
                ^ t[3 * 256 + Int((w >> 32) & 0xFF)] ^ t[2 * 256 + Int((w >> 40) & 0xFF)]
                ^ t[1 * 256 + Int((w >> 48) & 0xFF)] ^ t[Int(w >> 56)]
            p += 8
            n -= 8
        }
        while n > 0 {
            c = (c >> 8) ^ t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
            p += 1
            n -= 1
        }
        return ~c
    }

    static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            raw.baseAddress.map { checksum($0, count: raw.count, continuing: crc) } ?? crc
        }
    }
}
