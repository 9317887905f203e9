import CKVM
import Glibc
import Synchronization

/// The signal that kicks a vCPU thread out of KVM_RUN; its handler is installed
/// once per process, at the first run. A constant: a signal chosen after that
/// could never take effect. A program that needs SIGUSR2 for itself must leave it.
public let vcpuKickSignal: Int32 = SIGUSR2
private let kickHandlerInstalled: Bool = ckvm_kick_install(vcpuKickSignal) == 0

extension VCPU {
    /// Runs the guest, handing port and MMIO accesses to `bus`, until an exit the
    /// caller must see. With `timeout`, a guest that runs longer is stopped and
    /// reported with its RIP. Call again to resume after `sync` and other requests.
    ///
    /// The loop allocates nothing and takes no lock per exit; `trace`, when given,
    /// is called with every exit before it is handled.
    ///
    /// `haltCheck` is for vCPUs with an in-kernel LAPIC, whose HLT never exits to
    /// userspace: every `haltCheck` the vCPU is kicked, and if it is halted with
    /// interrupts off (nothing can wake it) at `haltPatience` checks in a row,
    /// the loop returns `.halted`, as a HLT exit does without an irqchip.
    public func run(
        bus: IOBus, timeout: Duration? = nil, haltCheck: Duration? = nil, haltPatience: Int = 1,
        trace: ((VCPU, VMExit) -> Void)? = nil
    ) throws -> StopReason {
        precondition(kickHandlerInstalled, "cannot install the vCPU kick signal handler")
        let tid = ckvm_gettid()
        // One run loop at a time, checked: the kvm_run page is the running thread's alone.
        let entered = runningThread.compareExchange(expected: 0, desired: tid, ordering: .sequentiallyConsistent)
        guard entered.exchanged else {
            throw ConfigurationError.invalidRequest(
                "vCPU \(id) is already running (its run loop is on thread \(entered.original))")
        }
        ckvm_kick_set_run(runPage)
        defer {
            runningThread.store(0, ordering: .sequentiallyConsistent)
            ckvm_kick_set_run(nil)
            runPage.pointee.immediate_exit = 0
        }
        var timer = 0
        var deadline: UInt64 = .max
        if let timeout {
            let ns = timeout.nanoseconds
            deadline = monotonicNanoseconds() &+ ns
            timer = ckvm_timer_start(vcpuKickSignal, tid, Int64(clamping: ns))
            guard timer > 0 else { throw KVMError("timer_create", errno: Errno(rawValue: Int32(-timer))) }
        }
        defer { ckvm_timer_stop(timer) }
        var haltTimer = 0
        if let haltCheck {
            // The first check comes soon, so a guest that halts at once ends at once.
            let ns = Int64(clamping: haltCheck.nanoseconds)
            haltTimer = ckvm_timer_start_periodic(vcpuKickSignal, tid, min(ns, 2_000_000), ns)
            guard haltTimer > 0 else { throw KVMError("timer_create", errno: Errno(rawValue: Int32(-haltTimer))) }
        }
        defer { ckvm_timer_stop(haltTimer) }
        if stopRequested.exchange(false, ordering: .sequentiallyConsistent) { return .stopped }

        return try withUnsafeTemporaryAllocation(of: Int.self, capacity: 64) { counts in
            var tally = ExitTally(counts: counts, measure: statistics.measureTime)
            var haltedChecks = 0
            defer { updateStatistics { tally.flush(into: &$0) } }
            while true {
                let exit = try run()
                tally.exited(reason: exit.reason)
                if let trace {
                    updateStatistics { tally.flush(into: &$0) }
                    trace(self, exit)
                }
                // Port and MMIO exits test the device's answer where it is made, so a
                // `.proceed` is never copied (DeviceAction holds a whole StopReason).
                let stop: StopReason?
                switch exit {
                case .io(let io):
                    if case .stop(let reason) = bus.dispatch(io) { stop = reason } else { stop = nil }
                case .mmio(let access):
                    if case .stop(let reason) = bus.dispatch(access) { stop = reason } else { stop = nil }
                case .irqWindowOpen:
                    stop = nil
                case .interrupted:
                    stop = try kicked(
                        deadline: deadline, haltCheck: haltCheck != nil, haltedChecks: &haltedChecks,
                        patience: haltPatience)
                default:
                    stop = try stopReason(for: exit)
                }
                tally.handled()
                if let stop { return stop }
            }
        }
    }

