import FuzzSupport
import KVMCore

// The Linux bzImage loader (`kvmrun -kernel bzImage -initrd F -append A`):
// `LinuxImage` (setup header) and `LinuxBoot` (zero page, command line,
// initrd placement, entry) on a few memory maps. One input is
//
//   byte 0: memory map (mod `maps.count`)     bytes 1-2: command line length (mod 4096)
//   bytes 3-4: initrd length (× 16)           byte 5: bit 0: an ACPI RSDP address
//   then the command line, and the kernel (the rest).
//
// The whole input is also parsed as a kernel by itself.
//
// Properties: only GuestImageError is thrown; an accepted header is a
// bzImage of protocol 2.06 or later, with a power-of-two alignment when
// relocatable and the kernel after its setup sectors; an accepted boot has
// the kernel at 1 MiB ending inside the RAM entry from 1 MiB, the command
// line at cmd_line_ptr NUL-terminated and within cmdline_size, the zero page
// holding the header, loader type, map and initrd; the initrd page-aligned
// between the kernel's end and min(initrd_addr_max + 1, that RAM's end);
// the entry the header asks for; segments that do not overlap; and, where
// they fit the 8 MiB of guest memory, a load that works.

nonisolated(unsafe) let memory = FuzzMemory.shared(size: 8 << 20)

/// SeaBIOS's map for a PC of `mib` MiB (QEMU's e820 as SeaBIOS reports it).
func seaBIOS(_ mib: UInt64, amd: Bool) -> [E820Entry] {
    let ram: [(start: UInt64, size: UInt64)] =
        mib << 20 > PCLayout.lowMemoryLimit
        ? [(UInt64(0), PCLayout.lowMemoryLimit), (PCLayout.highMemoryStart, (mib << 20) - PCLayout.lowMemoryLimit)]
        : [(UInt64(0), mib << 20)]
    return SeaBIOSMemoryMap(PCMemoryMap(ram: ram, amdHyperTransport: amd)).entries
}

let maps: [[E820Entry]] = [
    seaBIOS(8, amd: false),
    seaBIOS(3, amd: true),
    seaBIOS(32, amd: false),
    seaBIOS(5000, amd: true), // RAM above 4 GiB, 3 GiB below
    [E820Entry(address: 0, length: 0x9_FC00, type: .ram)], // no RAM at 1 MiB
    [
        E820Entry(address: 0, length: 0x9_FC00, type: .ram), // RAM from 1 MiB to 2 MiB
        E820Entry(address: 0x10_0000, length: 0x10_0000, type: .ram),
    ],
    [E820Entry(address: 0, length: 0x2_0000_0000, type: .ram)], // one entry from 0 past 4 GiB
    (0..<LinuxBoot.maxE820Entries).map { i in // the most the zero page holds
        i == 0
            ? E820Entry(address: 0, length: 0x80_0000, type: .ram)
            : E820Entry(address: 0x1_0000_0000 + UInt64(i) << 12, length: 0x1000, type: .reserved)
    },
    (0...LinuxBoot.maxE820Entries).map { E820Entry(address: UInt64($0) << 20, length: 1 << 20, type: .ram) },
]

