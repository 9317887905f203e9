// Checks a nested state against the rules KVM_SET_NESTED_STATE enforces, before the
// ioctl, so a restore fails with a named reason instead of a bare EINVAL.
//
// Sources (the `kernelReference` of each violation quotes the enforcing line):
//  - arch/x86/kvm/x86.c, kvm_arch_vcpu_ioctl(), case KVM_SET_NESTED_STATE
//  - arch/x86/kvm/vmx/nested.c, vmx_set_nested_state() and nested_vmx_check_restored_vmcs12()
//  - arch/x86/kvm/svm/nested.c, svm_set_nested_state(), nested_vmcb_check_controls(),
//    nested_vmcb_check_save()
//  - tools/testing/selftests/kvm/x86/{vmx_,}nested_set_state_test.c (one case per rule)
// Of the VM-entry consistency checks KVM runs on vmcs12 in guest mode
// (nested_vmx_check_controls, _host_state, _guest_state) only those whose verdict is
// the same for every L1 (CR3_TARGET_COUNT, the CR0/CR4 bits VMX fixes to 1); of the
// CR4/EFER reserved bits only those reserved on every kernel (the rest depend on guest
// CPUID). Not replicated: the other vmcs12 entry checks, and the checks newer kernels
// add for SVM event injection and V_NMI.

import Glibc

/// The host CPU's virtualization extension.
public enum NestedVendor: String, Equatable, Sendable {
    /// VMX (Intel), SVM (AMD), or neither.
    case vmx, svm, unknown
}

/// What the validator needs to know about the host and the vCPU the state goes to.
/// Optional facts that are nil are not checked.
public struct NestedStateHostContext: Equatable, Sendable {
    /// KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE): 0 = no nested state support, else the
    /// largest state this host produces (VMX 8320, SVM 4224).
    public var capabilitySize: Int
    /// The host's virtualization extension (nested state formats are per vendor).
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

