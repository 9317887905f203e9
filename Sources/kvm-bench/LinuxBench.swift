import Glibc

// 7. Linux boot (`--only linux`): the same kernel and initramfs (Tools/linux-guest)
//    from process start to init's first line (INIT-START) and to poweroff (ACPI S5,
//    process exit), kvmrun against QEMU -M microvm and -M pc (qboot; SeaBIOS under
//    TCG), on KVM and on TCG. Each configuration gets one first attempt under the
//    limit (--linux-limit, 60 s); those that reach INIT-START are run --linux-runs
//    more times (round-robin, so host load drift hits all alike) and their medians
//    compared. kvmrun's extras: --stats (time in KVM_RUN vs handling exits), its set-up
//    (`--timeout 1ms` runs), the Rss beyond the guest RAM mapping at INIT-START, and
//    where the time goes (one verbose pass without `quiet` times the kernel's first line).

let linuxMemoryMiB = 256
let linuxCommandLine = "console=ttyS0 quiet"
/// The verbose pass: the kernel's messages on, early console from the start.
let linuxVerboseCommandLine = "console=ttyS0 earlyprintk=ttyS0"

/// One run of a VM process whose serial console is its stdout.
struct ConsoleRun {
    var initMs: Double? // process start → the line INIT-START
    var firstKernelLineMs: Double? // process start → "Linux version …" (the verbose pass)
    var exitMs: Double? // process start → wait4; nil when stopped at the limit
    var status: Int32 = 0
    var cpuMs: Double = .nan // wait4's user + system time
    var stoppedAtLimit = false
    var lastLine = "" // the console's last non-empty line
    var stdout = ""
    var stderr = ""
    var initUptime: Double? // INIT-UPTIME: the guest's clock at INIT-START
    /// /proc/PID/smaps at INIT-START (or, when it never came, just before the stop).
    var rss: SmapsRSS?
    var rssAtLimit = false

    var reachedInit: Bool { initMs != nil }
    var exitedCleanly: Bool { exitMs != nil && status & 0x7f == 0 && (status >> 8) & 0xff == 0 }
    var describeStatus: String {
        status & 0x7f == 0 ? "exit status \((status >> 8) & 0xff)" : "killed by signal \(status & 0x7f)"
    }
}

/// Total Rss of a process and the Rss of its guest RAM: the anonymous mapping(s)
/// whose size is exactly the guest memory size.
struct SmapsRSS {
    var totalKiB: Int
    var guestKiB: Int // -1: no such mapping
    var fileKiB = 0 // file-backed mappings (the program, shared libraries)
    var beyondGuestMiB: Double { guestKiB < 0 ? .nan : Double(totalKiB - guestKiB) / 1024 }
}

func readSmapsRSS(_ pid: pid_t, guestKiB: Int) -> SmapsRSS? {
    guard let text = readTextFile("/proc/\(pid)/smaps"), !text.isEmpty else { return nil }
    func kib(_ line: Substring) -> Int { Int(String(line.filter { $0.isNumber })) ?? 0 }
    var total = 0
    var guest = -1
    var anonymous = false
    var file = false
    var sizeMatches = false
    var fileTotal = 0
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if let range = fields.first, range.contains("-"), range.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
            // A mapping's header: "start-end perms offset dev inode [path]"; no path: anonymous.
            anonymous = fields.count == 5
            file = fields.count > 5 && fields[5].hasPrefix("/")
            sizeMatches = false
        } else if line.hasPrefix("Size:") {
            sizeMatches = anonymous && kib(line) == guestKiB
        } else if line.hasPrefix("Rss:") {
            let k = kib(line)
            total += k
            if file { fileTotal += k }
            if sizeMatches { guest = max(guest, 0) + k }
        }
    }
    return SmapsRSS(totalKiB: total, guestKiB: guest, fileKiB: fileTotal)
}

