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
    public static func load(
        kernel: [UInt8], commandLine: String, modules: [MultibootModule] = [],
        initrdText: String? = nil, memoryMap: PCMemoryMap, into memory: GuestMemory
    ) throws -> MultibootBoot {
        let boot = try prepare(
            kernel: kernel, commandLine: commandLine, modules: modules, initrdText: initrdText,
            memoryMap: memoryMap)
        try boot.writeInfo(into: memory)
        return boot
    }

    /// Everything `load` does but writing: for a machine with this memory map.
    public static func prepare(
        kernel: [UInt8], commandLine: String, modules: [MultibootModule] = [],
        initrdText: String? = nil, memoryMap: PCMemoryMap
    ) throws -> MultibootBoot {
        let ram = memoryMap.ram
        guard let header = try findHeader(kernel) else {
            throw GuestImageError.unsupportedFormat(
                "no multiboot header (magic 0x1badb002 with a valid checksum, 4-byte aligned in the first 8 KiB)")
        }
        var warnings: [String] = []
        if header.flags & 0x4 != 0 {
            warnings.append(
                "the multiboot header asks for a video mode (flag 2); there is no display, the kernel gets none")
        }
        // A header or program headers can claim gigabytes: refuse what cannot fit
        // before allocating the image. The kernel is one piece below 4 GiB, so
        // the bound is the largest RAM region there, not all of guest RAM.
        let ramSize = ram.map { min($0.start + $0.size, 1 << 32) - min($0.start, 1 << 32) }.max() ?? 0
        let kernelImage =
            try header.hasAddressFields
            ? loadAddressFields(kernel, header, limit: ramSize)
            : loadELF(kernel, limit: ramSize)
        let map = MultibootMemoryMap(SeaBIOSMemoryMap(memoryMap))

        // QEMU's mb_buf: kernel, module list, strings, loader name, modules.
        let load = UInt64(kernelImage.load)
        var buffer = kernelImage.bytes
        let kernelPages = pageAlign(UInt64(buffer.count))
        let offsetModuleList = kernelPages
        let initrdLength = initrdText.map { UInt64($0.utf8.count + 1) } ?? MultibootModule.qemuListLength(modules)
        let stringsLength = UInt64(commandLine.utf8.count + 1) + initrdLength
        var size = pageAlign(
            kernelPages + stringsLength + 16 * UInt64(modules.count)
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
                throw GuestImageError.doesNotFit(
                    "the kernel and modules 0 to \(i) need \(hex(load))–\(hex(load + size)), past 4 GiB")
            }
            buffer += module.bytes
            buffer += [UInt8](repeating: 0, count: Int(size) - buffer.count)
            let start = load + offset
            let end = start + UInt64(module.bytes.count)
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
            throw GuestImageError.doesNotFit(
                "the kernel, its modules and strings need \(hex(load))–\(hex(end)), past 4 GiB")
        }
        guard ram.contains(where: { load >= $0.start && end <= $0.start + $0.size }) else {
            let what =
                modules.isEmpty
                ? "the kernel and its strings need" : "the kernel, its \(modules.count) module(s) and strings need"
            throw GuestImageError.doesNotFit("\(what) \(hex(load))–\(hex(end)), outside guest RAM (\(describe(ram)))")
        }
        if load < 0x10_0000 && end > SeaBIOSMemoryMap.ebda {
            throw GuestImageError.doesNotFit(
                "the kernel loads at \(hex(load))–\(hex(end)), over the PC's reserved memory at \(hex(SeaBIOSMemoryMap.ebda))–0x100000 (EBDA, VGA, BIOS)"
            )
        }
        let entry = UInt64(kernelImage.entry)
        guard ram.contains(where: { entry >= $0.start && entry < $0.start + $0.size }) else {
            throw GuestImageError.doesNotFit(
                "the kernel's entry point \(hex(entry)) is outside guest RAM (\(describe(ram)))")
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

        let image = BootImage(
            segments: [.init(guestPhysical: load, bytes: buffer[...], memorySize: size)],
            entry: entry, mode: .protected,
            arguments: EntryArguments(rax: UInt64(bootloaderMagic), rbx: infoAddress),
            gdt: gdtAddress)
        return MultibootBoot(
            header: header, image: image, kernelAddress: load, kernelSize: UInt64(kernelImage.bytes.count),
            commandLineAddress: commandLineAddress, loaderNameAddress: loaderNameAddress,
            modules: placed, memoryMap: map, info: info, fwCfgInfo: fwCfgInfo, fwCfg: fwCfg,
            warnings: warnings)
    }

    static func pageAlign(_ v: UInt64) -> UInt64 { (v + page - 1) & ~(page - 1) }

    static func describe(_ ram: [(start: UInt64, size: UInt64)]) -> String {
        ram.isEmpty ? "none" : ram.map { "\(hex($0.start))–\(hex($0.start + $0.size))" }.joined(separator: ", ")
    }
}