    /// A context from its facts; nil facts are not checked.
    public init(
        capabilitySize: Int, vendor: NestedVendor, efer: UInt64? = nil, evmcsEnabled: Bool = false,
        guestHasVMX: Bool? = nil, inSMM: Bool? = nil, cr0: UInt64? = nil, maxPhysAddrBits: Int? = nil
    ) {
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

/// How bad a broken rule is.
public enum NestedStateSeverity: String, Equatable, Sendable {
    /// KVM_SET_NESTED_STATE will fail (or read past the buffer).
    case error
    /// KVM accepts it, but it is probably not what was meant.
    case warning
}

/// One broken rule. `message` is for people, `kernelReference` names the check.
public enum NestedStateViolation: Equatable, Sendable, CustomStringConvertible {
    // Generic (x86.c)
    /// Rule `capability` (error): KVM_CAP_NESTED_STATE = 0: host KVM has no nested state support.
    case noNestedStateSupport
    /// Reported by `validate(bytes:)` (error): the buffer holds `available` bytes, less than the 128-byte kvm_nested_state header.
    case bufferTooSmall(available: Int)
    /// Rule `size-min` (error): size `size` is smaller than the 128-byte header.
    case sizeTooSmall(size: UInt32)
    /// Rule `size-buffer` (error): size `size` claims more bytes than the `available` present; the kernel would read past the buffer.
    case sizeExceedsBuffer(size: UInt32, available: Int)
    /// Rule `size-capability` (warning): size `size` is larger than this host's KVM_CAP_NESTED_STATE (`capability`); the excess is ignored.
    case sizeExceedsCapability(size: UInt32, capability: Int)
    /// Rule `flags-known` (error): unknown flag bits … (known: GUEST_MODE, RUN_PENDING, EVMCS, MTF_PENDING, GIF_SET).
    case unknownFlags(UInt16)
    /// Rule `run-pending-guest-mode` (error): RUN_PENDING is set without GUEST_MODE.
    case runPendingWithoutGuestMode
    // Format
    /// Rule `format-known` (error): format … is neither VMX (0) nor SVM (1).
    case unknownFormat(UInt16)
    /// Rule `format-vendor` (error): the state's format is `format` but the host uses `host`; nested state restores only on the same vendor.
    case formatMismatch(format: NestedStateFormat, host: NestedVendor)
    /// Rule `flags-svm` (error): … are VMX-only flags; SVM accepts only GUEST_MODE, RUN_PENDING, GIF_SET.
    case flagsNotForSVM(NestedStateFlags)
    /// Rule `flags-vmx-gif` (warning): GIF_SET is an SVM flag; VMX ignores it.
    case gifSetOnVMX
    // VMX
    /// Rule `vmx-off-smm` (error): vmxon_pa is -1 (VMX off) but SMM flags are set.
    case vmxOffWithSMMFlags(NestedSMMFlags)
    /// Rule `vmx-off-vmcs12` (error): vmxon_pa is -1 (VMX off) but vmcs12_pa is …; it must be -1 too.
    case vmxOffWithVMCS12Pointer(UInt64)
    /// Rule `vmx-off-flags` (error): vmxon_pa is -1 (VMX off) but other flags are set; only EVMCS is allowed.
    case vmxOffWithFlags(NestedStateFlags)
    /// Rule `vmx-cpuid` (error): vmxon_pa is set but the guest CPUID does not advertise VMX (set CPUID before nested state).
    case vmxNotExposedToGuest
    /// Rule `vmxon-address` (error): vmxon_pa … is not a page-aligned, legal guest-physical address.
    case vmxonAddressInvalid(UInt64)
    /// Rule `smm-guest-mode-exclusive` (error): SMM GUEST_MODE and GUEST_MODE are both set.
    case smmGuestModeWithGuestMode
    /// Rule `smm-flags-known` (error): unknown SMM flag bits … (known: GUEST_MODE, VMXON).
    case unknownSMMFlags(UInt16)
    /// Rule `vmx-header-flags-known` (error): unknown VMX header flag bits … (known: PREEMPTION_TIMER_DEADLINE).
    case unknownVMXHeaderFlags(UInt32)
    /// Rule `smm-flags-outside-smm` (error): SMM flags are set but the vCPU is not in SMM (restore vCPU events first).
    case smmFlagsOutsideSMM(NestedSMMFlags)
    /// Rule `guest-mode-in-smm` (error): the vCPU is in SMM, which cannot be combined with GUEST_MODE or RUN_PENDING.
    case guestModeInSMM
    /// Rule `smm-guest-mode-needs-vmxon` (error): SMM GUEST_MODE is set without SMM VMXON.
    case smmGuestModeWithoutSMMVMXON
    /// Rule `evmcs-enabled` (error): EVMCS is set but the enlightened VMCS capability is not enabled on the vCPU (or the guest lacks VMX).
    case evmcsNotEnabled
    /// Rule `vmcs12-present` (error): size `size` has no vmcs12 (needs …) but GUEST_MODE, EVMCS or vmcs12_pa says there is one.
    case vmcs12Missing(size: UInt32)
    /// Rule `vmcs12-pointer` (error): a vmcs12 is present but vmcs12_pa is -1 and EVMCS is not set.
    case vmcs12WithoutPointer
    /// Rule `vmcs12-not-vmxon` (error): vmcs12_pa equals vmxon_pa (…).
    case vmcs12AddressEqualsVMXON(UInt64)
    /// Rule `vmcs12-address` (error): vmcs12_pa … is not a page-aligned, legal guest-physical address.
    case vmcs12AddressInvalid(UInt64)
    /// Rule `vmcs12-revision` (error): vmcs12 revision … is not VMCS12_REVISION ….
    case vmcs12BadRevision(UInt32)
    /// Rule `shadow-vmcs12-present` (error): vmcs12 enables VMCS shadowing with a link pointer but size `size` has no shadow_vmcs12 (needs …).
    case shadowVMCS12Missing(size: UInt32)
    /// Rule `shadow-vmcs12-valid` (error): shadow_vmcs12 has a revision other than VMCS12_REVISION or its shadow bit clear.
    case shadowVMCS12Invalid(revision: UInt32, shadowBit: Bool)
    /// Rule `vmcs12-cr3-target-count` (error): vmcs12 CR3_TARGET_COUNT is non-zero; KVM gives L1 no CR3-target values.
    case vmcs12CR3TargetCount(UInt32)
    /// Rule `vmcs12-host-cr0` (error): vmcs12 HOST_CR0 lacks PE, PG or NE.
    case vmcs12HostCR0Invalid(UInt64)
    /// Rule `vmcs12-host-cr4` (error): vmcs12 HOST_CR4 lacks VMXE.
    case vmcs12HostCR4Invalid(UInt64)
    /// Rule `vmcs12-guest-cr0` (error): vmcs12 GUEST_CR0 lacks NE, or PE/PG without unrestricted guest.
    case vmcs12GuestCR0Invalid(UInt64)
    /// Rule `vmcs12-guest-cr4` (error): vmcs12 GUEST_CR4 lacks VMXE.
    case vmcs12GuestCR4Invalid(UInt64)
    // SVM
    /// Rule `svm-efer-svme` (error): EFER.SVME is clear on the vCPU but flags are set; with SVME clear only GIF_SET (or nothing) is allowed — restore SREGS (EFER) first.
    case svmDisabledInEFER(NestedStateFlags)
    /// Rule `svm-efer-svme` (error): EFER.SVME is clear and flags are 0: with SVM off the kernel accepts only GIF_SET (restore SREGS first).
    case svmDisabledEmptyFlags
    /// Rule `svm-efer-known` (warning): vCPU EFER unknown: GUEST_MODE needs EFER.SVME set, so restore SREGS before KVM_SET_NESTED_STATE.
    case eferUnknown
    /// Rule `vmcb-address` (error): vmcb_pa … is not a page-aligned, legal guest-physical address.
    case vmcbAddressInvalid(UInt64)
    /// Rule `vmcb-present` (error): GUEST_MODE is set but size `size` has no vmcb12 (needs …).
    case vmcbMissing(size: UInt32)
    /// Rule `vmcb-vmrun-intercept` (error): vmcb12 control does not intercept VMRUN.
    case vmrunNotIntercepted
    /// Rule `vmcb-asid` (error): vmcb12 control has ASID 0.
    case asidZero
    /// Rules `vmcb-msrpm` and `vmcb-iopm` (error): the MSR or I/O permission bitmap address `address` is not legal.
    case bitmapAddressInvalid(name: String, address: UInt64)
    /// Rule `l2-cr0` (error): the vCPU's (L2) CR0 … has NW set with CD clear.
    case l2CR0Invalid(UInt64)
    /// Rule `l1-paged-protected` (error): L1 save area CR0 … lacks PG or PE (L1 must be in paged protected mode).
    case l1NotPagedProtectedMode(cr0: UInt64)
    /// Rule `l1-not-vm86` (error): L1 save area RFLAGS … has VM set.
    case l1InVirtual8086Mode(rflags: UInt64)
    /// Rule `l1-svme` (error): L1 save area EFER … has SVME clear.
    case l1SVMEClear(efer: UInt64)
    /// Rule `l1-cr0` (error): L1 save area CR0 … has NW without CD, or bits above 31 set.
    case l1CR0Invalid(UInt64)
    /// Rule `l1-debug-registers` (error): L1 save area DR6 … / DR7 … have bits above 31 set.
    case l1DebugRegistersInvalid(dr6: UInt64, dr7: UInt64)
    /// Rule `l1-long-mode-pae` (error): L1 save area has EFER.LME and CR0.PG but CR4 … lacks PAE.
    case l1LongModeWithoutPAE(cr4: UInt64)
    /// Rule `l1-cr3` (error): L1 save area CR3 … exceeds the guest's physical address width.
    case l1CR3Illegal(UInt64)
    /// Rule `l1-efer-reserved` (error): L1 save area EFER sets bits KVM always reserves.
    case l1EFERReserved(UInt64)
    /// Rule `l1-cr4-reserved` (error): L1 save area CR4 sets reserved bits above 32.
    case l1CR4Reserved(UInt64)

    /// Whether KVM will refuse the state (`.error`) or accept something odd (`.warning`).
    public var severity: NestedStateSeverity { entry.severity }
    /// The case name, e.g. "runPendingWithoutGuestMode".
    public var name: String { entry.name }
    /// "error: message" or "warning: message".
    public var description: String { "\(severity.rawValue): \(message)" }
    /// One line for people, naming the rule and the values that break it.
    public var message: String { entry.message }
    /// The kernel line that enforces the rule (or why userspace must).
    public var kernelReference: String { entry.kernelReference }

    /// What is said about one violation: its rule's row in the table
    /// (`NestedStateValidator.rules`), filled in with the violation's values.
    struct Entry {
        let name: String
        let severity: NestedStateSeverity
        let message: String
        let kernelReference: String
    }

    /// The table row of each case (the two bitmap rules share one message and reference).
    var entry: Entry {
        typealias V = NestedStateValidator
        switch self {
        case .noNestedStateSupport: return V.noNestedStateSupport.entry(())
        case .bufferTooSmall(let p): return V.bufferTooSmall.entry(p)
        case .sizeTooSmall(let p): return V.sizeTooSmall.entry(p)
        case .sizeExceedsBuffer(let p0, let p1): return V.sizeExceedsBuffer.entry((p0, p1))
        case .sizeExceedsCapability(let p0, let p1): return V.sizeExceedsCapability.entry((p0, p1))
        case .unknownFlags(let p): return V.unknownFlags.entry(p)
        case .runPendingWithoutGuestMode: return V.runPendingWithoutGuestMode.entry(())
        case .unknownFormat(let p): return V.unknownFormat.entry(p)
        case .formatMismatch(let p0, let p1): return V.formatMismatch.entry((p0, p1))
        case .flagsNotForSVM(let p): return V.flagsNotForSVM.entry(p)
        case .gifSetOnVMX: return V.gifSetOnVMX.entry(())
        case .vmxOffWithSMMFlags(let p): return V.vmxOffWithSMMFlags.entry(p)
        case .vmxOffWithVMCS12Pointer(let p): return V.vmxOffWithVMCS12Pointer.entry(p)
        case .vmxOffWithFlags(let p): return V.vmxOffWithFlags.entry(p)
        case .vmxNotExposedToGuest: return V.vmxNotExposedToGuest.entry(())
        case .vmxonAddressInvalid(let p): return V.vmxonAddressInvalid.entry(p)
        case .smmGuestModeWithGuestMode: return V.smmGuestModeWithGuestMode.entry(())
        case .unknownSMMFlags(let p): return V.unknownSMMFlags.entry(p)
        case .unknownVMXHeaderFlags(let p): return V.unknownVMXHeaderFlags.entry(p)
        case .smmFlagsOutsideSMM(let p): return V.smmFlagsOutsideSMM.entry(p)
        case .guestModeInSMM: return V.guestModeInSMM.entry(())
        case .smmGuestModeWithoutSMMVMXON: return V.smmGuestModeWithoutSMMVMXON.entry(())
        case .evmcsNotEnabled: return V.evmcsNotEnabled.entry(())
        case .vmcs12Missing(let p): return V.vmcs12Missing.entry(p)
        case .vmcs12WithoutPointer: return V.vmcs12WithoutPointer.entry(())
        case .vmcs12AddressEqualsVMXON(let p): return V.vmcs12AddressEqualsVMXON.entry(p)
        case .vmcs12AddressInvalid(let p): return V.vmcs12AddressInvalid.entry(p)
        case .vmcs12BadRevision(let p): return V.vmcs12BadRevision.entry(p)
        case .shadowVMCS12Missing(let p): return V.shadowVMCS12Missing.entry(p)
        case .shadowVMCS12Invalid(let p0, let p1): return V.shadowVMCS12Invalid.entry((p0, p1))
        case .vmcs12CR3TargetCount(let p): return V.vmcs12CR3TargetCount.entry(p)
        case .vmcs12HostCR0Invalid(let p): return V.vmcs12HostCR0Invalid.entry(p)
        case .vmcs12HostCR4Invalid(let p): return V.vmcs12HostCR4Invalid.entry(p)
        case .vmcs12GuestCR0Invalid(let p): return V.vmcs12GuestCR0Invalid.entry(p)
        case .vmcs12GuestCR4Invalid(let p): return V.vmcs12GuestCR4Invalid.entry(p)
        case .svmDisabledInEFER(let p): return V.svmDisabledInEFER.entry(p)
        case .svmDisabledEmptyFlags: return V.svmDisabledEmptyFlags.entry(())
        case .eferUnknown: return V.eferUnknown.entry(())
        case .vmcbAddressInvalid(let p): return V.vmcbAddressInvalid.entry(p)
        case .vmcbMissing(let p): return V.vmcbMissing.entry(p)
        case .vmrunNotIntercepted: return V.vmrunNotIntercepted.entry(())
        case .asidZero: return V.asidZero.entry(())
        case .bitmapAddressInvalid(let p0, let p1): return V.msrpmAddressInvalid.entry((p0, p1))
        case .l2CR0Invalid(let p): return V.l2CR0Invalid.entry(p)
        case .l1NotPagedProtectedMode(let p): return V.l1NotPagedProtectedMode.entry(p)
        case .l1InVirtual8086Mode(let p): return V.l1InVirtual8086Mode.entry(p)
        case .l1SVMEClear(let p): return V.l1SVMEClear.entry(p)
        case .l1CR0Invalid(let p): return V.l1CR0Invalid.entry(p)
        case .l1DebugRegistersInvalid(let p0, let p1): return V.l1DebugRegistersInvalid.entry((p0, p1))
        case .l1LongModeWithoutPAE(let p): return V.l1LongModeWithoutPAE.entry(p)
        case .l1CR3Illegal(let p): return V.l1CR3Illegal.entry(p)
        case .l1EFERReserved(let p): return V.l1EFERReserved.entry(p)
        case .l1CR4Reserved(let p): return V.l1CR4Reserved.entry(p)
        }
    }
}

/// One validator rule: a small check that reports at most one violation.
public struct NestedStateRule: Sendable {
    /// The rule's stable id (e.g. "vmcs12-revision").
    public let id: String
    let check: @Sendable (NestedState, NestedStateHostContext) -> NestedStateViolation?

    init(_ id: String, _ check: @escaping @Sendable (NestedState, NestedStateHostContext) -> NestedStateViolation?) {
        self.id = id
        self.check = check
    }

    /// The violation `state` commits in `context`, or nil when it keeps the rule.
    public func evaluate(_ state: NestedState, _ context: NestedStateHostContext) -> NestedStateViolation? {
        check(state, context)
    }
}

/// Checks a nested state against the rules KVM_SET_NESTED_STATE enforces, so a
/// refused state is named rule by rule instead of a bare EINVAL.
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
    static func vmxOn(_ s: NestedState) -> Bool {
        (s.vmx?.header.vmxonPA).map { $0 != NestedState.invalidGPA } ?? false
    }
    /// The smallest size with a vmcs12: the kernel compares `size` with sizeof(struct
    /// vmcs12), the packed struct it copies (998 bytes on 6.1), not the 4 KiB page
    /// KVM_GET_NESTED_STATE writes (kvm_intel 6.1 in Tools/vmx-lab accepts 128+998).
    static let vmcs12MinimumSize = NestedState.headerSize + VMCS12.structSize
    /// The smallest size with a shadow_vmcs12: the vmcs12 page, then sizeof(struct vmcs12).
    static let shadowVMCS12MinimumSize = NestedState.headerSize + VMCS12.pageSize + VMCS12.structSize
    /// Whether the state's size covers the vmcs12 the kernel reads.
    static func hasVMCS12(_ s: NestedState) -> Bool { Int(s.size) >= vmcs12MinimumSize }
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
}

// MARK: - The rule table

extension NestedStateValidator {
    /// The rules, in the order the kernel applies them.
    public static let rules: [NestedStateRule] = [
        // Generic (x86.c)
        noNestedStateSupport.rule, sizeTooSmall.rule, sizeExceedsBuffer.rule, sizeExceedsCapability.rule,
        unknownFlags.rule, runPendingWithoutGuestMode.rule, unknownFormat.rule, formatMismatch.rule,
        flagsNotForSVM.rule, gifSetOnVMX.rule,
        // VMX
        vmxOffWithSMMFlags.rule, vmxOffWithVMCS12Pointer.rule, vmxOffWithFlags.rule, vmxNotExposedToGuest.rule,
        vmxonAddressInvalid.rule, smmGuestModeWithGuestMode.rule, unknownSMMFlags.rule, unknownVMXHeaderFlags.rule,
        smmFlagsOutsideSMM.rule, guestModeInSMM.rule, smmGuestModeWithoutSMMVMXON.rule, evmcsNotEnabled.rule,
        vmcs12Missing.rule, vmcs12WithoutPointer.rule, vmcs12AddressEqualsVMXON.rule, vmcs12AddressInvalid.rule,
        vmcs12BadRevision.rule, shadowVMCS12Missing.rule, shadowVMCS12Invalid.rule,
        vmcs12CR3TargetCount.rule, vmcs12HostCR0Invalid.rule, vmcs12HostCR4Invalid.rule,
        vmcs12GuestCR0Invalid.rule, vmcs12GuestCR4Invalid.rule,
        // SVM
        svmDisabledInEFER.rule, eferUnknown.rule, vmcbAddressInvalid.rule, vmcbMissing.rule, vmrunNotIntercepted.rule,
        asidZero.rule, msrpmAddressInvalid.rule, iopmAddressInvalid.rule, l2CR0Invalid.rule,
        l1NotPagedProtectedMode.rule, l1InVirtual8086Mode.rule, l1SVMEClear.rule, l1CR0Invalid.rule,
        l1DebugRegistersInvalid.rule, l1LongModeWithoutPAE.rule, l1CR3Illegal.rule, l1CR4Reserved.rule,
        l1EFERReserved.rule,
    ]

