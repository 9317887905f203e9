import Glibc

/// A real OS thread. vCPUs run on these, not on Swift concurrency tasks: KVM_RUN
/// blocks its thread for as long as the guest runs.
package final class PosixThread {
    private var thread: pthread_t
    private var joined = false

    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread.
    package init(_ body: @escaping @Sendable () -> Void) throws {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { raw in
                let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                body.run()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw KVMError("pthread_create", errno: Errno(rawValue: result))
        }
        self.thread = thread
    }

    /// Waits for the thread to finish.
    package func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    deinit {
        if !joined { pthread_detach(thread) }
    }
}
