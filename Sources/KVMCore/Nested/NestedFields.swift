// Shared plumbing for the nested-state layouts: little-endian byte access that never
// traps, a table-driven description of named fields (used by the text dump, JSON,
// diff and "unknown bytes" accounting), bit-name tables and hex formatting.

import Glibc

// MARK: - Byte access

/// Little-endian loads and stores on `[UInt8]` that never trap: bytes past the end read
/// as zero; stores past the end grow the array with zeros first.
enum NestedByteIO {
    static func load(_ bytes: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
        var value: UInt64 = 0
        var i = 0
        while i < width {
            let at = offset + i
            if at >= 0, at < bytes.count { value |= UInt64(bytes[at]) << (8 * UInt64(i)) }
            i += 1
        }
        return value
    }

    static func store(_ bytes: inout [UInt8], _ offset: Int, _ width: Int, _ value: UInt64) {
        guard offset >= 0, width > 0 else { return }
        if bytes.count < offset + width {
            bytes.append(contentsOf: repeatElement(0, count: offset + width - bytes.count))
        }
        for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    /// `bytes[range]` clamped to what exists, copied out.
    static func slice(_ bytes: [UInt8], _ start: Int, _ count: Int) -> [UInt8] {
        let lo = min(max(start, 0), bytes.count)
        let hi = min(max(start + count, lo), bytes.count)
        return Array(bytes[lo..<hi])
    }
}

// MARK: - Formatting

enum NestedHex {
    /// "0x" + lowercase hex, zero-padded to `digits` (no padding when 0).
    static func string(_ value: UInt64, digits: Int = 0) -> String {
        let body = String(value, radix: 16)
        let pad = digits > body.count ? String(repeating: "0", count: digits - body.count) : ""
        return "0x" + pad + body
    }

    /// Hex string padded to a field of `width` bytes.
    static func padded(_ value: UInt64, width: Int) -> String { string(value, digits: width * 2) }

    /// Bytes as contiguous lowercase hex pairs, no prefix ("0f01c1").
    static func bytes(_ bytes: [UInt8]) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(bytes.count * 2)
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0xF)])
        }
        return s
    }
}

// MARK: - Field tables

/// How a field's value is shown (text dump) — JSON always uses padded hex strings for
/// scalar fields and a hex byte string for byte-array fields.
public enum NestedFieldStyle: Equatable, Sendable {
    /// Hex, zero-padded to the field width: addresses, registers, masks.
    case hex
    /// Decimal: counts, lengths, indexes, CPL, ASID.
    case decimal
    /// Hex (unpadded) followed by the names of the set bits.
    case bits(NestedBitNames)
    /// Hex followed by a decoded meaning (exit reason, interruption info, …).
    case annotated(NestedAnnotation)
    /// A byte array wider than 8 bytes (e.g. the VMCB instruction bytes).
    case bytes
}

/// One named field of a fixed layout: bytes `offset ..< offset + width`, optionally a
/// bit range inside them (`shift`, `bitCount`).
public struct NestedFieldSpec: Equatable, Sendable {
    /// The kernel's field name ("guest_rip").
    public let name: String
    /// Byte offset in the structure.
    public let offset: Int
    /// Width in bytes.
    public let width: Int
    /// How the value is shown.
    public let style: NestedFieldStyle
    /// The bit range's lowest bit inside the bytes (0 for whole fields).
    public let shift: Int
    /// The bit range's width; nil for the whole field.
    public let bitCount: Int?

    /// A field of `width` bytes at `offset`, optionally the bits `shift ..< shift + bitCount`.
    public init(
        _ name: String, _ offset: Int, _ width: Int, _ style: NestedFieldStyle = .hex,
        shift: Int = 0, bitCount: Int? = nil
    ) {
        self.name = name
        self.offset = offset
        self.width = width
        self.style = style
        self.shift = shift
        self.bitCount = bitCount
    }

    /// Whether the field is a plain number (width ≤ 8) rather than a byte array.
    public var isScalar: Bool { width <= 8 }

    var mask: UInt64 {
        if let n = bitCount { return n >= 64 ? ~0 : (UInt64(1) << UInt64(n)) - 1 }
        return width >= 8 ? ~0 : (UInt64(1) << UInt64(width * 8)) - 1
    }

    /// Width in bytes used for padding hex output of the (possibly bit-ranged) value.
    var displayWidth: Int { bitCount.map { ($0 + 7) / 8 } ?? width }

