// What a multiboot load produced: the image, the information structure and
// the memory map the kernel reads.

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
                if e.address <= top && top < end {
                    top = end
                    again = true
                }
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
