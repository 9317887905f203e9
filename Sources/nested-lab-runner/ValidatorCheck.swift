import Glibc
import KVMCore

// Test 5: KVMCore's NestedStateValidator against the kernel's verdict on
// KVM_SET_NESTED_STATE, on real states taken from a running nested guest and
// mutated one rule at a time (the cases: ValidatorCasesSVM.swift on AMD,
// ValidatorCasesVMX.swift on Intel).

/// Which real state a case starts from: a stop of the lab guest (LabGuest).
enum ValidatorBase: String, CaseIterable, Sendable {
    case beforeEnable = "sync 1" // VMX: before VMXON (vmxon_pa -1); SVM: before EFER.SVME
    case beforeEntry = "sync 2" // VMX: VMXON, VMCS loaded; SVM: EFER.SVME set, VMCB ready, GIF set
    case l2Running = "sync 3" // in L2: GUEST_MODE (SVM: |GIF_SET)
    case afterExit = "sync 4" // back in L1 (VMX: still in VMX operation; SVM: GIF clear)
}

struct ValidatorCase: Sendable {
    let name: String
    let base: ValidatorBase
    /// What the kernel source (svm_/vmx_set_nested_state, 6.1 and later) does: true accept.
    let kernelAccepts: Bool
    /// A check KVMCore says it does not replicate (NestedStateValidator's header).
    var documentedGap = false
    /// Edits the vCPU's sregs (restored before the nested state).
    var sregs: (@Sendable (inout SpecialRegisters) -> Void)? = nil
    /// Edits the vCPU's CPUID (set before the nested state, as a restore does).
    var cpuid: (@Sendable (inout CPUID) -> Void)? = nil
    /// Edits the state; `bits` is the guest's MAXPHYADDR.
    var edit: @Sendable (inout NestedState, Int) -> Void = { _, _ in }
    /// Edits the encoded bytes instead (re-decoded afterwards), as a file would be.
    var editBytes: (@Sendable (inout [UInt8]) -> Void)? = nil
}

func checkValidator() throws {
    let name = "nested-state-validator"
    let kvm = try KVM()
    let reference = try LabGuest.reference(kvm: kvm)
    let cases = LabGuest.vendor == .vmx ? vmxValidatorCases : svmValidatorCases
    var bases: [ValidatorBase: Snapshot] = [:]
    for base in ValidatorBase.allCases where cases.contains(where: { $0.base == base }) {
        guard let index = reference.events.firstIndex(of: base.rawValue) else {
            throw LabFailure("the guest never reached \(base.rawValue)")
        }
        bases[base] = try snapshotAtStop(index, kvm: kvm).0
    }
    var disagreements: [String] = []
    var agreed = 0
    var gaps = 0
    var skipped = 0
    for c in cases {
        let snapshot = bases[c.base]!
        guard let nested = snapshot.vcpus[0].nestedState else {
            throw LabFailure("no nested state at \(c.base.rawValue)")
        }
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
        if let edit = c.cpuid {
            var table = try vcpu.cpuid()
            edit(&table)
            do { try vcpu.setCPUID(table) } catch {
                info(name, "n/a  \(c.name): KVM_SET_CPUID2 refused the edited CPUID (\(error))")
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
        let kvmcore =
            validatorAccepts
            ? "accepts" + (violations.isEmpty ? "" : " with warnings \(violations.map(\.name).joined(separator: ","))")
            : "refuses (\(errors.map(\.name).joined(separator: ",")))"
        let agree = kernelAccepts == validatorAccepts
        let source =
            kernelAccepts == c.kernelAccepts
            ? "" : " [kernel source reading said \(c.kernelAccepts ? "accept" : "refuse")]"
        let tag = agree ? "ok  " : c.documentedGap ? "gap " : "DIFF"
        info(
            name,
            "\(tag) \(c.name) [\(c.base.rawValue), flags \(state.flags), size \(state.size)]: kernel \(kernel), KVMCore \(kvmcore)\(source)"
        )
        if agree {
            agreed += 1
        } else if c.documentedGap {
            gaps += 1
        } else {
            disagreements.append("'\(c.name)': kernel \(kernel), KVMCore \(kvmcore)")
        }
    }
    info(
        name,
        "\(agreed) agree, \(disagreements.count) disagree, \(gaps) disagree on checks KVMCore documents it does not make, \(skipped) not applicable"
    )
    if !disagreements.isEmpty { throw LabFailure(disagreements.joined(separator: "; ")) }
}
