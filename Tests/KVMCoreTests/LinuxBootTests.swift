import Foundation
import TestFixtures
import XCTest

@testable import KVMCore

/// The Linux boot protocol loader (`LinuxImage`, `LinuxBoot`, `Machine.bootLinux`)
/// on synthetic bzImages: header fields, the zero page, placement, entry, the
/// errors, and a real boot on /dev/kvm of a "kernel" that reports what it got.
final class LinuxBootTests: XCTestCase {
    /// A 128 MiB PC as SeaBIOS reports it (QEMU -m 128, Intel vCPU).
    static let map128M = seaBIOSMap128M

    /// `map128M` with `ram` bytes of RAM in all (the RAM entry from 1 MiB ends there).
    static func map(ramEnd: UInt64) -> [E820Entry] {
        [
            E820Entry(address: 0, length: 0x9_FC00, type: .ram),
            E820Entry(address: 0x10_0000, length: ramEnd - 0x10_0000, type: .ram),
        ]
    }

    func zeroPage(_ boot: LinuxBoot, file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
        let pages = boot.image.segments.filter { $0.guestPhysical == LinuxBoot.bootParamsAddress }
        XCTAssertEqual(pages.count, 1, "one segment at the zero page's address", file: file, line: line)
        let page = try XCTUnwrap(pages.first, file: file, line: line)
        XCTAssertEqual(page.memorySize, 4096, file: file, line: line)
        return Array(page.bytes)
    }

