import Guests
import XCTest

@testable import KVMCore

/// The multiboot loader without KVM: header search, both ways of loading a
/// kernel, QEMU's layout of the module list, strings and modules, the memory
/// map, the information structure, fw_cfg items, and every refusal.
final class MultibootTests: XCTestCase {
    static let ram128M: [(start: UInt64, size: UInt64)] = [(0, 128 << 20)]

    /// A kernel file of `size` bytes with a multiboot header at `offset`.
    func kernel(
        size: Int = 0x400, offset: Int = 0, flags: UInt32 = 0x1_0003,
        addresses: MultibootHeader.Addresses? = nil, checksum: UInt32? = nil
    ) -> [UInt8] {
        var bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        func put(_ v: UInt32, _ at: Int) {
            for i in 0..<4 where at + i < bytes.count { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
        }
        put(Multiboot.headerMagic, offset)
        put(flags, offset + 4)
        put(checksum ?? (0 &- Multiboot.headerMagic &- flags), offset + 8)
        if let a = addresses {
            put(a.header, offset + 12)
            put(a.load, offset + 16)
            put(a.loadEnd, offset + 20)
            put(a.bssEnd, offset + 24)
            put(a.entry, offset + 28)
        }
        return bytes
    }

    func addresses(
        header: UInt32 = 0x10_0000, load: UInt32 = 0x10_0000, loadEnd: UInt32 = 0,
        bssEnd: UInt32 = 0, entry: UInt32 = 0x10_0020
    ) -> MultibootHeader.Addresses {
        .init(header: header, load: load, loadEnd: loadEnd, bssEnd: bssEnd, entry: entry)
    }

    func prepare(
        _ kernel: [UInt8], commandLine: String = "k ", modules: [MultibootModule] = [],
        ram: [(start: UInt64, size: UInt64)] = ram128M
    ) throws -> MultibootBoot {
        try Multiboot.prepare(
            kernel: kernel, commandLine: commandLine, modules: modules,
            memoryMap: PCMemoryMap(ram: ram, amdHyperTransport: false))
    }

    func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    // MARK: The header

    func testHeaderSearch() throws {
        let k = kernel(offset: 0x40, addresses: addresses(header: 0x10_0040))
        let header = try XCTUnwrap(try Multiboot.findHeader(k))
        XCTAssertEqual(header.offset, 0x40)
        XCTAssertEqual(header.flags, 0x1_0003)
        XCTAssertTrue(header.pageAlignsModules && header.wantsMemoryInformation && header.hasAddressFields)
        XCTAssertEqual(header.addresses?.header, 0x10_0040)
        XCTAssertTrue(Multiboot.isMultiboot(k))
    }

    func testNoHeader() throws {
        XCTAssertNil(try Multiboot.findHeader([UInt8](repeating: 0x90, count: 9000)))
        XCTAssertFalse(Multiboot.isMultiboot([]))
        assertThrows(GuestImageError.self, containing: ["no multiboot header"]) {
            try prepare([UInt8](repeating: 0x90, count: 100))
        }
    }

    /// The magic must be 4-byte aligned and, as QEMU looks, start below 8144.
    func testHeaderPlacementQEMUIgnores() throws {
        XCTAssertNil(try Multiboot.findHeader(kernel(size: 0x100, offset: 2, flags: 0x3)))
        XCTAssertNil(try Multiboot.findHeader(kernel(size: 9000, offset: 8144, flags: 0x3)))
        XCTAssertNotNil(try Multiboot.findHeader(kernel(size: 9000, offset: 8140, flags: 0x3)))
    }

    func testBadChecksum() {
        let k = kernel(offset: 8, flags: 0x3, checksum: 0x1234)
        XCTAssertFalse(Multiboot.isMultiboot(k))
        assertThrows(GuestImageError.self, containing: ["offset 8", "bad checksum"]) { try prepare(k) }
    }

    /// A bad header before a good one does not matter: QEMU takes the first good one.
    func testGoodHeaderAfterBadOne() throws {
        var k = kernel(size: 0x200, offset: 0x100, flags: 0x3)
        let bad = kernel(size: 12, offset: 0, flags: 0x3, checksum: 1)
        k.replaceSubrange(0..<12, with: bad)
        XCTAssertEqual(try Multiboot.findHeader(k)?.offset, 0x100)
    }

    func testTruncatedAddressFields() {
        let k = kernel(size: 0x20, offset: 0x10, flags: 0x1_0000)
        assertThrows(GuestImageError.self, containing: ["flag 16", "ends at 32"]) { try Multiboot.findHeader(k) }
    }

    // MARK: Address fields (flag 16)

    func testAddressFieldsWholeFile() throws {
        let k = kernel(size: 0x1234, addresses: addresses(bssEnd: 0x10_3000))
        let boot = try prepare(k)
        XCTAssertEqual(boot.kernelAddress, 0x10_0000)
        XCTAssertEqual(boot.kernelSize, 0x3000)
        XCTAssertEqual(boot.entry, 0x10_0020)
        XCTAssertEqual(boot.image.mode, .protected)
        XCTAssertEqual(boot.image.arguments, EntryArguments(rax: 0x2BAD_B002, rbx: 0x9500))
        let segment = try XCTUnwrap(boot.image.segments.first)
        XCTAssertEqual(boot.image.segments.count, 1)
        XCTAssertEqual(segment.guestPhysical, 0x10_0000)
        XCTAssertEqual(Array(segment.bytes.prefix(0x1234)), k)
        XCTAssertTrue(segment.bytes[0x1234..<0x3000].allSatisfy { $0 == 0 }, "bss is zero")
        XCTAssertEqual(segment.memorySize, UInt64(segment.bytes.count))
    }

    /// header_addr − load_addr says where in the file loading starts; load_end_addr how much.
    func testAddressFieldsPartOfFile() throws {
        let k = kernel(
            size: 0x1000, offset: 0x200,
            addresses: addresses(header: 0x20_0100, load: 0x20_0000, loadEnd: 0x20_0800, entry: 0x20_0104))
        let boot = try prepare(k)
        XCTAssertEqual(boot.kernelAddress, 0x20_0000)
        XCTAssertEqual(boot.kernelSize, 0x800)
        XCTAssertEqual(Array(boot.image.segments[0].bytes.prefix(0x800)), Array(k[0x100..<0x900]))
        XCTAssertEqual(boot.entry, 0x20_0104)
    }

    func testAddressFieldErrors() {
        let cases: [(MultibootHeader.Addresses, Int, String)] = [
            (addresses(header: 0x10_0000, load: 0x10_1000), 0, "below load_addr"),
            (addresses(header: 0x10_0100, load: 0x10_0000), 0x40, "more than the header's offset"),
            (addresses(loadEnd: 0xF_0000), 0, "load_end_addr 0xf0000 is below load_addr"),
            (addresses(loadEnd: 0x10_0200, bssEnd: 0x10_0100), 0, "bss_end_addr 0x100100 is below"),
            (addresses(loadEnd: 0x10_9000), 0, "asks for 36864 bytes from file offset 0, but the file has 1024"),
            (addresses(header: 0xFFFF_F000, load: 0xFFFF_F000, entry: 0xFFFF_F000), 0, "past 4 GiB"),
        ]
        for (a, offset, message) in cases {
            let k = kernel(offset: offset, addresses: a)
            assertThrows(GuestImageError.self, containing: [message]) { try prepare(k) }
        }
    }

    func testLoadOutsideRAM() {
        let k = kernel(addresses: addresses(header: 0x1000_0000, load: 0x1000_0000, entry: 0x1000_0000))
        assertThrows(GuestImageError.self, containing: ["0x10000000–0x10002000", "outside guest RAM", "0x0–0x8000000"])
        {
            try prepare(k)
        }
    }

    func testModulesOutsideRAM() {
        let k = kernel(addresses: addresses(header: 0x7FF_0000, load: 0x7FF_0000, entry: 0x7FF_0000))
        let module = MultibootModule(bytes: [UInt8](repeating: 1, count: 0x2_0000), string: "big")
        assertThrows(GuestImageError.self, containing: ["1 module(s)", "outside guest RAM"]) {
            try prepare(k, modules: [module])
        }
    }

    /// QEMU boots a kernel that loads over the information at 0x9000: its option
    /// ROM writes the information first and reads the kernel last, so the
    /// kernel's bytes win. The boot GDT is out of the way, in the BIOS area.
    func testLoadOverTheInformationIsAcceptedAndTheKernelWins() throws {
        let k = kernel(size: 0x3000, addresses: addresses(header: 0x8000, load: 0x8000, entry: 0x8000))
        let boot = try prepare(k)
        XCTAssertEqual(boot.kernelAddress, 0x8000)
        XCTAssertEqual(boot.image.gdt, Multiboot.gdtAddress)
        XCTAssertEqual(boot.image.setupArea, Multiboot.gdtAddress..<Multiboot.gdtAddress + 48)
        let memory = GuestMemory()
        _ = try memory.addRegion(at: 0, size: 1 << 20, flags: 0) { _ in }
        try boot.writeInfo(into: memory)
        try boot.image.load(into: memory)
        XCTAssertEqual(
            try memory.bytes(at: 0x9000, count: 16), Array(k[0x1000..<0x1010]), "kernel bytes over the memory map")
        XCTAssertEqual(
            try memory.bytes(at: 0x9500, count: 16), Array(k[0x1500..<0x1510]), "kernel bytes over the information")
    }

    /// An AMD vCPU's map has the HyperTransport range reserved, last (SeaBIOS sorts it).
    func testMemoryMapOfAnAMDVCPU() {
        let intel = MultibootMemoryMap(SeaBIOSMemoryMap(PCMemoryMap(ram: Self.ram128M, amdHyperTransport: false)))
        let amd = MultibootMemoryMap(SeaBIOSMemoryMap(PCMemoryMap(ram: Self.ram128M, amdHyperTransport: true)))
        XCTAssertEqual(
            amd.entries, intel.entries + [E820Entry(address: 0xFD_0000_0000, length: 0x3_0000_0000, type: .reserved)])
        XCTAssertEqual(amd.memLower, intel.memLower)
        XCTAssertEqual(amd.memUpper, intel.memUpper)
    }

    func testLoadInThePCHole() {
        let k = kernel(addresses: addresses(header: 0xA_0000, load: 0xA_0000, entry: 0xA_0000))
        assertThrows(GuestImageError.self, containing: ["reserved memory", "0x9fc00–0x100000"]) { try prepare(k) }
    }

    func testEntryOutsideRAM() {
        let k = kernel(addresses: addresses(entry: 0x2000_0000))
        assertThrows(GuestImageError.self, containing: ["entry point 0x20000000", "outside guest RAM"]) {
            try prepare(k)
        }
    }

    func testVideoModeIsAWarning() throws {
        let boot = try prepare(kernel(flags: 0x1_0007, addresses: addresses()))
        XCTAssertEqual(boot.warnings.count, 1)
        XCTAssertTrue(boot.warnings[0].contains("video mode"))
    }

    // MARK: ELF (no flag 16)

    /// A minimal ELF32 with the given PT_LOAD segments (offset, vaddr, paddr,
    /// filesz, memsz, flags) and a multiboot header (flags 3) at file offset 0x100.
    func elf32(
        entry: UInt32, machine: UInt16 = 3, elfClass: UInt8 = 1,
        segments: [(offset: UInt32, vaddr: UInt32, paddr: UInt32, filesz: UInt32, memsz: UInt32, flags: UInt32)]
    ) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x2000)
        func put16(_ v: UInt16, _ at: Int) {
            b[at] = UInt8(v & 0xFF)
            b[at + 1] = UInt8(v >> 8)
        }
        func put32(_ v: UInt32, _ at: Int) { for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        b[0...3] = [0x7F, 0x45, 0x4C, 0x46]
        b[4] = elfClass
        b[5] = 1
        b[6] = 1
        put16(2, 16)
        put16(machine, 18)
        put32(1, 20)
        put32(entry, 24)
        put32(52, 28)
        put16(52, 40)
        put16(32, 42)
        put16(UInt16(segments.count), 44)
        for (i, s) in segments.enumerated() {
            let h = 52 + 32 * i
            put32(1, h)
            put32(s.offset, h + 4)
            put32(s.vaddr, h + 8)
            put32(s.paddr, h + 12)
            put32(s.filesz, h + 16)
            put32(s.memsz, h + 20)
            put32(s.flags, h + 24)
        }
        put32(Multiboot.headerMagic, 0x100)
        put32(3, 0x104)
        put32(0 &- Multiboot.headerMagic &- 3, 0x108)
        for i in 0x200..<0x2000 { b[i] = UInt8(truncatingIfNeeded: i) }
        return b
    }