func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
    (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[o + $1]) << (8 * $1) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLinux(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzReader(data, size)
    // The input as a kernel by itself: the header parse alone.
    do { _ = try LinuxImage(input.bytes) } catch { fuzzExpectedError(error, [GuestImageError.self]) }

    let e820 = maps[Int(input.byte()) % maps.count]
    let commandLineLength = Int(input.u16() % 4096)
    let initrdLength = Int(input.u16()) * 16
    let acpiRSDP: UInt64? = input.byte() & 1 != 0 ? 0xF_5A40 : nil
    let commandLine = String(decoding: input.take(commandLineLength), as: UTF8.self)
    let bytes = input.rest

    let image: LinuxImage
    do {
        image = try LinuxImage(bytes)
    } catch {
        fuzzExpectedError(error, [GuestImageError.self])
        return 0
    }
    fuzzCheck(LinuxImage.isLinux(bytes), "accepted a kernel without HdrS")
    fuzzCheck(image.version >= LinuxImage.oldestProtocol, "accepted protocol \(image.versionText)")
    fuzzCheck(image.loadFlags & LinuxImage.loadedHigh != 0, "accepted a zImage")
    fuzzCheck(
        !image.relocatable || image.kernelAlignment.nonzeroBitCount == 1,
        "accepted kernel_alignment \(hex(image.kernelAlignment))")
    let setupSectors = max(Int(bytes[0x1F1]), 4)
    fuzzCheck(
        image.kernel.startIndex == (setupSectors + 1) * 512 && image.kernel.endIndex == bytes.count,
        "kernel at \(image.kernel.startIndex)..<\(image.kernel.endIndex) of \(bytes.count) bytes")
    fuzzCheck(
        image.header.count == 0x202 + Int(bytes[0x201]) - LinuxImage.headerOffset,
        "header of \(image.header.count) bytes")

    let initrd = initrdLength > 0 ? [UInt8](repeating: 0xA5, count: initrdLength) : nil
    let boot: LinuxBoot
    do {
        boot = try LinuxBoot(kernel: image, initrd: initrd, commandLine: commandLine, e820: e820, acpiRSDP: acpiRSDP)
    } catch {
        fuzzExpectedError(error, [GuestImageError.self])
        return 0
    }
    let line = Array(commandLine.utf8)
    fuzzCheck(
        UInt64(line.count) <= UInt64(image.commandLineSize),
        "command line of \(line.count) bytes > \(image.commandLineSize)")
    fuzzCheck(e820.count <= LinuxBoot.maxE820Entries, "\(e820.count) map entries accepted")
    let low = e820.first { $0.type == .ram && $0.address <= 0x10_0000 && $0.end > 0x10_0000 }
    fuzzCheck(low != nil, "accepted a map without RAM at 1 MiB")
    guard let low else { return 0 }
    let k = boot.kernelRange
    fuzzCheck(
        k.lowerBound == LinuxBoot.kernelAddress && k.upperBound >= k.lowerBound + UInt64(image.kernel.count)
            && k.upperBound <= low.end, "kernel range \(hex(k.lowerBound))–\(hex(k.upperBound)), RAM to \(hex(low.end))"
    )

    let segments = boot.image.segments
    let sorted = segments.sorted { $0.guestPhysical < $1.guestPhysical }
    for (a, b) in zip(sorted, sorted.dropFirst()) {
        fuzzCheck(
            a.end <= b.guestPhysical,
            "segments \(hex(a.guestPhysical))–\(hex(a.end)) and \(hex(b.guestPhysical)) overlap")
    }
    for s in segments {
        fuzzCheck(UInt64(s.bytes.count) == s.memorySize, "segment at \(hex(s.guestPhysical)) sized oddly")
    }
    let kernel = segments.first { $0.guestPhysical == LinuxBoot.kernelAddress }
    fuzzCheck(kernel.map { $0.bytes == image.kernel } ?? false, "no kernel at 1 MiB")
    let cmdline = segments.first { $0.guestPhysical == LinuxBoot.commandLineAddress }
    fuzzCheck(cmdline.map { Array($0.bytes) == line + [0] } ?? false, "no command line at its address")
    guard let page = segments.first(where: { $0.guestPhysical == LinuxBoot.bootParamsAddress }),
        page.bytes.count == 4096
    else {
        fuzzCheck(false, "no zero page")
        return 0
    }
    let zp = Array(page.bytes)
    let written = Set([0x210] + Array(0x218..<0x220) + Array(0x228..<0x22C))
    for (i, byte) in image.header.enumerated() where !written.contains(0x1F1 + i) {
        if 0x1F1 + i >= 0x2D0 { break } // the e820 table follows the header
        fuzzCheck(zp[0x1F1 + i] == byte, "header byte \(hex(0x1F1 + i)) not copied")
    }
    fuzzCheck(zp[0x210] == LinuxBoot.loaderType, "type_of_loader \(zp[0x210])")
    fuzzCheck(u32(zp, 0x228) == UInt32(LinuxBoot.commandLineAddress), "cmd_line_ptr \(hex(u32(zp, 0x228)))")
    fuzzCheck(Int(zp[0x1E8]) == e820.count, "e820_entries \(zp[0x1E8]) for \(e820.count)")
    fuzzCheck(Array(zp[0x2D0..<0x2D0 + 20 * e820.count]) == e820.flatMap(\.bytes), "e820 table differs from the map")

    if let initrd {
        guard let placed = boot.initrd else {
            fuzzCheck(false, "initrd of \(initrd.count) bytes not placed")
            return 0
        }
        let top = min(image.initrdAddressMax, low.end)
        fuzzCheck(
            placed.lowerBound % 4096 == 0 && placed.count == initrd.count && placed.lowerBound >= k.upperBound
                && placed.upperBound <= top,
            "initrd at \(hex(placed.lowerBound))–\(hex(placed.upperBound)), kernel to \(hex(k.upperBound)), top \(hex(top))"
        )
        fuzzCheck(
            placed.lowerBound + 0x1000 + UInt64(initrd.count) > top,
            "initrd at \(hex(placed.lowerBound)) not as high as it goes (\(hex(top)))")
        fuzzCheck(
            u32(zp, 0x218) == UInt32(placed.lowerBound) && u32(zp, 0x21C) == UInt32(initrd.count), "ramdisk fields")
    } else {
        // ramdisk_image/size stay as the file's header has them (zero in every real kernel; QEMU does the same).
        let headerEnd = LinuxImage.headerOffset + image.header.count
        fuzzCheck(
            boot.initrd == nil && (0x218..<0x220).allSatisfy { zp[$0] == ($0 < headerEnd ? bytes[$0] : 0) },
            "an initrd without one")
    }

    let entry = boot.image
    fuzzCheck(entry.arguments.rsi == LinuxBoot.bootParamsAddress, "RSI \(hex(entry.arguments.rsi))")
    if image.has64BitEntry {
        fuzzCheck(entry.entry == 0x10_0200 && entry.mode == .long && entry.selectors == .linuxBoot64, "64-bit entry")
    } else {
        fuzzCheck(
            entry.entry == 0x10_0000 && entry.mode == .protected && entry.selectors == .linuxBoot32, "32-bit entry")
    }

    guard let memory, segments.allSatisfy({ $0.end <= memory.totalSize }) else { return 0 }
    do {
        try entry.load(into: memory)
    } catch {
        fuzzCheck(false, "an accepted Linux boot does not load into guest memory: \(error)")
    }
    return 0
}
