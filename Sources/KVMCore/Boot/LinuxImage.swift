/// A Linux x86 kernel image (bzImage) and its setup header, read and checked
/// as the kernel's boot protocol describes them (Documentation/arch/x86/boot.rst).
/// Only the fields kvmrun uses are named; the whole header travels into
/// `boot_params` as the protocol asks.
public struct LinuxImage: Sendable {
    /// "HdrS" at 0x202.
    public static let headerMagic: UInt32 = 0x5372_6448
    /// The oldest protocol accepted: 2.06 gives cmdline_size, and every kernel
    /// since 2.6.22 (2007) speaks it.
    public static let oldestProtocol: UInt16 = 0x0206
    /// Where the setup header starts in the file and in `boot_params`.
    public static let headerOffset = 0x1F1

    /// The bytes of the setup header (0x1f1 up to the end its jump gives).
    public let header: [UInt8]
    /// Protocol version, e.g. 0x020f for 2.15.
    public let version: UInt16
    /// loadflags.
    public let loadFlags: UInt8
    /// code32_start: where the protected-mode kernel loads.
    public let code32Start: UInt32
    /// Highest address the initrd may end at, plus one.
    public let initrdAddressMax: UInt64
    /// kernel_alignment (a power of two).
    public let kernelAlignment: UInt32
    /// relocatable_kernel.
    public let relocatable: Bool
    /// xloadflags.
    public let xloadFlags: UInt16
    /// Longest command line, without its NUL.
    public let commandLineSize: UInt32
    /// pref_address: where the kernel prefers to run.
    public let preferredAddress: UInt64
    /// Memory the kernel needs from its (aligned) load address to decompress and start.
    public let initSize: UInt64
    /// The protected-mode kernel: everything after the setup sectors.
    public let kernel: ArraySlice<UInt8>

    /// xloadflags bit 0: the kernel has a 64-bit entry point at load + 0x200.
    public static let kernel64 = UInt16(1)
    /// loadflags bit 0: a bzImage, loaded at 1 MiB (not a zImage at 0x10000).
    public static let loadedHigh = UInt8(1)

    /// Whether the kernel has a 64-bit entry point.
    public var has64BitEntry: Bool { xloadFlags & Self.kernel64 != 0 }
    /// "2.15" for 0x020f: the minor version is the low byte, in decimal.
    public var versionText: String { Self.protocolText(version) }

    static func protocolText(_ v: UInt16) -> String {
        let minor = v & 0xFF
        return "\(v >> 8).\(minor < 10 ? "0" : "")\(minor)"
    }

    /// Whether `bytes` carry a setup header (a bzImage or zImage); says nothing of its validity.
    public static func isLinux(_ bytes: [UInt8]) -> Bool {
        (try? ByteReader(bytes, what: "").read(UInt32.self, at: 0x202)) == headerMagic
    }

    /// Reads and checks the setup header: magic, protocol version, a bzImage
    /// (not a zImage), a relocatable kernel's alignment, and a file as long as
    /// its setup sectors plus `syssize` say.
    public init(_ bytes: [UInt8]) throws {
        let r = ByteReader(bytes, what: "the bzImage")
        guard try r.read(UInt32.self, at: 0x202) == Self.headerMagic else {
            throw GuestImageError.unsupportedFormat("not a Linux kernel: no \"HdrS\" setup header at 0x202")
        }
        version = try r.read(UInt16.self, at: 0x206)
        guard version >= Self.oldestProtocol else {
            throw GuestImageError.unsupportedFormat(
                "Linux boot protocol \(Self.protocolText(version)) is too old: kvmrun boots 2.06 and later")
        }
        let setupSectors = max(Int(try r.read(UInt8.self, at: 0x1F1)), 4)
        let headerEnd = 0x202 + Int(try r.read(UInt8.self, at: 0x201))
        header = Array(try r.slice(at: UInt64(Self.headerOffset), count: UInt64(headerEnd - Self.headerOffset)))
        loadFlags = try r.read(UInt8.self, at: 0x211)
        guard loadFlags & Self.loadedHigh != 0 else {
            throw GuestImageError.unsupportedFormat(
                "a zImage (loaded at 0x10000) is not supported: kvmrun boots bzImages")
        }
        code32Start = try r.read(UInt32.self, at: 0x214)
        initrdAddressMax = UInt64(try r.read(UInt32.self, at: 0x22C)) + 1
        kernelAlignment = try r.read(UInt32.self, at: 0x230)
        relocatable = try r.read(UInt8.self, at: 0x234) != 0
        xloadFlags = version >= 0x020C ? try r.read(UInt16.self, at: 0x236) : 0
        commandLineSize = try r.read(UInt32.self, at: 0x238)
        preferredAddress = version >= 0x020A ? try r.read(UInt64.self, at: 0x258) : 0x10_0000
        initSize = version >= 0x020A ? UInt64(try r.read(UInt32.self, at: 0x260)) : 0
        if relocatable {
            guard kernelAlignment != 0, kernelAlignment & (kernelAlignment - 1) == 0 else {
                throw GuestImageError.malformed(
                    "the setup header's kernel_alignment \(hex(UInt64(kernelAlignment))) is not a power of two")
            }
        }
        let kernelOffset = UInt64(setupSectors + 1) * 512
        let sysSize = UInt64(try r.read(UInt32.self, at: 0x1F4)) * 16
        guard UInt64(bytes.count) >= kernelOffset + sysSize else {
            throw GuestImageError.truncated(
                "the bzImage is truncated: its header says \(kernelOffset + sysSize) bytes, the file has \(bytes.count)"
            )
        }
        kernel = bytes[Int(kernelOffset)...]
    }
}