/// Runs `args` with stdin on /dev/null and stdout and stderr on pipes, following the
/// console (stdout) line by line with the time each line arrived. At INIT-START,
/// with `guestKiB`, reads /proc/PID/smaps. After `limitSeconds` the process gets
/// SIGTERM (kvmrun prints its --stats then), 3 s later SIGKILL.
func runConsole(_ args: [String], limitSeconds: Double, guestKiB: Int? = nil) throws -> ConsoleRun {
    let argv = CArgv(args)
    var outPipe: [Int32] = [-1, -1]
    var errPipe: [Int32] = [-1, -1]
    guard pipe(&outPipe) == 0 else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
    guard pipe(&errPipe) == 0 else {
        close(outPipe[0])
        close(outPipe[1])
        throw BenchError("pipe: \(String(cString: strerror(errno)))")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    for fd in [outPipe[0], outPipe[1], errPipe[0], errPipe[1]] { posix_spawn_file_actions_addclose(&actions, fd) }

    var pid: pid_t = 0
    let start = monotonicNow()
    let rc = posix_spawn(&pid, argv.pointers[0]!, &actions, nil, argv.pointers, environ)
    close(outPipe[1])
    close(errPipe[1])
    guard rc == 0 else {
        close(outPipe[0])
        close(errPipe[0])
        throw BenchError("posix_spawn \(args[0]): \(String(cString: strerror(rc)))")
    }
    func msSinceStart() -> Double { Double(monotonicNow() - start) / 1e6 }

    var run = ConsoleRun()
    var outBytes: [UInt8] = []
    var errBytes: [UInt8] = []
    var line: [UInt8] = []
    var open = [outPipe[0], errPipe[0]]
    let deadline = start + UInt64(limitSeconds * 1e9)
    var killAt: UInt64? = nil // when SIGKILL follows the SIGTERM
    var buffer = [UInt8](repeating: 0, count: 65536)

    func consoleLine(_ bytes: [UInt8], at ms: Double) {
        var text = String(decoding: bytes, as: UTF8.self)
        while text.last == "\r" { text.removeLast() }
        if !text.trimmingCharacters(" ").isEmpty { run.lastLine = text }
        if run.firstKernelLineMs == nil, text.contains("Linux version ") { run.firstKernelLineMs = ms }
        if run.initMs == nil, text == "INIT-START" {
            run.initMs = ms
            if let g = guestKiB { run.rss = readSmapsRSS(pid, guestKiB: g) }
        }
        if run.initUptime == nil, text.hasPrefix("INIT-UPTIME ") { run.initUptime = Double(text.dropFirst(12)) }
    }

    while !open.isEmpty {
        let now = monotonicNow()
        if killAt == nil, now >= deadline {
            run.stoppedAtLimit = true
            if let g = guestKiB, run.rss == nil {
                run.rss = readSmapsRSS(pid, guestKiB: g)
                run.rssAtLimit = true
            }
            kill(pid, SIGTERM)
            killAt = now + 3_000_000_000
        } else if let k = killAt, now >= k {
            kill(pid, SIGKILL)
            killAt = .max
        }
        let wake = killAt ?? deadline
        let timeoutMs = wake == .max ? -1 : Int32(min(Double(wake > now ? wake - now : 0) / 1e6 + 1, 1000))
        var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let n = poll(&fds, nfds_t(fds.count), timeoutMs)
        if n < 0 {
            if errno == EINTR { continue }
            throw BenchError("poll: \(String(cString: strerror(errno)))")
        }
        let ms = msSinceStart()
        for p in fds where p.revents != 0 {
            let got = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 {
                close(p.fd)
                open.removeAll { $0 == p.fd }
                continue
            }
            if p.fd == outPipe[0] {
                if outBytes.count < 1 << 20 { outBytes += buffer[0..<got] }
                for b in buffer[0..<got] {
                    if b == 10 {
                        consoleLine(line, at: ms)
                        line.removeAll(keepingCapacity: true)
                    } else {
                        line.append(b)
                    }
                }
            } else if errBytes.count < 1 << 20 {
                errBytes += buffer[0..<got]
            }
        }
    }
    if !line.isEmpty { consoleLine(line, at: msSinceStart()) }
    // Both pipes are closed: the process has exited (or closed them: wait for it, under the same limit).
    var status: Int32 = 0
    var usage = rusage()
    while true {
        let r = wait4(pid, &status, killAt == nil ? WNOHANG : 0, &usage)
        if r == pid { break }
        if r < 0 && errno != EINTR { throw BenchError("wait4: \(String(cString: strerror(errno)))") }
        if r == 0 {
            if monotonicNow() >= deadline {
                kill(pid, SIGKILL)
                run.stoppedAtLimit = true
                killAt = .max
            } else {
                usleep(1000)
            }
        }
    }
    if !run.stoppedAtLimit { run.exitMs = msSinceStart() }
    func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1000 }
    run.status = status
    run.cpuMs = Double(ns(usage.ru_utime) + ns(usage.ru_stime)) / 1e6
    run.stdout = String(decoding: outBytes, as: UTF8.self)
    run.stderr = String(decoding: errBytes, as: UTF8.self)
    return run
}

