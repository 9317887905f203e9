import CKVM
import Glibc

/// One KVM ioctl: its request number and the name errors report.
struct IOCtl: Sendable {
    let name: String
    let request: UInt

    init(_ name: String, _ request: UInt) {
        self.name = name
        self.request = request
    }
}

extension IOCtl {
    static let getAPIVersion = IOCtl("KVM_GET_API_VERSION", CKVM_GET_API_VERSION)
    static let createVM = IOCtl("KVM_CREATE_VM", CKVM_CREATE_VM)
    static let checkExtension = IOCtl("KVM_CHECK_EXTENSION", CKVM_CHECK_EXTENSION)
    static let getVCPUMmapSize = IOCtl("KVM_GET_VCPU_MMAP_SIZE", CKVM_GET_VCPU_MMAP_SIZE)
    static let getSupportedCPUID = IOCtl("KVM_GET_SUPPORTED_CPUID", CKVM_GET_SUPPORTED_CPUID)
    static let getMSRIndexList = IOCtl("KVM_GET_MSR_INDEX_LIST", CKVM_GET_MSR_INDEX_LIST)
    static let getMSRFeatureIndexList = IOCtl("KVM_GET_MSR_FEATURE_INDEX_LIST", CKVM_GET_MSR_FEATURE_INDEX_LIST)
    static let setUserMemoryRegion = IOCtl("KVM_SET_USER_MEMORY_REGION", CKVM_SET_USER_MEMORY_REGION)
    static let createVCPU = IOCtl("KVM_CREATE_VCPU", CKVM_CREATE_VCPU)
    static let setTSSAddr = IOCtl("KVM_SET_TSS_ADDR", CKVM_SET_TSS_ADDR)
    static let setIdentityMapAddr = IOCtl("KVM_SET_IDENTITY_MAP_ADDR", CKVM_SET_IDENTITY_MAP_ADDR)
    static let createIRQChip = IOCtl("KVM_CREATE_IRQCHIP", CKVM_CREATE_IRQCHIP)
    static let createPIT2 = IOCtl("KVM_CREATE_PIT2", CKVM_CREATE_PIT2)
    static let irqLine = IOCtl("KVM_IRQ_LINE", CKVM_IRQ_LINE)
    static let setGSIRouting = IOCtl("KVM_SET_GSI_ROUTING", CKVM_SET_GSI_ROUTING)
    static let ioeventfd = IOCtl("KVM_IOEVENTFD", CKVM_IOEVENTFD)
    static let getDirtyLog = IOCtl("KVM_GET_DIRTY_LOG", CKVM_GET_DIRTY_LOG)
    static let enableCap = IOCtl("KVM_ENABLE_CAP", CKVM_ENABLE_CAP)
    static let getIRQChip = IOCtl("KVM_GET_IRQCHIP", CKVM_GET_IRQCHIP)
    static let setIRQChip = IOCtl("KVM_SET_IRQCHIP", CKVM_SET_IRQCHIP)
    static let getPIT2 = IOCtl("KVM_GET_PIT2", CKVM_GET_PIT2)
    static let setPIT2 = IOCtl("KVM_SET_PIT2", CKVM_SET_PIT2)
    static let getClock = IOCtl("KVM_GET_CLOCK", CKVM_GET_CLOCK)
    static let setClock = IOCtl("KVM_SET_CLOCK", CKVM_SET_CLOCK)
    static let run = IOCtl("KVM_RUN", CKVM_RUN)
    static let getRegs = IOCtl("KVM_GET_REGS", CKVM_GET_REGS)
    static let setRegs = IOCtl("KVM_SET_REGS", CKVM_SET_REGS)
    static let getSregs = IOCtl("KVM_GET_SREGS", CKVM_GET_SREGS)
    static let setSregs = IOCtl("KVM_SET_SREGS", CKVM_SET_SREGS)
    static let getFPU = IOCtl("KVM_GET_FPU", CKVM_GET_FPU)
    static let setFPU = IOCtl("KVM_SET_FPU", CKVM_SET_FPU)
    static let getXSAVE = IOCtl("KVM_GET_XSAVE", CKVM_GET_XSAVE)
    static let getXSAVE2 = IOCtl("KVM_GET_XSAVE2", CKVM_GET_XSAVE2)
    static let setXSAVE = IOCtl("KVM_SET_XSAVE", CKVM_SET_XSAVE)
    static let getXCRs = IOCtl("KVM_GET_XCRS", CKVM_GET_XCRS)
    static let setXCRs = IOCtl("KVM_SET_XCRS", CKVM_SET_XCRS)
    static let getMSRs = IOCtl("KVM_GET_MSRS", CKVM_GET_MSRS)
    static let setMSRs = IOCtl("KVM_SET_MSRS", CKVM_SET_MSRS)
    static let getCPUID2 = IOCtl("KVM_GET_CPUID2", CKVM_GET_CPUID2)
    static let setCPUID2 = IOCtl("KVM_SET_CPUID2", CKVM_SET_CPUID2)
    static let getLAPIC = IOCtl("KVM_GET_LAPIC", CKVM_GET_LAPIC)
    static let setLAPIC = IOCtl("KVM_SET_LAPIC", CKVM_SET_LAPIC)
    static let getVCPUEvents = IOCtl("KVM_GET_VCPU_EVENTS", CKVM_GET_VCPU_EVENTS)
    static let setVCPUEvents = IOCtl("KVM_SET_VCPU_EVENTS", CKVM_SET_VCPU_EVENTS)
    static let getDebugRegs = IOCtl("KVM_GET_DEBUGREGS", CKVM_GET_DEBUGREGS)
    static let setDebugRegs = IOCtl("KVM_SET_DEBUGREGS", CKVM_SET_DEBUGREGS)
    static let getMPState = IOCtl("KVM_GET_MP_STATE", CKVM_GET_MP_STATE)
    static let setMPState = IOCtl("KVM_SET_MP_STATE", CKVM_SET_MP_STATE)
    static let getNestedState = IOCtl("KVM_GET_NESTED_STATE", CKVM_GET_NESTED_STATE)
    static let setNestedState = IOCtl("KVM_SET_NESTED_STATE", CKVM_SET_NESTED_STATE)
    static let setGuestDebug = IOCtl("KVM_SET_GUEST_DEBUG", CKVM_SET_GUEST_DEBUG)
}

