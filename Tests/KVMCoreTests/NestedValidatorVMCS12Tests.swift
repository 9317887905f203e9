import XCTest

@testable import KVMCore

/// The VM-entry checks vmx_set_nested_state() runs on a GUEST_MODE vmcs12
/// (nested_vmx_check_controls/_host_state/_guest_state) whose verdict is the same for
/// every L1, and the SVM save-area bits reserved on every kernel. kvm_intel 6.1 in
/// Tools/vmx-lab refuses CR3_TARGET_COUNT 5, HOST_CR4 without VMXE and GUEST_CR0
/// without PG (ValidatorCasesVMX.swift); the nested lab's kvm_amd refuses L1 EFER bit
/// 9 and CR4 bit 40 (ValidatorCasesSVM.swift).
final class NestedValidatorVMCS12Tests: XCTestCase {
    let vmxContext = NestedValidatorTests.vmxContext
    let svmContext = NestedValidatorTests.svmContext

    func vmx(_ edit: (inout VMCS12) -> Void = { _ in }) -> NestedState {
        var state = try! NestedState(bytes: NestedBlob.vmxGuestMode())
        state.editVMCS12(edit)
        return state
    }

    func svm(_ edit: (inout VMCB) -> Void = { _ in }) -> NestedState {
        var state = try! NestedState(bytes: NestedBlob.svmGuestMode())
        state.editVMCB(edit)
        return state
    }

    func vmxViolations(_ state: NestedState) -> [NestedStateViolation] {
        NestedStateValidator.validate(state, context: vmxContext)
    }

    func testTheBlobsPass() {
        XCTAssertEqual(vmxViolations(vmx()), [])
        XCTAssertEqual(NestedStateValidator.validate(svm(), context: svmContext), [])
    }

    func testCR3TargetCount() {
        // KVM's IA32_VMX_MISC for L1 reports no CR3-target values: any count is refused.
        XCTAssertEqual(vmxViolations(vmx { $0.put(764, 4, 5) }), [.vmcs12CR3TargetCount(5)])
        XCTAssertEqual(vmxViolations(vmx { $0.put(764, 4, 1) }), [.vmcs12CR3TargetCount(1)])
    }

    func testHostCR0NeedsPEPGNE() {
        for bit in [ControlRegister.pe, ControlRegister.pg, ControlRegister.ne] {
            XCTAssertEqual(vmxViolations(vmx { $0.hostCR0 &= ~bit }), [.vmcs12HostCR0Invalid(0x8000_0031 & ~bit)])
        }
    }

    func testHostCR4NeedsVMXE() {
        XCTAssertEqual(vmxViolations(vmx { $0.hostCR4 = 0x20 }), [.vmcs12HostCR4Invalid(0x20)])
    }

    func testGuestCR0NeedsPGAndPEUnlessUnrestricted() {
        XCTAssertEqual(vmxViolations(vmx { $0.guestCR0 = 0x31 }), [.vmcs12GuestCR0Invalid(0x31)])
        XCTAssertEqual(vmxViolations(vmx { $0.guestCR0 = 0x8000_0030 }), [.vmcs12GuestCR0Invalid(0x8000_0030)])
        // Unrestricted guest (secondary bit 7) lets L2 run unpaged or in real mode...
        let unrestricted: (inout VMCS12) -> Void = { $0.secondaryProcBasedControls |= 0x80 }
        XCTAssertEqual(
            vmxViolations(
                vmx {
                    unrestricted(&$0)
                    $0.guestCR0 = 0x30
                }), [])
        // ...but not without NE, and only when the secondary controls are active.
        XCTAssertEqual(
            vmxViolations(
                vmx {
                    unrestricted(&$0)
                    $0.guestCR0 = 0x11
                }), [.vmcs12GuestCR0Invalid(0x11)])
        XCTAssertEqual(
            vmxViolations(
                vmx {
                    unrestricted(&$0)
                    $0.primaryProcBasedControls = 0x80
                    $0.vmcsLinkPointer = NestedState.invalidGPA
                    $0.guestCR0 = 0x30
                }),
            [.vmcs12GuestCR0Invalid(0x30)])
    }

