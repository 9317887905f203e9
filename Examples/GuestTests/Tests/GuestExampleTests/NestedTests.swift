import KVMCore
import KVMTesting
import Testing
import XCTest

/// A guest hypervisor runs an L2; the host inspects the nested state while L2
/// runs. Where the host cannot nest (kvm_pvm, nested=0, a VM without VMX/SVM…)
/// the test is skipped with the nesting report's reason: it never passes
/// without having run an L2.
final class NestedTests: XCTestCase {
    func testHostSeesL2RunningUnderTheGuestHypervisor() throws {
        let report = try KVM().nestingReport()
        var dumps = 0
        var stages: [UInt64] = []
        // Skips with `report.summary` where the host cannot nest.
        let run = try runGuest(.l1Hypervisor, options: GuestOptions(timeout: .seconds(30), nested: true)) {
            checkpoint in
            switch checkpoint.reason {
            case .nestedDump:
                dumps += 1
                let state = try checkpoint.vcpu.nestedState()
                XCTAssertTrue(state.flags.contains(.guestMode), "L2 is running: KVM_STATE_NESTED_GUEST_MODE")
                switch (state.payload, report.technology) {
                case (.vmx, .vmx?), (.svm, .svm?): break
                default: XCTFail("nested state \(state.format) on a \(String(describing: report.technology)) host")
                }
            case .sync(let stage):
                stages.append(stage)
                if stage == 3 { XCTAssertEqual(checkpoint.facts["l2_entered"], 1) }
            case .snapshot:
                break
            }
        }
        XCTAssertTrue(run.passed)
        XCTAssertEqual(dumps, 1)
        XCTAssertEqual(stages, [1, 3, 4])
        XCTAssertEqual(run.facts["l2_rax"], 0x1234_5678)
    }

    /// The skip is the nesting report's own words (checked where it applies).
    func testWithoutNestingTheReasonIsTheReports() throws {
        let report = try KVM().nestingReport()
        guard !report.isAvailable else { throw XCTSkip("this host can nest (\(report.summary))") }
        XCTAssertThrowsError(try makeGuestMachine(.l1Hypervisor, options: GuestOptions(nested: true))) { error in
            XCTAssertEqual((error as? XCTSkip)?.message, report.summary)
        }
    }
}

/// The same in Swift Testing: where the host cannot nest the test is cancelled
/// (shown as skipped) with the nesting report's reason.
@Test func l2RunsUnderTheGuestHypervisor() throws {
    var dumped = false
    let run = try runGuest(.l1Hypervisor, options: GuestOptions(timeout: .seconds(30), nested: true)) { checkpoint in
        if checkpoint.reason == .nestedDump {
            dumped = try checkpoint.vcpu.nestedState().flags.contains(.guestMode)
        }
    }
    #expect(dumped, "nested state showed L2 running (guest mode)")
    #expect(run.facts["l2_rax"] == 0x1234_5678)
}