    /// One rule, written once: its id, the check (what it finds when the rule is
    /// broken: the violation's payload), the violation it reports, and that
    /// violation's name, severity, message and the kernel line the rule mirrors.
    struct Row<Found>: Sendable {
        let id: String
        let name: String
        let severity: NestedStateSeverity
        let kernelReference: String
        let message: @Sendable (Found) -> String
        let report: @Sendable (Found) -> NestedStateViolation
        let check: @Sendable (NestedState, NestedStateHostContext) -> Found?

        init(
            _ id: String, _ name: String, _ severity: NestedStateSeverity = .error, kernel: String,
            message: @escaping @Sendable (Found) -> String, report: @escaping @Sendable (Found) -> NestedStateViolation,
            check: @escaping @Sendable (NestedState, NestedStateHostContext) -> Found?
        ) {
            self.id = id
            self.name = name
            self.severity = severity
            self.kernelReference = kernel
            self.message = message
            self.report = report
            self.check = check
        }

        var rule: NestedStateRule {
            let check = check
            let report = report
            return NestedStateRule(id) { s, c in check(s, c).map(report) }
        }

        func entry(_ found: Found) -> NestedStateViolation.Entry {
            NestedStateViolation.Entry(
                name: name, severity: severity, message: message(found), kernelReference: kernelReference)
        }
    }

    // Where the kernel checks live (each reference starts with one).
    static let x86 = "arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl(KVM_SET_NESTED_STATE): "
    static let vmx = "arch/x86/kvm/vmx/nested.c vmx_set_nested_state(): "
    static let svm = "arch/x86/kvm/svm/nested.c svm_set_nested_state(): "
    static let ctl = "arch/x86/kvm/svm/nested.c nested_vmcb_check_controls(): "
    static let save = "arch/x86/kvm/svm/nested.c nested_vmcb_check_save(): "
    static func hex(_ v: UInt64) -> String { NestedHex.string(v) }