    func segment(at address: UInt64, in boot: LinuxBoot, file: StaticString = #filePath, line: UInt = #line) throws
        -> BootImage.Segment
    {
        try XCTUnwrap(
            boot.image.segments.first { $0.guestPhysical == address },
            "no segment at \(hex(address)); segments at \(boot.image.segments.map { hex($0.guestPhysical) })",
            file: file, line: line)
    }

    func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    func u32(_ b: [UInt8], _ o: Int) -> UInt32 { UInt32(u16(b, o)) | UInt32(u16(b, o + 2)) << 16 }
    func u64(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32 }

    // MARK: - The setup header

    func testParsesSetupHeader() throws {
        var synthetic = SyntheticBzImage()
        synthetic.setupSectors = 7
        synthetic.initrdAddressMax = 0x37FF_FFFF
        synthetic.commandLineSize = 255
        synthetic.initSize = 0x12_3000
        let bytes = synthetic.bytes
        XCTAssertTrue(LinuxImage.isLinux(bytes))
        let image = try LinuxImage(bytes)
        XCTAssertEqual(image.version, 0x020F)
        XCTAssertEqual(image.versionText, "2.15")
        XCTAssertEqual(image.loadFlags, LinuxImage.loadedHigh)
        XCTAssertEqual(image.code32Start, 0x10_0000)
        XCTAssertEqual(image.initrdAddressMax, 0x3800_0000, "initrd_addr_max + 1")
        XCTAssertEqual(image.kernelAlignment, 0x20_0000)
        XCTAssertTrue(image.relocatable)
        XCTAssertEqual(image.xloadFlags, LinuxImage.kernel64)
        XCTAssertTrue(image.has64BitEntry)
        XCTAssertEqual(image.commandLineSize, 255)
        XCTAssertEqual(image.preferredAddress, 0x100_0000)
        XCTAssertEqual(image.initSize, 0x12_3000)
        // The header runs from 0x1f1 to the end its jump gives (0x202 + 0x6a).
        XCTAssertEqual(image.header.count, 0x26C - 0x1F1)
        XCTAssertEqual(image.header, Array(bytes[0x1F1..<0x26C]))
        // The kernel: everything after the (setup_sects + 1) sectors.
        XCTAssertEqual(image.kernel.startIndex, 8 * 512)
        XCTAssertEqual(Array(image.kernel), synthetic.payload)
    }

    /// setup_sects 0 means 4 (boot.rst: "if this field is 0, the real value is 4").
    func testZeroSetupSectorsMeansFour() throws {
        var synthetic = SyntheticBzImage()
        synthetic.setupSectors = 0
        let bytes = synthetic.bytes
        XCTAssertEqual(bytes[0x1F1], 0)
        XCTAssertEqual(bytes.count, 5 * 512 + synthetic.payload.count)
        let image = try LinuxImage(bytes)
        XCTAssertEqual(image.kernel.startIndex, 5 * 512)
        XCTAssertEqual(Array(image.kernel), synthetic.payload)
    }

    func testVersionText() {
        XCTAssertEqual(LinuxImage.protocolText(0x0206), "2.06")
        XCTAssertEqual(LinuxImage.protocolText(0x020A), "2.10")
        XCTAssertEqual(LinuxImage.protocolText(0x020F), "2.15")
        XCTAssertEqual(LinuxImage.protocolText(0x0300), "3.00")
    }

    /// Fields newer than the protocol are not read: xloadflags before 2.12,
    /// pref_address and init_size before 2.10.
    func testOlderProtocolsIgnoreNewerFields() throws {
        var synthetic = SyntheticBzImage()
        synthetic.version = 0x020B
        synthetic.preferredAddress = 0x200_0000
        let image = try synthetic.parsed()
        XCTAssertEqual(image.xloadFlags, 0, "2.11 has no xloadflags")
        XCTAssertFalse(image.has64BitEntry)
        XCTAssertEqual(image.preferredAddress, 0x200_0000)
        XCTAssertEqual(image.initSize, 0x40_0000)

        synthetic.version = 0x0209
        let older = try synthetic.parsed()
        XCTAssertEqual(older.preferredAddress, 0x10_0000, "before 2.10: 1 MiB")
        XCTAssertEqual(older.initSize, 0)
    }

    // MARK: - The zero page

    func testZeroPage() throws {
        let synthetic = SyntheticBzImage()
        let bytes = synthetic.bytes
        let image = try LinuxImage(bytes)
        let commandLine = "console=ttyS0 root=/dev/ram0 quiet"
        let initrd = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let boot = try LinuxBoot(kernel: image, initrd: initrd, commandLine: commandLine, e820: Self.map128M)
        let zp = try zeroPage(boot)

        // The setup header, copied at 0x1f1, except the fields the loader writes.
        let written = Set([0x210] + Array(0x218..<0x220) + Array(0x228..<0x22C))
        for offset in 0x1F1..<0x26C where !written.contains(offset) {
            XCTAssertEqual(zp[offset], bytes[offset], "zero page byte \(hex(UInt64(offset))) is the header's")
        }
        XCTAssertEqual(u32(zp, 0x202), LinuxImage.headerMagic)
        XCTAssertEqual(u32(zp, 0x248), 0x5A5A_5A5A)
        XCTAssertEqual(u32(zp, 0x268), 0xC0DE)
        XCTAssertEqual(zp[0x210], 0xFF, "type_of_loader: undefined")
        // Nothing before the header but e820_entries; nothing past it but the e820 table.
        XCTAssertTrue(zp[0..<0x1E8].allSatisfy { $0 == 0 }, "no ACPI RSDP, screen info... given")
        XCTAssertTrue(zp[0x26C..<0x2D0].allSatisfy { $0 == 0 })
        XCTAssertTrue(zp[(0x2D0 + 20 * Self.map128M.count)...].allSatisfy { $0 == 0 })

        // The command line.
        XCTAssertEqual(u32(zp, 0x228), UInt32(LinuxBoot.commandLineAddress))
        let line = try segment(at: LinuxBoot.commandLineAddress, in: boot)
        XCTAssertEqual(Array(line.bytes), Array(commandLine.utf8) + [0])
        XCTAssertEqual(line.memorySize, UInt64(commandLine.utf8.count + 1))

        // The memory map.
        XCTAssertEqual(Int(zp[0x1E8]), Self.map128M.count)
        for (i, entry) in Self.map128M.enumerated() {
            let o = 0x2D0 + 20 * i
            XCTAssertEqual(u64(zp, o), entry.address, "e820 entry \(i) address")
            XCTAssertEqual(u64(zp, o + 8), entry.length, "e820 entry \(i) length")
            XCTAssertEqual(u32(zp, o + 16), entry.type.rawValue, "e820 entry \(i) type")
        }

        // The initrd.
        let placed = try XCTUnwrap(boot.initrd)
        XCTAssertEqual(u32(zp, 0x218), UInt32(placed.lowerBound))
        XCTAssertEqual(u32(zp, 0x21C), 5000)
        let ramdisk = try segment(at: placed.lowerBound, in: boot)
        XCTAssertEqual(Array(ramdisk.bytes), initrd)
        XCTAssertEqual(ramdisk.memorySize, 5000)

        // The kernel.
        let kernel = try segment(at: LinuxBoot.kernelAddress, in: boot)
        XCTAssertEqual(Array(kernel.bytes), synthetic.payload)
        XCTAssertEqual(boot.image.segments.count, 4, "kernel, command line, initrd, zero page")
    }

    func testEmptyCommandLineAndNoInitrd() throws {
        let boot = try LinuxBoot(
            kernel: try SyntheticBzImage().parsed(), initrd: nil, commandLine: "", e820: Self.map128M)
        let zp = try zeroPage(boot)
        XCTAssertNil(boot.initrd)
        XCTAssertEqual(u32(zp, 0x218), 0)
        XCTAssertEqual(u32(zp, 0x21C), 0)
        XCTAssertEqual(Array(try segment(at: LinuxBoot.commandLineAddress, in: boot).bytes), [0])
        XCTAssertEqual(boot.image.segments.count, 3)
        // An empty initrd is no initrd.
        let empty = try LinuxBoot(
            kernel: try SyntheticBzImage().parsed(), initrd: [], commandLine: "", e820: Self.map128M)
        XCTAssertNil(empty.initrd)
        XCTAssertEqual(u32(try zeroPage(empty), 0x21C), 0)
    }

    /// The command line may be exactly cmdline_size bytes (its NUL not counted).
    func testCommandLineOfExactlyCmdlineSize() throws {
        var synthetic = SyntheticBzImage()
        synthetic.commandLineSize = 16
        let image = try synthetic.parsed()
        let line = String(repeating: "x", count: 16)
        let boot = try LinuxBoot(kernel: image, initrd: nil, commandLine: line, e820: Self.map128M)
        XCTAssertEqual(Array(try segment(at: LinuxBoot.commandLineAddress, in: boot).bytes), Array(line.utf8) + [0])
    }

    /// acpi_rsdp_addr (0x70) is written for protocol 2.14 and later only.
    func testACPIRSDP() throws {
        let boot = try LinuxBoot(
            kernel: try SyntheticBzImage().parsed(), initrd: nil, commandLine: "",
            e820: Self.map128M, acpiRSDP: 0xF_5A40)
        XCTAssertEqual(u64(try zeroPage(boot), 0x70), 0xF_5A40)
        var old = SyntheticBzImage()
        old.version = 0x020D
        let oldBoot = try LinuxBoot(
            kernel: try old.parsed(), initrd: nil, commandLine: "",
            e820: Self.map128M, acpiRSDP: 0xF_5A40)
        XCTAssertEqual(u64(try zeroPage(oldBoot), 0x70), 0)
    }

    func testFullMemoryMap() throws {
        let e820 = (0..<LinuxBoot.maxE820Entries).map { i -> E820Entry in
            i == 1
                ? E820Entry(address: 0x10_0000, length: 0x700_0000, type: .ram)
                : E820Entry(address: 0x1_0000_0000 + UInt64(i) << 20, length: 0x1000, type: .reserved)
        }
        let boot = try LinuxBoot(kernel: try SyntheticBzImage().parsed(), initrd: nil, commandLine: "", e820: e820)
        let zp = try zeroPage(boot)
        XCTAssertEqual(zp[0x1E8], 128)
        let last = 0x2D0 + 20 * 127
        XCTAssertEqual(u64(zp, last), 0x1_0000_0000 + 127 << 20)
        XCTAssertEqual(u32(zp, last + 16), 2)
    }

    // MARK: - Placement

    func testKernelRange() throws {
        var synthetic = SyntheticBzImage()
        synthetic.initSize = 0x300_0000
        // Relocatable: the run address is 1 MiB aligned up to 2 MiB, or pref_address if higher.
        XCTAssertEqual(
            try LinuxBoot(kernel: try synthetic.parsed(), initrd: nil, commandLine: "", e820: Self.map128M).kernelRange,
            0x10_0000..<0x400_0000)
        synthetic.preferredAddress = 0x10_0000
        XCTAssertEqual(
            try LinuxBoot(kernel: try synthetic.parsed(), initrd: nil, commandLine: "", e820: Self.map128M).kernelRange,
            0x10_0000..<0x320_0000)
        // Not relocatable: the kernel runs at pref_address.
        synthetic.relocatable = 0
        synthetic.preferredAddress = 0x80_0000
        XCTAssertEqual(
            try LinuxBoot(kernel: try synthetic.parsed(), initrd: nil, commandLine: "", e820: Self.map128M).kernelRange,
            0x10_0000..<0x380_0000)
        // A kernel file longer than init_size from its run address ends where the file does.
        synthetic.initSize = 0
        synthetic.preferredAddress = 0x10_0000
        synthetic.payload = [UInt8](repeating: 0x90, count: 0x12_3450)
        XCTAssertEqual(
            try LinuxBoot(kernel: try synthetic.parsed(), initrd: nil, commandLine: "", e820: Self.map128M).kernelRange,
            0x10_0000..<0x22_3450)
    }

    /// As high as initrd_addr_max and the RAM entry from 1 MiB allow, page-aligned.
    func testInitrdPlacedHighAndPageAligned() throws {
        let image = try SyntheticBzImage().parsed()
        for size in [1, 4095, 4096, 5000, 1 << 20] {
            let boot = try LinuxBoot(
                kernel: image, initrd: [UInt8](repeating: 1, count: size), commandLine: "", e820: Self.map128M)
            let placed = try XCTUnwrap(boot.initrd)
            XCTAssertEqual(placed.lowerBound % 4096, 0, "size \(size)")
            XCTAssertEqual(placed.count, size)
            XCTAssertLessThanOrEqual(placed.upperBound, 0x7FE_0000, "inside the RAM from 1 MiB")
            XCTAssertEqual(placed.lowerBound, (0x7FE_0000 - UInt64(size)) & ~0xFFF, "size \(size): as high as it goes")
            XCTAssertGreaterThanOrEqual(placed.lowerBound, boot.kernelRange.upperBound)
        }
    }

    /// initrd_addr_max below the top of RAM bounds the initrd; RAM above 4 GiB is not used.
    func testInitrdBelowInitrdAddrMax() throws {
        var synthetic = SyntheticBzImage()
        synthetic.initrdAddressMax = 0x37FF_FFFF
        let e820 = [
            E820Entry(address: 0, length: 0x9_FC00, type: .ram),
            E820Entry(address: 0x10_0000, length: 0xBFEE_0000, type: .ram),
            E820Entry(address: 0x1_0000_0000, length: 0x4000_0000, type: .ram),
        ]
        let boot = try LinuxBoot(
            kernel: try synthetic.parsed(), initrd: [UInt8](repeating: 2, count: 0x1800),
            commandLine: "", e820: e820)
        XCTAssertEqual(boot.initrd, 0x37FF_E000..<0x37FF_F800)
        // With the default initrd_addr_max (2 GiB - 1) and 3 GiB below 4 GiB: 2 GiB.
        let high = try LinuxBoot(
            kernel: try SyntheticBzImage().parsed(), initrd: [UInt8](repeating: 2, count: 0x1000),
            commandLine: "", e820: e820)
        XCTAssertEqual(high.initrd, 0x7FFF_F000..<0x8000_0000)
        // initrd_addr_max 0xffffffff with RAM only to 64 MiB: the top of RAM.
        synthetic.initrdAddressMax = 0xFFFF_FFFF
        let low = try LinuxBoot(
            kernel: try synthetic.parsed(), initrd: [3], commandLine: "", e820: Self.map(ramEnd: 0x400_0000))
        XCTAssertEqual(low.initrd, 0x3FF_F000..<0x3FF_F001)
    }

    /// The initrd fits exactly from the page the kernel ends at; a page more does not.
    func testInitrdJustFitsAboveTheKernel() throws {
        var synthetic = SyntheticBzImage()
        synthetic.initSize = 0x40_0000 // kernel to 0x1400000
        let image = try synthetic.parsed()
        let e820 = Self.map(ramEnd: 0x180_0000) // 24 MiB: 4 MiB above the kernel
        let boot = try LinuxBoot(
            kernel: image, initrd: [UInt8](repeating: 4, count: 0x40_0000), commandLine: "", e820: e820)
        XCTAssertEqual(boot.kernelRange.upperBound, 0x140_0000)
        XCTAssertEqual(boot.initrd, 0x140_0000..<0x180_0000)
        assertThrows(GuestImageError.self, containing: ["initrd", "does not fit", "-m"]) {
            try LinuxBoot(kernel: image, initrd: [UInt8](repeating: 4, count: 0x40_0001), commandLine: "", e820: e820)
        }
    }

    // MARK: - Entry

    func testEntry64() throws {
        let boot = try LinuxBoot(
            kernel: try SyntheticBzImage().parsed(), initrd: nil, commandLine: "", e820: Self.map128M)
        XCTAssertEqual(boot.image.entry, 0x10_0200)
        XCTAssertEqual(boot.image.mode, .long)
        XCTAssertEqual(boot.image.arguments, EntryArguments(rsi: 0x1_0000))
        XCTAssertEqual(boot.image.selectors, .linuxBoot64)
        XCTAssertEqual(GDT.linuxBoot64.code64, 0x10, "__BOOT_CS")
        XCTAssertEqual(GDT.linuxBoot64.data, 0x18, "__BOOT_DS")
    }

    func testEntry32WithoutXLFKernel64() throws {
        var synthetic = SyntheticBzImage()
        synthetic.xloadFlags = 0x2 // XLF_CAN_BE_LOADED_ABOVE_4G alone
        let boot = try LinuxBoot(kernel: try synthetic.parsed(), initrd: nil, commandLine: "", e820: Self.map128M)
        XCTAssertEqual(boot.image.entry, 0x10_0000)
        XCTAssertEqual(boot.image.mode, .protected)
        XCTAssertEqual(boot.image.arguments.rsi, 0x1_0000)
        XCTAssertEqual(boot.image.selectors, .linuxBoot32)
        XCTAssertEqual(GDT.linuxBoot32.code32, 0x10)
    }

    // MARK: - Errors

    func testNoHdrS() {
        var synthetic = SyntheticBzImage()
        synthetic.magic = 0x5372_6447 // "GdrS"
        XCTAssertFalse(LinuxImage.isLinux(synthetic.bytes))
        assertThrows(GuestImageError.self, containing: ["not a Linux kernel", "HdrS"]) { try synthetic.parsed() }
        XCTAssertFalse(LinuxImage.isLinux([]))
        XCTAssertFalse(LinuxImage.isLinux([UInt8](repeating: 0, count: 0x205)))
    }

    func testProtocolTooOld() {
        var synthetic = SyntheticBzImage()
        synthetic.version = 0x0205
        XCTAssertTrue(LinuxImage.isLinux(synthetic.bytes))
        assertThrows(GuestImageError.self, containing: ["2.05", "too old", "2.06"]) { try synthetic.parsed() }
        synthetic.version = 0x0206
        XCTAssertNoThrow(try synthetic.parsed())
    }

    func testZImage() {
        var synthetic = SyntheticBzImage()
        synthetic.loadFlags = 0x80 // CAN_USE_HEAP without LOADED_HIGH
        assertThrows(GuestImageError.self, containing: ["zImage", "bzImage"]) { try synthetic.parsed() }
    }

    func testTruncated() {
        var synthetic = SyntheticBzImage()
        synthetic.sysSize = UInt32(synthetic.payload.count / 16 + 1)
        assertThrows(GuestImageError.self, containing: ["truncated", "\(5 * 512 + 4096 + 16)", "\(5 * 512 + 4096)"]) {
            try synthetic.parsed()
        }
        // Cut short anywhere: always an error, never a trap.
        let good = SyntheticBzImage().bytes
        for length in [0x204, 0x206, 0x207, 0x212, 0x239, 0x26B, 5 * 512, 5 * 512 + 4095] {
            assertThrows(GuestImageError.self, containing: ["truncated"]) { try LinuxImage(Array(good.prefix(length))) }
        }
        XCTAssertNoThrow(try LinuxImage(good))
    }

    func testCommandLineTooLong() throws {
        var synthetic = SyntheticBzImage()
        synthetic.commandLineSize = 16
        let image = try synthetic.parsed()
        assertThrows(GuestImageError.self, containing: ["command line", "17 bytes", "at most 16"]) {
            try LinuxBoot(
                kernel: image, initrd: nil, commandLine: String(repeating: "y", count: 17), e820: Self.map128M)
        }
        // Bytes, not characters: "é" is two.
        assertThrows(GuestImageError.self, containing: ["18 bytes"]) {
            try LinuxBoot(kernel: image, initrd: nil, commandLine: String(repeating: "é", count: 9), e820: Self.map128M)
        }
    }

    func testKernelInitSizeDoesNotFitRAM() throws {
        var synthetic = SyntheticBzImage()
        synthetic.initSize = 0x100_0000 // 16 MiB from 16 MiB: RAM to 32 MiB
        let image = try synthetic.parsed()
        XCTAssertNoThrow(try LinuxBoot(kernel: image, initrd: nil, commandLine: "", e820: Self.map(ramEnd: 0x200_0000)))
        let error = assertThrows(
            GuestImageError.self, containing: ["kernel needs RAM up to 0x2000000", "32 MiB", "ends at 0x1fff000", "-m"]
        ) {
            try LinuxBoot(kernel: image, initrd: nil, commandLine: "", e820: Self.map(ramEnd: 0x1FF_F000))
        }
        XCTAssertNotNil(error)
        // RAM that does not reach 1 MiB at all.
        assertThrows(GuestImageError.self, containing: ["does not reach 1 MiB"]) {
            try LinuxBoot(
                kernel: image, initrd: nil, commandLine: "",
                e820: [E820Entry(address: 0, length: 0x9_FC00, type: .ram)])
        }
    }

    func testInitrdDoesNotFit() throws {
        let image = try SyntheticBzImage().parsed() // kernel to 0x1400000 (init_size 4 MiB from 16 MiB)
        let e820 = Self.map(ramEnd: 0x200_0000)
        assertThrows(
            GuestImageError.self, containing: ["initrd", "12288 KiB", "does not fit", "0x1400000", "0x2000000"]
        ) {
            try LinuxBoot(
                kernel: image, initrd: [UInt8](repeating: 0, count: (12 << 20) + 1), commandLine: "", e820: e820)
        }
        // Larger than all of the space below initrd_addr_max.
        var synthetic = SyntheticBzImage()
        synthetic.initrdAddressMax = 0x1FF_FFFF
        assertThrows(GuestImageError.self, containing: ["initrd", "does not fit"]) {
            try LinuxBoot(
                kernel: try synthetic.parsed(), initrd: [UInt8](repeating: 0, count: 0x200_1000), commandLine: "",
                e820: Self.map128M)
        }
    }

    func testKernelAlignmentNotAPowerOfTwo() throws {
        var synthetic = SyntheticBzImage()
        for alignment: UInt32 in [0, 0x30_0000, 0x20_0001] {
            synthetic.kernelAlignment = alignment
            assertThrows(GuestImageError.self, containing: ["kernel_alignment", "not a power of two"]) {
                try synthetic.parsed()
            }
        }
        // A kernel that is not relocatable is not moved: its alignment is not used.
        synthetic.relocatable = 0
        XCTAssertNoThrow(try synthetic.parsed())
    }

    func testTooManyMemoryMapEntries() throws {
        let e820 = (0...LinuxBoot.maxE820Entries).map {
            E820Entry(address: UInt64($0) << 20, length: 1 << 20, type: .ram)
        }
        assertThrows(GuestImageError.self, containing: ["129 entries", "128"]) {
            try LinuxBoot(kernel: try SyntheticBzImage().parsed(), initrd: nil, commandLine: "", e820: e820)
        }
    }

    /// pref_address is a u64 the file gives: one near 2^64 is refused with an
    /// error; `runAddress + init_size` and the message's MiB rounding must not
    /// overflow (they trapped once: Fuzz/Findings/fuzz-linux).
    func testPreferredAddressAtTheTopOfTheAddressSpace() throws {
        for (relocatable, initSize, pref): (UInt8, UInt32, UInt64) in [
            (1, 0x40_0000, 0xFFFF_FFFF_FFE0_0000), // runAddress + init_size overflows
            (0, 0x40_0000, 0xFFFF_FFFF_FFE0_0000),
            (0, 0, 0xFFFF_FFFF_FFFF_F000), // kernelEnd + 0xfffff (the message's MiB) overflows
        ] {
            var synthetic = SyntheticBzImage()
            synthetic.relocatable = relocatable
            synthetic.initSize = initSize
            synthetic.preferredAddress = pref
            let image = try synthetic.parsed()
            assertThrows(GuestImageError.self, containing: ["kernel"]) {
                try LinuxBoot(kernel: image, initrd: nil, commandLine: "", e820: Self.map128M)
            }
        }
    }

    // MARK: - On /dev/kvm

    struct Run {
        let machine: Machine
        let boot: LinuxBoot
        let stop: StopReason
        let registers: Registers
        let special: SpecialRegisters
    }

    func run(
        _ synthetic: SyntheticBzImage, initrd: [UInt8]?, commandLine: String,
        memorySize: UInt64 = 64 << 20
    ) throws -> Run {
        let kvm = try requireKVM()
        let machine = try Machine(memorySize: memorySize, vcpus: 1, irqchip: true, serial: .buffer, kvm: kvm)
        let boot = try machine.bootLinux(kernel: synthetic.bytes, initrd: initrd, commandLine: commandLine)
        let stop = try machine.run(timeout: .seconds(20))
        return Run(
            machine: machine, boot: boot, stop: stop, registers: try machine.vcpu.registers(),
            special: try machine.vcpu.specialRegisters())
    }

    /// The "kernel" enters at load + 0x200 in long mode with RSI = the zero
    /// page, __BOOT_CS/__BOOT_DS loaded, interrupts off, and finds its command
    /// line and initrd through the zero page.
    func testBoots64BitEntryOnKVM() throws {
        let initrd = Array("initrd-bytes".utf8)
        let r = try run(SyntheticBzImage(), initrd: initrd, commandLine: "console=ttyS0 hello")
        guard case .debugExit(let code) = r.stop else { return XCTFail("stopped with \(describe(r.stop))") }
        XCTAssertEqual(code, 0x10, "ESI >> 12: the zero page at 0x10000")
        XCTAssertEqual(r.machine.serial.text, "console=ttyS0 hello|initrd-bytes\n")
        XCTAssertEqual(r.registers.rsi, 0x1_0000)
        XCTAssertEqual(r.registers.rip, 0x10_0200 + SyntheticBzImage.reportingCodeExit, "entered at load + 0x200")
        XCTAssertEqual(r.registers.rflags & 0x200, 0, "interrupts off")
        XCTAssertEqual(r.special.cs.selector, 0x10)
        XCTAssertEqual(r.special.cs.l, 1)
        XCTAssertEqual(r.special.ds.selector, 0x18)
        XCTAssertEqual(r.special.ss.selector, 0x18)
        XCTAssertEqual(r.special.efer & EFER.lma, EFER.lma)
        XCTAssertEqual(r.special.cr0 & ControlRegister.pg, ControlRegister.pg)

        // What the kernel would read: the zero page and command line in guest memory.
        let memory = r.machine.memory
        let zp = try memory.bytes(at: 0x1_0000, count: 4096)
        XCTAssertEqual(zp, try zeroPage(r.boot))
        XCTAssertEqual(zp[0x210], 0xFF)
        // The memory map is SeaBIOS's for this machine.
        let e820 = SeaBIOSMemoryMap(try r.machine.pcMemoryMap()).entries
        XCTAssertEqual(Int(zp[0x1E8]), e820.count)
        XCTAssertEqual(Array(zp[0x2D0..<0x2D0 + 20 * e820.count]), e820.flatMap(\.bytes))
        let ram = try XCTUnwrap(e820.first { $0.type == .ram && $0.address == 0x10_0000 })
        let placed = try XCTUnwrap(r.boot.initrd)
        XCTAssertEqual(placed.lowerBound, (ram.end - UInt64(initrd.count)) & ~0xFFF)
        XCTAssertEqual(try memory.bytes(at: placed.lowerBound, count: initrd.count), initrd)
    }

    /// A kernel without XLF_KERNEL_64 enters at 1 MiB in 32-bit protected mode.
    func testBoots32BitEntryOnKVM() throws {
        var synthetic = SyntheticBzImage()
        synthetic.xloadFlags = 0
        let r = try run(synthetic, initrd: nil, commandLine: "thirty-two")
        guard case .debugExit(let code) = r.stop else { return XCTFail("stopped with \(describe(r.stop))") }
        XCTAssertEqual(code, 0x10)
        XCTAssertEqual(r.machine.serial.text, "thirty-two|\n")
        XCTAssertEqual(r.registers.rsi, 0x1_0000)
        XCTAssertEqual(r.registers.rip, 0x10_0000 + SyntheticBzImage.reportingCodeExit, "entered at 1 MiB")
        XCTAssertEqual(r.special.cs.selector, 0x10)
        XCTAssertEqual(r.special.cs.db, 1, "32-bit code")
        XCTAssertEqual(r.special.ds.selector, 0x18)
        XCTAssertEqual(r.special.efer & EFER.lma, 0)
        XCTAssertEqual(r.special.cr0 & ControlRegister.pe, ControlRegister.pe)
        XCTAssertEqual(r.special.cr0 & ControlRegister.pg, 0, "paging off")
    }

    /// bootLinux refuses what does not fit the machine it was given.
    func testBootLinuxRefusesAKernelLargerThanRAM() throws {
        let kvm = try requireKVM()
        var synthetic = SyntheticBzImage()
        synthetic.initSize = 0x200_0000 // to 48 MiB
        let machine = try Machine(memorySize: 32 << 20, vcpus: 1, irqchip: true, serial: .buffer, kvm: kvm)
        assertThrows(GuestImageError.self, containing: ["kernel needs RAM up to 0x3000000", "-m"]) {
            try machine.bootLinux(kernel: synthetic.bytes, commandLine: "")
        }
    }
}
