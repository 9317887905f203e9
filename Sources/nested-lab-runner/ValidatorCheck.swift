import Glibc
import KVMCore

// Test 5: KVMCore's NestedStateValidator against the kernel's verdict on
// KVM_SET_NESTED_STATE, on real states taken from a running nested guest and
// mutated one rule at a time.

/// Which real state a case starts from (a stop of nested-svm-l2).
enum ValidatorBase: String, CaseIterable {
    case beforeVMRUN = "sync 2"   // EFER.SVME set, VMCB ready, not in guest mode, GIF set
    case l2Running = "sync 3"     // in L2: GUEST_MODE|GIF_SET
    case afterVMEXIT = "sync 4"   // back in L1, GIF clear
}

struct ValidatorCase {
    let name: String
    let base: ValidatorBase
    /// What the kernel source (svm_set_nested_state, 6.1 and later) does: true accept.
    let kernelAccepts: Bool
    /// A check KVMCore says it does not replicate (NestedStateValidator's header).
    var documentedGap = false
    /// Edits the vCPU's sregs (restored before the nested state).
    var sregs: ((inout SpecialRegisters) -> Void)? = nil
    /// Edits the state; `bits` is the guest's MAXPHYADDR.
    var edit: (inout NestedState, Int) -> Void = { _, _ in }
    /// Edits the encoded bytes instead (re-decoded afterwards), as a file would be.
    var editBytes: ((inout [UInt8]) -> Void)? = nil
}

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