    func testELFSegmentsWithGap() throws {
        let k = elf32(
            entry: 0x10_0010,
            segments: [
                (0x200, 0x10_0000, 0x10_0000, 0x100, 0x100, 5),
                (0x400, 0x10_1000, 0x10_1000, 0x80, 0x200, 6),
            ])
        let boot = try prepare(k)
        XCTAssertEqual(boot.kernelAddress, 0x10_0000)
        XCTAssertEqual(boot.kernelSize, 0x1200)
        XCTAssertEqual(boot.entry, 0x10_0010)
        let bytes = Array(boot.image.segments[0].bytes)
        XCTAssertEqual(Array(bytes[0..<0x100]), Array(k[0x200..<0x300]))
        XCTAssertTrue(bytes[0x100..<0x1000].allSatisfy { $0 == 0 }, "the gap is zero")
        XCTAssertEqual(Array(bytes[0x1000..<0x1080]), Array(k[0x400..<0x480]))
        XCTAssertTrue(bytes[0x1080..<0x1200].allSatisfy { $0 == 0 }, "bss is zero")
    }

    /// A higher-half kernel: segments at their physical addresses, the entry
    /// translated from virtual to physical (QEMU's load_elf does this for an
    /// executable segment whose addresses differ).
    func testELFHigherHalfEntry() throws {
        let k = elf32(entry: 0xC010_0020, segments: [(0x200, 0xC010_0000, 0x10_0000, 0x100, 0x100, 5)])
        let boot = try prepare(k)
        XCTAssertEqual(boot.kernelAddress, 0x10_0000)
        XCTAssertEqual(boot.entry, 0x10_0020)
    }

