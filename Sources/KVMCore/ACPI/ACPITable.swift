/// Who kvmrun's ACPI tables say made them (the header's OEM and creator
/// fields, ACPI 6.5 §5.2.6). QEMU writes "BOCHS "/"BXPC"; kvmrun names itself,
/// so a guest's `dmesg` ("ACPI: FACP 0x... (v03 KVMRUN SWIFTKVM ...)") tells
/// the two apart.
enum ACPIOEM {
    /// OEM ID, 6 characters.
    static let id = "KVMRUN"
    /// OEM Table ID, 8 characters (the same for every table, as SeaBIOS does).
    static let tableID = "SWIFTKVM"
    static let revision: UInt32 = 1
    /// Creator ID, 4 characters, and revision: the "ASL compiler" fields.
    static let creatorID = "SKVM"
    static let creatorRevision: UInt32 = 1
}

/// One system description table: the 36-byte header (ACPI 6.5 §5.2.6) before
/// `body`; `bytes` fills in the length and the checksum.
struct ACPITable {
    var signature: String
    var revision: UInt8
    var body: [UInt8]

    static let headerSize = 36
    /// Where the checksum byte sits in the header.
    static let checksumOffset = 9

    var bytes: [UInt8] {
        var out = acpiASCII(signature, width: 4)
        out += littleEndianBytes(UInt32(Self.headerSize + body.count))
        out += [revision, 0]
        out += acpiASCII(ACPIOEM.id, width: 6) + acpiASCII(ACPIOEM.tableID, width: 8)
        out += littleEndianBytes(ACPIOEM.revision)
        out += acpiASCII(ACPIOEM.creatorID, width: 4) + littleEndianBytes(ACPIOEM.creatorRevision)
        out += body
        out[Self.checksumOffset] = acpiChecksum(out)
        return out
    }
}

/// The byte that makes `bytes` sum to 0 mod 256 when stored in a checksum
/// field that holds 0 (ACPI 6.5 §5.2.5.3, §5.2.6).
func acpiChecksum<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
    0 &- bytes.reduce(0, &+)
}

/// `text`'s ASCII bytes cut or space-padded to `width` (the header's fixed-size
/// string fields).
func acpiASCII(_ text: String, width: Int) -> [UInt8] {
    let bytes = Array(text.utf8.prefix(width))
    return bytes + [UInt8](repeating: 0x20, count: width - bytes.count)
}

/// A Generic Address Structure (ACPI 6.5 §5.2.3.2), 12 bytes. Access size 0
/// ("undefined, legacy") as QEMU writes its FADT registers: ACPICA then takes
/// the access width from the bit width.
struct GenericAddress {
    /// Address space IDs (ACPI 6.5 Table 5.1).
    static let systemMemory: UInt8 = 0
    static let systemIO: UInt8 = 1

    var space: UInt8
    var bitWidth: UInt8
    var address: UInt64

    /// An absent register: all zero (QEMU writes its unused X_ blocks so).
    static let none = GenericAddress(space: systemMemory, bitWidth: 0, address: 0)

    /// A port-I/O register block of `length` bytes at `port`.
    static func io(_ port: UInt16, length: UInt8) -> GenericAddress {
        GenericAddress(space: systemIO, bitWidth: length &* 8, address: UInt64(port))
    }

    var bytes: [UInt8] {
        [space, bitWidth, 0, 0] + littleEndianBytes(address)
    }
}
