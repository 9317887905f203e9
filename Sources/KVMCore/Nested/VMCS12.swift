// The vmcs12 page of a VMX nested state (kvm_vmx_nested_state_data.vmcs12 and
// .shadow_vmcs12), in the kernel's migration-stable layout.
//
// Source: linux arch/x86/kvm/vmx/vmcs12.h, `struct __packed vmcs12` and the
// CHECK_OFFSET() list in vmx_check_vmcs12_offsets() (the offsets are ABI: "Changing
// the layout of existing fields in this structure will break save/restore
// compatibility"). VMCS12_REVISION = 0x11e57ed0. Offsets 320 (encls_exiting_bitmap)
// and 328 (tsc_multiplier) come from newer kernels' CHECK_OFFSET lists; 376..407 were
// cr3_target_value0..3 and are "dead_space" in newer kernels; 680..727 are the CET
// fields (host_s_cet … guest_ssp_tbl) added with nested CET support (Linux 6.18) —
// zero when written by older kernels. KVM does not expose tertiary processor-based
// controls to L1, so vmcs12 has no tertiary-controls field.
//
// The struct occupies 998 bytes; KVM_GET_NESTED_STATE copies the whole 4 KiB page
// (VMCS12_SIZE) and this model keeps every byte: `raw` is the page as found, the
// typed properties are views on it, and `bytes` returns it unchanged.

import Glibc

/// A guest segment register as stored in vmcs12 (selector, base, limit, access rights).
public enum VMCS12SegmentRegister: Int, CaseIterable, Sendable {
    /// ES, CS, SS, DS, FS, GS, LDTR and TR.
    case es, cs, ss, ds, fs, gs, ldtr, tr

    /// The register's name in lower case ("cs").
    public var name: String { String(describing: self) }
    var selectorOffset: Int { 964 + 2 * rawValue }
    var baseOffset: Int { 448 + 8 * rawValue }
    var limitOffset: Int { 840 + 4 * rawValue }
    var accessRightsOffset: Int { 880 + 4 * rawValue }
    /// Host selector offset (there is no host LDTR).
    var hostSelectorOffset: Int? {
        switch self {
        case .es: return 982
        case .cs: return 984
        case .ss: return 986
        case .ds: return 988
        case .fs: return 990
        case .gs: return 992
        case .tr: return 994
        case .ldtr: return nil
        }
    }
}

/// A guest segment register as vmcs12 stores it.
public struct VMCS12Segment: Equatable, Sendable {
    /// Segment selector.
    public var selector: UInt16
    /// Segment base.
    public var base: UInt64
    /// Segment limit.
    public var limit: UInt32
    /// Access rights in the VMCS format (bit 16: unusable).
    public var accessRights: UInt32
    /// A segment from its fields (all zero by default).
    public init(selector: UInt16 = 0, base: UInt64 = 0, limit: UInt32 = 0, accessRights: UInt32 = 0) {
        self.selector = selector
        self.base = base
        self.limit = limit
        self.accessRights = accessRights
    }
}

/// A guest GDTR or IDTR as vmcs12 stores it.
public struct VMCS12DescriptorTable: Equatable, Sendable {
    /// Table base.
    public var base: UInt64
    /// Table limit.
    public var limit: UInt32
    /// A table from its fields (all zero by default).
    public init(base: UInt64 = 0, limit: UInt32 = 0) {
        self.base = base
        self.limit = limit
    }
}

/// The vmcs12 page of a VMX nested state: L1's VMCS for L2 in KVM's
/// migration-stable layout, every byte kept (`raw`), typed fields as views on it.
public struct VMCS12: NestedRawStructure, Equatable, Sendable {
    /// VMCS12_SIZE: the page KVM copies for vmcs12 and for shadow_vmcs12.
    public static let pageSize = 4096
    /// Bytes used by `struct vmcs12` (guest_pml_index ends at 998).
    public static let structSize = 998
    /// VMCS12_REVISION: KVM_SET_NESTED_STATE rejects any other revision id.
    public static let revision: UInt32 = 0x11e5_7ed0

