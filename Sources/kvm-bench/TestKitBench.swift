import Glibc
import Guests
import KVMCore
import KVMTestingCore

// 6. The test kit (KVMTesting / KVMTestingCore): one test case, as a user's test
//    runs it — a guest that reports a fact, does HC_SYNC 1 and 2 (answered by a
//    checkpoint handler) and HC_DONE 0, through GuestMachine.run, facts read back.
//    Two guests: testkit-case (C, guests/ here, built by the plugin as a user's
//    guests are; 4 exits) and Guests' hostcall (asm; the same plus 58 bytes of
//    polled serial output, about 120 exits), to show what a case's exits cost.
//    - fresh: GuestMachine(image) (a VM, RAM, vCPU, devices, the image loaded)
//      + run, the machine dropped (VM closed) inside the timing;
//    - reset: the same case on one GuestMachine snapshotted before the first
//      instruction, each run starting with reset(to:) (dirty pages only);
//    - reset (parts): reset() alone, and the run after it alone.
// Targets: <= 2 ms fresh, <= 100 µs reset. Median of --testkit-runs cases
// (default 500 fresh, 2000 reset) after 20 warm-ups.

struct TestKitBench {
    var guest = ""
    var freshUs: [Double] = []
    var resetUs: [Double] = []
    var resetOnlyUs: [Double] = []
    var runOnlyUs: [Double] = []
    /// The same case without the kit: Machine.reset(to:) + Machine.run until HC_DONE.
    var rawUs: [Double] = []
    var rawNoTimeoutUs: [Double] = []
    /// KVMCore alone, each Machine.run after a reset timed apart: start → first stop, → second, → third.
    var segmentUs: [[Double]] = [[], [], []]
    static let freshTargetUs = 2000.0
    static let resetTargetUs = 100.0
}

/// One case: run `guest` to its end answering its checkpoints; fails loudly if it did not pass.
private func testCase(_ guest: GuestMachine) throws {
    var stages = 0
    let run = guest.run { _ in stages += 1 }
    guard run.passed, stages == 2, run.facts["answer"] == 42 else {
        throw BenchError("test kit case: \(run.failure?.description ?? "stages \(stages), facts \(run.facts)")")
    }
}

private func microseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = monotonicNow()
    try body()
    return Double(monotonicNow() - start) / 1000
}

func runTestKitBench(freshRuns: Int = 300, resetRuns: Int = 2000) throws -> [TestKitBench] {
    try [GuestImage.testkitCase, GuestImage.hostcall].map {
        try runTestKitBench($0, freshRuns: freshRuns, resetRuns: resetRuns)
    }
}

func runTestKitBench(_ image: GuestImage, freshRuns: Int, resetRuns: Int) throws -> TestKitBench {
    var b = TestKitBench(guest: image.name)
    let kvm = try KVM()
    progress("test kit, \(image.name): fresh machine per case")
    for i in 0..<(freshRuns + 20) {
        let us = try microseconds { try testCase(GuestMachine(image, kvm: kvm)) }
        if i >= 20 { b.freshUs.append(us) }
    }
    progress(", reset per case")
    let guest = try GuestMachine(image, kvm: kvm)
    try guest.snapshot()
    for i in 0..<(resetRuns + 20) {
        let us = try microseconds { try testCase(guest) } // run resets first
        if i >= 20 { b.resetUs.append(us) }
    }
    progress(", reset and run apart")
    for i in 0..<(resetRuns + 20) {
        let r = try microseconds { try guest.reset() }
        let u = try microseconds { try testCase(guest) }
        if i >= 20 {
            b.resetOnlyUs.append(r)
            b.runOnlyUs.append(u)
        }
    }
    progress(", KVMCore alone")
    for _ in 0..<resetRuns {
        try guest.machine.reset(to: guest.baseline!.snapshot)
        var k = 0
        while true {
            var stop = StopReason.halted
            let us = try microseconds { stop = try guest.machine.run(timeout: .seconds(10)) }
            if k < 3 { b.segmentUs[k].append(us) }
            k += 1
            if case .sync = stop { continue }
            break
        }
    }
    let machine = guest.machine
    let snapshot = guest.baseline!.snapshot
    for timeout in [true, false] {
        for i in 0..<(resetRuns + 20) {
            let us = try microseconds {
                try machine.reset(to: snapshot)
                while true {
                    let stop = try machine.run(timeout: timeout ? .seconds(10) : nil)
                    if case .sync = stop { continue }
                    guard case .done(status: 0) = stop else { throw BenchError("hostcall guest: \(stop)") }
                    break
                }
            }
            if i >= 20 { if timeout { b.rawUs.append(us) } else { b.rawNoTimeoutUs.append(us) } }
        }
    }
    progress("\n")
    return b
}

