import ArgumentParser
import Glibc
import KVMCore

/// `kvmrun nested-state`: dump a running guest's nested state (when it asks, at
/// exit, on SIGUSR1), decode a saved state, or compare two.
struct NestedStateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nested-state",
        abstract: "Dump, decode and compare KVM nested state (KVM_GET_NESTED_STATE).",
        discussion: """
            Running a guest (nesting on by default), the vCPU's nested state is dumped when the guest \
            asks (HC_DUMP_NESTED, Docs/PROTOCOL.md), when it stops, and on SIGUSR1. --json prints one \
            JSON object per dump (JSON Lines, schema Docs/nested-state-schema.md).
            """
    )

    @OptionGroup var options: GuestOptions

    @Option(help: ArgumentHelp("Decode a saved nested-state file instead of running a guest.", valueName: "file"))
    var decode: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Compare two saved nested-state files.", valueName: "a b"))
    var diff: [String] = []

    @Option(
        help: ArgumentHelp(
            "Save each dump's raw bytes in this directory (vcpu0-1-request.nstate, …).", valueName: "dir"))
    var save: String?

    @Flag(help: "JSON instead of text.")
    var json = false

    @Flag(help: "Include the whole state as hex (raw_hex) in JSON.")
    var raw = false

    func run() throws {
        if let path = decode { return try decodeFile(path) }
        if !diff.isEmpty { return try diffFiles() }
        try runAndDump()
    }

    // MARK: Running

    private func runAndDump() throws {
        var options = self.options
        if options.nested == nil { options.nested = "on" }
        let session = try Session()
        let machine = try options.makeMachine()
        try session.attach(machine)
        let deadline = RunDeadline(try options.timeLimit())
        var count = 0
        while true {
            let stop = try machine.run(timeout: deadline.remaining)
            switch stop {
            case .nestedDumpRequested:
                count += 1
                try dump(machine.vcpu, trigger: "request", index: count)
                continue
            case .sync:
                continue
            case .stopped where session.dumpRequested.take():
                count += 1
                try dump(machine.vcpu, trigger: "signal", index: count)
                continue
            default:
                if case .stopped = stop, let interruption = session.interruption { throw interruption }
                count += 1
                try dump(machine.vcpu, trigger: "exit", index: count)
                try finishRun(stop, timeout: options.timeout)
                return
            }
        }
    }

    private func dump(_ vcpu: VCPU, trigger: String, index: Int) throws {
        let bytes: [UInt8]
        do {
            bytes = try vcpu.nestedStateBytes()
        } catch let error as KVMError {
            throw CLIError(.nestingUnavailable, "\(error)")
        }
        if let directory = save {
            try Files.writeAtomically(bytes, to: "\(directory)/vcpu\(vcpu.id)-\(index)-\(trigger).nstate")
        }
        let state: NestedState
        do {
            state = try NestedState(bytes: bytes)
        } catch {
            throw CLIError(.kvmFailure, "KVM_GET_NESTED_STATE returned a state kvmrun cannot decode: \(error)")
        }
        if json {
            let record: JSONValue = .object([
                ("vcpu", .int(Int64(vcpu.id))), ("dump", .int(Int64(index))), ("trigger", .string(trigger)),
                ("state", state.json(includeRaw: raw)),
            ])
            out(record.compact)
        } else {
            out("# vcpu\(vcpu.id) dump \(index) (\(trigger))\n\(state.textDump())")
        }
    }

    // MARK: Files

    private func load(_ path: String) throws -> NestedState {
        let bytes: [UInt8]
        do {
            bytes = try Files.read(path, limit: 1 << 20)
        } catch let error as FileTooLarge {
            throw CLIError(.badStateFile, "\(error): not a nested-state file")
        } catch {
            throw CLIError(.unreadableFile, "\(error)")
        }
        do {
            return try NestedState(bytes: bytes)
        } catch {
            throw CLIError(.badStateFile, "\(path): \(error)")
        }
    }

    private func decodeFile(_ path: String) throws {
        let state = try load(path)
        out(json ? state.json(includeRaw: raw).pretty : state.textDump())
    }

    private func diffFiles() throws {
        guard diff.count == 2 else { throw CLIError(.usage, "--diff takes two files, got \(diff.count)") }
        let a = try load(diff[0])
        let b = try load(diff[1])
        let difference = NestedState.diff(a, b)
        if json {
            out(difference.json.pretty)
        } else {
            out(difference.description)
        }
    }
}