    func testGuestCR4NeedsVMXE() {
        XCTAssertEqual(vmxViolations(vmx { $0.guestCR4 = 0x20 }), [.vmcs12GuestCR4Invalid(0x20)])
    }

    func testEntryChecksOnlyInGuestMode() {
        // Out of guest mode vmx_set_nested_state() returns before the entry checks.
        var state = vmx {
            $0.put(764, 4, 5)
            $0.hostCR0 = 0
            $0.hostCR4 = 0
            $0.guestCR0 = 0
            $0.guestCR4 = 0
        }
        XCTAssertEqual(
            vmxViolations(state).map(\.name),
            [
                "vmcs12CR3TargetCount", "vmcs12HostCR0Invalid", "vmcs12HostCR4Invalid",
                "vmcs12GuestCR0Invalid", "vmcs12GuestCR4Invalid",
            ])
        state.flags = []
        XCTAssertEqual(vmxViolations(state), [])
    }

    func testL1EFERReservedBits() {
        XCTAssertEqual(
            NestedStateValidator.validate(svm { $0.save.efer |= 1 << 9 }, context: svmContext),
            [.l1EFERReserved(0x1d00 | 1 << 9)])
        // AUTOIBRS (bit 21) is the guest CPUID's to allow, not a reserved bit everywhere.
        XCTAssertEqual(NestedStateValidator.validate(svm { $0.save.efer |= 1 << 21 }, context: svmContext), [])
    }

    func testL1CR4ReservedBits() {
        XCTAssertEqual(
            NestedStateValidator.validate(svm { $0.save.cr4 |= 1 << 40 }, context: svmContext),
            [.l1CR4Reserved(0x20 | 1 << 40)])
        // Bit 32 is FRED's, allowed when the guest has it.
        XCTAssertEqual(NestedStateValidator.validate(svm { $0.save.cr4 |= 1 << 32 }, context: svmContext), [])
    }

    func testMessagesAndReferences() {
        let violations: [NestedStateViolation] = [
            .vmcs12CR3TargetCount(5), .vmcs12HostCR0Invalid(0), .vmcs12HostCR4Invalid(0),
            .vmcs12GuestCR0Invalid(0), .vmcs12GuestCR4Invalid(0), .l1EFERReserved(1 << 9), .l1CR4Reserved(1 << 40),
        ]
        for v in violations {
            XCTAssertEqual(v.severity, .error)
            XCTAssertFalse(v.message.contains("\n"), v.name)
            XCTAssertTrue(v.kernelReference.hasPrefix("arch/x86/kvm/"), v.name)
        }
        XCTAssertTrue(NestedStateViolation.vmcs12CR3TargetCount(5).message.contains("CR3_TARGET_COUNT is 5"))
        XCTAssertTrue(NestedStateViolation.l1EFERReserved(0x1d00 | 1 << 9).message.contains("(0x200)"))
        XCTAssertTrue(
            NestedStateViolation.vmcs12HostCR4Invalid(0).kernelReference.contains("nested_vmx_check_host_state()"))
        XCTAssertTrue(
            NestedStateViolation.vmcs12GuestCR0Invalid(0).kernelReference.contains("nested_vmx_check_guest_state()"))
        XCTAssertTrue(
            NestedStateViolation.vmcs12CR3TargetCount(1).kernelReference.contains("nested_vmx_check_controls("))
        let ids = NestedStateValidator.rules.map(\.id)
        XCTAssertEqual(Set(ids).count, ids.count)
        for id in [
            "vmcs12-cr3-target-count", "vmcs12-host-cr0", "vmcs12-host-cr4", "vmcs12-guest-cr0",
            "vmcs12-guest-cr4", "l1-efer-reserved", "l1-cr4-reserved",
        ] {
            XCTAssertTrue(ids.contains(id), id)
        }
    }
}
