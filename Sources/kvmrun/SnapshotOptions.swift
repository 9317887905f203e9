import ArgumentParser
import Glibc
import KVMCore

/// When a run takes snapshots (Docs/snapshot-format.md): when the guest asks
/// (HC_SNAPSHOT), on SIGUSR1, or after a number of exits. Each is written
/// atomically; `kvmrun restore FILE` continues it in another process.
struct SnapshotOptions: ParsableArguments {
    @Option(help: ArgumentHelp("When the guest asks (HC_SNAPSHOT with tag t), write DIR/snapshot-t.kvmsnap.", valueName: "dir"))
    var snapshotDir: String?

    @Option(help: ArgumentHelp("On SIGUSR1, write a snapshot to FILE (each signal overwrites it).", valueName: "file"))
    var snapshotOnSignal: String?

    @Option(parsing: .upToNextOption,
            help: ArgumentHelp("After N exits of vCPU 0 (not counting signal interruptions), write a snapshot to FILE.", valueName: "n file"))
    var snapshotAtExit: [String] = []

    /// `--snapshot-at-exit N FILE`, checked.
    func atExit() throws -> (count: Int, path: String)? {
        guard !snapshotAtExit.isEmpty else { return nil }
        guard snapshotAtExit.count == 2, let n = Int(snapshotAtExit[0]), n >= 1 else {
            throw CLIError(.usage, "--snapshot-at-exit \(snapshotAtExit.joined(separator: " ")): expected a number of exits (at least 1) and a file")
        }
        return (n, snapshotAtExit[1])
    }
}

/// Runs `machine` until a stop that ends the run, serving the hostcall requests
/// that resume (HC_SYNC, HC_SNAPSHOT, nested-state dumps) and the snapshots
/// `options` ask for. Returns the final stop.
func runServingSnapshots(_ machine: Machine, session: Session, options: SnapshotOptions,
                         timeout: Duration?, trace: Bool) throws -> StopReason {
    let atExit = try options.atExit()
    let exitSnapshotDue = AtomicFlag()
    var tracer: ((VCPU, VMExit) -> Void)? = trace ? traceExit : nil
    if let atExit {
        var exits = 0
        tracer = { vcpu, exit in
            if trace { traceExit(vcpu, exit) }
            guard vcpu.id == 0 else { return }
            if case .interrupted = exit { return }
            exits += 1
            if exits == atExit.count {
                exitSnapshotDue.raise()
                vcpu.stop()
            }
        }
    }
    let deadline = RunDeadline(timeout)
    var noted: Set<String> = []        // each note once: a guest may ask thousands of times
    func note(_ key: String, _ text: String) {
        if noted.insert(key).inserted { eprint(text) }
    }
    while true {
        let stop = try machine.run(timeout: deadline.remaining, trace: tracer)
        switch stop {
        case .sync:
            continue
        case .nestedDumpRequested:
            note("dump", "kvmrun: the guest asked for a nested-state dump; `kvmrun nested-state` serves it")
            continue
        case .snapshotRequested(let tag):
            if let directory = options.snapshotDir {
                try writeSnapshot(of: machine, to: "\(directory)/snapshot-\(tag).kvmsnap", why: "HC_SNAPSHOT \(tag)")
            } else {
                note("snapshot", "kvmrun: the guest asked for snapshot \(tag); --snapshot-dir DIR takes it")
            }
            continue
        case .stopped where exitSnapshotDue.isRaised || session.dumpRequested.isRaised:
            if exitSnapshotDue.take(), let atExit {
                try writeSnapshot(of: machine, to: atExit.path, why: "exit \(atExit.count)")
            }
            if session.dumpRequested.take() {
                if let path = options.snapshotOnSignal {
                    try writeSnapshot(of: machine, to: path, why: "SIGUSR1")
                } else {
                    note("sigusr1", "kvmrun: SIGUSR1: no --snapshot-on-signal FILE, the run goes on")
                }
            }
            continue
        default:
            return stop
        }
    }
}

/// Takes a snapshot and writes it: failures are one-line errors with their status.
private func writeSnapshot(of machine: Machine, to path: String, why: String) throws {
    do {
        try machine.snapshot().write(to: path)
    } catch let error as FileError {
        throw CLIError(.unreadableFile, "snapshot at \(why): \(error)")
    } catch let error as SnapshotError {
        throw CLIError(.badStateFile, "snapshot at \(why): \(error)")
    }
    eprint("kvmrun: snapshot at \(why) written to \(path)")
}
