import KVMTesting
import Testing

/// One guest, many inputs: the guest boots once to stage 1 (where it waits for
/// its input), is snapshotted there, and every case resets to that snapshot —
/// only the pages the last case wrote are copied back.
@Suite struct CollatzTests {
    static let guest = SharedGuestMachine(.collatz, snapshotAtStage: 1)

    @Test(arguments: Array(1...200) + [27, 97, 871, 77_031, 837_799] as [UInt64])
    func stepsMatchTheHost(n: UInt64) throws {
        let run = try Self.guest.run { checkpoint in
            if checkpoint.stage == 1 { try checkpoint.reply(n) }
        }
        let expected = collatz(n)
        #expect(run.facts["steps"] == expected.steps)
        #expect(run.facts["peak"] == expected.peak)
    }

    /// A zero input trips the guest's GUEST_ASSERT(n != 0): the failure names
    /// guests/src/collatz.c and its line (here checked rather than recorded).
    @Test func zeroIsRefusedAtTheGuestLine() throws {
        let machine = try guestMachine(.collatz)
        try machine.snapshot(atStage: 1)
        let run = machine.run { if $0.stage == 1 { try $0.reply(0) } }
        let failure = try #require(run.failure)
        #expect(failure.kind == .assertion)
        #expect(failure.filePath?.hasSuffix("guests/src/collatz.c") == true)
        #expect(failure.line == 7)
        #expect(failure.message == "assertion failed: n != 0")
    }

    func collatz(_ start: UInt64) -> (steps: UInt64, peak: UInt64) {
        var n = start
        var steps: UInt64 = 0
        var peak = start
        while n != 1 {
            n = n & 1 == 1 ? 3 * n + 1 : n / 2
            peak = max(peak, n)
            steps += 1
        }
        return (steps, peak)
    }
}
