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
    public func bootMultiboot(
        kernel: [UInt8], commandLine: String, modules: [MultibootModule] = [],
        initrdText: String? = nil
    ) throws -> MultibootBoot {
        let map = try pcMemoryMap()
        let boot = try Multiboot.load(
            kernel: kernel, commandLine: commandLine, modules: modules,
            initrdText: initrdText, memoryMap: map, into: memory)
        try load(boot.image)
        try attachPCDevices(memoryMap: map, fwCfg: boot.fwCfg)
        return boot
    }
}
