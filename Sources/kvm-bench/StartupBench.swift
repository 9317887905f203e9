import Glibc
import Guests
import KVMCore

// 2. Start-up: hello-long as whole processes (posix_spawn → wait4), each kvmrun
//    build found against the plain C runner (PlainCBaseline): wall and CPU time,
//    and peak RSS beyond guest RAM (VmHWM at the exit stop minus the Rss of the
//    guest RAM mapping), with what it is made of (the binary's pages, the rest),
//    and `kvmrun --version` alone: what parsing arguments costs before any VM.

/// One program's start-up runs: wall and CPU time, peak RSS and the part of it
/// beyond guest RAM.
struct StartupProgram {
    var name: String
    var command: String
    var argv: CArgv
    var wallMs: [Double] = []
    /// user + system CPU time of each run (wait4), not inflated by waiting for a CPU.
    var cpuMs: [Double] = []
    var rss: [RSSResult] = []
    var spawnMaxRSS: [Int] = []
    /// kvmrun --version: its argument parsing and the runtime's start, no VM.
    var versionCpuMs: [Double] = []
    var versionPeakKiB = -1

    var medianMs: Double { median(wallMs) }
    var medianCpuMs: Double { median(cpuMs) }
    /// Peak RSS: the largest VmHWM over the RSS runs (they barely differ).
    var peakKiB: Int { rss.map(\.vmHWMKiB).max() ?? -1 }
    /// The largest peak RSS beyond guest RAM over the RSS runs.
    var beyondGuestMiB: Double {
        let kib = rss.map(\.beyondGuestKiB)
        return kib.contains { $0 < 0 } || kib.isEmpty ? .nan : Double(kib.max()!) / 1024
    }
    /// At the exit stop of the run with the largest peak: Rss of the program's file
    /// pages (binary, shared libraries) and of the anonymous pages beyond guest RAM.
    var breakdown: (fileMiB: Double, anonMiB: Double)? {
        guard let r = rss.max(by: { $0.vmHWMKiB < $1.vmHWMKiB }), let s = r.smaps, s.guestKiB >= 0 else { return nil }
        return (Double(s.fileKiB) / 1024, Double(s.totalKiB - s.fileKiB - s.guestKiB) / 1024)
    }
}

struct StartupBench {
    var c: StartupProgram
    /// The kvmrun builds measured: the one next to kvm-bench (or the first --kvmrun) first.
    var kvmruns: [StartupProgram]
    func ratio(_ k: StartupProgram) -> Double { k.medianMs / c.medianMs }
    func cpuRatio(_ k: StartupProgram) -> Double { k.medianCpuMs / c.medianCpuMs }
}

let rssRuns = 5
/// kvm-baseline's guest RAM (MEM_SIZE); kvmrun gets the same with -m.
let startupGuestMiB = 64
/// RSS beyond guest RAM: Firecracker's published VMM overhead.
let rssBeyondGuestTargetMiB = 5.0
let startupTarget = 1.5

/// "kvmrun (static)" or "kvmrun (dynamic)", with a number when two builds are alike.
func kvmrunLabel(_ path: String, among paths: [String]) -> String {
    func kind(_ p: String) -> String {
        switch isStaticExecutable(p) {
        case true?: "static"
        case false?: "dynamic"
        case nil: "?"
        }
    }
    let k = kind(path)
    let same = paths.filter { kind($0) == k }
    return same.count > 1 ? "kvmrun (\(k) \(same.firstIndex(of: path)! + 1))" : "kvmrun (\(k))"
}

