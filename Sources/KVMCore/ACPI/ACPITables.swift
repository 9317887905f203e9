/// The ACPI tables of QEMU's `-M pc` as a guest kernel booted directly (no
/// firmware) needs them: an RSDP (revision 2) pointing at an RSDT and an XSDT,
/// which list the FADT, the MADT and the WAET; the FADT points at the FACS and
/// the DSDT. QEMU's HPET table is left out: kvmrun has no HPET (KVM has none
/// in the kernel), as Firecracker has none.
///
/// The contents follow QEMU (hw/i386/acpi-build.c `init_common_fadt_data`,
/// hw/acpi/aml-build.c `build_fadt`/`build_facs`, hw/i386/acpi-common.c
/// `build_madt`) with two differences: the FADT is revision 3 with a reset
/// register (QEMU's pc writes revision 1, for Windows 2000), and SMI_CMD is 0,
/// so the OS finds the machine already in ACPI mode (`ACPIPowerManagement`'s
/// PM1 control reads SCI_EN set).
public struct ACPITables: Sendable {
    /// The vCPUs: APIC IDs and ACPI processor UIDs 0..<cpus.
    public let cpus: Int

    /// The most vCPUs: the MADT's Processor Local APIC entry holds an 8-bit
    /// APIC ID and 0xff means "all processors" (x2APIC entries would be needed).
    public static let maxCPUs = 255
    /// The local APIC's MMIO address (the PC default, QEMU's APIC_DEFAULT_ADDRESS).
    public static let localAPICAddress: UInt32 = 0xFEE0_0000
    /// The IOAPIC's MMIO address (QEMU's IO_APIC_DEFAULT_ADDRESS, KVM's in-kernel IOAPIC).
    public static let ioAPICAddress: UInt32 = 0xFEC0_0000
    /// QEMU's ACPI_BUILD_IOAPIC_ID: 0, which KVM's in-kernel IOAPIC also resets to.
    public static let ioAPICID: UInt8 = 0

    /// QEMU pc's tables for `cpus` vCPUs (APIC IDs 0..<cpus), the IOAPIC (ID 0)
    /// at 0xfec00000 with GSI base 0. Throws `ConfigurationError` for fewer
    /// than 1 or more than 255 vCPUs.
    public init(cpus: Int) throws {
        guard (1...Self.maxCPUs).contains(cpus) else {
            throw ConfigurationError.vcpuCount(
                "\(cpus) vCPUs: the ACPI tables describe 1 to \(Self.maxCPUs) (8-bit APIC IDs)")
        }
        self.cpus = cpus
    }

    /// The RSDP (36 bytes, revision 2) for tables placed at `tablesAddress`,
    /// and the tables' bytes (at most `ACPILayout.tablesMaxSize`). The FACS
    /// comes first, 64-byte aligned (ACPI 6.5 §5.2.10), then the DSDT, FADT,
    /// MADT, RSDT and XSDT, each 16-byte aligned; alignment is of the guest
    /// address, so an unaligned `tablesAddress` starts with padding. The
    /// tables must lie below 4 GiB (the RSDT and FADT hold 32-bit addresses),
    /// which `write(into:tablesAddress:)` checks.
    public func build(tablesAddress: UInt64) -> (rsdp: [UInt8], tables: [UInt8]) {
        var area = TableArea(base: tablesAddress)
        let facs = area.append(Self.facs(), alignment: 64)
        let dsdt = area.append(Self.dsdt().bytes, alignment: 16)
        let fadt = area.append(Self.fadt(facs: facs, dsdt: dsdt, cpus: cpus).bytes, alignment: 16)
        let madt = area.append(Self.madt(cpus: cpus).bytes, alignment: 16)
        let waet = area.append(Self.waet().bytes, alignment: 16)
        let rsdt = area.append(Self.rsdt([fadt, madt, waet]).bytes, alignment: 16)
        let xsdt = area.append(Self.xsdt([fadt, madt, waet]).bytes, alignment: 16)
        return (Self.rsdp(rsdt: rsdt, xsdt: xsdt), area.bytes)
    }

