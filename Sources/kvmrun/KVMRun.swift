import ArgumentParser
import Glibc
import KVMCore

@main
struct KVMRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvmrun",
        abstract: "Run x86 guests on /dev/kvm: no QEMU, no BIOS.",
        discussion: """
            Serial output (COM1) goes to stdout; the guest's exit becomes kvmrun's status. \
            See `kvmrun help run` for the statuses.
            """,
        version: "0.1.0",
        subcommands: [
            RunCommand.self, ProbeCommand.self, HostCommand.self, NestedStateCommand.self,
            RestoreCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )

    /// Parses, runs, and turns every failure into one line on stderr and a distinct
    /// status: never a trap or a backtrace.
    static func main() {
        do {
            var command = try parseAsRoot(normalizedArguments())
            try command.run()
        } catch let error as CLIError {
            fail(error.status, error.message)
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch let error as KVMError {
            fail(.kvmFailure, "\(error)")
        } catch let error as GuestImageError {
            fail(.badImage, "\(error)")
        } catch let error as FileError {
            fail(.unreadableFile, "\(error)")
        } catch let error as SnapshotError {
            fail(.badStateFile, "\(error)")
        } catch let error as ConfigurationError {
            fail(.usage, "\(error)")
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            fail(.usage, message(for: error) + " (see 'kvmrun --help')")
        }
    }

    /// Accepts `--nested` alone as `--nested=on` (ArgumentParser has no optional values).
    static func normalizedArguments() -> [String] {
        CommandLine.arguments.dropFirst().map { $0 == "--nested" ? "--nested=on" : $0 }
    }

    static func fail(_ status: ExitStatus, _ message: String) -> Never {
        let line = "kvmrun: " + message.split(separator: "\n").joined(separator: "; ") + "\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        Glibc.exit(status.rawValue)
    }
}
