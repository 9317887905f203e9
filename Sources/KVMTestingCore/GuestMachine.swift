import KVMCore

/// A machine running one guest image, fresh or reset from a snapshot, as the
/// KVM selftests' `vm_create_with_one_vcpu` + `vcpu_run` + ucall loop.
///
///     let guest = try GuestMachine(.cpuidCheck)          // a VM, the image loaded
///     let run = guest.run { checkpoint in                // to HC_DONE / HC_FAIL / a fault
///         if checkpoint.stage == 1 { … read or change state … }
///     }
///     XCTAssertNil(run.failure)
///
/// Fast reset, for many cases on one guest: `snapshot(atStage:)` runs the guest to
/// a checkpoint once and keeps its state; each `run` after it starts from there
/// (`reset()`: only the pages the last case wrote are copied back).
///
///     let guest = try GuestMachine(.square)
///     try guest.snapshot(atStage: 1)                     // booted, waiting for input
///     for x in inputs {
///         let run = guest.run { if $0.stage == 1 { try $0.reply(x) } }
///         …
///     }
public final class GuestMachine {
    public let image: GuestImage
    public let options: GuestOptions
    public let machine: Machine
    /// The state runs start from after `snapshot`, and where it was taken.
    public private(set) var baseline: (snapshot: Snapshot, at: Checkpoint.Reason?)?
    private var baselineFacts: [HostCall.Fact] = []
    private var baselineSerial: [UInt8] = []
    /// Whether the machine is at the baseline (fresh, or reset) or has run since.
    private var dirty = false

    /// A fresh machine (`options.memorySize`, one vCPU, dirty-page logging for
    /// fast resets) with `image` loaded, ready to run. Throws `KVMError` when
    /// /dev/kvm is unusable and `NestingUnavailable` (with the nesting report's
    /// reason) when `options.nested` is set on a host that cannot nest.
    public init(_ image: GuestImage, options: GuestOptions = GuestOptions(), kvm: KVM? = nil) throws {
        self.image = image
        self.options = options
        machine = try Machine(memorySize: options.memorySize, serial: .buffer, kvm: kvm, logDirtyPages: true)
        if options.nested { try machine.vcpu.enableNesting(.on) }
        try machine.load(image.bootImage())
    }

    /// Runs the guest to its end, calling `onCheckpoint` at each hostcall that
    /// resumes (HC_SYNC, HC_DUMP_NESTED, HC_SNAPSHOT) and resuming after it.
    /// After a `snapshot`, the run starts from it (a reset first if the machine
    /// ran since), and `onCheckpoint` first sees the checkpoint the snapshot was
    /// taken at, as if the guest had just reached it. Never throws: KVM errors
    /// and a throwing handler are failures of the run (`GuestRun.failure`).
    public func run(onCheckpoint: ((Checkpoint) throws -> Void)? = nil) -> GuestRun {
        var factsStart = machine.hostcall.facts.count
        var serialStart = machine.serial.output.count
        var baseFacts: [HostCall.Fact] = []
        var serialPrefix: [UInt8] = []
        func finish(_ stop: StopReason?, error: Error? = nil) -> GuestRun {
            let facts = GuestFacts(baseFacts + machine.hostcall.facts.dropFirst(factsStart))
            let serial = String(decoding: serialPrefix + machine.serial.output.dropFirst(serialStart), as: UTF8.self)
            let failure: GuestTestFailure?
            if let error {
                failure = GuestTestFailure(
                    kind: .hostError, message: "\(error)",
                    details: facts.list.isEmpty ? [] : ["facts: \(facts)"])
            } else {
                failure = GuestTestFailure(
                    stop: stop!, facts: facts, serial: serial, options: options,
                    registers: { [machine] in try? machine.vcpu.registers() })
            }
            return GuestRun(image: image, stop: stop, machine: machine, serial: serial, facts: facts, failure: failure)
        }
        do {
            var pending: Checkpoint.Reason?
            if let baseline {
                if dirty { try reset() }
                pending = baseline.at
                baseFacts = baselineFacts
                serialPrefix = baselineSerial
                factsStart = machine.hostcall.facts.count
                serialStart = machine.serial.output.count
            }
            dirty = true
            let deadline = RunDeadline(options.timeout)
            while true {
                if let reason = pending, let onCheckpoint {
                    try onCheckpoint(
                        Checkpoint(
                            reason: reason, machine: machine, factsStart: factsStart,
                            baseFacts: baseFacts, serialStart: serialStart))
                }
                let stop = try machine.run(timeout: deadline.remaining)
                switch stop {
                case .sync(let stage): pending = .sync(stage: stage)
                case .nestedDumpRequested: pending = .nestedDump
                case .snapshotRequested(let tag): pending = .snapshot(tag: tag)
                default: return finish(stop)
                }
            }
        } catch {
            return finish(nil, error: error)
        }
    }

    /// Takes the state later runs start from: now (`stage` nil: before the
    /// first instruction), or after running the guest to `sync_stage(stage)`
    /// (checkpoints before it go to `onCheckpoint`). Facts and serial output up to
    /// that point belong to every later run.
    public func snapshot(atStage stage: UInt64? = nil, onCheckpoint: ((Checkpoint) throws -> Void)? = nil) throws {
        var at: Checkpoint.Reason?
        if let stage {
            let deadline = RunDeadline(options.timeout)
            reach: while true {
                let stop = try machine.run(timeout: deadline.remaining)
                let reason: Checkpoint.Reason
                switch stop {
                case .sync(stage):
                    at = .sync(stage: stage)
                    break reach
                case .sync(let other): reason = .sync(stage: other)
                case .nestedDumpRequested: reason = .nestedDump
                case .snapshotRequested(let tag): reason = .snapshot(tag: tag)
                default:
                    let facts = GuestFacts(machine.hostcall.facts)
                    let failure = GuestTestFailure(
                        stop: stop, facts: facts, serial: machine.serial.text, options: options,
                        registers: { [machine] in try? machine.vcpu.registers() })
                    throw failure
                        ?? GuestTestFailure(
                            kind: .unexpectedStop,
                            message: "guest \(image.name) ended (\(stop)) before sync_stage(\(stage))")
                }
                try onCheckpoint?(
                    Checkpoint(reason: reason, machine: machine, factsStart: 0, baseFacts: [], serialStart: 0))
            }
        }
        baseline = (try machine.snapshot(), at)
        baselineFacts = machine.hostcall.facts
        baselineSerial = machine.serial.output
        dirty = false
    }

    /// Puts the machine back into the snapshot's state (memory, registers,
    /// devices). `run` does this itself when the machine ran since.
    public func reset() throws {
        guard let baseline else {
            throw ConfigurationError.invalidRequest(
                "GuestMachine.reset: no snapshot taken (call snapshot(atStage:) first)")
        }
        try machine.reset(to: baseline.snapshot)
        dirty = false
    }
}

/// What one run of a guest left: how it stopped, its serial output and facts,
/// and the failure it means (nil: passed). `machine` is the machine as the run
/// left it (until the next run of the same `GuestMachine`).
public struct GuestRun {
    public let image: GuestImage
    /// How the run ended; nil when the host failed (see `failure`).
    public let stop: StopReason?
    public let machine: Machine
    public let serial: String
    public let facts: GuestFacts
    public let failure: GuestTestFailure?
    public var passed: Bool { failure == nil }
}
