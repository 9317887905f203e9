import Glibc
import Synchronization

extension Machine {
    /// Runs until an exit the caller must see (see `StopReason`). With several
    /// vCPUs, each AP runs on its own thread and the bootstrap vCPU on the calling
    /// one; the first stop that ends the run on any vCPU (debug-exit, shutdown, a
    /// guest's HC_DONE, a timeout…) stops the others, and it is what returns.
    /// Requests that resume (HC_SYNC, dump, snapshot) pause the whole machine only
    /// when the bootstrap vCPU makes them; an AP's are resumed at once.
    ///
    /// With an irqchip, HLT stays in the kernel; the bootstrap vCPU is checked after
    /// 2 ms and then every 10 ms, and a halt with interrupts off ends the run as `.halted`. (APs often
    /// park in `cli; hlt` while the BSP works on, so they are not checked.) With
    /// several vCPUs whose CPUID offers KVM's PV unhalt, such a halt may be a
    /// paravirtual spinlock wait (Linux's kvm_wait), which another vCPU's
    /// KVM_HC_KICK_CPU ends: the BSP must then stay halted so for a second.
    ///
    /// `trace` is called on the thread of the vCPU that exited, so with several
    /// vCPUs on several threads at once.
    public func run(timeout: Duration? = nil, trace: (@Sendable (VCPU, VMExit) -> Void)? = nil) throws -> StopReason {
        let haltCheck: Duration? = hasIRQChip ? .milliseconds(10) : nil
        guard vcpus.count > 1 else {
            return try vcpu.run(bus: bus, timeout: timeout, haltCheck: haltCheck, trace: trace)
        }
        let pvUnhalt = (try vcpu.cpuid()[CPUID.kvmFeatures]?.eax ?? 0) & CPUID.kvmFeaturePVUnhalt != 0
        let haltPatience = pvUnhalt ? 100 : 1
        let outcome = FirstOutcome()
        let bsp = vcpu
        var threads: [PosixThread] = []
        defer {
            for ap in vcpus.dropFirst() { ap.stop() }
            for thread in threads { thread.join() }
        }
        for ap in vcpus.dropFirst() {
            threads.append(
                try PosixThread { [bus] in
                    while true {
                        do {
                            let stop = try ap.run(bus: bus, trace: trace)
                            switch stop {
                            case .sync, .nestedDumpRequested, .snapshotRequested:
                                continue
                            case .stopped where outcome.isSettled:
                                return
                            default:
                                if outcome.settle(.success(stop)) { bsp.stop() }
                                return
                            }
                        } catch {
                            if outcome.settle(.failure(error)) { bsp.stop() }
                            return
                        }
                    }
                })
        }
        let stop: StopReason
        do {
            stop = try bsp.run(
                bus: bus, timeout: timeout, haltCheck: haltCheck, haltPatience: haltPatience, trace: trace)
        } catch {
            _ = outcome.settle(.failure(error))
            return try outcome.result!.get()
        }
        if case .stopped = stop, let apOutcome = outcome.result { return try apOutcome.get() }
        _ = outcome.settle(.success(stop))
        return try outcome.result!.get()
    }
}

/// The first of several threads' results; later ones are dropped.
final class FirstOutcome: Sendable {
    private let stored = Mutex<Result<StopReason, any Error>?>(nil)

    /// Records `result` if nothing was recorded yet; true when it was first.
    func settle(_ result: sending Result<StopReason, any Error>) -> Bool {
        stored.withLock { stored in
            guard stored == nil else { return false }
            stored = result
            return true
        }
    }

    var result: Result<StopReason, any Error>? { stored.withLock { $0 } }

    var isSettled: Bool { result != nil }
}
