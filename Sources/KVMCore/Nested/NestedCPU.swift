/// How a vCPU is offered virtualization extensions.
public enum NestingPolicy: String, Sendable {
    /// The vCPU sees no VMX/SVM (CPUID as KVM supports, minus nothing).
    case off
    /// Offer VMX/SVM only where the host can nest; otherwise refuse with the reason.
    case on
    /// Set the bits whatever the host says, to see how a guest copes.
    case force
}

/// What the host could not refuse: nesting is off here, with the report's reason.
public struct NestingUnavailable: Error, CustomStringConvertible, Sendable {
    /// The host's nesting report, with the reason nesting is off.
    public let report: NestingReport
    /// The report's one-line summary.
    public var description: String { report.summary }
}

extension VCPU {
    /// Sets the vCPU up so its guest may run a hypervisor, as firmware would leave
    /// a real CPU: Intel — CPUID.1:ECX.VMX, the VMX capability MSRs from KVM's
    /// feature MSRs, IA32_FEATURE_CONTROL locked with VMXON outside SMX; AMD —
    /// CPUID.80000001h:ECX.SVM with leaf 8000000Ah, VM_CR with SVMDIS clear.
    /// Returns warnings (e.g. MSRs KVM would not take under `.force`).
    @discardableResult
    public func enableNesting(_ policy: NestingPolicy, report: NestingReport? = nil) throws -> [String] {
        guard policy != .off else { return [] }
        let report = report ?? vm.kvm.nestingReport()
        if policy == .on && !report.isAvailable { throw NestingUnavailable(report: report) }
        guard let tech = report.technology else {
            throw NestingUnavailable(report: report)
        }
        var warnings: [String] = []
        var table = try cpuid()
        let supported = try vm.kvm.supportedCPUID()
        switch tech {
        case .vmx:
            table[1]?.ecx |= 1 << 5
            try setCPUID(table)
            // The capability MSRs KVM emulates for this vCPU (0x480–0x493), read as feature MSRs,
            // less those KVM derives itself and refuses to have set (see vmxCapabilityMSRsToCopy).
            let features = (try? vm.kvm.msrFeatureIndexList()) ?? []
            let vmxIndices = VCPU.vmxCapabilityMSRsToCopy(features)
            if vmxIndices.isEmpty {
                warnings.append("KVM lists no VMX capability MSRs (0x480–0x493) among its feature MSRs")
            }
            for index in vmxIndices {
                do {
                    let value = try vm.kvm.featureMSRs([index])
                    if let msr = value.first { try setMSRs([msr]) }
                } catch {
                    warnings.append("VMX capability MSR \(hex(index)): \(error)")
                }
            }
            do {
                try setMSRs([MSR(MSR.featureControl, FeatureControl.locked | FeatureControl.vmxOutsideSMX)])
            } catch {
                warnings.append("IA32_FEATURE_CONTROL: \(error)")
            }
        case .svm:
            table[0x8000_0001]?.ecx |= 1 << 2
            if table[0x8000_000A] == nil {
                // Revision 1, 8 ASIDs, NPT and NRIPS: what KVM reports for nested SVM.
                table[0x8000_000A] =
                    supported[0x8000_000A]
                    ?? CPUIDEntry(function: 0x8000_000A, eax: 1, ebx: 8, edx: (1 << 0) | (1 << 3))
            }
            if let maxExtended = table[0x8000_0000], maxExtended.eax < 0x8000_000A {
                table[0x8000_0000]?.eax = 0x8000_000A
            }
            try setCPUID(table)
            do {
                try setMSRs([MSR(MSR.vmCR, 0)])
            } catch {
                warnings.append("VM_CR: \(error)")
            }
        }
        if !report.isAvailable {
            warnings.insert("nesting forced on although \(report.summary)", at: 0)
        }
        return warnings
    }
}

extension VCPU {
    /// VMX capability MSRs KVM computes itself and refuses to have set
    /// (arch/x86/kvm/vmx/nested.c vmx_set_vmx_msr(): -EINVAL): the non-TRUE control
    /// MSRs IA32_VMX_PINBASED/PROCBASED/EXIT/ENTRY_CTLS (0x481–0x484, "generated from
    /// the TRUE MSRs") and IA32_VMX_CR0_FIXED1 / CR4_FIXED1 (0x487, 0x489, "generated
    /// based on the vCPU's CPUID"). KVM still lists them among its feature MSRs.
    /// Seen on Debian 6.1's kvm_intel (Tools/vmx-lab/run --linux): copying them made
    /// every nested run print six KVM_SET_MSRS EINVAL warnings.
    public static let derivedVMXCapabilityMSRs: Set<UInt32> = [0x481, 0x482, 0x483, 0x484, 0x487, 0x489]

    /// The VMX capability MSRs `enableNesting` copies from KVM's feature MSR indices:
    /// those in 0x480–0x493, in the given order, minus `derivedVMXCapabilityMSRs`.
    public static func vmxCapabilityMSRsToCopy(_ featureIndices: [UInt32]) -> [UInt32] {
        featureIndices.filter { (0x480...0x493).contains($0) && !derivedVMXCapabilityMSRs.contains($0) }
    }
}

/// IA32_FEATURE_CONTROL bits.
public enum FeatureControl {
    /// Bit 0: the MSR is locked until reset.
    public static let locked: UInt64 = 1 << 0
    /// Bit 1: VMXON allowed inside SMX operation.
    public static let vmxInsideSMX: UInt64 = 1 << 1
    /// Bit 2: VMXON allowed outside SMX operation.
    public static let vmxOutsideSMX: UInt64 = 1 << 2
}