    /// Whether every byte of the field exists in `bytes`.
    public func isPresent(in bytes: [UInt8]) -> Bool { offset + width <= bytes.count }

    /// The field's value in `bytes`; `.absent` when they end before it.
    public func value(in bytes: [UInt8]) -> NestedFieldValue {
        guard isPresent(in: bytes) else { return .absent }
        if !isScalar { return .bytes(Array(bytes[offset..<offset + width])) }
        return .uint((NestedByteIO.load(bytes, offset, width) >> UInt64(shift)) & mask, width: displayWidth)
    }

    func scalar(in bytes: [UInt8]) -> UInt64 {
        (NestedByteIO.load(bytes, offset, min(width, 8)) >> UInt64(shift)) & mask
    }

    func setScalar(_ value: UInt64, in bytes: inout [UInt8]) {
        let old = NestedByteIO.load(bytes, offset, width)
        let m = mask << UInt64(shift)
        NestedByteIO.store(&bytes, offset, width, (old & ~m) | ((value << UInt64(shift)) & m))
    }
}

/// A field's value as found in a blob.
public enum NestedFieldValue: Equatable, Sendable, CustomStringConvertible {
    /// A number and the byte width it is shown with.
    case uint(UInt64, width: Int)
    /// A byte-array field.
    case bytes([UInt8])
    /// The field (or the page that holds it) is not in the blob.
    case absent
    /// A whole page (vmcs12, shadow_vmcs12, vmcb) is present with this many bytes (used
    /// by `NestedState.diff` when a page appears or disappears).
    case page(bytes: Int)

    /// The number, for `.uint`; nil otherwise.
    public var uint64: UInt64? { if case .uint(let v, _) = self { return v } else { return nil } }

    /// Padded hex for numbers, hex pairs for byte arrays, "absent".
    public var description: String {
        switch self {
        case .uint(let v, let w): return NestedHex.padded(v, width: w)
        case .bytes(let b): return NestedHex.bytes(b)
        case .absent: return "absent"
        case .page(let n): return "present (\(n) bytes)"
        }
    }

    var json: JSONValue {
        switch self {
        case .uint(let v, let w): return .string(NestedHex.padded(v, width: w))
        case .bytes(let b): return .string(NestedHex.bytes(b))
        case .absent: return .null
        case .page(let n): return .int(Int64(n))
        }
    }
}

/// A kernel structure kept as the bytes found (vmcs12, the VMCB's control and
/// save areas), its named fields read and written through its layout.
public protocol NestedRawStructure {
    /// The bytes as found.
    var raw: [UInt8] { get set }
    /// The structure's named fields.
    static var layout: NestedLayout { get }
}

extension NestedRawStructure {
    /// Every named field, in offset order.
    public static var fields: [NestedFieldSpec] { layout.fields }

    /// The value of a named field (the kernel's name, e.g. "guest_rip"), or nil for an unknown name.
    public func value(of name: String) -> NestedFieldValue? { Self.layout.field(named: name)?.value(in: raw) }

    /// Sets a named scalar field; returns false for an unknown name or a byte-array field.
    @discardableResult
    public mutating func set(_ name: String, to value: UInt64) -> Bool {
        guard let f = Self.layout.field(named: name), f.isScalar else { return false }
        f.setScalar(value, in: &raw)
        return true
    }

    /// The little-endian value of `width` bytes at `offset` (zero past the end).
    func u(_ offset: Int, _ width: Int) -> UInt64 { NestedByteIO.load(raw, offset, width) }
    mutating func put(_ offset: Int, _ width: Int, _ value: UInt64) { NestedByteIO.store(&raw, offset, width, value) }
}

/// A layout: its fields in offset order and the size in bytes it describes.
public struct NestedLayout: Sendable {
    let fields: [NestedFieldSpec]
    let size: Int
    /// `covered[i]` is true when byte `i` belongs to a named field.
    let covered: [Bool]

    init(_ fields: [NestedFieldSpec], size: Int) {
        self.fields = fields
        self.size = size
        var covered = [Bool](repeating: false, count: size)
        for f in fields { for i in f.offset..<min(f.offset + f.width, size) { covered[i] = true } }
        self.covered = covered
    }

    func field(named name: String) -> NestedFieldSpec? { fields.first { $0.name == name } }

    /// Bytes not covered by a named field that are non-zero.
    func unknownNonZeroBytes(in bytes: [UInt8]) -> Int {
        var n = 0
        for (i, b) in bytes.enumerated() where b != 0 && (i >= size || !covered[i]) { n += 1 }
        return n
    }

