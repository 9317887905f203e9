extension Machine {
    /// QEMU's `-M pc` with KVM as a `-kernel` boot starts it: `memorySize`
    /// bytes of RAM, `cpus` vCPUs, and the in-kernel irqchip (PIC, IOAPIC,
    /// LAPICs) and PIT. Then set CPUID (`apply(cpu:)`, nesting) and boot a
    /// kernel with `bootLinux(kernel:initrd:commandLine:)` or
    /// `bootMultiboot(kernel:commandLine:modules:)`, which attach the PC's
    /// devices and, for Linux, its ACPI tables:
    ///
    ///     let pc = try Machine.pc(memorySize: 256 << 20, cpus: 2)
    ///     try pc.bootLinux(kernel: bzImage, initrd: initramfs, commandLine: "console=ttyS0")
    ///     let stop = try pc.run()
    ///
    /// `logDirtyPages` as for `init`: a machine reset to a snapshot again and
    /// again (boot once, reset per test) copies back only the pages written.
    public static func pc(
        memorySize: UInt64, cpus: Int = 1, serial: OutputSink = .buffer,
        kvm: KVM? = nil, logDirtyPages: Bool = false
    ) throws -> Machine {
        try Machine(
            memorySize: memorySize, vcpus: cpus, irqchip: true, serial: serial, kvm: kvm,
            logDirtyPages: logDirtyPages)
    }

    /// QEMU pc's devices, as `PCDevices` groups them; the boots attach all of
    /// them. Call it yourself for a guest loaded another way (an ELF test
    /// guest) that should meet a PC. `memoryMap` defaults to `pcMemoryMap()`:
    /// set CPUID first.
    public func attachPCDevices(
        _ devices: PCDevices = .all, memoryMap: PCMemoryMap? = nil,
        fwCfg: FwCfgItems = FwCfgItems()
    ) throws {
        if devices.contains(.firmware) {
            var items = FwCfgItems.qemuPC(memoryMap: try memoryMap ?? pcMemoryMap(), cpus: vcpus.count)
            items.merge(fwCfg)
            try FwCfg(items: items, memory: memory).attach(to: bus)
            let cmos = CMOS(memorySize: memory.totalSize, cpus: vcpus.count)
            try bus.attach(cmos, ports: CMOS.ports)
            cmos.interruptLine = irqLine(CMOS.irq)
            try PCPorts().attach(to: bus)
        }
        if devices.contains(.keyboard) {
            let keyboard = I8042()
            try keyboard.attach(to: bus)
            keyboard.interruptLine = irqLines()
        }
        if devices.contains(.power) {
            let power = ACPIPowerManagement()
            try power.attach(to: bus)
            power.interruptLine = irqLine(ACPIPowerManagement.sciIRQ)
        }
        if devices.contains(.pci) { try attachPCIHost() }
    }
}

/// QEMU pc's devices by what they are for.
public struct PCDevices: OptionSet, Sendable {
    /// One bit per group.
    public let rawValue: UInt8
    /// The groups `rawValue`'s bits name.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// fw_cfg (with the machine's items), CMOS/RTC (IRQ 8), ports 0x80 and 0x92.
    public static let firmware = PCDevices(rawValue: 1 << 0)
    /// The i8042 with PS/2 keyboard and mouse (IRQ 1 and 12); its pulse-reset
    /// command ends the run.
    public static let keyboard = PCDevices(rawValue: 1 << 1)
    /// PIIX4 power management where SeaBIOS puts it (SCI on IRQ 9); S5 and S3
    /// end the run.
    public static let power = PCDevices(rawValue: 1 << 2)
    /// The PCI host bridge with bus 0's chipset functions.
    public static let pci = PCDevices(rawValue: 1 << 3)
    /// Everything a `-kernel` boot attaches.
    public static let all: PCDevices = [.firmware, .keyboard, .power, .pci]
}