    // MARK: Generic (x86.c)

    static let noNestedStateSupport = Row<Void>(
        "capability", "noNestedStateSupport",
        kernel: x86 + "if (!kvm_x86_ops.nested_ops->set_state) (KVM_CAP_NESTED_STATE is 0 without nested ops)",
        message: { "KVM_CAP_NESTED_STATE = 0: host KVM has no nested state support" },
        report: { .noNestedStateSupport }
    ) { _, c in c.capabilitySize == 0 ? () : nil }

    /// Not a rule of `rules`: `validate(bytes:)` reports it for a blob shorter than the header.
    static let bufferTooSmall = Row<Int>(
        "buffer", "bufferTooSmall",
        kernel: x86 + "copy_from_user(&kvm_state, user_kvm_nested_state, sizeof(kvm_state)) -> EFAULT",
        message: { n in
            "the buffer holds \(n) bytes, less than the \(NestedState.headerSize)-byte kvm_nested_state header"
        },
        report: { .bufferTooSmall(available: $0) }
    ) { _, _ in nil }

    static let sizeTooSmall = Row<UInt32>(
        "size-min", "sizeTooSmall",
        kernel: x86 + "if (kvm_state.size < sizeof(kvm_state))",
        message: { size in "size \(size) is smaller than the \(NestedState.headerSize)-byte header" },
        report: { .sizeTooSmall(size: $0) }
    ) { s, _ in s.size < UInt32(NestedState.headerSize) ? s.size : nil }

    static let sizeExceedsBuffer = Row<(size: UInt32, available: Int)>(
        "size-buffer", "sizeExceedsBuffer",
        kernel: "no kernel check: the vendor code copy_from_user()s the data region trusting kvm_state->size",
        message: { f in
            "size \(f.size) claims more bytes than the \(f.available) present; the kernel would read past the buffer"
        },
        report: { .sizeExceedsBuffer(size: $0.size, available: $0.available) }
    ) { s, _ in
        let have = NestedState.headerSize + s.dataBytes.count + s.trailing.count
        return Int(s.size) > have ? (s.size, have) : nil
    }

    static let sizeExceedsCapability = Row<(size: UInt32, capability: Int)>(
        "size-capability", "sizeExceedsCapability", .warning,
        kernel: "no kernel check: KVM reads only the pages it knows and ignores the rest",
        message: { f in
            "size \(f.size) is larger than this host's KVM_CAP_NESTED_STATE (\(f.capability)); the excess is ignored"
        },
        report: { .sizeExceedsCapability(size: $0.size, capability: $0.capability) }
    ) { s, c in c.capabilitySize > 0 && Int(s.size) > c.capabilitySize ? (s.size, c.capabilitySize) : nil }

    static let unknownFlags = Row<UInt16>(
        "flags-known", "unknownFlags",
        kernel: x86
            + "if (kvm_state.flags & ~(KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_EVMCS | KVM_STATE_NESTED_MTF_PENDING | KVM_STATE_NESTED_GIF_SET))",
        message: { bits in
            "unknown flag bits \(hex(UInt64(bits))) (known: GUEST_MODE, RUN_PENDING, EVMCS, MTF_PENDING, GIF_SET)"
        },
        report: { .unknownFlags($0) }
    ) { s, _ in
        let extra = s.flags.rawValue & ~NestedStateFlags.known.rawValue
        return extra != 0 ? extra : nil
    }

    static let runPendingWithoutGuestMode = Row<Void>(
        "run-pending-guest-mode", "runPendingWithoutGuestMode",
        kernel: x86
            + "if ((kvm_state.flags & KVM_STATE_NESTED_RUN_PENDING) && !(kvm_state.flags & KVM_STATE_NESTED_GUEST_MODE))",
        message: { "RUN_PENDING is set without GUEST_MODE" },
        report: { .runPendingWithoutGuestMode }
    ) { s, _ in s.flags.contains(.runPending) && !s.flags.contains(.guestMode) ? () : nil }

    /// The kernel line behind both format rules.
    static let formatCheck =
        vmx + "if (kvm_state->format != KVM_STATE_NESTED_FORMAT_VMX); " + svm
        + "if (kvm_state->format != KVM_STATE_NESTED_FORMAT_SVM)"

    static let unknownFormat = Row<UInt16>(
        "format-known", "unknownFormat",
        kernel: formatCheck,
        message: { f in "format \(f) is neither VMX (0) nor SVM (1)" },
        report: { .unknownFormat($0) }
    ) { s, _ in
        if case .unknown = s.payload { return s.format.rawValue }
        return nil
    }

    static let formatMismatch = Row<(format: NestedStateFormat, host: NestedVendor)>(
        "format-vendor", "formatMismatch",
        kernel: formatCheck,
        message: { f in
            "the state's format is \(f.format) but the host uses \(f.host); nested state restores only on the same vendor"
        },
        report: { .formatMismatch(format: $0.format, host: $0.host) }
    ) { s, c in
        switch (s.format, c.vendor) {
        case (.vmx, .svm), (.svm, .vmx): return (s.format, c.vendor)
        default: return nil
        }
    }

    static let flagsNotForSVM = Row<NestedStateFlags>(
        "flags-svm", "flagsNotForSVM",
        kernel: svm
            + "if (kvm_state->flags & ~(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING | KVM_STATE_NESTED_GIF_SET))",
        message: { flags in "\(flags.description) are VMX-only flags; SVM accepts only GUEST_MODE, RUN_PENDING, GIF_SET"
        },
        report: { .flagsNotForSVM($0) }
    ) { s, _ in
        let vmxOnly = s.flags.intersection([.evmcs, .mtfPending])
        return isSVM(s) && !vmxOnly.isEmpty ? vmxOnly : nil
    }

    static let gifSetOnVMX = Row<Void>(
        "flags-vmx-gif", "gifSetOnVMX", .warning,
        kernel:
            "vmx_set_nested_state() never reads KVM_STATE_NESTED_GIF_SET (rejected only via `if (kvm_state->flags & ~KVM_STATE_NESTED_EVMCS)` when vmxon_pa is -1)",
        message: { "GIF_SET is an SVM flag; VMX ignores it" },
        report: { .gifSetOnVMX }
    ) { s, _ in isVMX(s) && vmxOn(s) && s.flags.contains(.gifSet) ? () : nil }

    // MARK: VMX (vmx/nested.c)

    static let vmxOffWithSMMFlags = Row<NestedSMMFlags>(
        "vmx-off-smm", "vmxOffWithSMMFlags",
        kernel: vmx
            + "if (kvm_state->hdr.vmx.vmxon_pa == INVALID_GPA) { if (kvm_state->hdr.vmx.smm.flags) return -EINVAL;",
        message: { f in "vmxon_pa is -1 (VMX off) but SMM flags are set (\(f))" },
        report: { .vmxOffWithSMMFlags($0) }
    ) { s, _ in
        guard let h = vmxHeader(s), h.vmxonPA == NestedState.invalidGPA, !h.smmFlags.isEmpty else { return nil }
        return h.smmFlags
    }

    static let vmxOffWithVMCS12Pointer = Row<UInt64>(
        "vmx-off-vmcs12", "vmxOffWithVMCS12Pointer",
        kernel: vmx
            + "if (kvm_state->hdr.vmx.vmxon_pa == INVALID_GPA) { … if (kvm_state->hdr.vmx.vmcs12_pa != INVALID_GPA) return -EINVAL;",
        message: { pa in "vmxon_pa is -1 (VMX off) but vmcs12_pa is \(hex(pa)); it must be -1 too" },
        report: { .vmxOffWithVMCS12Pointer($0) }
    ) { s, _ in
        guard let h = vmxHeader(s), h.vmxonPA == NestedState.invalidGPA, h.vmcs12PA != NestedState.invalidGPA else {
            return nil
        }
        return h.vmcs12PA
    }

