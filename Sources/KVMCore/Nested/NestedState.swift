// The data of KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE (`struct kvm_nested_state`).
//
// Source: linux arch/x86/include/uapi/asm/kvm.h (struct kvm_nested_state,
// kvm_vmx_nested_state_hdr, kvm_svm_nested_state_hdr, kvm_*_nested_state_data, the
// KVM_STATE_NESTED_* flags) and Documentation/virt/kvm/api.rst (KVM_GET_NESTED_STATE).
//
//   offset  size  field
//   0       2     flags        KVM_STATE_NESTED_GUEST_MODE 0x1, RUN_PENDING 0x2, EVMCS 0x4,
//                              MTF_PENDING 0x8, GIF_SET 0x100
//   2       2     format       0 = VMX, 1 = SVM
//   4       4     size         bytes of the whole state (header + data) that are valid
//   8       120   hdr (union)  VMX: vmxon_pa u64 @8, vmcs12_pa u64 @16, smm.flags u16 @24,
//                                   pad u16 @26, flags u32 @28, preemption_timer_deadline u64 @32
//                              SVM: vmcb_pa u64 @8
//   128     …     data         VMX: vmcs12[4096], shadow_vmcs12[4096]; SVM: vmcb12[4096]
//
// `size` says how much data follows: 128 means header only (no vmcs12 / vmcb12 — a valid
// state, e.g. VMXON without a current VMCS, or SVM outside guest mode), 128+4096 a VMX
// state with vmcs12 but no shadow, 128+8192 both. Every byte is kept: decode → encode
// reproduces the input exactly, including reserved header bytes and anything after
// `size` (`trailing`).

import Glibc

// MARK: - Flags and format

/// `kvm_nested_state.flags`.
public struct NestedStateFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The flag bits as stored.
    public let rawValue: UInt16
    /// Flags from their stored bits (unknown bits are kept).
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// KVM_STATE_NESTED_GUEST_MODE: the vCPU was running L2.
    public static let guestMode = NestedStateFlags(rawValue: 0x1)
    /// KVM_STATE_NESTED_RUN_PENDING: a VMLAUNCH/VMRESUME/VMRUN was about to enter L2.
    public static let runPending = NestedStateFlags(rawValue: 0x2)
    /// VMX only: L1 uses an enlightened (Hyper-V) VMCS.
    public static let evmcs = NestedStateFlags(rawValue: 0x4)
    /// VMX only: a monitor trap flag VM-exit is pending.
    public static let mtfPending = NestedStateFlags(rawValue: 0x8)
    /// SVM only: the global interrupt flag is set.
    public static let gifSet = NestedStateFlags(rawValue: 0x100)

    /// Every flag the kernel accepts (x86.c, KVM_SET_NESTED_STATE).
    public static let known: NestedStateFlags = [.guestMode, .runPending, .evmcs, .mtfPending, .gifSet]

    /// "0x101 GUEST_MODE|GIF_SET", "0x0" when empty.
    public var description: String {
        NestedBitNames.nestedFlags.describe(UInt64(rawValue))
    }
}

/// `kvm_vmx_nested_state_hdr.smm.flags`.
public struct NestedSMMFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The flag bits as stored.
    public let rawValue: UInt16
    /// Flags from their stored bits (unknown bits are kept).
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// KVM_STATE_NESTED_SMM_GUEST_MODE: L2 was running when the vCPU entered SMM.
    public static let guestMode = NestedSMMFlags(rawValue: 0x1)
    /// KVM_STATE_NESTED_SMM_VMXON: L1 was in VMX operation when the vCPU entered SMM.
    public static let vmxon = NestedSMMFlags(rawValue: 0x2)
    /// Every bit the kernel defines.
    public static let known: NestedSMMFlags = [.guestMode, .vmxon]

    /// The set bits by name.
    public var description: String {
        NestedBitNames.smmFlags.describe(UInt64(rawValue))
    }
}

/// `kvm_vmx_nested_state_hdr.flags`.
public struct NestedVMXHeaderFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The flag bits as stored.
    public let rawValue: UInt32
    /// Flags from their stored bits (unknown bits are kept).
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE: `preemptionTimerDeadline` is valid.
    public static let preemptionTimerDeadline = NestedVMXHeaderFlags(rawValue: 0x1)
    /// Every bit the kernel defines.
    public static let known: NestedVMXHeaderFlags = [.preemptionTimerDeadline]

    /// The set bits by name.
    public var description: String {
        NestedBitNames.vmxHeaderFlags.describe(UInt64(rawValue))
    }
}