    func testELFErrors() {
        assertThrows(GuestImageError.self, containing: ["x86-64", "ELF32"]) {
            try prepare(
                elf32(
                    entry: 0x10_0000, machine: 62, elfClass: 2, segments: [(0x200, 0x10_0000, 0x10_0000, 0x10, 0x10, 5)]
                ))
        }
        assertThrows(GuestImageError.self, containing: ["overlap"]) {
            try prepare(
                elf32(
                    entry: 0x10_0000,
                    segments: [
                        (0x200, 0x10_0000, 0x10_0000, 0x100, 0x100, 5),
                        (0x300, 0x10_0080, 0x10_0080, 0x100, 0x100, 6),
                    ]))
        }
        assertThrows(GuestImageError.self, containing: ["no loadable segments"]) {
            try prepare(elf32(entry: 0x10_0000, segments: []))
        }
        assertThrows(GuestImageError.self, containing: ["p_filesz > p_memsz"]) {
            try prepare(elf32(entry: 0x10_0000, segments: [(0x200, 0x10_0000, 0x10_0000, 0x100, 0x10, 5)]))
        }
        assertThrows(GuestImageError.self, containing: ["truncated"]) {
            try prepare(elf32(entry: 0x10_0000, segments: [(0x1F00, 0x10_0000, 0x10_0000, 0x1000, 0x1000, 5)]))
        }
        assertThrows(GuestImageError.self, containing: ["no address fields", "not ELF"]) {
            try prepare(kernel(flags: 0x3))
        }
    }

