import ArgumentParser
import KVMCore

/// `kvmrun restore FILE`: continue a guest from a snapshot in this process, with
/// the same serial output (what the guest writes from then on) and exit status
/// as the run it was taken from.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Continue a guest from a snapshot file (Docs/snapshot-format.md).",
        discussion: """
            The machine is rebuilt as the snapshot describes it (memory, vCPUs, irqchip, devices) and \
            runs on from where the snapshot was taken: serial output and the exit status are those of \
            the original run from that point. A snapshot that is truncated, corrupt, of another format \
            version or for another host (CPU vendor, a KVM capability it needs) is refused with status \
            \(ExitStatus.badStateFile.rawValue) and the reason.
            """
    )

    @Argument(help: ArgumentHelp("The snapshot file.", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("Stop the guest after this long (e.g. 5, 500ms, 2s).", valueName: "duration"))
    var timeout: String?

    @OptionGroup var report: ReportOptions

    @OptionGroup(title: "Snapshots")
    var snapshots: SnapshotOptions

    func run() throws {
        _ = try parseTimeout(timeout)
        try snapshots.check()
        let session = try Session()
        let machine: Machine
        do {
            let snapshot = try Snapshot(contentsOf: file)
            machine = try Machine(restoring: snapshot, serial: .fileDescriptor(1), kvm: try openKVM())
        } catch let error as SnapshotError {
            throw CLIError(.badStateFile, "\(error)")
        } catch let error as FileError {
            throw CLIError(.unreadableFile, "\(error)")
        }
        try runToEnd(machine, session: session, snapshots: snapshots, report: report, timeout: timeout)
    }
}
