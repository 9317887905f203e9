// Checks a nested state against the rules KVM_SET_NESTED_STATE enforces, before the
// ioctl, so a restore fails with a named reason instead of a bare EINVAL.
//
// Sources (the `kernelReference` of each violation quotes the enforcing line):
//  - arch/x86/kvm/x86.c, kvm_arch_vcpu_ioctl(), case KVM_SET_NESTED_STATE
//  - arch/x86/kvm/vmx/nested.c, vmx_set_nested_state() and nested_vmx_check_restored_vmcs12()
//  - arch/x86/kvm/svm/nested.c, svm_set_nested_state(), nested_vmcb_check_controls(),
//    nested_vmcb_check_save()
//  - tools/testing/selftests/kvm/x86/{vmx_,}nested_set_state_test.c (one case per rule)
// Not replicated: the full VM-entry consistency checks of vmcs12 (nested_vmx_check_controls,
// _host_state, _guest_state), CR4/EFER reserved bits (they depend on guest CPUID), and
// the checks newer kernels add for SVM event injection and V_NMI.

import Glibc

/// The host CPU's virtualization extension.
public enum NestedVendor: String, Equatable, Sendable {
    case vmx, svm, unknown
}

/// What the validator needs to know about the host and the vCPU the state goes to.
/// Optional facts that are nil are not checked.
public struct NestedStateHostContext: Equatable, Sendable {
    /// KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE): 0 = no nested state support, else the
    /// largest state this host produces (VMX 8320, SVM 4224).
    public var capabilitySize: Int
    public var vendor: NestedVendor
    /// The vCPU's EFER as it will be when KVM_SET_NESTED_STATE runs (restore SREGS first).
    public var efer: UInt64?
    /// KVM_CAP_HYPERV_ENLIGHTENED_VMCS enabled on the vCPU.
    public var evmcsEnabled: Bool
    /// Guest CPUID advertises VMX (CPUID.1:ECX bit 5).
    public var guestHasVMX: Bool?
    /// The vCPU is in SMM (kvm_vcpu_events.smi.smm), restored before nested state.
    public var inSMM: Bool?
    /// The vCPU's CR0 (for SVM in guest mode: L2's CR0).
    public var cr0: UInt64?
    /// Guest MAXPHYADDR (CPUID 0x80000008 EAX[7:0]) for the legal-address checks.
    public var maxPhysAddrBits: Int?

    public init(capabilitySize: Int, vendor: NestedVendor, efer: UInt64? = nil, evmcsEnabled: Bool = false,
                guestHasVMX: Bool? = nil, inSMM: Bool? = nil, cr0: UInt64? = nil, maxPhysAddrBits: Int? = nil) {
        self.capabilitySize = capabilitySize
        self.vendor = vendor
        self.efer = efer
        self.evmcsEnabled = evmcsEnabled
        self.guestHasVMX = guestHasVMX
        self.inSMM = inSMM
        self.cr0 = cr0
        self.maxPhysAddrBits = maxPhysAddrBits
    }
}

public enum NestedStateSeverity: String, Equatable, Sendable {
    /// KVM_SET_NESTED_STATE will fail (or read past the buffer).
    case error
    /// KVM accepts it, but it is probably not what was meant.
    case warning
}

/// One broken rule. `message` is for people, `kernelReference` names the check.
public enum NestedStateViolation: Equatable, Sendable, CustomStringConvertible {
    // Generic (x86.c)
    case noNestedStateSupport
    case bufferTooSmall(available: Int)
    case sizeTooSmall(size: UInt32)
    case sizeExceedsBuffer(size: UInt32, available: Int)
    case sizeExceedsCapability(size: UInt32, capability: Int)
    case unknownFlags(UInt16)
    case runPendingWithoutGuestMode
    // Format
    case unknownFormat(UInt16)
    case formatMismatch(format: NestedStateFormat, host: NestedVendor)
    case flagsNotForSVM(NestedStateFlags)
    case gifSetOnVMX
    // VMX
    case vmxOffWithSMMFlags(NestedSMMFlags)
    case vmxOffWithVMCS12Pointer(UInt64)
    case vmxOffWithFlags(NestedStateFlags)
    case vmxNotExposedToGuest
    case vmxonAddressInvalid(UInt64)
    case smmGuestModeWithGuestMode
    case unknownSMMFlags(UInt16)
    case unknownVMXHeaderFlags(UInt32)
    case smmFlagsOutsideSMM(NestedSMMFlags)
    case guestModeInSMM
    case smmGuestModeWithoutSMMVMXON
    case evmcsNotEnabled
    case vmcs12Missing(size: UInt32)
    case vmcs12WithoutPointer
    case vmcs12AddressEqualsVMXON(UInt64)
    case vmcs12AddressInvalid(UInt64)
    case vmcs12BadRevision(UInt32)
    case shadowVMCS12Missing(size: UInt32)
    case shadowVMCS12Invalid(revision: UInt32, shadowBit: Bool)
    // SVM
    case svmDisabledInEFER(NestedStateFlags)
    case svmDisabledEmptyFlags
    case eferUnknown
    case vmcbAddressInvalid(UInt64)
    case vmcbMissing(size: UInt32)
    case vmrunNotIntercepted
    case asidZero
    case bitmapAddressInvalid(name: String, address: UInt64)
    case l2CR0Invalid(UInt64)
    case l1NotPagedProtectedMode(cr0: UInt64)
    case l1InVirtual8086Mode(rflags: UInt64)
    case l1SVMEClear(efer: UInt64)
    case l1CR0Invalid(UInt64)
    case l1DebugRegistersInvalid(dr6: UInt64, dr7: UInt64)
    case l1LongModeWithoutPAE(cr4: UInt64)
    case l1CR3Illegal(UInt64)

