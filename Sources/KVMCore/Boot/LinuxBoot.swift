/// A Linux boot laid out in guest memory as the x86 boot protocol asks
/// (Documentation/arch/x86/boot.rst): the protected-mode kernel at 1 MiB, the
/// zero page (`boot_params`) with the setup header, memory map and initrd, the
/// command line, the initrd as high as the kernel allows, and the vCPU at the
/// 64-bit entry point (long mode, identity-mapped, RSI = zero page) — or, for
/// a kernel without one, at the 32-bit entry as QEMU's firmware leaves it.
///
/// The 64-bit entry skips the real-mode set-up code and the 32-bit
/// decompressor stub: on a host whose KVM runs unpaged 32-bit code in its
/// instruction emulator (kvm_pvm), that is what makes Linux boot in
/// milliseconds where QEMU, entering through real mode, stalls.
public struct LinuxBoot: Sendable {
    /// The zero page: above the mode set-up's tables (`BootLayout.systemEnd`), below the command line.
    public static let bootParamsAddress: UInt64 = 0x1_0000
    /// The command line (kvmtool's place), up to the kernel's cmdline_size.
    public static let commandLineAddress: UInt64 = 0x2_0000
    /// Where the protected-mode kernel goes, as on every PC loader.
    public static let kernelAddress: UInt64 = 0x10_0000
    /// The 64-bit entry point's offset from the load address.
    public static let entry64Offset: UInt64 = 0x200
    /// `type_of_loader`: 0xff, "undefined" (kvmrun has no assigned ID).
    public static let loaderType: UInt8 = 0xFF
    /// Entries the zero page's e820_table holds.
    public static let maxE820Entries = 128

    /// The kernel, zero page, command line and initrd, and the entry.
    public let image: BootImage
    /// Where the initrd went, if any.
    public let initrd: Range<UInt64>?
    /// RAM the kernel uses to decompress and start, from its load address.
    public let kernelRange: Range<UInt64>

