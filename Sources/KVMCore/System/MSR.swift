import CKVM

/// One model-specific register and its value.
public struct MSR: Equatable, Hashable, Sendable {
    /// The MSR number.
    public var index: UInt32
    /// Its value.
    public var value: UInt64
    /// MSR `index` with `value`.
    public init(_ index: UInt32, _ value: UInt64) {
        self.index = index
        self.value = value
    }

    /// IA32_EFER.
    public static let efer: UInt32 = 0xC000_0080
    /// IA32_FEATURE_CONTROL (`FeatureControl`'s bits).
    public static let featureControl: UInt32 = 0x3A
    /// IA32_VMX_BASIC, the first VMX capability MSR.
    public static let vmxBasic: UInt32 = 0x480
    /// AMD's VM_CR (SVMDIS is bit 4).
    public static let vmCR: UInt32 = 0xC001_0114
    /// IA32_TSC_DEADLINE.
    public static let tscDeadline: UInt32 = 0x6E0
    /// IA32_APIC_BASE.
    public static let apicBase: UInt32 = 0x1B

    /// KVM_GET_MSRS on a system or vCPU fd. KVM returns how many it read: the
    /// result is that prefix (KVM stops at the first MSR it cannot read).
    static func get(_ indices: [UInt32], on handle: FileHandle) throws -> [MSR] {
        try withMSRs(indices.map { MSR($0, 0) }) { buffer in
            let read = Int(try handle.ioctl(.getMSRs, buffer))
            return (0..<read).map { entry(buffer, $0) }
        }
    }

    /// KVM_SET_MSRS; returns how many KVM accepted, in order.
    static func set(_ msrs: [MSR], on handle: FileHandle) throws -> Int {
        try withMSRs(msrs) { Int(try handle.ioctl(.setMSRs, $0)) }
    }

    /// Lays out `struct kvm_msrs` followed by its `kvm_msr_entry` array.
    private static func withMSRs<R>(_ msrs: [MSR], _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        let header = MemoryLayout<kvm_msrs>.size
        let stride = MemoryLayout<kvm_msr_entry>.stride
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: header + stride * max(msrs.count, 1), alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: header + stride * max(msrs.count, 1))
        buffer.assumingMemoryBound(to: kvm_msrs.self).pointee.nmsrs = UInt32(msrs.count)
        for (i, msr) in msrs.enumerated() {
            var e = kvm_msr_entry()
            e.index = msr.index
            e.data = msr.value
            buffer.storeBytes(of: e, toByteOffset: header + i * stride, as: kvm_msr_entry.self)
        }
        return try body(buffer)
    }

    private static func entry(_ buffer: UnsafeMutableRawPointer, _ i: Int) -> MSR {
        let e = buffer.load(
            fromByteOffset: MemoryLayout<kvm_msrs>.size + i * MemoryLayout<kvm_msr_entry>.stride,
            as: kvm_msr_entry.self)
        return MSR(e.index, e.data)
    }
}
