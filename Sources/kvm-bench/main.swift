// kvm-bench: KVMCore and kvmrun against the C baseline (kvm-baseline), in one run.
//
//   Scripts/release   (the static release build, in .build-static)
//   X/release/kvm-bench [--json] [--runs N] [--startup-runs N]
//                       [--only exit|startup|boot|snapshot|testkit|linux|swift-loop] [--svg PATH]
//                       [--kvmrun PATH] [--baseline PATH]
//                       [--linux-runs N] [--linux-limit S] [--linux-kernel PATH] [--linux-initrd PATH]
//
// 1. Exit round trip: ns per exit of KVMCore's dispatching loop (Machine +
//    vcpu.run(bus:), in this process) and of the C loop (kvm-baseline
//    --count-exits, which times its own loop) on the port-loop guest.
// 2. Start-up: wall time of kvmrun vs kvm-baseline running hello-long as whole
//    processes (posix_spawn → wait4), and the peak RSS of each beyond guest RAM;
//    each kvmrun build found (static and plain release) against the plain C runner.
// 3./4. Boot-to-exit and SMP bring-up (MachineBench.swift).
// 5. Snapshots: restore, reset, VMs per second, RSS beyond guest (SnapshotBench.swift).
// 6. The test kit: one test case on a fresh and on a reset machine (TestKitBench.swift).
// 7. Linux boot, only with --only linux (minutes): kvmrun against QEMU on the
//    Tools/linux-guest kernel and initramfs (LinuxBench.swift).
// kvmrun is taken from this executable's directory (and the package's other release
// build); kvm-baseline is Sources/kvm-baseline/main.c built with `cc -O2 -static` at
// start (PlainCBaseline), not the SwiftPM target, which carries the Swift runtime.
import Glibc
import Guests
import KVMCore

// MARK: Options

struct Options {
    var json = false
    var exitRuns = 7
    var startupRuns = 30
    var runExit = true
    var runStartup = true
    var runBoot = true
    var runSnapshot = true
    var runTestKit = true
    /// --only linux: not part of the default run (it boots Linux dozens of times).
    var runLinux = false
    var linuxRuns = 10
    var linuxLimitSeconds = 60.0
    var linuxKernel: String?
    var linuxInitrd: String?
    /// --svg PATH: a chart of restore time by guest memory size.
    var svgPath: String?
    /// --only swift-loop: KVMCore's loop alone, for profilers (callgrind, strace -c).
    var swiftLoopOnly = false
    /// --kvmrun, repeatable: the kvmrun builds to measure; the first serves the other benchmarks.
    var kvmruns: [String] = []
    var baseline: String?

    var needsBaseline: Bool { !swiftLoopOnly && (runExit || runStartup || runBoot || runSnapshot || runTestKit) }
}

/// `text` on stderr, unbuffered (Glibc's `stderr` is a mutable C global, which Swift 6 refuses).
func printError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return }
        bytes = bytes.dropFirst(n)
    }
}

