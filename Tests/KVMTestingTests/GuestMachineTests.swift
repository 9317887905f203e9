import KVMCore
import KVMTesting
import XCTest

/// The test kit on real guests (guests/, built by the GuestBuilder plugin as a
/// user's package builds them): stages and replies, typed facts, fast reset,
/// and each kind of failure with what it reports.
final class GuestMachineTests: XCTestCase {
    func testFailingAssertNamesTheGuestFileLineAndValues() throws {
        let run = try makeGuestMachine(.tkAssert).run()
        let failure = try XCTUnwrap(run.failure, "tk-assert passed")
        XCTAssertEqual(failure.kind, .assertion)
        XCTAssertTrue(
            failure.filePath?.hasSuffix("/KVMTestingTests/guests/src/tk-assert.c") == true,
            "\(failure.filePath ?? "nil")")
        XCTAssertEqual(failure.line, 5)
        XCTAssertEqual(failure.message, "assertion failed: 7 == 8 (0x7 vs 0x8)")
        XCTAssertTrue(failure.description.hasPrefix("tk-assert.c:5: assertion failed: 7 == 8"), failure.description)
        XCTAssertTrue(failure.description.contains("facts: before=0x1"), failure.description)
        // The protocol level: HC_FAIL's message is unchanged, the file rides after its NUL.
        guard case .failed(let guestFailure)? = run.stop else { return XCTFail("stop \(String(describing: run.stop))") }
        XCTAssertEqual(guestFailure.message, "assertion failed: 7 == 8")
        XCTAssertEqual(guestFailure.line, 5)
        XCTAssertEqual(guestFailure.file, failure.filePath)
        // Swift Testing's location for the same failure.
        let location = try XCTUnwrap(failure.sourceLocation)
        XCTAssertEqual(location.line, 5)
        XCTAssertEqual(location.fileName, "tk-assert.c")
        XCTAssertEqual(location.filePath, failure.filePath)
    }

    func testCheckpointsReplyAndFactsAreTyped() throws {
        var stages: [UInt64] = []
        let run = try runGuest(.tkStages) { checkpoint in
            stages.append(checkpoint.stage ?? 99)
            if checkpoint.stage == 1 {
                XCTAssertEqual(checkpoint.facts["answer"], 42)
                XCTAssertEqual(checkpoint.serial, "tk-stages: start\n")
                try checkpoint.reply(12)
            }
            if checkpoint.stage == 2 {
                XCTAssertEqual(checkpoint.facts["square"], 144)
                let regs = try checkpoint.vcpu.registers()
                XCTAssertGreaterThanOrEqual(regs.rip, 0x100000)
            }
        }
        XCTAssertNil(run.failure)
        XCTAssertEqual(stages, [1, 2])
        XCTAssertEqual(run.facts["square"], 144)
        XCTAssertEqual(run.facts["minus_one", as: Int32.self], -1)
        XCTAssertEqual(run.facts["minus_one", as: UInt8.self], 255)
        XCTAssertEqual(run.facts.bool("answer"), true)
        XCTAssertEqual(run.facts.keys, ["answer", "minus_one", "square"])
        XCTAssertEqual(run.serial, "tk-stages: start\ntk-stages: done\n")
        guard case .done(status: 0)? = run.stop else { return XCTFail("stop \(String(describing: run.stop))") }
    }

    func testWithoutAReplySyncStageValueReturnsTheStage() throws {
        let run = try runGuest(.tkStages)
        XCTAssertEqual(run.facts["square"], 1)
    }

    func testResetRunsEachCaseFromTheSnapshot() throws {
        let guest = try makeGuestMachine(.tkStages)
        try guest.snapshot(atStage: 1)
        for x: UInt64 in [3, 0, 1_000_000, 7, 3] {
            var seen: [UInt64] = []
            let run = guest.run { checkpoint in
                seen.append(checkpoint.stage ?? 99)
                if checkpoint.stage == 1 { try checkpoint.reply(x) }
            }
            XCTAssertNil(run.failure, "x=\(x)")
            XCTAssertEqual(seen, [1, 2], "the snapshot's stage comes first")
            XCTAssertEqual(run.facts["square"], x * x)
            XCTAssertEqual(run.facts.all("square"), [x * x], "facts of earlier cases do not leak")
            XCTAssertEqual(run.facts["answer"], 42, "facts from before the snapshot belong to every case")
            XCTAssertEqual(run.serial, "tk-stages: start\ntk-stages: done\n")
        }
    }

    func testExceptionFailsWithItsVectorUnlessExpected() throws {
        let run = try makeGuestMachine(.tkFault).run()
        let failure = try XCTUnwrap(run.failure)
        XCTAssertEqual(failure.kind, .exception)
        XCTAssertTrue(failure.message.hasPrefix("guest exception #UD (vector 6) at rip=0x"), failure.message)
        XCTAssertNil(failure.filePath)
        let expected = try makeGuestMachine(.tkFault, options: GuestOptions(exceptionsFail: false)).run()
        XCTAssertNil(expected.failure)
        XCTAssertEqual(expected.facts["exception"], 6)
    }

    func testTripleFaultShowsRegisters() throws {
        let failure = try XCTUnwrap(try makeGuestMachine(.tkTriple).run().failure)
        XCTAssertEqual(failure.kind, .tripleFault)
        XCTAssertTrue(failure.message.hasPrefix("guest triple-faulted (KVM_EXIT_SHUTDOWN) at rip="), failure.message)
        XCTAssertTrue(failure.details.contains { $0.hasPrefix("rip=") }, "\(failure.details)")
        XCTAssertTrue(failure.details.contains { $0.hasPrefix("cr0=") }, "\(failure.details)")
    }

    func testTimeoutShowsWhereTheGuestWas() throws {
        let run = try makeGuestMachine(.tkSpin, options: GuestOptions(timeout: .milliseconds(200))).run()
        let failure = try XCTUnwrap(run.failure)
        XCTAssertEqual(failure.kind, .timedOut)
        XCTAssertTrue(failure.message.contains("guest ran past 0.2 seconds at rip=0x"), failure.message)
        XCTAssertTrue(failure.details.contains { $0.hasPrefix("rip=") }, "\(failure.details)")
    }

    func testThrowingCheckpointEndsTheRunAsAHostError() throws {
        struct Refused: Error, CustomStringConvertible { var description: String { "refused by the test" } }
        let run = try makeGuestMachine(.tkStages).run { _ in throw Refused() }
        XCTAssertEqual(run.failure?.kind, .hostError)
        XCTAssertEqual(run.failure?.message, "refused by the test")
        XCTAssertNil(run.stop)
    }

    func testSnapshotAtAStageTheGuestNeverReachesThrows() throws {
        let guest = try makeGuestMachine(.tkAssert)
        XCTAssertThrowsError(try guest.snapshot(atStage: 1)) { error in
            XCTAssertEqual((error as? GuestTestFailure)?.kind, .assertion)
        }
    }
}

/// What a failing guest looks like in a test log: run with
/// KVMTESTING_DEMO_FAILURES=1 to see XCTest and Swift Testing report tk-assert's
/// GUEST_ASSERT_EQ at guests/src/tk-assert.c:5 (both tests then fail, as they should).
final class FailureDemoTests: XCTestCase {
    func testDemoFailureAtTheGuestLine() throws {
        guard getenv("KVMTESTING_DEMO_FAILURES") != nil else {
            throw XCTSkip("set KVMTESTING_DEMO_FAILURES=1 to see a guest failure reported")
        }
        try runGuest(.tkAssert)
    }
}