    static let vmxOffWithFlags = Row<NestedStateFlags>(
        "vmx-off-flags", "vmxOffWithFlags",
        kernel: vmx
            + "if (kvm_state->hdr.vmx.vmxon_pa == INVALID_GPA) { … if (kvm_state->flags & ~KVM_STATE_NESTED_EVMCS) return -EINVAL;",
        message: { f in "vmxon_pa is -1 (VMX off) but flags \(f) are set; only EVMCS is allowed" },
        report: { .vmxOffWithFlags($0) }
    ) { s, _ in
        guard let h = vmxHeader(s), h.vmxonPA == NestedState.invalidGPA else { return nil }
        let bad = s.flags.subtracting(.evmcs)
        return bad.isEmpty ? nil : bad
    }

    static let vmxNotExposedToGuest = Row<Void>(
        "vmx-cpuid", "vmxNotExposedToGuest",
        kernel: vmx
            + "if (!guest_cpu_cap_has(vcpu, X86_FEATURE_VMX)) return -EINVAL; (older kernels: nested_vmx_allowed(vcpu))",
        message: { "vmxon_pa is set but the guest CPUID does not advertise VMX (set CPUID before nested state)" },
        report: { .vmxNotExposedToGuest }
    ) { s, c in vmxOn(s) && c.guestHasVMX == false ? () : nil }

    static let vmxonAddressInvalid = Row<UInt64>(
        "vmxon-address", "vmxonAddressInvalid",
        kernel: vmx + "if (!page_address_valid(vcpu, kvm_state->hdr.vmx.vmxon_pa))",
        message: { pa in "vmxon_pa \(hex(pa)) is not a page-aligned, legal guest-physical address" },
        report: { .vmxonAddressInvalid($0) }
    ) { s, c in
        guard vmxOn(s), let h = vmxHeader(s), !pageAddressValid(h.vmxonPA, c) else { return nil }
        return h.vmxonPA
    }

    static let smmGuestModeWithGuestMode = Row<Void>(
        "smm-guest-mode-exclusive", "smmGuestModeWithGuestMode",
        kernel: vmx
            + "if ((kvm_state->hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_GUEST_MODE) && (kvm_state->flags & KVM_STATE_NESTED_GUEST_MODE))",
        message: { "SMM GUEST_MODE and GUEST_MODE are both set" },
        report: { .smmGuestModeWithGuestMode }
    ) { s, _ in
        guard let h = vmxHeader(s) else { return nil }
        return h.smmFlags.contains(.guestMode) && s.flags.contains(.guestMode) ? () : nil
    }

    static let unknownSMMFlags = Row<UInt16>(
        "smm-flags-known", "unknownSMMFlags",
        kernel: vmx
            + "if (kvm_state->hdr.vmx.smm.flags & ~(KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON))",
        message: { bits in "unknown SMM flag bits \(hex(UInt64(bits))) (known: GUEST_MODE, VMXON)" },
        report: { .unknownSMMFlags($0) }
    ) { s, _ in
        guard let h = vmxHeader(s) else { return nil }
        let extra = h.smmFlags.rawValue & ~NestedSMMFlags.known.rawValue
        return extra != 0 ? extra : nil
    }

    static let unknownVMXHeaderFlags = Row<UInt32>(
        "vmx-header-flags-known", "unknownVMXHeaderFlags",
        kernel: vmx + "if (kvm_state->hdr.vmx.flags & ~KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE)",
        message: { bits in "unknown VMX header flag bits \(hex(UInt64(bits))) (known: PREEMPTION_TIMER_DEADLINE)" },
        report: { .unknownVMXHeaderFlags($0) }
    ) { s, _ in
        guard let h = vmxHeader(s) else { return nil }
        let extra = h.flags.rawValue & ~NestedVMXHeaderFlags.known.rawValue
        return extra != 0 ? extra : nil
    }

    static let smmFlagsOutsideSMM = Row<NestedSMMFlags>(
        "smm-flags-outside-smm", "smmFlagsOutsideSMM",
        kernel: vmx
            + "if (is_smm(vcpu) ? (kvm_state->flags & (KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING)) : kvm_state->hdr.vmx.smm.flags)",
        message: { f in "SMM flags (\(f)) are set but the vCPU is not in SMM (restore vCPU events first)" },
        report: { .smmFlagsOutsideSMM($0) }
    ) { s, c in
        guard let h = vmxHeader(s), c.inSMM == false, !h.smmFlags.isEmpty else { return nil }
        return h.smmFlags
    }

    static let guestModeInSMM = Row<Void>(
        "guest-mode-in-smm", "guestModeInSMM",
        kernel: vmx
            + "if (is_smm(vcpu) ? (kvm_state->flags & (KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING)) : …); "
            + svm + "if (is_smm(vcpu) && (kvm_state->flags & KVM_STATE_NESTED_GUEST_MODE))",
        message: { "the vCPU is in SMM, which cannot be combined with GUEST_MODE or RUN_PENDING" },
        report: { .guestModeInSMM }
    ) { s, c in
        guard c.inSMM == true else { return nil }
        if isVMX(s), !s.flags.intersection([.guestMode, .runPending]).isEmpty { return () }
        if isSVM(s), s.flags.contains(.guestMode) { return () }
        return nil
    }

    static let smmGuestModeWithoutSMMVMXON = Row<Void>(
        "smm-guest-mode-needs-vmxon", "smmGuestModeWithoutSMMVMXON",
        kernel: vmx
            + "if ((kvm_state->hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_GUEST_MODE) && !(kvm_state->hdr.vmx.smm.flags & KVM_STATE_NESTED_SMM_VMXON))",
        message: { "SMM GUEST_MODE is set without SMM VMXON" },
        report: { .smmGuestModeWithoutSMMVMXON }
    ) { s, _ in
        guard let h = vmxHeader(s) else { return nil }
        return h.smmFlags.contains(.guestMode) && !h.smmFlags.contains(.vmxon) ? () : nil
    }

    static let evmcsNotEnabled = Row<Void>(
        "evmcs-enabled", "evmcsNotEnabled",
        kernel: vmx
            + "if ((kvm_state->flags & KVM_STATE_NESTED_EVMCS) && (!guest_cpu_cap_has(vcpu, X86_FEATURE_VMX) || !vmx->nested.enlightened_vmcs_enabled))",
        message: {
            "EVMCS is set but the enlightened VMCS capability is not enabled on the vCPU (or the guest lacks VMX)"
        },
        report: { .evmcsNotEnabled }
    ) { s, c in
        guard isVMX(s), s.flags.contains(.evmcs) else { return nil }
        return !c.evmcsEnabled || c.guestHasVMX == false ? () : nil
    }

    static let vmcs12Missing = Row<UInt32>(
        "vmcs12-present", "vmcs12Missing",
        kernel: vmx
            + "if (kvm_state->size < sizeof(*kvm_state) + sizeof(*vmcs12)) { if ((kvm_state->flags & KVM_STATE_NESTED_GUEST_MODE) || (kvm_state->flags & KVM_STATE_NESTED_EVMCS) || (kvm_state->hdr.vmx.vmcs12_pa != INVALID_GPA)) return -EINVAL;",
        message: { size in
            "size \(size) has no vmcs12 (needs \(vmcs12MinimumSize)) but GUEST_MODE, EVMCS or vmcs12_pa says there is one"
        },
        report: { .vmcs12Missing(size: $0) }
    ) { s, _ in
        guard vmxOn(s), let h = vmxHeader(s), !hasVMCS12(s) else { return nil }
        let needs = s.flags.contains(.guestMode) || s.flags.contains(.evmcs) || h.vmcs12PA != NestedState.invalidGPA
        return needs ? s.size : nil
    }