    /// Why the loop stops after the kick signal interrupted KVM_RUN: a `stop()`, the
    /// timeout, or (with `haltCheck`) a vCPU halted for good `patience` checks
    /// in a row (`haltedChecks` counts them); nil to run on.
    @inline(never)
    private func kicked(deadline: UInt64, haltCheck: Bool, haltedChecks: inout Int, patience: Int) throws -> StopReason?
    {
        runPage.pointee.immediate_exit = 0
        if stopRequested.exchange(false, ordering: .sequentiallyConsistent) { return .stopped }
        if monotonicNanoseconds() >= deadline { return .timedOut(rip: try registers().rip) }
        if haltCheck {
            haltedChecks = try isHaltedForGood() ? haltedChecks + 1 : 0
            if haltedChecks >= patience { return .halted }
        }
        return nil
    }

    /// Why the loop stops at `exit`, one that is not port I/O, MMIO or a kick.
    @inline(never)
    private func stopReason(for exit: VMExit) throws -> StopReason {
        switch exit {
        case .hlt: .halted
        case .shutdown: .shutdown(try registers(), try specialRegisters())
        case .failEntry(let reason, _): .failEntry(hardwareReason: reason)
        case .internalError(let error): .internalError(error)
        case .systemEvent(let type, let flags): .systemEvent(type: type, flags: flags)
        case .debug(let info): .debug(info)
        case .io, .mmio, .interrupted, .irqWindowOpen, .unknown: .unhandled(UnhandledExit(exit))
        }
    }

    /// Halted (KVM_MP_STATE_HALTED) with RFLAGS.IF clear: no interrupt can wake it.
    private func isHaltedForGood() throws -> Bool {
        try mpState() == .halted && registers().rflags & 0x200 == 0
    }

    /// Asks the run loop to return `.stopped` as soon as possible. Safe from any
    /// thread or a signal handler's deferred work; a stop before the run starts
    /// makes the next run return at once.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        let tid = runningThread.load(ordering: .sequentiallyConsistent)
        if tid != 0 { _ = ckvm_tgkill(tid, vcpuKickSignal) }
    }
}

/// The run loop's per-exit bookkeeping, kept in locals and added to `RunStatistics`
/// by `flush` (when the loop returns or throws, and before each `trace` call, so a
/// trace sees the same counts as before): a class property updated per exit costs
/// a dynamic exclusivity check and an array uniqueness check every time.
///
/// The loop calls `exited` right after KVM_RUN returns and `handled` when the exit
/// has been dealt with: with `measure`, the time before `exited` counts as guest
/// time and the time between the two as VMM time.
struct ExitTally {
    /// Exits by KVM_EXIT_* reason (64 slots, reasons above 63 counted in the last).
    let counts: UnsafeMutableBufferPointer<Int>
    let measure: Bool
    /// When the last `exited` or `handled` was recorded.
    var mark: UInt64
    var guestNanoseconds: UInt64 = 0
    var vmmNanoseconds: UInt64 = 0

    @inline(__always)
    init(counts: UnsafeMutableBufferPointer<Int>, measure: Bool) {
        counts.initialize(repeating: 0)
        self.counts = counts
        self.measure = measure
        self.mark = measure ? monotonicNanoseconds() : 0
    }

    /// KVM_RUN returned with `reason`.
    @inline(__always)
    mutating func exited(reason: UInt32) {
        if measure {
            let now = monotonicNanoseconds()
            guestNanoseconds &+= now &- mark
            mark = now
        }
        counts[Int(min(reason, 63))] &+= 1
    }

    /// The exit's handling ends here: the time since `exited` counts as VMM time.
    @inline(__always)
    mutating func handled() {
        if measure {
            let now = monotonicNanoseconds()
            vmmNanoseconds &+= now &- mark
            mark = now
        }
    }

    /// Adds what was counted since the last flush to `statistics`.
    mutating func flush(into statistics: inout RunStatistics) {
        for i in 0..<64 where counts[i] != 0 {
            statistics.exits[i] &+= counts[i]
            counts[i] = 0
        }
        if measure {
            statistics.guestNanoseconds &+= guestNanoseconds
            statistics.vmmNanoseconds &+= vmmNanoseconds
            guestNanoseconds = 0
            vmmNanoseconds = 0
        }
    }
}

extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}

@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
