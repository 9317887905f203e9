/// Where things sit in a PC's guest-physical address space, as QEMU's `-M pc`
/// with KVM lays it out (so a multiboot memory map and fw_cfg agree with QEMU's).
public enum PCLayout {
    /// Below 3.5 GiB of RAM, all of it sits below 4 GiB ...
    public static let maxRAMBelow4G: UInt64 = 0xE000_0000
    /// ... from 3.5 GiB, RAM below 4 GiB stops at 3 GiB and the rest is above 4 GiB
    /// (pc_init1's gigabyte alignment); the gap is the 32-bit PCI hole.
    public static let lowMemoryLimit: UInt64 = 3 << 30
    /// Where RAM above the PCI hole starts.
    public static let highMemoryStart: UInt64 = 4 << 30
    /// QEMU's kvm_arch_init: the EPT identity-map page for KVM_SET_IDENTITY_MAP_ADDR,
    /// then the three pages of KVM_SET_TSS_ADDR; 16 KiB reserved in the memory map.
    public static let identityMapAddress: UInt64 = 0xFEFF_C000
    /// KVM_SET_TSS_ADDR's three pages.
    public static let tssAddress: UInt64 = 0xFEFF_D000
    /// The bytes reserved for the identity-map page and the TSS.
    public static let identityMapReservedSize: UInt64 = 0x4000

    /// How `size` bytes of RAM split: (below 4 GiB, from 4 GiB).
    public static func ramSplit(_ size: UInt64) -> (low: UInt64, high: UInt64) {
        size >= maxRAMBelow4G ? (lowMemoryLimit, size - lowMemoryLimit) : (size, 0)
    }

    /// Where `size` bytes of RAM go: the low part from 0, the rest from 4 GiB.
    public static func ram(size: UInt64) -> [(guestPhysical: UInt64, size: UInt64)] {
        let (low, high) = ramSplit(size)
        return high > 0 ? [(UInt64(0), low), (highMemoryStart, high)] : [(UInt64(0), low)]
    }
}
