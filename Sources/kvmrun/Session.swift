import Glibc
import KVMCore

/// The process around a running machine: SIGINT, SIGTERM and SIGHUP become a
/// clean stop of every vCPU (and the terminal is restored), SIGUSR1 asks for a
/// nested-state dump, and stdin — a terminal or a pipe — feeds COM1.
///
/// Signals are blocked in the calling thread (and the vCPU threads it starts
/// later) and taken by one thread with sigwait: no code runs in signal context.
// @unchecked: `attached` is behind `lock`; `threads` is appended to on the main thread only.
final class Session: @unchecked Sendable {
    /// The signal that stopped the run, 0 if none.
    private let stopSignal = AtomicCounter()
    let dumpRequested = AtomicFlag()
    /// Set on the main thread, read on the signal thread.
    private var attached: Machine?
    private let lock = Lock()
    private var machine: Machine? { lock.withLock { attached } }
    private var threads: [PosixThread] = []

    init() throws {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGUSR1] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitSet = set
        threads.append(
            try PosixThread { [self] in
                var set = waitSet
                while true {
                    var signal: Int32 = 0
                    guard sigwait(&set, &signal) == 0 else { continue }
                    handle(signal)
                }
            })
    }

    /// Starts serving `machine`: its vCPUs are what signals stop, its UART what stdin feeds.
    func attach(_ machine: Machine) throws {
        lock.withLock { attached = machine }
        // A SIGINT/SIGTERM that came while the machine was being built stops it now.
        if stopSignal.value != 0 { for vcpu in machine.vcpus { vcpu.stop() } }
        guard Console.isInteractiveInput else { return }
        Console.enterRawMode()
        let serial = machine.serial
        threads.append(
            try PosixThread {
                var buffer = [UInt8](repeating: 0, count: 256)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return }
                    serial.receive(Array(buffer[0..<n]))
                }
            })
    }

    /// The status for a run that ended `.stopped` by a signal, if it was one.
    var interruption: CLIError? {
        switch Int32(stopSignal.value) {
        case 0: nil
        case SIGINT: CLIError(.interrupted, "stopped by SIGINT")
        case let s: CLIError(.terminated, "stopped by signal \(s)")
        }
    }

    private func handle(_ signal: Int32) {
        if signal != SIGUSR1 && stopSignal.value == 0 { stopSignal.add(Int(signal)) }
        guard let machine else { return }
        if signal == SIGUSR1 {
            dumpRequested.raise()
            machine.vcpu.stop()
            return
        }
        for vcpu in machine.vcpus { vcpu.stop() }
    }
}

/// The controlling terminal, when stdin is one.
enum Console {
    /// On the heap: ASan found tcgetattr writing past a static `termios` global.
    // nonisolated(unsafe), both: used on the main thread only (and by its atexit handler).
    nonisolated(unsafe) private static let saved = UnsafeMutablePointer<termios>.allocate(capacity: 1)
    nonisolated(unsafe) private static var isRaw = false

    /// stdin is a terminal or a pipe (not /dev/null, not a file).
    static var isInteractiveInput: Bool {
        if isatty(0) != 0 { return true }
        var info = stat()
        return fstat(0, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO
    }

    /// Characters reach the guest as typed (no line editing, no echo); ^C still
    /// signals, as with QEMU's -serial stdio. Restored at exit.
    static func enterRawMode() {
        guard isatty(0) != 0, !isRaw, tcgetattr(0, saved) == 0 else { return }
        var raw = saved.pointee
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | IEXTEN)
        raw.c_iflag &= ~tcflag_t(ICRNL | IXON)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(0, TCSANOW, &raw) == 0 else { return }
        isRaw = true
        atexit { Console.restore() }
    }

    static func restore() {
        guard isRaw else { return }
        tcsetattr(0, TCSANOW, saved)
        isRaw = false
    }
}