extension String {
    func trimmingCharacters(_ set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}

/// kvmrun --stats on stderr: "exits: N" and "time: guest X ms, vmm Y ms (…)".
struct KvmrunStats {
    var exits: Int
    var guestMs: Double
    var vmmMs: Double

    init?(_ stderr: String) {
        var exits: Int?
        var guest: Double?
        var vmm: Double?
        for line in stderr.split(separator: "\n") {
            if line.hasPrefix("exits: ") { exits = Int(line.dropFirst(7).trimmingSpaces) }
            if line.hasPrefix("time: guest ") {
                // "time: guest 13250.35 ms, vmm 13.72 ms (100% in guest)"
                let words = line.split(separator: " ")
                if words.count >= 7 {
                    guest = Double(words[2])
                    vmm = Double(words[5])
                }
            }
        }
        guard let exits, let guest, let vmm else { return nil }
        self.exits = exits
        self.guestMs = guest
        self.vmmMs = vmm
    }
}

// MARK: Configurations and results

struct LinuxConfig {
    var name: String
    var args: [String]
    var isKvmrun: Bool
    /// Printed under the configuration's row when a run of it failed.
    var failureNote: String?
    /// The command with the verbose command line instead of the quiet one.
    var verboseArgs: [String] { args.map { $0 == linuxCommandLine ? linuxVerboseCommandLine : $0 } }
}

struct LinuxResult {
    var config: LinuxConfig
    var first: ConsoleRun
    var runs: [ConsoleRun] = []
    var verbose: [ConsoleRun] = []
    /// The limit of the repeats: a run taking 3 times as long as the first attempt has hung.
    var repeatLimitSeconds: Double = .nan

    var booted: Bool { first.reachedInit }
    var initMs: [Double] { runs.compactMap(\.initMs) }
    var exitMs: [Double] { runs.compactMap(\.exitMs) }
    var cpuMs: [Double] { runs.map(\.cpuMs) }
    var uptimeS: [Double] { runs.compactMap(\.initUptime) }
    var firstLineMs: [Double] { verbose.compactMap(\.firstKernelLineMs) }
    var rssBeyondMiB: [Double] { runs.compactMap { $0.rss?.beyondGuestMiB }.filter(\.isFinite) }
    var stats: [KvmrunStats] { runs.compactMap { KvmrunStats($0.stderr) } }
    /// The runs that did not reach INIT-START or did not end with status 0.
    var failures: [ConsoleRun] { runs.filter { !$0.reachedInit || !$0.exitedCleanly } }
}

struct LinuxBench {
    var kernel = ""
    var initrd = ""
    var runs = 10
    var limitSeconds = 60.0
    var results: [LinuxResult] = []
    var qemuNote: String?
    /// kvmrun --stats --timeout 1ms on the same kernel: set-up and teardown alone.
    var setupRuns: [ConsoleRun] = []

    var kvmrun: LinuxResult? { results.first { $0.config.isKvmrun } }
    var qemus: [LinuxResult] { results.filter { !$0.config.isKvmrun } }

    /// QEMU's fastest configuration that booted, by the median of `metric`.
    func fastestQEMU(_ metric: (LinuxResult) -> [Double]) -> (String, Double)? {
        qemus.filter(\.booted).map { ($0.config.name, median(metric($0))) }.filter { $0.1.isFinite }.min { $0.1 < $1.1 }
    }
    var kvmrunBooted: Bool { kvmrun?.booted == true && kvmrun.map { !$0.initMs.isEmpty } == true }
    /// kvmrun's median over QEMU's fastest (≤ 1/3 is ≥ 3× faster); NaN when either did not boot.
    func ratio(_ metric: (LinuxResult) -> [Double]) -> Double {
        guard kvmrunBooted, let k = kvmrun, let (_, q) = fastestQEMU(metric) else { return .nan }
        return median(metric(k)) / q
    }