/// `kvm_nested_state.format`: 0 VMX, 1 SVM, anything else unknown (kept as is).
public struct NestedStateFormat: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The format as stored.
    public let rawValue: UInt16
    /// A format from its stored value (any value is kept).
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// KVM_STATE_NESTED_FORMAT_VMX (0).
    public static let vmx = NestedStateFormat(rawValue: 0)
    /// KVM_STATE_NESTED_FORMAT_SVM (1).
    public static let svm = NestedStateFormat(rawValue: 1)

    /// "vmx", "svm" or "unknown(N)".
    public var description: String {
        switch rawValue {
        case 0: return "vmx"
        case 1: return "svm"
        default: return "unknown(\(rawValue))"
        }
    }
}

// MARK: - Errors

/// Why a blob could not be decoded (or a buffer made).
public enum NestedStateError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the header (128) or than the header's `size` says.
    case truncated(expected: Int, got: Int)
    /// The header's `size` is below the 128-byte header itself.
    case sizeTooSmall(UInt32)
    /// `withBuffer(capacity:_:)` was asked for less than a header or more than `size` can say.
    case invalidCapacity(Int)

    /// One line naming the problem and the sizes involved.
    public var description: String {
        switch self {
        case .truncated(let expected, let got):
            return "nested state truncated: need \(expected) bytes, got \(got)"
        case .sizeTooSmall(let size):
            return "nested state size \(size) is smaller than the \(NestedState.headerSize)-byte header"
        case .invalidCapacity(let c):
            return "nested state buffer capacity \(c) is invalid (need \(NestedState.headerSize)…\(UInt32.max) bytes)"
        }
    }
}

// MARK: - Vendor headers and payloads

/// `kvm_vmx_nested_state_hdr` (bytes 8–127 of the state).
public struct VMXNestedHeader: Equatable, Sendable {
    /// Physical address of L1's VMXON region; `NestedState.invalidGPA` (-1) when L1 is not in VMX operation.
    public var vmxonPA: UInt64
    /// L1's current VMCS pointer; -1 when none.
    public var vmcs12PA: UInt64
    /// `smm.flags`: where L1 and L2 were when the vCPU entered SMM.
    public var smmFlags: NestedSMMFlags
    /// `smm.pad`: unused by the kernel (kept for byte-exact round trips).
    public var pad: UInt16
    /// `flags`: which optional header fields are valid.
    public var flags: NestedVMXHeaderFlags
    /// TSC deadline of L2's VMX-preemption timer (valid with `.preemptionTimerDeadline`).
    public var preemptionTimerDeadline: UInt64
    /// Union bytes 40–127, unused by the kernel (kept for byte-exact round trips).
    public var reserved: [UInt8]

    /// Bytes of `reserved`: union bytes 40–127.
    public static let reservedSize = 88

    /// A header from its fields; the defaults are a vCPU outside VMX operation.
    public init(
        vmxonPA: UInt64 = NestedState.invalidGPA, vmcs12PA: UInt64 = NestedState.invalidGPA,
        smmFlags: NestedSMMFlags = [], pad: UInt16 = 0, flags: NestedVMXHeaderFlags = [],
        preemptionTimerDeadline: UInt64 = 0,
        reserved: [UInt8] = [UInt8](repeating: 0, count: VMXNestedHeader.reservedSize)
    ) {
        self.vmxonPA = vmxonPA
        self.vmcs12PA = vmcs12PA
        self.smmFlags = smmFlags
        self.pad = pad
        self.flags = flags
        self.preemptionTimerDeadline = preemptionTimerDeadline
        self.reserved = reserved
    }

    /// Decodes the 120 union bytes.
    init(union u: [UInt8]) {
        vmxonPA = NestedByteIO.load(u, 0, 8)
        vmcs12PA = NestedByteIO.load(u, 8, 8)
        smmFlags = NestedSMMFlags(rawValue: UInt16(NestedByteIO.load(u, 16, 2)))
        pad = UInt16(NestedByteIO.load(u, 18, 2))
        flags = NestedVMXHeaderFlags(rawValue: UInt32(NestedByteIO.load(u, 20, 4)))
        preemptionTimerDeadline = NestedByteIO.load(u, 24, 8)
        reserved = NestedByteIO.slice(u, 32, VMXNestedHeader.reservedSize)
    }

