import CKVM
import Glibc
import Synchronization

/// The `/dev/kvm` system handle: API version, capabilities, supported CPUID and
/// MSR lists, and the factory for VMs (kvm-ioctls' `Kvm`).
public final class KVM: Sendable {
    /// The only KVM API version there has ever been.
    public static let apiVersion: Int32 = 12

    let handle: FileHandle
    /// The device path opened ("/dev/kvm").
    public let path: String
    /// Size of each vCPU's shared `struct kvm_run` mapping.
    public let vcpuMmapSize: Int
    /// KVM_GET_SUPPORTED_CPUID, asked once: it cannot change while the module is
    /// loaded, and it costs about 0.5 ms a call on some hosts (every new vCPU needs it).
    private let cachedCPUID = Mutex<CPUID?>(nil)
    /// KVM_CHECK_EXTENSION answers by capability number, -1 until asked: they
    /// cannot change while the module is loaded, and a snapshot reset asks
    /// several on every call. Atomic loads and stores: two threads that ask at
    /// once both ask KVM and store the same answer (relaxed: nothing else is
    /// published with it).
    private let capabilityAnswers: InlineArray<256, Atomic<Int32>> = InlineArray { _ in Atomic(-1) }

    /// Opens `path` and checks the API version. Errors name the cause a user can fix:
    /// a missing device (module not loaded, no hardware support) or permissions.
    public init(path: String = "/dev/kvm") throws {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let err = Errno.current
            let hint: String? =
                switch err {
                case .ENOENT: "\(path) does not exist: is the kvm module loaded and virtualization enabled?"
                case .EACCES, .EPERM: "no permission to open \(path): add the user to the kvm group or run as root"
                default: nil
                }
            throw KVMError("open \(path)", errno: err, hint: hint)
        }
        self.handle = FileHandle(fd)
        self.path = path
        let version = try handle.ioctl(.getAPIVersion, value: 0)
        guard version == KVM.apiVersion else {
            throw KVMError(
                "KVM_GET_API_VERSION", errno: .EINVAL,
                hint: "KVM API version \(version), this library needs \(KVM.apiVersion)")
        }
        self.vcpuMmapSize = Int(try handle.ioctl(.getVCPUMmapSize, value: 0))
    }

    /// KVM_CHECK_EXTENSION: 0 when the capability is absent, else 1 or its value;
    /// asked once per capability.
    public func check(_ capability: Capability) -> Int {
        let number = Int(capability.rawValue)
        guard capabilityAnswers.indices.contains(number) else { return ask(capability) }
        let known = capabilityAnswers[number].load(ordering: .relaxed)
        if known >= 0 { return Int(known) }
        let answer = ask(capability)
        capabilityAnswers[number].store(Int32(clamping: answer), ordering: .relaxed)
        return answer
    }

    private func ask(_ capability: Capability) -> Int {
        Int(max(0, ckvm_ioctl(handle.fd, CKVM_CHECK_EXTENSION, UInt(capability.rawValue))))
    }

    /// Every capability with its value, for reports.
    public func capabilities() -> [(Capability, Int)] {
        Capability.allCases.map { ($0, check($0)) }
    }

    /// KVM_GET_SUPPORTED_CPUID: what a vCPU may be offered.
    public func supportedCPUID() throws -> CPUID {
        try cachedCPUID.withLock { cached in
            if let cached { return cached }
            let table = try CPUID.read { try handle.ioctl(.getSupportedCPUID, $0) }
            cached = table
            return table
        }
    }

    /// KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a vCPU.
    public func msrIndexList() throws -> [UInt32] {
        try readMSRList(.getMSRIndexList)
    }

    /// KVM_GET_MSR_FEATURE_INDEX_LIST: feature MSRs readable on this fd (e.g. VMX capabilities).
    public func msrFeatureIndexList() throws -> [UInt32] {
        try readMSRList(.getMSRFeatureIndexList)
    }

    /// KVM_GET_MSRS on the system fd: the values of feature MSRs. Stops at the first
    /// MSR KVM cannot read; the result holds those it read.
    public func featureMSRs(_ indices: [UInt32]) throws -> [MSR] {
        try MSR.get(indices, on: handle)
    }

    /// KVM_CREATE_VM.
    public func createVM() throws -> VirtualMachine {
        let fd = try handle.ioctl(.createVM, value: 0) { err in
            err == .ENOMEM ? "out of memory creating a VM" : nil
        }
        return VirtualMachine(kvm: self, handle: FileHandle(fd))
    }

    private func readMSRList(_ request: IOCtl) throws -> [UInt32] {
        var capacity: UInt32 = 256
        while true {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4 + 4 * Int(capacity), alignment: 4)
            defer { buffer.deallocate() }
            buffer.storeBytes(of: capacity, as: UInt32.self)
            do {
                try handle.ioctl(request, buffer)
            } catch let error as KVMError where error.errno == .E2BIG {
                capacity = max(capacity * 2, buffer.load(as: UInt32.self))
                continue
            }
            let count = Int(buffer.load(as: UInt32.self))
            return (0..<count).map { buffer.load(fromByteOffset: 4 + 4 * $0, as: UInt32.self) }
        }
    }
}