func usage() -> Never {
    printError(
        """
        usage: kvm-bench [--json] [--runs N] [--startup-runs N]
                         [--only exit|startup|boot|snapshot|testkit|linux|swift-loop] [--svg PATH]
                         [--kvmrun PATH] [--baseline PATH]
                         [--linux-runs N] [--linux-limit S] [--linux-kernel PATH] [--linux-initrd PATH]
          --runs N          exit-round-trip runs of each loop, after one warm-up (default 7)
          --startup-runs N  start-up runs of each program, after 3 warm-ups (default 30)
          --only WHAT       run only the exit, start-up, boot, snapshot or testkit benchmark; swift-loop:
                            only KVMCore's loop, --runs times, no C and no table (for profilers);
                            linux: only the Linux boot (not in the default run: minutes)
          --linux-runs N    Linux boots of each configuration that boots, after the first attempt (default 10)
          --linux-limit S   seconds a Linux boot may take before it counts as not booting (default 60)
          --linux-kernel, --linux-initrd PATH   instead of Tools/linux-guest/get-kernel, make-initramfs
          --svg PATH        write an SVG chart of snapshot restore time by guest memory size
          --kvmrun PATH     a kvmrun to measure (repeatable; default: the one next to kvm-bench and
                            the package's other release build, .build-static or .build, if built)
          --baseline PATH   another C baseline than `cc -O2 -static Sources/kvm-baseline/main.c`,
                            which kvm-bench builds at start into its folder's kvm-bench-c/

        """)
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value() -> String {
        guard let v = args.popFirst() else { usage() }
        return v
    }
    func count() -> Int {
        guard let n = Int(value()), n > 0 else { usage() }
        return n
    }
    while let a = args.popFirst() {
        switch a {
        case "--json": o.json = true
        case "--runs": o.exitRuns = count()
        case "--startup-runs": o.startupRuns = count()
        case "--only":
            switch value() {
            case "exit":
                o.runStartup = false
                o.runBoot = false
                o.runSnapshot = false
                o.runTestKit = false
            case "startup":
                o.runExit = false
                o.runBoot = false
                o.runSnapshot = false
                o.runTestKit = false
            case "boot":
                o.runExit = false
                o.runStartup = false
                o.runSnapshot = false
                o.runTestKit = false
            case "snapshot":
                o.runExit = false
                o.runStartup = false
                o.runBoot = false
                o.runTestKit = false
            case "testkit":
                o.runExit = false
                o.runStartup = false
                o.runBoot = false
                o.runSnapshot = false
            case "linux":
                o.runExit = false
                o.runStartup = false
                o.runBoot = false
                o.runSnapshot = false
                o.runTestKit = false
                o.runLinux = true
            case "swift-loop": o.swiftLoopOnly = true
            default: usage()
            }
        case "--svg": o.svgPath = value()
        case "--kvmrun": o.kvmruns.append(value())
        case "--baseline": o.baseline = value()
        case "--linux-runs": o.linuxRuns = count()
        case "--linux-limit":
            guard let s = Double(value()), s > 0 else { usage() }
            o.linuxLimitSeconds = s
        case "--linux-kernel": o.linuxKernel = value()
        case "--linux-initrd": o.linuxInitrd = value()
        default: usage()
        }
    }
    return o
}

let options = parseOptions()
let binDir = executableDirectory()
/// The kvmrun next to kvm-bench, then the package's other release build (the
/// static one from Scripts/release in .build-static, the plain one in .build),
/// where it exists: the start-up benchmark measures each.
let kvmrunPaths: [String] = {
    guard options.kvmruns.isEmpty else { return options.kvmruns }
    var paths = [binDir + "/kvmrun"]
    var seen = Set(paths.compactMap(resolvedPath))
    for dir in [".build-static", ".build"] {
        let path = PlainCBaseline.packageRoot + "/" + dir + "/release/kvmrun"
        guard access(path, X_OK) == 0, let real = resolvedPath(path), !seen.contains(real) else { continue }
        seen.insert(real)
        paths.append(path)
    }
    return paths
}()
let kvmrunPath = kvmrunPaths[0]
/// `cc -O2 -static` of Sources/kvm-baseline/main.c, built now (PlainCBaseline), unless --baseline.
let baselinePath: String = {
    if let path = options.baseline { return path }
    guard options.needsBaseline else { return "" }
    do {
        return try PlainCBaseline.build(into: binDir + "/kvm-bench-c")
    } catch {
        printError("kvm-bench: \(error)\n")
        exit(1)
    }
}()

func resolvedPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

func progress(_ text: String) {
    // Progress goes to stderr so that stdout is only the table or the JSON.
    printError(text)
}

// MARK: Targets

struct Target {
    var name: String
    var measured: Double
    var limit: Double
    var unit: String
    var pass: Bool { measured.isFinite && measured <= limit }
}

// MARK: 1. Exit round trip

struct ExitBench {
    var swiftNs: [Double] = []
    var cNs: [Double] = []
    /// The loop thread's CPU time per exit (CLOCK_THREAD_CPUTIME_ID): unlike wall
    /// time, not inflated while other processes hold the CPU.
    var swiftCpuNs: [Double] = []
    var cCpuNs: [Double] = []
    var exitsPerRun = 0
    var order: [String] = []

    var swiftMedian: Double { median(swiftNs) }
    var cMedian: Double { median(cNs) }
    var ratio: Double { swiftMedian / cMedian }
    var cpuRatio: Double { median(swiftCpuNs) / median(cCpuNs) }
}

struct LoopTime {
    var wallNs: Double
    var cpuNs: Double
}

