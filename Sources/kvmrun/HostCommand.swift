import ArgumentParser
import KVMCore

/// `kvmrun host`: can this host nest, and if not, exactly why and how to fix it.
struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Report the host's KVM and whether it can run nested guests.",
        discussion: "Exits 0 when nested virtualization is available, 20 when it is not."
    )

    @Flag(help: "Print the report as JSON (schema: Docs/host-report-schema.md).")
    var json = false

    @Option(help: ArgumentHelp("Gather what a nested bug report needs into this directory.", valueName: "dir"))
    var bugReport: String?

    func run() throws {
        let report = NestingReport(facts: .gather())
        print(json ? report.json.pretty : report.text)
        if let directory = bugReport {
            let written = try BugReport(directory: directory, report: report).write()
            eprint("kvmrun: bug report written to \(directory) (\(written.count) files)")
        }
        if !report.isAvailable { throw ExitCode(ExitStatus.nestingUnavailable.rawValue) }
    }
}
