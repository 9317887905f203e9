// The vmcb12 page of an SVM nested state (kvm_svm_nested_state_data.vmcb12).
//
// Sources: linux arch/x86/include/asm/svm.h (`struct vmcb_control_area`,
// `struct vmcb_seg`, `struct vmcb_save_area`, `struct vmcb`: control area 0x000–0x3ff,
// save area at 0x400, EXPECTED_VMCB_CONTROL_AREA_SIZE 1024 and
// EXPECTED_VMCB_SAVE_AREA_SIZE 744) and arch/x86/kvm/svm/nested.c
// (svm_get_nested_state / svm_set_nested_state).
//
// What KVM puts in the page (svm_get_nested_state, only when in guest mode):
//  - the whole page is cleared first (`clear_user(user_vmcb, KVM_STATE_NESTED_SVM_VMCB_SIZE)`);
//  - control area = `svm->nested.ctl`, i.e. L1's vmcb12 control fields as cached by KVM
//    (nested_copy_vmcb_cache_to_control: intercepts, iopm/msrpm base, tsc_offset, asid,
//    tlb_ctl, int_ctl/vector/state, exit_code, exit_info_1/2, exit_int_info(+err),
//    nested_ctl, event_inj(+err), next_rip, nested_cr3, virt_ext, pause filter);
//    everything else in the control area is zero ("'clean' and 'reserved_sw' are not
//    changed by KVM");
//  - save area = `svm->vmcb01.ptr->save`: **L1's (the L1 hypervisor's) host state saved
//    at VMRUN**, not L2's registers — L2's registers are the vCPU's ordinary
//    KVM_GET_REGS/SREGS state while in guest mode.
// Newer headers rename nested_ctl → misc_ctl and virt_ext → misc_ctl2 (same offsets);
// older ones split exit_code into exit_code (u32) + exit_code_hi (u32) (same bytes).

import Glibc

/// A segment register in the VMCB save area (`struct vmcb_seg`, 16 bytes).
public struct VMCBSegment: Equatable, Sendable {
    /// Segment selector.
    public var selector: UInt16
    /// Attributes in the VMCB's packed 12-bit form.
    public var attrib: UInt16
    /// Segment limit.
    public var limit: UInt32
    /// Segment base.
    public var base: UInt64
    /// A segment from its fields (all zero by default).
    public init(selector: UInt16 = 0, attrib: UInt16 = 0, limit: UInt32 = 0, base: UInt64 = 0) {
        self.selector = selector
        self.attrib = attrib
        self.limit = limit
        self.base = base
    }
}

/// The segment registers of the VMCB save area, in their order there.
public enum VMCBSegmentRegister: Int, CaseIterable, Sendable {
    /// ES, CS, SS, DS, FS, GS, GDTR, LDTR, IDTR and TR.
    case es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr
    /// The register's name in lower case ("cs").
    public var name: String { String(describing: self) }
    /// Offset inside the save area.
    var offset: Int { 16 * rawValue }
}

/// The VMCB control area (bytes 0x000–0x3ff of the page). In KVM nested state: L1's
/// cached vmcb12 control fields.
public struct VMCBControl: NestedRawStructure, Equatable, Sendable {
    /// Bytes in the control area.
    public static let size = 0x400

    /// The bytes as found (normally 1024).
    public var raw: [UInt8]

    /// Wraps `raw` as is (any length; fields past the end read as zero).
    public init(raw: [UInt8]) { self.raw = raw }
    /// A zeroed control area.
    public init() { raw = [UInt8](repeating: 0, count: VMCBControl.size) }