@inline(__always)
func threadCPUNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

let expectedPortWrites = 200_000
let expectedExits = expectedPortWrites + 1 // + the HLT
let memorySize: UInt64 = 64 << 20 // kvm-baseline's MEM_SIZE

func guestLayout(_ image: GuestImage) -> (mode: CPUMode, load: UInt64, entry: UInt64) {
    guard case .flat(let mode, let load, let entry) = image.format,
        let cpuMode = CPUMode(rawValue: mode.rawValue)
    else {
        fatalError("\(image.name) is not a flat guest")
    }
    return (cpuMode, load, entry)
}

/// One run of KVMCore's loop: set-up excluded, only `Machine.run` is timed.
func swiftExitRun() throws -> LoopTime {
    let image = GuestImage.portLoop
    let layout = guestLayout(image)
    let machine = try Machine(memorySize: memorySize)
    try machine.load(.flat(image.bytes, mode: layout.mode, load: layout.load, entry: layout.entry))
    // The same clocks in the same order as kvm-baseline's --count-exits.
    let start = monotonicNow()
    let cpuStart = threadCPUNow()
    let stop = try machine.run()
    let end = monotonicNow()
    let cpuEnd = threadCPUNow()
    guard case .halted = stop else { throw BenchError("port-loop (Swift) stopped with \(stop), not HLT") }
    let exits = machine.vcpu.statistics.totalExits
    guard exits == expectedExits, machine.bus.unassignedPortAccesses == expectedPortWrites else {
        throw BenchError(
            "port-loop (Swift): \(exits) exits, \(machine.bus.unassignedPortAccesses) unassigned port writes; expected \(expectedExits) and \(expectedPortWrites)"
        )
    }
    return LoopTime(wallNs: Double(end - start) / Double(exits), cpuNs: Double(cpuEnd - cpuStart) / Double(exits))
}

/// One run of the C loop; kvm-baseline times its own KVM_RUN loop (set-up excluded).
func cExitRun(_ argv: CArgv) throws -> LoopTime {
    let result = try spawnAndWait(argv, captureStderr: true)
    guard result.exitedCleanly else {
        throw BenchError("kvm-baseline on port-loop: \(result.describeStatus): \(result.stderr)")
    }
    // "exits: 200001, 8123.4 ns/exit (1624.700 ms total)"
    guard let line = result.stderr.split(separator: "\n").first(where: { $0.hasPrefix("exits: ") }) else {
        throw BenchError("kvm-baseline printed no exit count: \(result.stderr)")
    }
    let fields = line.dropFirst(7).split(separator: " ")
    guard fields.count >= 2, let exits = Int(fields[0].filter { $0.isNumber }), let ns = Double(fields[1]) else {
        throw BenchError("cannot parse kvm-baseline output: \(line)")
    }
    guard exits == expectedExits else { throw BenchError("port-loop (C): \(exits) exits, expected \(expectedExits)") }
    // "cpu: 7990.2 ns/exit (1598.000 ms thread CPU time)"
    guard let cpuLine = result.stderr.split(separator: "\n").first(where: { $0.hasPrefix("cpu: ") }),
        let cpu = Double(cpuLine.dropFirst(5).split(separator: " ").first ?? "")
    else {
        throw BenchError("kvm-baseline printed no CPU time (an older build?): \(result.stderr)")
    }
    return LoopTime(wallNs: ns, cpuNs: cpu)
}

func runExitBench() throws -> ExitBench {
    let image = GuestImage.portLoop
    let layout = guestLayout(image)
    let file = try TempFiles.write(image.bytes, name: "port-loop")
    let argv = CArgv([
        baselinePath, "--mode", layout.mode.rawValue, "--load", "0x" + String(layout.load, radix: 16),
        "--entry", "0x" + String(layout.entry, radix: 16), "--count-exits", file,
    ])
    var bench = ExitBench()
    bench.exitsPerRun = expectedExits
    progress("exit round trip: warm-up")
    _ = try swiftExitRun()
    _ = try cExitRun(argv)
    for i in 0..<options.exitRuns {
        progress(" \(i + 1)")
        // Alternate which loop goes first, so drift in host load hits both alike.
        let swift: LoopTime
        let c: LoopTime
        if i % 2 == 0 {
            swift = try swiftExitRun()
            c = try cExitRun(argv)
            bench.order.append("swift,c")
        } else {
            c = try cExitRun(argv)
            swift = try swiftExitRun()
            bench.order.append("c,swift")
        }
        bench.swiftNs.append(swift.wallNs)
        bench.swiftCpuNs.append(swift.cpuNs)
        bench.cNs.append(c.wallNs)
        bench.cCpuNs.append(c.cpuNs)
    }
    progress("\n")
    return bench
}

