import CKVM

/// One CPUID leaf/subleaf as KVM describes it (`struct kvm_cpuid_entry2`).
public struct CPUIDEntry: Equatable, Sendable {
    /// The leaf (EAX input).
    public var function: UInt32
    /// The subleaf (ECX input).
    public var index: UInt32
    /// KVM_CPUID_FLAG_* (bit 0: the leaf has subleaves).
    public var flags: UInt32
    /// EAX output.
    public var eax: UInt32
    /// EBX output.
    public var ebx: UInt32
    /// ECX output.
    public var ecx: UInt32
    /// EDX output.
    public var edx: UInt32

    /// An entry from its fields (zero by default).
    public init(
        function: UInt32, index: UInt32 = 0, flags: UInt32 = 0,
        eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0
    ) {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }

    init(_ e: kvm_cpuid_entry2) {
        self.init(
            function: e.function, index: e.index, flags: e.flags,
            eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
    }

    var raw: kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function
        e.index = index
        e.flags = flags
        e.eax = eax
        e.ebx = ebx
        e.ecx = ecx
        e.edx = edx
        return e
    }
}

/// A CPUID table: what KVM_GET_SUPPORTED_CPUID offers, or what a vCPU is given.
public struct CPUID: Equatable, Sendable {
    /// The leaves, in KVM's order.
    public var entries: [CPUIDEntry]
    /// A table of `entries`.
    public init(entries: [CPUIDEntry]) { self.entries = entries }

    /// KVM's paravirtual feature leaf (KVM_CPUID_FEATURES), after the
    /// "KVMKVMKVM" signature leaf 40000000h.
    public static let kvmFeatures: UInt32 = 0x4000_0001
    /// Its EAX bit KVM_FEATURE_PV_UNHALT: a vCPU halted with interrupts off
    /// may be woken by another's KVM_HC_KICK_CPU (paravirtual spinlocks).
    public static let kvmFeaturePVUnhalt: UInt32 = 1 << 7

    /// The entry for `function`/`index` (index ignored for leaves that are not indexed).
    public subscript(function: UInt32, index: UInt32 = 0) -> CPUIDEntry? {
        get {
            entries.first { $0.function == function && ($0.index == index || !$0.isIndexed) }
        }
        set {
            let i = entries.firstIndex { $0.function == function && ($0.index == index || !$0.isIndexed) }
            switch (i, newValue) {
            case (let i?, let value?): entries[i] = value
            case (let i?, nil): entries.remove(at: i)
            case (nil, let value?): entries.append(value)
            case (nil, nil): break
            }
        }
    }

    /// The vendor string of leaf 0, e.g. "GenuineIntel".
    public var vendor: String {
        guard let leaf0 = self[0] else { return "" }
        return fourCC(leaf0.ebx) + fourCC(leaf0.edx) + fourCC(leaf0.ecx)
    }

    /// Passes the table to KVM as a `struct kvm_cpuid2` with its entries inline.
    func withKVMCPUID2<R>(_ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        let header = MemoryLayout<kvm_cpuid2>.size
        let stride = MemoryLayout<kvm_cpuid_entry2>.stride
        let buffer = UnsafeMutableRawPointer.allocate(
            byteCount: header + stride * max(entries.count, 1),
            alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: header)
        buffer.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = UInt32(entries.count)
        for (i, entry) in entries.enumerated() {
            buffer.storeBytes(of: entry.raw, toByteOffset: header + i * stride, as: kvm_cpuid_entry2.self)
        }
        return try body(buffer)
    }

    /// Reads a table with `fill`, growing the buffer while KVM answers E2BIG.
    static func read(_ fill: (UnsafeMutableRawPointer) throws -> Void) throws -> CPUID {
        var capacity = 128
        while true {
            let header = MemoryLayout<kvm_cpuid2>.size
            let stride = MemoryLayout<kvm_cpuid_entry2>.stride
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: header + stride * capacity, alignment: 8)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: header + stride * capacity)
            buffer.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = UInt32(capacity)
            do {
                try fill(buffer)
            } catch let error as KVMError where error.errno == .E2BIG && capacity < 4096 {
                capacity *= 2
                continue
            }
            let count = Int(buffer.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent)
            let entries = (0..<count).map {
                CPUIDEntry(buffer.load(fromByteOffset: header + $0 * stride, as: kvm_cpuid_entry2.self))
            }
            return CPUID(entries: entries)
        }
    }
}

extension CPUIDEntry {
    var isIndexed: Bool { flags & UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0 }
}

/// Four little-endian ASCII bytes of a register, as CPUID vendor strings use them.
func fourCC(_ value: UInt32) -> String {
    let bytes = (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    return String(decoding: bytes.filter { $0 != 0 }, as: UTF8.self)
}

extension CPUIDEntry {
    /// A leaf carrying a 12-byte string (NUL-padded, cut at 12) in EBX, ECX,
    /// EDX, as hypervisor signatures do; `fourCC` reads each register back.
    package init(function: UInt32, eax: UInt32, signature text: String) {
        let bytes = Array(text.utf8.prefix(12)) + [UInt8](repeating: 0, count: 12)
        func word(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[i + $1]) << (8 * $1) } }
        self.init(function: function, eax: eax, ebx: word(0), ecx: word(4), edx: word(8))
    }
}

extension CPUID {
    /// Writes a vCPU's APIC ID where CPUID reports it (leaf 1 EBX[31:24], leaves 0xB and 0x1F EDX).
    public mutating func setInitialAPICID(_ id: UInt32) {
        for i in entries.indices {
            switch entries[i].function {
            case 1: entries[i].ebx = (entries[i].ebx & 0x00FF_FFFF) | (id << 24)
            case 0xB, 0x1F: entries[i].edx = id
            default: break
            }
        }
    }
}
