import CKVM

extension VCPU {
    /// Real mode as kvmtool starts a flat binary: CS = DS = ES = SS = `segment`,
    /// IP = `ip`, SP = `sp`, interrupts off.
    public func setUpRealMode(segment: UInt16, ip: UInt16, sp: UInt16 = 0x8000) throws {
        var sregs = try specialRegisters()
        for keyPath in [\SpecialRegisters.cs, \.ds, \.es, \.fs, \.gs, \.ss] {
            sregs[keyPath: keyPath].selector = segment
            sregs[keyPath: keyPath].base = UInt64(segment) << 4
        }
        sregs.cr0 &= ~(ControlRegister.pe | ControlRegister.pg)
        sregs.efer = 0
        try setSpecialRegisters(sregs)
        var regs = Registers()
        regs.rip = UInt64(ip)
        regs.rsp = UInt64(sp)
        regs.rbp = UInt64(sp)
        regs.rflags = 0x2
        try setRegisters(regs)
    }

    /// 32-bit protected (optionally paged) or 64-bit long mode with flat segments:
    /// writes the GDT (at `gdt`) and the page tables of `BootLayout` into guest
    /// memory, loads the segment and control registers, and sets RIP = `entry`,
    /// RSP = `stack`.
    public func setUp(
        mode: CPUMode, entry: UInt64, stack: UInt64 = BootLayout.stackTop,
        arguments: EntryArguments = EntryArguments(), gdt: UInt64 = BootLayout.gdt,
        selectors: GDT = .standard
    ) throws {
        guard mode != .real else {
            guard entry < 0x10_0000 else {
                throw ConfigurationError.vcpuState("real-mode entry \(hex(entry)) is above 1 MiB")
            }
            return try setUpRealMode(segment: UInt16(entry >> 4) & 0xF000, ip: UInt16(entry & 0xFFFF))
        }
        let memory = vm.memory
        try selectors.write(to: memory, at: gdt)
        var sregs = try specialRegisters()
        let long = mode == .long
        guard let code = long ? selectors.code64 : selectors.code32 else {
            throw ConfigurationError.vcpuState("this GDT has no \(long ? 64 : 32)-bit code segment")
        }
        sregs.cs = selectors.segment(code)
        for keyPath in [\SpecialRegisters.ds, \.es, \.fs, \.gs, \.ss] {
            sregs[keyPath: keyPath] = selectors.segment(selectors.data)
        }
        sregs.tr = selectors.segment(selectors.tss)
        sregs.gdt.base = gdt
        sregs.gdt.limit = UInt16(selectors.entries.count * 8 - 1)
        sregs.idt.base = BootLayout.idt
        sregs.idt.limit = 0
        sregs.cr0 = ControlRegister.pe | ControlRegister.et | ControlRegister.ne
        sregs.cr4 = 0
        sregs.efer = 0
        switch mode {
        case .paged:
            try PageTables.write32(to: memory)
            sregs.cr3 = BootLayout.pageDirectory32
            sregs.cr4 = ControlRegister.pse
            sregs.cr0 |= ControlRegister.pg | ControlRegister.wp
        case .long:
            try PageTables.write64(to: memory)
            sregs.cr3 = BootLayout.pml4
            sregs.cr4 = ControlRegister.pae | ControlRegister.osfxsr | ControlRegister.osxmmexcpt
            sregs.cr0 |= ControlRegister.pg | ControlRegister.wp | ControlRegister.mp
            sregs.efer = EFER.lme | EFER.lma
        default:
            break
        }
        try setSpecialRegisters(sregs)
        var regs = Registers()
        regs.rip = entry
        regs.rsp = stack
        regs.rflags = 0x2
        regs.rax = arguments.rax
        regs.rbx = arguments.rbx
        regs.rsi = arguments.rsi
        try setRegisters(regs)
    }
}

/// CR0 and CR4 bits the set-up and the nested state validator use.
public enum ControlRegister {
    // CR0
    /// CR0.PE: protected mode.
    public static let pe: UInt64 = 1 << 0
    /// CR0.MP: monitor coprocessor.
    public static let mp: UInt64 = 1 << 1
    /// CR0.ET: extension type (always 1 on modern CPUs).
    public static let et: UInt64 = 1 << 4
    /// CR0.NE: native x87 error reporting.
    public static let ne: UInt64 = 1 << 5
    /// CR0.WP: supervisor writes honour read-only pages.
    public static let wp: UInt64 = 1 << 16
    /// CR0.NW: not write-through.
    public static let nw: UInt64 = 1 << 29
    /// CR0.CD: cache disable.
    public static let cd: UInt64 = 1 << 30
    /// CR0.PG: paging.
    public static let pg: UInt64 = 1 << 31
    // CR4
    /// CR4.PSE: 4 MiB pages in 32-bit paging.
    public static let pse: UInt64 = 1 << 4
    /// CR4.PAE: physical address extension (required for long mode).
    public static let pae: UInt64 = 1 << 5
    /// CR4.OSFXSR: FXSAVE/FXRSTOR and SSE enabled.
    public static let osfxsr: UInt64 = 1 << 9
    /// CR4.OSXMMEXCPT: unmasked SSE exceptions raise #XM.
    public static let osxmmexcpt: UInt64 = 1 << 10
    /// CR4.VMXE: VMX enabled.
    public static let vmxe: UInt64 = 1 << 13
}