    var unionBytes: [UInt8] {
        var u = [UInt8](repeating: 0, count: 32)
        NestedByteIO.store(&u, 0, 8, vmxonPA)
        NestedByteIO.store(&u, 8, 8, vmcs12PA)
        NestedByteIO.store(&u, 16, 2, UInt64(smmFlags.rawValue))
        NestedByteIO.store(&u, 18, 2, UInt64(pad))
        NestedByteIO.store(&u, 20, 4, UInt64(flags.rawValue))
        NestedByteIO.store(&u, 24, 8, preemptionTimerDeadline)
        return u + NestedState.fit(reserved, VMXNestedHeader.reservedSize)
    }
}

/// The VMX part of a nested state.
public struct VMXNestedState: Equatable, Sendable {
    /// The VMX header (bytes 8–127).
    public var header: VMXNestedHeader
    /// L1's current VMCS (present when `size` ≥ 128 + 4096; partially when the blob holds less).
    public var vmcs12: VMCS12?
    /// The shadow VMCS linked from vmcs12 (present when `size` ≥ 128 + 8192).
    public var shadowVMCS12: VMCS12?
    /// Data bytes after the two pages (none in KVM output).
    public var extra: [UInt8]

    /// A VMX payload from its parts; the defaults are a vCPU outside VMX operation.
    public init(
        header: VMXNestedHeader = VMXNestedHeader(), vmcs12: VMCS12? = nil,
        shadowVMCS12: VMCS12? = nil, extra: [UInt8] = []
    ) {
        self.header = header
        self.vmcs12 = vmcs12
        self.shadowVMCS12 = shadowVMCS12
        self.extra = extra
    }

    init(union: [UInt8], data: [UInt8]) {
        header = VMXNestedHeader(union: union)
        let page = VMCS12.pageSize
        vmcs12 = data.isEmpty ? nil : VMCS12(raw: NestedByteIO.slice(data, 0, page))
        shadowVMCS12 = data.count > page ? VMCS12(raw: NestedByteIO.slice(data, page, page)) : nil
        extra = data.count > 2 * page ? Array(data[(2 * page)...]) : []
    }

    /// The data region. A missing or short vmcs12 is zero-filled to a full page when a
    /// shadow page or extra bytes follow it (decoding never produces that case).
    var dataBytes: [UInt8] {
        let page = VMCS12.pageSize
        var out: [UInt8] = []
        let later = shadowVMCS12 != nil || !extra.isEmpty
        if let v = vmcs12 { out += v.raw }
        if later { out = NestedState.fit(out, page) }
        if let s = shadowVMCS12 { out += s.raw }
        if !extra.isEmpty { out = NestedState.fit(out, 2 * page) + extra }
        return out
    }
}

/// `kvm_svm_nested_state_hdr` (bytes 8–127 of the state).
public struct SVMNestedHeader: Equatable, Sendable {
    /// Guest-physical address of L1's vmcb12 (0 when not in guest mode).
    public var vmcbPA: UInt64
    /// Union bytes 16–127 (kept for byte-exact round trips; newer kernels may define
    /// fields here, e.g. an L2 gPAT proposed for bytes 16–23).
    public var reserved: [UInt8]

    /// Bytes of `reserved`: union bytes 16–127.
    public static let reservedSize = 112

    /// A header from its fields; the defaults are a vCPU outside guest mode.
    public init(vmcbPA: UInt64 = 0, reserved: [UInt8] = [UInt8](repeating: 0, count: SVMNestedHeader.reservedSize)) {
        self.vmcbPA = vmcbPA
        self.reserved = reserved
    }

    init(union u: [UInt8]) {
        vmcbPA = NestedByteIO.load(u, 0, 8)
        reserved = NestedByteIO.slice(u, 8, SVMNestedHeader.reservedSize)
    }

    var unionBytes: [UInt8] {
        var u = [UInt8](repeating: 0, count: 8)
        NestedByteIO.store(&u, 0, 8, vmcbPA)
        return u + NestedState.fit(reserved, SVMNestedHeader.reservedSize)
    }
}

/// The SVM part of a nested state.
public struct SVMNestedState: Equatable, Sendable {
    /// The SVM header (bytes 8–127).
    public var header: SVMNestedHeader
    /// vmcb12: L1's cached control area + L1's saved host state (present in guest mode).
    public var vmcb: VMCB?
    /// Data bytes after the page (none in KVM output).
    public var extra: [UInt8]

