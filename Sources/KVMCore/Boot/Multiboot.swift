/// Multiboot (version 0.6.96) kernels, loaded the way QEMU's `-kernel` loads
/// them (hw/i386/multiboot.c plus its option ROM, pc-bios/optionrom/multiboot.S,
/// running on SeaBIOS), so a kernel that prints its multiboot information
/// prints the same under QEMU and under KVMCore:
///
/// - the header is the first 32-bit aligned magic 0x1BADB002 with a valid
///   checksum in the file's first 8144 bytes (where QEMU looks);
/// - with header flag 16 the address fields say what to load where, else the
///   file must be an ELF32 whose PT_LOAD segments load at their physical
///   addresses (an entry inside an executable segment whose virtual and
///   physical addresses differ is translated, as QEMU's load_elf does);
/// - after the kernel (rounded up to 4 KiB) come the module list, the module
///   strings, the kernel command line and the boot loader name "qemu", then
///   each module on a page boundary: QEMU's `mb_buf`, loaded as one piece;
/// - the information structure is at 0x9500 and the memory map at 0x9000,
///   with the flags QEMU sets (memory, boot device 0x8000ffff, command line,
///   modules, memory map, boot loader name: 0x24f);
/// - the memory map is the E820 map SeaBIOS reports on a QEMU/KVM `-M pc`
///   (`SeaBIOSMemoryMap`), and mem_lower/mem_upper are computed from it as
///   the option ROM does;
/// - the CPU starts in flat 32-bit protected mode, paging off, interrupts
///   off, EAX = 0x2BADB002, EBX = 0x9500.
///
/// Header flags 0 (page-aligned modules) and 1 (memory information) are
/// always honoured, as in QEMU; flag 2 (a video mode) is reported in
/// `warnings` and otherwise ignored; other flags are ignored, as QEMU does.
public enum Multiboot {
    /// What the kernel finds in EAX.
    public static let bootloaderMagic: UInt32 = 0x2BAD_B002
    /// The header's magic.
    public static let headerMagic: UInt32 = 0x1BAD_B002
    /// QEMU's MULTIBOOT_STRUCT_ADDR: the memory map here, the information at +0x500.
    public static let mmapAddress: UInt64 = 0x9000
    /// The multiboot information structure (EBX at entry).
    public static let infoAddress: UInt64 = 0x9500
    /// The information structure's size as QEMU writes it.
    public static let infoSize = 88
    /// QEMU looks for the header at offsets below 8192 - 48.
    public static let headerSearchLimit = 8192 - 48
    /// The boot loader name QEMU gives.
    public static let bootloaderName = "qemu"
    /// Info flags QEMU sets: memory, boot device, command line, modules, memory map, loader name.
    public static let infoFlags: UInt32 = 0x24F
    /// boot_device as QEMU sets it: no BIOS drive.
    public static let bootDevice: UInt32 = 0x8000_FFFF
    /// The boot GDT sits in the BIOS area (reserved in the map, refused to
    /// kernels), as QEMU's sits in its option ROM: a kernel may load anywhere
    /// in low memory without overwriting it or being overwritten by it.
    public static let gdtAddress: UInt64 = 0xF_0000
    static let page: UInt64 = 0x1000

    /// The command line QEMU gives a `-kernel K -append ARGS` boot: "K ARGS"
    /// (with the space even when ARGS is empty).
    public static func qemuCommandLine(kernelPath: String, append: String) -> String {
        "\(kernelPath) \(append)"
    }

    /// True when `bytes` has a multiboot header QEMU would find (magic and checksum).
    public static func isMultiboot(_ bytes: [UInt8]) -> Bool {
        (try? findHeader(bytes)) != nil
    }

