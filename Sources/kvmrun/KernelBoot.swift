import KVMCore

/// kvmrun's `-kernel` for Linux and multiboot kernels: QEMU's -M pc as such a
/// kernel sees it. The format comes from the bytes, in QEMU's order: a Linux
/// setup header ("HdrS") first, then a multiboot header.
extension GuestOptions {
    /// Reads the initrd or modules, builds the PC machine (`Machine.pc`), sets
    /// its CPUs up, and boots the kernel (`bootLinux` / `bootMultiboot`).
    /// Nil when the file is neither kind of kernel.
    func makePCMachine(
        path: String, bytes: [UInt8], memorySize: UInt64, vcpus: Int, serial: OutputSink,
        nesting: NestingPolicy
    ) throws -> Machine? {
        let boot: (Machine) throws -> Void
        if LinuxImage.isLinux(bytes) {
            let initrdBytes = try initrd.map { try readInitrd($0, limit: memorySize) }
            boot = { try $0.bootLinux(kernel: bytes, initrd: initrdBytes, commandLine: append ?? "") }
        } else if try isMultiboot(path, bytes) {
            let modules = try (initrd.map(MultibootModule.parseQEMUList) ?? []).map {
                MultibootModule(bytes: try readInitrd($0.path, limit: memorySize), string: $0.string)
            }
            let commandLine = Multiboot.qemuCommandLine(kernelPath: path, append: append ?? "")
            boot = { machine in
                let boot = try machine.bootMultiboot(
                    kernel: bytes, commandLine: commandLine, modules: modules,
                    initrdText: initrd)
                for warning in boot.warnings { eprint("kvmrun: warning: \(warning)") }
            }
        } else {
            return nil
        }
        let machine: Machine
        do {
            machine = try Machine.pc(memorySize: memorySize, cpus: vcpus, serial: serial, kvm: try openKVM())
        } catch let error as ConfigurationError {
            throw CLIError(.usage, "\(error)")
        }
        try setUpCPU(nesting, on: machine)
        do {
            try boot(machine)
        } catch let error as GuestImageError {
            throw CLIError(.badImage, "\(path): \(error)")
        }
        try qemu.attachDevices(to: machine)
        return machine
    }

    private func isMultiboot(_ path: String, _ bytes: [UInt8]) throws -> Bool {
        do {
            return try Multiboot.findHeader(bytes) != nil
        } catch {
            throw CLIError(.badImage, "\(path): \(error)")
        }
    }

    /// An -initrd file (or multiboot module).
    private func readInitrd(_ path: String, limit: UInt64) throws -> [UInt8] {
        try readFile(path, limit: limit, what: "-initrd \(path)", unreadable: "-initrd: ")
    }
}