    /// The page as found (normally 4096 bytes; shorter only when a blob was cut short).
    public var raw: [UInt8]

    /// Wraps `raw` as is (any length; fields past the end read as zero).
    public init(raw: [UInt8]) { self.raw = raw }

    /// A zeroed page with `revisionID` set to VMCS12_REVISION.
    public init(shadow: Bool = false) {
        raw = [UInt8](repeating: 0, count: VMCS12.pageSize)
        revisionID = VMCS12.revision
        isShadow = shadow
    }

    /// The encoded page: `raw`, unchanged.
    public var bytes: [UInt8] { raw }

    /// Whether the whole 4 KiB page is present.
    public var isComplete: Bool { raw.count >= VMCS12.pageSize }

    // MARK: Header

    /// hdr.revision_id (bits 30:0 of the first dword).
    public var revisionID: UInt32 {
        get { UInt32(u(0, 4) & 0x7FFF_FFFF) }
        set { put(0, 4, (u(0, 4) & 0x8000_0000) | UInt64(newValue & 0x7FFF_FFFF)) }
    }
    /// hdr.shadow_vmcs (bit 31 of the first dword).
    public var isShadow: Bool {
        get { u(0, 4) & 0x8000_0000 != 0 }
        set { put(0, 4, (u(0, 4) & 0x7FFF_FFFF) | (newValue ? 0x8000_0000 : 0)) }
    }
    /// VMX-abort indicator: vmcs12 offset 4, 4 bytes.
    public var abort: UInt32 {
        get { UInt32(u(4, 4)) }
        set { put(4, 4, UInt64(newValue)) }
    }
    /// 0 after VMCLEAR, 1 after VMLAUNCH.
    public var launchState: UInt32 {
        get { UInt32(u(8, 4)) }
        set { put(8, 4, UInt64(newValue)) }
    }

    // MARK: Execution controls

