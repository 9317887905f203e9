import KVMCore

/// Test 'l2-fast-reset': fast reset of a machine whose guest runs a guest of
/// its own. L2 Linux, on a nested vCPU as `kvmrun --nested` gives it, runs
/// kvmrun's spin guest as L3 for 8 s of its time (Tools/nested-lab/l2-nested
/// spin 8). A snapshot is taken 2 s into L3's run, with the vCPU in guest mode
/// (L3's state in the vCPU, L2's kvm_amd holding its VMCB in guest memory); the
/// run goes on to its end. Then `reset(to:)` that snapshot, twice: each time L3
/// must run to the same end (`L3-DONE status 16`), the console from the
/// snapshot on must be the uninterrupted run's (printk timestamps aside), and
/// L2 must power off.
func checkL2FastReset(kernel: String, initrd: String) throws {
    let name = "l2-fast-reset"
    var t0 = secondsNow()
    let machine = try linuxPC(
        kernel: kernel, initrd: initrd, memorySize: 512 << 20, nested: true,
        commandLine: "console=ttyS0 quiet -- /l2-nested spin 8")
    try runUntil(machine, seconds: 600) { $0.contains("spinning") }
    info(name, "L2 booted, its kvmrun started L3 (spinning) in \(twoDecimals(secondsNow() - t0)) s (L1 time)")

    // 2 s into L3's run, then the first slice end that finds the vCPU in L3.
    guard case .timedOut = try machine.run(timeout: .seconds(2)) else {
        throw LabFailure("L2 stopped within 2 s of L3's start; last: \(machine.serial.text.suffix(200))")
    }
    var tries = 0
    while try !machine.vcpu.nestedState().flags.contains(.guestMode) {
        tries += 1
        guard tries < 20, case .timedOut = try machine.run(timeout: .milliseconds(100)) else {
            throw LabFailure("L2's vCPU never stopped in guest mode (L3) while L3 spun")
        }
    }
    t0 = secondsNow()
    let snapshot = try machine.snapshot()
    let flags = try snapshot.vcpus[0].nestedState.map { try NestedState(bytes: $0).flags }
    info(
        name,
        "snapshot with L3 running in \(twoDecimals((secondsNow() - t0) * 1000)) ms: nested flags \(flags.map { "\($0)" } ?? "none"), \(snapshot.storedPages) pages"
    )

    // Each run from the snapshot: L2's console from there on, and how it stopped.
    func finish() throws -> (console: String, stop: StopReason) {
        let mark = machine.serial.output.count
        let stop = try runToStop(machine, seconds: 600)
        return (String(decoding: machine.serial.output[mark...], as: UTF8.self), stop)
    }
    func check(_ run: String, _ result: (console: String, stop: StopReason)) throws {
        guard case .systemEvent(type: SystemEvent.shutdown, _) = result.stop else {
            throw LabFailure(
                "\(run): L2 stopped with \(result.stop), not power off; last: \(result.console.suffix(200))")
        }
        guard result.console.contains("L3-DONE status 16") else {
            throw LabFailure("\(run): no 'L3-DONE status 16' from L2; its console: \(result.console.suffix(300))")
        }
    }
    t0 = secondsNow()
    let uninterrupted = try finish()
    try check("the uninterrupted run", uninterrupted)
    info(
        name,
        "uninterrupted: L3 done and L2 off \(twoDecimals(secondsNow() - t0)) s after the snapshot; console from the snapshot on: \(lines(uninterrupted.console))"
    )

    var resets: [String] = []
    for n in 1...2 {
        t0 = secondsNow()
        try machine.reset(to: snapshot)
        let reset = secondsNow() - t0
        let run = try finish()
        try check("reset \(n)", run)
        guard withoutTimestamps(run.console) == withoutTimestamps(uninterrupted.console) else {
            throw LabFailure(
                "reset \(n): L2's console from the snapshot on differs from the uninterrupted run's: \(lines(run.console)) vs \(lines(uninterrupted.console))"
            )
        }
        resets.append("\(twoDecimals(reset * 1000)) ms (then \(twoDecimals(secondsNow() - t0 - reset)) s to power off)")
    }
    info(name, "reset(to:) of L2 with L3 running: \(resets.joined(separator: ", ")) (L1 time)")
}

/// Console text as one line: its lines joined with " | ".
private func lines(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).joined(separator: " | ")
}

/// The console without the kernel's printk timestamps ("[   53.979695] "):
/// a run from a snapshot prints the same lines, at other microseconds.
private func withoutTimestamps(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { line in
        guard line.hasPrefix("["), let end = line.firstIndex(of: "]"),
            line[line.index(after: line.startIndex)..<end].allSatisfy({ $0 == " " || $0 == "." || $0.isNumber })
        else {
            return String(line)
        }
        return String(line[line.index(after: end)...])
    }.joined(separator: "\n")
}
