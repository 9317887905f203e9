import CKVM
import Glibc
import Synchronization

/// A virtual CPU: its register state and KVM_RUN (kvm-ioctls' `VcpuFd`).
/// One thread runs a vCPU at a time; `stop()` may be called from any thread.
public final class VCPU: Sendable {
    /// The vCPU index, also its initial APIC ID.
    public let id: UInt32
    /// The VM the vCPU belongs to.
    public let vm: VirtualMachine
    let handle: FileHandle
    /// The shared `struct kvm_run` page(s).
    // nonisolated(unsafe): only the thread in the run loop (one at a time, checked) uses it; the kick handler sets immediate_exit.
    nonisolated(unsafe) let runPage: UnsafeMutablePointer<kvm_run>
    private let runPageSize: Int
    /// Set by `stop()`, taken by the run loop.
    let stopRequested = Atomic<Bool>(false)
    /// Kernel tid of the thread in the run loop (0: none), for `stop()`'s kick.
    let runningThread = Atomic<Int32>(0)
    /// Taken once when a run starts and when it returns (and before each trace
    /// call), never per exit: the loop counts in locals (`ExitTally`).
    private let statisticsStore = Mutex(RunStatistics())
    /// Exit counts and timing gathered by the run loop.
    public var statistics: RunStatistics {
        get { statisticsStore.withLock { $0 } }
        set { statisticsStore.withLock { $0 = newValue } }
    }

    /// Adds to `statistics` in place (one lock, no copy of the exit counts).
    func updateStatistics(_ body: (inout RunStatistics) -> Void) {
        statisticsStore.withLock { body(&$0) }
    }

