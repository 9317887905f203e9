import KVMCore

/// kvmrun's `-kernel` for multiboot kernels: QEMU's -M pc as a multiboot kernel sees it.
extension GuestOptions {
    /// Reads the kernel and modules, builds the machine (in-kernel irqchip, as QEMU's
    /// pc with KVM), sets its CPUs up, and boots the kernel on QEMU's PC devices
    /// (`Machine.bootMultiboot`).
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
        try setUpCPU(nesting, on: machine)
        let boot: MultibootBoot
        do {
            boot = try machine.bootMultiboot(kernel: bytes, commandLine: Multiboot.qemuCommandLine(kernelPath: path, append: append ?? ""),
                                             modules: modules, initrdText: initrd)
        } catch let error as GuestImageError {
            throw CLIError(.badImage, "\(path): \(error)")
        }
        for warning in boot.warnings { eprint("kvmrun: warning: \(warning)") }
        try qemu.attachDevices(to: machine)
        return machine
    }
}