    public var severity: NestedStateSeverity { entry.severity }
    /// The case name, e.g. "runPendingWithoutGuestMode".
    public var name: String { entry.name }
    public var description: String { "\(severity.rawValue): \(message)" }
    public var message: String { entry.message }
    /// The kernel line that enforces the rule (or why userspace must).
    public var kernelReference: String { entry.kernelReference }

    /// Everything said about one violation, written once.
    struct Entry {
        let name: String
        let severity: NestedStateSeverity
        let message: String
        let kernelReference: String

        init(_ name: String, _ severity: NestedStateSeverity, _ message: String, kernel kernelReference: String) {
            self.name = name
            self.severity = severity
            self.message = message
            self.kernelReference = kernelReference
        }

        init(_ name: String, _ message: String, kernel kernelReference: String) {
            self.init(name, .error, message, kernel: kernelReference)
        }
    }

    // Where the kernel checks live (each rule's reference starts with one).
    private static let x86 = "arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl(KVM_SET_NESTED_STATE): "
    private static let vmx = "arch/x86/kvm/vmx/nested.c vmx_set_nested_state(): "
    private static let svm = "arch/x86/kvm/svm/nested.c svm_set_nested_state(): "
    private static let ctl = "arch/x86/kvm/svm/nested.c nested_vmcb_check_controls(): "
    private static let save = "arch/x86/kvm/svm/nested.c nested_vmcb_check_save(): "
    // Kernel lines that enforce two cases each.
    private static let formatCheck = vmx + "if (kvm_state->format != KVM_STATE_NESTED_FORMAT_VMX); " + svm + "if (kvm_state->format != KVM_STATE_NESTED_FORMAT_SVM)"
    private static let vmcs12AddressCheck = vmx + "if (kvm_state->hdr.vmx.vmcs12_pa == kvm_state->hdr.vmx.vmxon_pa || !page_address_valid(vcpu, kvm_state->hdr.vmx.vmcs12_pa))"
    private static let svmEFERCheck = svm + "if (!(vcpu->arch.efer & EFER_SVME) && kvm_state->flags && kvm_state->flags != KVM_STATE_NESTED_GIF_SET) return -EINVAL;"