func runStartupBench() throws -> StartupBench {
    let image = GuestImage.helloLong
    let layout = guestLayout(image)
    let file = try TempFiles.write(image.bytes, name: "hello-long")
    let load = "0x" + String(layout.load, radix: 16)
    func program(_ name: String, _ args: [String]) -> StartupProgram {
        StartupProgram(name: name, command: args.joined(separator: " "), argv: CArgv(args))
    }
    let c = program("kvm-baseline", [baselinePath, "--mode", layout.mode.rawValue, file])
    let kvmruns = kvmrunPaths.map {
        program(
            kvmrunLabel($0, among: kvmrunPaths),
            [$0, file, "--mode", layout.mode.rawValue, "--load", load, "-m", "\(startupGuestMiB)"])
    }
    var all = [c] + kvmruns

    func timed(_ p: StartupProgram) throws -> ChildResult {
        let r = try spawnAndWait(p.argv)
        guard r.exitedCleanly else {
            throw BenchError("\(p.name) on hello-long: \(r.describeStatus) (run it by hand: \(p.command))")
        }
        return r
    }
    progress("start-up: warm-up")
    for _ in 0..<3 { for p in all { _ = try timed(p) } }
    progress(", \(options.startupRuns) runs each")
    for i in 0..<options.startupRuns {
        // Rotate which program goes first, so drift in host load hits all alike.
        for k in 0..<all.count {
            let j = (i + k) % all.count
            let r = try timed(all[j])
            all[j].wallMs.append(Double(r.wallNanoseconds) / 1e6)
            all[j].cpuMs.append(Double(r.cpuNanoseconds) / 1e6)
            all[j].spawnMaxRSS.append(r.maxRSSKiB)
        }
    }
    progress(", --version")
    for j in all.indices.dropFirst() {
        // Left out (n/a) for a --kvmrun build that has no --version.
        let argv = CArgv([kvmrunPaths[j - 1], "--version"])
        for _ in 0..<10 {
            let r = try spawnAndWait(argv)
            guard r.exitedCleanly else {
                all[j].versionCpuMs = []
                break
            }
            all[j].versionCpuMs.append(Double(r.cpuNanoseconds) / 1e6)
        }
        if !all[j].versionCpuMs.isEmpty { all[j].versionPeakKiB = try peakRSS(argv).vmHWMKiB }
    }
    progress(", peak RSS")
    for _ in 0..<rssRuns {
        for j in all.indices {
            let r = try peakRSS(all[j].argv, guestMappingKiB: startupGuestMiB * 1024)
            guard r.status & 0x7f == 0, (r.status >> 8) & 0xff == 0 else {
                throw BenchError("\(all[j].command): exit status \((r.status >> 8) & 0xff) under ptrace")
            }
            all[j].rss.append(r)
        }
    }
    progress("\n")
    return StartupBench(c: all[0], kvmruns: Array(all.dropFirst()))
}

// MARK: Output

func printStartupTable(_ s: StartupBench) {
    let all = [s.c] + s.kvmruns
    print(
        "2. Start-up: hello-long as a whole process (posix_spawn -> wait4), \(s.c.wallMs.count) rotating runs each after 3 warm-ups"
    )
    for p in all { print("   " + padRight(p.name + ":", 20) + p.command) }
    print(
        "   " + padRight("", 20) + padLeft("median ms", 11) + padLeft("min", 8) + padLeft("max", 8)
            + padLeft("CPU ms", 9) + padLeft("peak RSS", 12) + padLeft("beyond guest", 14) + padLeft("binary", 10)
            + padLeft("anon", 10))
    for p in all {
        let parts = p.breakdown
        print(
            "   " + padRight(p.name, 20) + padLeft(fmt(p.medianMs, 3), 11) + padLeft(fmt(p.wallMs.min() ?? .nan, 3), 8)
                + padLeft(fmt(p.wallMs.max() ?? .nan, 3), 8) + padLeft(fmt(p.medianCpuMs, 3), 9)
                + padLeft(fmt(Double(p.peakKiB) / 1024, 2) + " MiB", 12)
                + padLeft(fmt(p.beyondGuestMiB, 2) + " MiB", 14)
                + padLeft(parts.map { fmt($0.fileMiB, 2) + " MiB" } ?? "n/a", 10)
                + padLeft(parts.map { fmt($0.anonMiB, 2) + " MiB" } ?? "n/a", 10))
    }
    for k in s.kvmruns {
        let ratio = s.ratio(k)
        print(
            "   " + padRight("\(k.name) / C", 28) + "wall " + fmt(ratio, 3) + "x (target <= " + fmt(startupTarget, 2)
                + "x "
                + (ratio <= startupTarget ? "PASS" : "MISS") + "), CPU " + fmt(s.cpuRatio(k), 3) + "x; beyond guest "
                + fmt(k.beyondGuestMiB, 2) + " MiB (target <= " + fmt(rssBeyondGuestTargetMiB, 0) + " MiB "
                + (k.beyondGuestMiB <= rssBeyondGuestTargetMiB ? "PASS" : "MISS") + "), "
                + fmt(k.beyondGuestMiB - s.c.beyondGuestMiB, 2) + " MiB more than C")
    }
    for k in s.kvmruns where !k.versionCpuMs.isEmpty {
        print(
            "   " + padRight("\(k.name) --version", 28) + fmt(median(k.versionCpuMs), 3) + " ms CPU, "
                + fmt(Double(k.versionPeakKiB) / 1024, 2)
                + " MiB peak RSS: argument parsing and the runtime's start, no VM")
    }
    if !s.kvmruns.contains(where: { isStaticExecutable(kvmrunCommandPath($0)) == true }) {
        print("   (no static kvmrun measured: Scripts/release builds the shipped one in .build-static)")
    }
    print("   CPU ms = median user+system time (wait4), not inflated by waiting for a CPU.")
    print(
        "   peak RSS = VmHWM at exit (ptrace stop, max of \(rssRuns) runs); beyond guest = VmHWM minus the Rss of the")
    print(
        "   \(startupGuestMiB) MiB guest RAM mapping at that stop; binary = Rss of file-backed pages there, anon = the other"
    )
    print("   anonymous pages (heap, stacks, vCPU state).")
    print("")
}

