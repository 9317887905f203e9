import Glibc
import KVMCore
import KVMTesting
import Testing

/// The Swift Testing entry points.
@Suite struct SwiftTestingEntryPoints {
    @Test func stagesAndReply() throws {
        let run = try runGuest(.tkStages) { checkpoint in
            if checkpoint.stage == 1 { try checkpoint.reply(9) }
        }
        #expect(run.passed)
        #expect(run.facts["square"] == 81)
    }

    static let square = SharedGuestMachine(.tkStages, snapshotAtStage: 1)

    @Test(arguments: [0, 2, 5, 11, 1 << 20] as [UInt64])
    func squaresOnAResetMachine(x: UInt64) throws {
        let run = try Self.square.run { if $0.stage == 1 { try $0.reply(x) } }
        #expect(run.facts["square"] == x &* x)
        #expect(run.facts.all("square").count == 1)
    }
}

@Test(
    .enabled(
        if: getenv("KVMTESTING_DEMO_FAILURES") != nil, "set KVMTESTING_DEMO_FAILURES=1 to see a guest failure reported")
)
func demoFailureAtTheGuestLine() throws {
    try runGuest(.tkAssert)
}