    /// The table: one entry per case with its name, severity, message and the kernel
    /// line it mirrors. The checks that report each case are `NestedStateValidator.rules`.
    var entry: Entry {
        typealias V = NestedStateViolation
        func hex(_ v: UInt64) -> String { NestedHex.string(v) }
        let header = NestedState.headerSize
        switch self {
        // Generic (x86.c)
        case .noNestedStateSupport:
            return Entry("noNestedStateSupport", "KVM_CAP_NESTED_STATE = 0: host KVM has no nested state support",
                         kernel: V.x86 + "if (!kvm_x86_ops.nested_ops->set_state) (KVM_CAP_NESTED_STATE is 0 without nested ops)")
        case let .bufferTooSmall(n):
            return Entry("bufferTooSmall", "the buffer holds \(n) bytes, less than the \(header)-byte kvm_nested_state header",
                         kernel: V.x86 + "copy_from_user(&kvm_state, user_kvm_nested_state, sizeof(kvm_state)) -> EFAULT")
        case let .sizeTooSmall(size):
            return Entry("sizeTooSmall", "size \(size) is smaller than the \(header)-byte header",
                         kernel: V.x86 + "if (kvm_state.size < sizeof(kvm_state))")
        case let .sizeExceedsBuffer(size, n):
            return Entry("sizeExceedsBuffer", "size \(size) claims more bytes than the \(n) present; the kernel would read past the buffer",
                         kernel: "no kernel check: the vendor code copy_from_user()s the data region trusting kvm_state->size")
        case let .sizeExceedsCapability(size, cap):
            return Entry("sizeExceedsCapability", .warning, "size \(size) is larger than this host's KVM_CAP_NESTED_STATE (\(cap)); the excess is ignored",
                         kernel: "no kernel check: KVM reads only the pages it knows and ignores the rest")
        case let .unknownFlags(bits):
            return Entry("unknownFlags", "unknown flag bits \(hex(UInt64(bits))) (known: GUEST_MODE, RUN_PENDING, EVMCS, MTF_PENDING, GIF_SET)",
                         kernel: V.x86 + "if (kvm_state.flags & ~(KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_EVMCS | KVM_STATE_NESTED_MTF_PENDING | KVM_STATE_NESTED_GIF_SET))")
        case .runPendingWithoutGuestMode:
            return Entry("runPendingWithoutGuestMode", "RUN_PENDING is set without GUEST_MODE",
                         kernel: V.x86 + "if ((kvm_state.flags & KVM_STATE_NESTED_RUN_PENDING) && !(kvm_state.flags & KVM_STATE_NESTED_GUEST_MODE))")
        // Format
        case let .unknownFormat(f):
            return Entry("unknownFormat", "format \(f) is neither VMX (0) nor SVM (1)", kernel: V.formatCheck)
        case let .formatMismatch(format, host):
            return Entry("formatMismatch", "the state's format is \(format) but the host uses \(host); nested state restores only on the same vendor",
                         kernel: V.formatCheck)
        case let .flagsNotForSVM(flags):
            return Entry("flagsNotForSVM", "\(flags.description) are VMX-only flags; SVM accepts only GUEST_MODE, RUN_PENDING, GIF_SET",
                         kernel: V.svm + "if (kvm_state->flags & ~(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_GIF_SET))")
        case .gifSetOnVMX:
            return Entry("gifSetOnVMX", .warning, "GIF_SET is an SVM flag; VMX ignores it",
                         kernel: "vmx_set_nested_state() never reads KVM_STATE_NESTED_GIF_SET (rejected only via `if (kvm_state->flags & ~KVM_STATE_NESTED_EVMCS)` when vmxon_pa is -1)")
        // VMX
        case let .vmxOffWithSMMFlags(f):
            return Entry("vmxOffWithSMMFlags", "vmxon_pa is -1 (VMX off) but SMM flags are set (\(f))",
                         kernel: V.vmx + "if (kvm_state->hdr.vmx.vmxon_pa == INVALID_GPA) { if (kvm_state->hdr.vmx.smm.flags) return -EINVAL;")
        case let .vmxOffWithVMCS12Pointer(pa):
            return Entry("vmxOffWithVMCS12Pointer", "vmxon_pa is -1 (VMX off) but vmcs12_pa is \(hex(pa)); it must be -1 too",
                         kernel: V.vmx + "if (kvm_state->hdr.vmx.vmxon_pa == INVALID_GPA) { … if (kvm_state->hdr.vmx.vmcs12_pa != INVALID_GPA) return -EINVAL;")
        case let .vmxOffWithFlags(f):
            return Entry("vmxOffWithFlags", "vmxon_pa is -1 (VMX off) but flags \(f) are set; only EVMCS is allowed",
                         kernel: V.vmx + "if (kvm_state->hdr.vmx.vmxon_pa == INVALID_GPA) { … if (kvm_state->flags & ~KVM_STATE_NESTED_EVMCS) return -EINVAL;")
        case .vmxNotExposedToGuest:
            return Entry("vmxNotExposedToGuest", "vmxon_pa is set but the guest CPUID does not advertise VMX (set CPUID before nested state)",
                         kernel: V.vmx + "if (!guest_cpu_cap_has(vcpu, X86_FEATURE_VMX)) return -EINVAL; (older kernels: nested_vmx_allowed(vcpu))")
        case let .vmxonAddressInvalid(pa):
            return Entry("vmxonAddressInvalid", "vmxon_pa \(hex(pa)) is not a page-aligned, legal guest-physical address",
                         kernel: V.vmx + "if (!page_address_valid(vcpu, kvm_state->hdr.vmx.vmxon_pa))")
        case .smmGuestModeWithGuestMode:
            return Entry("smmGuestModeWithGuestMode", "SMM GUEST_MODE and GUEST_MODE are both set",
                         kernel: V.vmx + "if ((kvm_state->hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_GUEST_MODE) && (kvm_state->flags & KVM_STATE_NESTED_GUEST_MODE))")
        case let .unknownSMMFlags(bits):
            return Entry("unknownSMMFlags", "unknown SMM flag bits \(hex(UInt64(bits))) (known: GUEST_MODE, VMXON)",
                         kernel: V.vmx + "if (kvm_state->hdr.vmx.smm.flags & ~(KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON))")
        case let .unknownVMXHeaderFlags(bits):
            return Entry("unknownVMXHeaderFlags", "unknown VMX header flag bits \(hex(UInt64(bits))) (known: PREEMPTION_TIMER_DEADLINE)",
                         kernel: V.vmx + "if (kvm_state->hdr.vmx.flags & ~KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE)")
        case let .smmFlagsOutsideSMM(f):
            return Entry("smmFlagsOutsideSMM", "SMM flags (\(f)) are set but the vCPU is not in SMM (restore vCPU events first)",
                         kernel: V.vmx + "if (is_smm(vcpu) ? (kvm_state->flags & (KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING)) : kvm_state->hdr.vmx.smm.flags)")
        case .guestModeInSMM:
            return Entry("guestModeInSMM", "the vCPU is in SMM, which cannot be combined with GUEST_MODE or RUN_PENDING",
                         kernel: V.vmx + "if (is_smm(vcpu) ? (kvm_state->flags & (KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING)) : …); " + V.svm + "if (is_smm(vcpu) && (kvm_state->flags & KVM_STATE_NESTED_GUEST_MODE))")
        case .smmGuestModeWithoutSMMVMXON:
            return Entry("smmGuestModeWithoutSMMVMXON", "SMM GUEST_MODE is set without SMM VMXON",
                         kernel: V.vmx + "if ((kvm_state->hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_GUEST_MODE) && !(kvm_state->hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_VMXON))")
        case .evmcsNotEnabled:
            return Entry("evmcsNotEnabled", "EVMCS is set but the enlightened VMCS capability is not enabled on the vCPU (or the guest lacks VMX)",
                         kernel: V.vmx + "if ((kvm_state->flags & KVM_STATE_NESTED_EVMCS) && (!guest_cpu_cap_has(vcpu, X86_FEATURE_VMX) || !vmx->nested.enlightened_vmcs_enabled))")
        case let .vmcs12Missing(size):
            return Entry("vmcs12Missing", "size \(size) has no vmcs12 (needs \(header + VMCS12.pageSize)) but GUEST_MODE, EVMCS or vmcs12_pa says there is one",
                         kernel: V.vmx + "if (kvm_state->size < sizeof(*kvm_state) + sizeof(*vmcs12)) { if ((kvm_state->flags & KVM_STATE_NESTED_GUEST_MODE) || (kvm_state->flags & KVM_STATE_NESTED_EVMCS) || (kvm_state->hdr.vmx.vmcs12_pa != INVALID_GPA)) return -EINVAL;")
        case .vmcs12WithoutPointer:
            return Entry("vmcs12WithoutPointer", "a vmcs12 is present but vmcs12_pa is -1 and EVMCS is not set",
                         kernel: V.vmx + "if (kvm_state->hdr.vmx.vmcs12_pa != INVALID_GPA) { … } else if (kvm_state->flags & KVM_STATE_NESTED_EVMCS) { … } else { return -EINVAL; }")
        case let .vmcs12AddressEqualsVMXON(pa):
            return Entry("vmcs12AddressEqualsVMXON", "vmcs12_pa equals vmxon_pa (\(hex(pa)))", kernel: V.vmcs12AddressCheck)
        case let .vmcs12AddressInvalid(pa):
            return Entry("vmcs12AddressInvalid", "vmcs12_pa \(hex(pa)) is not a page-aligned, legal guest-physical address",
                         kernel: V.vmcs12AddressCheck)
        case let .vmcs12BadRevision(rev):
            return Entry("vmcs12BadRevision", "vmcs12 revision \(hex(UInt64(rev))) is not VMCS12_REVISION \(hex(UInt64(VMCS12.revision)))",
                         kernel: V.vmx + "if (vmcs12->hdr.revision_id != VMCS12_REVISION)")
        case let .shadowVMCS12Missing(size):
            return Entry("shadowVMCS12Missing", "vmcs12 enables VMCS shadowing with a link pointer but size \(size) has no shadow_vmcs12 (needs \(header + 2 * VMCS12.pageSize))",
                         kernel: V.vmx + "if (nested_cpu_has_shadow_vmcs(vmcs12) && vmcs12->vmcs_link_pointer != INVALID_GPA) { … if (kvm_state->size < sizeof(*kvm_state) + sizeof(user_vmx_nested_state->vmcs12) + sizeof(*shadow_vmcs12)) goto error_guest_mode;")
        case let .shadowVMCS12Invalid(rev, bit):
            return Entry("shadowVMCS12Invalid", "shadow_vmcs12 has revision \(hex(UInt64(rev)))\(bit ? "" : " and no shadow_vmcs bit"); it needs VMCS12_REVISION and the shadow bit",
                         kernel: "arch/x86/kvm/vmx/nested.c nested_vmx_check_restored_vmcs12(): if (shadow_vmcs12->hdr.revision_id != VMCS12_REVISION || !shadow_vmcs12->hdr.shadow_vmcs)")
        // SVM
        case let .svmDisabledInEFER(f):
            return Entry("svmDisabledInEFER", "EFER.SVME is clear on the vCPU but flags are \(f); with SVME clear only GIF_SET (or nothing) is allowed — restore SREGS (EFER) first",
                         kernel: V.svmEFERCheck)
        case .svmDisabledEmptyFlags:
            return Entry("svmDisabledEmptyFlags", "EFER.SVME is clear and flags are 0: with SVM off the kernel accepts only GIF_SET (restore SREGS first)",
                         kernel: V.svm + "if (!(vcpu->arch.efer & EFER_SVME)) { if (kvm_state->flags != KVM_STATE_NESTED_GIF_SET) return -EINVAL; } (measured on 6.1 in the nested lab)")
        case .eferUnknown:
            return Entry("eferUnknown", .warning, "vCPU EFER unknown: GUEST_MODE needs EFER.SVME set, so restore SREGS before KVM_SET_NESTED_STATE",
                         kernel: V.svmEFERCheck)
        case let .vmcbAddressInvalid(pa):
            return Entry("vmcbAddressInvalid", "vmcb_pa \(hex(pa)) is not a page-aligned, legal guest-physical address",
                         kernel: V.svm + "if (!page_address_valid(vcpu, kvm_state->hdr.svm.vmcb_pa))")
        case let .vmcbMissing(size):
            return Entry("vmcbMissing", "GUEST_MODE is set but size \(size) has no vmcb12 (needs \(header + VMCB.pageSize))",
                         kernel: V.svm + "if (kvm_state->size < sizeof(*kvm_state) + KVM_STATE_NESTED_SVM_VMCB_SIZE)")
        case .vmrunNotIntercepted:
            return Entry("vmrunNotIntercepted", "vmcb12 control does not intercept VMRUN",
                         kernel: V.ctl + "if (CC(!vmcb12_is_intercept(control, INTERCEPT_VMRUN)))")
        case .asidZero:
            return Entry("asidZero", "vmcb12 control has ASID 0", kernel: V.ctl + "if (CC(control->asid == 0))")
        case let .bitmapAddressInvalid(name, pa):
            return Entry("bitmapAddressInvalid", "vmcb12 \(name) \(hex(pa)) is not a legal guest-physical address range",
                         kernel: V.ctl + "if (CC(!nested_svm_check_bitmap_pa(vcpu, control->msrpm_base_pa, MSRPM_SIZE))) / (…iopm_base_pa, IOPM_SIZE)")
        case let .l2CR0Invalid(cr0):
            return Entry("l2CR0Invalid", "the vCPU's (L2) CR0 \(hex(cr0)) has NW set with CD clear",
                         kernel: V.svm + "cr0 = kvm_read_cr0(vcpu); if (((cr0 & X86_CR0_CD) == 0) && (cr0 & X86_CR0_NW)) goto out_free;")
        case let .l1NotPagedProtectedMode(cr0):
            return Entry("l1NotPagedProtectedMode", "L1 save area CR0 \(hex(cr0)) lacks PG or PE (L1 must be in paged protected mode)",
                         kernel: V.svm + "if (!(save->cr0 & X86_CR0_PG) || !(save->cr0 & X86_CR0_PE) || …")
        case let .l1InVirtual8086Mode(rflags):
            return Entry("l1InVirtual8086Mode", "L1 save area RFLAGS \(hex(rflags)) has VM set",
                         kernel: V.svm + "if (… || (save->rflags & X86_EFLAGS_VM) || …")
        case let .l1SVMEClear(efer):
            return Entry("l1SVMEClear", "L1 save area EFER \(hex(efer)) has SVME clear", kernel: V.save + "if (CC(!(save->efer & EFER_SVME)))")
        case let .l1CR0Invalid(cr0):
            return Entry("l1CR0Invalid", "L1 save area CR0 \(hex(cr0)) has NW without CD, or bits above 31 set",
                         kernel: V.save + "if (CC((save->cr0 & X86_CR0_CD) == 0 && (save->cr0 & X86_CR0_NW)) || CC(save->cr0 & ~0xffffffffULL))")
        case let .l1DebugRegistersInvalid(dr6, dr7):
            return Entry("l1DebugRegistersInvalid", "L1 save area DR6 \(hex(dr6)) / DR7 \(hex(dr7)) have bits above 31 set",
                         kernel: V.save + "if (CC(!kvm_dr6_valid(save->dr6)) || CC(!kvm_dr7_valid(save->dr7)))")
        case let .l1LongModeWithoutPAE(cr4):
            return Entry("l1LongModeWithoutPAE", "L1 save area has EFER.LME and CR0.PG but CR4 \(hex(cr4)) lacks PAE",
                         kernel: V.save + "if ((save->efer & EFER_LME) && (save->cr0 & X86_CR0_PG)) { if (CC(!(save->cr4 & X86_CR4_PAE)) || CC(!(save->cr0 & X86_CR0_PE)) || …")
        case let .l1CR3Illegal(cr3):
            return Entry("l1CR3Illegal", "L1 save area CR3 \(hex(cr3)) exceeds the guest's physical address width",
                         kernel: V.save + "… || CC(kvm_vcpu_is_illegal_gpa(vcpu, save->cr3)) (newer: !kvm_vcpu_is_legal_cr3)")
        }
    }
}