    /// The header QEMU would use, nil when there is no magic at all; throws when
    /// the only headers have a bad checksum, or the one found is cut short.
    public static func findHeader(_ bytes: [UInt8]) throws -> MultibootHeader? {
        let r = ByteReader(bytes, what: "multiboot kernel")
        var badChecksum: (offset: Int, sum: UInt32)?
        var offset = 0
        while offset < headerSearchLimit && offset + 12 <= bytes.count {
            defer { offset += 4 }
            guard try r.read(UInt32.self, at: offset) == headerMagic else { continue }
            let flags: UInt32 = try r.read(at: offset + 4)
            let checksum: UInt32 = try r.read(at: offset + 8)
            let sum = headerMagic &+ flags &+ checksum
            guard sum == 0 else {
                if badChecksum == nil { badChecksum = (offset, sum) }
                continue
            }
            var header = MultibootHeader(offset: offset, flags: flags)
            if header.hasAddressFields {
                guard offset + 32 <= bytes.count else {
                    throw GuestImageError.truncated("the multiboot header at offset \(offset) has flag 16 (address fields) but the file ends at \(bytes.count), before them")
                }
                header.addresses = MultibootHeader.Addresses(
                    header: try r.read(at: offset + 12), load: try r.read(at: offset + 16),
                    loadEnd: try r.read(at: offset + 20), bssEnd: try r.read(at: offset + 24),
                    entry: try r.read(at: offset + 28))
            }
            return header
        }
        if let bad = badChecksum {
            throw GuestImageError.malformed("the multiboot header at offset \(bad.offset) has a bad checksum (magic + flags + checksum = \(hex(bad.sum)), must be 0)")
        }
        return nil
    }

    /// Loads a multiboot kernel with its modules: checks everything, writes the
    /// memory map and the information structure into `memory`, and returns the
    /// kernel image (for `Machine.load`, which writes it after the information,
    /// as QEMU's option ROM does) and the fw_cfg items QEMU sets. Nothing is
    /// written when it throws. `memoryMap` is the machine's (`PCMemoryMap`):
    /// the firmware's map the kernel gets is made from it.
    ///
    /// `commandLine` is the whole string the kernel gets; QEMU gives
    /// "kernel-path append-string" (`qemuCommandLine`). `initrdText` is the
    /// `-initrd` argument the modules came from, if they did: QEMU sizes the
    /// strings area with its length (by default it is rebuilt from the module
    /// strings, which differs only for a trailing comma).
    public static func load(kernel: [UInt8], commandLine: String, modules: [MultibootModule] = [],
                            initrdText: String? = nil, memoryMap: PCMemoryMap, into memory: GuestMemory) throws -> MultibootBoot {
        let boot = try prepare(kernel: kernel, commandLine: commandLine, modules: modules, initrdText: initrdText,
                               memoryMap: memoryMap)
        try boot.writeInfo(into: memory)
        return boot
    }