    static let vmcs12WithoutPointer = Row<Void>(
        "vmcs12-pointer", "vmcs12WithoutPointer",
        kernel: vmx
            + "if (kvm_state->hdr.vmx.vmcs12_pa != INVALID_GPA) { … } else if (kvm_state->flags & KVM_STATE_NESTED_EVMCS) { … } else { return -EINVAL; }",
        message: { "a vmcs12 is present but vmcs12_pa is -1 and EVMCS is not set" },
        report: { .vmcs12WithoutPointer }
    ) { s, _ in
        guard vmxOn(s), hasVMCS12(s), let h = vmxHeader(s) else { return nil }
        return h.vmcs12PA == NestedState.invalidGPA && !s.flags.contains(.evmcs) ? () : nil
    }

    /// The kernel line behind both vmcs12_pa rules.
    static let vmcs12AddressCheck =
        vmx
        + "if (kvm_state->hdr.vmx.vmcs12_pa == kvm_state->hdr.vmx.vmxon_pa || !page_address_valid(vcpu, kvm_state->hdr.vmx.vmcs12_pa))"

    static let vmcs12AddressEqualsVMXON = Row<UInt64>(
        "vmcs12-not-vmxon", "vmcs12AddressEqualsVMXON",
        kernel: vmcs12AddressCheck,
        message: { pa in "vmcs12_pa equals vmxon_pa (\(hex(pa)))" },
        report: { .vmcs12AddressEqualsVMXON($0) }
    ) { s, _ in
        guard vmxOn(s), hasVMCS12(s), let h = vmxHeader(s), h.vmcs12PA != NestedState.invalidGPA,
            h.vmcs12PA == h.vmxonPA
        else { return nil }
        return h.vmcs12PA
    }

    static let vmcs12AddressInvalid = Row<UInt64>(
        "vmcs12-address", "vmcs12AddressInvalid",
        kernel: vmcs12AddressCheck,
        message: { pa in "vmcs12_pa \(hex(pa)) is not a page-aligned, legal guest-physical address" },
        report: { .vmcs12AddressInvalid($0) }
    ) { s, c in
        guard vmxOn(s), hasVMCS12(s), let h = vmxHeader(s), h.vmcs12PA != NestedState.invalidGPA,
            !pageAddressValid(h.vmcs12PA, c)
        else { return nil }
        return h.vmcs12PA
    }

    static let vmcs12BadRevision = Row<UInt32>(
        "vmcs12-revision", "vmcs12BadRevision",
        kernel: vmx + "if (vmcs12->hdr.revision_id != VMCS12_REVISION)",
        message: { rev in "vmcs12 revision \(hex(UInt64(rev))) is not VMCS12_REVISION \(hex(UInt64(VMCS12.revision)))"
        },
        report: { .vmcs12BadRevision($0) }
    ) { s, _ in
        guard let v = loadedVMCS12(s), v.revisionID != VMCS12.revision else { return nil }
        return v.revisionID
    }

    static let shadowVMCS12Missing = Row<UInt32>(
        "shadow-vmcs12-present", "shadowVMCS12Missing",
        kernel: vmx
            + "if (nested_cpu_has_shadow_vmcs(vmcs12) && vmcs12->vmcs_link_pointer != INVALID_GPA) { … if (kvm_state->size < sizeof(*kvm_state) + sizeof(user_vmx_nested_state->vmcs12) + sizeof(*shadow_vmcs12)) goto error_guest_mode;",
        message: { size in
            "vmcs12 enables VMCS shadowing with a link pointer but size \(size) has no shadow_vmcs12 (needs \(shadowVMCS12MinimumSize))"
        },
        report: { .shadowVMCS12Missing(size: $0) }
    ) { s, _ in
        guard s.flags.contains(.guestMode), let v = loadedVMCS12(s), v.usesShadowVMCS,
            v.vmcsLinkPointer != NestedState.invalidGPA,
            Int(s.size) < shadowVMCS12MinimumSize
        else { return nil }
        return s.size
    }

    static let shadowVMCS12Invalid = Row<(revision: UInt32, shadowBit: Bool)>(
        "shadow-vmcs12-valid", "shadowVMCS12Invalid",
        kernel:
            "arch/x86/kvm/vmx/nested.c nested_vmx_check_restored_vmcs12(): if (shadow_vmcs12->hdr.revision_id != VMCS12_REVISION || !shadow_vmcs12->hdr.shadow_vmcs)",
        message: { f in
            "shadow_vmcs12 has revision \(hex(UInt64(f.revision)))\(f.shadowBit ? "" : " and no shadow_vmcs bit"); it needs VMCS12_REVISION and the shadow bit"
        },
        report: { .shadowVMCS12Invalid(revision: $0.revision, shadowBit: $0.shadowBit) }
    ) { s, _ in
        guard s.flags.contains(.guestMode), let v = loadedVMCS12(s), v.usesShadowVMCS,
            v.vmcsLinkPointer != NestedState.invalidGPA,
            Int(s.size) >= shadowVMCS12MinimumSize,
            let shadow = s.vmx?.shadowVMCS12
        else { return nil }
        guard shadow.revisionID != VMCS12.revision || !shadow.isShadow else { return nil }
        return (shadow.revisionID, shadow.isShadow)
    }

    // The VM-entry checks vmx_set_nested_state() runs on vmcs12 in GUEST_MODE
    // (nested_vmx_check_controls/_host_state/_guest_state), where the verdict follows
    // from vmcs12 alone: the bits KVM's nested VMX MSRs fix for every L1 (userspace
    // may only tighten them, vmx_set_vmx_msr()). Not replicated: checks that depend on
    // the vCPU's VMX MSRs, CPUID or MAXPHYADDR beyond these.

    /// The vmcs12 vmx_set_nested_state() checks as VM entry would: GUEST_MODE, loaded.
    static func enteredVMCS12(_ s: NestedState) -> VMCS12? {
        s.flags.contains(.guestMode) ? loadedVMCS12(s) : nil
    }
    static let vmxEntryCheck =
        vmx
        + "if (nested_vmx_check_controls(vcpu, vmcs12) || nested_vmx_check_host_state(vcpu, vmcs12) || nested_vmx_check_guest_state(vcpu, vmcs12, &ignored)) goto error_guest_mode; "
    /// VMXON_CR0_ALWAYSON: KVM's IA32_VMX_CR0_FIXED0 for L1.
    static let vmxCR0FixedOn = ControlRegister.pe | ControlRegister.pg | ControlRegister.ne
    /// SECONDARY_EXEC_UNRESTRICTED_GUEST.
    static let unrestrictedGuest: UInt32 = 1 << 7

    static let vmcs12CR3TargetCount = Row<UInt32>(
        "vmcs12-cr3-target-count", "vmcs12CR3TargetCount",
        kernel: vmxEntryCheck
            + "nested_check_vm_execution_controls(): if (CC(vmcs12->cr3_target_count > nested_cpu_vmx_misc_cr3_count(vcpu))); KVM's IA32_VMX_MISC for L1 has CR3-target count 0 (nested_vmx_setup_ctls_msrs()) and vmx_restore_vmx_misc() refuses a larger one",
        message: { n in
            "vmcs12 CR3_TARGET_COUNT is \(n) but KVM gives L1 no CR3-target values (IA32_VMX_MISC[24:16] = 0)"
        },
        report: { .vmcs12CR3TargetCount($0) }
    ) { s, _ in
        guard let v = enteredVMCS12(s) else { return nil }
        let count = UInt32(v.u(764, 4))
        return count > 0 ? count : nil
    }

    static let vmcs12HostCR0Invalid = Row<UInt64>(
        "vmcs12-host-cr0", "vmcs12HostCR0Invalid",
        kernel: vmxEntryCheck
            + "nested_vmx_check_host_state(): if (CC(!nested_host_cr0_valid(vcpu, vmcs12->host_cr0)) …; cr0_fixed0 = VMXON_CR0_ALWAYSON (PE|PG|NE)",
        message: { cr0 in "vmcs12 HOST_CR0 \(hex(cr0)) lacks PE, PG or NE, which VMX operation fixes to 1" },
        report: { .vmcs12HostCR0Invalid($0) }
    ) { s, _ in
        guard let v = enteredVMCS12(s), v.hostCR0 & vmxCR0FixedOn != vmxCR0FixedOn else { return nil }
        return v.hostCR0
    }

