extension Machine {
    /// The memory map QEMU would give this machine: its RAM, and its vCPUs'
    /// CPUID (so set CPUID, nesting included, before asking).
    public func pcMemoryMap() throws -> PCMemoryMap {
        PCMemoryMap(memory: memory, cpu: try vcpu.cpuid())
    }

    /// Boots a multiboot kernel as `qemu-system-x86_64 -M pc -kernel` does:
    /// the kernel and its modules loaded (`Multiboot.load`) with the memory map
    /// of this machine's RAM and vCPUs, the bootstrap vCPU at the kernel's
    /// entry, and QEMU's PC devices attached: fw_cfg with the machine's and
    /// the boot's items, CMOS/RTC, ports 0x80 and 0x92, and the PCI host bridge
    /// with bus 0's chipset functions (QEMU's pc always has them: a kernel that
    /// probes 0xcf8/0xcfc finds what it finds under QEMU). Set the vCPUs'
    /// CPUID first: the vendor decides the memory map.
    @discardableResult
    public func bootMultiboot(kernel: [UInt8], commandLine: String, modules: [MultibootModule] = [],
                              initrdText: String? = nil) throws -> MultibootBoot {
        let map = try pcMemoryMap()
        let boot = try Multiboot.load(kernel: kernel, commandLine: commandLine, modules: modules,
                                      initrdText: initrdText, memoryMap: map, into: memory)
        try load(boot.image)
        try attachPCDevices(memoryMap: map, fwCfg: boot.fwCfg)
        return boot
    }

    /// QEMU pc's devices every `-kernel` boot has: fw_cfg with the machine's
    /// items and `fwCfg`, CMOS/RTC (IRQ 8), ports 0x80 and 0x92, the i8042
    /// (IRQ 1 and 12), PIIX4 power management where SeaBIOS puts it (SCI on
    /// IRQ 9; S5 ends the run) and the PCI host bridge with bus 0's chipset
    /// functions.
    func attachPCDevices(memoryMap map: PCMemoryMap, fwCfg: FwCfgItems = FwCfgItems()) throws {
        var items = FwCfgItems.qemuPC(memoryMap: map, cpus: vcpus.count)
        items.merge(fwCfg)
        try FwCfg(items: items, memory: memory).attach(to: bus)
        let cmos = CMOS(memorySize: memory.totalSize, cpus: vcpus.count)
        try bus.attach(cmos, ports: CMOS.ports)
        try PCPorts().attach(to: bus)
        let keyboard = I8042()
        try keyboard.attach(to: bus)
        let power = ACPIPowerManagement()
        try power.attach(to: bus)
        cmos.interruptLine = irqLine(CMOS.irq)
        keyboard.interruptLine = irqLines()
        power.interruptLine = irqLine(ACPIPowerManagement.sciIRQ)
        try attachPCIHost()
    }
}
