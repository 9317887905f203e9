/// The E820 map SeaBIOS reports on QEMU 7.2 `-M pc` with KVM: what a PC
/// `-kernel` boot (Linux's boot_params, multiboot's mmap) hands the kernel.
public struct SeaBIOSMemoryMap: Equatable, Sendable {
    /// Where SeaBIOS's own tables go at the top of RAM below 4 GiB (reserved).
    public static let highTableSize: UInt64 = 0x2_0000
    /// SeaBIOS's extended BIOS data area.
    public static let ebda: UInt64 = 0x9_FC00
    /// The BIOS at the top of 4 GiB, reserved by SeaBIOS.
    public static let biosHigh: UInt64 = 0xFFFC_0000

    /// The map, sorted by address.
    public let entries: [E820Entry]
    /// KiB of conventional memory: int 0x12's answer (its 1 KiB EBDA at the top).
    public let conventionalKiB: UInt32

    /// SeaBIOS's map for QEMU's map `qemu`: its RAM from 0 with the EBDA
    /// (0x9fc00–0xa0000) and BIOS (0xf0000–0x100000) reserved and nothing in
    /// 0xa0000–0xf0000, SeaBIOS's 128 KiB of tables at the top of RAM below
    /// 4 GiB reserved, QEMU's reservations (KVM's identity map at 0xfeffc000;
    /// on AMD vCPUs the HyperTransport range), the high BIOS (0xfffc0000)
    /// reserved, RAM above 4 GiB; sorted.
    public init(_ qemu: PCMemoryMap) {
        var map = E820Builder()
        for r in qemu.ram { map.add(r.start, r.size, .ram) }
        for e in qemu.reservations { map.add(e.address, e.length, e.type) }
        map.add(Self.biosHigh, 0x4_0000, .reserved)
        map.remove(0xA_0000, 0xF_0000 - 0xA_0000)
        map.add(0xF_0000, 0x1_0000, .reserved)
        if let top = map.entries.last(where: { $0.type == .ram && $0.end <= 0xFFFF_FFFF && $0.end >= 0x10_0000 }),
            top.end - Self.highTableSize >= max(top.address, 0x10_0000)
        {
            map.add(top.end - Self.highTableSize, Self.highTableSize, .reserved)
        }
        let lowRAM = map.entries.first { $0.type == .ram && $0.address == 0 }?.end ?? 0
        if lowRAM >= 0xA_0000 { map.add(Self.ebda, 0xA_0000 - Self.ebda, .reserved) }
        entries = map.entries
        conventionalKiB = lowRAM >= 0xA_0000 ? UInt32(Self.ebda >> 10) : UInt32(lowRAM >> 10)
    }
}