    init(vm: VirtualMachine, id: UInt32, handle: FileHandle) throws {
        let size = vm.kvm.vcpuMmapSize
        guard let page = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, handle.fd, 0),
            page != MAP_FAILED
        else {
            throw KVMError("mmap kvm_run of vCPU \(id)", errno: .current)
        }
        self.id = id
        self.vm = vm
        self.handle = handle
        self.runPage = page.assumingMemoryBound(to: kvm_run.self)
        self.runPageSize = size
    }

    deinit {
        munmap(runPage, runPageSize)
    }

    /// One KVM_RUN. Returns the decoded exit; EINTR (a kick) is `.interrupted`.
    @inline(__always)
    public func run() throws -> VMExit {
        if ckvm_run(handle.fd) < 0 {
            let err = Errno.current
            // EAGAIN: an AP woke from KVM_MP_STATE_UNINITIALIZED (INIT/SIPI); run it again.
            if err == .EINTR || err.rawValue == EAGAIN { return .interrupted }
            throw KVMError("KVM_RUN", errno: err, hint: VCPU.runHint(err))
        }
        return VMExit(runPage)
    }

    /// Finishes the instruction of the last port or MMIO exit without running the
    /// guest further: KVM_RUN with immediate_exit = 1 completes it and returns EINTR.
    /// Call before saving state, or RIP still points at the OUT/IN and the access
    /// is lost or repeated (the kernel selftests' state_test does the same).
    public func completePendingIO() throws {
        runPage.pointee.immediate_exit = 1
        defer { runPage.pointee.immediate_exit = 0 }
        if ckvm_run(handle.fd) < 0 {
            let err = Errno.current
            guard err == .EINTR else { throw KVMError("KVM_RUN", errno: err, hint: VCPU.runHint(err)) }
        }
    }

    static func runHint(_ err: Errno) -> String? {
        switch err {
        case .EFAULT: "the guest touched memory KVM could not map"
        case .EINVAL: "the vCPU state is invalid for entry (check sregs and CPUID)"
        case Errno(rawValue: ENOEXEC): "the vCPU cannot run (no memory slots, or state KVM rejects)"
        default: nil
        }
    }

    // MARK: Register state

    /// KVM_GET_REGS.
    public func registers() throws -> Registers { try get(.getRegs) }
    /// KVM_SET_REGS.
    public func setRegisters(_ value: Registers) throws { try set(.setRegs, value) }

    /// KVM_GET_SREGS.
    public func specialRegisters() throws -> SpecialRegisters { try get(.getSregs) }
    /// KVM_SET_SREGS.
    public func setSpecialRegisters(_ value: SpecialRegisters) throws { try set(.setSregs, value) }

    /// KVM_GET_FPU.
    public func fpu() throws -> FPUState { try get(.getFPU) }
    /// KVM_SET_FPU.
    public func setFPU(_ value: FPUState) throws { try set(.setFPU, value) }

    /// KVM_GET_XCRS.
    public func xcrs() throws -> XCRs { try get(.getXCRs) }
    /// KVM_SET_XCRS.
    public func setXCRs(_ value: XCRs) throws { try set(.setXCRs, value) }

    /// KVM_GET_LAPIC (needs the in-kernel irqchip).
    public func lapic() throws -> LAPICState {
        try get(.getLAPIC) { $0 == .EINVAL || $0 == .ENXIO ? "no in-kernel LAPIC: create the irqchip first" : nil }
    }
    /// KVM_SET_LAPIC (needs the in-kernel irqchip).
    public func setLAPIC(_ value: LAPICState) throws {
        try set(.setLAPIC, value) {
            $0 == .EINVAL || $0 == .ENXIO ? "no in-kernel LAPIC: create the irqchip first" : nil
        }
    }

    /// KVM_GET_VCPU_EVENTS.
    public func events() throws -> VCPUEvents { try get(.getVCPUEvents) }
    /// KVM_SET_VCPU_EVENTS.
    public func setEvents(_ value: VCPUEvents) throws { try set(.setVCPUEvents, value) }

    /// KVM_GET_DEBUGREGS.
    public func debugRegisters() throws -> DebugRegisters { try get(.getDebugRegs) }
    /// KVM_SET_DEBUGREGS.
    public func setDebugRegisters(_ value: DebugRegisters) throws { try set(.setDebugRegs, value) }

    /// KVM_GET_MP_STATE.
    public func mpState() throws -> MPState {
        let raw: kvm_mp_state = try get(.getMPState)
        guard let state = MPState(rawValue: raw.mp_state) else {
            throw KVMError("KVM_GET_MP_STATE", errno: .EINVAL, hint: "unknown MP state \(raw.mp_state)")
        }
        return state
    }
    /// KVM_SET_MP_STATE.
    public func setMPState(_ state: MPState) throws {
        try set(.setMPState, kvm_mp_state(mp_state: state.rawValue))
    }

    /// KVM_GET_XSAVE2 when KVM_CAP_XSAVE2 reports a larger area, else KVM_GET_XSAVE.
    public func xsave() throws -> XSAVEState {
        let size = max(vm.kvm.check(.xsave2), MemoryLayout<kvm_xsave>.size)
        var bytes = [UInt8](repeating: 0, count: size)
        _ = try bytes.withUnsafeMutableBytes {
            try handle.ioctl(size > MemoryLayout<kvm_xsave>.size ? .getXSAVE2 : .getXSAVE, $0.baseAddress)
        }
        return XSAVEState(bytes: bytes)
    }
    /// KVM_SET_XSAVE; throws `ConfigurationError.vcpuState` for an area smaller than `struct kvm_xsave`.
    public func setXSAVE(_ state: XSAVEState) throws {
        var bytes = state.bytes
        guard bytes.count >= MemoryLayout<kvm_xsave>.size else {
            throw ConfigurationError.vcpuState(
                "XSAVE area of \(bytes.count) bytes, KVM needs at least \(MemoryLayout<kvm_xsave>.size)")
        }
        _ = try bytes.withUnsafeMutableBytes { try handle.ioctl(.setXSAVE, $0.baseAddress) }
    }

    /// KVM_GET_MSRS: the values of `indices`; throws naming the first MSR KVM refused.
    public func msrs(_ indices: [UInt32]) throws -> [MSR] {
        let read = try MSR.get(indices, on: handle)
        guard read.count == indices.count else {
            throw KVMError(
                "KVM_GET_MSRS", errno: .EINVAL,
                hint: "KVM refused MSR \(hex(indices[read.count])) (read \(read.count) of \(indices.count))")
        }
        return read
    }

    /// KVM_SET_MSRS; throws naming the first MSR KVM refused.
    public func setMSRs(_ msrs: [MSR]) throws {
        let written = try MSR.set(msrs, on: handle)
        guard written == msrs.count else {
            throw KVMError(
                "KVM_SET_MSRS", errno: .EINVAL,
                hint: "KVM refused MSR \(hex(msrs[written].index)) = \(hex(msrs[written].value))")
        }
    }

    /// KVM_GET_CPUID2: the table the vCPU was given.
    public func cpuid() throws -> CPUID {
        try CPUID.read { try handle.ioctl(.getCPUID2, $0) }
    }
    /// KVM_SET_CPUID2.
    public func setCPUID(_ table: CPUID) throws {
        _ = try table.withKVMCPUID2 { try handle.ioctl(.setCPUID2, $0) }
    }

    /// KVM_SET_GUEST_DEBUG with `control` (KVM_GUESTDBG_* bits) and debug registers.
    public func setGuestDebug(control: UInt32, debugRegisters: [UInt64] = []) throws {
        var dbg = kvm_guest_debug()
        dbg.control = control
        withUnsafeMutableBytes(of: &dbg.arch.debugreg) { raw in
            for (i, v) in debugRegisters.prefix(8).enumerated() {
                raw.storeBytes(of: v, toByteOffset: i * 8, as: UInt64.self)
            }
        }
        try handle.ioctl(.setGuestDebug, &dbg)
    }

    // MARK: Plumbing

    private func get<T>(_ request: IOCtl, hint: @escaping (Errno) -> String? = { _ in nil }) throws -> T {
        let value = UnsafeMutablePointer<T>.allocate(capacity: 1)
        defer { value.deallocate() }
        UnsafeMutableRawPointer(value).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        try handle.ioctl(request, UnsafeMutableRawPointer(value), hint: hint)
        return value.pointee
    }

    private func set<T>(_ request: IOCtl, _ value: T, hint: @escaping (Errno) -> String? = { _ in nil }) throws {
        var copy = value
        try handle.ioctl(request, &copy, hint: hint)
    }
}