func testKitTargets(_ all: [TestKitBench]) -> [Target] {
    let b = all[0]
    return [
        Target(
            name: "test kit case, fresh machine", measured: median(b.freshUs), limit: TestKitBench.freshTargetUs,
            unit: "µs"),
        Target(
            name: "test kit case, reset machine", measured: median(b.resetUs), limit: TestKitBench.resetTargetUs,
            unit: "µs"),
    ]
}

func printTestKitTable(_ all: [TestKitBench]) {
    print("6. Test kit: one test case (a fact, 2 checkpoints answered, HC_DONE 0) through GuestMachine.run, 64 MiB")
    for b in all { printTestKitRows(b) }
    print("   A case costs a reset (the dirty logs read, the written pages copied back, the vCPU state) plus")
    print("   its exits, each hostcall a round trip to user space (a bare port exit is about 10 µs on kvm_pvm,")
    print("   section 1); the first run after a reset also takes the write faults on the pages the reset")
    print("   write-protected. The kit adds little over KVMCore alone; the run timeout (a POSIX timer per")
    print("   Machine.run) a few µs. hostcall's polled serial output is about 120 exits. Targets: testkit-case.")
    print("")
}

func printTestKitRows(_ b: TestKitBench) {
    func row(_ name: String, _ us: [Double], _ target: Double?) {
        let m = median(us)
        var line =
            "   \(name + String(repeating: " ", count: max(0, 34 - name.count))) median \(fmt(m, 1)) µs  (p10 \(fmt(percentile(us, 0.1), 1)), p90 \(fmt(percentile(us, 0.9), 1)); \(us.count) cases)"
        if let target {
            line +=
                "  target <= \(fmt(target, 0)) µs: \(fmt(m / target, 2))x of target " + (m <= target ? "PASS" : "MISS")
        }
        print(line)
    }
    print("   \(b.guest):")
    row("fresh machine (make + run + close)", b.freshUs, TestKitBench.freshTargetUs)
    row("reset machine (reset + run)", b.resetUs, TestKitBench.resetTargetUs)
    row("  of which reset(to:)", b.resetOnlyUs, nil)
    row("  of which the run", b.runOnlyUs, nil)
    row("KVMCore alone: reset + run loop", b.rawUs, nil)
    row("  the same, no run timeout", b.rawNoTimeoutUs, nil)
    print(
        "     each Machine.run after a reset (start → 1st stop, → 2nd, → 3rd): "
            + b.segmentUs.map { "\(fmt(median($0), 1)) µs" }.joined(separator: ", "))
    print("")
}

func testKitJSON(_ all: [TestKitBench]) -> String {
    "  \"test_kit\": [" + all.map(testKitJSON).joined(separator: ", ") + "]"
}

func testKitJSON(_ b: TestKitBench) -> String {
    """
    {"guest": \(jsonString(b.guest)), \
    "fresh_us": {"median": \(jsonNumber(median(b.freshUs), 1)), "cases": \(b.freshUs.count), "target": \(TestKitBench.freshTargetUs)}, \
    "reset_us": {"median": \(jsonNumber(median(b.resetUs), 1)), "cases": \(b.resetUs.count), "target": \(TestKitBench.resetTargetUs)}, \
    "reset_only_us": {"median": \(jsonNumber(median(b.resetOnlyUs), 1))}, "run_only_us": {"median": \(jsonNumber(median(b.runOnlyUs), 1))}}
    """
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let s = values.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * p))]
}