    /// Set-up + teardown per `--timeout 1ms` run: wall and CPU minus the time in the run loop.
    var setupWallMs: [Double] {
        setupRuns.compactMap { r in
            guard let e = r.exitMs, let s = KvmrunStats(r.stderr) else { return nil }
            return e - s.guestMs - s.vmmMs
        }
    }
    var setupCpuMs: [Double] {
        setupRuns.compactMap { r in
            guard let s = KvmrunStats(r.stderr) else { return nil }
            return max(r.cpuMs - s.guestMs, 0)
        }
    }
    /// kvmrun's own time outside KVM_RUN for one boot: set-up/teardown CPU + handling exits.
    var kvmrunOutsideMs: Double {
        guard kvmrunBooted, let k = kvmrun else { return .nan }
        return median(setupCpuMs) + median(k.stats.map(\.vmmMs))
    }
    /// Rss beyond the guest RAM mapping: at INIT-START over the runs; when kvmrun did
    /// not boot, what its first attempt showed at the limit.
    var kvmrunRSSBeyondMiB: Double {
        guard let k = kvmrun else { return .nan }
        if kvmrunBooted { return median(k.rssBeyondMiB) }
        return k.first.rss?.beyondGuestMiB ?? .nan
    }
}

// MARK: Run

/// The repository root: the first directory above kvm-bench's (or the current one) with Tools/linux-guest.
private func repoRoot() -> String? {
    var candidates: [String] = []
    var dir = binDir
    while !dir.isEmpty && dir != "/" {
        candidates.append(dir)
        guard let slash = dir.lastIndex(of: "/") else { break }
        dir = String(dir[..<slash])
    }
    var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    if getcwd(&cwd, cwd.count) != nil { candidates.append(String(cString: cwd)) }
    return candidates.first { access($0 + "/Tools/linux-guest/get-kernel", X_OK) == 0 }
}

/// Runs a Tools/linux-guest script and returns the path it prints.
private func guestFile(_ script: String, root: String) throws -> String {
    let r = try runConsole([root + "/Tools/linux-guest/" + script], limitSeconds: 600)
    let path = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
    guard r.exitedCleanly, access(path, R_OK) == 0 else {
        throw BenchError("Tools/linux-guest/\(script): \(r.describeStatus): \(r.stderr)\(r.stdout)")
    }
    return path
}

func runLinuxBench(runs: Int, limitSeconds: Double, kernel: String?, initrd: String?) throws -> LinuxBench {
    var bench = LinuxBench()
    bench.runs = runs
    bench.limitSeconds = limitSeconds
    progress("7. Linux boot: ")
    if kernel == nil || initrd == nil {
        guard let root = repoRoot() else {
            throw BenchError(
                "Tools/linux-guest not found above \(binDir) or here: pass --linux-kernel and --linux-initrd")
        }
        progress("kernel and initramfs (Tools/linux-guest)")
        bench.kernel = try kernel ?? guestFile("get-kernel", root: root)
        bench.initrd = try initrd ?? guestFile("make-initramfs", root: root)
    } else {
        bench.kernel = kernel!
        bench.initrd = initrd!
    }
    for path in [bench.kernel, bench.initrd] where access(path, R_OK) != 0 {
        throw BenchError("\(path): not readable")
    }

    let mem = "\(linuxMemoryMiB)"
    let boot = ["-kernel", bench.kernel, "-initrd", bench.initrd, "-append", linuxCommandLine, "-smp", "1", "-m", mem]
    var configs = [LinuxConfig(name: "kvmrun (KVM)", args: [kvmrunPath, "--stats"] + boot, isKvmrun: true)]
    if let qemu = findOnPath("qemu-system-x86_64") {
        let common = ["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"] + boot
        // microvm: its default firmware (qboot's bios-microvm.bin) boots -kernel; without the
        // PIT or the RTC the kernel finds no clock to calibrate the TSC against and hangs (TCG).
        let microvm = [qemu, "-M", "microvm,pit=on,rtc=on"]
        let roms = ["/usr/share/qemu/qboot.rom", "/usr/share/seabios/qboot.rom"]
        let qboot = roms.first { access($0, R_OK) == 0 }
        configs.append(
            LinuxConfig(name: "QEMU microvm, KVM", args: microvm + ["-accel", "kvm"] + common, isKvmrun: false))
        if let qboot {
            configs.append(
                LinuxConfig(
                    name: "QEMU pc+qboot, KVM", args: [qemu, "-M", "pc", "-bios", qboot, "-accel", "kvm"] + common,
                    isKvmrun: false))
        }
        configs.append(
            LinuxConfig(
                name: "QEMU microvm, TCG", args: microvm + ["-accel", "tcg"] + common, isKvmrun: false,
                failureNote: microvmTCGNote))
        if let qboot {
            configs.append(
                LinuxConfig(
                    name: "QEMU pc+qboot, TCG", args: [qemu, "-M", "pc", "-bios", qboot, "-accel", "tcg"] + common,
                    isKvmrun: false))
        }
        configs.append(
            LinuxConfig(
                name: "QEMU pc+SeaBIOS, TCG", args: [qemu, "-M", "pc", "-accel", "tcg"] + common, isKvmrun: false))
        if qboot == nil {
            bench.qemuNote = "qboot.rom not found (/usr/share/qemu, /usr/share/seabios): no pc+qboot figures"
        }
    } else {
        bench.qemuNote = "qemu-system-x86_64 not installed (apt-get install qemu-system-x86): no QEMU figures"
    }
    let guestKiB = linuxMemoryMiB * 1024

    // First attempts: one each under the limit (a warm-up too: kernel and initramfs in the page cache).
    progress(", first attempts (\(fmt(limitSeconds, 0)) s limit):")
    for c in configs {
        progress(" \(c.name)")
        let r = try runConsole(c.args, limitSeconds: limitSeconds, guestKiB: guestKiB)
        progress(r.reachedInit ? " ok," : " no,")
        bench.results.append(LinuxResult(config: c, first: r))
    }
    // kvmrun's set-up: the same machine stopped 1 ms into the guest.
    let setupArgs = [kvmrunPath, "--stats", "--timeout", "1ms"] + boot
    progress(" kvmrun set-up")
    for _ in 0..<runs { bench.setupRuns.append(try runConsole(setupArgs, limitSeconds: limitSeconds)) }

    let booted = bench.results.indices.filter { bench.results[$0].booted }
    for j in booted {
        let first = (bench.results[j].first.exitMs ?? bench.results[j].first.initMs ?? limitSeconds * 1000) / 1000
        bench.results[j].repeatLimitSeconds = min(limitSeconds, max(10, 3 * first))
    }
    if !booted.isEmpty {
        progress(", \(runs) runs each of \(booted.count)")
        for i in 0..<runs {
            // Round-robin, each round starting one configuration later.
            for k in 0..<booted.count {
                let j = booted[(i + k) % booted.count]
                let r = bench.results[j]
                bench.results[j].runs.append(
                    try runConsole(r.config.args, limitSeconds: r.repeatLimitSeconds, guestKiB: guestKiB))
            }
            progress(".")
        }
        // Where the time goes: the kernel's messages on, to time its first line.
        let verboseRuns = max(1, min(3, runs / 3))
        progress(", \(verboseRuns) verbose")
        for _ in 0..<verboseRuns {
            for j in booted {
                let r = bench.results[j]
                bench.results[j].verbose.append(
                    try runConsole(r.config.verboseArgs, limitSeconds: r.repeatLimitSeconds))
            }
            progress(".")
        }
    }
    progress("\n")
    return bench
}

// MARK: Targets and output

func linuxTargets(_ b: LinuxBench) -> [Target] {
    [
        Target(name: "Linux to INIT-START kvmrun/QEMU fastest", measured: b.ratio(\.initMs), limit: 1.0 / 3, unit: "x"),
        Target(name: "Linux to poweroff kvmrun/QEMU fastest", measured: b.ratio(\.exitMs), limit: 1.0 / 3, unit: "x"),
        Target(name: "kvmrun CPU outside KVM_RUN (Linux)", measured: b.kvmrunOutsideMs, limit: 5, unit: "ms"),
        Target(
            name: "kvmrun RSS beyond guest (Linux)", measured: b.kvmrunRSSBeyondMiB,
            limit: Published.firecrackerOverheadMiB, unit: "MiB"),
    ]
}

/// Why QEMU microvm under TCG sometimes hangs (seen in 2 of 10 boots by hand on the 2-CPU build host).
let microvmTCGNote = """
    microvm has no HPET or ACPI PM timer: when the kernel's TSC calibration against the PIT fails \
    (TCG on a loaded host: "tsc: Unable to calibrate against PIT", "No reference (HPET/PMTIMER) available", \
    seen with earlyprintk) the kernel marks the TSC unstable and hangs before any line that `quiet` lets through
    """

private func didNotBoot(_ r: ConsoleRun, _ limit: Double) -> String {
    if r.reachedInit {
        // INIT-START came but the process did not end (cleanly) in time.
        return r.stoppedAtLimit
            ? "reached INIT-START but did not power off in \(fmt(limit, 0)) s"
            : "reached INIT-START, then \(r.describeStatus)"
    }
    let why =
        r.stoppedAtLimit
        ? "did not boot in \(fmt(limit, 0)) s"
        : "did not boot: \(r.describeStatus) after \(fmt((r.exitMs ?? .nan) / 1000, 1)) s"
    let last = r.lastLine.isEmpty ? "no console output" : "console's last line: \"\(String(r.lastLine.prefix(100)))\""
    return why + " (" + last + ")"
}

func printLinuxTable(_ b: LinuxBench, _ targets: [Target]) {
    func mark(_ name: String) -> String {
        guard let t = targets.first(where: { $0.name == name }) else { return "" }
        return t.pass ? "✔" : (t.measured.isFinite ? "✘" : "✘ not measured")
    }
    let limit = fmt(b.limitSeconds, 0)
    print(
        "7. Linux boot: the same kernel and initramfs, -smp 1 -m \(linuxMemoryMiB), -append \"\(linuxCommandLine)\", whole process"
    )
    print("   kernel: \(b.kernel)")
    print("   initrd: \(b.initrd)")
    print(
        "   one first attempt each (\(limit) s limit); those that boot: \(b.runs) round-robin runs, median (a repeat is"
    )
    print("   stopped after 3x its configuration's first attempt, at least 10 s, or at the limit if that comes first)")
    print(
        "   " + padRight("", 22) + padLeft("INIT-START", 11) + padLeft("min", 9) + padLeft("max", 9)
            + padLeft("poweroff", 10) + padLeft("CPU", 9) + padLeft("guest clock", 12) + padLeft("RSS-guest", 11)
            + "  ms")
    for r in b.results {
        guard r.booted else {
            print("   " + padRight(r.config.name, 22) + "  " + didNotBoot(r.first, b.limitSeconds))
            if let note = r.config.failureNote { print("   " + padRight("", 22) + "  note: " + note) }
            continue
        }
        let rss = r.rssBeyondMiB.isEmpty ? "n/a" : fmt(median(r.rssBeyondMiB), 1) + " MiB"
        print(
            "   " + padRight(r.config.name, 22) + padLeft(fmt(median(r.initMs), 0), 11)
                + padLeft(fmt(r.initMs.min() ?? .nan, 0), 9) + padLeft(fmt(r.initMs.max() ?? .nan, 0), 9)
                + padLeft(fmt(median(r.exitMs), 0), 10) + padLeft(fmt(median(r.cpuMs), 0), 9)
                + padLeft(r.uptimeS.isEmpty ? "n/a" : fmt(median(r.uptimeS) * 1000, 0), 12) + padLeft(rss, 11))
        if !r.failures.isEmpty {
            print(
                "   " + padRight("", 22)
                    + "  \(r.failures.count) of \(r.runs.count) runs failed (not in the medians), e.g. "
                    + didNotBoot(r.failures[0], r.repeatLimitSeconds))
            if let note = r.config.failureNote { print("   " + padRight("", 22) + "  note: " + note) }
        }
    }
    if let note = b.qemuNote { print("   \(note)") }
    print("   INIT-START, poweroff: process start to init's first line and to the process's exit (ACPI S5);")
    print("   CPU: user+system time (wait4); guest clock: /proc/uptime at INIT-START (INIT-UPTIME);")
    print(
        "   RSS-guest: Rss (smaps) at INIT-START minus the Rss of the anonymous \(linuxMemoryMiB) MiB guest RAM mapping"
    )
    print("   commands:")
    for r in b.results { print("     " + r.config.args.joined(separator: " ")) }

    // Where the time goes.
    print("   where the time goes (ms from process start; verbose pass: -append \"\(linuxVerboseCommandLine)\"):")
    print(
        "   " + padRight("", 22) + padLeft("set-up", 9) + padLeft("1st line", 10) + padLeft("→INIT-START", 13)
            + padLeft("→poweroff", 11))
    let setup = median(b.setupWallMs)
    for r in b.results where r.booted {
        let first = median(r.firstLineMs)
        print(
            "   " + padRight(r.config.name, 22) + padLeft(r.config.isKvmrun ? fmt(setup, 1) : "", 9)
                + padLeft(fmt(first, 0), 10) + padLeft(fmt(median(r.initMs) - first, 0), 13)
                + padLeft(fmt(median(r.exitMs) - median(r.initMs), 0), 11))
    }
    print(
        "   set-up: kvmrun start to first KVM_RUN (+ teardown), from \(b.setupRuns.count) runs of `kvmrun --stats --timeout 1ms`:"
    )
    print(
        "   wall minus the time in its run loop; 1st line: start to the kernel's \"Linux version\" line (the early console"
    )
    print("   prints it after decompression, at parse_early_param: set-up/firmware + loading + decompression + early")
    print(
        "   start_kernel); →INIT-START: the kernel to init (quiet runs' median minus the 1st line); →poweroff: init to exit"
    )
    if let k = b.kvmrun {
        let su = b.setupWallMs
        let cpu = b.setupCpuMs
        print(
            "   kvmrun set-up + teardown: median \(fmt(median(su), 2)) ms wall (min \(fmt(su.min() ?? .nan, 2)), max \(fmt(su.max() ?? .nan, 2))), "
                + "\(fmt(median(cpu), 2)) ms CPU")
        if k.booted, !k.firstLineMs.isEmpty {
            print(
                "   kvmrun decompression + early kernel (1st line minus set-up): \(fmt(median(k.firstLineMs) - median(su), 0)) ms"
            )
        }
        let s = k.booted ? k.stats : KvmrunStats(k.first.stderr).map { [$0] } ?? []
        if !s.isEmpty {
            let what = k.booted ? "median of the runs" : "the first attempt, stopped at \(limit) s"
            print(
                "   kvmrun --stats (\(what)): \(fmt(median(s.map { Double($0.exits) }), 0)) exits, "
                    + "guest (in KVM_RUN) \(fmt(median(s.map(\.guestMs)), 1)) ms, vmm (handling exits) \(fmt(median(s.map(\.vmmMs)), 2)) ms"
            )
        }
    }

    // Targets.
    let tInit = targets.first { $0.name.hasPrefix("Linux to INIT-START") }!
    let tExit = targets.first { $0.name.hasPrefix("Linux to poweroff") }!
    if !b.kvmrunBooted {
        print("   kvmrun vs QEMU: no ratio: kvmrun did not boot in \(limit) s   target >= 3x   " + mark(tInit.name))
    } else if b.fastestQEMU(\.initMs) == nil {
        print(
            "   kvmrun vs QEMU: no ratio: no QEMU configuration booted in \(limit) s   target >= 3x   "
                + mark(tInit.name))
    } else {
        for (t, metric, what) in [
            (tInit, \LinuxResult.initMs, "to INIT-START"), (tExit, \LinuxResult.exitMs, "to poweroff"),
        ] {
            let (name, _) = b.fastestQEMU { $0[keyPath: metric] }!
            let speed =
                t.measured <= 1 ? "\(fmt(1 / t.measured, 2))x faster than" : "\(fmt(t.measured, 2))x slower than"
            print(
                "   kvmrun \(what): \(speed) QEMU's fastest that booted (\(name))   target >= 3x faster   "
                    + mark(t.name))
        }
    }
    let tCPU = targets.first { $0.name.hasPrefix("kvmrun CPU") }!
    if tCPU.measured.isFinite {
        print(
            "   kvmrun CPU time outside KVM_RUN: \(fmt(tCPU.measured, 2)) ms (set-up/teardown CPU + vmm during the boot)   target <= 5 ms   "
                + mark(tCPU.name))
    } else {
        print(
            "   kvmrun CPU time outside KVM_RUN: not measured (kvmrun did not boot in \(limit) s; set-up/teardown alone: "
                + "\(fmt(median(b.setupCpuMs), 2)) ms CPU)   target <= 5 ms   " + mark(tCPU.name))
    }
    let tRSS = targets.first { $0.name.hasPrefix("kvmrun RSS") }!
    let at = b.kvmrunBooted ? "at INIT-START" : "at the \(limit) s limit (kvmrun did not reach INIT-START)"
    let detail =
        b.kvmrun.flatMap { b.kvmrunBooted ? $0.runs.first?.rss : $0.first.rss }
        .map {
            " (total \(fmt(Double($0.totalKiB) / 1024, 1)) MiB, guest RAM \($0.guestKiB < 0 ? "n/a" : fmt(Double($0.guestKiB) / 1024, 1)) MiB;"
                + " beyond it, file-backed (the kvmrun binary) \(fmt(Double($0.fileKiB) / 1024, 1)) MiB,"
                + " anonymous (heap, stacks) \(fmt($0.beyondGuestMiB - Double($0.fileKiB) / 1024, 1)) MiB)"
        } ?? ""
    let rssText =
        tRSS.measured.isFinite
        ? fmt(tRSS.measured, 2) + " MiB" + detail : "not measured (no \(linuxMemoryMiB) MiB anonymous mapping in smaps)"
    print(
        "   kvmrun RSS beyond guest memory \(at): \(rssText)   target <= \(fmt(Published.firecrackerOverheadMiB, 0)) MiB"
            + " (Firecracker's published VMM overhead)   " + mark(tRSS.name))
    print("")
}

func linuxJSON(_ b: LinuxBench, _ targets: [Target]) -> String {
    func pass(_ name: String) -> String { targets.first { $0.name == name }.map { "\($0.pass)" } ?? "false" }
    func opt(_ v: Double?) -> String { v.map { jsonNumber($0, 3) } ?? "null" }
    func first(_ r: ConsoleRun) -> String {
        "{\"init_ms\": \(opt(r.initMs)), \"exit_ms\": \(opt(r.exitMs)), \"stopped_at_limit\": \(r.stoppedAtLimit), "
            + "\"status\": \(jsonString(r.describeStatus)), \"last_line\": \(jsonString(r.lastLine))}"
    }
    let configs = b.results.map { r in
        "{\"name\": \(jsonString(r.config.name)), \"command\": \(jsonString(r.config.args.joined(separator: " "))), "
            + "\"booted\": \(r.booted), \"first\": \(first(r.first)), \"runs\": \(r.runs.count), \"failed_runs\": \(r.failures.count), "
            + "\"init_ms\": {\"median\": \(jsonNumber(median(r.initMs), 3)), \"samples\": \(jsonArray(r.initMs, 3))}, "
            + "\"exit_ms\": {\"median\": \(jsonNumber(median(r.exitMs), 3)), \"samples\": \(jsonArray(r.exitMs, 3))}, "
            + "\"cpu_ms\": {\"median\": \(jsonNumber(median(r.cpuMs), 3)), \"samples\": \(jsonArray(r.cpuMs, 3))}, "
            + "\"guest_uptime_s\": \(jsonArray(r.uptimeS, 2)), \"rss_beyond_guest_mib\": \(jsonArray(r.rssBeyondMiB, 3)), "
            + "\"first_kernel_line_ms\": \(jsonArray(r.firstLineMs, 3))}"
    }
    let k = b.kvmrun
    let stats = k.map { $0.booted ? $0.stats : KvmrunStats($0.first.stderr).map { [$0] } ?? [] } ?? []
    return """
          "linux": {"kernel": \(jsonString(b.kernel)), "initrd": \(jsonString(b.initrd)), "memory_mib": \(linuxMemoryMiB), \
        "append": \(jsonString(linuxCommandLine)), "verbose_append": \(jsonString(linuxVerboseCommandLine)), \
        "limit_s": \(jsonNumber(b.limitSeconds, 0)), "runs": \(b.runs), "configurations": [\(configs.joined(separator: ", "))], \
        "kvmrun_booted": \(b.kvmrunBooted), \
        "kvmrun_setup_ms": {"median": \(jsonNumber(median(b.setupWallMs), 3)), "samples": \(jsonArray(b.setupWallMs, 3)), \
        "cpu_median": \(jsonNumber(median(b.setupCpuMs), 3)), "cpu_samples": \(jsonArray(b.setupCpuMs, 3))}, \
        "kvmrun_stats": {"exits": \(jsonArray(stats.map { Double($0.exits) }, 0)), "guest_ms": \(jsonArray(stats.map(\.guestMs), 2)), \
        "vmm_ms": \(jsonArray(stats.map(\.vmmMs), 2)), "from": \(jsonString(k?.booted == true ? "runs" : "first attempt, stopped at the limit"))}, \
        "ratio_init": \(jsonNumber(b.ratio(\.initMs), 4)), "ratio_poweroff": \(jsonNumber(b.ratio(\.exitMs), 4)), "ratio_target": 0.333, \
        "ratio_init_pass": \(pass("Linux to INIT-START kvmrun/QEMU fastest")), "ratio_poweroff_pass": \(pass("Linux to poweroff kvmrun/QEMU fastest")), \
        "kvmrun_outside_kvm_run_ms": \(jsonNumber(b.kvmrunOutsideMs, 3)), "outside_target_ms": 5, "outside_pass": \(pass("kvmrun CPU outside KVM_RUN (Linux)")), \
        "kvmrun_rss_beyond_guest_mib": \(jsonNumber(b.kvmrunRSSBeyondMiB, 3)), "rss_at": \(jsonString(b.kvmrunBooted ? "INIT-START" : "limit")), \
        "rss_target_mib": \(jsonNumber(Published.firecrackerOverheadMiB, 0)), "rss_pass": \(pass("kvmrun RSS beyond guest (Linux)"))}
        """
}