    /// Pin-based controls: vmcs12 offset 744, 4 bytes.
    public var pinBasedControls: UInt32 {
        get { UInt32(u(744, 4)) }
        set { put(744, 4, UInt64(newValue)) }
    }
    /// Primary processor-based controls: vmcs12 offset 748, 4 bytes.
    public var primaryProcBasedControls: UInt32 {
        get { UInt32(u(748, 4)) }
        set { put(748, 4, UInt64(newValue)) }
    }
    /// Secondary processor-based controls: vmcs12 offset 804, 4 bytes.
    public var secondaryProcBasedControls: UInt32 {
        get { UInt32(u(804, 4)) }
        set { put(804, 4, UInt64(newValue)) }
    }
    /// VM exit controls: vmcs12 offset 768, 4 bytes.
    public var vmExitControls: UInt32 {
        get { UInt32(u(768, 4)) }
        set { put(768, 4, UInt64(newValue)) }
    }
    /// VM entry controls: vmcs12 offset 780, 4 bytes.
    public var vmEntryControls: UInt32 {
        get { UInt32(u(780, 4)) }
        set { put(780, 4, UInt64(newValue)) }
    }
    /// Exception bitmap: vmcs12 offset 752, 4 bytes.
    public var exceptionBitmap: UInt32 {
        get { UInt32(u(752, 4)) }
        set { put(752, 4, UInt64(newValue)) }
    }
    /// VM function control: vmcs12 offset 296, 8 bytes.
    public var vmFunctionControl: UInt64 {
        get { u(296, 8) }
        set { put(296, 8, newValue) }
    }
    /// I/O bitmap A: vmcs12 offset 40, 8 bytes.
    public var ioBitmapA: UInt64 {
        get { u(40, 8) }
        set { put(40, 8, newValue) }
    }
    /// I/O bitmap B: vmcs12 offset 48, 8 bytes.
    public var ioBitmapB: UInt64 {
        get { u(48, 8) }
        set { put(48, 8, newValue) }
    }
    /// MSR bitmap: vmcs12 offset 56, 8 bytes.
    public var msrBitmap: UInt64 {
        get { u(56, 8) }
        set { put(56, 8, newValue) }
    }
    /// TSC offset: vmcs12 offset 88, 8 bytes.
    public var tscOffset: UInt64 {
        get { u(88, 8) }
        set { put(88, 8, newValue) }
    }
    /// TSC multiplier: vmcs12 offset 328, 8 bytes.
    public var tscMultiplier: UInt64 {
        get { u(328, 8) }
        set { put(328, 8, newValue) }
    }
    /// Virtual APIC page address: vmcs12 offset 96, 8 bytes.
    public var virtualAPICPageAddress: UInt64 {
        get { u(96, 8) }
        set { put(96, 8, newValue) }
    }
    /// APIC access address: vmcs12 offset 104, 8 bytes.
    public var apicAccessAddress: UInt64 {
        get { u(104, 8) }
        set { put(104, 8, newValue) }
    }
    /// Posted interrupt descriptor address: vmcs12 offset 112, 8 bytes.
    public var postedInterruptDescriptorAddress: UInt64 {
        get { u(112, 8) }
        set { put(112, 8, newValue) }
    }
    /// EPT pointer: vmcs12 offset 120, 8 bytes.
    public var eptPointer: UInt64 {
        get { u(120, 8) }
        set { put(120, 8, newValue) }
    }
    /// VMCS link pointer (the shadow VMCS when VMCS shadowing is on); -1 when unused.
    public var vmcsLinkPointer: UInt64 {
        get { u(176, 8) }
        set { put(176, 8, newValue) }
    }
    /// CR0 guest/host mask: vmcs12 offset 344, 8 bytes.
    public var cr0GuestHostMask: UInt64 {
        get { u(344, 8) }
        set { put(344, 8, newValue) }
    }
    /// CR4 guest/host mask: vmcs12 offset 352, 8 bytes.
    public var cr4GuestHostMask: UInt64 {
        get { u(352, 8) }
        set { put(352, 8, newValue) }
    }
    /// CR0 read shadow: vmcs12 offset 360, 8 bytes.
    public var cr0ReadShadow: UInt64 {
        get { u(360, 8) }
        set { put(360, 8, newValue) }
    }
    /// CR4 read shadow: vmcs12 offset 368, 8 bytes.
    public var cr4ReadShadow: UInt64 {
        get { u(368, 8) }
        set { put(368, 8, newValue) }
    }
    /// Virtual processor ID: vmcs12 offset 960, 2 bytes.
    public var virtualProcessorID: UInt16 {
        get { UInt16(u(960, 2)) }
        set { put(960, 2, UInt64(newValue)) }
    }

    /// Primary control bit 31: the secondary controls are active.
    public var activatesSecondaryControls: Bool { primaryProcBasedControls & 0x8000_0000 != 0 }
    /// nested_cpu_has_shadow_vmcs(): secondary controls active and SHADOW_VMCS (bit 14) set.
    public var usesShadowVMCS: Bool { activatesSecondaryControls && secondaryProcBasedControls & 0x4000 != 0 }
    /// Pin-based bit 6: the VMX-preemption timer is active.
    public var usesPreemptionTimer: Bool { pinBasedControls & 0x40 != 0 }

    // MARK: Exit information