    /// Everything `load` does but writing: for a machine with this memory map.
    public static func prepare(kernel: [UInt8], commandLine: String, modules: [MultibootModule] = [],
                               initrdText: String? = nil, memoryMap: PCMemoryMap) throws -> MultibootBoot {
        let ram = memoryMap.ram
        guard let header = try findHeader(kernel) else {
            throw GuestImageError.unsupportedFormat("no multiboot header (magic 0x1badb002 with a valid checksum, 4-byte aligned in the first 8 KiB)")
        }
        var warnings: [String] = []
        if header.flags & 0x4 != 0 {
            warnings.append("the multiboot header asks for a video mode (flag 2); there is no display, the kernel gets none")
        }
        // A header or program headers can claim gigabytes: refuse what cannot fit
        // before allocating the image. The kernel is one piece below 4 GiB, so
        // the bound is the largest RAM region there, not all of guest RAM.
        let ramSize = ram.map { min($0.start + $0.size, 1 << 32) - min($0.start, 1 << 32) }.max() ?? 0
        let kernelImage = try header.hasAddressFields ? loadAddressFields(kernel, header, limit: ramSize)
                                                      : loadELF(kernel, limit: ramSize)
        let map = MultibootMemoryMap(SeaBIOSMemoryMap(memoryMap))

        // QEMU's mb_buf: kernel, module list, strings, loader name, modules.
        let load = UInt64(kernelImage.load)
        var buffer = kernelImage.bytes
        let kernelPages = pageAlign(UInt64(buffer.count))
        let offsetModuleList = kernelPages
        let initrdLength = initrdText.map { UInt64($0.utf8.count + 1) } ?? MultibootModule.qemuListLength(modules)
        let stringsLength = UInt64(commandLine.utf8.count + 1) + initrdLength
        var size = pageAlign(kernelPages + stringsLength + 16 * UInt64(modules.count)
                             + UInt64(bootloaderName.utf8.count + 1))
        var offsetStrings = offsetModuleList + 16 * UInt64(modules.count)
        let offsetLoaderName = offsetStrings + stringsLength
        buffer += [UInt8](repeating: 0, count: Int(size) - buffer.count)

        func putString(_ s: String, at offset: UInt64) {
            let bytes = Array(s.utf8) + [0]
            buffer.replaceSubrange(Int(offset)..<Int(offset) + bytes.count, with: bytes)
        }
        func put32(_ v: UInt32, at offset: UInt64) {
            buffer.replaceSubrange(Int(offset)..<Int(offset) + 4, with: littleEndianBytes(v))
        }
        var placed: [MultibootBoot.PlacedModule] = []
        for (i, module) in modules.enumerated() {
            let offset = size
            let stringAddress = load + offsetStrings
            putString(module.string, at: offsetStrings)
            offsetStrings += UInt64(module.string.utf8.count + 1)
            size = pageAlign(offset + UInt64(module.bytes.count))
            guard load + size <= 1 << 32 else {
                throw GuestImageError.doesNotFit("the kernel and modules 0 to \(i) need \(hex(load))–\(hex(load + size)), past 4 GiB")
            }
            buffer += module.bytes
            buffer += [UInt8](repeating: 0, count: Int(size) - buffer.count)
            let start = load + offset, end = start + UInt64(module.bytes.count)
            put32(UInt32(start), at: offsetModuleList + 16 * UInt64(i))
            put32(UInt32(end), at: offsetModuleList + 16 * UInt64(i) + 4)
            put32(UInt32(stringAddress), at: offsetModuleList + 16 * UInt64(i) + 8)
            placed.append(.init(start: start, end: end, stringAddress: stringAddress))
        }
        let commandLineAddress = load + offsetStrings
        putString(commandLine, at: offsetStrings)
        let loaderNameAddress = load + offsetLoaderName
        putString(bootloaderName, at: offsetLoaderName)

        // Where it all goes: inside RAM and clear of the memory the PC reserves
        // below 1 MiB. It may cover the information at 0x9000: QEMU's option
        // ROM reads the kernel last, so the kernel's bytes win, as here.
        let end = load + size
        guard end <= 1 << 32 else {
            throw GuestImageError.doesNotFit("the kernel, its modules and strings need \(hex(load))–\(hex(end)), past 4 GiB")
        }
        guard ram.contains(where: { load >= $0.start && end <= $0.start + $0.size }) else {
            let what = modules.isEmpty ? "the kernel and its strings need" : "the kernel, its \(modules.count) module(s) and strings need"
            throw GuestImageError.doesNotFit("\(what) \(hex(load))–\(hex(end)), outside guest RAM (\(describe(ram)))")
        }
        if load < 0x10_0000 && end > SeaBIOSMemoryMap.ebda {
            throw GuestImageError.doesNotFit("the kernel loads at \(hex(load))–\(hex(end)), over the PC's reserved memory at \(hex(SeaBIOSMemoryMap.ebda))–0x100000 (EBDA, VGA, BIOS)")
        }
        let entry = UInt64(kernelImage.entry)
        guard ram.contains(where: { entry >= $0.start && entry < $0.start + $0.size }) else {
            throw GuestImageError.doesNotFit("the kernel's entry point \(hex(entry)) is outside guest RAM (\(describe(ram)))")
        }

        // The information: as QEMU puts it in fw_cfg, then as the option ROM
        // completes it (mem_lower, mem_upper, mmap_length) in memory.
        var info = [UInt8](repeating: 0, count: infoSize)
        func set(_ offset: Int, _ v: UInt32) { info.replaceSubrange(offset..<offset + 4, with: littleEndianBytes(v)) }
        set(0, infoFlags)
        set(12, bootDevice)
        set(16, UInt32(commandLineAddress))
        set(20, UInt32(modules.count))
        set(24, UInt32(load + offsetModuleList))
        set(48, UInt32(mmapAddress))
        set(64, UInt32(loaderNameAddress))
        let fwCfgInfo = info
        set(4, map.memLower)
        set(8, map.memUpper)
        set(44, UInt32(map.entries.count * 24))

        var fwCfg = FwCfgItems()
        fwCfg.set(FwCfgKey.kernelEntry, u32: UInt32(entry))
        fwCfg.set(FwCfgKey.kernelAddress, u32: UInt32(load))
        fwCfg.set(FwCfgKey.kernelSize, u32: UInt32(size))
        fwCfg[FwCfgKey.kernelData] = buffer
        fwCfg.set(FwCfgKey.initrdAddress, u32: UInt32(infoAddress))
        fwCfg.set(FwCfgKey.initrdSize, u32: UInt32(infoSize))
        fwCfg[FwCfgKey.initrdData] = fwCfgInfo

        let image = BootImage(segments: [.init(guestPhysical: load, bytes: buffer[...], memorySize: size)],
                              entry: entry, mode: .protected,
                              arguments: EntryArguments(rax: UInt64(bootloaderMagic), rbx: infoAddress),
                              gdt: gdtAddress)
        return MultibootBoot(header: header, image: image, kernelAddress: load, kernelSize: UInt64(kernelImage.bytes.count),
                             commandLineAddress: commandLineAddress, loaderNameAddress: loaderNameAddress,
                             modules: placed, memoryMap: map, info: info, fwCfgInfo: fwCfgInfo, fwCfg: fwCfg,
                             warnings: warnings)
    }

