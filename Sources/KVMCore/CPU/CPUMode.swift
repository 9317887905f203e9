/// The x86 modes a guest can start in.
public enum CPUMode: String, CaseIterable, Sendable {
    /// 16-bit real mode.
    case real
    /// 32-bit protected mode, flat segments, paging off.
    case protected
    /// 32-bit protected mode with paging (4 MiB pages, identity map of 4 GiB).
    case paged
    /// 64-bit long mode (2 MiB pages, identity map of at least 4 GiB).
    case long
}

/// Guest-physical addresses of the structures mode set-up writes (Docs/PROTOCOL.md).
public enum BootLayout {
    /// The GDT.
    public static let gdt: UInt64 = 0x500
    /// The IDT (empty: any exception triple-faults).
    public static let idt: UInt64 = 0x1000
    /// The 32-bit page directory (4 MiB pages).
    public static let pageDirectory32: UInt64 = 0x2000
    /// The PML4.
    public static let pml4: UInt64 = 0x3000
    /// The PDPT.
    public static let pdpt: UInt64 = 0x4000
    /// Page directories for long mode, one per GiB, up to `systemEnd`.
    public static let pageDirectories: UInt64 = 0x5000
    /// Everything below this (from `gdt`) belongs to the set-up in non-real modes.
    public static let systemEnd: UInt64 = 0x10000
    /// The initial stack pointer.
    public static let stackTop: UInt64 = 0x80000
    /// Most GiB the long-mode identity map covers (one page directory each).
    public static var maxIdentityMappedGiB: UInt64 { (systemEnd - pageDirectories) / 0x1000 }

    /// Selectors in the set-up GDT.
    public static let code32: UInt16 = 0x08
    /// The data selector.
    public static let data: UInt16 = 0x10
    /// The 64-bit code selector.
    public static let code64: UInt16 = 0x18
    /// The TSS selector.
    public static let tss: UInt16 = 0x20
}
