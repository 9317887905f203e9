import CKVM
import Glibc

/// The signal that kicks a vCPU thread out of KVM_RUN. SIGUSR2 unless changed
/// before the first run; its handler is installed once per process.
public nonisolated(unsafe) var vcpuKickSignal: Int32 = SIGUSR2
private let kickHandlerInstalled: Bool = ckvm_kick_install(vcpuKickSignal) == 0

extension VCPU {
    /// Runs the guest, handing port and MMIO accesses to `bus`, until an exit the
    /// caller must see. With `timeout`, a guest that runs longer is stopped and
    /// reported with its RIP. Call again to resume after `sync` and other requests.
    ///
    /// The loop allocates nothing and takes no lock per exit; `trace`, when given,
    /// is called with every exit before it is handled.
    public func run(bus: IOBus, timeout: Duration? = nil,
                    trace: ((VCPU, VMExit) -> Void)? = nil) throws -> StopReason {
        precondition(kickHandlerInstalled, "cannot install the vCPU kick signal handler")
        let tid = ckvm_gettid()
        ckvm_kick_set_run(runPage)
        ckvm_atomic_store(control + 1, tid)
        defer {
            ckvm_atomic_store(control + 1, 0)
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
        if ckvm_atomic_exchange(control, 0) != 0 { return .stopped }

        let measure = statistics.measureTime
        var left = measure ? monotonicNanoseconds() : 0
        while true {
            let exit = try run()
            if measure {
                let now = monotonicNanoseconds()
                statistics.guestNanoseconds &+= now &- left
                left = now
            }
            statistics.exits[Int(min(exit.reason, 63))] &+= 1
            trace?(self, exit)
            let action: DeviceAction
            switch exit {
            case .io(let io):
                action = bus.dispatch(io)
            case .mmio(let access):
                action = bus.dispatch(access)
            case .hlt:
                action = .stop(.halted)
            case .interrupted:
                runPage.pointee.immediate_exit = 0
                if ckvm_atomic_exchange(control, 0) != 0 {
                    action = .stop(.stopped)
                } else if monotonicNanoseconds() >= deadline {
                    action = .stop(.timedOut(rip: try registers().rip))
                } else {
                    action = .proceed
                }
            case .shutdown:
                action = .stop(.shutdown(try registers(), try specialRegisters()))
            case .failEntry(let reason, _):
                action = .stop(.failEntry(hardwareReason: reason))
            case .internalError(let error):
                action = .stop(.internalError(error))
            case .systemEvent(let type, let flags):
                action = .stop(.systemEvent(type: type, flags: flags))
            case .debug(let info):
                action = .stop(.debug(info))
            case .irqWindowOpen:
                action = .proceed
            case .unknown:
                action = .stop(.unhandled(exit))
            }
            if measure {
                let now = monotonicNanoseconds()
                statistics.vmmNanoseconds &+= now &- left
                left = now
            }
            if case .stop(let reason) = action { return reason }
        }
    }

    /// Asks the run loop to return `.stopped` as soon as possible. Safe from any
    /// thread or a signal handler's deferred work; a stop before the run starts
    /// makes the next run return at once.
    public func stop() {
        ckvm_atomic_store(control, 1)
        let tid = ckvm_atomic_load(control + 1)
        if tid != 0 { _ = ckvm_tgkill(tid, vcpuKickSignal) }
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