    /// Writes the RSDP at `ACPILayout.rsdpAddress` and the tables at
    /// `tablesAddress`. Throws `ConfigurationError`, having written nothing,
    /// when the tables would reach past 4 GiB, overlap the RSDP, or either
    /// lies outside guest RAM. The caller keeps the guest off both ranges
    /// (the E820 map marks them reserved or ACPI).
    public func write(into memory: GuestMemory, tablesAddress: UInt64) throws {
        let (rsdp, tables) = build(tablesAddress: tablesAddress)
        let size = UInt64(tables.count)
        guard tablesAddress <= (1 << 32) - size else {
            throw ConfigurationError.memoryLayout(
                "ACPI tables at \(hex(tablesAddress)) (\(size) bytes) must end below 4 GiB: the RSDT and FADT hold 32-bit addresses"
            )
        }
        let rsdpStart = ACPILayout.rsdpAddress
        if tablesAddress < rsdpStart + UInt64(rsdp.count) && rsdpStart < tablesAddress + size {
            throw ConfigurationError.memoryLayout(
                "ACPI tables at \(hex(tablesAddress))–\(hex(tablesAddress + size)) overlap the RSDP at \(hex(rsdpStart))"
            )
        }
        for (name, start, count) in [("tables", tablesAddress, size), ("RSDP", rsdpStart, UInt64(rsdp.count))]
        where memory.region(containing: start, count: count) == nil {
            throw ConfigurationError.memoryLayout(
                "ACPI \(name) at \(hex(start))–\(hex(start + count)): not in guest RAM")
        }
        try memory.write(tables, at: tablesAddress)
        try memory.write(rsdp, at: rsdpStart)
    }
}

/// The tables' area as it fills: each table placed at the next guest address
/// with the alignment asked for.
private struct TableArea {
    let base: UInt64
    var bytes: [UInt8] = []

    /// Appends `table` and returns its guest-physical address.
    mutating func append(_ table: [UInt8], alignment: UInt64) -> UInt64 {
        let misalignment = (base &+ UInt64(bytes.count)) % alignment
        if misalignment != 0 { bytes += [UInt8](repeating: 0, count: Int(alignment - misalignment)) }
        let address = base &+ UInt64(bytes.count)
        bytes += table
        return address
    }
}

extension ACPITables {
    /// RSDP (ACPI 6.5 §5.2.5.3), revision 2: the checksum covers the first 20
    /// bytes (the ACPI 1.0 structure), the extended checksum all 36.
    static func rsdp(rsdt: UInt64, xsdt: UInt64) -> [UInt8] {
        var out = Array("RSD PTR ".utf8) + [0] + acpiASCII(ACPIOEM.id, width: 6) + [2]
        out += littleEndianBytes(UInt32(truncatingIfNeeded: rsdt))
        out += littleEndianBytes(UInt32(36)) + littleEndianBytes(xsdt) + [0, 0, 0, 0]
        out[8] = acpiChecksum(out[0..<20])
        out[32] = acpiChecksum(out)
        return out
    }

    /// RSDT (§5.2.7): 32-bit pointers to the other tables.
    static func rsdt(_ tables: [UInt64]) -> ACPITable {
        ACPITable(
            signature: "RSDT", revision: 1,
            body: tables.flatMap { littleEndianBytes(UInt32(truncatingIfNeeded: $0)) })
    }

    /// XSDT (§5.2.8): the same pointers, 64-bit. Linux uses it when the RSDP
    /// (revision 2) gives its address.
    static func xsdt(_ tables: [UInt64]) -> ACPITable {
        ACPITable(signature: "XSDT", revision: 1, body: tables.flatMap { littleEndianBytes($0) })
    }

    /// WAET (Windows ACPI Emulated devices table), as QEMU's `build_waet`:
    /// the PM timer is good (one read gives a right value), so an OS need not
    /// read it repeatedly. QEMU's pc lists it; so does kvmrun.
    static func waet() -> ACPITable {
        ACPITable(signature: "WAET", revision: 1, body: littleEndianBytes(UInt32(1 << 1)))
    }

    /// FACS (§5.2.10): 64 bytes, no checksum; all zero after the length, as
    /// QEMU's `build_facs` (no global lock, no waking vector yet, version 0).
    static func facs() -> [UInt8] {
        Array("FACS".utf8) + littleEndianBytes(UInt32(64)) + [UInt8](repeating: 0, count: 56)
    }