    /// Intercept words 0–5 (CR, DR, exceptions, misc1, misc2, misc3) at 0x00–0x17.
    public func intercept(word: Int) -> UInt32 { (0..<6).contains(word) ? UInt32(u(4 * word, 4)) : 0 }
    /// Sets intercept word `word` (0–5); other words are ignored.
    public mutating func setIntercept(word: Int, _ value: UInt32) {
        if (0..<6).contains(word) { put(4 * word, 4, UInt64(value)) }
    }
    /// Word 0: bits 0–15 CR0–15 reads, 16–31 CR0–15 writes.
    public var interceptCR: UInt32 {
        get { intercept(word: 0) }
        set { setIntercept(word: 0, newValue) }
    }
    /// Word 1: bits 0–15 DR reads, 16–31 DR writes.
    public var interceptDR: UInt32 {
        get { intercept(word: 1) }
        set { setIntercept(word: 1, newValue) }
    }
    /// Word 2: one bit per exception vector.
    public var interceptExceptions: UInt32 {
        get { intercept(word: 2) }
        set { setIntercept(word: 2, newValue) }
    }
    /// Word 3: INTR, NMI, …, SHUTDOWN.
    public var interceptMisc1: UInt32 {
        get { intercept(word: 3) }
        set { setIntercept(word: 3, newValue) }
    }
    /// Word 4: VMRUN (bit 0), VMMCALL, VMLOAD, … CR write traps.
    public var interceptMisc2: UInt32 {
        get { intercept(word: 4) }
        set { setIntercept(word: 4, newValue) }
    }
    /// Word 5: INVLPGB, INVPCID, … IDLE_HLT.
    public var interceptMisc3: UInt32 {
        get { intercept(word: 5) }
        set { setIntercept(word: 5, newValue) }
    }
    /// Whether VMRUN is intercepted (KVM requires it for a nested guest).
    public var interceptsVMRUN: Bool { interceptMisc2 & 1 != 0 }

    /// PAUSE filter threshold: VMCB control area offset 0x3c, 2 bytes.
    public var pauseFilterThreshold: UInt16 {
        get { UInt16(u(0x3c, 2)) }
        set { put(0x3c, 2, UInt64(newValue)) }
    }
    /// PAUSE filter count: VMCB control area offset 0x3e, 2 bytes.
    public var pauseFilterCount: UInt16 {
        get { UInt16(u(0x3e, 2)) }
        set { put(0x3e, 2, UInt64(newValue)) }
    }
    /// IOPM base PA: VMCB control area offset 0x40, 8 bytes.
    public var iopmBasePA: UInt64 {
        get { u(0x40, 8) }
        set { put(0x40, 8, newValue) }
    }
    /// MSRPM base PA: VMCB control area offset 0x48, 8 bytes.
    public var msrpmBasePA: UInt64 {
        get { u(0x48, 8) }
        set { put(0x48, 8, newValue) }
    }
    /// TSC offset: VMCB control area offset 0x50, 8 bytes.
    public var tscOffset: UInt64 {
        get { u(0x50, 8) }
        set { put(0x50, 8, newValue) }
    }
    /// ASID: VMCB control area offset 0x58, 4 bytes.
    public var asid: UInt32 {
        get { UInt32(u(0x58, 4)) }
        set { put(0x58, 4, UInt64(newValue)) }
    }
    /// TLB control: VMCB control area offset 0x5c, 1 byte.
    public var tlbControl: UInt8 {
        get { UInt8(u(0x5c, 1)) }
        set { put(0x5c, 1, UInt64(newValue)) }
    }
    /// int_ctl (V_TPR, V_IRQ, V_INTR_MASKING, …): VMCB control area offset 0x60, 4 bytes.
    public var intCtl: UInt32 {
        get { UInt32(u(0x60, 4)) }
        set { put(0x60, 4, UInt64(newValue)) }
    }
    /// int_vector: VMCB control area offset 0x64, 4 bytes.
    public var intVector: UInt32 {
        get { UInt32(u(0x64, 4)) }
        set { put(0x64, 4, UInt64(newValue)) }
    }
    /// int_state (interrupt shadow): VMCB control area offset 0x68, 4 bytes.
    public var intState: UInt32 {
        get { UInt32(u(0x68, 4)) }
        set { put(0x68, 4, UInt64(newValue)) }
    }
    /// EXITCODE (64-bit; older kernels call the halves exit_code / exit_code_hi).
    public var exitCode: UInt64 {
        get { u(0x70, 8) }
        set { put(0x70, 8, newValue) }
    }
    /// EXITINFO1: VMCB control area offset 0x78, 8 bytes.
    public var exitInfo1: UInt64 {
        get { u(0x78, 8) }
        set { put(0x78, 8, newValue) }
    }
    /// EXITINFO2: VMCB control area offset 0x80, 8 bytes.
    public var exitInfo2: UInt64 {
        get { u(0x80, 8) }
        set { put(0x80, 8, newValue) }
    }
    /// EXITINTINFO: VMCB control area offset 0x88, 4 bytes.
    public var exitIntInfo: UInt32 {
        get { UInt32(u(0x88, 4)) }
        set { put(0x88, 4, UInt64(newValue)) }
    }
    /// EXITINTINFO error code: VMCB control area offset 0x8c, 4 bytes.
    public var exitIntInfoError: UInt32 {
        get { UInt32(u(0x8c, 4)) }
        set { put(0x8c, 4, UInt64(newValue)) }
    }
    /// nested_ctl (misc_ctl in newer headers): bit 0 NP_ENABLE, 1 SEV, 2 SEV-ES.
    public var nestedControl: UInt64 {
        get { u(0x90, 8) }
        set { put(0x90, 8, newValue) }
    }
    /// AVIC APIC BAR: VMCB control area offset 0x98, 8 bytes.
    public var avicVAPICBar: UInt64 {
        get { u(0x98, 8) }
        set { put(0x98, 8, newValue) }
    }
    /// GHCB GPA: VMCB control area offset 0xa0, 8 bytes.
    public var ghcbGPA: UInt64 {
        get { u(0xa0, 8) }
        set { put(0xa0, 8, newValue) }
    }
    /// EVENTINJ: VMCB control area offset 0xa8, 4 bytes.
    public var eventInjection: UInt32 {
        get { UInt32(u(0xa8, 4)) }
        set { put(0xa8, 4, UInt64(newValue)) }
    }
    /// EVENTINJ error code: VMCB control area offset 0xac, 4 bytes.
    public var eventInjectionError: UInt32 {
        get { UInt32(u(0xac, 4)) }
        set { put(0xac, 4, UInt64(newValue)) }
    }
    /// Nested CR3: VMCB control area offset 0xb0, 8 bytes.
    public var nestedCR3: UInt64 {
        get { u(0xb0, 8) }
        set { put(0xb0, 8, newValue) }
    }
    /// virt_ext (misc_ctl2 in newer headers): bit 0 LBR virtualization, 1 virtual VMLOAD/VMSAVE.
    public var virtExt: UInt64 {
        get { u(0xb8, 8) }
        set { put(0xb8, 8, newValue) }
    }
    /// VMCB clean bits: VMCB control area offset 0xc0, 4 bytes.
    public var clean: UInt32 {
        get { UInt32(u(0xc0, 4)) }
        set { put(0xc0, 4, UInt64(newValue)) }
    }
    /// Next RIP: VMCB control area offset 0xc8, 8 bytes.
    public var nextRIP: UInt64 {
        get { u(0xc8, 8) }
        set { put(0xc8, 8, newValue) }
    }
    /// Instruction length: VMCB control area offset 0xd0, 1 byte.
    public var instructionLength: UInt8 {
        get { UInt8(u(0xd0, 1)) }
        set { put(0xd0, 1, UInt64(newValue)) }
    }
    /// The 15 guest instruction bytes (0xd1–0xdf).
    public var instructionBytes: [UInt8] {
        get { (0..<15).map { UInt8(u(0xd1 + $0, 1)) } }
        set { for i in 0..<15 { put(0xd1 + i, 1, UInt64(i < newValue.count ? newValue[i] : 0)) } }
    }