    /// VM exit reason: vmcs12 offset 812, 4 bytes.
    public var vmExitReason: UInt32 {
        get { UInt32(u(812, 4)) }
        set { put(812, 4, UInt64(newValue)) }
    }
    /// Exit qualification: vmcs12 offset 408, 8 bytes.
    public var exitQualification: UInt64 {
        get { u(408, 8) }
        set { put(408, 8, newValue) }
    }
    /// VM instruction error: vmcs12 offset 808, 4 bytes.
    public var vmInstructionError: UInt32 {
        get { UInt32(u(808, 4)) }
        set { put(808, 4, UInt64(newValue)) }
    }
    /// VM exit interruption info: vmcs12 offset 816, 4 bytes.
    public var vmExitInterruptionInfo: UInt32 {
        get { UInt32(u(816, 4)) }
        set { put(816, 4, UInt64(newValue)) }
    }
    /// VM exit interruption error code: vmcs12 offset 820, 4 bytes.
    public var vmExitInterruptionErrorCode: UInt32 {
        get { UInt32(u(820, 4)) }
        set { put(820, 4, UInt64(newValue)) }
    }
    /// IDT vectoring info: vmcs12 offset 824, 4 bytes.
    public var idtVectoringInfo: UInt32 {
        get { UInt32(u(824, 4)) }
        set { put(824, 4, UInt64(newValue)) }
    }
    /// IDT vectoring error code: vmcs12 offset 828, 4 bytes.
    public var idtVectoringErrorCode: UInt32 {
        get { UInt32(u(828, 4)) }
        set { put(828, 4, UInt64(newValue)) }
    }
    /// VM exit instruction length: vmcs12 offset 832, 4 bytes.
    public var vmExitInstructionLength: UInt32 {
        get { UInt32(u(832, 4)) }
        set { put(832, 4, UInt64(newValue)) }
    }
    /// VMX instruction info: vmcs12 offset 836, 4 bytes.
    public var vmxInstructionInfo: UInt32 {
        get { UInt32(u(836, 4)) }
        set { put(836, 4, UInt64(newValue)) }
    }
    /// Guest physical address: vmcs12 offset 168, 8 bytes.
    public var guestPhysicalAddress: UInt64 {
        get { u(168, 8) }
        set { put(168, 8, newValue) }
    }
    /// Guest linear address: vmcs12 offset 416, 8 bytes.
    public var guestLinearAddress: UInt64 {
        get { u(416, 8) }
        set { put(416, 8, newValue) }
    }

    // MARK: Entry controls (event injection)

    /// VM entry interruption info: vmcs12 offset 788, 4 bytes.
    public var vmEntryInterruptionInfo: UInt32 {
        get { UInt32(u(788, 4)) }
        set { put(788, 4, UInt64(newValue)) }
    }
    /// VM entry exception error code: vmcs12 offset 792, 4 bytes.
    public var vmEntryExceptionErrorCode: UInt32 {
        get { UInt32(u(792, 4)) }
        set { put(792, 4, UInt64(newValue)) }
    }
    /// VM entry instruction length: vmcs12 offset 796, 4 bytes.
    public var vmEntryInstructionLength: UInt32 {
        get { UInt32(u(796, 4)) }
        set { put(796, 4, UInt64(newValue)) }
    }

    // MARK: Guest state (L2)