/// One validator rule: a small check that reports at most one violation.
public struct NestedStateRule: Sendable {
    public let id: String
    let check: @Sendable (NestedState, NestedStateHostContext) -> NestedStateViolation?

    init(_ id: String, _ check: @escaping @Sendable (NestedState, NestedStateHostContext) -> NestedStateViolation?) {
        self.id = id
        self.check = check
    }

    public func evaluate(_ state: NestedState, _ context: NestedStateHostContext) -> NestedStateViolation? {
        check(state, context)
    }
}

public enum NestedStateValidator {
    /// Every rule broken by `state` for `context`, in rule order; empty when the state
    /// should be accepted.
    public static func validate(_ state: NestedState, context: NestedStateHostContext) -> [NestedStateViolation] {
        // Judge what the kernel will be sent: the encoded bytes, decoded again, so an
        // edited header field (format, size) is seen as KVM sees it.
        let sent = (try? NestedState(bytes: state.bytes)) ?? state
        return rules.compactMap { $0.check(sent, context) }
    }

    /// Validates a raw blob: problems that keep it from decoding (too short, bad size)
    /// are reported as violations too.
    public static func validate(bytes: [UInt8], context: NestedStateHostContext) -> [NestedStateViolation] {
        do {
            return validate(try NestedState(bytes: bytes), context: context)
        } catch let error as NestedStateError {
            var out: [NestedStateViolation] = context.capabilitySize == 0 ? [.noNestedStateSupport] : []
            switch error {
            case .truncated where bytes.count < NestedState.headerSize:
                out.append(.bufferTooSmall(available: bytes.count))
            case .truncated:
                out.append(.sizeExceedsBuffer(size: UInt32(NestedByteIO.load(bytes, 4, 4)), available: bytes.count))
            case .sizeTooSmall(let size):
                out.append(.sizeTooSmall(size: size))
            case .invalidCapacity:
                break
            }
            return out
        } catch {
            return []
        }
    }