/// An open file descriptor for /dev/kvm, a VM or a vCPU; closed when released.
final class FileHandle: Sendable {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Issues `ioctl` with a pointer argument; a negative return throws `KVMError`
    /// naming the request. `hint` maps the errno to the likely cause.
    @inline(__always)
    @discardableResult
    func ioctl(
        _ request: IOCtl, _ argument: UnsafeMutableRawPointer?,
        hint: (Errno) -> String? = { _ in nil }
    ) throws -> Int32 {
        try checked(ckvm_ioctl_ptr(fd, request.request, argument), request, hint)
    }

    /// `ioctl` with an integer argument.
    @discardableResult
    func ioctl(
        _ request: IOCtl, value: UInt,
        hint: (Errno) -> String? = { _ in nil }
    ) throws -> Int32 {
        try checked(ckvm_ioctl(fd, request.request, value), request, hint)
    }

    @inline(__always)
    private func checked(_ result: Int32, _ request: IOCtl, _ hint: (Errno) -> String?) throws -> Int32 {
        guard result >= 0 else {
            let err = Errno.current
            throw KVMError(request.name, errno: err, hint: hint(err))
        }
        return result
    }

    /// `ioctl` into or out of one value of C struct type `T`.
    @discardableResult
    func ioctl<T>(
        _ request: IOCtl, _ value: inout T,
        hint: (Errno) -> String? = { _ in nil }
    ) throws -> Int32 {
        try withUnsafeMutablePointer(to: &value) { try ioctl(request, UnsafeMutableRawPointer($0), hint: hint) }
    }
}