    /// Every named field of the control area, for rendering and diffs.
    public static let layout: NestedLayout = {
        typealias F = NestedFieldSpec
        return NestedLayout(
            [
                F("intercept_cr", 0x00, 4), F("intercept_dr", 0x04, 4), F("intercept_exceptions", 0x08, 4),
                F("intercept_misc1", 0x0c, 4, .bits(.svmInterceptMisc1)),
                F("intercept_misc2", 0x10, 4, .bits(.svmInterceptMisc2)),
                F("intercept_misc3", 0x14, 4, .bits(.svmInterceptMisc3)),
                F("pause_filter_thresh", 0x3c, 2, .decimal), F("pause_filter_count", 0x3e, 2, .decimal),
                F("iopm_base_pa", 0x40, 8), F("msrpm_base_pa", 0x48, 8), F("tsc_offset", 0x50, 8),
                F("asid", 0x58, 4, .decimal), F("tlb_ctl", 0x5c, 1), F("erap_ctl", 0x5d, 1),
                F("int_ctl", 0x60, 4, .bits(.svmIntCtl)), F("int_vector", 0x64, 4), F("int_state", 0x68, 4),
                F("exit_code", 0x70, 8, .annotated(.svmExitCode)), F("exit_info_1", 0x78, 8),
                F("exit_info_2", 0x80, 8), F("exit_int_info", 0x88, 4, .annotated(.svmEventInfo)),
                F("exit_int_info_err", 0x8c, 4), F("nested_ctl", 0x90, 8, .bits(.svmNestedCtl)),
                F("avic_vapic_bar", 0x98, 8), F("ghcb_gpa", 0xa0, 8),
                F("event_inj", 0xa8, 4, .annotated(.svmEventInfo)), F("event_inj_err", 0xac, 4),
                F("nested_cr3", 0xb0, 8), F("virt_ext", 0xb8, 8, .bits(.svmVirtExt)), F("clean", 0xc0, 4),
                F("next_rip", 0xc8, 8), F("insn_len", 0xd0, 1, .decimal), F("insn_bytes", 0xd1, 15, .bytes),
                F("avic_backing_page", 0xe0, 8), F("avic_logical_id", 0xf0, 8), F("avic_physical_id", 0xf8, 8),
                F("vmsa_pa", 0x108, 8), F("bus_lock_counter", 0x120, 2, .decimal),
                F("allowed_sev_features", 0x138, 8), F("guest_sev_features", 0x140, 8),
                F("reserved_sw", 0x3e0, 32, .bytes),
            ], size: VMCBControl.size)
    }()
}

