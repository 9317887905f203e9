import CKVM

/// A KVM capability, as asked with KVM_CHECK_EXTENSION. `KVM.check(_:)` returns
/// its value: 0 when absent, 1 or a size/count when present.
public enum Capability: Int32, CaseIterable, Sendable {
    case irqchip = 0
    case hlt = 1
    case userMemory = 3
    case setTSSAddr = 4
    case vapic = 6
    case extCPUID = 7
    case nrVCPUs = 9
    case nrMemslots = 10
    case pit = 11
    case mpState = 14
    case syncMMU = 16
    case iommu = 18
    case userNMI = 22
    case setGuestDebug = 23
    case reinjectControl = 24
    case irqRouting = 25
    case setBootCPUID = 34
    case setIdentityMapAddr = 37
    case adjustClock = 39
    case vcpuEvents = 41
    case pit2 = 33
    case pitState2 = 35
    case ioeventfd = 36
    case debugRegs = 50
    case xsave = 55
    case xcrs = 56
    case tscControl = 60
    case tscDeadlineTimer = 72
    case syncRegs = 74
    case readonlyMem = 81
    case getTSCKHz = 61
    case maxVCPUs = 66
    case ioeventfdAnyLength = 122
    case x86SMM = 117
    case immediateExit = 136
    case maxVCPUID = 128
    case getMSRFeatures = 153
    case nestedState = 157
    case hypervEnlightenedVMCS = 163
    case x2apicAPI = 129
    case xsave2 = 208
    case exceptionPayload = 164
    case manualDirtyLogProtect2 = 168
    case x86NotifyVMExit = 219
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