    /// Guest CR0: vmcs12 offset 424, 8 bytes.
    public var guestCR0: UInt64 {
        get { u(424, 8) }
        set { put(424, 8, newValue) }
    }
    /// Guest CR3: vmcs12 offset 432, 8 bytes.
    public var guestCR3: UInt64 {
        get { u(432, 8) }
        set { put(432, 8, newValue) }
    }
    /// Guest CR4: vmcs12 offset 440, 8 bytes.
    public var guestCR4: UInt64 {
        get { u(440, 8) }
        set { put(440, 8, newValue) }
    }
    /// Guest DR7: vmcs12 offset 528, 8 bytes.
    public var guestDR7: UInt64 {
        get { u(528, 8) }
        set { put(528, 8, newValue) }
    }
    /// Guest RSP: vmcs12 offset 536, 8 bytes.
    public var guestRSP: UInt64 {
        get { u(536, 8) }
        set { put(536, 8, newValue) }
    }
    /// Guest RIP: vmcs12 offset 544, 8 bytes.
    public var guestRIP: UInt64 {
        get { u(544, 8) }
        set { put(544, 8, newValue) }
    }
    /// Guest RFLAGS: vmcs12 offset 552, 8 bytes.
    public var guestRFLAGS: UInt64 {
        get { u(552, 8) }
        set { put(552, 8, newValue) }
    }
    /// Guest pending debug exceptions: vmcs12 offset 560, 8 bytes.
    public var guestPendingDebugExceptions: UInt64 {
        get { u(560, 8) }
        set { put(560, 8, newValue) }
    }
    /// Guest SYSENTER CS: vmcs12 offset 920, 4 bytes.
    public var guestSysenterCS: UInt32 {
        get { UInt32(u(920, 4)) }
        set { put(920, 4, UInt64(newValue)) }
    }
    /// Guest SYSENTER ESP: vmcs12 offset 568, 8 bytes.
    public var guestSysenterESP: UInt64 {
        get { u(568, 8) }
        set { put(568, 8, newValue) }
    }
    /// Guest SYSENTER EIP: vmcs12 offset 576, 8 bytes.
    public var guestSysenterEIP: UInt64 {
        get { u(576, 8) }
        set { put(576, 8, newValue) }
    }
    /// Guest EFER: vmcs12 offset 200, 8 bytes.
    public var guestEFER: UInt64 {
        get { u(200, 8) }
        set { put(200, 8, newValue) }
    }
    /// Guest PAT: vmcs12 offset 192, 8 bytes.
    public var guestPAT: UInt64 {
        get { u(192, 8) }
        set { put(192, 8, newValue) }
    }
    /// Guest DEBUGCTL: vmcs12 offset 184, 8 bytes.
    public var guestDebugCtl: UInt64 {
        get { u(184, 8) }
        set { put(184, 8, newValue) }
    }
    /// Guest PERF GLOBAL CTRL: vmcs12 offset 208, 8 bytes.
    public var guestPerfGlobalCtrl: UInt64 {
        get { u(208, 8) }
        set { put(208, 8, newValue) }
    }
    /// Guest BNDCFGS: vmcs12 offset 248, 8 bytes.
    public var guestBNDCFGS: UInt64 {
        get { u(248, 8) }
        set { put(248, 8, newValue) }
    }
    /// Guest interruptibility: vmcs12 offset 912, 4 bytes.
    public var guestInterruptibility: UInt32 {
        get { UInt32(u(912, 4)) }
        set { put(912, 4, UInt64(newValue)) }
    }
    /// Guest activity state: vmcs12 offset 916, 4 bytes.
    public var guestActivityState: UInt32 {
        get { UInt32(u(916, 4)) }
        set { put(916, 4, UInt64(newValue)) }
    }
    /// Guest interrupt status: vmcs12 offset 980, 2 bytes.
    public var guestInterruptStatus: UInt16 {
        get { UInt16(u(980, 2)) }
        set { put(980, 2, UInt64(newValue)) }
    }
    /// Preemption timer value: vmcs12 offset 928, 4 bytes.
    public var preemptionTimerValue: UInt32 {
        get { UInt32(u(928, 4)) }
        set { put(928, 4, UInt64(newValue)) }
    }

    /// guest_pdptr0 … guest_pdptr3.
    public func guestPDPTR(_ index: Int) -> UInt64 { (0..<4).contains(index) ? u(216 + 8 * index, 8) : 0 }
    /// Sets guest_pdptr`index` (0–3); other indices are ignored.
    public mutating func setGuestPDPTR(_ index: Int, _ value: UInt64) {
        if (0..<4).contains(index) { put(216 + 8 * index, 8, value) }
    }

    /// The guest segment register `reg`.
    public func guestSegment(_ reg: VMCS12SegmentRegister) -> VMCS12Segment {
        VMCS12Segment(
            selector: UInt16(u(reg.selectorOffset, 2)), base: u(reg.baseOffset, 8),
            limit: UInt32(u(reg.limitOffset, 4)), accessRights: UInt32(u(reg.accessRightsOffset, 4)))
    }

    /// Writes the guest segment register `reg`.
    public mutating func setGuestSegment(_ reg: VMCS12SegmentRegister, _ seg: VMCS12Segment) {
        put(reg.selectorOffset, 2, UInt64(seg.selector))
        put(reg.baseOffset, 8, seg.base)
        put(reg.limitOffset, 4, UInt64(seg.limit))
        put(reg.accessRightsOffset, 4, UInt64(seg.accessRights))
    }