let validatorCases: [ValidatorCase] = [
    // Accepted states.
    ValidatorCase(name: "real state, L2 running (GUEST_MODE|GIF_SET)", base: .l2Running, kernelAccepts: true),
    ValidatorCase(name: "real state, before VMRUN (GIF_SET)", base: .beforeVMRUN, kernelAccepts: true),
    ValidatorCase(name: "real state, after #VMEXIT (flags 0, SVME set)", base: .afterVMEXIT, kernelAccepts: true),
    ValidatorCase(name: "GUEST_MODE|RUN_PENDING|GIF_SET", base: .l2Running, kernelAccepts: true,
                  edit: { s, _ in s.flags.insert(.runPending) }),
    ValidatorCase(name: "GUEST_MODE with GIF clear", base: .l2Running, kernelAccepts: true,
                  edit: { s, _ in s.flags.remove(.gifSet) }),
    ValidatorCase(name: "leave guest mode: GIF_SET, size 128", base: .l2Running, kernelAccepts: true,
                  edit: { s, _ in s.flags = .gifSet; s.size = 128 }),
    ValidatorCase(name: "size 8320 > KVM_CAP_NESTED_STATE (zero bytes follow)", base: .l2Running, kernelAccepts: true,
                  edit: { s, _ in s.trailing = [UInt8](repeating: 0, count: 4096); s.size = 128 + 8192 }),
    ValidatorCase(name: "EFER.SVME clear, GIF_SET only", base: .beforeVMRUN, kernelAccepts: true,
                  sregs: { $0.efer &= ~EFER.svme }, edit: { s, _ in s.flags = .gifSet; s.size = 128 }),
    ValidatorCase(name: "vmcb_pa 0 (page aligned, legal)", base: .l2Running, kernelAccepts: true,
                  edit: { s, _ in svm(&s) { $0.header.vmcbPA = 0 } }),
    // Generic rules (x86.c).
    ValidatorCase(name: "size 64 < header", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in s.size = 64 }),
    ValidatorCase(name: "unknown flag 0x80", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in s.flags = NestedStateFlags(rawValue: s.flags.rawValue | 0x80) }),
    ValidatorCase(name: "RUN_PENDING without GUEST_MODE", base: .beforeVMRUN, kernelAccepts: false,
                  edit: { s, _ in s.flags = [.gifSet, .runPending] }),
    // Format and SVM flags.
    ValidatorCase(name: "format 0 (VMX) on an SVM host", base: .l2Running, kernelAccepts: false,
                  editBytes: { $0[2] = 0 }),
    ValidatorCase(name: "format 2 (unknown)", base: .l2Running, kernelAccepts: false,
                  editBytes: { $0[2] = 2 }),
    ValidatorCase(name: "format field 2 set on a decoded SVM state", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in s.format = NestedStateFormat(rawValue: 2) }),
    ValidatorCase(name: "VMX-only flag EVMCS", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in s.flags.insert(.evmcs) }),
    ValidatorCase(name: "VMX-only flag MTF_PENDING", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in s.flags.insert(.mtfPending) }),
    // EFER.SVME of the vCPU.
    ValidatorCase(name: "GUEST_MODE with EFER.SVME clear", base: .l2Running, kernelAccepts: false,
                  sregs: { $0.efer &= ~EFER.svme }),
    ValidatorCase(name: "EFER.SVME clear, flags 0", base: .beforeVMRUN, kernelAccepts: false,
                  sregs: { $0.efer &= ~EFER.svme }, edit: { s, _ in s.flags = []; s.size = 128 }),
    // Guest mode: header and vmcb12.
    ValidatorCase(name: "GUEST_MODE, size 128 (no vmcb12)", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in s.size = 128 }),
    ValidatorCase(name: "vmcb_pa unaligned (+8)", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in svm(&s) { $0.header.vmcbPA += 8 } }),
    ValidatorCase(name: "vmcb_pa above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
                  edit: { s, bits in svm(&s) { $0.header.vmcbPA = 1 << UInt64(bits) } }),
    ValidatorCase(name: "vmcb12 without the VMRUN intercept", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.control.interceptMisc2 &= ~1 } }),
    ValidatorCase(name: "vmcb12 ASID 0", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.control.asid = 0 } }),
    ValidatorCase(name: "msrpm_base_pa ends above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
                  edit: { s, bits in vmcb(&s) { $0.control.msrpmBasePA = (1 << UInt64(bits)) - 0x1000 } }),
    ValidatorCase(name: "iopm_base_pa ends above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
                  edit: { s, bits in vmcb(&s) { $0.control.iopmBasePA = (1 << UInt64(bits)) - 0x2000 } }),
    ValidatorCase(name: "L2 (vCPU) CR0 NW without CD", base: .l2Running, kernelAccepts: false,
                  sregs: { $0.cr0 = ($0.cr0 | ControlRegister.nw) & ~ControlRegister.cd }),
    // L1's save area (vmcb01.save).
    ValidatorCase(name: "L1 CR0 without PG", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.cr0 &= ~ControlRegister.pg } }),
    ValidatorCase(name: "L1 CR0 without PE", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.cr0 &= ~ControlRegister.pe } }),
    ValidatorCase(name: "L1 RFLAGS.VM", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.rflags |= 1 << 17 } }),
    ValidatorCase(name: "L1 EFER.SVME clear", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.efer &= ~EFER.svme } }),
    ValidatorCase(name: "L1 CR0 NW without CD", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.cr0 = ($0.save.cr0 | ControlRegister.nw) & ~ControlRegister.cd } }),
    ValidatorCase(name: "L1 CR0 bit 32", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.cr0 |= 1 << 32 } }),
    ValidatorCase(name: "L1 DR6 bit 32", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.dr6 |= 1 << 32 } }),
    ValidatorCase(name: "L1 DR7 bit 32", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.dr7 |= 1 << 32 } }),
    ValidatorCase(name: "L1 long mode without CR4.PAE", base: .l2Running, kernelAccepts: false,
                  edit: { s, _ in vmcb(&s) { $0.save.cr4 &= ~(1 << 5) } }),
    ValidatorCase(name: "L1 CR3 above MAXPHYADDR", base: .l2Running, kernelAccepts: false,
                  edit: { s, bits in vmcb(&s) { $0.save.cr3 |= 1 << UInt64(bits) } }),
    // Checks NestedStateValidator documents it does not replicate.
    ValidatorCase(name: "L1 EFER reserved bit 9", base: .l2Running, kernelAccepts: false, documentedGap: true,
                  edit: { s, _ in vmcb(&s) { $0.save.efer |= 1 << 9 } }),
    ValidatorCase(name: "L1 CR4 reserved bit 40", base: .l2Running, kernelAccepts: false, documentedGap: true,
                  edit: { s, _ in vmcb(&s) { $0.save.cr4 |= 1 << 40 } }),
]