    /// Bytes not covered by a named field that differ between `a` and `b` (a byte that
    /// exists on one side only counts as differing).
    func unknownDifferingBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var n = 0
        for i in 0..<max(a.count, b.count) where i >= size || !covered[i] {
            if i >= a.count || i >= b.count || a[i] != b[i] { n += 1 }
        }
        return n
    }
}

// MARK: - Bit names

/// Bit-name tables for control and register fields.
public enum NestedBitNames: String, Equatable, Sendable, CaseIterable {
    /// The flag words of the nested state headers.
    case nestedFlags, smmFlags, vmxHeaderFlags
    /// The VMX execution, exit and entry controls.
    case pinBased, procBased, procBased2, exitControls, entryControls
    /// Control registers and EFER.
    case cr0, cr4, efer
    /// SVM intercept words and control fields.
    case svmInterceptMisc1, svmInterceptMisc2, svmInterceptMisc3, svmIntCtl, svmNestedCtl, svmVirtExt

    /// Bit number and name of every bit the table knows.
    public var table: [(bit: Int, name: String)] {
        switch self {
        case .nestedFlags:
            return [(0, "GUEST_MODE"), (1, "RUN_PENDING"), (2, "EVMCS"), (3, "MTF_PENDING"), (8, "GIF_SET")]
        case .smmFlags:
            return [(0, "GUEST_MODE"), (1, "VMXON")]
        case .vmxHeaderFlags:
            return [(0, "PREEMPTION_TIMER_DEADLINE")]
        case .pinBased:
            return [
                (0, "EXT_INTR_EXITING"), (3, "NMI_EXITING"), (5, "VIRTUAL_NMIS"),
                (6, "PREEMPTION_TIMER"), (7, "POSTED_INTR"),
            ]
        case .procBased:
            return [
                (2, "INTR_WINDOW_EXITING"), (3, "USE_TSC_OFFSETTING"), (7, "HLT_EXITING"),
                (9, "INVLPG_EXITING"), (10, "MWAIT_EXITING"), (11, "RDPMC_EXITING"),
                (12, "RDTSC_EXITING"), (15, "CR3_LOAD_EXITING"), (16, "CR3_STORE_EXITING"),
                (17, "ACTIVATE_TERTIARY_CONTROLS"), (19, "CR8_LOAD_EXITING"), (20, "CR8_STORE_EXITING"),
                (21, "TPR_SHADOW"), (22, "NMI_WINDOW_EXITING"), (23, "MOV_DR_EXITING"),
                (24, "UNCOND_IO_EXITING"), (25, "USE_IO_BITMAPS"), (27, "MONITOR_TRAP_FLAG"),
                (28, "USE_MSR_BITMAPS"), (29, "MONITOR_EXITING"), (30, "PAUSE_EXITING"),
                (31, "ACTIVATE_SECONDARY_CONTROLS"),
            ]
        case .procBased2:
            return [
                (0, "VIRTUALIZE_APIC_ACCESSES"), (1, "ENABLE_EPT"), (2, "DESC_EXITING"),
                (3, "ENABLE_RDTSCP"), (4, "VIRTUALIZE_X2APIC_MODE"), (5, "ENABLE_VPID"),
                (6, "WBINVD_EXITING"), (7, "UNRESTRICTED_GUEST"), (8, "APIC_REGISTER_VIRT"),
                (9, "VIRTUAL_INTR_DELIVERY"), (10, "PAUSE_LOOP_EXITING"), (11, "RDRAND_EXITING"),
                (12, "ENABLE_INVPCID"), (13, "ENABLE_VMFUNC"), (14, "SHADOW_VMCS"),
                (15, "ENCLS_EXITING"), (16, "RDSEED_EXITING"), (17, "ENABLE_PML"),
                (18, "EPT_VIOLATION_VE"), (19, "PT_CONCEAL_VMX"), (20, "ENABLE_XSAVES"),
                (22, "MODE_BASED_EPT_EXEC"), (23, "SPP"), (24, "PT_USE_GPA"), (25, "TSC_SCALING"),
                (26, "ENABLE_USR_WAIT_PAUSE"), (27, "ENABLE_PCONFIG"), (28, "ENCLV_EXITING"),
                (30, "BUS_LOCK_DETECTION"), (31, "NOTIFY_VM_EXITING"),
            ]
        case .exitControls:
            return [
                (2, "SAVE_DEBUG_CONTROLS"), (9, "HOST_ADDR_SPACE_SIZE"),
                (12, "LOAD_IA32_PERF_GLOBAL_CTRL"), (15, "ACK_INTR_ON_EXIT"), (18, "SAVE_IA32_PAT"),
                (19, "LOAD_IA32_PAT"), (20, "SAVE_IA32_EFER"), (21, "LOAD_IA32_EFER"),
                (22, "SAVE_VMX_PREEMPTION_TIMER"), (23, "CLEAR_BNDCFGS"), (24, "PT_CONCEAL_PIP"),
                (25, "CLEAR_IA32_RTIT_CTL"), (28, "LOAD_CET_STATE"),
            ]
        case .entryControls:
            return [
                (2, "LOAD_DEBUG_CONTROLS"), (9, "IA32E_MODE"), (10, "SMM"), (11, "DEACT_DUAL_MONITOR"),
                (13, "LOAD_IA32_PERF_GLOBAL_CTRL"), (14, "LOAD_IA32_PAT"), (15, "LOAD_IA32_EFER"),
                (16, "LOAD_BNDCFGS"), (17, "PT_CONCEAL_PIP"), (18, "LOAD_IA32_RTIT_CTL"),
                (20, "LOAD_CET_STATE"),
            ]
        case .cr0:
            return [
                (0, "PE"), (1, "MP"), (2, "EM"), (3, "TS"), (4, "ET"), (5, "NE"), (16, "WP"),
                (18, "AM"), (29, "NW"), (30, "CD"), (31, "PG"),
            ]
        case .cr4:
            return [
                (0, "VME"), (1, "PVI"), (2, "TSD"), (3, "DE"), (4, "PSE"), (5, "PAE"), (6, "MCE"),
                (7, "PGE"), (8, "PCE"), (9, "OSFXSR"), (10, "OSXMMEXCPT"), (11, "UMIP"), (12, "LA57"),
                (13, "VMXE"), (14, "SMXE"), (16, "FSGSBASE"), (17, "PCIDE"), (18, "OSXSAVE"),
                (19, "KL"), (20, "SMEP"), (21, "SMAP"), (22, "PKE"), (23, "CET"), (24, "PKS"),
                (25, "UINTR"), (28, "LAM_SUP"),
            ]
        case .efer:
            return [
                (0, "SCE"), (8, "LME"), (10, "LMA"), (11, "NXE"), (12, "SVME"), (13, "LMSLE"),
                (14, "FFXSR"), (15, "TCE"), (17, "MCOMMIT"), (18, "INTWB"), (21, "AUTOIBRS"),
            ]
        case .svmInterceptMisc1:
            return [
                (0, "INTR"), (1, "NMI"), (2, "SMI"), (3, "INIT"), (4, "VINTR"), (5, "SELECTIVE_CR0"),
                (6, "STORE_IDTR"), (7, "STORE_GDTR"), (8, "STORE_LDTR"), (9, "STORE_TR"),
                (10, "LOAD_IDTR"), (11, "LOAD_GDTR"), (12, "LOAD_LDTR"), (13, "LOAD_TR"),
                (14, "RDTSC"), (15, "RDPMC"), (16, "PUSHF"), (17, "POPF"), (18, "CPUID"), (19, "RSM"),
                (20, "IRET"), (21, "INTn"), (22, "INVD"), (23, "PAUSE"), (24, "HLT"), (25, "INVLPG"),
                (26, "INVLPGA"), (27, "IOIO_PROT"), (28, "MSR_PROT"), (29, "TASK_SWITCH"),
                (30, "FERR_FREEZE"), (31, "SHUTDOWN"),
            ]
        case .svmInterceptMisc2:
            return [
                (0, "VMRUN"), (1, "VMMCALL"), (2, "VMLOAD"), (3, "VMSAVE"), (4, "STGI"), (5, "CLGI"),
                (6, "SKINIT"), (7, "RDTSCP"), (8, "ICEBP"), (9, "WBINVD"), (10, "MONITOR"),
                (11, "MWAIT"), (12, "MWAIT_COND"), (13, "XSETBV"), (14, "RDPRU"), (15, "EFER_WRITE_TRAP"),
                (16, "CR0_WRITE_TRAP"), (17, "CR1_WRITE_TRAP"), (18, "CR2_WRITE_TRAP"),
                (19, "CR3_WRITE_TRAP"), (20, "CR4_WRITE_TRAP"), (21, "CR5_WRITE_TRAP"),
                (22, "CR6_WRITE_TRAP"), (23, "CR7_WRITE_TRAP"), (24, "CR8_WRITE_TRAP"),
            ]
        case .svmInterceptMisc3:
            return [
                (0, "INVLPGB"), (1, "INVLPGB_ILLEGAL"), (2, "INVPCID"), (3, "MCOMMIT"), (4, "TLBSYNC"),
                (5, "BUSLOCK"), (6, "IDLE_HLT"),
            ]
        case .svmIntCtl:
            return [
                (8, "V_IRQ"), (9, "V_GIF"), (11, "V_NMI_PENDING"), (12, "V_NMI_BLOCKING"),
                (20, "V_IGN_TPR"), (24, "V_INTR_MASKING"), (25, "V_GIF_ENABLE"), (26, "V_NMI_ENABLE"),
                (30, "X2APIC_MODE"), (31, "AVIC_ENABLE"),
            ]
        case .svmNestedCtl:
            return [(0, "NP_ENABLE"), (1, "SEV_ENABLE"), (2, "SEV_ES_ENABLE"), (3, "GMET_ENABLE")]
        case .svmVirtExt:
            return [(0, "LBR_VIRTUALIZATION"), (1, "VIRTUAL_VMLOAD_VMSAVE")]
        }
    }

