import KVMCore

// Test 5 on SVM: nested-svm-l2's real states, each case breaking one rule of
// svm_set_nested_state() (or keeping to them); `kernelAccepts` is what the
// kernel source (6.1 and later) does.

private func svm(_ s: inout NestedState, _ f: (inout SVMNestedState) -> Void) {
    guard case .svm(var p) = s.payload else { return }
    f(&p)
    s.payload = .svm(p)
}
private func vmcb(_ s: inout NestedState, _ f: (inout VMCB) -> Void) {
    svm(&s) { p in
        guard var v = p.vmcb else { return }
        f(&v)
        p.vmcb = v
    }
}

/// The cases on an AMD host, from nested-svm-l2's stops.
let svmValidatorCases: [ValidatorCase] = [
    // Accepted states.
    ValidatorCase(name: "real state, L2 running (GUEST_MODE|GIF_SET)", base: .l2Running, kernelAccepts: true),
    ValidatorCase(name: "real state, before VMRUN (GIF_SET)", base: .beforeEntry, kernelAccepts: true),
    ValidatorCase(name: "real state, after #VMEXIT (flags 0, SVME set)", base: .afterExit, kernelAccepts: true),
    ValidatorCase(
        name: "GUEST_MODE|RUN_PENDING|GIF_SET", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in s.flags.insert(.runPending) }),
    ValidatorCase(
        name: "GUEST_MODE with GIF clear", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in s.flags.remove(.gifSet) }),
    ValidatorCase(
        name: "leave guest mode: GIF_SET, size 128", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in
            s.flags = .gifSet
            s.size = 128
        }),
    ValidatorCase(
        name: "size 8320 > KVM_CAP_NESTED_STATE (zero bytes follow)", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in
            s.trailing = [UInt8](repeating: 0, count: 4096)
            s.size = 128 + 8192
        }),
    ValidatorCase(
        name: "EFER.SVME clear, GIF_SET only", base: .beforeEntry, kernelAccepts: true,
        sregs: { $0.efer &= ~EFER.svme },
        edit: { s, _ in
            s.flags = .gifSet
            s.size = 128
        }),
    ValidatorCase(
        name: "vmcb_pa 0 (page aligned, legal)", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in svm(&s) { $0.header.vmcbPA = 0 } }),
    // Generic rules (x86.c).
    ValidatorCase(
        name: "size 64 < header", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.size = 64 }),
    ValidatorCase(
        name: "unknown flag 0x80", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.flags = NestedStateFlags(rawValue: s.flags.rawValue | 0x80) }),
    ValidatorCase(
        name: "RUN_PENDING without GUEST_MODE", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in s.flags = [.gifSet, .runPending] }),
    // Format and SVM flags.
    ValidatorCase(
        name: "format 0 (VMX) on an SVM host", base: .l2Running, kernelAccepts: false,
        editBytes: { $0[2] = 0 }),
    ValidatorCase(
        name: "format 2 (unknown)", base: .l2Running, kernelAccepts: false,
        editBytes: { $0[2] = 2 }),
    ValidatorCase(
        name: "format field 2 set on a decoded SVM state", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.format = NestedStateFormat(rawValue: 2) }),
    ValidatorCase(
        name: "VMX-only flag EVMCS", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.flags.insert(.evmcs) }),
    ValidatorCase(
        name: "VMX-only flag MTF_PENDING", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.flags.insert(.mtfPending) }),
    // EFER.SVME of the vCPU.
    ValidatorCase(
        name: "GUEST_MODE with EFER.SVME clear", base: .l2Running, kernelAccepts: false,
        sregs: { $0.efer &= ~EFER.svme }),
    ValidatorCase(
        name: "EFER.SVME clear, flags 0", base: .beforeEntry, kernelAccepts: false,
        sregs: { $0.efer &= ~EFER.svme },
        edit: { s, _ in
            s.flags = []
            s.size = 128
        }),
    // Guest mode: header and vmcb12.
    ValidatorCase(
        name: "GUEST_MODE, size 128 (no vmcb12)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.size = 128 }),
    ValidatorCase(
        name: "vmcb_pa unaligned (+8)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in svm(&s) { $0.header.vmcbPA += 8 } }),
    ValidatorCase(
        name: "vmcb_pa above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
        edit: { s, bits in svm(&s) { $0.header.vmcbPA = 1 << UInt64(bits) } }),
    ValidatorCase(
        name: "vmcb12 without the VMRUN intercept", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.control.interceptMisc2 &= ~1 } }),
    ValidatorCase(
        name: "vmcb12 ASID 0", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.control.asid = 0 } }),
    ValidatorCase(
        name: "msrpm_base_pa ends above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
        edit: { s, bits in vmcb(&s) { $0.control.msrpmBasePA = (1 << UInt64(bits)) - 0x1000 } }),
    ValidatorCase(
        name: "iopm_base_pa ends above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
        edit: { s, bits in vmcb(&s) { $0.control.iopmBasePA = (1 << UInt64(bits)) - 0x2000 } }),
    ValidatorCase(
        name: "L2 (vCPU) CR0 NW without CD", base: .l2Running, kernelAccepts: false,
        sregs: { $0.cr0 = ($0.cr0 | ControlRegister.nw) & ~ControlRegister.cd }),
    // L1's save area (vmcb01.save).
    ValidatorCase(
        name: "L1 CR0 without PG", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.cr0 &= ~ControlRegister.pg } }),
    ValidatorCase(
        name: "L1 CR0 without PE", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.cr0 &= ~ControlRegister.pe } }),
    ValidatorCase(
        name: "L1 RFLAGS.VM", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.rflags |= 1 << 17 } }),
    ValidatorCase(
        name: "L1 EFER.SVME clear", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.efer &= ~EFER.svme } }),
    ValidatorCase(
        name: "L1 CR0 NW without CD", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.cr0 = ($0.save.cr0 | ControlRegister.nw) & ~ControlRegister.cd } }),
    ValidatorCase(
        name: "L1 CR0 bit 32", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.cr0 |= 1 << 32 } }),
    ValidatorCase(
        name: "L1 DR6 bit 32", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.dr6 |= 1 << 32 } }),
    ValidatorCase(
        name: "L1 DR7 bit 32", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.dr7 |= 1 << 32 } }),
    ValidatorCase(
        name: "L1 long mode without CR4.PAE", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.cr4 &= ~(1 << 5) } }),
    ValidatorCase(
        name: "L1 CR3 above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
        edit: { s, bits in vmcb(&s) { $0.save.cr3 |= 1 << UInt64(bits) } }),
    // Reserved bits: those reserved on every kernel (the rest depend on guest CPUID).
    ValidatorCase(
        name: "L1 EFER reserved bit 9", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.efer |= 1 << 9 } }),
    ValidatorCase(
        name: "L1 CR4 reserved bit 40", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcb(&s) { $0.save.cr4 |= 1 << 40 } }),
]
