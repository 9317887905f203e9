import ArgumentParser
import Guests
import KVMCore

/// The options that say what guest to run and on what machine; shared by the
/// subcommands that run guests. QEMU's options that take a value take any
/// string, one that begins with '-' too (`-append "-foo bar"`), as QEMU does.
struct GuestOptions: ParsableArguments {
    @Argument(
        help: "A multiboot kernel, static ELF32/ELF64 or flat binary. Without one, the built-in guest 'hello-c' runs.")
    var guest: String?

    @Option(
        name: [.customLong("kernel", withSingleDash: true), .customLong("kernel")],
        parsing: .unconditional,
        help: ArgumentHelp("The guest, as QEMU's -kernel names it.", valueName: "file"))
    var kernel: String?

    @Option(
        name: [.customLong("append", withSingleDash: true), .customLong("append")],
        parsing: .unconditional,
        help: ArgumentHelp("The kernel command line (multiboot).", valueName: "args"))
    var append: String?

    @Option(
        name: [.customLong("initrd", withSingleDash: true), .customLong("initrd")],
        parsing: .unconditional,
        help: ArgumentHelp(
            "Multiboot modules, QEMU's syntax: \"file1 args,file2\" (module 0 first).", valueName: "files"))
    var initrd: String?

    @Option(
        name: [.customLong("smp", withSingleDash: true), .customLong("smp")],
        parsing: .unconditional,
        help: ArgumentHelp(
            "vCPUs: N or cpus=N (more than one gives each its own thread and an in-kernel irqchip).", valueName: "n"))
    var smp: String?

    @OptionGroup(title: "QEMU compatibility (accepted so QEMU command lines run unchanged)")
    var qemu: QEMUOptions

    @Option(help: ArgumentHelp("Run a guest built into kvmrun instead of a file.", valueName: "name"))
    var builtin: String?

    @Option(help: "CPU mode for a flat binary: real, protected, paged or long.")
    var mode: String = "real"

    @Option(
        help: ArgumentHelp(
            "Load address of a flat binary (default 0x10000 in real mode, else 0x100000).", valueName: "addr"))
    var load: String?

    @Option(help: ArgumentHelp("Entry address of a flat binary (default: the load address).", valueName: "addr"))
    var entry: String?

    @Option(
        name: [.short, .long], parsing: .unconditional,
        help: ArgumentHelp("Guest RAM: a number of MiB, or with a K/M/G suffix.", valueName: "size"))
    var memory: String = "64M"

    @Option(help: ArgumentHelp("Stop the guest after this long (e.g. 5, 500ms, 2s).", valueName: "duration"))
    var timeout: String?

    @Option(
        help: ArgumentHelp(
            "Let the guest run a hypervisor: --nested (only where the host can nest), --nested=force (set VMX/SVM anyway), --nested=off.",
            valueName: "on|force|off"))
    var nested: String?

    var guestPath: String? { kernel ?? guest }
    var guestName: String { guestPath ?? builtin ?? "hello-c" }

    /// `-smp N` or `-smp cpus=N,…`.
    func vcpuCount() throws -> Int {
        guard let smp else { return 1 }
        let first = smp.split(separator: ",").first.map(String.init) ?? ""
        let value = first.hasPrefix("cpus=") ? String(first.dropFirst(5)) : first
        guard let n = Int(value), n >= 1 else {
            throw CLIError(.usage, "-smp \(smp): expected a number of vCPUs, at least 1")
        }
        return n
    }

    /// The run's time limit, if any.
    func timeLimit() throws -> Duration? { try parseTimeout(timeout) }

    /// Builds the machine, sets nesting up, and loads the guest: every failure is a
    /// CLIError with its own status.
    func makeMachine(serial: OutputSink = .fileDescriptor(1)) throws -> Machine {
        guard let cpuMode = CPUMode(rawValue: mode) else {
            throw CLIError(.usage, "--mode \(mode): expected real, protected, paged or long")
        }
        guard let memorySize = Parse.size(memory) else {
            throw CLIError(.usage, "-m \(memory): not a size (use a number of MiB, or 512K, 64M, 2G)")
        }
        guard let policy = NestingPolicy(rawValue: nested ?? "off") else {
            throw CLIError(.usage, "--nested=\(nested ?? ""): expected on, force or off")
        }
        do {
            try Machine.checkMemorySize(memorySize)
        } catch let error as ConfigurationError {
            throw CLIError(.usage, "-m \(memory): \(error)")
        }
        _ = try timeLimit()
        try qemu.check()
        let vcpus = try vcpuCount()
        if guest != nil && kernel != nil {
            throw CLIError(.usage, "give the guest once: as an argument or with -kernel")
        }
        if guestPath != nil && builtin != nil { throw CLIError(.usage, "give a guest file or --builtin, not both") }
        let file = try guestPath.map { (path: $0, bytes: try readGuest($0, memorySize: memorySize)) }
        if let file,
            let machine = try makePCMachine(
                path: file.path, bytes: file.bytes, memorySize: memorySize, vcpus: vcpus, serial: serial,
                nesting: policy)
        {
            return machine
        }
        if append != nil || initrd != nil {
            throw CLIError(.usage, "-append and -initrd are for Linux and multiboot kernels; \(guestName) is neither")
        }
        try qemu.refuseTestDevices(for: guestName)
        let loadAddress = try address(load, "--load")
        let entryAddress = try address(entry, "--entry")
        let image = try bootImage(file, mode: cpuMode, load: loadAddress, entry: entryAddress)
        let machine: Machine
        do {
            machine = try Machine(memorySize: memorySize, vcpus: vcpus, serial: serial, kvm: try openKVM())
        } catch let error as ConfigurationError {
            throw CLIError(.usage, "\(error)")
        }
        try setUpCPU(policy, on: machine)
        do {
            try machine.load(image)
        } catch let error as GuestImageError {
            throw CLIError(.badImage, "\(guestName): \(error)")
        }
        return machine
    }

