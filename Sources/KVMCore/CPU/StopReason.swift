/// Why the dispatching run loop handed control back to its caller. Port and MMIO
/// exits the devices handle never show up here; these are the ones a caller must see.
public enum StopReason: Sendable {
    /// HLT with interrupts disabled (nothing can wake the CPU).
    case halted
    /// QEMU's isa-debug-exit was written `code`; the process status is `(code << 1) | 1`.
    case debugExit(code: UInt32)
    /// The guest's `HC_DONE` hostcall, `status` 0 meaning pass.
    case done(status: UInt64)
    /// The guest's `HC_FAIL` hostcall.
    case failed(GuestFailure)
    /// The guest's `HC_SYNC`: inspect state, then run again to resume.
    case sync(stage: UInt64)
    /// The guest asked for a nested-state dump (`HC_DUMP_NESTED`); run again to resume.
    case nestedDumpRequested
    /// The guest asked for a snapshot (`HC_SNAPSHOT`); run again to resume.
    case snapshotRequested(tag: UInt64)
    /// A triple fault; the registers as the CPU reset.
    indirect case shutdown(Registers, SpecialRegisters)
    /// VM entry failed; the reason is the hardware's.
    case failEntry(hardwareReason: UInt64)
    /// KVM could not emulate something.
    case internalError(InternalError)
    /// A shutdown, reset or crash event (`SystemEvent`).
    case systemEvent(type: UInt32, flags: UInt64)
    /// A debug exit (breakpoint, single step).
    case debug(DebugTrap)
    /// The run's time limit passed; `rip` is where the guest was.
    case timedOut(rip: UInt64)
    /// `VCPU.stop()` was called.
    case stopped
    /// The guest broke the hostcall protocol (bad magic, unknown command, bad address).
    case protocolError(String)
    /// An exit the loop has no handler for.
    case unhandled(UnhandledExit)
}

/// What `StopReason.unhandled` keeps of a `VMExit`: its KVM_EXIT_* reason, a
/// copy. A `VMExit` may point into kvm_run, which the next run overwrites, so
/// it never leaves the run loop's thread (it is not `Sendable`).
public struct UnhandledExit: Sendable, Equatable, CustomStringConvertible {
    /// The KVM_EXIT_* number.
    public let reason: UInt32

    /// A copy of `exit`'s reason, safe to keep after the run loop goes on.
    public init(_ exit: VMExit) { reason = exit.reason }

    /// The KVM_EXIT_* name.
    public var name: String { VMExit.name(ofReason: reason) }

    public var description: String { "KVM_EXIT_\(name) (\(reason))" }
}

/// What `HC_FAIL` carries.
public struct GuestFailure: Sendable, Equatable, CustomStringConvertible {
    /// The assertion's text.
    public let message: String
    /// The line in the guest source.
    public let line: UInt64
    /// The two values the assertion compared.
    public let values: (UInt64, UInt64)
    /// The guest source file, when the message carries it after its NUL as
    /// ESC "file=" PATH (the C library's GUEST_ASSERT does; Docs/PROTOCOL.md).
    public let file: String?

    /// A failure from its parts.
    public init(message: String, line: UInt64, values: (UInt64, UInt64), file: String? = nil) {
        self.message = message
        self.line = line
        self.values = values
        self.file = file
    }

    /// The same message, line, values and file.
    public static func == (a: GuestFailure, b: GuestFailure) -> Bool {
        a.message == b.message && a.line == b.line && a.values == b.values && a.file == b.file
    }

    /// "guest assertion failed at FILE:LINE: MESSAGE (A, B)".
    public var description: String {
        let place = file.map { "\($0.split(separator: "/").last.map(String.init) ?? $0):\(line)" } ?? "line \(line)"
        return "guest assertion failed at \(place): \(message) (\(hex(values.0)), \(hex(values.1)))"
    }
}

/// What a device asks of the run loop after an access.
public enum DeviceAction {
    /// Carry on running the guest.
    case proceed
    /// Hand control back to the caller with this reason.
    case stop(StopReason)
}

/// Counters the run loop keeps per vCPU: exits by KVM_EXIT_* reason, and with
/// `measureTime` the split between time in the guest and time in the VMM.
public struct RunStatistics: Sendable {
    /// Exits by KVM_EXIT_* number.
    public var exits = [Int](repeating: 0, count: 64)
    /// Whether to time the guest and the VMM (two clock reads per exit).
    public var measureTime = false
    /// Time spent in KVM_RUN, with `measureTime`.
    public var guestNanoseconds: UInt64 = 0
    /// Time spent handling exits, with `measureTime`.
    public var vmmNanoseconds: UInt64 = 0

    /// All exits counted.
    public var totalExits: Int { exits.reduce(0, +) }

    /// (name, count) for each reason seen, most frequent first.
    public var exitsByReason: [(String, Int)] {
        exits.enumerated().filter { $0.element > 0 }
            .map { (VMExit.name(ofReason: UInt32($0.offset)), $0.element) }
            .sorted { $0.1 > $1.1 }
    }
}

/// KVM_SYSTEM_EVENT_* types of `StopReason.systemEvent`.
public enum SystemEvent {
    /// KVM_SYSTEM_EVENT_SHUTDOWN.
    public static let shutdown: UInt32 = 1
    /// KVM_SYSTEM_EVENT_RESET.
    public static let reset: UInt32 = 2
    /// KVM_SYSTEM_EVENT_CRASH.
    public static let crash: UInt32 = 3
}