// MARK: Run

if options.swiftLoopOnly {
    for _ in 0..<options.exitRuns {
        do {
            let t = try swiftExitRun()
            print("KVMCore loop: \(fmt(t.wallNs, 1)) ns/exit, \(fmt(t.cpuNs, 1)) ns/exit thread CPU time")
        } catch {
            printError("kvm-bench: \(error)\n")
            exit(1)
        }
    }
    exit(0)
}

let host = HostFacts.gather()
var exitBench: ExitBench?
var startupBench: StartupBench?
var bootBench: BootBench?
var snapshotBench: SnapshotBench?
var testKitBench: [TestKitBench]?
var linuxBench: LinuxBench?
do {
    let needsKvmrun = options.runStartup || options.runBoot || options.runSnapshot || options.runLinux
    for path in (options.needsBaseline ? [baselinePath] : []) + (needsKvmrun ? kvmrunPaths : [])
    where access(path, X_OK) != 0 {
        throw BenchError(
            "\(path) is not an executable: build all products (Scripts/release), or pass --kvmrun/--baseline")
    }
    if options.runExit { exitBench = try runExitBench() }
    if options.runStartup { startupBench = try runStartupBench() }
    if options.runBoot { bootBench = try runBootBench(runs: min(options.startupRuns, 20)) }
    if options.runSnapshot {
        snapshotBench = try runSnapshotBench(runs: 11, svgPath: options.svgPath)
        if let path = options.svgPath { try writeTextFile(path, restoreSVG(snapshotBench!, host: host)) }
    }
    if options.runTestKit { testKitBench = try runTestKitBench() }
    if options.runLinux {
        linuxBench = try runLinuxBench(
            runs: options.linuxRuns, limitSeconds: options.linuxLimitSeconds,
            kernel: options.linuxKernel, initrd: options.linuxInitrd)
    }
} catch {
    TempFiles.removeAll()
    printError("kvm-bench: \(error)\n")
    exit(1)
}
TempFiles.removeAll()

var targets: [Target] = []
if let e = exitBench {
    targets.append(Target(name: "exit round trip Swift/C", measured: e.ratio, limit: 1.03, unit: "x"))
}
if let s = startupBench {
    for k in s.kvmruns {
        targets.append(Target(name: "start-up \(k.name)/C", measured: s.ratio(k), limit: startupTarget, unit: "x"))
        targets.append(
            Target(
                name: "RSS beyond guest \(k.name)", measured: k.beyondGuestMiB, limit: rssBeyondGuestTargetMiB,
                unit: "MiB"))
    }
}
if let b = bootBench, b.fastestQEMU != nil {
    // Expressed as QEMU's fastest over kvmrun, at most 1/20: kvmrun at least 20× faster.
    targets.append(Target(name: "boot-to-exit kvmrun/QEMU fastest", measured: 1 / b.speedup, limit: 0.05, unit: "x"))
}
if let s = snapshotBench { targets += snapshotTargets(s) }
if let t = testKitBench { targets += testKitTargets(t) }
if let l = linuxBench { targets += linuxTargets(l) }

if options.json {
    printJSON()
} else {
    printTable()
}
exit(0) // a benchmark, not a test: MISS is reported, not a failure

// MARK: Output

