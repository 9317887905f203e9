/// A ready-to-run PC-like machine: a VM with RAM, its vCPUs, and the standard
/// devices (COM1, isa-debug-exit, the hostcall port) on an I/O bus. What kvmrun
/// runs, and the easiest way for a test to run guest code:
///
///     let machine = try Machine(memorySize: 64 << 20)
///     try machine.load(.flat(code, mode: .long, load: 0x100000))
///     let stop = try machine.run(timeout: .seconds(5))
///
/// With `irqchip: true` (implied by more than one vCPU) KVM emulates the PIC,
/// IOAPIC, LAPICs and PIT in the kernel, as QEMU's `-M pc` with KVM does: HLT
/// then waits in the kernel for an interrupt instead of ending the run.
public final class Machine {
    /// The /dev/kvm handle the machine was made with.
    public let kvm: KVM
    /// The VM: memory slots and in-kernel devices.
    public let vm: VirtualMachine
    /// vCPU 0, the bootstrap processor.
    public var vcpu: VCPU { vcpus[0] }
    /// Every vCPU; APs wait for INIT/SIPI in KVM (`MPState.uninitialized`).
    public let vcpus: [VCPU]
    /// Whether KVM emulates the PIC, IOAPIC, LAPICs and PIT.
    public let hasIRQChip: Bool
    /// The port and MMIO bus the vCPUs' exits go to.
    public let bus: IOBus
    /// COM1.
    public let serial: Serial16550
    /// The hostcall port (0x1000).
    public let hostcall: HostCall
    /// Guest RAM.
    public var memory: GuestMemory { vm.memory }
    /// What snapshots and resets need to remember about this machine's RAM.
    let snapshotTracking = SnapshotTracking()

    /// Largest guest RAM accepted: what the long-mode identity map covers.
    public static var maxMemorySize: UInt64 {
        (BootLayout.maxIdentityMappedGiB << 30) - (PCLayout.highMemoryStart - PCLayout.lowMemoryLimit)
    }

    /// Refuses guest RAM this machine cannot lay out: under 1 MiB, not whole pages,
    /// or more than the long-mode identity map covers.
    public static func checkMemorySize(_ memorySize: UInt64) throws {
        guard memorySize >= 1 << 20 else {
            throw ConfigurationError.memoryLayout("guest memory of \(memorySize) bytes is too small: at least 1 MiB")
        }
        guard memorySize <= Machine.maxMemorySize else {
            throw ConfigurationError.memoryLayout(
                "guest memory of \(memorySize >> 20) MiB is above the \(Machine.maxMemorySize >> 20) MiB this machine supports"
            )
        }
        guard memorySize % GuestMemory.pageSize == 0 else {
            throw ConfigurationError.memoryLayout(
                "guest memory of \(memorySize) bytes is not a whole number of 4 KiB pages")
        }
    }

    /// With `logDirtyPages`, the RAM slots log the pages the guest writes
    /// (KVM_MEM_LOG_DIRTY_PAGES) so `reset(to:)` copies back only those.
    public convenience init(
        memorySize: UInt64 = 64 << 20, vcpus count: Int = 1, irqchip: Bool = false,
        serial sink: OutputSink = .buffer, kvm: KVM? = nil, logDirtyPages: Bool = false
    ) throws {
        try self.init(
            memorySize: memorySize, vcpus: count, irqchip: irqchip, serial: sink, kvm: kvm,
            logDirtyPages: logDirtyPages, image: nil)
    }

    /// With `image` (a restore), RAM maps that file copy-on-write and the vCPUs
    /// are created bare: no CPUID, no initial state, which the restore sets.
    init(
        memorySize: UInt64, vcpus count: Int, irqchip: Bool, serial sink: OutputSink, kvm: KVM?,
        logDirtyPages: Bool, image: (fd: Int32, offsets: [UInt64])?
    ) throws {
        try Machine.checkMemorySize(memorySize)
        let kvm = try kvm ?? KVM()
        let maxVCPUs = max(kvm.check(.maxVCPUs), kvm.check(.nrVCPUs), 1)
        guard count >= 1, count <= maxVCPUs else {
            throw ConfigurationError.vcpuCount("\(count) vCPUs: KVM allows 1 to \(maxVCPUs) (KVM_CAP_MAX_VCPUS)")
        }
        self.kvm = kvm
        hasIRQChip = irqchip || count > 1
        bus = IOBus(shared: count > 1)
        vm = try kvm.createVM()
        if kvm.check(.setTSSAddr) != 0 { try vm.setTSSAddress(PCLayout.tssAddress) }
        if hasIRQChip {
            if kvm.check(.setIdentityMapAddr) != 0 { try vm.setIdentityMapAddress(PCLayout.identityMapAddress) }
            try vm.createIRQChip()
            try vm.setPCInterruptRouting()
            try vm.createPIT2()
        }
        try vm.addRAM(size: memorySize, logDirtyPages: logDirtyPages, file: image)
        let vm = self.vm
        if image != nil {
            vcpus = try (0..<count).map { try vm.createVCPUWithoutCPUID(id: UInt32($0)) }
        } else {
            let cpuid = try Machine.supportedCPUID(kvm: kvm, irqchip: hasIRQChip)
            vcpus = try (0..<count).map { try vm.createVCPU(id: UInt32($0), cpuid: cpuid) }
            if hasIRQChip {
                for ap in vcpus.dropFirst() { try ap.setMPState(.uninitialized) }
            }
        }
        serial = Serial16550(sink: sink)
        hostcall = HostCall(memory: vm.memory)
        try bus.attach(serial, ports: Serial16550.com1)
        try bus.attach(DebugExit(), ports: DebugExit.ports)
        try bus.attach(hostcall, ports: HostCall.port...HostCall.port)
        serial.interruptLine = irqLine(Serial16550.irq)
    }

    /// Copies `image` into RAM and sets the bootstrap vCPU up in the image's mode at its entry.
    public func load(_ image: BootImage) throws {
        try image.load(into: memory)
        try vcpu.setUp(
            mode: image.mode, entry: image.entry, arguments: image.arguments, gdt: image.gdt,
            selectors: image.selectors)
    }
}

extension Machine {
    /// A device's interrupt line: ISA IRQ `irq` of the in-kernel irqchip
    /// (KVM_IRQ_LINE), or nil on a machine without one.
    func irqLine(_ irq: UInt32) -> (@Sendable (Bool) -> Void)? {
        guard let lines = irqLines() else { return nil }
        return { level in lines(irq, level) }
    }

    /// The irqchip's ISA lines for a device that drives several (the i8042's 1 and 12).
    func irqLines() -> (@Sendable (UInt32, Bool) -> Void)? {
        guard hasIRQChip else { return nil }
        let vm = self.vm
        return { irq, level in try? vm.setIRQLine(irq, level: level) }
    }
}