private func kvmrunCommandPath(_ p: StartupProgram) -> String { String(cString: p.argv.pointers[0]!) }

func startupJSON(_ s: StartupBench) -> String {
    func program(_ p: StartupProgram) -> String {
        let parts = p.breakdown
        return """
            {"name": \(jsonString(p.name)), "command": \(jsonString(p.command)), \
            "static": \(isStaticExecutable(kvmrunCommandPath(p)).map { "\($0)" } ?? "null"), \
            "median_ms": \(jsonNumber(p.medianMs, 3)), "samples_ms": \(jsonArray(p.wallMs, 3)), \
            "cpu_median_ms": \(jsonNumber(p.medianCpuMs, 3)), "cpu_samples_ms": \(jsonArray(p.cpuMs, 3)), \
            "peak_rss_kib": \(p.peakKiB), "rss_beyond_guest_mib": \(jsonNumber(p.beyondGuestMiB, 3)), \
            "binary_rss_mib": \(jsonNumber(parts?.fileMiB ?? .nan, 3)), "anon_rss_beyond_guest_mib": \(jsonNumber(parts?.anonMiB ?? .nan, 3)), \
            "ru_maxrss_fork_kib": \(jsonIntArray(p.rss.map(\.ruMaxRSSKiB))), "ru_maxrss_posix_spawn_kib": \(jsonIntArray(p.spawnMaxRSS))}
            """
    }
    let kvmruns = s.kvmruns.map {
        let entry = program($0)
        return String(entry.dropLast()) + """
            , "ratio": \(jsonNumber(s.ratio($0), 4)), "cpu_ratio": \(jsonNumber(s.cpuRatio($0), 4)), \
            "ratio_pass": \(s.ratio($0) <= startupTarget), "rss_pass": \($0.beyondGuestMiB <= rssBeyondGuestTargetMiB), \
            "version_cpu_median_ms": \(jsonNumber(median($0.versionCpuMs), 3)), "version_peak_rss_kib": \($0.versionPeakKiB)}
            """
    }
    return """
          "startup": {"guest": "hello-long", "guest_mib": \(startupGuestMiB), "runs": \(s.c.wallMs.count), \
        "ratio_target": \(startupTarget), "rss_beyond_guest_target_mib": \(rssBeyondGuestTargetMiB), \
        "c": \(program(s.c)), "kvmrun": [\(kvmruns.joined(separator: ", "))]}
        """
}
