import KVMCore

/// A minimal bzImage built field by field as Documentation/arch/x86/boot.rst
/// lays the setup header out: boot sector and setup sectors, then the
/// protected-mode kernel (`payload`). Every field the loader reads can be set.
package struct SyntheticBzImage {
    package var setupSectors: UInt8 = 4
    /// Header ends at 0x202 + jump (0x6a: 0x26c, as protocol 2.15 kernels).
    package var jump: UInt8 = 0x6A
    package var magic: UInt32 = LinuxImage.headerMagic
    package var version: UInt16 = 0x020F
    package var loadFlags: UInt8 = LinuxImage.loadedHigh
    package var code32Start: UInt32 = 0x10_0000
    package var initrdAddressMax: UInt32 = 0x7FFF_FFFF
    package var kernelAlignment: UInt32 = 0x20_0000
    package var relocatable: UInt8 = 1
    package var xloadFlags: UInt16 = LinuxImage.kernel64
    package var commandLineSize: UInt32 = 2047
    package var preferredAddress: UInt64 = 0x100_0000
    package var initSize: UInt32 = 0x40_0000
    /// `syssize` in 16-byte units; nil: the payload's length, rounded up.
    package var sysSize: UInt32?
    /// The first bytes of the file (the boot sector); zeros by default.
    package var bootSector: [UInt8] = []
    /// The protected-mode kernel; by default `reportingPayload`.
    package var payload: [UInt8] = SyntheticBzImage.reportingPayload

    /// The code at the 32-bit entry (payload offset 0) and at the 64-bit
    /// entry (0x200): the same bytes decode alike in both modes. It prints
    /// the command line (cmd_line_ptr, 0x228 of the zero page in RSI), "|",
    /// the initrd (ramdisk_image/ramdisk_size, 0x218/0x21c), "\n" on COM1,
    /// then writes ESI >> 12 to isa-debug-exit (0xf4).
    package static let reportingCode: [UInt8] = [
        0xBA, 0xF8, 0x03, 0x00, 0x00, // mov $0x3f8,%edx
        0x8B, 0x8E, 0x28, 0x02, 0x00, 0x00, // mov 0x228(%rsi),%ecx
        0x0F, 0xB6, 0x01, // 1: movzbl (%rcx),%eax
        0x84, 0xC0, // test %al,%al
        0x74, 0x05, // je 2f
        0xEE, // out %al,(%dx)
        0xFF, 0xC1, // inc %ecx
        0xEB, 0xF4, // jmp 1b
        0xB0, 0x7C, // 2: mov $'|',%al
        0xEE, // out %al,(%dx)
        0x8B, 0x8E, 0x18, 0x02, 0x00, 0x00, // mov 0x218(%rsi),%ecx
        0x8B, 0xBE, 0x1C, 0x02, 0x00, 0x00, // mov 0x21c(%rsi),%edi
        0x85, 0xFF, // 3: test %edi,%edi
        0x74, 0x0A, // je 4f
        0x0F, 0xB6, 0x01, // movzbl (%rcx),%eax
        0xEE, // out %al,(%dx)
        0xFF, 0xC1, // inc %ecx
        0xFF, 0xCF, // dec %edi
        0xEB, 0xF2, // jmp 3b
        0xB0, 0x0A, // 4: mov $'\n',%al
        0xEE, // out %al,(%dx)
        0x89, 0xF0, // mov %esi,%eax
        0xC1, 0xE8, 0x0C, // shr $12,%eax
        0xE7, 0xF4, // out %eax,$0xf4
        0xF4, // hlt
    ]
    /// Offset of the instruction after `out %eax,$0xf4` in `reportingCode`.
    package static let reportingCodeExit: UInt64 = 0x3E

    /// 4 KiB: the code at 0 and at 0x200, 0xcc (int3) elsewhere.
    package static var reportingPayload: [UInt8] {
        var p = [UInt8](repeating: 0xCC, count: 4096)
        p.replaceSubrange(0..<reportingCode.count, with: reportingCode)
        p.replaceSubrange(0x200..<0x200 + reportingCode.count, with: reportingCode)
        return p
    }

    /// Where the payload starts in the file.
    package var kernelOffset: Int { (Int(max(setupSectors, 4)) + 1) * 512 }

    package var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: kernelOffset)
        b.replaceSubrange(0..<bootSector.count, with: bootSector)
        func put<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
            for i in 0..<MemoryLayout<T>.size { b[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        put(setupSectors, 0x1F1)
        put(sysSize ?? UInt32((payload.count + 15) / 16), 0x1F4)
        put(UInt16(0xFFFF), 0x1FA) // vid_mode: "normal"
        put(UInt16(0xAA55), 0x1FE) // boot_flag
        put(UInt8(0xEB), 0x200) // jmp short
        put(jump, 0x201)
        put(magic, 0x202)
        put(version, 0x206)
        put(UInt16(0x1234), 0x20E) // kernel_version (a pointer, any value)
        put(loadFlags, 0x211)
        put(UInt16(0x8000), 0x212) // setup_move_size
        put(code32Start, 0x214)
        put(initrdAddressMax, 0x22C)
        put(kernelAlignment, 0x230)
        put(relocatable, 0x234)
        put(UInt8(21), 0x235) // min_alignment (2 MiB)
        put(xloadFlags, 0x236)
        put(commandLineSize, 0x238)
        put(UInt32(0x5A5A_5A5A), 0x248) // payload_offset: a pattern the zero page must keep
        put(UInt32(0x0000_A5A5), 0x24C) // payload_length
        put(preferredAddress, 0x258)
        put(initSize, 0x260)
        put(UInt32(0x190), 0x264) // handover_offset
        put(UInt32(0xC0DE), 0x268) // kernel_info_offset
        return b + payload + [UInt8](repeating: 0, count: (16 - payload.count % 16) % 16)
    }

    package init() {}

    /// A kernel that wants 1 MiB at 1 MiB (so it runs at 2 MiB, its
    /// alignment): it boots in a few MiB of guest RAM.
    package static var small: SyntheticBzImage {
        var image = SyntheticBzImage()
        image.preferredAddress = 0x10_0000
        image.initSize = 0x10_0000
        return image
    }

    package func parsed() throws -> LinuxImage {
        try LinuxImage(bytes)
    }
}
