import KVMCore

/// kvmrun's `-kernel` for Linux bzImages: QEMU's -M pc -kernel -initrd -append.
extension GuestOptions {
    /// Reads the initrd, builds the machine (in-kernel irqchip, QEMU's PC
    /// devices), sets its CPUs up, and lays the kernel out (`Machine.bootLinux`).
    /// Nil when the file is not a Linux kernel (no "HdrS" setup header).
    func makeLinuxMachine(path: String, bytes: [UInt8], memorySize: UInt64, vcpus: Int, serial: OutputSink,
                          nesting: NestingPolicy) throws -> Machine? {
        guard LinuxImage.isLinux(bytes) else { return nil }
        let initrdBytes: [UInt8]?
        do {
            initrdBytes = try initrd.map { try Files.read($0, limit: memorySize) }
        } catch let error as FileTooLarge {
            throw CLIError(.badImage, "-initrd \(initrd ?? ""): \(error.size) bytes, larger than guest memory")
        } catch {
            throw CLIError(.unreadableFile, "-initrd: \(error)")
        }
        let machine: Machine
        do {
            machine = try Machine(memorySize: memorySize, vcpus: vcpus, irqchip: true, serial: serial, kvm: try openKVM())
        } catch let error as ConfigurationError {
            throw CLIError(.usage, "\(error)")
        }
        try setUpCPU(nesting, on: machine)
        do {
            try machine.bootLinux(kernel: bytes, initrd: initrdBytes, commandLine: append ?? "")
        } catch let error as GuestImageError {
            throw CLIError(.badImage, "\(path): \(error)")
        }
        try qemu.attachDevices(to: machine)
        return machine
    }
}