    /// An SVM payload from its parts; the defaults are a vCPU outside guest mode.
    public init(header: SVMNestedHeader = SVMNestedHeader(), vmcb: VMCB? = nil, extra: [UInt8] = []) {
        self.header = header
        self.vmcb = vmcb
        self.extra = extra
    }

    init(union: [UInt8], data: [UInt8]) {
        header = SVMNestedHeader(union: union)
        vmcb = data.isEmpty ? nil : VMCB(raw: NestedByteIO.slice(data, 0, VMCB.pageSize))
        extra = data.count > VMCB.pageSize ? Array(data[VMCB.pageSize...]) : []
    }

    var dataBytes: [UInt8] {
        var out = vmcb?.bytes ?? []
        if !extra.isEmpty { out = NestedState.fit(out, VMCB.pageSize) + extra }
        return out
    }
}

// MARK: - NestedState

/// A vCPU's nested virtualization state as KVM_GET_NESTED_STATE gives it and
/// KVM_SET_NESTED_STATE takes it (`struct kvm_nested_state`), decoded; every byte
/// is kept, so encoding a decoded state gives the same bytes.
public struct NestedState: Equatable, Sendable {
    /// sizeof(struct kvm_nested_state): the header.
    public static let headerSize = 128
    /// KVM_CAP_NESTED_STATE on a VMX host: header + vmcs12 + shadow_vmcs12.
    public static let vmxCapabilitySize = 128 + 2 * 4096
    /// KVM_CAP_NESTED_STATE on an SVM host: header + vmcb12.
    public static let svmCapabilitySize = 128 + 4096
    /// INVALID_GPA (-1ull), the kernel's "no address".
    public static let invalidGPA: UInt64 = ~0

    /// The vendor part after the common header, by `format`.
    public enum Payload: Equatable, Sendable {
        /// An Intel VMX state: header, vmcs12 and shadow vmcs12.
        case vmx(VMXNestedState)
        /// An AMD SVM state: header and vmcb12.
        case svm(SVMNestedState)
        /// A format this library does not know: the 120 union bytes and the data, as found.
        case unknown(header: [UInt8], data: [UInt8])
    }

    /// The flags field as stored.
    public var flags: NestedStateFlags
    /// The format field as stored. Decoding sets it from the blob; encoding writes it
    /// as is (it is not derived from `payload`).
    public var format: NestedStateFormat
    /// The size field as stored. Encoding writes it as is; see `withUpdatedSize()`.
    public var size: UInt32
    /// The vendor header and data.
    public var payload: Payload
    /// Bytes after `size` in the decoded buffer (e.g. unused capacity of a GET buffer).
    public var trailing: [UInt8]

    /// A state from its parts; `size` nil computes it from the payload.
    public init(
        flags: NestedStateFlags = [], format: NestedStateFormat, size: UInt32? = nil,
        payload: Payload, trailing: [UInt8] = []
    ) {
        self.flags = flags
        self.format = format
        self.size = 0
        self.payload = payload
        self.trailing = trailing
        self.size = size ?? UInt32(truncatingIfNeeded: NestedState.headerSize + dataBytes.count)
    }

    /// A VMX state; `size` defaults to what the pages need.
    public static func vmx(flags: NestedStateFlags = [], _ vmx: VMXNestedState) -> NestedState {
        NestedState(flags: flags, format: .vmx, payload: .vmx(vmx))
    }

    /// An SVM state; `size` defaults to what the page needs.
    public static func svm(flags: NestedStateFlags = [], _ svm: SVMNestedState) -> NestedState {
        NestedState(flags: flags, format: .svm, payload: .svm(svm))
    }

    // MARK: Decoding

    /// Decodes a whole blob: the header, `size - 128` data bytes, and any bytes after
    /// `size` as `trailing`. Throws `NestedStateError` when the blob is shorter than the
    /// header or than `size`, or when `size` < 128. Never traps.
    public init(bytes: [UInt8]) throws {
        let h = NestedState.headerSize
        guard bytes.count >= h else { throw NestedStateError.truncated(expected: h, got: bytes.count) }
        let size = UInt32(NestedByteIO.load(bytes, 4, 4))
        guard size >= UInt32(h) else { throw NestedStateError.sizeTooSmall(size) }
        guard Int(size) <= bytes.count else { throw NestedStateError.truncated(expected: Int(size), got: bytes.count) }
        flags = NestedStateFlags(rawValue: UInt16(NestedByteIO.load(bytes, 0, 2)))
        format = NestedStateFormat(rawValue: UInt16(NestedByteIO.load(bytes, 2, 2)))
        self.size = size
        let union = Array(bytes[8..<h])
        let data = Array(bytes[h..<Int(size)])
        trailing = Array(bytes[Int(size)...])
        switch format {
        case .vmx: payload = .vmx(VMXNestedState(union: union, data: data))
        case .svm: payload = .svm(SVMNestedState(union: union, data: data))
        default: payload = .unknown(header: union, data: data)
        }
    }