/// The VMCB save area (bytes 0x400–0x6e7 of the page, `struct vmcb_save_area`). In KVM
/// nested state: **L1's host state** (vmcb01.save), present only in guest mode.
public struct VMCBSaveArea: NestedRawStructure, Equatable, Sendable {
    /// Bytes in the save area as this library models it.
    public static let size = 744
    /// Where the save area starts inside the VMCB page.
    public static let offsetInVMCB = 0x400

    /// The bytes as found (normally 744).
    public var raw: [UInt8]

    /// Wraps `raw` as is (any length; fields past the end read as zero).
    public init(raw: [UInt8]) { self.raw = raw }
    /// A zeroed save area.
    public init() { raw = [UInt8](repeating: 0, count: VMCBSaveArea.size) }

    /// The segment register `reg`.
    public func segment(_ reg: VMCBSegmentRegister) -> VMCBSegment {
        let o = reg.offset
        return VMCBSegment(
            selector: UInt16(u(o, 2)), attrib: UInt16(u(o + 2, 2)),
            limit: UInt32(u(o + 4, 4)), base: u(o + 8, 8))
    }

    /// Writes the segment register `reg`.
    public mutating func setSegment(_ reg: VMCBSegmentRegister, _ seg: VMCBSegment) {
        let o = reg.offset
        put(o, 2, UInt64(seg.selector))
        put(o + 2, 2, UInt64(seg.attrib))
        put(o + 4, 4, UInt64(seg.limit))
        put(o + 8, 8, seg.base)
    }