    /// The kernel as the address fields describe it.
    static func loadAddressFields(_ bytes: [UInt8], _ header: MultibootHeader, limit: UInt64) throws -> (load: UInt32, bytes: [UInt8], entry: UInt32) {
        let a = header.addresses!
        guard a.header >= a.load else {
            throw GuestImageError.malformed("multiboot header: header_addr \(hex(a.header)) is below load_addr \(hex(a.load))")
        }
        guard UInt64(a.header - a.load) <= UInt64(header.offset) else {
            throw GuestImageError.malformed("multiboot header: header_addr \(hex(a.header)) − load_addr \(hex(a.load)) is more than the header's offset in the file (\(header.offset))")
        }
        let textOffset = UInt64(header.offset) - UInt64(a.header - a.load)
        let loadSize: UInt64
        if a.loadEnd != 0 {
            guard a.loadEnd >= a.load else {
                throw GuestImageError.malformed("multiboot header: load_end_addr \(hex(a.loadEnd)) is below load_addr \(hex(a.load))")
            }
            loadSize = UInt64(a.loadEnd - a.load)
        } else {
            loadSize = UInt64(bytes.count) - textOffset
        }
        guard loadSize <= UInt64(UInt32.max - a.load) else {
            throw GuestImageError.malformed("multiboot header: \(loadSize) bytes at load_addr \(hex(a.load)) run past 4 GiB")
        }
        let kernelSize: UInt64
        if a.bssEnd != 0 {
            guard UInt64(a.bssEnd) >= UInt64(a.load) + loadSize else {
                throw GuestImageError.malformed("multiboot header: bss_end_addr \(hex(a.bssEnd)) is below the end of the loaded part (\(hex(UInt64(a.load) + loadSize)))")
            }
            kernelSize = UInt64(a.bssEnd - a.load)
        } else {
            kernelSize = loadSize
        }
        guard textOffset + loadSize <= UInt64(bytes.count) else {
            throw GuestImageError.truncated("multiboot header: load_end_addr \(hex(a.loadEnd)) asks for \(loadSize) bytes from file offset \(textOffset), but the file has \(bytes.count)")
        }
        guard kernelSize <= limit else {
            throw GuestImageError.doesNotFit("multiboot header: the kernel needs \(kernelSize) bytes at \(hex(a.load)), more than the largest guest RAM region below 4 GiB (\(limit) bytes)")
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
            throw GuestImageError.unsupportedFormat("the multiboot header has no address fields (flag 16), so the kernel must be an ELF32 file, and it is not ELF")
        }
        if ELFFile.machine(of: bytes) == 62 {
            throw GuestImageError.unsupportedFormat("an x86-64 ELF multiboot kernel without address fields (flag 16) cannot be loaded; link it as ELF32 (QEMU says: give a 32bit one)")
        }
        let file = try ELFFile(bytes)
        guard !file.is64 else { throw GuestImageError.unsupportedFormat("a multiboot ELF kernel must be ELF32") }
        guard file.machine == 3 else { throw GuestImageError.unsupportedFormat("ELF machine \(file.machine) is not i386 (3)") }
        let entry = UInt32(file.entry)
        struct Segment { var paddr, memsz: UInt64; var data: ArraySlice<UInt8> }
        var segments: [Segment] = []
        var physicalEntry = entry
        for h in file.programHeaders where h.type == ELFFile.ProgramHeader.load {
            guard h.filesz <= h.memsz else { throw GuestImageError.malformed("ELF segment \(h.index) has p_filesz > p_memsz") }
            guard h.paddr + h.memsz <= 1 << 32 else {
                throw GuestImageError.doesNotFit("ELF segment \(h.index) at \(hex(h.paddr)) (\(h.memsz) bytes) runs past 4 GiB")
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
            throw GuestImageError.malformed("ELF segments at \(hex(a.paddr))–\(hex(a.paddr + a.memsz)) and \(hex(b.paddr))–\(hex(b.paddr + b.memsz)) overlap")
        }
        // QEMU also counts empty segments here; they only ever make the image odd.
        guard let low = sorted.map(\.paddr).min(), let high = sorted.map({ $0.paddr + $0.memsz }).max() else {
            throw GuestImageError.malformed("ELF file has no loadable bytes")
        }
        guard high - low <= limit else {
            throw GuestImageError.doesNotFit("ELF segments span \(hex(low))–\(hex(high)), \(high - low) bytes, more than the largest guest RAM region below 4 GiB (\(limit) bytes)")
        }
        var image = [UInt8](repeating: 0, count: Int(high - low))
        for s in segments where !s.data.isEmpty {
            let at = Int(s.paddr - low)
            image.replaceSubrange(at..<at + s.data.count, with: s.data)
        }
        return (UInt32(low), image, physicalEntry)
    }

    static func pageAlign(_ v: UInt64) -> UInt64 { (v + page - 1) & ~(page - 1) }

    static func describe(_ ram: [(start: UInt64, size: UInt64)]) -> String {
        ram.isEmpty ? "none" : ram.map { "\(hex($0.start))–\(hex($0.start + $0.size))" }.joined(separator: ", ")
    }
}

/// A multiboot header as found in a kernel file.
public struct MultibootHeader: Equatable, Sendable {
    /// Offset of the magic in the file.
    public var offset: Int
    /// The header's flags word.
    public var flags: UInt32
    /// The address fields, when flag 16 is set.
    public var addresses: Addresses?