    /// Decodes what KVM_GET_NESTED_STATE wrote into `buffer`: exactly `size` bytes (the
    /// rest of the buffer's capacity is not kept).
    public init(buffer: UnsafeRawBufferPointer) throws {
        let h = NestedState.headerSize
        guard buffer.count >= h else { throw NestedStateError.truncated(expected: h, got: buffer.count) }
        let size = Int(UInt32(buffer[4]) | UInt32(buffer[5]) << 8 | UInt32(buffer[6]) << 16 | UInt32(buffer[7]) << 24)
        guard size >= h else { throw NestedStateError.sizeTooSmall(UInt32(size)) }
        guard size <= buffer.count else { throw NestedStateError.truncated(expected: size, got: buffer.count) }
        try self.init(bytes: Array(buffer[0..<size]))
    }

    // MARK: Encoding

    /// The encoded blob: header, data, trailing — byte-for-byte the decoded input when
    /// nothing was changed.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 8)
        NestedByteIO.store(&out, 0, 2, UInt64(flags.rawValue))
        NestedByteIO.store(&out, 2, 2, UInt64(format.rawValue))
        NestedByteIO.store(&out, 4, 4, UInt64(size))
        out += unionBytes
        out += dataBytes
        out += trailing
        return out
    }

    /// The 120 vendor-header bytes.
    var unionBytes: [UInt8] {
        switch payload {
        case .vmx(let v): return v.header.unionBytes
        case .svm(let s): return s.header.unionBytes
        case .unknown(let header, _): return NestedState.fit(header, 120)
        }
    }

    /// The data after the header (the pages).
    public var dataBytes: [UInt8] {
        switch payload {
        case .vmx(let v): return v.dataBytes
        case .svm(let s): return s.dataBytes
        case .unknown(_, let data): return data
        }
    }

    /// A copy whose `size` is the header plus the data actually present, and without
    /// trailing bytes — what KVM_SET_NESTED_STATE should be given after edits.
    public func withUpdatedSize() -> NestedState {
        var copy = self
        copy.trailing = []
        copy.size = UInt32(truncatingIfNeeded: NestedState.headerSize + dataBytes.count)
        return copy
    }

    /// Calls `body` with the encoded state in a page-aligned buffer (for KVM_SET_NESTED_STATE).
    public func withEncodedBuffer<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let encoded = bytes
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(encoded.count, 1), alignment: 4096)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: encoded)
        return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<encoded.count]))
    }

    // MARK: Convenience

    /// The VMX payload; nil for any other format.
    public var vmx: VMXNestedState? { if case .vmx(let v) = payload { return v } else { return nil } }
    /// The SVM payload; nil for any other format.
    public var svm: SVMNestedState? { if case .svm(let s) = payload { return s } else { return nil } }

    /// Calls `body` with a buffer for KVM_GET_NESTED_STATE: `capacity` bytes (use the
    /// KVM_CAP_NESTED_STATE value), 4096-byte aligned, zeroed, with the header's `size`
    /// set to `capacity` (KVM reads `size` to learn how big the buffer is). The buffer
    /// lives only for the call. Throws `NestedStateError.invalidCapacity` for fewer than
    /// 128 bytes or more than `size` can say.
    public static func withBuffer<Result>(
        capacity: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Result
    ) throws -> Result {
        guard capacity >= headerSize, capacity <= Int(UInt32.max) else {
            throw NestedStateError.invalidCapacity(capacity)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let size = UInt32(capacity)
        for i in 0..<4 { buffer[4 + i] = UInt8(truncatingIfNeeded: size >> (8 * UInt32(i))) }
        return try body(buffer)
    }

    /// `bytes` cut or zero-padded to `count`.
    static func fit(_ bytes: [UInt8], _ count: Int) -> [UInt8] {
        if bytes.count == count { return bytes }
        if bytes.count > count { return Array(bytes[0..<count]) }
        return bytes + [UInt8](repeating: 0, count: count - bytes.count)
    }
}