@MainActor func printTable() {
    func verdict(_ t: Target) -> String { t.pass ? "PASS" : "MISS" }
    print("kvm-bench: swift-kvm against the C baseline")
    print("host:   \(host.cpuModel), \(host.onlineCPUs) CPUs online, load average \(host.loadAverage)")
    print("kernel: \(host.kernel)")
    print("KVM:    modules \(host.kvmModules.joined(separator: ", ")); API version \(host.kvmAPIVersion)")
    print("C:      \(options.baseline == nil ? PlainCBaseline.command(output: baselinePath) : baselinePath)")
    print("")
    if let e = exitBench {
        let t = targets.first { $0.name.hasPrefix("exit") }!
        print(
            "1. Exit round trip: port-loop guest, long mode, 64 MiB RAM, \(expectedPortWrites) OUT to unassigned port 0x80 + HLT = \(e.exitsPerRun) exits"
        )
        print("   KVM_RUN loop only (set-up excluded); median of \(e.swiftNs.count) alternating runs after 1 warm-up")
        print("   " + padRight("", 34) + padLeft("median", 10) + padLeft("min", 10) + padLeft("max", 10) + "  ns/exit")
        print(
            "   " + padRight("KVMCore (Machine.run, in-process)", 34) + padLeft(fmt(e.swiftMedian, 1), 10)
                + padLeft(fmt(e.swiftNs.min() ?? .nan, 1), 10) + padLeft(fmt(e.swiftNs.max() ?? .nan, 1), 10))
        print(
            "   " + padRight("C (kvm-baseline --count-exits)", 34) + padLeft(fmt(e.cMedian, 1), 10)
                + padLeft(fmt(e.cNs.min() ?? .nan, 1), 10) + padLeft(fmt(e.cNs.max() ?? .nan, 1), 10))
        print(
            "   " + padRight("ratio Swift/C", 34) + padLeft(fmt(e.ratio, 3), 10) + "   target <= 1.03   " + verdict(t))
        print("   loop thread CPU time, same runs (not inflated by preemption):")
        print(
            "   " + padRight("KVMCore", 34) + padLeft(fmt(median(e.swiftCpuNs), 1), 10)
                + padLeft(fmt(e.swiftCpuNs.min() ?? .nan, 1), 10) + padLeft(fmt(e.swiftCpuNs.max() ?? .nan, 1), 10))
        print(
            "   " + padRight("C", 34) + padLeft(fmt(median(e.cCpuNs), 1), 10)
                + padLeft(fmt(e.cCpuNs.min() ?? .nan, 1), 10) + padLeft(fmt(e.cCpuNs.max() ?? .nan, 1), 10))
        print("   " + padRight("ratio Swift/C (CPU time)", 34) + padLeft(fmt(e.cpuRatio, 3), 10))
        print("")
    }
    if let s = startupBench { printStartupTable(s) }
    if let b = bootBench {
        print(
            "3. Boot-to-exit: mb-hello (multiboot) as a whole process, -m 128, \(b.kvmrunMs.count) alternating runs after 2 warm-ups"
        )
        print("   " + padRight("", 22) + padLeft("median ms", 11) + padLeft("min", 9) + padLeft("max", 9))
        func row(_ name: String, _ ms: [Double]) {
            print(
                "   " + padRight(name, 22) + padLeft(fmt(median(ms), 2), 11) + padLeft(fmt(ms.min() ?? .nan, 2), 9)
                    + padLeft(fmt(ms.max() ?? .nan, 2), 9))
        }
        row("kvmrun -kernel", b.kvmrunMs)
        for (name, ms) in b.qemuMs { row("QEMU -M \(name)", ms) }
        if let note = b.qemuNote { print("   \(note)") }
        if let (name, _) = b.fastestQEMU {
            let t = targets.first { $0.name.hasPrefix("boot-to-exit") }!
            print(
                "   kvmrun is \(fmt(b.speedup, 2))x faster than QEMU's fastest (\(name))   target >= 20x   "
                    + (t.pass ? "PASS" : "MISS"))
        }
        print("4. SMP bring-up: mb-smp starts every CPU (INIT-SIPI-SIPI) and exits, whole process")
        for (cpus, ms) in b.smpMs { row("\(cpus) vCPU" + (cpus == 1 ? "" : "s"), ms) }
        print("")
    }
    if let s = snapshotBench { printSnapshotTable(s, targets) }
    if let t = testKitBench { printTestKitTable(t) }
    if let l = linuxBench { printLinuxTable(l, targets) }
    print(
        "targets: "
            + targets.map {
                let value =
                    !$0.measured.isFinite
                    ? "not measured" : fmt($0.measured, 3) + ($0.unit == "x" ? "x" : " " + $0.unit)
                return "\($0.name) \(value) \($0.pass ? "PASS" : "MISS")"
            }.joined(separator: "; "))
}

