// Loading the kernel image: by the header's address fields, or as an ELF32
// through the one ELF reader (ELFFile), as QEMU's multiboot.c does.

extension Multiboot {
    /// The kernel as the address fields describe it.
    static func loadAddressFields(_ bytes: [UInt8], _ header: MultibootHeader, limit: UInt64) throws -> (
        load: UInt32, bytes: [UInt8], entry: UInt32
    ) {
        let a = header.addresses!
        guard a.header >= a.load else {
            throw GuestImageError.malformed(
                "multiboot header: header_addr \(hex(a.header)) is below load_addr \(hex(a.load))")
        }
        guard UInt64(a.header - a.load) <= UInt64(header.offset) else {
            throw GuestImageError.malformed(
                "multiboot header: header_addr \(hex(a.header)) − load_addr \(hex(a.load)) is more than the header's offset in the file (\(header.offset))"
            )
        }
        let textOffset = UInt64(header.offset) - UInt64(a.header - a.load)
        let loadSize: UInt64
        if a.loadEnd != 0 {
            guard a.loadEnd >= a.load else {
                throw GuestImageError.malformed(
                    "multiboot header: load_end_addr \(hex(a.loadEnd)) is below load_addr \(hex(a.load))")
            }
            loadSize = UInt64(a.loadEnd - a.load)
        } else {
            loadSize = UInt64(bytes.count) - textOffset
        }
        guard loadSize <= UInt64(UInt32.max - a.load) else {
            throw GuestImageError.malformed(
                "multiboot header: \(loadSize) bytes at load_addr \(hex(a.load)) run past 4 GiB")
        }
        let kernelSize: UInt64
        if a.bssEnd != 0 {
            guard UInt64(a.bssEnd) >= UInt64(a.load) + loadSize else {
                throw GuestImageError.malformed(
                    "multiboot header: bss_end_addr \(hex(a.bssEnd)) is below the end of the loaded part (\(hex(UInt64(a.load) + loadSize)))"
                )
            }
            kernelSize = UInt64(a.bssEnd - a.load)
        } else {
            kernelSize = loadSize
        }
        guard textOffset + loadSize <= UInt64(bytes.count) else {
            throw GuestImageError.truncated(
                "multiboot header: load_end_addr \(hex(a.loadEnd)) asks for \(loadSize) bytes from file offset \(textOffset), but the file has \(bytes.count)"
            )
        }
        guard kernelSize <= limit else {
            throw GuestImageError.doesNotFit(
                "multiboot header: the kernel needs \(kernelSize) bytes at \(hex(a.load)), more than the largest guest RAM region below 4 GiB (\(limit) bytes)"
            )
        }
        var image = Array(bytes[Int(textOffset)..<Int(textOffset + loadSize)])
        image += [UInt8](repeating: 0, count: Int(kernelSize - loadSize))
        return (a.load, image, a.entry)
    }

    /// The kernel as its ELF32 program headers describe it (QEMU's load_elf:
    /// PT_LOAD segments at p_paddr; everything from the lowest to the highest
    /// address is the kernel, gaps zero).
    static func loadELF(_ bytes: [UInt8], limit: UInt64) throws -> (load: UInt32, bytes: [UInt8], entry: UInt32) {
        guard ELFFile.isELF(bytes) else {
            throw GuestImageError.unsupportedFormat(
                "the multiboot header has no address fields (flag 16), so the kernel must be an ELF32 file, and it is not ELF"
            )
        }
        if ELFFile.machine(of: bytes) == 62 {
            throw GuestImageError.unsupportedFormat(
                "an x86-64 ELF multiboot kernel without address fields (flag 16) cannot be loaded; link it as ELF32 (QEMU says: give a 32bit one)"
            )
        }
        let file = try ELFFile(bytes)
        guard !file.is64 else { throw GuestImageError.unsupportedFormat("a multiboot ELF kernel must be ELF32") }
        guard file.machine == 3 else {
            throw GuestImageError.unsupportedFormat("ELF machine \(file.machine) is not i386 (3)")
        }
        let entry = UInt32(file.entry)
        struct Segment {
            var paddr, memsz: UInt64
            var data: ArraySlice<UInt8>
        }
        var segments: [Segment] = []
        var physicalEntry = entry
        for h in file.programHeaders where h.type == ELFFile.ProgramHeader.load {
            guard h.filesz <= h.memsz else {
                throw GuestImageError.malformed("ELF segment \(h.index) has p_filesz > p_memsz")
            }
            guard h.paddr + h.memsz <= 1 << 32 else {
                throw GuestImageError.doesNotFit(
                    "ELF segment \(h.index) at \(hex(h.paddr)) (\(h.memsz) bytes) runs past 4 GiB")
            }
            // QEMU's load_elf: an entry inside an executable segment whose virtual
            // and physical addresses differ is translated to the physical one.
            if h.vaddr != h.paddr && UInt64(entry) >= h.vaddr && UInt64(entry) < h.vaddr + h.filesz && h.isExecutable {
                physicalEntry = UInt32(UInt64(entry) - h.vaddr + h.paddr)
            }
            segments.append(Segment(paddr: h.paddr, memsz: h.memsz, data: try file.data(of: h)))
        }
        guard !segments.isEmpty else { throw GuestImageError.malformed("ELF file has no loadable segments") }
        let sorted = segments.filter { $0.memsz > 0 }.sorted { $0.paddr < $1.paddr }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.paddr + a.memsz > b.paddr {
            throw GuestImageError.malformed(
                "ELF segments at \(hex(a.paddr))–\(hex(a.paddr + a.memsz)) and \(hex(b.paddr))–\(hex(b.paddr + b.memsz)) overlap"
            )
        }
        // QEMU also counts empty segments here; they only ever make the image odd.
        guard let low = sorted.map(\.paddr).min(), let high = sorted.map({ $0.paddr + $0.memsz }).max() else {
            throw GuestImageError.malformed("ELF file has no loadable bytes")
        }
        guard high - low <= limit else {
            throw GuestImageError.doesNotFit(
                "ELF segments span \(hex(low))–\(hex(high)), \(high - low) bytes, more than the largest guest RAM region below 4 GiB (\(limit) bytes)"
            )
        }
        var image = [UInt8](repeating: 0, count: Int(high - low))
        for s in segments where !s.data.isEmpty {
            let at = Int(s.paddr - low)
            image.replaceSubrange(at..<at + s.data.count, with: s.data)
        }
        return (UInt32(low), image, physicalEntry)
    }
}
