extension Machine {
    /// Boots a Linux bzImage as `qemu-system-x86_64 -M pc -kernel … -initrd …
    /// -append …` does, on QEMU pc's devices: the zero page carries the memory
    /// map SeaBIOS would report for this machine (`SeaBIOSMemoryMap`),
    /// the ACPI tables sit where SeaBIOS puts its own (the reserved top of RAM
    /// below 4 GiB, the RSDP in the BIOS area), and the vCPU enters the kernel
    /// at its 64-bit entry (`LinuxBoot`). Set the vCPUs' CPUID first: the
    /// vendor decides the memory map.
    @discardableResult
    public func bootLinux(kernel: [UInt8], initrd: [UInt8]? = nil, commandLine: String) throws -> LinuxBoot {
        let image = try LinuxImage(kernel)
        let map = try pcMemoryMap()
        let e820 = SeaBIOSMemoryMap(map).entries
        guard let tables = Self.acpiTablesAddress(e820) else {
            throw GuestImageError.doesNotFit("guest RAM below 4 GiB is too small for the ACPI tables")
        }
        let boot = try LinuxBoot(
            kernel: image, initrd: initrd, commandLine: commandLine, e820: e820,
            acpiRSDP: ACPILayout.rsdpAddress)
        try load(boot.image)
        try ACPITables(cpus: vcpus.count).write(into: memory, tablesAddress: tables)
        try attachPCDevices(memoryMap: map)
        return boot
    }

    /// The start of SeaBIOS's reserved high-table area, just below the last
    /// RAM entry under 4 GiB: where SeaBIOS itself puts QEMU's ACPI tables.
    static func acpiTablesAddress(_ e820: [E820Entry]) -> UInt64? {
        guard let lastRAM = e820.last(where: { $0.type == .ram && $0.end <= 1 << 32 }),
            let area = e820.first(where: { $0.type == .reserved && $0.address == lastRAM.end }),
            area.length >= ACPILayout.tablesMaxSize
        else { return nil }
        return area.address
    }
}