    /// True when `validate` finds no errors (warnings allowed).
    public static func isAcceptable(_ state: NestedState, context: NestedStateHostContext) -> Bool {
        !validate(state, context: context).contains { $0.severity == .error }
    }

    // MARK: Helpers

    static let pageMask: UInt64 = 0xFFF

    /// page_address_valid(): page aligned and below 2^MAXPHYADDR (when known).
    static func pageAddressValid(_ gpa: UInt64, _ ctx: NestedStateHostContext) -> Bool {
        gpa & pageMask == 0 && legalGPA(gpa, ctx)
    }

    static func legalGPA(_ gpa: UInt64, _ ctx: NestedStateHostContext) -> Bool {
        guard let bits = ctx.maxPhysAddrBits, bits > 0, bits < 64 else { return gpa != NestedState.invalidGPA }
        return gpa >> UInt64(bits) == 0
    }

    static func vmxHeader(_ s: NestedState) -> VMXNestedHeader? { s.vmx?.header }
    static func vmxOn(_ s: NestedState) -> Bool { (s.vmx?.header.vmxonPA).map { $0 != NestedState.invalidGPA } ?? false }
    /// Whether the state's size covers a full vmcs12 page.
    static func hasVMCS12(_ s: NestedState) -> Bool { Int(s.size) >= NestedState.headerSize + VMCS12.pageSize }
    /// The vmcs12 the kernel would read (VMX on, size covers it).
    static func loadedVMCS12(_ s: NestedState) -> VMCS12? {
        guard vmxOn(s), hasVMCS12(s), let v = s.vmx?.vmcs12 else { return nil }
        return v
    }
    /// The SVM vmcb the kernel would read (GUEST_MODE, size covers it).
    static func loadedVMCB(_ s: NestedState) -> VMCB? {
        guard s.flags.contains(.guestMode), Int(s.size) >= NestedState.headerSize + VMCB.pageSize else { return nil }
        return s.svm?.vmcb
    }
    static func isSVM(_ s: NestedState) -> Bool { s.svm != nil }
    static func isVMX(_ s: NestedState) -> Bool { s.vmx != nil }

