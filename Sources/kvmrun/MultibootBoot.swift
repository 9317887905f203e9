import KVMCore

/// kvmrun's `-kernel` for multiboot kernels: QEMU's -M pc as a multiboot kernel sees it.
extension GuestOptions {
    /// Reads the kernel and modules, builds the machine (in-kernel irqchip, as QEMU's
    /// pc with KVM), loads the kernel, and attaches fw_cfg, CMOS and ports 0x80/0x92.
    /// Nil when the file is not a multiboot kernel.
    func makeMultibootMachine(path: String, bytes: [UInt8], memorySize: UInt64, vcpus: Int, serial: OutputSink,
                              nesting: NestingPolicy) throws -> Machine? {
        do {
            guard try Multiboot.findHeader(bytes) != nil else { return nil }
        } catch {
            throw CLIError(.badImage, "\(path): \(error)")
        }
        var modules: [MultibootModule] = []
        if let initrd {
            for spec in MultibootModule.parseQEMUList(initrd) {
                do {
                    modules.append(MultibootModule(bytes: try Files.read(spec.path, limit: memorySize), string: spec.string))
                } catch let error as FileTooLarge {
                    throw CLIError(.badImage, "-initrd \(spec.path): \(error.size) bytes, larger than guest memory")
                } catch {
                    throw CLIError(.unreadableFile, "-initrd: \(error)")
                }
            }
        }
        let machine: Machine
        do {
            machine = try Machine(memorySize: memorySize, vcpus: vcpus, irqchip: true, serial: serial, kvm: try openKVM())
        } catch let error as ConfigurationError {
            throw CLIError(.usage, "\(error)")
        }
        try enableNesting(nesting, on: machine)
        let boot: MultibootBoot
        do {
            boot = try Multiboot.load(kernel: bytes, commandLine: Multiboot.qemuCommandLine(kernelPath: path, append: append ?? ""),
                                      modules: modules, initrdText: initrd, into: machine.memory)
            try machine.load(boot.image)
        } catch let error as GuestImageError {
            throw CLIError(.badImage, "\(path): \(error)")
        }
        for warning in boot.warnings { eprint("kvmrun: warning: \(warning)") }
        var items = FwCfgItems.qemuPC(ramSize: memorySize, ram: machine.memory.regions.map { ($0.guestPhysical, $0.size) }, cpus: vcpus)
        items.merge(boot.fwCfg)
        try FwCfg(items: items, memory: machine.memory).attach(to: machine.bus)
        try machine.bus.attach(CMOS(memorySize: memorySize, cpus: vcpus), ports: CMOS.ports)
        try PCPorts().attach(to: machine.bus)
        try qemu.attachDevices(to: machine)
        return machine
    }
}
