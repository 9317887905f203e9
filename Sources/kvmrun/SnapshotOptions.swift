import ArgumentParser
import Glibc
import KVMCore

/// When a run takes snapshots (Docs/snapshot-format.md): when the guest asks
/// (HC_SNAPSHOT), on SIGUSR1, or after a number of exits. Each is written
/// atomically; `kvmrun restore FILE` continues it in another process.
struct SnapshotOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "When the guest asks (HC_SNAPSHOT with tag t), write DIR/snapshot-t.kvmsnap.", valueName: "dir"))
    var snapshotDir: String?

    @Option(
        help: ArgumentHelp(
            "At most N distinct guest-requested snapshots in the --snapshot-dir DIR (a guest choosing tags may not fill the disk).",
            valueName: "n"))
    var snapshotLimit: Int = 64

    @Option(help: ArgumentHelp("On SIGUSR1, write a snapshot to FILE (each signal overwrites it).", valueName: "file"))
    var snapshotOnSignal: String?

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "After N exits of vCPU 0 (not counting signal interruptions), write a snapshot to FILE.",
            valueName: "n file"))
    var snapshotAtExit: [String] = []

    /// The options, checked before the run starts.
    func check() throws {
        guard snapshotLimit >= 1 else {
            throw CLIError(.usage, "--snapshot-limit \(snapshotLimit): expected at least 1")
        }
        _ = try atExit()
    }

    /// `--snapshot-at-exit N FILE`, checked.
    func atExit() throws -> (count: Int, path: String)? {
        guard !snapshotAtExit.isEmpty else { return nil }
        guard snapshotAtExit.count == 2, let n = Int(snapshotAtExit[0]), n >= 1 else {
            throw CLIError(
                .usage,
                "--snapshot-at-exit \(snapshotAtExit.joined(separator: " ")): expected a number of exits (at least 1) and a file"
            )
        }
        return (n, snapshotAtExit[1])
    }
}

/// Runs `machine` until a stop that ends the run, serving the hostcall requests
/// that resume (HC_SYNC, HC_SNAPSHOT, nested-state dumps) and the snapshots
/// `options` ask for. Returns the final stop.
func runServingSnapshots(
    _ machine: Machine, session: Session, options: SnapshotOptions,
    timeout: Duration?, trace: Bool
) throws -> StopReason {
    let atExit = try options.atExit()
    let exitSnapshotDue = AtomicFlag()
    var tracer: (@Sendable (VCPU, VMExit) -> Void)? = nil
    if trace { tracer = traceExit }
    if let atExit {
        let exits = AtomicCounter() // vCPU 0's; the tracer runs on every vCPU's thread
        tracer = { vcpu, exit in
            if trace { traceExit(vcpu, exit) }
            guard vcpu.id == 0 else { return }
            if case .interrupted = exit { return }
            exits.add(1)
            if exits.value == atExit.count {
                exitSnapshotDue.raise()
                vcpu.stop()
            }
        }
    }
    let deadline = RunDeadline(timeout)
    var guestTags: Set<UInt64> = [] // the files the guest's HC_SNAPSHOT calls made
    var noted: Set<String> = [] // each note once: a guest may ask thousands of times
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
            guard let directory = options.snapshotDir else {
                note("snapshot", "kvmrun: the guest asked for snapshot \(tag); --snapshot-dir DIR takes it")
                continue
            }
            guard guestTags.contains(tag) || guestTags.count < options.snapshotLimit else {
                note(
                    "limit",
                    "kvmrun: the guest asked for more than \(options.snapshotLimit) distinct snapshots; from tag \(tag) on, new tags are not written (--snapshot-limit N)"
                )
                continue
            }
            let path = "\(directory)/snapshot-\(tag).kvmsnap"
            if try writeSnapshot(of: machine, to: path, why: "HC_SNAPSHOT \(tag)", keepingFree: 0.05) {
                guestTags.insert(tag)
            } else {
                note(
                    "space",
                    "kvmrun: HC_SNAPSHOT \(tag): not written, \(path) would leave less than 5% of its filesystem free")
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

/// Takes a snapshot and writes it: failures are one-line errors with their
/// status. With `keepingFree`, a snapshot that would leave less than that share
/// of its filesystem free is not written (false): a guest's requests may not
/// fill the disk.
@discardableResult
private func writeSnapshot(of machine: Machine, to path: String, why: String, keepingFree reserve: Double = 0) throws
    -> Bool
{
    do {
        let snapshot = try machine.snapshot()
        if reserve > 0, let space = FileSystemSpace(path) {
            let needed = UInt64(snapshot.storedPages) * GuestMemory.pageSize + (1 << 20)
            guard space.available >= needed + UInt64(Double(space.total) * reserve) else { return false }
        }
        try snapshot.write(to: path)
    } catch let error as FileError {
        throw CLIError(.unreadableFile, "snapshot at \(why): \(error)")
    } catch let error as SnapshotError {
        throw CLIError(.badStateFile, "snapshot at \(why): \(error)")
    }
    eprint("kvmrun: snapshot at \(why) written to \(path)")
    return true
}

/// Bytes free to unprivileged users and the size of the filesystem holding a path.
struct FileSystemSpace {
    let available: UInt64
    let total: UInt64

    init?(_ path: String) {
        var info = statvfs()
        guard statvfs(Files.directory(of: path), &info) == 0 else { return nil }
        available = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        total = UInt64(info.f_blocks) * UInt64(info.f_frsize)
    }
}