    // CR0, CR4 and EFER bits: `ControlRegister` and `EFER` (CPU/ModeSetup.swift).
    static let rflagsVM: UInt64 = 1 << 17

    // MARK: Rules

    /// The rules, in the order the kernel applies them.
    public static let rules: [NestedStateRule] = generic + vmxRules + svmRules

    static let generic: [NestedStateRule] = [
        NestedStateRule("capability") { _, c in c.capabilitySize == 0 ? .noNestedStateSupport : nil },
        NestedStateRule("size-min") { s, _ in s.size < UInt32(NestedState.headerSize) ? .sizeTooSmall(size: s.size) : nil },
        NestedStateRule("size-buffer") { s, _ in
            let have = NestedState.headerSize + s.dataBytes.count + s.trailing.count
            return Int(s.size) > have ? .sizeExceedsBuffer(size: s.size, available: have) : nil
        },
        NestedStateRule("size-capability") { s, c in
            c.capabilitySize > 0 && Int(s.size) > c.capabilitySize ? .sizeExceedsCapability(size: s.size, capability: c.capabilitySize) : nil
        },
        NestedStateRule("flags-known") { s, _ in
            let extra = s.flags.rawValue & ~NestedStateFlags.known.rawValue
            return extra != 0 ? .unknownFlags(extra) : nil
        },
        NestedStateRule("run-pending-guest-mode") { s, _ in
            s.flags.contains(.runPending) && !s.flags.contains(.guestMode) ? .runPendingWithoutGuestMode : nil
        },
        NestedStateRule("format-known") { s, _ in
            if case .unknown = s.payload { return .unknownFormat(s.format.rawValue) }
            return nil
        },
        NestedStateRule("format-vendor") { s, c in
            switch (s.format, c.vendor) {
            case (.vmx, .svm), (.svm, .vmx): return .formatMismatch(format: s.format, host: c.vendor)
            default: return nil
            }
        },
        NestedStateRule("flags-svm") { s, _ in
            let vmxOnly = s.flags.intersection([.evmcs, .mtfPending])
            return isSVM(s) && !vmxOnly.isEmpty ? .flagsNotForSVM(vmxOnly) : nil
        },
        NestedStateRule("flags-vmx-gif") { s, _ in
            isVMX(s) && vmxOn(s) && s.flags.contains(.gifSet) ? .gifSetOnVMX : nil
        },
    ]

