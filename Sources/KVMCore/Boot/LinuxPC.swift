extension Machine {
    /// Boots a Linux bzImage as `qemu-system-x86_64 -M pc -kernel … -initrd …
    /// -append …` does, on QEMU pc's devices: the zero page carries the memory
    /// map SeaBIOS would report for this machine (`MultibootMemoryMap.seaBIOS`),
    /// and the vCPU enters the kernel at its 64-bit entry (`LinuxBoot`). Set the
    /// vCPUs' CPUID first: the vendor decides the memory map.
    @discardableResult
    public func bootLinux(kernel: [UInt8], initrd: [UInt8]? = nil, commandLine: String) throws -> LinuxBoot {
        let image = try LinuxImage(kernel)
        let map = try pcMemoryMap()
        let e820 = MultibootMemoryMap.seaBIOS(map).entries
        let boot = try LinuxBoot(kernel: image, initrd: initrd, commandLine: commandLine, e820: e820)
        try load(boot.image)
        try attachPCDevices(memoryMap: map)
        return boot
    }
}
