/// Everything KVM lets userspace read of one vCPU — what the kernel selftests'
/// `vcpu_save_state` takes — so it can be put into a fresh vCPU, in this process
/// or another, and the guest carries on as if nothing happened.
public struct VCPUState: Sendable {
    /// KVM_GET_CPUID2.
    public var cpuid: CPUID
    /// KVM_GET_REGS.
    public var registers: Registers
    /// KVM_GET_SREGS.
    public var specialRegisters: SpecialRegisters
    /// KVM_GET_XSAVE(2).
    public var xsave: XSAVEState
    /// KVM_GET_XCRS, where the host has XCRs.
    public var xcrs: XCRs?
    /// Every MSR KVM saves (KVM_GET_MSR_INDEX_LIST).
    public var msrs: [MSR]
    /// KVM_GET_VCPU_EVENTS.
    public var events: VCPUEvents
    /// KVM_GET_MP_STATE.
    public var mpState: MPState
    /// KVM_GET_DEBUGREGS.
    public var debugRegisters: DebugRegisters
    /// With an in-kernel irqchip.
    public var lapic: LAPICState?
    /// KVM_GET_NESTED_STATE's bytes, where the host has nested state.
    public var nestedState: [UInt8]?
}

/// MSRs a guest hypervisor sets that KVM_GET_MSR_INDEX_LIST may leave out.
private let nestingMSRs: [UInt32] = [MSR.featureControl, MSR.vmCR, 0xC001_0117] // the last: VM_HSAVE_PA

extension VCPU {
    /// Reads the whole vCPU state. An in-flight port or MMIO exit is completed
    /// first, or RIP would still point at the instruction and a restored guest
    /// would repeat it.
    public func saveState() throws -> VCPUState {
        try completePendingIO()
        let kvm = vm.kvm
        return VCPUState(
            cpuid: try cpuid(),
            registers: try registers(),
            specialRegisters: try specialRegisters(),
            xsave: try xsave(),
            xcrs: kvm.check(.xcrs) != 0 ? try xcrs() : nil,
            msrs: try readableMSRs(),
            events: try events(),
            mpState: try mpState(),
            debugRegisters: try debugRegisters(),
            lapic: try? lapic(),
            nestedState: kvm.check(.nestedState) != 0 ? try nestedStateBytes() : nil)
    }

    /// Writes `state` in the order the kernel selftests' `vcpu_load_state` uses:
    /// CPUID, sregs (EFER, including SVME, before anything that depends on it),
    /// MSRs, XCRs, XSAVE, events, MP state, debug registers, regs, LAPIC, and the
    /// nested state last. CPUID can only change before the vCPU first runs, so
    /// restore into a fresh vCPU.
    public func restoreState(_ state: VCPUState) throws {
        try setCPUID(state.cpuid)
        // An MSR KVM refuses to write is accepted only when this vCPU already
        // holds exactly the saved value; any other refusal throws, naming it.
        var refusedButHeld: [UInt32: UInt64] = [:]
        try resetState(state, unwritable: &refusedButHeld, throughSyncRegs: false)
    }

    /// The MSRs KVM saves for this vCPU (its index list, plus the nesting MSRs),
    /// skipping any it refuses to read: KVM_GET_MSRS stops at the first refusal.
    func readableMSRs() throws -> [MSR] {
        var pending = try vm.kvm.msrIndexList()
        for index in nestingMSRs where !pending.contains(index) { pending.append(index) }
        var read: [MSR] = []
        while !pending.isEmpty {
            let got = try MSR.get(pending, on: handle)
            read += got
            pending.removeFirst(min(got.count + 1, pending.count))
        }
        return read
    }
}