    static let vmcs12HostCR4Invalid = Row<UInt64>(
        "vmcs12-host-cr4", "vmcs12HostCR4Invalid",
        kernel: vmxEntryCheck
            + "nested_vmx_check_host_state(): if (… CC(!nested_host_cr4_valid(vcpu, vmcs12->host_cr4)) …; cr4_fixed0 = VMXON_CR4_ALWAYSON (VMXE)",
        message: { cr4 in "vmcs12 HOST_CR4 \(hex(cr4)) lacks VMXE, which VMX operation fixes to 1" },
        report: { .vmcs12HostCR4Invalid($0) }
    ) { s, _ in
        guard let v = enteredVMCS12(s), v.hostCR4 & ControlRegister.vmxe == 0 else { return nil }
        return v.hostCR4
    }

    static let vmcs12GuestCR0Invalid = Row<UInt64>(
        "vmcs12-guest-cr0", "vmcs12GuestCR0Invalid",
        kernel: vmxEntryCheck
            + "nested_vmx_check_guest_state(): if (CC(!nested_guest_cr0_valid(vcpu, vmcs12->guest_cr0)) …; fixed0 PE|PG|NE, less PE|PG when vmcs12 enables UNRESTRICTED_GUEST",
        message: { cr0 in
            "vmcs12 GUEST_CR0 \(hex(cr0)) lacks NE, or PE or PG without unrestricted guest in the secondary controls"
        },
        report: { .vmcs12GuestCR0Invalid($0) }
    ) { s, _ in
        guard let v = enteredVMCS12(s) else { return nil }
        let unrestricted = v.activatesSecondaryControls && v.secondaryProcBasedControls & unrestrictedGuest != 0
        let fixed = unrestricted ? ControlRegister.ne : vmxCR0FixedOn
        return v.guestCR0 & fixed != fixed ? v.guestCR0 : nil
    }

    static let vmcs12GuestCR4Invalid = Row<UInt64>(
        "vmcs12-guest-cr4", "vmcs12GuestCR4Invalid",
        kernel: vmxEntryCheck
            + "nested_vmx_check_guest_state(): if (… CC(!nested_guest_cr4_valid(vcpu, vmcs12->guest_cr4))); cr4_fixed0 = VMXON_CR4_ALWAYSON (VMXE)",
        message: { cr4 in
            "vmcs12 GUEST_CR4 \(hex(cr4)) lacks VMXE, which VMX operation fixes to 1 (L2 sees it through the read shadow)"
        },
        report: { .vmcs12GuestCR4Invalid($0) }
    ) { s, _ in
        guard let v = enteredVMCS12(s), v.guestCR4 & ControlRegister.vmxe == 0 else { return nil }
        return v.guestCR4
    }

    // MARK: SVM (svm/nested.c)

    /// The kernel line behind the EFER.SVME rules.
    static let svmEFERCheck =
        svm
        + "if (!(vcpu->arch.efer & EFER_SVME) && kvm_state->flags && kvm_state->flags != KVM_STATE_NESTED_GIF_SET) return -EINVAL;"

    /// Reports `svmDisabledEmptyFlags` instead when the flags are 0.
    static let svmDisabledInEFER = Row<NestedStateFlags>(
        "svm-efer-svme", "svmDisabledInEFER",
        kernel: svmEFERCheck,
        message: { f in
            "EFER.SVME is clear on the vCPU but flags are \(f); with SVME clear only GIF_SET (or nothing) is allowed — restore SREGS (EFER) first"
        },
        report: { $0.isEmpty ? .svmDisabledEmptyFlags : .svmDisabledInEFER($0) }
    ) { s, c in
        guard isSVM(s), let efer = c.efer, efer & EFER.svme == 0 else { return nil }
        return s.flags != .gifSet ? s.flags : nil
    }

    /// Not a rule of `rules`: `svmDisabledInEFER`'s check reports it for flags 0.
    static let svmDisabledEmptyFlags = Row<Void>(
        "svm-efer-svme", "svmDisabledEmptyFlags",
        kernel: svm
            + "if (!(vcpu->arch.efer & EFER_SVME)) { if (kvm_state->flags != KVM_STATE_NESTED_GIF_SET) return -EINVAL; } (measured on 6.1 in the nested lab)",
        message: {
            "EFER.SVME is clear and flags are 0: with SVM off the kernel accepts only GIF_SET (restore SREGS first)"
        },
        report: { .svmDisabledEmptyFlags }
    ) { _, _ in nil }

    static let eferUnknown = Row<Void>(
        "svm-efer-known", "eferUnknown", .warning,
        kernel: svmEFERCheck,
        message: { "vCPU EFER unknown: GUEST_MODE needs EFER.SVME set, so restore SREGS before KVM_SET_NESTED_STATE" },
        report: { .eferUnknown }
    ) { s, c in isSVM(s) && c.efer == nil && s.flags.contains(.guestMode) ? () : nil }

    static let vmcbAddressInvalid = Row<UInt64>(
        "vmcb-address", "vmcbAddressInvalid",
        kernel: svm + "if (!page_address_valid(vcpu, kvm_state->hdr.svm.vmcb_pa))",
        message: { pa in "vmcb_pa \(hex(pa)) is not a page-aligned, legal guest-physical address" },
        report: { .vmcbAddressInvalid($0) }
    ) { s, c in
        guard let h = s.svm?.header, s.flags.contains(.guestMode), !pageAddressValid(h.vmcbPA, c) else { return nil }
        return h.vmcbPA
    }

    static let vmcbMissing = Row<UInt32>(
        "vmcb-present", "vmcbMissing",
        kernel: svm + "if (kvm_state->size < sizeof(*kvm_state) + KVM_STATE_NESTED_SVM_VMCB_SIZE)",
        message: { size in
            "GUEST_MODE is set but size \(size) has no vmcb12 (needs \(NestedState.headerSize + VMCB.pageSize))"
        },
        report: { .vmcbMissing(size: $0) }
    ) { s, _ in
        guard isSVM(s), s.flags.contains(.guestMode),
            Int(s.size) < NestedState.headerSize + VMCB.pageSize
        else { return nil }
        return s.size
    }

    static let vmrunNotIntercepted = Row<Void>(
        "vmcb-vmrun-intercept", "vmrunNotIntercepted",
        kernel: ctl + "if (CC(!vmcb12_is_intercept(control, INTERCEPT_VMRUN)))",
        message: { "vmcb12 control does not intercept VMRUN" },
        report: { .vmrunNotIntercepted }
    ) { s, _ in
        guard let v = loadedVMCB(s), !v.control.interceptsVMRUN else { return nil }
        return ()
    }

    static let asidZero = Row<Void>(
        "vmcb-asid", "asidZero",
        kernel: ctl + "if (CC(control->asid == 0))",
        message: { "vmcb12 control has ASID 0" },
        report: { .asidZero }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.control.asid == 0 else { return nil }
        return ()
    }

    static let msrpmAddressInvalid = bitmapAddressInvalid("vmcb-msrpm", "msrpm_base_pa", \.msrpmBasePA, 0x2000)
    static let iopmAddressInvalid = bitmapAddressInvalid("vmcb-iopm", "iopm_base_pa", \.iopmBasePA, 0x3000)

