import Glibc

/// A background thread that lets a device raise interrupts while no vCPU
/// exits (QEMU's timers, which its main loop runs): it calls `fire`, sleeps
/// for as long as `fire` asked (nil: until kicked), and calls it again; a
/// `kick()` from any thread makes it call `fire` at once, e.g. after the guest
/// reprogrammed the device. The device's accesses take no part in it beyond
/// the kick, so a vCPU exit costs nothing for it.
///
/// The owner must call `stop()` (a device does in its deinit): the thread
/// keeps the timer alive until then. `fire` runs on the timer's thread only.
// @unchecked: `kicked` and `stopping` are guarded by the pthread mutex beside them (a condition variable needs one).
final class DeviceTimer: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Guarded by `mutex`.
    private var kicked = true
    private var stopping = false
    private var thread: PosixThread?

    /// Starts the thread; `fire` returns the nanoseconds until it wants to run
    /// again, or nil to wait for a kick.
    init(_ fire: @escaping @Sendable () -> UInt64?) throws {
        pthread_mutex_init(mutex, nil)
        // Sleep on CLOCK_MONOTONIC: a host clock step must not stretch a sleep.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        // The thread holds the timer until `stop()`; a throw here still deinits it.
        thread = try PosixThread { [self] in loop(fire) }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Makes the thread call `fire` now (any thread, any lock held).
    func kick() {
        pthread_mutex_lock(mutex)
        kicked = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Ends the thread and waits for it; `fire` is not called afterwards.
    /// Must not be called from `fire`.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        thread?.join()
    }

    private func loop(_ fire: () -> UInt64?) {
        var deadline: UInt64? // CLOCK_MONOTONIC nanoseconds
        pthread_mutex_lock(mutex)
        while !stopping {
            if kicked || deadline.map({ monotonicNanoseconds() >= $0 }) == true {
                kicked = false
                // `fire` takes the device's lock: never call it holding ours,
                // which `kick()` takes under the device's lock.
                pthread_mutex_unlock(mutex)
                deadline = fire().map { monotonicNanoseconds() &+ $0 }
                pthread_mutex_lock(mutex)
                continue
            }
            if let deadline {
                var until = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                pthread_cond_timedwait(condition, mutex, &until)
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        pthread_mutex_unlock(mutex)
    }
}

extension UInt64 {
    /// `self × multiplier ÷ divisor` without overflowing the product (QEMU's
    /// muldiv64), for converting between clock rates; the quotient must fit.
    func scaled(by multiplier: UInt64, per divisor: UInt64) -> UInt64 {
        let product = multipliedFullWidth(by: multiplier)
        return divisor.dividingFullWidth((product.high, product.low)).quotient
    }
}
