import Glibc
import Synchronization

/// Child processes for the benchmark: timed runs (posix_spawn + wait4) and
/// peak-RSS runs (fork + ptrace, see `peakRSS`).

struct ChildResult {
    var status: Int32 // raw wait status
    var wallNanoseconds: UInt64
    var maxRSSKiB: Int // wait4's ru_maxrss
    var cpuNanoseconds: UInt64 // wait4's ru_utime + ru_stime
    var stderr: String

    var exitedCleanly: Bool { status & 0x7f == 0 && (status >> 8) & 0xff == 0 }
    var describeStatus: String {
        status & 0x7f == 0 ? "exit status \((status >> 8) & 0xff)" : "killed by signal \(status & 0x7f)"
    }
}

/// posix_spawn's failure, with its errno (ENOENT: no such program).
struct SpawnError: Error, CustomStringConvertible {
    let program: String
    let code: Int32
    var description: String { "posix_spawn \(program): \(String(cString: strerror(code)))" }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// NULL-terminated C argv, allocated before any fork so the child only execs.
final class CArgv {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    let count: Int
    init(_ args: [String]) {
        count = args.count
        pointers = .allocate(capacity: args.count + 1)
        for (i, a) in args.enumerated() { pointers[i] = strdup(a) }
        pointers[args.count] = nil
    }
    deinit {
        for i in 0..<count { free(pointers[i]) }
        pointers.deallocate()
    }
}

@inline(__always)
func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Runs `args` (args[0] is the path) with stdin and stdout on /dev/null, times
/// posix_spawn → wait4 with CLOCK_MONOTONIC, and returns wait4's rusage. With
/// `captureStderr` the child's stderr comes back through a pipe (read after the
/// clock stops, so only a benchmark that prints little should use it); without,
/// stderr goes to /dev/null. With `searchPath`, args[0] is looked up in PATH.
func spawnAndWait(_ argv: CArgv, captureStderr: Bool = false, searchPath: Bool = false) throws -> ChildResult {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    var pipeFDs: [Int32] = [-1, -1]
    if captureStderr {
        guard pipe(&pipeFDs) == 0 else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
    } else {
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    }

    var pid: pid_t = 0
    let start = monotonicNow()
    let rc =
        searchPath
        ? posix_spawnp(&pid, argv.pointers[0]!, &actions, nil, argv.pointers, environ)
        : posix_spawn(&pid, argv.pointers[0]!, &actions, nil, argv.pointers, environ)
    guard rc == 0 else {
        if captureStderr {
            close(pipeFDs[0])
            close(pipeFDs[1])
        }
        throw SpawnError(program: String(cString: argv.pointers[0]!), code: rc)
    }
    if captureStderr { close(pipeFDs[1]) }
    // The pipe holds 64 KiB; the baseline writes one line, so it cannot block.
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
        guard errno == EINTR else { throw BenchError("wait4: \(String(cString: strerror(errno)))") }
    }
    let end = monotonicNow()

    var text = ""
    if captureStderr {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n > 0 { bytes += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        close(pipeFDs[0])
        text = String(decoding: bytes, as: UTF8.self)
    }
    func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1000 }
    return ChildResult(
        status: status, wallNanoseconds: end - start, maxRSSKiB: usage.ru_maxrss,
        cpuNanoseconds: ns(usage.ru_utime) + ns(usage.ru_stime), stderr: text)
}

// MARK: Peak RSS

/// Why not wait4's ru_maxrss of a posix_spawn child: glibc's posix_spawn runs the
/// child on the parent's memory (CLONE_VM | CLONE_VFORK), and at execve the kernel
/// folds the peak RSS of the mm being replaced into the child's maxrss
/// (fs/exec.c, exec_mmap → setmax_mm_hiwater_rss). So ru_maxrss reports at least
/// kvm-bench's own RSS (≈ 5 MiB, more after the exit benchmark mapped guest RAM)
/// for every child. A fork child carries the pages fork copied (≈ 1.5 MiB).
///
/// `peakRSS` instead runs the child under ptrace, stops it at PTRACE_EVENT_EXIT
/// (its memory still mapped) and reads VmHWM from /proc/PID/status: the peak RSS
/// of the program image itself, nothing inherited. wait4's ru_maxrss of the same
/// run is returned alongside for reference.
struct RSSResult {
    var vmHWMKiB: Int
    var ruMaxRSSKiB: Int
    var status: Int32
    /// With `guestMappingKiB`: /proc/PID/smaps at the same stop, whose guest Rss is
    /// that of the anonymous mapping(s) of exactly that size (the guest RAM pages
    /// the run touched).
    var smaps: SmapsRSS?
    var guestRSSKiB: Int { smaps?.guestKiB ?? -1 }
    /// Peak RSS beyond guest RAM: VmHWM minus the guest mapping's Rss at exit.
    var beyondGuestKiB: Int { guestRSSKiB < 0 ? -1 : vmHWMKiB - guestRSSKiB }
}