    static let vmxRules: [NestedStateRule] = [
        NestedStateRule("vmx-off-smm") { s, _ in
            guard let h = vmxHeader(s), h.vmxonPA == NestedState.invalidGPA, !h.smmFlags.isEmpty else { return nil }
            return .vmxOffWithSMMFlags(h.smmFlags)
        },
        NestedStateRule("vmx-off-vmcs12") { s, _ in
            guard let h = vmxHeader(s), h.vmxonPA == NestedState.invalidGPA, h.vmcs12PA != NestedState.invalidGPA else { return nil }
            return .vmxOffWithVMCS12Pointer(h.vmcs12PA)
        },
        NestedStateRule("vmx-off-flags") { s, _ in
            guard let h = vmxHeader(s), h.vmxonPA == NestedState.invalidGPA else { return nil }
            let bad = s.flags.subtracting(.evmcs)
            return bad.isEmpty ? nil : .vmxOffWithFlags(bad)
        },
        NestedStateRule("vmx-cpuid") { s, c in vmxOn(s) && c.guestHasVMX == false ? .vmxNotExposedToGuest : nil },
        NestedStateRule("vmxon-address") { s, c in
            guard vmxOn(s), let h = vmxHeader(s), !pageAddressValid(h.vmxonPA, c) else { return nil }
            return .vmxonAddressInvalid(h.vmxonPA)
        },
        NestedStateRule("smm-guest-mode-exclusive") { s, _ in
            guard let h = vmxHeader(s) else { return nil }
            return h.smmFlags.contains(.guestMode) && s.flags.contains(.guestMode) ? .smmGuestModeWithGuestMode : nil
        },
        NestedStateRule("smm-flags-known") { s, _ in
            guard let h = vmxHeader(s) else { return nil }
            let extra = h.smmFlags.rawValue & ~NestedSMMFlags.known.rawValue
            return extra != 0 ? .unknownSMMFlags(extra) : nil
        },
        NestedStateRule("vmx-header-flags-known") { s, _ in
            guard let h = vmxHeader(s) else { return nil }
            let extra = h.flags.rawValue & ~NestedVMXHeaderFlags.known.rawValue
            return extra != 0 ? .unknownVMXHeaderFlags(extra) : nil
        },
        NestedStateRule("smm-flags-outside-smm") { s, c in
            guard let h = vmxHeader(s), c.inSMM == false, !h.smmFlags.isEmpty else { return nil }
            return .smmFlagsOutsideSMM(h.smmFlags)
        },
        NestedStateRule("guest-mode-in-smm") { s, c in
            guard c.inSMM == true else { return nil }
            if isVMX(s), !s.flags.intersection([.guestMode, .runPending]).isEmpty { return .guestModeInSMM }
            if isSVM(s), s.flags.contains(.guestMode) { return .guestModeInSMM }
            return nil
        },
        NestedStateRule("smm-guest-mode-needs-vmxon") { s, _ in
            guard let h = vmxHeader(s) else { return nil }
            return h.smmFlags.contains(.guestMode) && !h.smmFlags.contains(.vmxon) ? .smmGuestModeWithoutSMMVMXON : nil
        },
        NestedStateRule("evmcs-enabled") { s, c in
            guard isVMX(s), s.flags.contains(.evmcs) else { return nil }
            return !c.evmcsEnabled || c.guestHasVMX == false ? .evmcsNotEnabled : nil
        },
        NestedStateRule("vmcs12-present") { s, _ in
            guard vmxOn(s), let h = vmxHeader(s), !hasVMCS12(s) else { return nil }
            let needs = s.flags.contains(.guestMode) || s.flags.contains(.evmcs) || h.vmcs12PA != NestedState.invalidGPA
            return needs ? .vmcs12Missing(size: s.size) : nil
        },
        NestedStateRule("vmcs12-pointer") { s, _ in
            guard vmxOn(s), hasVMCS12(s), let h = vmxHeader(s) else { return nil }
            return h.vmcs12PA == NestedState.invalidGPA && !s.flags.contains(.evmcs) ? .vmcs12WithoutPointer : nil
        },
        NestedStateRule("vmcs12-not-vmxon") { s, _ in
            guard vmxOn(s), hasVMCS12(s), let h = vmxHeader(s), h.vmcs12PA != NestedState.invalidGPA,
                  h.vmcs12PA == h.vmxonPA else { return nil }
            return .vmcs12AddressEqualsVMXON(h.vmcs12PA)
        },
        NestedStateRule("vmcs12-address") { s, c in
            guard vmxOn(s), hasVMCS12(s), let h = vmxHeader(s), h.vmcs12PA != NestedState.invalidGPA,
                  !pageAddressValid(h.vmcs12PA, c) else { return nil }
            return .vmcs12AddressInvalid(h.vmcs12PA)
        },
        NestedStateRule("vmcs12-revision") { s, _ in
            guard let v = loadedVMCS12(s), v.revisionID != VMCS12.revision else { return nil }
            return .vmcs12BadRevision(v.revisionID)
        },
        NestedStateRule("shadow-vmcs12-present") { s, _ in
            guard s.flags.contains(.guestMode), let v = loadedVMCS12(s), v.usesShadowVMCS,
                  v.vmcsLinkPointer != NestedState.invalidGPA,
                  Int(s.size) < NestedState.headerSize + 2 * VMCS12.pageSize else { return nil }
            return .shadowVMCS12Missing(size: s.size)
        },
        NestedStateRule("shadow-vmcs12-valid") { s, _ in
            guard s.flags.contains(.guestMode), let v = loadedVMCS12(s), v.usesShadowVMCS,
                  v.vmcsLinkPointer != NestedState.invalidGPA,
                  Int(s.size) >= NestedState.headerSize + 2 * VMCS12.pageSize,
                  let shadow = s.vmx?.shadowVMCS12 else { return nil }
            guard shadow.revisionID != VMCS12.revision || !shadow.isShadow else { return nil }
            return .shadowVMCS12Invalid(revision: shadow.revisionID, shadowBit: shadow.isShadow)
        },
    ]