    private func address(_ text: String?, _ flag: String) throws -> UInt64? {
        guard let text else { return nil }
        guard let value = Parse.address(text) else { throw CLIError(.usage, "\(flag) \(text): not an address") }
        return value
    }

    /// The guest file's bytes; a file larger than guest RAM cannot run, so it is not read.
    func readGuest(_ path: String, memorySize: UInt64) throws -> [UInt8] {
        try readFile(path, limit: memorySize, what: "\(path): the guest", unreadable: "")
    }

    /// A file for guest RAM: missing or unreadable is status 4, larger than
    /// `limit` (guest RAM) status 6 — `what` names it in that message,
    /// `unreadable` prefixes the other.
    func readFile(_ path: String, limit: UInt64, what: String, unreadable: String) throws -> [UInt8] {
        do {
            return try Files.read(path, limit: limit)
        } catch let error as FileTooLarge {
            throw CLIError(.badImage, "\(what) (\(error.size) bytes) is larger than guest memory (\(limit) bytes)")
        } catch {
            throw CLIError(.unreadableFile, "\(unreadable)\(error)")
        }
    }

    private func bootImage(_ file: (path: String, bytes: [UInt8])?, mode: CPUMode, load: UInt64?, entry: UInt64?) throws
        -> BootImage
    {
        if let (path, bytes) = file {
            do {
                if ELFImage.isELF(bytes) { return try ELFImage.parse(bytes) }
                return try .flat(bytes, mode: mode, load: load ?? (mode == .real ? 0x10000 : 0x10_0000), entry: entry)
            } catch {
                throw CLIError(.badImage, "\(path): \(error)")
            }
        }
        let name = builtin ?? "hello-c"
        guard let image = GuestImage.named(name) else {
            throw CLIError(.usage, "--builtin \(name): no such built-in guest (see --list-builtins)")
        }
        do {
            return try image.bootImage()
        } catch {
            throw CLIError(.badImage, "built-in \(name): \(error)")
        }
    }
}

extension GuestOptions {
    /// Every vCPU's CPUID as `-cpu` asks (usage errors for what KVM cannot
    /// give), then nesting as `--nested` and `-cpu …,+vmx|+svm` ask together
    /// (`nesting` is `--nested`'s policy, off when not given).
    func setUpCPU(_ nesting: NestingPolicy, on machine: Machine) throws {
        guard let model = try qemu.cpuModel(), let spec = qemu.cpu else {
            return try enableNesting(nesting, on: machine)
        }
        do {
            for warning in try machine.apply(cpu: model) { eprint("kvmrun: warning: -cpu \(spec): \(warning)") }
            let hostVendor = try machine.kvm.supportedCPUID().vendor
            let policy = try model.nestingPolicy(explicit: nested == nil ? nil : nesting, hostVendor: hostVendor)
            let viaCPU = nested == nil && policy != .off
            try enableNesting(policy, on: machine, asked: viaCPU ? "-cpu \(spec)" : "--nested")
        } catch let error as CPUModelError {
            throw CLIError(.usage, "-cpu \(spec): \(error)")
        }
    }
}

/// `--nested` on every vCPU: refused with the report's reason where the host
/// cannot nest; under force, the warnings once. `asked` names the option.
func enableNesting(_ policy: NestingPolicy, on machine: Machine, asked: String = "--nested") throws {
    guard policy != .off else { return }
    let report = machine.kvm.nestingReport()
    do {
        var warnings: [String] = []
        for vcpu in machine.vcpus { warnings = try vcpu.enableNesting(policy, report: report) }
        for warning in warnings { eprint("kvmrun: warning: \(warning)") }
    } catch let error as NestingUnavailable {
        throw CLIError(
            .nestingUnavailable,
            "\(asked): \(error.report.summary) (kvmrun host says more; --nested=force sets the bits anyway)")
    }
}

func openKVM() throws -> KVM {
    do {
        return try KVM()
    } catch {
        throw CLIError(.kvmUnavailable, "\(error)")
    }
}