    /// "0x101 GUEST_MODE|GIF_SET": unpadded hex, then the set bits' names when any set bit
    /// has a name (unnamed set bits follow as one hex value); just the hex otherwise.
    public func describe(_ value: UInt64) -> String {
        let text = names(value)
        let hex = NestedHex.string(value)
        return text.isEmpty || text == hex ? hex : hex + " " + text
    }

    /// "NAME|NAME|0x…" for the set bits (unnamed set bits are listed as one hex value).
    public func names(_ value: UInt64) -> String {
        var parts: [String] = []
        var known: UInt64 = 0
        for (bit, name) in table {
            let m = UInt64(1) << UInt64(bit)
            known |= m
            if value & m != 0 { parts.append(name) }
        }
        let rest = value & ~known
        if rest != 0 { parts.append(NestedHex.string(rest)) }
        return parts.joined(separator: "|")
    }
}

// MARK: - Annotations

/// Decoders that add a meaning to a raw field value in the text dump.
public enum NestedAnnotation: String, Equatable, Sendable {
    /// VMX basic exit reason (bits 15:0) plus the VM-entry-failure bit 31.
    case vmxExitReason
    /// VMX VM-entry / VM-exit / IDT-vectoring interruption information.
    case vmxInterruptionInfo
    /// SVM EXITCODE.
    case svmExitCode
    /// SVM EVENTINJ / EXITINTINFO.
    case svmEventInfo

