// The README's example (KVMTesting section), verbatim below the imports.
import KVMTesting
import Testing

@Suite struct SquareTests {
    // Booted once to stage 1 and snapshotted there; each case resets to it.
    static let square = SharedGuestMachine(.square, snapshotAtStage: 1)

    @Test(arguments: 0..<1000 as Range<UInt64>)
    func square(x: UInt64) throws {
        let run = try Self.square.run { checkpoint in
            if checkpoint.stage == 1 { try checkpoint.reply(x) } // also: checkpoint.vcpu, .memory
        }
        #expect(run.facts["square"] == x * x)
    }
}
