import XCTest

@testable import KVMCore

/// vmx_set_nested_state() decides whether a vmcs12 (and a shadow_vmcs12) is
/// present from `size` against sizeof(struct vmcs12), the packed 998-byte struct
/// it copies, not the 4 KiB page KVM_GET_NESTED_STATE writes. Measured on
/// kvm_intel (Debian 6.1) in Tools/vmx-lab: a GUEST_MODE state of size 128+998
/// is accepted, 128+997 refused.
final class NestedValidatorStructSizeTests: XCTestCase {
    let ctx = NestedValidatorTests.vmxContext
    let header = NestedState.headerSize, page = VMCS12.pageSize, vmcs12 = VMCS12.structSize

    func guestMode(size: Int) -> NestedState {
        var state = try! NestedState(bytes: NestedBlob.vmxGuestMode())
        state.size = UInt32(size)
        return state
    }

    func testVMCS12PresentFromStructSize() {
        XCTAssertEqual(
            NestedStateValidator.validate(guestMode(size: header + vmcs12), context: ctx)
                .filter { $0.name == "vmcs12Missing" }, [],
            "the kernel reads sizeof(struct vmcs12) = 998 bytes, not the page")
        XCTAssertEqual(
            NestedStateValidator.validate(guestMode(size: header + vmcs12 - 1), context: ctx),
            [.vmcs12Missing(size: UInt32(header + vmcs12 - 1))])
    }

    func testVMCS12RulesApplyToAStructSizedVMCS12() {
        var state = guestMode(size: header + vmcs12)
        state.flags = []
        XCTAssertEqual(NestedStateValidator.validate(state, context: ctx), [])
        state.editVMCS12 { $0.revisionID = 0 }
        XCTAssertEqual(NestedStateValidator.validate(state, context: ctx), [.vmcs12BadRevision(0)])
    }

    func testShadowVMCS12PresentFromStructSize() {
        // The blob's vmcs12 shadows with a link pointer: the shadow page is read too.
        XCTAssertEqual(NestedStateValidator.validate(guestMode(size: header + page + vmcs12), context: ctx), [])
        XCTAssertEqual(
            NestedStateValidator.validate(guestMode(size: header + page + vmcs12 - 1), context: ctx),
            [.shadowVMCS12Missing(size: UInt32(header + page + vmcs12 - 1))])
    }

    func testMessagesNameTheKernelsSize() {
        XCTAssertTrue(NestedStateViolation.vmcs12Missing(size: 128).message.contains("needs \(header + vmcs12)"))
        XCTAssertTrue(
            NestedStateViolation.shadowVMCS12Missing(size: 4224).message.contains("needs \(header + page + vmcs12)"))
    }
}