    /// `value` with its decoded meaning (e.g. "EPT_VIOLATION").
    public func describe(_ value: UInt64) -> String {
        switch self {
        case .vmxExitReason:
            let basic = Int(value & 0xFFFF)
            var s = NestedAnnotation.vmxExitReasons[basic] ?? "reason \(basic)"
            if value & 0x8000_0000 != 0 { s += " (VM-entry failure)" }
            return s
        case .vmxInterruptionInfo:
            guard value & 0x8000_0000 != 0 else { return "invalid" }
            let types = [
                "external-interrupt", "reserved", "nmi", "hw-exception", "sw-interrupt",
                "privileged-sw-exception", "sw-exception", "other-event",
            ]
            var s = "valid vector=\(value & 0xFF) type=\(types[Int((value >> 8) & 7)])"
            if value & 0x800 != 0 { s += " error-code" }
            if value & 0x1000 != 0 { s += " nmi-unblocking" }
            return s
        case .svmExitCode:
            return NestedAnnotation.svmExitName(value)
        case .svmEventInfo:
            guard value & 0x8000_0000 != 0 else { return "invalid" }
            let types = [
                "intr", "reserved(1)", "nmi", "exception", "soft-int", "reserved(5)",
                "reserved(6)", "reserved(7)",
            ]
            var s = "valid vector=\(value & 0xFF) type=\(types[Int((value >> 8) & 7)])"
            if value & 0x800 != 0 { s += " error-code" }
            return s
        }
    }