    /// Guest GDTR: base at offset 512, limit at 872.
    public var guestGDTR: VMCS12DescriptorTable {
        get { VMCS12DescriptorTable(base: u(512, 8), limit: UInt32(u(872, 4))) }
        set {
            put(512, 8, newValue.base)
            put(872, 4, UInt64(newValue.limit))
        }
    }
    /// Guest IDTR: base at offset 520, limit at 876.
    public var guestIDTR: VMCS12DescriptorTable {
        get { VMCS12DescriptorTable(base: u(520, 8), limit: UInt32(u(876, 4))) }
        set {
            put(520, 8, newValue.base)
            put(876, 4, UInt64(newValue.limit))
        }
    }

    // MARK: Host state (L1, loaded on VM-exit)

    /// Host CR0: vmcs12 offset 584, 8 bytes.
    public var hostCR0: UInt64 {
        get { u(584, 8) }
        set { put(584, 8, newValue) }
    }
    /// Host CR3: vmcs12 offset 592, 8 bytes.
    public var hostCR3: UInt64 {
        get { u(592, 8) }
        set { put(592, 8, newValue) }
    }
    /// Host CR4: vmcs12 offset 600, 8 bytes.
    public var hostCR4: UInt64 {
        get { u(600, 8) }
        set { put(600, 8, newValue) }
    }
    /// Host FS base: vmcs12 offset 608, 8 bytes.
    public var hostFSBase: UInt64 {
        get { u(608, 8) }
        set { put(608, 8, newValue) }
    }
    /// Host GS base: vmcs12 offset 616, 8 bytes.
    public var hostGSBase: UInt64 {
        get { u(616, 8) }
        set { put(616, 8, newValue) }
    }
    /// Host TR base: vmcs12 offset 624, 8 bytes.
    public var hostTRBase: UInt64 {
        get { u(624, 8) }
        set { put(624, 8, newValue) }
    }
    /// Host GDTR base: vmcs12 offset 632, 8 bytes.
    public var hostGDTRBase: UInt64 {
        get { u(632, 8) }
        set { put(632, 8, newValue) }
    }
    /// Host IDTR base: vmcs12 offset 640, 8 bytes.
    public var hostIDTRBase: UInt64 {
        get { u(640, 8) }
        set { put(640, 8, newValue) }
    }
    /// Host SYSENTER CS: vmcs12 offset 924, 4 bytes.
    public var hostSysenterCS: UInt32 {
        get { UInt32(u(924, 4)) }
        set { put(924, 4, UInt64(newValue)) }
    }
    /// Host SYSENTER ESP: vmcs12 offset 648, 8 bytes.
    public var hostSysenterESP: UInt64 {
        get { u(648, 8) }
        set { put(648, 8, newValue) }
    }
    /// Host SYSENTER EIP: vmcs12 offset 656, 8 bytes.
    public var hostSysenterEIP: UInt64 {
        get { u(656, 8) }
        set { put(656, 8, newValue) }
    }
    /// Host RSP: vmcs12 offset 664, 8 bytes.
    public var hostRSP: UInt64 {
        get { u(664, 8) }
        set { put(664, 8, newValue) }
    }
    /// Host RIP: vmcs12 offset 672, 8 bytes.
    public var hostRIP: UInt64 {
        get { u(672, 8) }
        set { put(672, 8, newValue) }
    }
    /// Host EFER: vmcs12 offset 264, 8 bytes.
    public var hostEFER: UInt64 {
        get { u(264, 8) }
        set { put(264, 8, newValue) }
    }
    /// Host PAT: vmcs12 offset 256, 8 bytes.
    public var hostPAT: UInt64 {
        get { u(256, 8) }
        set { put(256, 8, newValue) }
    }
    /// Host PERF GLOBAL CTRL: vmcs12 offset 272, 8 bytes.
    public var hostPerfGlobalCtrl: UInt64 {
        get { u(272, 8) }
        set { put(272, 8, newValue) }
    }