    /// The built kernels: ELF at 1 MiB, entered after the 12-byte header, or
    /// with address fields at 2 MiB, entered after the 32-byte one.
    func testBuiltKernels() throws {
        let hello = try prepare(try GuestImage.require("mb-hello").bytes)
        XCTAssertFalse(hello.header.hasAddressFields)
        XCTAssertEqual(hello.kernelAddress, 0x10_0000)
        XCTAssertEqual(hello.entry, 0x10_000C)
        let exit = try prepare(try GuestImage.require("mb-exit").bytes)
        XCTAssertTrue(exit.header.hasAddressFields)
        XCTAssertEqual(exit.kernelAddress, 0x20_0000)
        XCTAssertEqual(exit.entry, 0x20_0020)
        for guest in GuestImage.all where guest.name.hasPrefix("mb-") {
            XCTAssertTrue(Multiboot.isMultiboot(guest.bytes), guest.name)
        }
    }

    // MARK: QEMU's layout

    /// QEMU 7.2, `-kernel obj/mb-info/mb-info.elf -append "exit=5 foo" -initrd "m0 arg1 arg2,m1"`,
    /// kernel 0x4xxx bytes: list at +0x5000, strings at +0x5020, loader name at +0x5053,
    /// modules at +0x6000 and +0x7000.
    func testLayoutLikeQEMU() throws {
        let k = kernel(size: 0x4800, addresses: addresses())
        let modules = [
            MultibootModule(bytes: Array("hello module zero\n".utf8), string: "m0 arg1 arg2"),
            MultibootModule(bytes: Array("second,module".utf8), string: "m1"),
        ]
        let boot = try prepare(k, commandLine: "obj/mb-info/mb-info.elf exit=5 foo", modules: modules)
        let base: UInt64 = 0x10_0000
        XCTAssertEqual(
            boot.modules,
            [
                .init(start: base + 0x6000, end: base + 0x6012, stringAddress: base + 0x5020),
                .init(start: base + 0x7000, end: base + 0x700D, stringAddress: base + 0x502D),
            ])
        XCTAssertEqual(boot.commandLineAddress, base + 0x5030)
        XCTAssertEqual(boot.loaderNameAddress, base + 0x5053)
        let data = Array(boot.image.segments[0].bytes)
        XCTAssertEqual(data.count, 0x8000)
        func string(at address: UInt64) -> String {
            let start = Int(address - base)
            return String(decoding: data[start...].prefix { $0 != 0 }, as: UTF8.self)
        }
        XCTAssertEqual(string(at: boot.commandLineAddress), "obj/mb-info/mb-info.elf exit=5 foo")
        XCTAssertEqual(string(at: boot.loaderNameAddress), "qemu")
        XCTAssertEqual(string(at: base + 0x5020), "m0 arg1 arg2")
        XCTAssertEqual(u32(data, 0x5000), UInt32(base + 0x6000))
        XCTAssertEqual(u32(data, 0x5008), UInt32(base + 0x5020))
        XCTAssertEqual(Array(data[0x6000..<0x6012]), modules[0].bytes)
        XCTAssertEqual(Array(data[0x7000..<0x700D]), modules[1].bytes)

        // The information, in memory and in fw_cfg (before the ROM's memory sizes).
        XCTAssertEqual(boot.info.count, 88)
        XCTAssertEqual(u32(boot.info, 0), 0x24F)
        XCTAssertEqual(u32(boot.info, 4), 639)
        XCTAssertEqual(u32(boot.info, 8), 129_920)
        XCTAssertEqual(u32(boot.info, 12), 0x8000_FFFF)
        XCTAssertEqual(u32(boot.info, 16), UInt32(base + 0x5030))
        XCTAssertEqual(u32(boot.info, 20), 2)
        XCTAssertEqual(u32(boot.info, 24), UInt32(base + 0x5000))
        XCTAssertEqual(u32(boot.info, 44), 168)
        XCTAssertEqual(u32(boot.info, 48), 0x9000)
        XCTAssertEqual(u32(boot.info, 64), UInt32(base + 0x5053))
        XCTAssertEqual(u32(boot.fwCfgInfo, 4), 0)
        XCTAssertEqual(u32(boot.fwCfgInfo, 8), 0)
        XCTAssertEqual(u32(boot.fwCfgInfo, 44), 0)
        XCTAssertEqual(Array(boot.fwCfgInfo[12...43]), Array(boot.info[12...43]))

        XCTAssertEqual(boot.fwCfg[FwCfgKey.kernelAddress], [0x00, 0x00, 0x10, 0x00])
        XCTAssertEqual(boot.fwCfg[FwCfgKey.kernelSize], [0x00, 0x80, 0x00, 0x00])
        XCTAssertEqual(boot.fwCfg[FwCfgKey.kernelEntry], [0x20, 0x00, 0x10, 0x00])
        XCTAssertEqual(boot.fwCfg[FwCfgKey.kernelData], data)
        XCTAssertEqual(boot.fwCfg[FwCfgKey.initrdAddress], [0x00, 0x95, 0x00, 0x00])
        XCTAssertEqual(boot.fwCfg[FwCfgKey.initrdSize], [88, 0, 0, 0])
        XCTAssertEqual(boot.fwCfg[FwCfgKey.initrdData], boot.fwCfgInfo)
    }

