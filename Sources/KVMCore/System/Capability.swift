import CKVM

/// A KVM capability, as asked with KVM_CHECK_EXTENSION. `KVM.check(_:)` returns
/// its value: 0 when absent, 1 or a size/count when present.
public enum Capability: Int32, CaseIterable, Sendable {
    /// KVM_CAP_IRQCHIP.
    case irqchip = 0
    /// KVM_CAP_HLT.
    case hlt = 1
    /// KVM_CAP_USER_MEMORY.
    case userMemory = 3
    /// KVM_CAP_SET_TSS_ADDR.
    case setTSSAddr = 4
    /// KVM_CAP_VAPIC.
    case vapic = 6
    /// KVM_CAP_EXT_CPUID.
    case extCPUID = 7
    /// KVM_CAP_NR_VCPUS.
    case nrVCPUs = 9
    /// KVM_CAP_NR_MEMSLOTS.
    case nrMemslots = 10
    /// KVM_CAP_PIT.
    case pit = 11
    /// KVM_CAP_MP_STATE.
    case mpState = 14
    /// KVM_CAP_SYNC_MMU.
    case syncMMU = 16
    /// KVM_CAP_IOMMU.
    case iommu = 18
    /// KVM_CAP_USER_NMI.
    case userNMI = 22
    /// KVM_CAP_SET_GUEST_DEBUG.
    case setGuestDebug = 23
    /// KVM_CAP_REINJECT_CONTROL.
    case reinjectControl = 24
    /// KVM_CAP_IRQ_ROUTING.
    case irqRouting = 25
    /// KVM_CAP_SET_BOOT_CPU_ID.
    case setBootCPUID = 34
    /// KVM_CAP_SET_IDENTITY_MAP_ADDR.
    case setIdentityMapAddr = 37
    /// KVM_CAP_ADJUST_CLOCK.
    case adjustClock = 39
    /// KVM_CAP_VCPU_EVENTS.
    case vcpuEvents = 41
    /// KVM_CAP_PIT2.
    case pit2 = 33
    /// KVM_CAP_PIT_STATE2.
    case pitState2 = 35
    /// KVM_CAP_IOEVENTFD.
    case ioeventfd = 36
    /// KVM_CAP_DEBUGREGS.
    case debugRegs = 50
    /// KVM_CAP_XSAVE.
    case xsave = 55
    /// KVM_CAP_XCRS.
    case xcrs = 56
    /// KVM_CAP_TSC_CONTROL.
    case tscControl = 60
    /// KVM_CAP_TSC_DEADLINE_TIMER.
    case tscDeadlineTimer = 72
    /// KVM_CAP_SYNC_REGS.
    case syncRegs = 74
    /// KVM_CAP_READONLY_MEM.
    case readonlyMem = 81
    /// KVM_CAP_GET_TSC_KHZ.
    case getTSCKHz = 61
    /// KVM_CAP_MAX_VCPUS.
    case maxVCPUs = 66
    /// KVM_CAP_IOEVENTFD_ANY_LENGTH.
    case ioeventfdAnyLength = 122
    /// KVM_CAP_X86_SMM.
    case x86SMM = 117
    /// KVM_CAP_IMMEDIATE_EXIT.
    case immediateExit = 136
    /// KVM_CAP_MAX_VCPU_ID.
    case maxVCPUID = 128
    /// KVM_CAP_GET_MSR_FEATURES.
    case getMSRFeatures = 153
    /// KVM_CAP_NESTED_STATE.
    case nestedState = 157
    /// KVM_CAP_HYPERV_ENLIGHTENED_VMCS.
    case hypervEnlightenedVMCS = 163
    /// KVM_CAP_X2APIC_API.
    case x2apicAPI = 129
    /// KVM_CAP_XSAVE2.
    case xsave2 = 208
    /// KVM_CAP_EXCEPTION_PAYLOAD.
    case exceptionPayload = 164
    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2.
    case manualDirtyLogProtect2 = 168
    /// KVM_CAP_X86_NOTIFY_VMEXIT.
    case x86NotifyVMExit = 219
    /// KVM_CAP_MEMORY_FAULT_INFO.
    case memoryFaultInfo = 232

    /// The kernel's name, "KVM_CAP_NESTED_STATE".
    public var kernelName: String {
        switch self {
        case .irqchip: "KVM_CAP_IRQCHIP"
        case .hlt: "KVM_CAP_HLT"
        case .userMemory: "KVM_CAP_USER_MEMORY"
        case .setTSSAddr: "KVM_CAP_SET_TSS_ADDR"
        case .vapic: "KVM_CAP_VAPIC"
        case .extCPUID: "KVM_CAP_EXT_CPUID"
        case .nrVCPUs: "KVM_CAP_NR_VCPUS"
        case .nrMemslots: "KVM_CAP_NR_MEMSLOTS"
        case .pit: "KVM_CAP_PIT"
        case .mpState: "KVM_CAP_MP_STATE"
        case .syncMMU: "KVM_CAP_SYNC_MMU"
        case .iommu: "KVM_CAP_IOMMU"
        case .userNMI: "KVM_CAP_USER_NMI"
        case .setGuestDebug: "KVM_CAP_SET_GUEST_DEBUG"
        case .reinjectControl: "KVM_CAP_REINJECT_CONTROL"
        case .irqRouting: "KVM_CAP_IRQ_ROUTING"
        case .setBootCPUID: "KVM_CAP_SET_BOOT_CPU_ID"
        case .setIdentityMapAddr: "KVM_CAP_SET_IDENTITY_MAP_ADDR"
        case .adjustClock: "KVM_CAP_ADJUST_CLOCK"
        case .vcpuEvents: "KVM_CAP_VCPU_EVENTS"
        case .pit2: "KVM_CAP_PIT2"
        case .pitState2: "KVM_CAP_PIT_STATE2"
        case .ioeventfd: "KVM_CAP_IOEVENTFD"
        case .debugRegs: "KVM_CAP_DEBUGREGS"
        case .xsave: "KVM_CAP_XSAVE"
        case .xcrs: "KVM_CAP_XCRS"
        case .tscControl: "KVM_CAP_TSC_CONTROL"
        case .tscDeadlineTimer: "KVM_CAP_TSC_DEADLINE_TIMER"
        case .syncRegs: "KVM_CAP_SYNC_REGS"
        case .readonlyMem: "KVM_CAP_READONLY_MEM"
        case .getTSCKHz: "KVM_CAP_GET_TSC_KHZ"
        case .maxVCPUs: "KVM_CAP_MAX_VCPUS"
        case .ioeventfdAnyLength: "KVM_CAP_IOEVENTFD_ANY_LENGTH"
        case .x86SMM: "KVM_CAP_X86_SMM"
        case .immediateExit: "KVM_CAP_IMMEDIATE_EXIT"
        case .maxVCPUID: "KVM_CAP_MAX_VCPU_ID"
        case .getMSRFeatures: "KVM_CAP_GET_MSR_FEATURES"
        case .nestedState: "KVM_CAP_NESTED_STATE"
        case .hypervEnlightenedVMCS: "KVM_CAP_HYPERV_ENLIGHTENED_VMCS"
        case .x2apicAPI: "KVM_CAP_X2APIC_API"
        case .xsave2: "KVM_CAP_XSAVE2"
        case .exceptionPayload: "KVM_CAP_EXCEPTION_PAYLOAD"
        case .manualDirtyLogProtect2: "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2"
        case .x86NotifyVMExit: "KVM_CAP_X86_NOTIFY_VMEXIT"
        case .memoryFaultInfo: "KVM_CAP_MEMORY_FAULT_INFO"
        }
    }
}
