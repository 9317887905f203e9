import Glibc
import Guests

// 3. Boot-to-exit of a multiboot kernel, whole process: kvmrun against QEMU's
//    fastest machines (-M microvm, and -M pc with qboot), both on KVM.
// 4. SMP bring-up: the mb-smp kernel starting 1, 2, 4 and 8 CPUs (INIT-SIPI-SIPI).

struct BootBench {
    var kvmrunMs: [Double] = []
    /// QEMU machine name → wall ms per run; empty when QEMU is not installed.
    var qemuMs: [(String, [Double])] = []
    var qemuNote: String?
    /// vCPU count → wall ms per run of mb-smp.
    var smpMs: [(Int, [Double])] = []

    var kvmrunMedian: Double { median(kvmrunMs) }
    var fastestQEMU: (String, Double)? {
        qemuMs.map { ($0.0, median($0.1)) }.min { $0.1 < $1.1 }
    }
    /// How many times faster kvmrun boots than QEMU's fastest.
    var speedup: Double { fastestQEMU.map { $0.1 / kvmrunMedian } ?? .nan }
}

/// The path of `name` on PATH, if it is there.
func findOnPath(_ name: String) -> String? {
    let path = String(cString: getenv("PATH") ?? strdup("/usr/bin:/bin"))
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
}

func runBootBench(runs: Int) throws -> BootBench {
    var bench = BootBench()
    let hello = try TempFiles.write(GuestImage.mbHello.bytes, name: "mb-hello")
    let smp = try TempFiles.write(GuestImage.mbSmp.bytes, name: "mb-smp")
    func wallMs(_ argv: [String], expect status: Int32) throws -> Double {
        let result = try spawnAndWait(CArgv(argv), captureStderr: true)
        guard result.status & 0x7F == 0, (result.status >> 8) & 0xFF == status else {
            throw BenchError(
                "\(argv.joined(separator: " ")): \(result.describeStatus), expected status \(status): \(result.stderr)")
        }
        return Double(result.wallNanoseconds) / 1e6
    }
    let kvmrun = [kvmrunPath, "-kernel", hello, "-m", "128"]
    var qemus: [(String, [String])] = []
    if let qemu = findOnPath("qemu-system-x86_64") {
        let common = [
            "-accel", "kvm", "-nodefaults", "-display", "none", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-no-reboot", "-m", "128", "-kernel", hello,
        ]
        qemus.append(("microvm", [qemu, "-M", "microvm"] + common))
        let roms: [String] = ["/usr/share/qemu/qboot.rom", "/usr/share/seabios/qboot.rom"]
        if let qboot = roms.first(where: { access($0, R_OK) == 0 }) {
            qemus.append(("pc+qboot", [qemu, "-M", "pc", "-bios", qboot] + common))
        }
    } else {
        bench.qemuNote = "qemu-system-x86_64 not installed (apt-get install qemu-system-x86): no QEMU figures"
    }
    bench.qemuMs = qemus.map { ($0.0, []) }
    progress("3. boot-to-exit: ")
    for run in 0..<(runs + 2) {
        let k = try wallMs(kvmrun, expect: 1)
        var q: [Double] = []
        for (_, argv) in qemus { q.append(try wallMs(argv, expect: 1)) }
        if run >= 2 { // two warm-ups
            bench.kvmrunMs.append(k)
            for i in q.indices { bench.qemuMs[i].1.append(q[i]) }
        }
        progress(".")
    }
    progress("\n4. SMP bring-up: ")
    for cpus in [1, 2, 4, 8] {
        var samples: [Double] = []
        for _ in 0..<max(3, runs / 2) {
            samples.append(try wallMs([kvmrunPath, "-kernel", smp, "-smp", "\(cpus)", "-m", "128"], expect: 1))
        }
        bench.smpMs.append((cpus, samples))
        progress(".")
    }
    progress("\n")
    return bench
}