/// EFER bits.
public enum EFER {
    /// EFER.SCE: SYSCALL/SYSRET enabled.
    public static let sce: UInt64 = 1 << 0
    /// EFER.LME: long mode enabled.
    public static let lme: UInt64 = 1 << 8
    /// EFER.LMA: long mode active.
    public static let lma: UInt64 = 1 << 10
    /// EFER.NXE: no-execute pages enabled.
    public static let nxe: UInt64 = 1 << 11
    /// EFER.SVME: SVM enabled.
    public static let svme: UInt64 = 1 << 12
}

/// A flat GDT a non-real mode starts with, and which of its selectors the
/// set-up loads.
public struct GDT: Equatable, Sendable {
    /// The descriptors, entry 0 the null descriptor.
    public let entries: [UInt64]
    /// The 32-bit code selector, if the table has one.
    public let code32: UInt16?
    /// The 64-bit code selector, if the table has one.
    public let code64: UInt16?
    /// The data selector (DS, ES, FS, GS, SS).
    public let data: UInt16
    /// The TSS selector.
    public let tss: UInt16

    /// Flat 4 GiB segments: 0x08 code32, 0x10 data, 0x18 code64, 0x20 TSS (`BootLayout`'s selectors).
    public static let standard = GDT(
        entries: [
            0,
            0x00CF_9B00_0000_FFFF, // 0x08 code32: base 0, limit 4 GiB, D=1
            0x00CF_9300_0000_FFFF, // 0x10 data
            0x00AF_9B00_0000_FFFF, // 0x18 code64: L=1
            0x0000_8B00_0000_0067, // 0x20 TSS (busy), base 0, limit 0x67
            0, //      upper half of the 64-bit TSS descriptor
        ], code32: BootLayout.code32, code64: BootLayout.code64, data: BootLayout.data, tss: BootLayout.tss)

    /// The Linux boot protocol's 64-bit entry: __BOOT_CS = 0x10 (64-bit code),
    /// __BOOT_DS = 0x18 (boot.rst, "64-bit Boot Protocol").
    public static let linuxBoot64 = linuxBoot(code: 0x00AF_9B00_0000_FFFF, long: true)
    /// Its 32-bit entry: __BOOT_CS = 0x10 (32-bit code), __BOOT_DS = 0x18.
    public static let linuxBoot32 = linuxBoot(code: 0x00CF_9B00_0000_FFFF, long: false)

    private static func linuxBoot(code: UInt64, long: Bool) -> GDT {
        GDT(
            entries: [
                0,
                0,
                code, // 0x10 __BOOT_CS
                0x00CF_9300_0000_FFFF, // 0x18 __BOOT_DS
                0x0000_8B00_0000_0067, // 0x20 TSS (busy)
                0,
            ], code32: long ? nil : 0x10, code64: long ? 0x10 : nil, data: 0x18, tss: 0x20)
    }

    /// Bytes the table takes in memory.
    public var size: UInt64 { UInt64(entries.count * 8) }

    func write(to memory: GuestMemory, at base: UInt64) throws {
        for (i, entry) in entries.enumerated() {
            try memory.write(entry, at: base + UInt64(i * 8))
        }
    }

    /// The hidden part of a segment register as the CPU loads it from `entries`.
    func segment(_ selector: UInt16) -> Segment {
        let d = entries[Int(selector) / 8]
        var s = Segment()
        s.selector = selector
        s.base = (d >> 16) & 0xFF_FFFF | ((d >> 56) & 0xFF) << 24
        let rawLimit = UInt32((d & 0xFFFF) | ((d >> 48) & 0xF) << 16)
        s.g = UInt8((d >> 55) & 1)
        s.limit = s.g == 1 ? (rawLimit << 12) | 0xFFF : rawLimit
        s.type = UInt8((d >> 40) & 0xF)
        s.s = UInt8((d >> 44) & 1)
        s.dpl = UInt8((d >> 45) & 3)
        s.present = UInt8((d >> 47) & 1)
        s.avl = UInt8((d >> 52) & 1)
        s.l = UInt8((d >> 53) & 1)
        s.db = UInt8((d >> 54) & 1)
        return s
    }
}

/// Identity-mapping page tables.
enum PageTables {
    /// 32-bit: one page directory of 4 MiB pages covering 4 GiB.
    static func write32(to memory: GuestMemory) throws {
        for i in 0..<UInt64(1024) {
            try memory.write(UInt32(truncatingIfNeeded: (i << 22) | 0x83), at: BootLayout.pageDirectory32 + i * 4)
        }
    }

    /// 64-bit: PML4 → PDPT → one page directory of 2 MiB pages per GiB, covering
    /// 4 GiB or all of guest RAM if more.
    static func write64(to memory: GuestMemory) throws {
        let top = memory.regions.map(\.end).max() ?? 0
        let gib = max(4, (top + (1 << 30) - 1) >> 30)
        guard gib <= BootLayout.maxIdentityMappedGiB else {
            throw ConfigurationError.memoryLayout(
                "long-mode set-up identity-maps at most \(BootLayout.maxIdentityMappedGiB) GiB; guest RAM ends at \(top >> 30) GiB"
            )
        }
        try memory.fill(0, count: 0x1000, at: BootLayout.pml4)
        try memory.fill(0, count: 0x1000, at: BootLayout.pdpt)
        try memory.write(BootLayout.pdpt | 0x3, at: BootLayout.pml4)
        for g in 0..<gib {
            let pd = BootLayout.pageDirectories + g * 0x1000
            try memory.write(pd | 0x3, at: BootLayout.pdpt + g * 8)
            for e in 0..<UInt64(512) {
                try memory.write(((g << 30) | (e << 21)) | 0x83, at: pd + e * 8)
            }
        }
    }
}
