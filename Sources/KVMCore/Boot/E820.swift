/// One entry of an E820 memory map (also the multiboot mmap's payload).
public struct E820Entry: Equatable, Sendable {
    /// E820 types.
    public enum Kind: UInt32, Sendable {
        /// Usable RAM (1).
        case ram = 1
        /// Reserved (2).
        case reserved = 2
        /// ACPI reclaimable (3).
        case acpi = 3
        /// ACPI NVS (4).
        case nvs = 4
        /// Unusable (5).
        case unusable = 5
    }
    /// The range's first byte.
    public var address: UInt64
    /// The range's length.
    public var length: UInt64
    /// What the range is.
    public var type: Kind
    /// The first byte past the range.
    public var end: UInt64 { address + length }

    /// An entry from its parts.
    public init(address: UInt64, length: UInt64, type: Kind) {
        self.address = address
        self.length = length
        self.type = type
    }

    /// 20 bytes: u64 address, u64 length, u32 type (little-endian).
    public var bytes: [UInt8] {
        littleEndianBytes(address) + littleEndianBytes(length) + littleEndianBytes(type.rawValue)
    }
}

/// The memory map QEMU's `-M pc` with KVM builds (its e820 table, which
/// fw_cfg serves as `etc/e820` and from which the firmware answers int 0x15
/// E820), in the order QEMU fills it:
///
/// 1. kvm_arch_init: KVM's identity-map page and TSS, 16 KiB at 0xfeffc000, reserved;
/// 2. pc_memory_init, when the vCPU is AMD (`IS_AMD_CPU`: vendor AuthenticAMD)
///    with at least 40 physical address bits: the HyperTransport range below
///    1 TiB (0xfd00000000, 12 GiB), reserved;
/// 3. RAM below 4 GiB from 0, then RAM from 4 GiB (`PCLayout.ram`).
///
/// QEMU moves RAM above 4 GiB to 1 TiB when, with its 64-bit PCI hole, it
/// would reach the HyperTransport range; `Machine.maxMemorySize` keeps RAM
/// far below that, so RAM here always starts at 4 GiB (a unit test holds
/// the two limits apart).
public struct PCMemoryMap: Equatable, Sendable {
    /// QEMU's table, in its order.
    public let entries: [E820Entry]

    /// AMD's HyperTransport range, reserved on AMD vCPUs (QEMU's AMD_HT_START/AMD_HT_SIZE).
    public static let hyperTransport = E820Entry(address: 0xFD_0000_0000, length: 0x3_0000_0000, type: .reserved)
    /// KVM's identity-map page and TSS pages, reserved by QEMU's kvm_arch_init.
    public static let kvmReservation = E820Entry(
        address: PCLayout.identityMapAddress,
        length: PCLayout.identityMapReservedSize, type: .reserved)

    /// The map of a PC whose RAM is `ram` (guest-physical start and size of each
    /// region) and whose vCPUs do (`amdHyperTransport`) or do not reserve the
    /// HyperTransport range.
    public init(ram: [(start: UInt64, size: UInt64)], amdHyperTransport: Bool) {
        var entries = [Self.kvmReservation]
        if amdHyperTransport { entries.append(Self.hyperTransport) }
        for r in ram.sorted(by: { $0.start < $1.start }) {
            entries.append(E820Entry(address: r.start, length: r.size, type: .ram))
        }
        self.entries = entries
    }

    /// The map QEMU gives a guest with this RAM and these vCPUs (their CPUID:
    /// the vendor and the physical-address width decide the HyperTransport range).
    public init(memory: GuestMemory, cpu: CPUID) {
        self.init(
            ram: memory.regions.map { ($0.guestPhysical, $0.size) },
            amdHyperTransport: Self.reservesHyperTransport(cpu))
    }

    /// QEMU's rule: an AMD vCPU (vendor AuthenticAMD) with 40 or more physical
    /// address bits (CPUID 0x80000008 EAX[7:0]) has the range reserved.
    public static func reservesHyperTransport(_ cpu: CPUID) -> Bool {
        let physicalBits = (cpu[0x8000_0008]?.eax ?? 0) & 0xFF
        return cpu.vendor == "AuthenticAMD" && physicalBits >= 40
    }

    /// The RAM regions, lowest first.
    public var ram: [(start: UInt64, size: UInt64)] {
        entries.filter { $0.type == .ram }.map { ($0.address, $0.length) }
    }

    /// The reservations alone: QEMU's legacy FW_CFG_E820_TABLE.
    public var reservations: [E820Entry] { entries.filter { $0.type != .ram } }
}

/// A sorted, non-overlapping E820 list; a later add wins where it overlaps,
/// and touching entries of one type merge (as SeaBIOS's e820_add does).
struct E820Builder {
    private(set) var entries: [E820Entry] = []

    mutating func add(_ start: UInt64, _ length: UInt64, _ type: E820Entry.Kind) {
        guard length > 0 else { return }
        remove(start, length)
        entries.append(E820Entry(address: start, length: length, type: type))
        entries.sort { $0.address < $1.address }
        var merged: [E820Entry] = []
        for e in entries {
            if let last = merged.last, last.type == e.type, last.end == e.address {
                merged[merged.count - 1].length += e.length
            } else {
                merged.append(e)
            }
        }
        entries = merged
    }

    mutating func remove(_ start: UInt64, _ length: UInt64) {
        let end = start + length
        var out: [E820Entry] = []
        for e in entries {
            if e.end <= start || e.address >= end {
                out.append(e)
                continue
            }
            if e.address < start { out.append(E820Entry(address: e.address, length: start - e.address, type: e.type)) }
            if e.end > end { out.append(E820Entry(address: end, length: e.end - end, type: e.type)) }
        }
        entries = out
    }
}