    /// VMPL: VMCB save area offset 0xca, 1 byte.
    public var vmpl: UInt8 {
        get { UInt8(u(0xca, 1)) }
        set { put(0xca, 1, UInt64(newValue)) }
    }
    /// CPL: VMCB save area offset 0xcb, 1 byte.
    public var cpl: UInt8 {
        get { UInt8(u(0xcb, 1)) }
        set { put(0xcb, 1, UInt64(newValue)) }
    }
    /// EFER: VMCB save area offset 0xd0, 8 bytes.
    public var efer: UInt64 {
        get { u(0xd0, 8) }
        set { put(0xd0, 8, newValue) }
    }
    /// CR4: VMCB save area offset 0x148, 8 bytes.
    public var cr4: UInt64 {
        get { u(0x148, 8) }
        set { put(0x148, 8, newValue) }
    }
    /// CR3: VMCB save area offset 0x150, 8 bytes.
    public var cr3: UInt64 {
        get { u(0x150, 8) }
        set { put(0x150, 8, newValue) }
    }
    /// CR0: VMCB save area offset 0x158, 8 bytes.
    public var cr0: UInt64 {
        get { u(0x158, 8) }
        set { put(0x158, 8, newValue) }
    }
    /// DR7: VMCB save area offset 0x160, 8 bytes.
    public var dr7: UInt64 {
        get { u(0x160, 8) }
        set { put(0x160, 8, newValue) }
    }
    /// DR6: VMCB save area offset 0x168, 8 bytes.
    public var dr6: UInt64 {
        get { u(0x168, 8) }
        set { put(0x168, 8, newValue) }
    }
    /// RFLAGS: VMCB save area offset 0x170, 8 bytes.
    public var rflags: UInt64 {
        get { u(0x170, 8) }
        set { put(0x170, 8, newValue) }
    }
    /// RIP: VMCB save area offset 0x178, 8 bytes.
    public var rip: UInt64 {
        get { u(0x178, 8) }
        set { put(0x178, 8, newValue) }
    }
    /// RSP: VMCB save area offset 0x1d8, 8 bytes.
    public var rsp: UInt64 {
        get { u(0x1d8, 8) }
        set { put(0x1d8, 8, newValue) }
    }
    /// S_CET: VMCB save area offset 0x1e0, 8 bytes.
    public var sCET: UInt64 {
        get { u(0x1e0, 8) }
        set { put(0x1e0, 8, newValue) }
    }
    /// SSP: VMCB save area offset 0x1e8, 8 bytes.
    public var ssp: UInt64 {
        get { u(0x1e8, 8) }
        set { put(0x1e8, 8, newValue) }
    }
    /// ISST address: VMCB save area offset 0x1f0, 8 bytes.
    public var isstAddress: UInt64 {
        get { u(0x1f0, 8) }
        set { put(0x1f0, 8, newValue) }
    }
    /// RAX: VMCB save area offset 0x1f8, 8 bytes.
    public var rax: UInt64 {
        get { u(0x1f8, 8) }
        set { put(0x1f8, 8, newValue) }
    }
    /// STAR: VMCB save area offset 0x200, 8 bytes.
    public var star: UInt64 {
        get { u(0x200, 8) }
        set { put(0x200, 8, newValue) }
    }
    /// LSTAR: VMCB save area offset 0x208, 8 bytes.
    public var lstar: UInt64 {
        get { u(0x208, 8) }
        set { put(0x208, 8, newValue) }
    }
    /// CSTAR: VMCB save area offset 0x210, 8 bytes.
    public var cstar: UInt64 {
        get { u(0x210, 8) }
        set { put(0x210, 8, newValue) }
    }
    /// SFMASK: VMCB save area offset 0x218, 8 bytes.
    public var sfmask: UInt64 {
        get { u(0x218, 8) }
        set { put(0x218, 8, newValue) }
    }
    /// Kernel GS base: VMCB save area offset 0x220, 8 bytes.
    public var kernelGSBase: UInt64 {
        get { u(0x220, 8) }
        set { put(0x220, 8, newValue) }
    }
    /// SYSENTER CS: VMCB save area offset 0x228, 8 bytes.
    public var sysenterCS: UInt64 {
        get { u(0x228, 8) }
        set { put(0x228, 8, newValue) }
    }
    /// SYSENTER ESP: VMCB save area offset 0x230, 8 bytes.
    public var sysenterESP: UInt64 {
        get { u(0x230, 8) }
        set { put(0x230, 8, newValue) }
    }
    /// SYSENTER EIP: VMCB save area offset 0x238, 8 bytes.
    public var sysenterEIP: UInt64 {
        get { u(0x238, 8) }
        set { put(0x238, 8, newValue) }
    }
    /// CR2: VMCB save area offset 0x240, 8 bytes.
    public var cr2: UInt64 {
        get { u(0x240, 8) }
        set { put(0x240, 8, newValue) }
    }
    /// Guest PAT: VMCB save area offset 0x268, 8 bytes.
    public var gPAT: UInt64 {
        get { u(0x268, 8) }
        set { put(0x268, 8, newValue) }
    }
    /// DEBUGCTL: VMCB save area offset 0x270, 8 bytes.
    public var debugCtl: UInt64 {
        get { u(0x270, 8) }
        set { put(0x270, 8, newValue) }
    }
    /// BR_FROM (last branch from): VMCB save area offset 0x278, 8 bytes.
    public var branchFrom: UInt64 {
        get { u(0x278, 8) }
        set { put(0x278, 8, newValue) }
    }
    /// BR_TO (last branch to): VMCB save area offset 0x280, 8 bytes.
    public var branchTo: UInt64 {
        get { u(0x280, 8) }
        set { put(0x280, 8, newValue) }
    }
    /// Last exception from: VMCB save area offset 0x288, 8 bytes.
    public var lastExceptionFrom: UInt64 {
        get { u(0x288, 8) }
        set { put(0x288, 8, newValue) }
    }
    /// Last exception to: VMCB save area offset 0x290, 8 bytes.
    public var lastExceptionTo: UInt64 {
        get { u(0x290, 8) }
        set { put(0x290, 8, newValue) }
    }
    /// SPEC CTRL: VMCB save area offset 0x2e0, 8 bytes.
    public var specCtrl: UInt64 {
        get { u(0x2e0, 8) }
        set { put(0x2e0, 8, newValue) }
    }

