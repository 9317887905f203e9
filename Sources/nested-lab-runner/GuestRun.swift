import Glibc
import Guests
import KVMCore

/// What a run of the lab guest produced: the hostcall stops in order, the serial
/// output and the facts. Two runs that agree on all three ran the same guest.
struct RunLog: Equatable {
    var events: [String] = []
    var serial: [UInt8] = []
    var facts: [Fact] = []

    /// One HC_REPORT (HostCall.Fact has no public initializer, and a restored
    /// run's facts come from a file).
    struct Fact: Equatable {
        let key: String
        let value: UInt64
    }

    var serialText: String { String(decoding: serial, as: UTF8.self) }

    /// The last value reported under `key`.
    func fact(_ key: String) -> UInt64? { facts.last { $0.key == key }?.value }

    static func + (a: RunLog, b: RunLog) -> RunLog {
        RunLog(events: a.events + b.events, serial: a.serial + b.serial, facts: a.facts + b.facts)
    }

    /// The first way `self` differs from `other`, for a FAIL line; nil when equal.
    func difference(from other: RunLog) -> String? {
        if events != other.events {
            return
                "stops differ: got [\(events.joined(separator: ", "))], expected [\(other.events.joined(separator: ", "))]"
        }
        if serial != other.serial {
            let a = serialText.split(separator: "\n", omittingEmptySubsequences: false)
            let b = other.serialText.split(separator: "\n", omittingEmptySubsequences: false)
            for i in 0..<max(a.count, b.count) {
                let x = i < a.count ? String(a[i]) : "<none>"
                let y = i < b.count ? String(b[i]) : "<none>"
                if x != y { return "serial line \(i + 1) differs: got '\(x)', expected '\(y)'" }
            }
            return "serial output differs"
        }
        if facts != other.facts {
            for i in 0..<max(facts.count, other.facts.count) {
                let x = i < facts.count ? "\(facts[i].key)=\(hex(facts[i].value))" : "<none>"
                let y = i < other.facts.count ? "\(other.facts[i].key)=\(hex(other.facts[i].value))" : "<none>"
                if x != y { return "fact \(i + 1) differs: got \(x), expected \(y)" }
            }
        }
        return nil
    }
}

/// A lab failure: one line, for a `FAIL name: why`.
struct LabFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The guest the lab drives, on machines set up alike: the L2 launcher of the
/// host's own technology (nested-vmx-l2 on Intel, nested-svm-l2 on AMD), both
/// with the same stops (sync 1, sync 2, dump and sync 3 from L2, sync 4, done 0).
enum LabGuest {
    /// The host CPU's nesting technology, read from CPUID once.
    static let vendor: NestedVendor =
        switch HostCPU.current().vendor {
        case .intel: .vmx
        case .amd: .svm
        case .other: .unknown
        }
    /// The guest for `vendor` (nested-svm-l2 when unknown: `machine` refuses to run it).
    static let image: GuestImage = vendor == .vmx ? .nestedVmxL2 : .nestedSvmL2
    static let memorySize: UInt64 = 64 << 20
    static let timeout: Duration = .seconds(60)

    /// A machine with nesting on (VMX/SVM offered as the host allows) and serial captured.
    static func machine(kvm: KVM, memorySize: UInt64 = LabGuest.memorySize) throws -> Machine {
        if vendor == .unknown {
            throw LabFailure(
                "the host CPU is \(HostCPU.current().vendorString), neither GenuineIntel (VMX) nor AuthenticAMD (SVM): no nested guest to drive"
            )
        }
        let machine = try Machine(memorySize: memorySize, serial: .buffer, kvm: kvm)
        try machine.vcpu.enableNesting(.on)
        return machine
    }

    /// A fresh machine with the guest loaded at its entry.
    static func boot(kvm: KVM) throws -> Machine {
        let machine = try self.machine(kvm: kvm)
        try machine.load(ELFImage.parse(image.bytes))
        return machine
    }

    /// The stop as an event name; nil for stops that end the run badly.
    static func event(_ stop: StopReason) -> (name: String, terminal: Bool) {
        switch stop {
        case .sync(let stage): ("sync \(stage)", false)
        case .nestedDumpRequested: ("dump", false)
        case .snapshotRequested(let tag): ("snapshot \(tag)", false)
        case .done(let status): ("done \(status)", true)
        case .failed(let failure): ("failed: \(failure)", true)
        case .halted: ("halted", true)
        case .debugExit(let code): ("debug-exit \(hex(code))", true)
        case .shutdown(let regs, _): ("shutdown at rip \(hex(regs.rip))", true)
        case .failEntry(let reason): ("entry failed (hardware reason \(hex(reason)))", true)
        case .internalError(let error): ("KVM internal error \(error)", true)
        case .systemEvent(let type, _): ("system event \(type)", true)
        case .debug: ("debug exit", true)
        case .timedOut(let rip): ("timed out at rip \(hex(rip))", true)
        case .stopped: ("stopped", true)
        case .protocolError(let why): ("protocol error: \(why)", true)
        case .unhandled(let exit): ("unhandled exit \(exit)", true)
        }
    }

    /// Runs `machine` until the run ends, or until `pause` (the stop, the number of
    /// stops in `log`) says so for a non-terminal stop (that stop is in `log`, the vCPU sits right after it with
    /// its port exit still pending). `onStop` sees every stop before `pause`.
    /// Returns true when the run ended.
    @discardableResult
    static func drive(
        _ machine: Machine, log: inout [String],
        onStop: (String) throws -> Void = { _ in },
        pause: (String, Int) -> Bool = { _, _ in false }
    ) throws -> Bool {
        while true {
            let (name, terminal) = event(try machine.run(timeout: timeout))
            log.append(name)
            try onStop(name)
            if terminal { return true }
            if pause(name, log.count) { return false }
        }
    }

    /// What the machine has produced so far, as a log (events given).
    static func log(of machine: Machine, events: [String]) -> RunLog {
        RunLog(
            events: events, serial: machine.serial.output,
            facts: machine.hostcall.facts.map { RunLog.Fact(key: $0.key, value: $0.value) })
    }

    /// An uninterrupted run: the reference every restored run must reproduce.
    static func reference(kvm: KVM) throws -> RunLog {
        let machine = try boot(kvm: kvm)
        var events: [String] = []
        try drive(machine, log: &events)
        let log = log(of: machine, events: events)
        guard log.events.last == "done 0" else {
            throw LabFailure(
                "the uninterrupted run ended with '\(log.events.last ?? "nothing")', not HC_DONE 0; serial: \(log.serialText.split(separator: "\n").last ?? "")"
            )
        }
        return log
    }
}
