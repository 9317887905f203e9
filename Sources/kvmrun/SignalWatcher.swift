import Glibc
import KVMCore

/// Turns asynchronous signals into ordinary calls on a thread of their own:
/// the signals are blocked in the calling thread (and the threads it starts
/// later), and one thread `sigwait`s for them. No code runs in signal context.
final class SignalWatcher {
    private let thread: PosixThread

    /// Call before starting other threads, so they inherit the blocked mask.
    init(_ signals: [Int32], handler: @escaping (Int32) -> Void) throws {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitSet = set
        thread = try PosixThread {
            var set = waitSet
            while true {
                var received: Int32 = 0
                if sigwait(&set, &received) == 0 { handler(received) }
            }
        }
    }
}