func jsonString(_ s: String) -> String {
    var out = ""
    JSONValue.writeString(s, into: &out)
    return out
}

func jsonNumber(_ v: Double, _ decimals: Int = 3) -> String { v.isFinite ? fmt(v, decimals) : "null" }
func jsonArray(_ values: [Double], _ decimals: Int = 3) -> String {
    "[" + values.map { jsonNumber($0, decimals) }.joined(separator: ", ") + "]"
}
func jsonIntArray(_ values: [Int]) -> String { "[" + values.map(String.init).joined(separator: ", ") + "]" }

@MainActor func printJSON() {
    var parts: [String] = []
    parts.append(
        """
          "host": {"cpu_model": \(jsonString(host.cpuModel)), "online_cpus": \(host.onlineCPUs), \
        "kernel": \(jsonString(host.kernel)), "kvm_modules": [\(host.kvmModules.map(jsonString).joined(separator: ", "))], \
        "kvm_api_version": \(host.kvmAPIVersion), "load_average": \(jsonString(host.loadAverage))},
          "c_baseline": \(jsonString(options.baseline == nil ? PlainCBaseline.command(output: baselinePath) : baselinePath))
        """)
    if let e = exitBench {
        parts.append(
            """
              "exit_round_trip": {"guest": "port-loop", "exits_per_run": \(e.exitsPerRun), "memory_bytes": \(memorySize), \
            "runs": \(e.swiftNs.count), "order": [\(e.order.map(jsonString).joined(separator: ", "))], \
            "swift_ns_per_exit": {"median": \(jsonNumber(e.swiftMedian, 1)), "samples": \(jsonArray(e.swiftNs, 1))}, \
            "c_ns_per_exit": {"median": \(jsonNumber(e.cMedian, 1)), "samples": \(jsonArray(e.cNs, 1))}, \
            "ratio": \(jsonNumber(e.ratio, 4)), "target": 1.03, "pass": \(e.ratio <= 1.03), \
            "swift_cpu_ns_per_exit": {"median": \(jsonNumber(median(e.swiftCpuNs), 1)), "samples": \(jsonArray(e.swiftCpuNs, 1))}, \
            "c_cpu_ns_per_exit": {"median": \(jsonNumber(median(e.cCpuNs), 1)), "samples": \(jsonArray(e.cCpuNs, 1))}, \
            "cpu_ratio": \(jsonNumber(e.cpuRatio, 4))}
            """)
    }
    if let s = startupBench { parts.append(startupJSON(s)) }
    if let b = bootBench {
        let qemu = b.qemuMs.map {
            "\(jsonString($0.0)): {\"median_ms\": \(jsonNumber(median($0.1), 3)), \"samples_ms\": \(jsonArray($0.1, 3))}"
        }
        let smp = b.smpMs.map {
            "\"\($0.0)\": {\"median_ms\": \(jsonNumber(median($0.1), 3)), \"samples_ms\": \(jsonArray($0.1, 3))}"
        }
        parts.append(
            """
              "boot_to_exit": {"guest": "mb-hello", "kvmrun": {"median_ms": \(jsonNumber(b.kvmrunMedian, 3)), "samples_ms": \(jsonArray(b.kvmrunMs, 3))}, \
            "qemu": {\(qemu.joined(separator: ", "))}, "speedup": \(jsonNumber(b.speedup, 3)), "speedup_target": 20, \
            "smp_bringup": {\(smp.joined(separator: ", "))}}
            """)
    }
    if let s = snapshotBench { parts.append(snapshotJSON(s, targets)) }
    if let t = testKitBench { parts.append(testKitJSON(t)) }
    if let l = linuxBench { parts.append(linuxJSON(l, targets)) }
    let targetList = targets.map {
        "{\"name\": \(jsonString($0.name)), \"measured\": \(jsonNumber($0.measured, 4)), \"limit\": \(jsonNumber($0.limit, 3)), \"unit\": \(jsonString($0.unit)), \"pass\": \($0.pass)}"
    }
    parts.append("  \"targets\": [" + targetList.joined(separator: ", ") + "]")
    parts.append("  \"all_pass\": \(targets.allSatisfy(\.pass))")
    print("{\n" + parts.joined(separator: ",\n") + "\n}")
}