func checkValidator() throws {
    let name = "nested-state-validator"
    let kvm = try KVM()
    let reference = try LabGuest.reference(kvm: kvm)
    var bases: [ValidatorBase: Snapshot] = [:]
    for base in ValidatorBase.allCases {
        guard let index = reference.events.firstIndex(of: base.rawValue) else {
            throw LabFailure("the guest never reached \(base.rawValue)")
        }
        bases[base] = try snapshotAtStop(index, kvm: kvm).0
    }
    var disagreements: [String] = []
    var agreed = 0, gaps = 0, skipped = 0
    for c in validatorCases {
        let snapshot = bases[c.base]!
        guard let nested = snapshot.vcpus[0].nestedState else { throw LabFailure("no nested state at \(c.base.rawValue)") }
        // Everything but the nested state, which each case edits and sets itself.
        var withoutNested = snapshot
        withoutNested.vcpus[0].nestedState = nil
        let machine = try LabGuest.restore(withoutNested, kvm: kvm)
        let vcpu = machine.vcpu
        if let edit = c.sregs {
            var sregs = try vcpu.specialRegisters()
            edit(&sregs)
            do { try vcpu.setSpecialRegisters(sregs) } catch {
                info(name, "n/a  \(c.name): KVM_SET_SREGS refused the edited registers (\(error))")
                skipped += 1
                continue
            }
        }
        let context = try vcpu.nestedStateContext()
        let bits = context.maxPhysAddrBits ?? 48
        var state: NestedState
        if let editBytes = c.editBytes {
            var bytes = nested
            editBytes(&bytes)
            state = try NestedState(bytes: bytes)
        } else {
            state = try NestedState(bytes: nested)
            c.edit(&state, bits)
        }
        let violations = NestedStateValidator.validate(state, context: context)
        let errors = violations.filter { $0.severity == .error }
        let validatorAccepts = errors.isEmpty
        let kernel: String
        let kernelAccepts: Bool
        do {
            try vcpu.setNestedState(state, validate: false)
            kernelAccepts = true
            kernel = "accepts"
        } catch let error as KVMError {
            kernelAccepts = false
            kernel = "refuses (\(error.errno.name))"
        }
        let kvmcore = validatorAccepts
            ? "accepts" + (violations.isEmpty ? "" : " with warnings \(violations.map(\.name).joined(separator: ","))")
            : "refuses (\(errors.map(\.name).joined(separator: ",")))"
        let agree = kernelAccepts == validatorAccepts
        let source = kernelAccepts == c.kernelAccepts ? "" : " [kernel source reading said \(c.kernelAccepts ? "accept" : "refuse")]"
        let tag = agree ? "ok  " : c.documentedGap ? "gap " : "DIFF"
        info(name, "\(tag) \(c.name) [\(c.base.rawValue), flags \(state.flags), size \(state.size)]: kernel \(kernel), KVMCore \(kvmcore)\(source)")
        if agree { agreed += 1 } else if c.documentedGap { gaps += 1 } else {
            disagreements.append("'\(c.name)': kernel \(kernel), KVMCore \(kvmcore)")
        }
    }
    info(name, "\(agreed) agree, \(disagreements.count) disagree, \(gaps) disagree on checks KVMCore documents it does not make, \(skipped) not applicable")
    if !disagreements.isEmpty { throw LabFailure(disagreements.joined(separator: "; ")) }
}