    static let vmxExitReasons: [Int: String] = [
        0: "EXCEPTION_NMI", 1: "EXTERNAL_INTERRUPT", 2: "TRIPLE_FAULT", 3: "INIT_SIGNAL", 4: "SIPI_SIGNAL",
        7: "INTERRUPT_WINDOW", 8: "NMI_WINDOW", 9: "TASK_SWITCH", 10: "CPUID", 12: "HLT", 13: "INVD",
        14: "INVLPG", 15: "RDPMC", 16: "RDTSC", 18: "VMCALL", 19: "VMCLEAR", 20: "VMLAUNCH", 21: "VMPTRLD",
        22: "VMPTRST", 23: "VMREAD", 24: "VMRESUME", 25: "VMWRITE", 26: "VMOFF", 27: "VMON", 28: "CR_ACCESS",
        29: "DR_ACCESS", 30: "IO_INSTRUCTION", 31: "MSR_READ", 32: "MSR_WRITE", 33: "INVALID_STATE",
        34: "MSR_LOAD_FAIL", 36: "MWAIT_INSTRUCTION", 37: "MONITOR_TRAP_FLAG", 39: "MONITOR_INSTRUCTION",
        40: "PAUSE_INSTRUCTION", 41: "MCE_DURING_VMENTRY", 43: "TPR_BELOW_THRESHOLD", 44: "APIC_ACCESS",
        45: "EOI_INDUCED", 46: "GDTR_IDTR", 47: "LDTR_TR", 48: "EPT_VIOLATION", 49: "EPT_MISCONFIG",
        50: "INVEPT", 51: "RDTSCP", 52: "PREEMPTION_TIMER", 53: "INVVPID", 54: "WBINVD", 55: "XSETBV",
        56: "APIC_WRITE", 57: "RDRAND", 58: "INVPCID", 59: "VMFUNC", 60: "ENCLS", 61: "RDSEED",
        62: "PML_FULL", 63: "XSAVES", 64: "XRSTORS", 67: "UMWAIT", 68: "TPAUSE", 74: "BUS_LOCK", 75: "NOTIFY",
    ]

    static let svmExitNames: [UInt64: String] = [
        0x60: "INTR", 0x61: "NMI", 0x62: "SMI", 0x63: "INIT", 0x64: "VINTR", 0x65: "CR0_SEL_WRITE",
        0x66: "IDTR_READ", 0x67: "GDTR_READ", 0x68: "LDTR_READ", 0x69: "TR_READ", 0x6a: "IDTR_WRITE",
        0x6b: "GDTR_WRITE", 0x6c: "LDTR_WRITE", 0x6d: "TR_WRITE", 0x6e: "RDTSC", 0x6f: "RDPMC",
        0x70: "PUSHF", 0x71: "POPF", 0x72: "CPUID", 0x73: "RSM", 0x74: "IRET", 0x75: "SWINT", 0x76: "INVD",
        0x77: "PAUSE", 0x78: "HLT", 0x79: "INVLPG", 0x7a: "INVLPGA", 0x7b: "IOIO", 0x7c: "MSR",
        0x7d: "TASK_SWITCH", 0x7e: "FERR_FREEZE", 0x7f: "SHUTDOWN", 0x80: "VMRUN", 0x81: "VMMCALL",
        0x82: "VMLOAD", 0x83: "VMSAVE", 0x84: "STGI", 0x85: "CLGI", 0x86: "SKINIT", 0x87: "RDTSCP",
        0x88: "ICEBP", 0x89: "WBINVD", 0x8a: "MONITOR", 0x8b: "MWAIT", 0x8c: "MWAIT_COND", 0x8d: "XSETBV",
        0x8e: "RDPRU", 0x8f: "EFER_WRITE_TRAP", 0xa0: "INVLPGB", 0xa1: "INVLPGB_ILLEGAL", 0xa2: "INVPCID",
        0xa3: "MCOMMIT", 0xa4: "TLBSYNC", 0xa5: "BUS_LOCK", 0xa6: "IDLE_HLT", 0x400: "NPF",
        0x401: "AVIC_INCOMPLETE_IPI", 0x402: "AVIC_UNACCELERATED_ACCESS", 0x403: "VMGEXIT",
    ]

    static func svmExitName(_ code: UInt64) -> String {
        switch code {
        case 0x00...0x0f: return "READ_CR\(code)"
        case 0x10...0x1f: return "WRITE_CR\(code - 0x10)"
        case 0x20...0x2f: return "READ_DR\(code - 0x20)"
        case 0x30...0x3f: return "WRITE_DR\(code - 0x30)"
        case 0x40...0x5f: return "EXCP_\(code - 0x40)"
        case 0x90...0x9f: return "CR\(code - 0x90)_WRITE_TRAP"
        case UInt64.max: return "ERR (invalid guest state)"
        default: return svmExitNames[code] ?? "exit code \(NestedHex.string(code))"
        }
    }
}
