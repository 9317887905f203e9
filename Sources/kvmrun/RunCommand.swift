import ArgumentParser
import Glibc
import Guests
import KVMCore

/// `kvmrun [run] GUEST`: boot a flat binary or static ELF and run it to its end.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a guest (the default subcommand).",
        discussion: "Exit statuses:\n" + ExitStatus.allCases
            .map { "  \($0.rawValue)\t\($0.meaning)" }.joined(separator: "\n")
            + "\n  odd\tisa-debug-exit: the guest wrote v to port 0xf4, status (v << 1) | 1"
    )

    @Argument(help: "A flat binary or static ELF32/ELF64. Without one, the built-in guest 'hello-c' runs.")
    var guest: String?

    @Option(help: ArgumentHelp("Run a guest built into kvmrun instead of a file.", valueName: "name"))
    var builtin: String?

    @Flag(help: "List the built-in guests.")
    var listBuiltins = false

    @Option(help: "CPU mode for a flat binary: real, protected, paged or long.")
    var mode: String = "real"

    @Option(help: ArgumentHelp("Load address of a flat binary (default 0x10000 in real mode, else 0x100000).", valueName: "addr"))
    var load: String?

    @Option(help: ArgumentHelp("Entry address of a flat binary (default: the load address).", valueName: "addr"))
    var entry: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Guest RAM: a number of MiB, or with a K/M/G suffix.", valueName: "size"))
    var memory: String = "64M"

    @Option(help: ArgumentHelp("Stop the guest after this long (e.g. 5, 500ms, 2s).", valueName: "duration"))
    var timeout: String?

    @Option(help: ArgumentHelp("Let the guest run a hypervisor: --nested (only where the host can nest), --nested=force (set VMX/SVM anyway), --nested=off.", valueName: "on|force|off"))
    var nested: String = "off"

    @Flag(help: "Print one line per VM exit on stderr.")
    var trace = false

    @Flag(help: "Print exits by reason and time in guest vs in the VMM on stderr.")
    var stats = false

    mutating func run() throws {
        if listBuiltins {
            for image in GuestImage.all { print("\(pad(image.name, 16)) \(image.summary)") }
            return
        }
        let options = try parsedOptions()
        let image = try bootImage(options)
        let machine: Machine
        do {
            machine = try Machine(memorySize: options.memory, serial: .fileDescriptor(1), kvm: try openKVM())
        } catch let error as ConfigurationError {
            throw CLIError(.usage, "-m \(memory): \(error)")
        }
        machine.vcpu.statistics.measureTime = stats
        try enableNesting(options.nesting, on: machine)
        do {
            try machine.load(image)
        } catch let error as GuestImageError {
            throw CLIError(.badImage, "\(guestName): \(error)")
        }
        var stop: StopReason
        repeat {
            stop = try machine.run(timeout: options.timeout, trace: trace ? traceExit : nil)
        } while resumes(after: stop)
        if stats { printStatistics(machine) }
        try finish(stop)
    }

    private var guestName: String { guest ?? builtin ?? "hello-c" }

    // MARK: Options

    private struct Options {
        var mode: CPUMode
        var load: UInt64?
        var entry: UInt64?
        var memory: UInt64
        var timeout: Duration?
        var nesting: NestingPolicy
    }

    private func parsedOptions() throws -> Options {
        guard let mode = CPUMode(rawValue: mode) else {
            throw CLIError(.usage, "--mode \(self.mode): expected real, protected, paged or long")
        }
        func address(_ text: String?, _ flag: String) throws -> UInt64? {
            guard let text else { return nil }
            guard let value = Parse.address(text) else { throw CLIError(.usage, "\(flag) \(text): not an address") }
            return value
        }
        guard let memory = Parse.size(memory) else {
            throw CLIError(.usage, "-m \(self.memory): not a size (use a number of MiB, or 512K, 64M, 2G)")
        }
        var timeout: Duration?
        if let text = self.timeout {
            guard let value = Parse.duration(text) else { throw CLIError(.usage, "--timeout \(text): not a duration") }
            timeout = value
        }
        guard let nesting = NestingPolicy(rawValue: nested) else {
            throw CLIError(.usage, "--nested=\(nested): expected on, force or off")
        }
        return Options(mode: mode, load: try address(load, "--load"), entry: try address(entry, "--entry"),
                       memory: memory, timeout: timeout, nesting: nesting)
    }

    // MARK: The guest

    private func bootImage(_ options: Options) throws -> BootImage {
        if guest != nil && builtin != nil { throw CLIError(.usage, "give a guest file or --builtin, not both") }
        if let path = guest {
            let bytes: [UInt8]
            do {
                bytes = try Files.read(path, limit: options.memory)
            } catch let error as FileTooLarge {
                throw CLIError(.badImage, "\(path): the guest (\(error.size) bytes) is larger than guest memory (\(options.memory) bytes)")
            } catch {
                throw CLIError(.unreadableFile, "\(error)")
            }
            do {
                if ELFImage.isELF(bytes) { return try ELFImage.parse(bytes) }
                let load = options.load ?? (options.mode == .real ? 0x10000 : 0x10_0000)
                return try .flat(bytes, mode: options.mode, load: load, entry: options.entry)
            } catch {
                throw CLIError(.badImage, "\(path): \(error)")
            }
        }
        let name = builtin ?? "hello-c"
        guard let image = GuestImage.named(name) else {
            throw CLIError(.usage, "--builtin \(name): no such built-in guest (see --list-builtins)")
        }
        do {
            switch image.format {
            case .elf: return try ELFImage.parse(image.bytes)
            case .flat(let mode, let load, let entry):
                return try .flat(image.bytes, mode: CPUMode(rawValue: mode.rawValue)!, load: load, entry: entry)
            }
        } catch {
            throw CLIError(.badImage, "built-in \(name): \(error)")
        }
    }

    // MARK: The end of a run

    /// Hostcall requests a plain run serves by resuming the guest.
    private func resumes(after stop: StopReason) -> Bool {
        switch stop {
        case .sync: return true
        case .nestedDumpRequested:
            eprint("kvmrun: the guest asked for a nested-state dump; `kvmrun nested-state` serves it")
            return true
        case .snapshotRequested:
            eprint("kvmrun: the guest asked for a snapshot; `kvmrun run` does not take snapshots")
            return true
        default: return false
        }
    }

    private func finish(_ stop: StopReason) throws {
        switch stop {
        case .halted, .done(status: 0):
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
        case .systemEvent(let type, _):
            throw CLIError(.entryFailure, "unexpected system event \(type)")
        case .debug(let trap):
            throw CLIError(.entryFailure, "unexpected debug exit at \(hex(trap.pc))")
        case .unhandled(let exit):
            throw CLIError(.entryFailure, "unhandled exit KVM_EXIT_\(exit.name)")
        case .sync, .nestedDumpRequested, .snapshotRequested:
            return
        }
    }
}

/// `--nested`: refuse with the report's reason where the host cannot nest; warn under force.
func enableNesting(_ policy: NestingPolicy, on machine: Machine) throws {
    do {
        for warning in try machine.vcpu.enableNesting(policy) { eprint("kvmrun: warning: \(warning)") }
    } catch let error as NestingUnavailable {
        throw CLIError(.nestingUnavailable, "--nested: \(error.report.summary) (kvmrun host says more; --nested=force sets the bits anyway)")
    }
}

func openKVM() throws -> KVM {
    do {
        return try KVM()
    } catch {
        throw CLIError(.kvmUnavailable, "\(error)")
    }
}

func eprint(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
}

func pad(_ s: String, _ width: Int) -> String {
    s + String(repeating: " ", count: max(0, width - s.count))
}
