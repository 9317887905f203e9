import KVMCore

// Test 5 on VMX: nested-vmx-l2's real states, each case breaking one rule of
// vmx_set_nested_state() (or keeping to them); `kernelAccepts` is what the
// kernel source (6.1, arch/x86/kvm/vmx/nested.c) does.

private func vmxHeader(_ s: inout NestedState, _ f: (inout VMXNestedHeader) -> Void) {
    guard case .vmx(var p) = s.payload else { return }
    f(&p.header)
    s.payload = .vmx(p)
}
private func vmcs12(_ s: inout NestedState, _ f: (inout VMCS12) -> Void) {
    guard case .vmx(var p) = s.payload, var v = p.vmcs12 else { return }
    f(&v)
    p.vmcs12 = v
    s.payload = .vmx(p)
}
/// VMX off: vmxon_pa and vmcs12_pa -1, no data.
private func vmxOff(_ s: inout NestedState) {
    vmxHeader(&s) {
        $0.vmxonPA = NestedState.invalidGPA
        $0.vmcs12PA = NestedState.invalidGPA
    }
    s.size = UInt32(NestedState.headerSize)
}
/// vmcs12 enables VMCS shadowing (secondary controls on, SHADOW_VMCS) with a link pointer.
private func shadowing(_ v: inout VMCS12) {
    v.primaryProcBasedControls |= 0x8000_0000
    v.secondaryProcBasedControls |= 0x4000
    v.vmcsLinkPointer = 0x20_0000
}
private let header = UInt32(NestedState.headerSize)
private let page = UInt32(VMCS12.pageSize)