    /// No modules: the (empty) list and the command line both sit right after the kernel.
    func testLayoutWithoutModules() throws {
        let boot = try prepare(kernel(size: 0x1000, addresses: addresses()), commandLine: "k ")
        XCTAssertEqual(boot.commandLineAddress, 0x10_1000)
        XCTAssertEqual(u32(boot.info, 24), 0x10_1000)
        XCTAssertEqual(u32(boot.info, 20), 0)
        XCTAssertEqual(boot.loaderNameAddress, 0x10_1003)
    }

    /// QEMU sizes the strings area from the raw -initrd text, where a comma in a
    /// module's string was written as ",,".
    func testCommaInModuleString() throws {
        let modules = [MultibootModule(bytes: [1], string: "a,b x"), MultibootModule(bytes: [], string: "c")]
        let boot = try prepare(kernel(size: 0x1000, addresses: addresses()), commandLine: "k ", modules: modules)
        // raw "a,,b x,c" = 8 bytes + NUL; "k " + NUL = 3
        XCTAssertEqual(boot.loaderNameAddress, 0x10_1000 + 32 + 3 + 9)
        // An empty module takes no page: it starts where the next would.
        XCTAssertEqual(boot.modules[1].start, boot.modules[0].start + 0x1000)
        XCTAssertEqual(boot.modules[1].end, boot.modules[1].start)
    }