    /// DSDT (§5.2.11.1): the sleep states QEMU piix declares in the root scope,
    /// Name (_S3, Package (4) {1, 1, 0, 0}) and Name (_S5, Package (4) {0, 0, 0, 0}):
    /// SLP_TYPa, SLP_TYPb (no PM1b), two reserved (§7.4.2). Revision 1 (32-bit
    /// AML integers), as QEMU's.
    static func dsdt() -> ACPITable {
        func sleepState(_ name: String, _ type: UInt8) -> [UInt8] {
            AML.name(
                name,
                AML.package([
                    AML.integer(UInt64(type)), AML.integer(UInt64(type)),
                    AML.integer(0), AML.integer(0),
                ]))
        }
        return ACPITable(
            signature: "DSDT", revision: 1,
            body: sleepState("_S3", ACPILayout.sleepTypeS3) + sleepState("_S5", ACPILayout.sleepTypeS5))
    }
}

extension ACPITables {
    /// FADT flags (ACPI 6.5 §5.2.9, Table 5.10).
    enum FADTFlag {
        static let wbinvd: UInt32 = 1 << 0
        static let procC1: UInt32 = 1 << 2
        /// No fixed-feature sleep button (the power button is fixed-feature: bit 4 clear).
        static let sleepButton: UInt32 = 1 << 5
        static let rtcS4: UInt32 = 1 << 7
        static let resetRegisterSupported: UInt32 = 1 << 10
        static let usePlatformClock: UInt32 = 1 << 15
        static let forceAPICClusterModel: UInt32 = 1 << 18
    }

    /// IA-PC boot architecture flags (§5.2.9.3, Table 5.11).
    enum BootArch {
        static let legacyDevices: UInt16 = 1 << 0
        /// An 8042 at ports 0x60/0x64: without it Linux (FADT revision 2 or
        /// later) marks the i8042 absent and never probes it.
        static let i8042: UInt16 = 1 << 1
    }

    /// The FADT's flags: QEMU's `init_common_fadt_data` (cluster model when
    /// more than 8 CPUs, the flat logical mode's limit) plus the reset register.
    static func fadtFlags(cpus: Int) -> UInt32 {
        FADTFlag.wbinvd | FADTFlag.procC1 | FADTFlag.sleepButton | FADTFlag.rtcS4
            | FADTFlag.resetRegisterSupported | FADTFlag.usePlatformClock
            | (cpus > 8 ? FADTFlag.forceAPICClusterModel : 0)
    }

    /// FADT (signature "FACP", §5.2.9), revision 3: 244 bytes, laid out as
    /// QEMU's `build_fadt` does for revision 3 (its q35). Every register block
    /// is given twice, the 32-bit field and length and the X_ Generic Address
    /// with the same address and bit width = 8 × length, which is what
    /// ACPICA's `acpi_tb_convert_fadt` checks ("32/64X address/length
    /// mismatch"). The DSDT is in both DSDT and X_DSDT (equal, so
    /// `acpi_tb_select_address` is quiet); the FACS only in FIRMWARE_CTRL, with
    /// X_FIRMWARE_CTRL 0, as QEMU: the spec allows one of the two.
    static func fadt(facs: UInt64, dsdt: UInt64, cpus: Int) -> ACPITable {
        let pm1aEvent = GenericAddress.io(ACPILayout.pm1aEvent, length: ACPILayout.pm1aEventLength)
        let pm1aControl = GenericAddress.io(ACPILayout.pm1aControl, length: ACPILayout.pm1aControlLength)
        let pmTimer = GenericAddress.io(ACPILayout.pmTimer, length: ACPILayout.pmTimerLength)
        let gpe0 = GenericAddress.io(ACPILayout.gpe0, length: ACPILayout.gpe0Length)
        let reset = GenericAddress(space: GenericAddress.systemIO, bitWidth: 8, address: UInt64(ACPILayout.resetPort))
        func u32(_ v: UInt64) -> [UInt8] { littleEndianBytes(UInt32(truncatingIfNeeded: v)) }

        var b: [UInt8] = []
        b += u32(facs) + u32(dsdt) // FIRMWARE_CTRL, DSDT
        b += [1, 0] // INT_MODEL (reserved since 2.0; QEMU's 1), Preferred_PM_Profile: unspecified
        b += littleEndianBytes(UInt16(ACPILayout.sciIRQ))
        b += u32(0) // SMI_CMD: none, the OS finds ACPI mode on
        b += [0, 0, 0, 0] // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
        b += u32(pm1aEvent.address) + u32(0) // PM1a_EVT_BLK, PM1b_EVT_BLK
        b += u32(pm1aControl.address) + u32(0) + u32(0) // PM1a_CNT_BLK, PM1b_CNT_BLK, PM2_CNT_BLK
        b += u32(pmTimer.address) // PM_TMR_BLK
        b += u32(gpe0.address) + u32(0) // GPE0_BLK, GPE1_BLK
        b += [
            ACPILayout.pm1aEventLength, ACPILayout.pm1aControlLength, 0, ACPILayout.pmTimerLength,
            ACPILayout.gpe0Length, 0, 0, 0,
        ] // ..._LEN, GPE1_BASE, CST_CNT
        b += littleEndianBytes(UInt16(0xFFF)) + littleEndianBytes(UInt16(0xFFF)) // P_LVL2/3_LAT: no C2, C3
        b += [0, 0, 0, 0] // FLUSH_SIZE, FLUSH_STRIDE
        b += [0, 0, 0, 0] // DUTY_OFFSET, DUTY_WIDTH, DAY_ALRM, MON_ALRM
        b += [CMOS.Register.century] // CENTURY (our CMOS keeps it, as QEMU's RTC_CENTURY)
        b += littleEndianBytes(BootArch.legacyDevices | BootArch.i8042) + [0] // IAPC_BOOT_ARCH, reserved
        b += littleEndianBytes(fadtFlags(cpus: cpus)) // offset 112
        b += reset.bytes + [ACPILayout.resetValue] // RESET_REG, RESET_VALUE
        b += [0, 0, 0] // reserved (ARM_BOOT_ARCH, minor version from 5.1)
        b += littleEndianBytes(UInt64(0)) + littleEndianBytes(dsdt) // X_FIRMWARE_CTRL, X_DSDT
        b += pm1aEvent.bytes + GenericAddress.none.bytes // X_PM1a_EVT_BLK, X_PM1b_EVT_BLK
        b += pm1aControl.bytes + GenericAddress.none.bytes // X_PM1a_CNT_BLK, X_PM1b_CNT_BLK
        b += GenericAddress.none.bytes + pmTimer.bytes // X_PM2_CNT_BLK, X_PM_TMR_BLK
        b += gpe0.bytes + GenericAddress.none.bytes // X_GPE0_BLK, X_GPE1_BLK
        return ACPITable(signature: "FACP", revision: 3, body: b)
    }

