/// An ELF file as every loader reads it alike: the identification (magic,
/// class, byte order), the header fields loaders use, and the program headers,
/// each read through `ByteReader`, so a file cut short is an error, never a
/// trap. What a loader accepts (file type, machine, which segments, where) is
/// its own rule: `ELFImage` for static executables, `Multiboot` for QEMU's
/// multiboot loader.
struct ELFFile {
    struct ProgramHeader {
        let index: Int
        let type: UInt32
        let flags: UInt32
        let offset, vaddr, paddr, filesz, memsz: UInt64

        static let load: UInt32 = 1
        static let dynamic: UInt32 = 2
        static let interpreter: UInt32 = 3
        /// p_flags: executable.
        var isExecutable: Bool { flags & 1 != 0 }
    }

    let is64: Bool
    let type: UInt16
    let machine: UInt16
    let entry: UInt64
    let programHeaders: [ProgramHeader]
    private let reader: ByteReader

    static func isELF(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7F && bytes[1] == 0x45 && bytes[2] == 0x4C && bytes[3] == 0x46
    }

    /// e_machine, at the same offset in both classes (nil when the file is too short).
    static func machine(of bytes: [UInt8]) -> UInt16? {
        try? ByteReader(bytes, what: "ELF file").read(at: 18)
    }

    init(_ bytes: [UInt8]) throws {
        let r = ByteReader(bytes, what: "ELF file")
        guard Self.isELF(bytes) else { throw GuestImageError.unsupportedFormat("not an ELF file (bad magic)") }
        let elfClass: UInt8 = try r.read(at: 4)
        guard elfClass == 1 || elfClass == 2 else {
            throw GuestImageError.unsupportedFormat("ELF class \(elfClass) is neither ELF32 nor ELF64")
        }
        guard try r.read(UInt8.self, at: 5) == 1 else {
            throw GuestImageError.unsupportedFormat("ELF file is not little-endian")
        }
        let is64 = elfClass == 2
        self.is64 = is64
        reader = r
        type = try r.read(at: 16)
        machine = try r.read(at: 18)
        entry = is64 ? try r.read(at: 24) : UInt64(try r.read(UInt32.self, at: 24))
        let phoff: UInt64 = is64 ? try r.read(at: 32) : UInt64(try r.read(UInt32.self, at: 28))
        let phentsize = Int(try r.read(UInt16.self, at: is64 ? 54 : 42))
        let phnum = Int(try r.read(UInt16.self, at: is64 ? 56 : 44))
        guard phnum > 0 else {
            throw GuestImageError.malformed("ELF file has no program headers: no loadable segments")
        }
        guard phentsize >= (is64 ? 56 : 32), phoff < UInt64(bytes.count) else {
            throw GuestImageError.malformed("ELF program headers are malformed")
        }
        programHeaders = try (0..<phnum).map { i in
            let h = Int(phoff) + i * phentsize
            if is64 {
                return ProgramHeader(
                    index: i, type: try r.read(at: h), flags: try r.read(at: h + 4),
                    offset: try r.read(at: h + 8), vaddr: try r.read(at: h + 16), paddr: try r.read(at: h + 24),
                    filesz: try r.read(at: h + 32), memsz: try r.read(at: h + 40))
            }
            return ProgramHeader(
                index: i, type: try r.read(at: h), flags: try r.read(at: h + 24),
                offset: UInt64(try r.read(UInt32.self, at: h + 4)), vaddr: UInt64(try r.read(UInt32.self, at: h + 8)),
                paddr: UInt64(try r.read(UInt32.self, at: h + 12)), filesz: UInt64(try r.read(UInt32.self, at: h + 16)),
                memsz: UInt64(try r.read(UInt32.self, at: h + 20)))
        }
    }

    /// The bytes a program header takes from the file (p_offset, p_filesz), checked.
    func data(of header: ProgramHeader) throws -> ArraySlice<UInt8> {
        try reader.slice(at: header.offset, count: header.filesz)
    }
}