    /// With the -initrd text itself, a trailing comma counts too (QEMU: strlen(initrd) + 1).
    func testInitrdTextSizesTheStrings() throws {
        let k = kernel(size: 0x1000, addresses: addresses())
        let modules = [MultibootModule(bytes: [1], string: "a")]
        let rebuilt = try prepare(k, commandLine: "k ", modules: modules)
        let given = try Multiboot.prepare(
            kernel: k, commandLine: "k ", modules: modules, initrdText: "a,",
            memoryMap: PCMemoryMap(ram: Self.ram128M, amdHyperTransport: false))
        XCTAssertEqual(given.loaderNameAddress, rebuilt.loaderNameAddress + 1)
    }

    func testQEMUCommandLine() {
        XCTAssertEqual(Multiboot.qemuCommandLine(kernelPath: "/k", append: ""), "/k ")
        XCTAssertEqual(Multiboot.qemuCommandLine(kernelPath: "k", append: "a b"), "k a b")
    }

    func testParseQEMUList() {
        func parse(_ s: String) -> [String] {
            MultibootModule.parseQEMUList(s).map { "\($0.path)|\($0.arguments ?? "-")|\($0.string)" }
        }
        XCTAssertEqual(parse("file1 args,file2"), ["file1|args|file1 args", "file2|-|file2"])
        XCTAssertEqual(parse("a b c"), ["a|b c|a b c"])
        XCTAssertEqual(parse("a,,b,c"), ["a,b|-|a,b", "c|-|c"])
        XCTAssertEqual(parse("a,"), ["a|-|a"])
        XCTAssertEqual(parse("a,,"), ["a,|-|a,"])
        XCTAssertEqual(parse(""), [])
        XCTAssertEqual(parse(",a"), ["|-|", "a|-|a"])
    }

    // MARK: The memory map

    func testMemoryMap128M() {
        let map = MultibootMemoryMap(SeaBIOSMemoryMap(PCMemoryMap(ram: Self.ram128M, amdHyperTransport: false)))
        XCTAssertEqual(map.entries, seaBIOSMap128M)
        XCTAssertEqual(map.memLower, 639)
        XCTAssertEqual(map.memUpper, 129_920)
        XCTAssertEqual(map.multibootBytes.count, 7 * 24)
        XCTAssertEqual(Array(map.multibootBytes.prefix(4)), [20, 0, 0, 0])
    }

    /// QEMU -m 5000: 3 GiB below 4 GiB, the rest above.
    func testMemoryMapAbove4G() {
        let map = MultibootMemoryMap(
            SeaBIOSMemoryMap(
                PCMemoryMap(
                    ram: [(0, 3 << 30), (4 << 30, (5000 << 20) - (3 << 30))],
                    amdHyperTransport: false)))
        XCTAssertEqual(map.entries.count, 8)
        XCTAssertEqual(map.entries[3], E820Entry(address: 0x10_0000, length: 0xBFEE_0000, type: .ram))
        XCTAssertEqual(map.entries[4], E820Entry(address: 0xBFFE_0000, length: 0x2_0000, type: .reserved))
        XCTAssertEqual(map.entries[7], E820Entry(address: 1 << 32, length: 0x7880_0000, type: .ram))
        XCTAssertEqual(map.memUpper, 3_144_576)
    }

    func testQEMURAMSplit() {
        XCTAssertEqual(PCLayout.ramSplit(128 << 20).low, 128 << 20)
        XCTAssertEqual(PCLayout.ramSplit(3300 << 20).low, 3300 << 20)
        XCTAssertEqual(PCLayout.ramSplit(3300 << 20).high, 0)
        XCTAssertEqual(PCLayout.ramSplit(3584 << 20).low, 3 << 30)
        XCTAssertEqual(PCLayout.ramSplit(3584 << 20).high, 512 << 20)
    }
}
