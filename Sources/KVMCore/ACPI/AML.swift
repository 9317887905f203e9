/// The few ACPI Machine Language encoders the DSDT needs (ACPI 6.5 §20.2,
/// the AML grammar): named objects holding packages of integers.
enum AML {
    // Opcodes (ACPI 6.5 §20.3, Table 20.2).
    static let zeroOp: UInt8 = 0x00
    static let oneOp: UInt8 = 0x01
    static let nameOp: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0A
    static let wordPrefix: UInt8 = 0x0B
    static let dwordPrefix: UInt8 = 0x0C
    static let qwordPrefix: UInt8 = 0x0E
    static let packageOp: UInt8 = 0x12

    /// DefName := NameOp NameString DataRefObject (§20.2.5.1), the name a
    /// single NameSeg in the current scope.
    static func name(_ segment: String, _ object: [UInt8]) -> [UInt8] {
        [nameOp] + nameSeg(segment) + object
    }

    /// NameSeg (§20.2.2): exactly 4 characters, short names padded with '_'
    /// ("_S5" → "_S5_").
    static func nameSeg(_ segment: String) -> [UInt8] {
        let bytes = Array(segment.utf8.prefix(4))
        return bytes + [UInt8](repeating: UInt8(ascii: "_"), count: 4 - bytes.count)
    }

    /// DefPackage := PackageOp PkgLength NumElements PackageElementList
    /// (§20.2.5.4); at most 255 elements (a VarPackage would hold more).
    static func package(_ elements: [[UInt8]]) -> [UInt8] {
        let content = [UInt8(truncatingIfNeeded: elements.count)] + elements.flatMap { $0 }
        return [packageOp] + pkgLength(content.count) + content
    }

    /// An integer as the shortest ComputationalData: ZeroOp, OneOp, or a
    /// Byte/Word/DWord/QWord constant (§20.2.3). QEMU's `aml_int` does the same.
    static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [zeroOp]
        case 1: return [oneOp]
        case ...0xFF: return [bytePrefix, UInt8(value)]
        case ...0xFFFF: return [wordPrefix] + littleEndianBytes(UInt16(value))
        case ...0xFFFF_FFFF: return [dwordPrefix] + littleEndianBytes(UInt32(value))
        default: return [qwordPrefix] + littleEndianBytes(value)
        }
    }

    /// PkgLength (§20.2.4) for `contentLength` bytes after it. The encoded
    /// length counts the PkgLength bytes themselves: one byte holds up to 63,
    /// otherwise bits 7–6 of the lead byte say how many bytes follow, its low
    /// nibble holds bits 3–0 and each following byte the next 8 bits. The
    /// DSDT's objects are tiny; lengths past the 28-bit limit cannot occur.
    static func pkgLength(_ contentLength: Int) -> [UInt8] {
        if contentLength + 1 < 0x40 { return [UInt8(contentLength + 1)] }
        for extra in 1...3 {
            let total = contentLength + 1 + extra
            guard total < 1 << (4 + 8 * extra) else { continue }
            return [UInt8(extra << 6) | UInt8(total & 0xF)]
                + (0..<extra).map { UInt8(truncatingIfNeeded: total >> (4 + 8 * $0)) }
        }
        preconditionFailure("AML package of \(contentLength) bytes exceeds PkgLength's 28 bits")
    }
}
