import ArgumentParser
import Glibc
import Guests
import KVMCore

/// `kvmrun [run] GUEST`: boot a flat binary or static ELF and run it to its end.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a guest (the default subcommand).",
        discussion: "Exit statuses:\n"
            + ExitStatus.allCases
            .map { "  \($0.rawValue)\t\($0.meaning)" }.joined(separator: "\n")
            + "\n  odd\tisa-debug-exit: the guest wrote v to port 0xf4, status (v << 1) | 1"
    )

    @OptionGroup var options: GuestOptions

    @Flag(help: "List the built-in guests.")
    var listBuiltins = false

    @OptionGroup var report: ReportOptions

    @OptionGroup(title: "Snapshots")
    var snapshots: SnapshotOptions

    func run() throws {
        if listBuiltins {
            for image in GuestImage.all { print("\(pad(image.name, 16)) \(image.summary)") }
            return
        }
        try snapshots.check()
        let session = try Session()
        let machine = try options.makeMachine()
        try runToEnd(machine, session: session, snapshots: snapshots, report: report, timeout: options.timeout)
    }
}

/// A line on stderr, unbuffered.
func eprint(_ text: String) { writeLine(text, to: 2) }

/// A line on stdout, unbuffered, so it keeps its place among the guest's serial output.
func out(_ text: String) { writeLine(text, to: 1) }

private func writeLine(_ text: String, to fd: Int32) {
    var bytes = Array((text + "\n").utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
        if n <= 0 { return }
        done += n
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s + String(repeating: " ", count: max(0, width - s.count))
}
