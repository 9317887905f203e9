import XCTest

@testable import KVMCore

extension NestedState {
    mutating func editVMX(_ body: (inout VMXNestedState) -> Void) {
        guard case .vmx(var v) = payload else { return }
        body(&v)
        payload = .vmx(v)
    }
    mutating func editSVM(_ body: (inout SVMNestedState) -> Void) {
        guard case .svm(var s) = payload else { return }
        body(&s)
        payload = .svm(s)
    }
    mutating func editVMCS12(_ body: (inout VMCS12) -> Void) {
        editVMX { v in
            if var page = v.vmcs12 {
                body(&page)
                v.vmcs12 = page
            }
        }
    }
    mutating func editVMCB(_ body: (inout VMCB) -> Void) {
        editSVM { s in
            if var page = s.vmcb {
                body(&page)
                s.vmcb = page
            }
        }
    }
}

final class NestedValidatorTests: XCTestCase {
    typealias Ctx = NestedStateHostContext

    static let vmxContext = Ctx(
        capabilitySize: NestedState.vmxCapabilitySize, vendor: .vmx, efer: 0xd01,
        evmcsEnabled: false, guestHasVMX: true, inSMM: false, cr0: 0x8000_0031,
        maxPhysAddrBits: 46)
    static let svmContext = Ctx(
        capabilitySize: NestedState.svmCapabilitySize, vendor: .svm, efer: 0x1d00,
        inSMM: false, cr0: 0x8000_0011, maxPhysAddrBits: 48)

    enum Base { case vmxGuest, vmxOff, vmxOnNoVMCS, svmGuest, svmOutside }

    static func state(_ base: Base) -> NestedState {
        switch base {
        case .vmxGuest: return try! NestedState(bytes: NestedBlob.vmxGuestMode())
        case .svmGuest: return try! NestedState(bytes: NestedBlob.svmGuestMode())
        case .vmxOff:
            return NestedState.vmx(VMXNestedState()) // vmxon_pa = vmcs12_pa = -1, size 128
        case .vmxOnNoVMCS:
            return NestedState.vmx(VMXNestedState(header: VMXNestedHeader(vmxonPA: 0x1000)))
        case .svmOutside:
            return NestedState.svm(flags: .gifSet, SVMNestedState())
        }
    }

    struct Case: Sendable {
        let label: String
        let base: Base
        var edit: @Sendable (inout NestedState, inout Ctx) -> Void
        let expected: [NestedStateViolation]
    }

    func testGoodStatesPass() {
        XCTAssertEqual(NestedStateValidator.validate(Self.state(.vmxGuest), context: Self.vmxContext), [])
        XCTAssertEqual(NestedStateValidator.validate(Self.state(.vmxOff), context: Self.vmxContext), [])
        XCTAssertEqual(NestedStateValidator.validate(Self.state(.vmxOnNoVMCS), context: Self.vmxContext), [])
        XCTAssertEqual(NestedStateValidator.validate(Self.state(.svmGuest), context: Self.svmContext), [])
        XCTAssertEqual(NestedStateValidator.validate(Self.state(.svmOutside), context: Self.svmContext), [])
        var noSVME = Self.svmContext
        noSVME.efer = 0
        XCTAssertEqual(NestedStateValidator.validate(Self.state(.svmOutside), context: noSVME), [])
        XCTAssertTrue(NestedStateValidator.isAcceptable(Self.state(.vmxGuest), context: Self.vmxContext))
        // Minimal context: unknown facts are not checked.
        XCTAssertEqual(
            NestedStateValidator.validate(Self.state(.vmxGuest), context: Ctx(capabilitySize: 8320, vendor: .vmx)), [])
        XCTAssertEqual(NestedStateValidator.validate(bytes: NestedBlob.vmxGuestMode(), context: Self.vmxContext), [])
    }