    /// nested_svm_check_bitmap_pa(): PAGE_ALIGN(pa) and its last byte are legal GPAs.
    static func bitmapAddressInvalid(
        _ id: String, _ field: String, _ keyPath: KeyPath<VMCBControl, UInt64> & Sendable,
        _ size: UInt64
    ) -> Row<(name: String, address: UInt64)> {
        Row(
            id, "bitmapAddressInvalid",
            kernel: ctl
                + "if (CC(!nested_svm_check_bitmap_pa(vcpu, control->msrpm_base_pa, MSRPM_SIZE))) / (…iopm_base_pa, IOPM_SIZE)",
            message: { f in "vmcb12 \(f.name) \(hex(f.address)) is not a legal guest-physical address range" },
            report: { .bitmapAddressInvalid(name: $0.name, address: $0.address) }
        ) { s, c in
            guard let v = loadedVMCB(s), let bits = c.maxPhysAddrBits, bits > 0, bits < 64 else { return nil }
            let pa = v.control[keyPath: keyPath]
            let (aligned, o1) = pa.addingReportingOverflow(0xFFF)
            let start = aligned & ~0xFFF
            let (end, o2) = start.addingReportingOverflow(size - 1)
            let legal = !o1 && !o2 && start >> UInt64(bits) == 0 && end >> UInt64(bits) == 0
            return legal ? nil : (field, pa)
        }
    }

    static let l2CR0Invalid = Row<UInt64>(
        "l2-cr0", "l2CR0Invalid",
        kernel: svm + "cr0 = kvm_read_cr0(vcpu); if (((cr0 & X86_CR0_CD) == 0) && (cr0 & X86_CR0_NW)) goto out_free;",
        message: { cr0 in "the vCPU's (L2) CR0 \(hex(cr0)) has NW set with CD clear" },
        report: { .l2CR0Invalid($0) }
    ) { s, c in
        guard loadedVMCB(s) != nil, let cr0 = c.cr0, cr0 & ControlRegister.cd == 0, cr0 & ControlRegister.nw != 0 else {
            return nil
        }
        return cr0
    }

    static let l1NotPagedProtectedMode = Row<UInt64>(
        "l1-paged-protected", "l1NotPagedProtectedMode",
        kernel: svm + "if (!(save->cr0 & X86_CR0_PG) || !(save->cr0 & X86_CR0_PE) || …",
        message: { cr0 in "L1 save area CR0 \(hex(cr0)) lacks PG or PE (L1 must be in paged protected mode)" },
        report: { .l1NotPagedProtectedMode(cr0: $0) }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.save.cr0 & ControlRegister.pg == 0 || v.save.cr0 & ControlRegister.pe == 0 else {
            return nil
        }
        return v.save.cr0
    }

    static let l1InVirtual8086Mode = Row<UInt64>(
        "l1-not-vm86", "l1InVirtual8086Mode",
        kernel: svm + "if (… || (save->rflags & X86_EFLAGS_VM) || …",
        message: { rflags in "L1 save area RFLAGS \(hex(rflags)) has VM set" },
        report: { .l1InVirtual8086Mode(rflags: $0) }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.save.rflags & rflagsVM != 0 else { return nil }
        return v.save.rflags
    }

    static let l1SVMEClear = Row<UInt64>(
        "l1-svme", "l1SVMEClear",
        kernel: save + "if (CC(!(save->efer & EFER_SVME)))",
        message: { efer in "L1 save area EFER \(hex(efer)) has SVME clear" },
        report: { .l1SVMEClear(efer: $0) }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.save.efer & EFER.svme == 0 else { return nil }
        return v.save.efer
    }

    static let l1CR0Invalid = Row<UInt64>(
        "l1-cr0", "l1CR0Invalid",
        kernel: save
            + "if (CC((save->cr0 & X86_CR0_CD) == 0 && (save->cr0 & X86_CR0_NW)) || CC(save->cr0 & ~0xffffffffULL))",
        message: { cr0 in "L1 save area CR0 \(hex(cr0)) has NW without CD, or bits above 31 set" },
        report: { .l1CR0Invalid($0) }
    ) { s, _ in
        guard let v = loadedVMCB(s) else { return nil }
        let cr0 = v.save.cr0
        return (cr0 & ControlRegister.cd == 0 && cr0 & ControlRegister.nw != 0) || cr0 >> 32 != 0 ? cr0 : nil
    }

    static let l1DebugRegistersInvalid = Row<(dr6: UInt64, dr7: UInt64)>(
        "l1-debug-registers", "l1DebugRegistersInvalid",
        kernel: save + "if (CC(!kvm_dr6_valid(save->dr6)) || CC(!kvm_dr7_valid(save->dr7)))",
        message: { f in "L1 save area DR6 \(hex(f.dr6)) / DR7 \(hex(f.dr7)) have bits above 31 set" },
        report: { .l1DebugRegistersInvalid(dr6: $0.dr6, dr7: $0.dr7) }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.save.dr6 >> 32 != 0 || v.save.dr7 >> 32 != 0 else { return nil }
        return (v.save.dr6, v.save.dr7)
    }

    static let l1LongModeWithoutPAE = Row<UInt64>(
        "l1-long-mode-pae", "l1LongModeWithoutPAE",
        kernel: save
            + "if ((save->efer & EFER_LME) && (save->cr0 & X86_CR0_PG)) { if (CC(!(save->cr4 & X86_CR4_PAE)) || CC(!(save->cr0 & X86_CR0_PE)) || …",
        message: { cr4 in "L1 save area has EFER.LME and CR0.PG but CR4 \(hex(cr4)) lacks PAE" },
        report: { .l1LongModeWithoutPAE(cr4: $0) }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.save.efer & EFER.lme != 0, v.save.cr0 & ControlRegister.pg != 0,
            v.save.cr4 & ControlRegister.pae == 0
        else { return nil }
        return v.save.cr4
    }

    static let l1CR3Illegal = Row<UInt64>(
        "l1-cr3", "l1CR3Illegal",
        kernel: save + "… || CC(kvm_vcpu_is_illegal_gpa(vcpu, save->cr3)) (newer: !kvm_vcpu_is_legal_cr3)",
        message: { cr3 in "L1 save area CR3 \(hex(cr3)) exceeds the guest's physical address width" },
        report: { .l1CR3Illegal($0) }
    ) { s, c in
        guard let v = loadedVMCB(s), v.save.efer & EFER.lme != 0, v.save.cr0 & ControlRegister.pg != 0,
            let bits = c.maxPhysAddrBits, bits > 0, bits < 64, v.save.cr3 >> UInt64(bits) != 0
        else { return nil }
        return v.save.cr3
    }

    /// CR4 bits 63:33, reserved on every CPU (bit 32 is FRED's, allowed per guest CPUID).
    static let cr4AlwaysReserved: UInt64 = ~((1 << 33) - 1)

    static let l1CR4Reserved = Row<UInt64>(
        "l1-cr4-reserved", "l1CR4Reserved",
        kernel: save
            + "if (CC(!__kvm_is_valid_cr4(vcpu, save->cr4))) (cr4 & cr4_reserved_bits; bits 63:33 are in CR4_RESERVED_BITS on every kernel)",
        message: { cr4 in "L1 save area CR4 \(hex(cr4)) sets reserved bits above 32" },
        report: { .l1CR4Reserved($0) }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.save.cr4 & cr4AlwaysReserved != 0 else { return nil }
        return v.save.cr4
    }

    /// EFER bits some KVM may allow: SCE, LME, LMA (efer_reserved_bits starts without
    /// them), then what kvm_enable_efer_bits() adds: NX, SVME, LMSLE, FFXSR, AUTOIBRS.
    static let eferKVMBits: UInt64 = EFER.sce | EFER.lme | EFER.lma | EFER.nxe | EFER.svme | 1 << 13 | 1 << 14 | 1 << 21

    static let l1EFERReserved = Row<UInt64>(
        "l1-efer-reserved", "l1EFERReserved",
        kernel: save
            + "if (CC(!kvm_valid_efer(vcpu, save->efer))) (efer & efer_reserved_bits; only SCE, LME, LMA, NX, SVME, LMSLE, FFXSR, AUTOIBRS are ever enabled)",
        message: { efer in "L1 save area EFER \(hex(efer)) sets bits KVM always reserves (\(hex(efer & ~eferKVMBits)))"
        },
        report: { .l1EFERReserved($0) }
    ) { s, _ in
        guard let v = loadedVMCB(s), v.save.efer & ~eferKVMBits != 0 else { return nil }
        return v.save.efer
    }
}
