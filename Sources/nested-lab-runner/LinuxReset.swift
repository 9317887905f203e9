import Glibc
import KVMCore

/// Test 'linux-reset': the "boot once, reset per test" use of an embedded
/// KVMCore. Boots Linux (`Machine.pc` + `bootLinux`) to its busybox shell,
/// snapshots it there, then runs three cases, each after `reset(to:)` back to
/// the booted shell: a case types a command that lists and then creates
/// /tmp/case-N. A case that sees another case's file was not reset.
func checkLinuxReset(kernel: String, initrd: String) throws {
    let name = "linux-reset"
    let machine = try linuxPC(
        kernel: kernel, initrd: initrd, memorySize: 256 << 20, nested: false,
        commandLine: "console=ttyS0 quiet kvmrun.shell=1")
    var t0 = secondsNow()
    // The prompt after SHELL-START: the shell reads the console from here on.
    try runUntil(machine, seconds: 600) { text in
        guard let start = text.firstRange(of: "SHELL-START") else { return false }
        return text[start.upperBound...].contains("# ")
    }
    info(name, "booted to the shell in \(twoDecimals(secondsNow() - t0)) s (L1 time)")
    let booted = try machine.snapshot()
    var resets: [Double] = []
    for n in 1...3 {
        t0 = secondsNow()
        try machine.reset(to: booted)
        resets.append(secondsNow() - t0)
        let start = machine.serial.output.count
        machine.serial.receive(Array("ls /tmp; touch /tmp/case-\(n); echo case-$((\(n) * 10))-done\n".utf8))
        try runUntil(machine, seconds: 120) {
            $0.contains("case-\(n * 10)-done\r\n") || $0.contains("case-\(n * 10)-done\n")
        }
        let reply = String(decoding: machine.serial.output[start...], as: UTF8.self)
        if let other = (1...3).first(where: {
            reply.contains("case-\($0)\r") || reply.contains("case-\($0)\n") || reply.contains("case-\($0) ")
        }) {
            throw LabFailure(
                "case \(n) sees /tmp/case-\(other) from an earlier case: the reset did not put the booted state back (reply: \(reply.split(separator: "\n").prefix(3).joined(separator: " | ")))"
            )
        }
    }
    info(
        name,
        "reset(to:) of the booted Linux: \(resets.map { twoDecimals($0 * 1000) }.joined(separator: ", ")) ms (L1 time)")
}

/// A one-vCPU PC with dirty-page logging (for `reset(to:)`) that boots
/// `kernel` with `initrd`; with `nested`, its vCPU can run a hypervisor
/// (`enableNesting(.on)`, as `kvmrun --nested`).
func linuxPC(kernel: String, initrd: String, memorySize: UInt64, nested: Bool, commandLine: String) throws -> Machine {
    let machine = try Machine.pc(memorySize: memorySize, cpus: 1, serial: .buffer, logDirtyPages: true)
    if nested { try machine.vcpu.enableNesting(.on) }
    try machine.bootLinux(
        kernel: try Files.read(kernel, limit: 64 << 20), initrd: try Files.read(initrd, limit: 64 << 20),
        commandLine: commandLine)
    return machine
}

/// Runs `machine` in one-second slices until its serial output satisfies `done`.
func runUntil(_ machine: Machine, seconds: Int, _ done: (String) -> Bool) throws {
    for _ in 0..<seconds {
        let stop = try machine.run(timeout: .seconds(1))
        if done(machine.serial.text) { return }
        guard case .timedOut = stop else {
            throw LabFailure(
                "the guest stopped (\(stop)) before the expected output; last: \(machine.serial.text.suffix(200))")
        }
    }
    throw LabFailure("no expected output after \(seconds) s; last: \(machine.serial.text.suffix(200))")
}

/// Runs `machine` in one-second slices until it stops for a reason other than
/// the slice's end (power off, a fault…), and returns that reason.
func runToStop(_ machine: Machine, seconds: Int) throws -> StopReason {
    for _ in 0..<seconds {
        let stop = try machine.run(timeout: .seconds(1))
        guard case .timedOut = stop else { return stop }
    }
    throw LabFailure("the guest still ran after \(seconds) s; last: \(machine.serial.text.suffix(200))")
}

func secondsNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func twoDecimals(_ v: Double) -> String {
    let hundredths = Int((v * 100).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
}
