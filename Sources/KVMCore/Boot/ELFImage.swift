/// Static ELF32 and ELF64 x86 executables. ELF64 starts in long mode, ELF32 in
/// flat 32-bit protected mode; segments load at their physical addresses.
public enum ELFImage {
    /// Whether `bytes` start with the ELF magic.
    public static func isELF(_ bytes: [UInt8]) -> Bool { ELFFile.isELF(bytes) }

    /// The image of a static ELF: its PT_LOAD segments, entry point and mode. Throws `GuestImageError`.
    public static func parse(_ bytes: [UInt8]) throws -> BootImage {
        let file = try ELFFile(bytes)
        guard file.machine == (file.is64 ? 62 : 3) else {
            throw GuestImageError.unsupportedFormat(
                "ELF machine \(file.machine) is not \(file.is64 ? "x86-64 (62)" : "i386 (3)")")
        }
        guard file.type == 2 else {
            throw GuestImageError.unsupportedFormat(
                file.type == 3
                    ? "ELF file is position independent (ET_DYN); link it static at a fixed address"
                    : "ELF type \(file.type) is not an executable (ET_EXEC)")
        }
        var segments: [BootImage.Segment] = []
        for h in file.programHeaders {
            switch h.type {
            case ELFFile.ProgramHeader.load: break
            case ELFFile.ProgramHeader.dynamic:
                throw GuestImageError.unsupportedFormat("ELF file is dynamically linked (PT_DYNAMIC); link it static")
            case ELFFile.ProgramHeader.interpreter:
                throw GuestImageError.unsupportedFormat("ELF file needs an interpreter (PT_INTERP); link it static")
            default: continue
            }
            guard h.filesz <= h.memsz else {
                throw GuestImageError.malformed("ELF segment \(h.index) has p_filesz > p_memsz")
            }
            guard h.paddr <= UInt64.max - h.memsz else {
                throw GuestImageError.malformed("ELF segment \(h.index) wraps around the address space")
            }
            if h.memsz == 0 { continue }
            segments.append(.init(guestPhysical: h.paddr, bytes: try file.data(of: h), memorySize: h.memsz))
        }
        guard !segments.isEmpty else { throw GuestImageError.malformed("ELF file has no loadable segments") }
        guard segments.contains(where: { file.entry >= $0.guestPhysical && file.entry < $0.end }) else {
            throw GuestImageError.malformed("ELF entry point \(hex(file.entry)) is not inside a loaded segment")
        }
        return BootImage(segments: segments, entry: file.entry, mode: file.is64 ? .long : .protected)
    }
}
