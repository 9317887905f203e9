/// A ready-to-run PC-like machine: a VM with RAM, one vCPU, and the standard
/// devices (COM1, isa-debug-exit, the hostcall port) on an I/O bus. What kvmrun
/// runs, and the easiest way for a test to run guest code:
///
///     let machine = try Machine(memorySize: 64 << 20)
///     try machine.load(.flat(code, mode: .long, load: 0x100000))
///     let stop = try machine.run(timeout: .seconds(5))
public final class Machine {
    public let kvm: KVM
    public let vm: VirtualMachine
    public let vcpu: VCPU
    public let bus = IOBus()
    public let serial: Serial16550
    public let hostcall: HostCall
    public var memory: GuestMemory { vm.memory }

    /// Largest guest RAM accepted: what the long-mode identity map covers.
    public static var maxMemorySize: UInt64 { (BootLayout.maxIdentityMappedGiB << 30) - (PCLayout.highMemoryStart - PCLayout.lowMemoryLimit) }

    public init(memorySize: UInt64 = 64 << 20, serial sink: OutputSink = .buffer, kvm: KVM? = nil) throws {
        guard memorySize >= 1 << 20 else {
            throw ConfigurationError("guest memory of \(memorySize) bytes is too small: at least 1 MiB")
        }
        guard memorySize <= Machine.maxMemorySize else {
            throw ConfigurationError("guest memory of \(memorySize >> 20) MiB is above the \(Machine.maxMemorySize >> 20) MiB this machine supports")
        }
        guard memorySize % GuestMemory.pageSize == 0 else {
            throw ConfigurationError("guest memory of \(memorySize) bytes is not a whole number of 4 KiB pages")
        }
        self.kvm = try kvm ?? KVM()
        vm = try self.kvm.createVM()
        if self.kvm.check(.setTSSAddr) != 0 { try vm.setTSSAddress(PCLayout.tssAddress) }
        try vm.addRAM(size: memorySize)
        vcpu = try vm.createVCPU(id: 0)
        serial = Serial16550(sink: sink)
        hostcall = HostCall(memory: vm.memory)
        try bus.attach(serial, ports: Serial16550.com1)
        try bus.attach(DebugExit(), ports: DebugExit.ports)
        try bus.attach(hostcall, ports: HostCall.port...HostCall.port)
    }

    /// Copies `image` into RAM and sets the vCPU up in the image's mode at its entry.
    public func load(_ image: BootImage) throws {
        try image.load(into: memory)
        try vcpu.setUp(mode: image.mode, entry: image.entry, arguments: image.arguments)
    }

    /// Runs until an exit the caller must see (see `StopReason`).
    public func run(timeout: Duration? = nil, trace: ((VCPU, VMExit) -> Void)? = nil) throws -> StopReason {
        try vcpu.run(bus: bus, timeout: timeout, trace: trace)
    }
}
