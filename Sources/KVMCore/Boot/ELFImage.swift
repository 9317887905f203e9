/// Static ELF32 and ELF64 x86 executables. ELF64 starts in long mode, ELF32 in
/// flat 32-bit protected mode; segments load at their physical addresses.
public enum ELFImage {
    public static func isELF(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7F && bytes[1] == 0x45 && bytes[2] == 0x4C && bytes[3] == 0x46
    }

    public static func parse(_ bytes: [UInt8]) throws -> BootImage {
        let r = ByteReader(bytes, what: "ELF file")
        guard isELF(bytes) else { throw GuestImageError("not an ELF file (bad magic)") }
        let elfClass: UInt8 = try r.read(at: 4)
        guard elfClass == 1 || elfClass == 2 else { throw GuestImageError("ELF class \(elfClass) is neither ELF32 nor ELF64") }
        guard try r.read(UInt8.self, at: 5) == 1 else { throw GuestImageError("ELF file is not little-endian") }
        let is64 = elfClass == 2
        let type: UInt16 = try r.read(at: 16)
        let machine: UInt16 = try r.read(at: 18)
        guard machine == (is64 ? 62 : 3) else {
            throw GuestImageError("ELF machine \(machine) is not \(is64 ? "x86-64 (62)" : "i386 (3)")")
        }
        guard type == 2 else {
            throw GuestImageError(type == 3 ? "ELF file is position independent (ET_DYN); link it static at a fixed address"
                                            : "ELF type \(type) is not an executable (ET_EXEC)")
        }
        let entry: UInt64 = is64 ? try r.read(at: 24) : UInt64(try r.read(UInt32.self, at: 24))
        let phoff: UInt64 = is64 ? try r.read(at: 32) : UInt64(try r.read(UInt32.self, at: 28))
        let phentsize = Int(try r.read(UInt16.self, at: is64 ? 54 : 42))
        let phnum = Int(try r.read(UInt16.self, at: is64 ? 56 : 44))
        guard phnum > 0 else { throw GuestImageError("ELF file has no program headers") }
        guard phentsize >= (is64 ? 56 : 32), phoff < UInt64(bytes.count) else {
            throw GuestImageError("ELF program headers are malformed")
        }
        var segments: [BootImage.Segment] = []
        for i in 0..<phnum {
            let h = Int(phoff) + i * phentsize
            let pType: UInt32 = try r.read(at: h)
            switch pType {
            case 1: break                                       // PT_LOAD
            case 2: throw GuestImageError("ELF file is dynamically linked (PT_DYNAMIC); link it static")
            case 3: throw GuestImageError("ELF file needs an interpreter (PT_INTERP); link it static")
            default: continue
            }
            let offset, paddr, filesz, memsz: UInt64
            if is64 {
                offset = try r.read(at: h + 8); paddr = try r.read(at: h + 24)
                filesz = try r.read(at: h + 32); memsz = try r.read(at: h + 40)
            } else {
                offset = UInt64(try r.read(UInt32.self, at: h + 4)); paddr = UInt64(try r.read(UInt32.self, at: h + 12))
                filesz = UInt64(try r.read(UInt32.self, at: h + 16)); memsz = UInt64(try r.read(UInt32.self, at: h + 20))
            }
            guard filesz <= memsz else { throw GuestImageError("ELF segment \(i) has p_filesz > p_memsz") }
            guard paddr <= UInt64.max - memsz else { throw GuestImageError("ELF segment \(i) wraps around the address space") }
            if memsz == 0 { continue }
            segments.append(.init(guestPhysical: paddr, bytes: try r.slice(at: offset, count: filesz), memorySize: memsz))
        }
        guard !segments.isEmpty else { throw GuestImageError("ELF file has no loadable segments") }
        guard segments.contains(where: { entry >= $0.guestPhysical && entry < $0.end }) else {
            throw GuestImageError("ELF entry point \(hex(entry)) is not inside a loaded segment")
        }
        return BootImage(segments: segments, entry: entry, mode: is64 ? .long : .protected)
    }
}