    /// Every named field of the save area, for rendering and diffs.
    public static let layout: NestedLayout = {
        typealias F = NestedFieldSpec
        var f: [F] = []
        for r in VMCBSegmentRegister.allCases {
            f += [
                F("\(r.name).selector", r.offset, 2), F("\(r.name).attrib", r.offset + 2, 2),
                F("\(r.name).limit", r.offset + 4, 4), F("\(r.name).base", r.offset + 8, 8),
            ]
        }
        f += [
            F("vmpl", 0xca, 1, .decimal), F("cpl", 0xcb, 1, .decimal), F("efer", 0xd0, 8, .bits(.efer)),
            F("cr4", 0x148, 8, .bits(.cr4)), F("cr3", 0x150, 8), F("cr0", 0x158, 8, .bits(.cr0)),
            F("dr7", 0x160, 8), F("dr6", 0x168, 8), F("rflags", 0x170, 8), F("rip", 0x178, 8),
            F("rsp", 0x1d8, 8), F("s_cet", 0x1e0, 8), F("ssp", 0x1e8, 8), F("isst_addr", 0x1f0, 8),
            F("rax", 0x1f8, 8), F("star", 0x200, 8), F("lstar", 0x208, 8), F("cstar", 0x210, 8),
            F("sfmask", 0x218, 8), F("kernel_gs_base", 0x220, 8), F("sysenter_cs", 0x228, 8),
            F("sysenter_esp", 0x230, 8), F("sysenter_eip", 0x238, 8), F("cr2", 0x240, 8),
            F("g_pat", 0x268, 8), F("dbgctl", 0x270, 8), F("br_from", 0x278, 8), F("br_to", 0x280, 8),
            F("last_excp_from", 0x288, 8), F("last_excp_to", 0x290, 8), F("spec_ctrl", 0x2e0, 8),
        ]
        return NestedLayout(f, size: VMCBSaveArea.size)
    }()
}

/// The 4 KiB vmcb12 page: control area, save area, and the rest of the page (`tail`,
/// zero in KVM output) — all bytes kept, so `bytes` reproduces the input.
public struct VMCB: Equatable, Sendable {
    /// KVM_STATE_NESTED_SVM_VMCB_SIZE.
    public static let pageSize = 4096

    /// L1's cached vmcb12 control area.
    public var control: VMCBControl
    /// L1's host save area (vmcb01.save), not L2's state.
    public var save: VMCBSaveArea
    /// Bytes after the save area (0x6e8 …), normally 2328 zero bytes.
    public var tail: [UInt8]

    /// A page from its parts (a zeroed page by default).
    public init(
        control: VMCBControl = VMCBControl(), save: VMCBSaveArea = VMCBSaveArea(),
        tail: [UInt8] = [UInt8](repeating: 0, count: VMCB.pageSize - VMCBSaveArea.offsetInVMCB - VMCBSaveArea.size)
    ) {
        self.control = control
        self.save = save
        self.tail = tail
    }

    /// Splits a page (any length) into control, save and tail.
    public init(raw: [UInt8]) {
        control = VMCBControl(raw: NestedByteIO.slice(raw, 0, VMCBControl.size))
        save = VMCBSaveArea(raw: NestedByteIO.slice(raw, VMCBSaveArea.offsetInVMCB, VMCBSaveArea.size))
        let tailStart = VMCBSaveArea.offsetInVMCB + VMCBSaveArea.size
        tail = raw.count > tailStart ? Array(raw[tailStart...]) : []
    }

    /// The page. A control or save area shorter than its size is zero-padded when
    /// something follows it, so every byte lands at its offset.
    public var bytes: [UInt8] {
        var out = control.raw
        if !save.raw.isEmpty || !tail.isEmpty { out += padding(control.raw.count, VMCBControl.size) }
        out += save.raw
        if !tail.isEmpty { out += padding(save.raw.count, VMCBSaveArea.size) }
        out += tail
        return out
    }

    /// Whether the whole 4 KiB page is present.
    public var isComplete: Bool { bytes.count >= VMCB.pageSize }

    private func padding(_ have: Int, _ want: Int) -> [UInt8] {
        have < want ? [UInt8](repeating: 0, count: want - have) : []
    }
}