    static let svmRules: [NestedStateRule] = [
        NestedStateRule("svm-efer-svme") { s, c in
            guard isSVM(s), let efer = c.efer, efer & EFER.svme == 0 else { return nil }
            if s.flags.isEmpty { return .svmDisabledEmptyFlags }
            return s.flags != .gifSet ? .svmDisabledInEFER(s.flags) : nil
        },
        NestedStateRule("svm-efer-known") { s, c in
            isSVM(s) && c.efer == nil && s.flags.contains(.guestMode) ? .eferUnknown : nil
        },
        NestedStateRule("vmcb-address") { s, c in
            guard let h = s.svm?.header, s.flags.contains(.guestMode), !pageAddressValid(h.vmcbPA, c) else { return nil }
            return .vmcbAddressInvalid(h.vmcbPA)
        },
        NestedStateRule("vmcb-present") { s, _ in
            guard isSVM(s), s.flags.contains(.guestMode),
                  Int(s.size) < NestedState.headerSize + VMCB.pageSize else { return nil }
            return .vmcbMissing(size: s.size)
        },
        NestedStateRule("vmcb-vmrun-intercept") { s, _ in
            guard let v = loadedVMCB(s), !v.control.interceptsVMRUN else { return nil }
            return .vmrunNotIntercepted
        },
        NestedStateRule("vmcb-asid") { s, _ in
            guard let v = loadedVMCB(s), v.control.asid == 0 else { return nil }
            return .asidZero
        },
        NestedStateRule("vmcb-msrpm") { s, c in bitmapRule(s, c, "msrpm_base_pa", \.msrpmBasePA, 0x2000) },
        NestedStateRule("vmcb-iopm") { s, c in bitmapRule(s, c, "iopm_base_pa", \.iopmBasePA, 0x3000) },
        NestedStateRule("l2-cr0") { s, c in
            guard loadedVMCB(s) != nil, let cr0 = c.cr0, cr0 & ControlRegister.cd == 0, cr0 & ControlRegister.nw != 0 else { return nil }
            return .l2CR0Invalid(cr0)
        },
        NestedStateRule("l1-paged-protected") { s, _ in
            guard let v = loadedVMCB(s), v.save.cr0 & ControlRegister.pg == 0 || v.save.cr0 & ControlRegister.pe == 0 else { return nil }
            return .l1NotPagedProtectedMode(cr0: v.save.cr0)
        },
        NestedStateRule("l1-not-vm86") { s, _ in
            guard let v = loadedVMCB(s), v.save.rflags & rflagsVM != 0 else { return nil }
            return .l1InVirtual8086Mode(rflags: v.save.rflags)
        },
        NestedStateRule("l1-svme") { s, _ in
            guard let v = loadedVMCB(s), v.save.efer & EFER.svme == 0 else { return nil }
            return .l1SVMEClear(efer: v.save.efer)
        },
        NestedStateRule("l1-cr0") { s, _ in
            guard let v = loadedVMCB(s) else { return nil }
            let cr0 = v.save.cr0
            return (cr0 & ControlRegister.cd == 0 && cr0 & ControlRegister.nw != 0) || cr0 >> 32 != 0 ? .l1CR0Invalid(cr0) : nil
        },
        NestedStateRule("l1-debug-registers") { s, _ in
            guard let v = loadedVMCB(s), v.save.dr6 >> 32 != 0 || v.save.dr7 >> 32 != 0 else { return nil }
            return .l1DebugRegistersInvalid(dr6: v.save.dr6, dr7: v.save.dr7)
        },
        NestedStateRule("l1-long-mode-pae") { s, _ in
            guard let v = loadedVMCB(s), v.save.efer & EFER.lme != 0, v.save.cr0 & ControlRegister.pg != 0,
                  v.save.cr4 & ControlRegister.pae == 0 else { return nil }
            return .l1LongModeWithoutPAE(cr4: v.save.cr4)
        },
        NestedStateRule("l1-cr3") { s, c in
            guard let v = loadedVMCB(s), v.save.efer & EFER.lme != 0, v.save.cr0 & ControlRegister.pg != 0,
                  let bits = c.maxPhysAddrBits, bits > 0, bits < 64, v.save.cr3 >> UInt64(bits) != 0 else { return nil }
            return .l1CR3Illegal(v.save.cr3)
        },
    ]

    /// nested_svm_check_bitmap_pa(): PAGE_ALIGN(pa) and its last byte are legal GPAs.
    static func bitmapRule(_ s: NestedState, _ c: NestedStateHostContext, _ name: String,
                           _ field: KeyPath<VMCBControl, UInt64>, _ size: UInt64) -> NestedStateViolation? {
        guard let v = loadedVMCB(s), let bits = c.maxPhysAddrBits, bits > 0, bits < 64 else { return nil }
        let pa = v.control[keyPath: field]
        let (aligned, o1) = pa.addingReportingOverflow(0xFFF)
        let start = aligned & ~0xFFF
        let (end, o2) = start.addingReportingOverflow(size - 1)
        let legal = !o1 && !o2 && start >> UInt64(bits) == 0 && end >> UInt64(bits) == 0
        return legal ? nil : .bitmapAddressInvalid(name: name, address: pa)
    }
}