    /// The a.out-kludge address fields (flag 16).
    public struct Addresses: Equatable, Sendable {
        /// header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr.
        public var header, load, loadEnd, bssEnd, entry: UInt32
    }

    /// A header from its fields.
    public init(offset: Int, flags: UInt32, addresses: Addresses? = nil) {
        self.offset = offset
        self.flags = flags
        self.addresses = addresses
    }

    /// Flag 0: modules must be page aligned.
    public var pageAlignsModules: Bool { flags & 0x1 != 0 }
    /// Flag 1: the kernel wants mem_lower/mem_upper and the memory map.
    public var wantsMemoryInformation: Bool { flags & 0x2 != 0 }
    /// Flag 2: the kernel wants a video mode (not given).
    public var wantsVideoMode: Bool { flags & 0x4 != 0 }
    /// Flag 16: the address fields are valid.
    public var hasAddressFields: Bool { flags & 0x1_0000 != 0 }
}

/// A multiboot module: its bytes and the string the kernel sees with it.
public struct MultibootModule: Equatable, Sendable {
    /// The module's contents.
    public var bytes: [UInt8]
    /// Its string (the file name and arguments, as QEMU gives them).
    public var string: String

    /// A module from its contents and string.
    public init(bytes: [UInt8], string: String) {
        self.bytes = bytes
        self.string = string
    }

    /// One module of a QEMU `-initrd` list.
    public struct Spec: Equatable, Sendable {
        /// The file: the entry up to its first space.
        public var path: String
        /// What follows the first space, if anything.
        public var arguments: String?
        /// The module's string: the whole entry, path and arguments, as QEMU gives it.
        public var string: String
    }

    /// QEMU's `-initrd "file1 args,file2"`: entries separated by commas (",,"
    /// is a literal comma); each entry is a file name, optionally followed by a
    /// space and arguments. The module's string is the whole entry.
    public static func parseQEMUList(_ initrd: String) -> [Spec] {
        var specs: [Spec] = []
        var current: [Character] = []
        var chars = Array(initrd)[...]
        func finish() {
            let entry = String(current)
            let parts = entry.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            specs.append(Spec(path: String(parts[0]), arguments: parts.count > 1 ? String(parts[1]) : nil, string: entry))
            current = []
        }
        while let c = chars.popFirst() {
            if c == "," {
                if chars.first == "," { chars.removeFirst(); current.append(","); continue }
                finish()
                if chars.isEmpty { return specs }   // a trailing comma ends the list
                continue
            }
            current.append(c)
        }
        if !current.isEmpty || specs.isEmpty && !initrd.isEmpty { finish() }
        return specs
    }

