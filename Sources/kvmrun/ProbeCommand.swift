import ArgumentParser
import Guests
import KVMCore

/// `kvmrun probe`: the host report, then guests that try to use VMX/SVM, then one
/// verdict. Where the host cannot nest, the guests run with the bits forced on,
/// so the output shows what a guest hypervisor would meet (an exception, with
/// its vector and RIP).
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Probe nested virtualization with guests that try to run a hypervisor.",
        discussion: "Exits 0 when a guest hypervisor ran its own guest, 20 when it could not."
    )

    @Option(help: ArgumentHelp("Time limit for each probe guest.", valueName: "duration"))
    var timeout: String = "10s"

    func run() throws {
        guard let limit = Parse.duration(timeout) else {
            throw CLIError(.usage, "--timeout \(timeout): not a duration")
        }
        let report = NestingReport(facts: .gather())
        let policy: NestingPolicy = report.isAvailable ? .on : .force
        out("host: \(report.summary)")
        if policy == .force { out("host: probing with VMX/SVM forced on (--nested=force) to show what a guest meets") }
        let launcher: GuestImage = report.technology == .svm ? .nestedSvmL2 : .nestedVmxL2
        var launcherFacts = HostCallFacts()
        for image in [GuestImage.nestedCpuid, .nestedEnable, launcher] {
            let facts = try probe(image, policy: policy, timeout: limit)
            if image.name == launcher.name { launcherFacts = facts }
        }
        let ran =
            launcherFacts["vmrun"] == 1 && launcherFacts["exitcode"] == 0x81
            || launcherFacts["vmlaunch"] == 1 && launcherFacts["exit_reason"] == 18
        if ran {
            // The probe's levels are counted from this host; the machine's, from its L0.
            let hostLevel = report.facts.cpu.chain?.level ?? (report.facts.cpu.isVirtualMachine ? 1 : 0)
            out(
                "verdict: nested virtualization works: a guest hypervisor (L1) ran its own guest (L2)"
                    + (hostLevel > 0
                        ? "; this host is itself a VM at level \(hostLevel), so that L2 is L\(hostLevel + 2) of the machine"
                        : ""))
            return
        }
        var why =
            report.isAvailable
            ? "the host reports nesting available, but the guest hypervisor could not run its guest"
            : report.summary
        if let vector = launcherFacts["exception"] {
            why +=
                "; with nesting forced on, the guest hypervisor took exception \(vector) at \(hex(launcherFacts["exception_rip"] ?? 0))"
        }
        out("verdict: \(why)")
        throw ExitCode(ExitStatus.nestingUnavailable.rawValue)
    }

    /// Runs one probe guest, echoing its serial lines, serving its requests.
    private func probe(_ image: GuestImage, policy: NestingPolicy, timeout: Duration) throws -> HostCallFacts {
        let machine: Machine
        do {
            machine = try Machine(serial: .fileDescriptor(1), kvm: try openKVM())
        } catch let error as CLIError { throw error }
        do {
            try machine.vcpu.enableNesting(policy)
        } catch let error as NestingUnavailable {
            throw CLIError(.nestingUnavailable, error.description)
        }
        try machine.load(ELFImage.parse(image.bytes))
        let deadline = RunDeadline(timeout)
        while true {
            let stop = try machine.run(timeout: deadline.remaining)
            switch stop {
            case .sync: continue
            case .nestedDumpRequested:
                if let state = try? machine.vcpu.nestedState() {
                    out("nested-state flags=\(state.flags) format=\(state.format) size=\(state.size)")
                } else {
                    out("nested-state unavailable (KVM_GET_NESTED_STATE failed)")
                }
                continue
            case .done(status: 0):
                return HostCallFacts(machine.hostcall.facts)
            default:
                try finishRun(stop, timeout: timeout.description)
                throw CLIError(.guestFailure, "probe guest \(image.name) ended without HC_DONE")
            }
        }
    }
}

/// The facts a guest reported, by key (the last value wins).
struct HostCallFacts {
    private var values: [String: UInt64] = [:]
    init(_ facts: [HostCall.Fact] = []) {
        for fact in facts { values[fact.key] = fact.value }
    }
    subscript(key: String) -> UInt64? { values[key] }
}