    /// Lays out `kernel` with `initrd` and `commandLine` for a machine whose
    /// memory map is `e820` (what the zero page tells the kernel). Throws a
    /// `GuestImageError` naming what does not fit.
    public init(
        kernel: LinuxImage, initrd: [UInt8]?, commandLine: String, e820: [E820Entry],
        acpiRSDP: UInt64? = nil
    ) throws {
        let cmdline = Array(commandLine.utf8)
        guard UInt64(cmdline.count) <= UInt64(kernel.commandLineSize) else {
            throw GuestImageError.doesNotFit(
                "the kernel command line is \(cmdline.count) bytes; this kernel takes at most \(kernel.commandLineSize)"
            )
        }
        // Its room ends at the EBDA, whatever cmdline_size a kernel declares.
        guard UInt64(cmdline.count) < SeaBIOSMemoryMap.ebda - Self.commandLineAddress else {
            throw GuestImageError.doesNotFit(
                "the kernel command line is \(cmdline.count) bytes; kvmrun places at most \(SeaBIOSMemoryMap.ebda - Self.commandLineAddress - 1)"
            )
        }
        guard e820.count <= Self.maxE820Entries else {
            throw GuestImageError.doesNotFit(
                "the memory map has \(e820.count) entries; the zero page holds \(Self.maxE820Entries)")
        }
        // Usable RAM from 1 MiB up: the map's RAM entry there (below 4 GiB).
        guard
            let low = e820.first(where: {
                $0.type == .ram && $0.address <= Self.kernelAddress && $0.end > Self.kernelAddress
            })
        else {
            throw GuestImageError.doesNotFit("guest RAM does not reach 1 MiB, where the kernel loads")
        }
        // The decompressor runs at the load address aligned up to kernel_alignment,
        // or at pref_address (LOAD_PHYSICAL_ADDR) if higher, and needs init_size from there.
        let kernelBytes = UInt64(kernel.kernel.count)
        let runAddress: UInt64
        if kernel.relocatable {
            let align = UInt64(kernel.kernelAlignment)
            runAddress = max((Self.kernelAddress + align - 1) & ~(align - 1), kernel.preferredAddress)
        } else {
            runAddress = kernel.preferredAddress
        }
        guard runAddress >= Self.kernelAddress else {
            throw GuestImageError.doesNotFit(
                "the kernel would decompress at \(hex(runAddress)) (its pref_address), below 1 MiB, over the boot structures"
            )
        }
        let (runEnd, overflow) = runAddress.addingReportingOverflow(kernel.initSize)
        guard !overflow else {
            throw GuestImageError.doesNotFit(
                "the kernel's init_size \(hex(kernel.initSize)) from \(hex(runAddress)) (its pref_address) runs past the end of the address space"
            )
        }
        let kernelEnd = max(Self.kernelAddress + kernelBytes, runEnd)
        guard kernelEnd <= low.end else {
            throw GuestImageError.doesNotFit(
                "the kernel needs RAM up to \(hex(kernelEnd)) (\((kernelEnd >> 20) + (kernelEnd & 0xFFFFF == 0 ? 0 : 1)) MiB: init_size \(kernel.initSize >> 10) KiB from \(hex(runAddress))); guest RAM from 1 MiB ends at \(hex(low.end)) — give more memory with -m"
            )
        }
        kernelRange = Self.kernelAddress..<kernelEnd

        var zeroPage = [UInt8](repeating: 0, count: 4096)
        func put<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
            zeroPage.replaceSubrange(offset..<offset + MemoryLayout<T>.size, with: littleEndianBytes(value))
        }
        zeroPage.replaceSubrange(
            LinuxImage.headerOffset..<LinuxImage.headerOffset + kernel.header.count, with: kernel.header)
        put(Self.loaderType, 0x210)
        put(UInt32(Self.commandLineAddress), 0x228)
        if let acpiRSDP, kernel.version >= 0x020E { put(acpiRSDP, 0x070) }
        put(UInt8(e820.count), 0x1E8)
        for (i, entry) in e820.enumerated() {
            zeroPage.replaceSubrange(0x2D0 + i * 20..<0x2D0 + (i + 1) * 20, with: entry.bytes)
        }

        var segments = [
            BootImage.Segment(guestPhysical: Self.kernelAddress, bytes: kernel.kernel, memorySize: kernelBytes),
            BootImage.Segment(
                guestPhysical: Self.commandLineAddress, bytes: (cmdline + [0])[...],
                memorySize: UInt64(cmdline.count + 1)),
        ]
        if let initrd, !initrd.isEmpty {
            // As high as initrd_addr_max and usable RAM allow, page-aligned, clear of the kernel (QEMU's rule).
            let size = UInt64(initrd.count)
            let top = min(kernel.initrdAddressMax, low.end)
            guard size <= top, (top - size) & ~0xFFF >= kernelEnd else {
                throw GuestImageError.doesNotFit(
                    "the initrd (\(size >> 10) KiB) does not fit between the kernel's end \(hex(kernelEnd)) and \(hex(top)) — give more memory with -m"
                )
            }
            let address = (top - size) & ~0xFFF
            put(UInt32(address), 0x218)
            put(UInt32(size), 0x21C)
            segments.append(BootImage.Segment(guestPhysical: address, bytes: initrd[...], memorySize: size))
            self.initrd = address..<address + size
        } else {
            self.initrd = nil
        }
        segments.append(
            BootImage.Segment(guestPhysical: Self.bootParamsAddress, bytes: zeroPage[...], memorySize: 4096))

        let arguments = EntryArguments(rsi: Self.bootParamsAddress)
        image =
            kernel.has64BitEntry
            ? BootImage(
                segments: segments, entry: Self.kernelAddress + Self.entry64Offset, mode: .long,
                arguments: arguments, selectors: .linuxBoot64)
            : BootImage(
                segments: segments, entry: Self.kernelAddress, mode: .protected,
                arguments: arguments, selectors: .linuxBoot32)
    }
}
