import ArgumentParser
import KVMCore

/// `--timeout DURATION`, checked: a usage error when it is not a duration.
func parseTimeout(_ text: String?) throws -> Duration? {
    guard let text else { return nil }
    guard let value = Parse.duration(text) else { throw CLIError(.usage, "--timeout \(text): not a duration") }
    return value
}

/// What `kvmrun` and `kvmrun restore` print about a run besides the guest's output.
struct ReportOptions: ParsableArguments {
    @Flag(help: "Print one line per VM exit on stderr.")
    var trace = false

    @Flag(help: "Print exits by reason and time in guest vs in the VMM on stderr.")
    var stats = false
}

/// The rest of a `kvmrun` or `kvmrun restore` run once its machine is built:
/// signals and stdin served by `session`, snapshots taken, exits traced and
/// counted as `report` asks, and the last stop turned into kvmrun's exit.
func runToEnd(
    _ machine: Machine, session: Session, snapshots: SnapshotOptions, report: ReportOptions,
    timeout: String?
) throws {
    try session.attach(machine)
    machine.vcpu.statistics.measureTime = report.stats
    let stop = try runServingSnapshots(
        machine, session: session, options: snapshots,
        timeout: try parseTimeout(timeout), trace: report.trace)
    if report.stats { printStatistics(machine) }
    if case .stopped = stop, let interruption = session.interruption { throw interruption }
    try finishRun(stop, timeout: timeout)
}

/// How a run's last stop becomes kvmrun's exit: nothing for success, else an
/// `ExitCode` (guest-chosen statuses) or a `CLIError` (one line on stderr).
func finishRun(_ stop: StopReason, timeout: String?) throws {
    switch stop {
    case .halted, .done(status: 0), .sync, .nestedDumpRequested, .snapshotRequested:
        return
    case .debugExit(let code):
        throw ExitCode(DebugExit.exitStatus(for: code))
    case .done(let status):
        throw CLIError(.guestFailure, "guest reported HC_DONE with status \(status)")
    case .failed(let failure):
        throw CLIError(.guestFailure, failure.description)
    case .shutdown(let regs, let sregs):
        eprint("kvmrun: guest triple fault (KVM_EXIT_SHUTDOWN)\n\(regs.dump)\n\(sregs.summary)")
        throw ExitCode(ExitStatus.tripleFault.rawValue)
    case .timedOut(let rip):
        throw CLIError(.timeout, "guest still running after --timeout \(timeout ?? ""), stopped at rip=\(hex(rip))")
    case .failEntry(let reason):
        throw CLIError(.entryFailure, "VM entry failed (KVM_EXIT_FAIL_ENTRY), hardware reason \(hex(reason))")
    case .internalError(let error):
        throw CLIError(.entryFailure, "KVM_EXIT_INTERNAL_ERROR: \(error)")
    case .protocolError(let message):
        throw CLIError(.protocolError, message)
    case .stopped:
        throw CLIError(.interrupted, "stopped")
    case .systemEvent(type: SystemEvent.reset, _):
        // A reset request (port 0x92 bit 0, …) ends the run, as QEMU's -no-reboot does.
        eprint("kvmrun: the guest asked for a reset; the run ends (as QEMU with -no-reboot)")
        return
    case .systemEvent(type: SystemEvent.shutdown, _):
        // ACPI S5 (Linux's poweroff): QEMU exits with status 0.
        return
    case .systemEvent(type: ACPIPowerManagement.suspendEvent, _):
        // ACPI S3: QEMU stays suspended until a wake-up; kvmrun has none to give.
        throw CLIError(
            .suspended, "the guest suspended to RAM (ACPI S3); kvmrun has no wake-up source, so the run ends")
    case .systemEvent(let type, _):
        throw CLIError(.entryFailure, "unexpected system event \(type)")
    case .debug(let trap):
        throw CLIError(.entryFailure, "unexpected debug exit at \(hex(trap.pc))")
    case .unhandled(let exit):
        throw CLIError(.entryFailure, "unhandled exit KVM_EXIT_\(exit.name)")
    }
}