/// The cases on an Intel host, from nested-vmx-l2's stops.
let vmxValidatorCases: [ValidatorCase] = [
    // Accepted states.
    ValidatorCase(name: "real state, L2 running (GUEST_MODE)", base: .l2Running, kernelAccepts: true),
    ValidatorCase(name: "real state, VMCS loaded before VMLAUNCH", base: .beforeEntry, kernelAccepts: true),
    ValidatorCase(name: "real state, before VMXON (vmxon_pa -1)", base: .beforeEnable, kernelAccepts: true),
    ValidatorCase(name: "real state, after the VM exit", base: .afterExit, kernelAccepts: true),
    ValidatorCase(
        name: "GUEST_MODE|RUN_PENDING", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in s.flags.insert(.runPending) }),
    ValidatorCase(
        name: "GUEST_MODE|MTF_PENDING", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in s.flags.insert(.mtfPending) }),
    ValidatorCase(
        name: "leave guest mode: flags 0, vmcs12 kept", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in s.flags = [] }),
    ValidatorCase(
        name: "VMXON with no current VMCS (vmcs12_pa -1, size 128)", base: .beforeEntry, kernelAccepts: true,
        edit: { s, _ in
            vmxHeader(&s) { $0.vmcs12PA = NestedState.invalidGPA }
            s.size = header
        }),
    ValidatorCase(
        name: "size 128+8192+4096 > KVM_CAP_NESTED_STATE (zero bytes follow)", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in
            s.trailing = [UInt8](repeating: 0, count: 3 * VMCS12.pageSize)
            s.size = header + 3 * page
        }),
    ValidatorCase(
        name: "GIF_SET (an SVM flag) with VMX on", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in s.flags.insert(.gifSet) }),
    ValidatorCase(
        name: "header flag PREEMPTION_TIMER_DEADLINE", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in vmxHeader(&s) { $0.flags.insert(.preemptionTimerDeadline) } }),
    // The kernel reads sizeof(struct vmcs12) bytes (998 on 6.1, __packed), not the page.
    ValidatorCase(
        name: "GUEST_MODE, size 128+998 (sizeof(struct vmcs12))", base: .l2Running, kernelAccepts: true,
        edit: { s, _ in s.size = header + UInt32(VMCS12.structSize) }),
    ValidatorCase(
        name: "GUEST_MODE, size 128+997 (vmcs12 cut short)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.size = header + UInt32(VMCS12.structSize) - 1 }),
    // Generic rules (x86.c).
    ValidatorCase(
        name: "size 64 < header", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.size = 64 }),
    ValidatorCase(
        name: "unknown flag 0x80", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.flags = NestedStateFlags(rawValue: s.flags.rawValue | 0x80) }),
    ValidatorCase(
        name: "RUN_PENDING without GUEST_MODE", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in s.flags = [.runPending] }),
    // Format.
    ValidatorCase(
        name: "format 1 (SVM) on a VMX host", base: .l2Running, kernelAccepts: false,
        editBytes: { $0[2] = 1 }),
    ValidatorCase(
        name: "format 2 (unknown)", base: .l2Running, kernelAccepts: false,
        editBytes: { $0[2] = 2 }),
    // VMX off (vmxon_pa -1).
    ValidatorCase(
        name: "VMX off with SMM flag VMXON", base: .beforeEnable, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.smmFlags = .vmxon } }),
    ValidatorCase(
        name: "VMX off with a vmcs12_pa", base: .beforeEnable, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.vmcs12PA = 0x10_0000 } }),
    ValidatorCase(
        name: "VMX off with GUEST_MODE", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in
            vmxOff(&s)
            s.flags = .guestMode
        }),
    ValidatorCase(
        name: "VMX off with GIF_SET", base: .beforeEnable, kernelAccepts: false,
        edit: { s, _ in s.flags = .gifSet }),
    ValidatorCase(
        name: "VMX off with EVMCS (not enabled)", base: .beforeEnable, kernelAccepts: false,
        edit: { s, _ in s.flags = .evmcs }),
    // VMX on: header.
    ValidatorCase(
        name: "EVMCS not enabled on the vCPU", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.flags.insert(.evmcs) }),
    ValidatorCase(
        name: "guest CPUID without VMX", base: .beforeEntry, kernelAccepts: false,
        cpuid: { t in for i in t.entries.indices where t.entries[i].function == 1 { t.entries[i].ecx &= ~(1 << 5) } }),
    ValidatorCase(
        name: "vmxon_pa unaligned (+8)", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.vmxonPA += 8 } }),
    ValidatorCase(
        name: "vmxon_pa above MAXPHYADDR", base: .beforeEntry, kernelAccepts: false,
        edit: { s, bits in vmxHeader(&s) { $0.vmxonPA = 1 << UInt64(bits) } }),
    ValidatorCase(
        name: "SMM GUEST_MODE with GUEST_MODE", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.smmFlags = [.guestMode, .vmxon] } }),
    ValidatorCase(
        name: "unknown SMM flag 0x4", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.smmFlags = NestedSMMFlags(rawValue: 0x4) } }),
    ValidatorCase(
        name: "unknown VMX header flag 0x2", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.flags = NestedVMXHeaderFlags(rawValue: 0x2) } }),
    ValidatorCase(
        name: "SMM flag VMXON outside SMM", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.smmFlags = .vmxon } }),
    // VMX on: the vmcs12 and its pointer.
    ValidatorCase(
        name: "GUEST_MODE, size 128 (no vmcs12)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in s.size = header }),
    ValidatorCase(
        name: "vmcs12_pa set, size 128 (no vmcs12)", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in s.size = header }),
    ValidatorCase(
        name: "vmcs12 present, vmcs12_pa -1", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.vmcs12PA = NestedState.invalidGPA } }),
    ValidatorCase(
        name: "vmcs12_pa = vmxon_pa", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.vmcs12PA = $0.vmxonPA } }),
    ValidatorCase(
        name: "vmcs12_pa unaligned (+8)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmxHeader(&s) { $0.vmcs12PA += 8 } }),
    ValidatorCase(
        name: "vmcs12_pa above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
        edit: { s, bits in vmxHeader(&s) { $0.vmcs12PA = 1 << UInt64(bits) } }),
    ValidatorCase(
        name: "vmcs12 revision 0, not in guest mode", base: .beforeEntry, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.revisionID = 0 } }),
    ValidatorCase(
        name: "vmcs12 revision 0, GUEST_MODE", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.revisionID = 0 } }),
    ValidatorCase(
        name: "vmcs12 shadowing with a link pointer, no shadow_vmcs12 (size 4224)", base: .l2Running,
        kernelAccepts: false,
        edit: { s, _ in vmcs12(&s, shadowing) }),
    ValidatorCase(
        name: "shadow_vmcs12 with revision 0", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in
            vmcs12(&s, shadowing)
            guard case .vmx(var p) = s.payload else { return }
            p.shadowVMCS12 = VMCS12(raw: [UInt8](repeating: 0, count: VMCS12.pageSize))
            s.payload = .vmx(p)
            s.size = header + 2 * page
        }),
    // VM-entry consistency checks of vmcs12 in GUEST_MODE (nested_vmx_check_controls,
    // _host_state, _guest_state) whose verdict is the same for every L1.
    ValidatorCase(
        name: "vmcs12 CR3_TARGET_COUNT 5 (controls)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.raw[764] = 5 } }),
    ValidatorCase(
        name: "vmcs12 CR3_TARGET_COUNT 1 (KVM's IA32_VMX_MISC allows 0)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.raw[764] = 1 } }),
    ValidatorCase(
        name: "vmcs12 HOST_CR0 without NE (host state)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.hostCR0 &= ~ControlRegister.ne } }),
    ValidatorCase(
        name: "vmcs12 HOST_CR4 without VMXE (host state)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.hostCR4 &= ~ControlRegister.vmxe } }),
    ValidatorCase(
        name: "vmcs12 GUEST_CR0 without PG (guest state)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.guestCR0 &= ~ControlRegister.pg } }),
    ValidatorCase(
        name: "vmcs12 GUEST_CR0 without NE (guest state)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.guestCR0 &= ~ControlRegister.ne } }),
    ValidatorCase(
        name: "vmcs12 GUEST_CR4 without VMXE (guest state)", base: .l2Running, kernelAccepts: false,
        edit: { s, _ in vmcs12(&s) { $0.guestCR4 &= ~ControlRegister.vmxe } }),
    // Out of guest mode the kernel makes no entry checks.
    ValidatorCase(
        name: "vmcs12 HOST_CR4 without VMXE, not in guest mode", base: .beforeEntry, kernelAccepts: true,
        edit: { s, _ in vmcs12(&s) { $0.hostCR4 &= ~ControlRegister.vmxe } }),
]