    static let cases: [Case] = [
        // Generic (x86.c)
        Case(
            label: "no KVM_CAP_NESTED_STATE", base: .vmxGuest, edit: { _, c in c.capabilitySize = 0 },
            expected: [.noNestedStateSupport]),
        Case(
            label: "size below header", base: .vmxOff, edit: { s, _ in s.size = 100 },
            expected: [.sizeTooSmall(size: 100)]),
        Case(
            label: "size larger than the data", base: .vmxOff, edit: { s, _ in s.size = 200 },
            expected: [.sizeExceedsBuffer(size: 200, available: 128)]),
        Case(
            label: "size larger than capability", base: .vmxGuest, edit: { _, c in c.capabilitySize = 4224 },
            expected: [.sizeExceedsCapability(size: 8320, capability: 4224)]),
        Case(
            label: "unknown flag bit", base: .vmxGuest,
            edit: { s, _ in s.flags = NestedStateFlags(rawValue: s.flags.rawValue | 0x20) },
            expected: [.unknownFlags(0x20)]),
        Case(
            label: "RUN_PENDING without GUEST_MODE", base: .vmxGuest, edit: { s, _ in s.flags = .runPending },
            expected: [.runPendingWithoutGuestMode]),
        // Format
        Case(
            label: "unknown format", base: .vmxOff,
            edit: { s, _ in
                s = NestedState(
                    format: NestedStateFormat(rawValue: 5),
                    payload: .unknown(header: [UInt8](repeating: 0, count: 120), data: []))
            },
            expected: [.unknownFormat(5)]),
        Case(
            label: "SVM state on VMX host", base: .svmGuest, edit: { _, c in c.vendor = .vmx },
            expected: [.formatMismatch(format: .svm, host: .vmx)]),
        Case(
            label: "VMX state on SVM host", base: .vmxOff, edit: { _, c in c.vendor = .svm },
            expected: [.formatMismatch(format: .vmx, host: .svm)]),
        Case(
            label: "EVMCS on SVM", base: .svmGuest, edit: { s, _ in s.flags.insert(.evmcs) },
            expected: [.flagsNotForSVM(.evmcs)]),
        Case(
            label: "MTF_PENDING on SVM", base: .svmGuest, edit: { s, _ in s.flags.insert(.mtfPending) },
            expected: [.flagsNotForSVM(.mtfPending)]),
        Case(
            label: "GIF_SET on VMX", base: .vmxGuest, edit: { s, _ in s.flags.insert(.gifSet) },
            expected: [.gifSetOnVMX]),
        // VMX
        Case(
            label: "VMX off with SMM flags", base: .vmxOff,
            edit: { s, c in
                s.editVMX { $0.header.smmFlags = .vmxon }
                c.inSMM = nil
            },
            expected: [.vmxOffWithSMMFlags(.vmxon)]),
        Case(
            label: "VMX off with vmcs12_pa", base: .vmxOff, edit: { s, _ in s.editVMX { $0.header.vmcs12PA = 0x2000 } },
            expected: [.vmxOffWithVMCS12Pointer(0x2000)]),
        Case(
            label: "VMX off with GUEST_MODE", base: .vmxOff, edit: { s, _ in s.flags = .guestMode },
            expected: [.vmxOffWithFlags(.guestMode)]),
        Case(
            label: "VMX off with GIF_SET", base: .vmxOff, edit: { s, _ in s.flags = .gifSet },
            expected: [.vmxOffWithFlags(.gifSet)]),
        Case(
            label: "guest CPUID lacks VMX", base: .vmxGuest, edit: { _, c in c.guestHasVMX = false },
            expected: [.vmxNotExposedToGuest]),
        Case(
            label: "vmxon_pa not page aligned", base: .vmxGuest,
            edit: { s, _ in s.editVMX { $0.header.vmxonPA = 0x1001 } },
            expected: [.vmxonAddressInvalid(0x1001)]),
        Case(
            label: "vmxon_pa above MAXPHYADDR", base: .vmxGuest,
            edit: { s, _ in s.editVMX { $0.header.vmxonPA = 1 << 50 } },
            expected: [.vmxonAddressInvalid(1 << 50)]),
        Case(
            label: "SMM GUEST_MODE with GUEST_MODE", base: .vmxGuest,
            edit: { s, c in
                s.editVMX { $0.header.smmFlags = [.guestMode, .vmxon] }
                c.inSMM = nil
            },
            expected: [.smmGuestModeWithGuestMode]),
        Case(
            label: "unknown SMM flags", base: .vmxGuest,
            edit: { s, c in
                s.editVMX { $0.header.smmFlags = NestedSMMFlags(rawValue: 0x4) }
                c.inSMM = nil
            },
            expected: [.unknownSMMFlags(0x4)]),
        Case(
            label: "unknown VMX header flags", base: .vmxGuest,
            edit: { s, _ in s.editVMX { $0.header.flags = NestedVMXHeaderFlags(rawValue: 0x3) } },
            expected: [.unknownVMXHeaderFlags(0x2)]),
        Case(
            label: "SMM flags outside SMM", base: .vmxOnNoVMCS,
            edit: { s, _ in s.editVMX { $0.header.smmFlags = .vmxon } },
            expected: [.smmFlagsOutsideSMM(.vmxon)]),
        Case(
            label: "VMX guest mode in SMM", base: .vmxGuest, edit: { _, c in c.inSMM = true },
            expected: [.guestModeInSMM]),
        Case(
            label: "SVM guest mode in SMM", base: .svmGuest, edit: { _, c in c.inSMM = true },
            expected: [.guestModeInSMM]),
        Case(
            label: "SMM GUEST_MODE without SMM VMXON", base: .vmxOnNoVMCS,
            edit: { s, c in
                s.editVMX { $0.header.smmFlags = .guestMode }
                c.inSMM = true
            },
            expected: [.smmGuestModeWithoutSMMVMXON]),
        Case(
            label: "EVMCS without the capability", base: .vmxGuest, edit: { s, _ in s.flags.insert(.evmcs) },
            expected: [.evmcsNotEnabled]),
        Case(
            label: "vmcs12_pa set but no vmcs12 in size", base: .vmxOnNoVMCS,
            edit: { s, _ in s.editVMX { $0.header.vmcs12PA = 0x2000 } },
            expected: [.vmcs12Missing(size: 128)]),
        Case(
            label: "GUEST_MODE but no vmcs12 in size", base: .vmxOnNoVMCS, edit: { s, _ in s.flags = .guestMode },
            expected: [.vmcs12Missing(size: 128)]),
        Case(
            label: "vmcs12 without pointer or EVMCS", base: .vmxGuest,
            edit: { s, _ in
                s.flags = []
                s.editVMX { $0.header.vmcs12PA = NestedState.invalidGPA }
            },
            expected: [.vmcs12WithoutPointer]),
        Case(
            label: "vmcs12_pa equals vmxon_pa", base: .vmxGuest,
            edit: { s, _ in s.editVMX { $0.header.vmcs12PA = 0x1000 } },
            expected: [.vmcs12AddressEqualsVMXON(0x1000)]),
        Case(
            label: "vmcs12_pa not aligned", base: .vmxGuest,
            edit: { s, _ in s.editVMX { $0.header.vmcs12PA = 0x2008 } },
            expected: [.vmcs12AddressInvalid(0x2008)]),
        Case(
            label: "vmcs12 revision", base: .vmxGuest, edit: { s, _ in s.editVMCS12 { $0.revisionID = 1 } },
            expected: [.vmcs12BadRevision(1)]),
        Case(
            label: "shadow vmcs12 missing", base: .vmxGuest,
            edit: { s, _ in
                s.editVMX { $0.shadowVMCS12 = nil }
                s.size = 128 + 4096
            },
            expected: [.shadowVMCS12Missing(size: 4224)]),
        Case(
            label: "shadow vmcs12 without shadow bit", base: .vmxGuest,
            edit: { s, _ in s.editVMX { $0.shadowVMCS12?.isShadow = false } },
            expected: [.shadowVMCS12Invalid(revision: VMCS12.revision, shadowBit: false)]),
        // SVM
        Case(
            label: "EFER.SVME clear with GUEST_MODE", base: .svmGuest, edit: { _, c in c.efer = 0 },
            expected: [.svmDisabledInEFER([.guestMode, .gifSet])]),
        Case(
            label: "EFER.SVME clear with no flags", base: .svmOutside,
            edit: { s, c in
                s.flags = []
                c.efer = 0
            },
            expected: [.svmDisabledEmptyFlags]),
        Case(
            label: "EFER unknown", base: .svmGuest, edit: { _, c in c.efer = nil },
            expected: [.eferUnknown]),
        Case(
            label: "vmcb_pa not aligned", base: .svmGuest, edit: { s, _ in s.editSVM { $0.header.vmcbPA = 0x3004 } },
            expected: [.vmcbAddressInvalid(0x3004)]),
        Case(
            label: "GUEST_MODE without vmcb12", base: .svmOutside,
            edit: { s, _ in
                s.flags = [.guestMode, .gifSet]
                s.editSVM { $0.header.vmcbPA = 0x3000 }
            },
            expected: [.vmcbMissing(size: 128)]),
        Case(
            label: "VMRUN not intercepted", base: .svmGuest,
            edit: { s, _ in s.editVMCB { $0.control.interceptMisc2 = 0 } },
            expected: [.vmrunNotIntercepted]),
        Case(
            label: "ASID 0", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.control.asid = 0 } },
            expected: [.asidZero]),
        Case(
            label: "MSRPM beyond MAXPHYADDR", base: .svmGuest,
            edit: { s, _ in s.editVMCB { $0.control.msrpmBasePA = 1 << 49 } },
            expected: [.bitmapAddressInvalid(name: "msrpm_base_pa", address: 1 << 49)]),
        Case(
            label: "IOPM crossing MAXPHYADDR", base: .svmGuest,
            edit: { s, _ in s.editVMCB { $0.control.iopmBasePA = (1 << 48) - 0x1000 } },
            expected: [.bitmapAddressInvalid(name: "iopm_base_pa", address: (1 << 48) - 0x1000)]),
        Case(
            label: "L2 CR0 NW without CD", base: .svmGuest, edit: { _, c in c.cr0 = 0x2000_0011 },
            expected: [.l2CR0Invalid(0x2000_0011)]),
        Case(
            label: "L1 CR0 without PG", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.save.cr0 = 0x11 } },
            expected: [.l1NotPagedProtectedMode(cr0: 0x11)]),
        Case(
            label: "L1 in virtual-8086 mode", base: .svmGuest,
            edit: { s, _ in s.editVMCB { $0.save.rflags = 0x2_0002 } },
            expected: [.l1InVirtual8086Mode(rflags: 0x2_0002)]),
        Case(
            label: "L1 EFER.SVME clear", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.save.efer = 0xd00 } },
            expected: [.l1SVMEClear(efer: 0xd00)]),
        Case(
            label: "L1 CR0 NW without CD", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.save.cr0 = 0xa000_0011 } },
            expected: [.l1CR0Invalid(0xa000_0011)]),
        Case(
            label: "L1 CR0 high bits", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.save.cr0 = 0x1_8000_0011 } },
            expected: [.l1CR0Invalid(0x1_8000_0011)]),
        Case(
            label: "L1 DR7 high bits", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.save.dr7 = 1 << 40 } },
            expected: [.l1DebugRegistersInvalid(dr6: 0xffff_0ff0, dr7: 1 << 40)]),
        Case(
            label: "L1 long mode without PAE", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.save.cr4 = 0 } },
            expected: [.l1LongModeWithoutPAE(cr4: 0)]),
        Case(
            label: "L1 CR3 beyond MAXPHYADDR", base: .svmGuest, edit: { s, _ in s.editVMCB { $0.save.cr3 = 1 << 50 } },
            expected: [.l1CR3Illegal(1 << 50)]),
    ]

    func testEachRuleFiresAlone() {
        for c in Self.cases {
            var state = Self.state(c.base)
            var ctx: Ctx
            switch c.base {
            case .svmGuest, .svmOutside: ctx = Self.svmContext
            default: ctx = Self.vmxContext
            }
            c.edit(&state, &ctx)
            XCTAssertEqual(NestedStateValidator.validate(state, context: ctx), c.expected, c.label)
        }
    }

    func testEveryViolationKindIsCovered() {
        let names = Set(
            Self.cases.flatMap { $0.expected.map(\.name) }
                + [NestedStateViolation.bufferTooSmall(available: 0).name])
        XCTAssertEqual(names.count, 46, "each NestedStateViolation case needs a table entry")
    }

    func testRawBlobProblems() {
        XCTAssertEqual(
            NestedStateValidator.validate(bytes: [UInt8](repeating: 0, count: 10), context: Self.vmxContext),
            [.bufferTooSmall(available: 10)])
        var short = NestedBlob.vmxGuestMode()
        short.removeLast(100)
        XCTAssertEqual(
            NestedStateValidator.validate(bytes: short, context: Self.vmxContext),
            [.sizeExceedsBuffer(size: 8320, available: 8220)])
        let tiny = NestedBlob.header(flags: 0, format: 0, size: 64, total: 128)
        XCTAssertEqual(
            NestedStateValidator.validate(bytes: tiny, context: Ctx(capabilitySize: 0, vendor: .vmx)),
            [.noNestedStateSupport, .sizeTooSmall(size: 64)])
    }

    func testEVMCSAllowedWithCapability() {
        var ctx = Self.vmxContext
        ctx.evmcsEnabled = true
        var state = Self.state(.vmxGuest)
        state.flags.insert(.evmcs)
        XCTAssertEqual(NestedStateValidator.validate(state, context: ctx), [])
        // VMX off with EVMCS is accepted for backwards compatibility (needs the capability).
        var off = Self.state(.vmxOff)
        off.flags = .evmcs
        XCTAssertEqual(NestedStateValidator.validate(off, context: ctx), [])
        XCTAssertEqual(NestedStateValidator.validate(off, context: Self.vmxContext), [.evmcsNotEnabled])
        // EVMCS lets vmcs12_pa be -1 with a vmcs12 present.
        state.editVMX { $0.header.vmcs12PA = NestedState.invalidGPA }
        XCTAssertEqual(NestedStateValidator.validate(state, context: ctx), [])
    }

    func testMessagesAndReferences() {
        XCTAssertEqual(NestedStateViolation.runPendingWithoutGuestMode.message, "RUN_PENDING is set without GUEST_MODE")
        XCTAssertEqual(
            NestedStateViolation.noNestedStateSupport.message,
            "KVM_CAP_NESTED_STATE = 0: host KVM has no nested state support")
        XCTAssertEqual(
            NestedStateViolation.runPendingWithoutGuestMode.description,
            "error: RUN_PENDING is set without GUEST_MODE")
        XCTAssertEqual(NestedStateViolation.gifSetOnVMX.severity, .warning)
        XCTAssertEqual(NestedStateViolation.vmcs12BadRevision(3).name, "vmcs12BadRevision")
        for c in Self.cases {
            for v in c.expected {
                XCTAssertFalse(v.message.isEmpty)
                XCTAssertTrue(v.kernelReference.contains("(") || v.kernelReference.hasPrefix("no kernel check"), v.name)
            }
        }
        XCTAssertTrue(NestedStateViolation.eferUnknown.message.contains("SREGS"))
        XCTAssertTrue(NestedStateViolation.svmDisabledInEFER(.guestMode).message.contains("SREGS"))
        let ids = NestedStateValidator.rules.map(\.id)
        XCTAssertEqual(Set(ids).count, ids.count)
    }
}