    /// Host selector (es, cs, ss, ds, fs, gs, tr); 0 for ldtr, which has no host field.
    public func hostSelector(_ reg: VMCS12SegmentRegister) -> UInt16 {
        reg.hostSelectorOffset.map { UInt16(u($0, 2)) } ?? 0
    }
    /// Sets the host selector of `reg`; ignored for LDTR, which has none.
    public mutating func setHostSelector(_ reg: VMCS12SegmentRegister, _ value: UInt16) {
        if let o = reg.hostSelectorOffset { put(o, 2, UInt64(value)) }
    }

    // MARK: Layout table

    /// Every named field of vmcs12, for rendering and diffs.
    public static let layout: NestedLayout = {
        typealias F = NestedFieldSpec
        var f: [F] = [
            F("revision_id", 0, 4, shift: 0, bitCount: 31),
            F("shadow_vmcs", 0, 4, .decimal, shift: 31, bitCount: 1),
            F("abort", 4, 4),
            F("launch_state", 8, 4, .decimal),
            F("io_bitmap_a", 40, 8), F("io_bitmap_b", 48, 8), F("msr_bitmap", 56, 8),
            F("vm_exit_msr_store_addr", 64, 8), F("vm_exit_msr_load_addr", 72, 8),
            F("vm_entry_msr_load_addr", 80, 8), F("tsc_offset", 88, 8), F("virtual_apic_page_addr", 96, 8),
            F("apic_access_addr", 104, 8), F("posted_intr_desc_addr", 112, 8), F("ept_pointer", 120, 8),
            F("eoi_exit_bitmap0", 128, 8), F("eoi_exit_bitmap1", 136, 8), F("eoi_exit_bitmap2", 144, 8),
            F("eoi_exit_bitmap3", 152, 8), F("xss_exit_bitmap", 160, 8), F("guest_physical_address", 168, 8),
            F("vmcs_link_pointer", 176, 8), F("guest_ia32_debugctl", 184, 8), F("guest_ia32_pat", 192, 8),
            F("guest_ia32_efer", 200, 8, .bits(.efer)), F("guest_ia32_perf_global_ctrl", 208, 8),
            F("guest_pdptr0", 216, 8), F("guest_pdptr1", 224, 8), F("guest_pdptr2", 232, 8),
            F("guest_pdptr3", 240, 8), F("guest_bndcfgs", 248, 8), F("host_ia32_pat", 256, 8),
            F("host_ia32_efer", 264, 8, .bits(.efer)), F("host_ia32_perf_global_ctrl", 272, 8),
            F("vmread_bitmap", 280, 8), F("vmwrite_bitmap", 288, 8), F("vm_function_control", 296, 8),
            F("eptp_list_address", 304, 8), F("pml_address", 312, 8), F("encls_exiting_bitmap", 320, 8),
            F("tsc_multiplier", 328, 8),
            F("cr0_guest_host_mask", 344, 8), F("cr4_guest_host_mask", 352, 8),
            F("cr0_read_shadow", 360, 8), F("cr4_read_shadow", 368, 8),
            F("cr3_target_value0", 376, 8), F("cr3_target_value1", 384, 8),
            F("cr3_target_value2", 392, 8), F("cr3_target_value3", 400, 8),
            F("exit_qualification", 408, 8), F("guest_linear_address", 416, 8),
            F("guest_cr0", 424, 8, .bits(.cr0)), F("guest_cr3", 432, 8), F("guest_cr4", 440, 8, .bits(.cr4)),
        ]
        for r in VMCS12SegmentRegister.allCases { f.append(F("guest_\(r.name)_base", r.baseOffset, 8)) }
        f += [
            F("guest_gdtr_base", 512, 8), F("guest_idtr_base", 520, 8), F("guest_dr7", 528, 8),
            F("guest_rsp", 536, 8), F("guest_rip", 544, 8), F("guest_rflags", 552, 8),
            F("guest_pending_dbg_exceptions", 560, 8), F("guest_sysenter_esp", 568, 8),
            F("guest_sysenter_eip", 576, 8),
            F("host_cr0", 584, 8, .bits(.cr0)), F("host_cr3", 592, 8), F("host_cr4", 600, 8, .bits(.cr4)),
            F("host_fs_base", 608, 8), F("host_gs_base", 616, 8), F("host_tr_base", 624, 8),
            F("host_gdtr_base", 632, 8), F("host_idtr_base", 640, 8), F("host_ia32_sysenter_esp", 648, 8),
            F("host_ia32_sysenter_eip", 656, 8), F("host_rsp", 664, 8), F("host_rip", 672, 8),
            F("host_s_cet", 680, 8), F("host_ssp", 688, 8), F("host_ssp_tbl", 696, 8),
            F("guest_s_cet", 704, 8), F("guest_ssp", 712, 8), F("guest_ssp_tbl", 720, 8),
            F("pin_based_vm_exec_control", 744, 4, .bits(.pinBased)),
            F("cpu_based_vm_exec_control", 748, 4, .bits(.procBased)),
            F("exception_bitmap", 752, 4), F("page_fault_error_code_mask", 756, 4),
            F("page_fault_error_code_match", 760, 4), F("cr3_target_count", 764, 4, .decimal),
            F("vm_exit_controls", 768, 4, .bits(.exitControls)), F("vm_exit_msr_store_count", 772, 4, .decimal),
            F("vm_exit_msr_load_count", 776, 4, .decimal), F("vm_entry_controls", 780, 4, .bits(.entryControls)),
            F("vm_entry_msr_load_count", 784, 4, .decimal),
            F("vm_entry_intr_info_field", 788, 4, .annotated(.vmxInterruptionInfo)),
            F("vm_entry_exception_error_code", 792, 4), F("vm_entry_instruction_len", 796, 4, .decimal),
            F("tpr_threshold", 800, 4), F("secondary_vm_exec_control", 804, 4, .bits(.procBased2)),
            F("vm_instruction_error", 808, 4, .decimal),
            F("vm_exit_reason", 812, 4, .annotated(.vmxExitReason)),
            F("vm_exit_intr_info", 816, 4, .annotated(.vmxInterruptionInfo)),
            F("vm_exit_intr_error_code", 820, 4),
            F("idt_vectoring_info_field", 824, 4, .annotated(.vmxInterruptionInfo)),
            F("idt_vectoring_error_code", 828, 4), F("vm_exit_instruction_len", 832, 4, .decimal),
            F("vmx_instruction_info", 836, 4),
        ]
        for r in VMCS12SegmentRegister.allCases { f.append(F("guest_\(r.name)_limit", r.limitOffset, 4)) }
        f += [F("guest_gdtr_limit", 872, 4), F("guest_idtr_limit", 876, 4)]
        for r in VMCS12SegmentRegister.allCases { f.append(F("guest_\(r.name)_ar_bytes", r.accessRightsOffset, 4)) }
        f += [
            F("guest_interruptibility_info", 912, 4), F("guest_activity_state", 916, 4, .decimal),
            F("guest_sysenter_cs", 920, 4), F("host_ia32_sysenter_cs", 924, 4),
            F("vmx_preemption_timer_value", 928, 4, .decimal),
            F("virtual_processor_id", 960, 2, .decimal), F("posted_intr_nv", 962, 2),
        ]
        for r in VMCS12SegmentRegister.allCases { f.append(F("guest_\(r.name)_selector", r.selectorOffset, 2)) }
        f.append(F("guest_intr_status", 980, 2))
        for r in VMCS12SegmentRegister.allCases {
            if let o = r.hostSelectorOffset { f.append(F("host_\(r.name)_selector", o, 2)) }
        }
        f.append(F("guest_pml_index", 996, 2, .decimal))
        return NestedLayout(f, size: VMCS12.pageSize)
    }()
}
