import KVMCore
import KVMTesting
import XCTest

/// GuestTestFailure(stop:…): what every entry point reports, without a guest.
final class FailureDescriptionTests: XCTestCase {
    private let none = GuestFacts([])

    func testPassingStops() {
        XCTAssertNil(GuestTestFailure(stop: .done(status: 0), facts: none, serial: ""))
        XCTAssertNil(GuestTestFailure(stop: .halted, facts: none, serial: ""))
        XCTAssertNil(
            GuestTestFailure(
                stop: .debugExit(code: 0x10), facts: none, serial: "",
                options: GuestOptions(passingDebugExit: 0x10)))
    }

    func testAssertionWithAFileIsReportedThere() throws {
        let stop = StopReason.failed(
            GuestFailure(
                message: "assertion failed: a == b", line: 17, values: (1, 2),
                file: "/pkg/Tests/T/guests/src/x.c"))
        let failure = try XCTUnwrap(
            GuestTestFailure(stop: stop, facts: GuestFacts([.init(key: "k", value: 3)]), serial: "hi\n"))
        XCTAssertEqual(failure.kind, .assertion)
        XCTAssertEqual(failure.filePath, "/pkg/Tests/T/guests/src/x.c")
        XCTAssertEqual(failure.line, 17)
        XCTAssertEqual(
            failure.description,
            """
            x.c:17: assertion failed: a == b (0x1 vs 0x2)
            serial (last lines):
            hi

            facts: k=0x3
            """)
        XCTAssertEqual(failure.sourceLocation?.line, 17)
    }

    func testAssertionWithoutAFileNamesTheLine() throws {
        let stop = StopReason.failed(GuestFailure(message: "expected failure", line: 7, values: (1, 2)))
        let failure = try XCTUnwrap(GuestTestFailure(stop: stop, facts: none, serial: ""))
        XCTAssertNil(failure.filePath)
        XCTAssertNil(failure.line)
        XCTAssertNil(failure.sourceLocation)
        XCTAssertEqual(failure.message, "guest line 7: expected failure (0x1 vs 0x2)")
    }

    func testOtherStops() throws {
        XCTAssertEqual(
            GuestTestFailure(stop: .done(status: 3), facts: none, serial: "")?.message,
            "guest ended with HC_DONE 3 (0x3)")
        XCTAssertEqual(GuestTestFailure(stop: .debugExit(code: 0x10), facts: none, serial: "")?.kind, .debugExit)
        XCTAssertEqual(
            GuestTestFailure(stop: .halted, facts: none, serial: "", options: GuestOptions(haltPasses: false))?.kind,
            .unexpectedStop)
        XCTAssertEqual(
            GuestTestFailure(stop: .protocolError("bad magic"), facts: none, serial: "")?.message,
            "guest broke the hostcall protocol: bad magic")
        let exception = GuestFacts([
            .init(key: "exception", value: 13), .init(key: "exception_rip", value: 0x100234),
            .init(key: "exception_error", value: 0), .init(key: "exception_level", value: 2),
        ])
        XCTAssertEqual(
            GuestTestFailure(stop: .done(status: 0), facts: exception, serial: "")?.message,
            "guest exception #GP (vector 13) at rip=0x100234, error code 0x0, in L2")
        let regs = Registers()
        let timedOut = GuestTestFailure(stop: .timedOut(rip: 0x1234), facts: none, serial: "", registers: { regs })
        XCTAssertEqual(timedOut?.kind, .timedOut)
        XCTAssertEqual(timedOut?.details.first, "rip=0x0 rsp=0x0 rflags=0x0")
    }

    func testFactsReadTyped() {
        let facts = GuestFacts([
            .init(key: "a", value: 1), .init(key: "n", value: UInt64.max), .init(key: "a", value: 2),
        ])
        XCTAssertEqual(facts["a"], 2)
        XCTAssertEqual(facts.all("a"), [1, 2])
        XCTAssertEqual(facts["n", as: Int64.self], -1)
        XCTAssertEqual(facts["n", as: UInt16.self], 0xFFFF)
        XCTAssertNil(facts["missing"])
        XCTAssertEqual(facts.bool("a"), true)
        XCTAssertEqual(facts.keys, ["a", "n"])
    }
}