    /// Reads each module of a QEMU `-initrd` list; the error names the file.
    public static func load(qemuList initrd: String, limit: UInt64 = .max) throws -> [MultibootModule] {
        try parseQEMUList(initrd).map { spec in
            MultibootModule(bytes: try Files.read(spec.path, limit: limit), string: spec.string)
        }
    }

    /// The length of the `-initrd` string these modules came from (commas
    /// doubled, entries joined by commas), which QEMU counts when it sizes the
    /// strings area.
    static func qemuListLength(_ modules: [MultibootModule]) -> UInt64 {
        guard !modules.isEmpty else { return 0 }
        let text = modules.reduce(0) { $0 + $1.string.utf8.count + $1.string.utf8.filter { $0 == UInt8(ascii: ",") }.count }
        return UInt64(text + modules.count - 1 + 1)
    }
}

/// A multiboot kernel ready to run: what `Multiboot.load` returns.
public struct MultibootBoot: Sendable {
    /// Where a module was put in guest memory.
    public struct PlacedModule: Equatable, Sendable {
        /// The module's first byte, the byte after its last, and its string.
        public var start, end, stringAddress: UInt64
    }

    /// The kernel's multiboot header.
    public let header: MultibootHeader
    /// The kernel, module list, strings and modules as one segment, entered in
    /// protected mode with EAX = 0x2BADB002 and EBX = `Multiboot.infoAddress`.
    public let image: BootImage
    /// Where the kernel loads.
    public let kernelAddress: UInt64
    /// Bytes of the kernel proper (with its .bss), before the module list.
    public let kernelSize: UInt64
    /// Where the command line string is.
    public let commandLineAddress: UInt64
    /// Where the boot loader name ("qemu") is.
    public let loaderNameAddress: UInt64
    /// The modules, in `-initrd` order.
    public let modules: [PlacedModule]
    /// The memory map the kernel gets.
    public let memoryMap: MultibootMemoryMap
    /// The information structure as the kernel finds it at 0x9500.
    public let info: [UInt8]
    /// The same before the option ROM filled in memory sizes: fw_cfg's INITRD_DATA.
    public let fwCfgInfo: [UInt8]
    /// KERNEL_ENTRY/ADDR/SIZE/DATA and INITRD_ADDR/SIZE/DATA as QEMU sets them
    /// for a multiboot kernel; merge them into the machine's items
    /// (`FwCfgItems.qemuPC`).
    public let fwCfg: FwCfgItems
    /// Things the kernel asked for and does not get (a video mode).
    public let warnings: [String]

    /// The kernel's entry point.
    public var entry: UInt64 { image.entry }

    /// Writes the memory map (0x9000) and the information structure (0x9500).
    public func writeInfo(into memory: GuestMemory) throws {
        try memory.write(memoryMap.multibootBytes, at: Multiboot.mmapAddress)
        try memory.write(info, at: Multiboot.infoAddress)
    }
}

/// The memory map a multiboot kernel gets, and mem_lower/mem_upper.
public struct MultibootMemoryMap: Equatable, Sendable {
    /// The map's entries.
    public var entries: [E820Entry]

    /// KiB of conventional memory: int 0x12 on SeaBIOS (its 1 KiB EBDA at the top).
    public var memLower: UInt32
    /// KiB of RAM contiguous from 1 MiB, as the option ROM computes it from the map.
    public var memUpper: UInt32 {
        var top: UInt64 = 0x10_0000
        var again = true
        while again {
            again = false
            for e in entries where e.type == .ram && e.address >> 32 == 0 {
                let end = (e.address + (e.length & 0xFFFF_FFFF)) & 0xFFFF_FFFF
                if e.address <= top && top < end { top = end; again = true }
            }
        }
        return UInt32((top - 0x10_0000) >> 10)
    }

    /// A map from its entries and mem_lower.
    public init(entries: [E820Entry], memLower: UInt32) {
        self.entries = entries
        self.memLower = memLower
    }

    /// Each entry as the multiboot mmap has it: u32 size (20), then the E820 entry.
    public var multibootBytes: [UInt8] {
        entries.flatMap { littleEndianBytes(UInt32(20)) + $0.bytes }
    }

    /// The map SeaBIOS reports, with int 0x12's conventional memory as mem_lower.
    public init(_ firmware: SeaBIOSMemoryMap) {
        self.init(entries: firmware.entries, memLower: firmware.conventionalKiB)
    }
}