    /// MADT (signature "APIC", §5.2.12) as QEMU's `build_madt` for pc:
    /// the local APIC address and PCAT_COMPAT (8259s present); one enabled
    /// Processor Local APIC per vCPU (UID = APIC ID = index); the IOAPIC, ID 0,
    /// GSI base 0; interrupt source overrides IRQ0 → GSI 2 (bus-conforming,
    /// the PIT on the IOAPIC's pin 2) and, for the PCI link IRQs 5, 9 (the
    /// SCI), 10 and 11, identity maps made level-triggered active-high; and the
    /// local APIC NMI on LINT1 of every processor. Revision 1, as QEMU's pc.
    static func madt(cpus: Int) -> ACPITable {
        var b = littleEndianBytes(localAPICAddress) + littleEndianBytes(UInt32(1)) // PCAT_COMPAT
        for id in 0..<cpus {
            // Type 0, length 8: ACPI processor UID, APIC ID, flags (enabled).
            b += [0, 8, UInt8(truncatingIfNeeded: id), UInt8(truncatingIfNeeded: id)] + littleEndianBytes(UInt32(1))
        }
        // Type 1, length 12: I/O APIC ID, reserved, address, GSI base.
        b += [1, 12, ioAPICID, 0] + littleEndianBytes(ioAPICAddress) + littleEndianBytes(UInt32(0))
        for o in interruptOverrides {
            // Type 2, length 10: bus 0 (ISA), source IRQ, GSI, MPS INTI flags.
            b += [2, 10, 0, o.irq] + littleEndianBytes(o.gsi) + littleEndianBytes(o.flags)
        }
        // Type 4, length 6: processor UID 0xff (all), MPS INTI flags 0, LINT1.
        b += [4, 6, 0xFF] + littleEndianBytes(UInt16(0)) + [1]
        return ACPITable(signature: "APIC", revision: 1, body: b)
    }

    /// QEMU's overrides: IRQ0 on GSI 2, and its ACPI_BUILD_PCI_IRQS
    /// (5, 9, 10, 11) with flags 0xd: active high (bits 1–0 = 01), level
    /// triggered (bits 3–2 = 11) (§5.2.12.5, Table 5.26).
    static let interruptOverrides: [(irq: UInt8, gsi: UInt32, flags: UInt16)] = [
        (0, 2, 0), (5, 5, 0xD), (9, 9, 0xD), (10, 10, 0xD), (11, 11, 0xD),
    ]
}