/// ptrace(2). glibc declares it variadic, which Swift does not import; its
/// arguments here are all integers and pointers, passed in the same registers by a
/// fixed four-argument call, so the symbol is bound directly (this also works in a
/// -static-executable build, where dlsym finds nothing).
@_silgen_name("ptrace")
private func sysPtrace(
    _ request: CInt, _ pid: pid_t, _ addr: UnsafeMutableRawPointer?,
    _ data: UnsafeMutableRawPointer?
) -> CLong

private let PTRACE_TRACEME_: CInt = 0
private let PTRACE_CONT_: CInt = 7
private let PTRACE_SETOPTIONS_: CInt = 0x4200
private let PTRACE_O_TRACEEXIT_: Int = 0x40
private let PTRACE_O_EXITKILL_: Int = 0x100000
private let PTRACE_EVENT_EXIT_: Int32 = 6

func peakRSS(_ argv: CArgv, guestMappingKiB: Int? = nil) throws -> RSSResult {
    let ptrace = sysPtrace
    let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
    guard devNull >= 0 else { throw BenchError("/dev/null: \(String(cString: strerror(errno)))") }
    defer { close(devNull) }
    let pid = fork()
    if pid == 0 {
        // Child: async-signal-safe calls only.
        _ = ptrace(PTRACE_TRACEME_, 0, nil, nil)
        dup2(devNull, 0)
        dup2(devNull, 1)
        dup2(devNull, 2)
        execv(argv.pointers[0]!, argv.pointers)
        _exit(127)
    }
    guard pid > 0 else { throw BenchError("fork: \(String(cString: strerror(errno)))") }

    var status: Int32 = 0
    var usage = rusage()
    var hwm = -1
    var smaps: SmapsRSS?
    var sawExec = false
    while true {
        guard wait4(pid, &status, 0, &usage) == pid else {
            if errno == EINTR { continue }
            throw BenchError("wait4: \(String(cString: strerror(errno)))")
        }
        if status & 0xff == 0x7f { // stopped
            let signal = (status >> 8) & 0xff
            let event = status >> 16
            var deliver: Int32 = 0
            if !sawExec && signal == SIGTRAP && event == 0 {
                sawExec = true
                _ = ptrace(
                    PTRACE_SETOPTIONS_, pid, nil,
                    UnsafeMutableRawPointer(bitPattern: PTRACE_O_TRACEEXIT_ | PTRACE_O_EXITKILL_))
            } else if signal == SIGTRAP && event == PTRACE_EVENT_EXIT_ {
                hwm = vmHWM(pid)
                if let size = guestMappingKiB { smaps = readSmapsRSS(pid, guestKiB: size) }
            } else {
                deliver = signal
            }
            _ = ptrace(PTRACE_CONT_, pid, nil, UnsafeMutableRawPointer(bitPattern: Int(deliver)))
            continue
        }
        break // exited or killed
    }
    guard hwm >= 0 else {
        throw BenchError("could not read VmHWM of \(String(cString: argv.pointers[0]!)) (ptrace refused?)")
    }
    return RSSResult(vmHWMKiB: hwm, ruMaxRSSKiB: usage.ru_maxrss, status: status, smaps: smaps)
}

private func vmHWM(_ pid: pid_t) -> Int {
    guard let text = readTextFile("/proc/\(pid)/status") else { return -1 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let digits = line.dropFirst(6).filter { $0.isNumber }
        return Int(String(digits)) ?? -1
    }
    return -1
}

// MARK: Files

func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { bytes += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `bytes` to a new file in $TMPDIR (or /tmp); removed by `TempFiles.removeAll`.
enum TempFiles {
    static let paths = Mutex<[String]>([])

    static func write(_ bytes: [UInt8], name: String) throws -> String {
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(dir)/kvm-bench-\(name)-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw BenchError("mkstemp in \(dir): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        paths.withLock { $0.append(path) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            guard n > 0 else { throw BenchError("write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        return path
    }

    static func removeAll() {
        paths.withLock { paths in
            for p in paths { unlink(p) }
            paths.removeAll()
        }
    }
}

/// The directory of the running executable (/proc/self/exe).
func executableDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return "." }
    let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return String(path[..<slash])
}
