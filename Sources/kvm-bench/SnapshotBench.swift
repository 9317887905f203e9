import Glibc
import Guests
import KVMCore

// 5. Snapshots, each figure against a baseline measured in the same run:
//    - restore: Snapshot(contentsOf:) + Machine(restoring:) by guest memory size,
//      against a cold Machine(memorySize:) + load of the same size;
//    - reset(to:) of a dirty-logging machine by dirty pages, against a restore;
//    - VMs created, run (a tiny hello) and destroyed per second: restore path
//      against the plain Machine() + load path;
//    - kvmrun's RSS beyond the guest pages it touched, against kvm-baseline's.
// Firecracker's and Hyperlight's figures are published constants, printed as such.

/// Published figures of other VMMs (not measured here).
enum Published {
    static let firecrackerResumeMs = 8.0 // snapshot restore ("< 8 ms")
    static let firecrackerOverheadMiB = 5.0 // VMM memory overhead ("<= 5 MiB")
    static let hyperlightVMMs = (1.0, 2.0) // one micro-VM, create to destroy ("1-2 ms")
}

struct RestorePoint {
    var memoryMiB: Int
    var restoreMs: [Double] // Snapshot(contentsOf:) + Machine(restoring:)
    var coldMs: [Double] // Machine(memorySize:) + load
    var fileBytes: Int // allocated (st_blocks): the file is sparse
    var restoreMedian: Double { median(restoreMs) }
    var coldMedian: Double { median(coldMs) }
}

struct ResetPoint {
    var pages: Int
    var us: [Double]
    var medianUs: Double { median(us) }
}

struct OverheadPoint {
    var memoryMiB: Int
    var command: String
    var vmHWMKiB: Int
    var guestRSSKiB: Int // Rss of the guest RAM mapping at exit (smaps)
    var beyondGuestMiB: Double { guestRSSKiB < 0 ? .nan : Double(vmHWMKiB - guestRSSKiB) / 1024 }
}

struct SnapshotBench {
    var restore: [RestorePoint] = []
    var restoreRuns = 0
    var reset: [ResetPoint] = []
    var resetRuns = 0
    var restoreForReset64Us = Double.nan // baseline of the reset rows: a whole restore, 64 MiB
    var vmsPerSecondRestore: [Double] = []
    var vmsPerSecondPlain: [Double] = []
    var kvmrun: [OverheadPoint] = []
    var baseline: OverheadPoint?
    var svgPath: String?

    func point(_ mib: Int) -> RestorePoint? { restore.first { $0.memoryMiB == mib } }
    /// Restore time of the largest guest over the smallest: 1 is perfectly flat.
    var flatness: Double {
        guard let small = point(64), let big = point(4096) else { return .nan }
        return big.restoreMedian / small.restoreMedian
    }
    var restore512Ms: Double { point(512)?.restoreMedian ?? .nan }
    var reset1Us: Double { reset.first { $0.pages == 1 }?.medianUs ?? .nan }
    var restoreRate: Double { median(vmsPerSecondRestore) }
    var plainRate: Double { median(vmsPerSecondPlain) }
    var maxOverheadMiB: Double { kvmrun.map(\.beyondGuestMiB).max() ?? .nan }
}

// mov al, 'A'; mov dx, 0x3f8; out dx, al; hlt
private let helloBytes: [UInt8] = [0xB0, 0x41, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xF4]
// mov al, 1; mov edi, 0x200000; 1: mov [rdi], al; add rdi, 4096; dec ecx; jnz 1b; hlt  (rcx = pages)
private let dirtierBytes: [UInt8] = [
    0xB0, 0x01, 0xBF, 0x00, 0x00, 0x20, 0x00, 0x88, 0x07, 0x48, 0x81, 0xC7,
    0x00, 0x10, 0x00, 0x00, 0xFF, 0xC9, 0x75, 0xF3, 0xF4,
]
private let helloLoad: UInt64 = 0x10_0000

private func helloMachine(_ bytes: UInt64, kvm: KVM, logDirtyPages: Bool = false) throws -> Machine {
    let m = try Machine(memorySize: bytes, serial: .buffer, kvm: kvm, logDirtyPages: logDirtyPages)
    try m.load(.flat(helloBytes, mode: .long, load: helloLoad))
    return m
}

private func elapsedMs(_ body: () throws -> Void) rethrows -> Double {
    let start = monotonicNow()
    try body()
    return Double(monotonicNow() - start) / 1e6
}

private func expectHello(_ m: Machine, _ what: String) throws {
    let stop = try m.run(timeout: .seconds(5))
    guard case .halted = stop, m.serial.text == "A" else {
        throw BenchError(
            "\(what): stopped with \(stop), serial \(m.serial.text.debugDescription); expected HLT and \"A\"")
    }
}

func runSnapshotBench(runs: Int, svgPath: String?) throws -> SnapshotBench {
    var bench = SnapshotBench()
    bench.svgPath = svgPath
    let kvm = try KVM()
    let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"

    // Restore by memory size.
    bench.restoreRuns = runs
    progress("5. snapshot restore:")
    for mib in [64, 256, 512, 1024, 2048, 4096] {
        let bytes = UInt64(mib) << 20
        let path = "\(dir)/kvm-bench-snapshot-\(getpid())-\(mib).kvmsnap"
        TempFiles.paths.withLock { $0.append(path) }
        try helloMachine(bytes, kvm: kvm).snapshot().write(to: path)
        var st = stat()
        stat(path, &st)
        var point = RestorePoint(memoryMiB: mib, restoreMs: [], coldMs: [], fileBytes: Int(st.st_blocks) * 512)
        // One warm-up of each, then alternate; the machines are destroyed outside the timing.
        for i in 0..<(runs + 1) {
            var restored: Machine?
            var cold: Machine?
            let r = try elapsedMs { restored = try Machine(restoring: Snapshot(contentsOf: path), kvm: kvm) }
            let c = try elapsedMs { cold = try helloMachine(bytes, kvm: kvm) }
            if i == 0 {
                try expectHello(restored!, "restored \(mib) MiB machine")
                try expectHello(cold!, "\(mib) MiB machine")
            } else {
                point.restoreMs.append(r)
                point.coldMs.append(c)
            }
            restored = nil
            cold = nil
        }
        bench.restore.append(point)
        progress(" \(mib)M")
    }

    // Reset by dirty pages (64 MiB guest, dirty pages from 2 MiB up).
    progress(", reset:")
    bench.resetRuns = runs
    let machine = try Machine(memorySize: 64 << 20, serial: .buffer, kvm: kvm, logDirtyPages: true)
    try machine.load(.flat(dirtierBytes, mode: .long, load: helloLoad))
    let snapshot = try machine.snapshot()
    let snapshotPath = "\(dir)/kvm-bench-snapshot-\(getpid())-dirtier.kvmsnap"
    TempFiles.paths.withLock { $0.append(snapshotPath) }
    try snapshot.write(to: snapshotPath)
    for pages in [1, 100, 10_000] {
        var point = ResetPoint(pages: pages, us: [])
        for i in 0..<(runs + 1) {
            var regs = try machine.vcpu.registers()
            regs.rcx = UInt64(pages)
            try machine.vcpu.setRegisters(regs)
            guard case .halted = try machine.run(timeout: .seconds(5)) else { throw BenchError("dirtier did not halt") }
            let ms = try elapsedMs { try machine.reset(to: snapshot) }
            if i > 0 { point.us.append(ms * 1000) }
        }
        guard try machine.vcpu.registers().rip == snapshot.vcpus[0].registers.rip else {
            throw BenchError("reset(to:) did not put rip back")
        }
        bench.reset.append(point)
        progress(" \(pages)")
    }
    var restoreUs: [Double] = []
    for _ in 0..<(runs + 1) {
        var m: Machine?
        restoreUs.append(
            try elapsedMs {
                m = try Machine(restoring: Snapshot(contentsOf: snapshotPath), kvm: kvm, logDirtyPages: true)
            } * 1000)
        m = nil
    }
    bench.restoreForReset64Us = median(Array(restoreUs.dropFirst()))

    // VMs per second: create, run hello, destroy, in this process.
    progress(", VMs/s")
    let helloSnapshot = try helloMachine(64 << 20, kvm: kvm).snapshot()
    func rate(_ body: () throws -> Void) throws -> Double {
        try body() // warm-up
        var n = 0
        let start = monotonicNow()
        while monotonicNow() - start < 500_000_000 || n < 20 {
            try body()
            n += 1
        }
        return Double(n) / (Double(monotonicNow() - start) / 1e9)
    }
    for _ in 0..<3 {
        bench.vmsPerSecondRestore.append(
            try rate {
                try expectHello(try Machine(restoring: helloSnapshot, kvm: kvm), "restored hello")
            })
        bench.vmsPerSecondPlain.append(
            try rate {
                try expectHello(try helloMachine(64 << 20, kvm: kvm), "hello")
            })
    }

    // kvmrun's memory beyond the guest's.
    progress(", RSS")
    for mib in [64, 512] {
        let args = [kvmrunPath, "--builtin", "hello-long", "-m", "\(mib)"]
        bench.kvmrun.append(try overhead(args, memoryMiB: mib))
    }
    let image = GuestImage.helloLong
    let file = try TempFiles.write(image.bytes, name: "hello-long")
    bench.baseline = try overhead([baselinePath, "--mode", guestLayout(image).mode.rawValue, file], memoryMiB: 64)
    progress("\n")
    return bench
}

/// The smallest VmHWM over a few runs, with the guest mapping's Rss of that run.
private func overhead(_ args: [String], memoryMiB: Int) throws -> OverheadPoint {
    let argv = CArgv(args)
    var best: RSSResult?
    for _ in 0..<rssRuns {
        let r = try peakRSS(argv, guestMappingKiB: memoryMiB * 1024)
        guard r.status & 0x7f == 0, (r.status >> 8) & 0xff == 0 else {
            throw BenchError("\(args.joined(separator: " ")): exit status \((r.status >> 8) & 0xff)")
        }
        if best == nil || r.vmHWMKiB < best!.vmHWMKiB { best = r }
    }
    return OverheadPoint(
        memoryMiB: memoryMiB, command: args.joined(separator: " "),
        vmHWMKiB: best!.vmHWMKiB, guestRSSKiB: best!.guestRSSKiB)
}

// MARK: Output

func snapshotTargets(_ s: SnapshotBench) -> [Target] {
    [
        Target(name: "restore 4 GiB/64 MiB", measured: s.flatness, limit: 2, unit: "x"),
        Target(name: "restore 512 MiB", measured: s.restore512Ms, limit: 2, unit: "ms"),
        Target(name: "reset 1 dirty page", measured: s.reset1Us, limit: 50, unit: "us"),
        // Expressed as ms per VM (<= 1 ms is >= 1000/s), so that lower passes like the rest.
        Target(name: "VM create+run+destroy (restore)", measured: 1000 / s.restoreRate, limit: 1, unit: "ms/VM"),
        Target(name: "VM create+run+destroy (plain)", measured: 1000 / s.plainRate, limit: 1, unit: "ms/VM"),
        Target(name: "kvmrun RSS beyond guest", measured: s.maxOverheadMiB, limit: 3, unit: "MiB"),
    ]
}

func printSnapshotTable(_ s: SnapshotBench, _ targets: [Target]) {
    func verdict(_ name: String) -> String { targets.first { $0.name == name }.map { $0.pass ? "PASS" : "MISS" } ?? "" }
    print("5. Snapshots: in-process, one shared /dev/kvm; median of \(s.restoreRuns) runs after 1 warm-up")
    print("   a) restore = Snapshot(contentsOf: file) + Machine(restoring:), hello guest (8 bytes), against a cold")
    print("      Machine(memorySize:) + load of the same size; machines destroyed outside the timing")
    print(
        "   " + padRight("guest", 10) + padLeft("file*", 10) + padLeft("restore ms", 12) + padLeft("min", 8)
            + padLeft("max", 8) + padLeft("cold ms", 10) + padLeft("restore/cold", 14))
    for p in s.restore {
        print(
            "   " + padRight(p.memoryMiB >= 1024 ? "\(p.memoryMiB / 1024) GiB" : "\(p.memoryMiB) MiB", 10)
                + padLeft(fmt(Double(p.fileBytes) / 1024, 0) + " KiB", 10) + padLeft(fmt(p.restoreMedian, 3), 12)
                + padLeft(fmt(p.restoreMs.min() ?? .nan, 3), 8) + padLeft(fmt(p.restoreMs.max() ?? .nan, 3), 8)
                + padLeft(fmt(p.coldMedian, 3), 10) + padLeft(fmt(p.restoreMedian / p.coldMedian, 3), 14))
    }
    print("   * snapshot file: disk space allocated (the file is sparse: only non-zero pages are stored)")
    print(
        "   restore 4 GiB / 64 MiB: " + fmt(s.flatness, 2) + "x   target <= 2x (flat)   "
            + verdict("restore 4 GiB/64 MiB"))
    print(
        "   restore 512 MiB: " + fmt(s.restore512Ms, 3) + " ms   target <= 2 ms   " + verdict("restore 512 MiB")
            + "   (published, not measured here: Firecracker resume < \(fmt(Published.firecrackerResumeMs, 0)) ms)")
    print("   b) reset(to:) of a 64 MiB dirty-logging machine after the guest wrote N pages, against a whole restore")
    print(
        "   " + padRight("dirty pages", 14) + padLeft("median us", 11) + padLeft("min", 9) + padLeft("max", 9)
            + padLeft("reset/restore", 15))
    for p in s.reset {
        print(
            "   " + padRight("\(p.pages)", 14) + padLeft(fmt(p.medianUs, 1), 11)
                + padLeft(fmt(p.us.min() ?? .nan, 1), 9)
                + padLeft(fmt(p.us.max() ?? .nan, 1), 9) + padLeft(fmt(p.medianUs / s.restoreForReset64Us, 3), 15))
    }
    print("   " + padRight("(restore)", 14) + padLeft(fmt(s.restoreForReset64Us, 1), 11))
    print("   reset, 1 dirty page: " + fmt(s.reset1Us, 1) + " us   target <= 50 us   " + verdict("reset 1 dirty page"))
    print("   c) VMs per second, in-process: create, run hello (1 OUT + HLT), destroy; median of 3 rounds of 0.5 s")
    print(
        "   " + padRight("Machine(restoring: snapshot)", 34) + padLeft(fmt(s.restoreRate, 0), 8) + "/s  "
            + padLeft(fmt(1000 / s.restoreRate, 3), 7) + " ms/VM   target >= 1000/s   "
            + verdict("VM create+run+destroy (restore)"))
    print(
        "   " + padRight("Machine(memorySize:) + load", 34) + padLeft(fmt(s.plainRate, 0), 8) + "/s  "
            + padLeft(fmt(1000 / s.plainRate, 3), 7) + " ms/VM   target >= 1000/s   "
            + verdict("VM create+run+destroy (plain)"))
    print(
        "   ratio restore/plain (rate): " + fmt(s.restoreRate / s.plainRate, 3)
            + "   (published, not measured here: Hyperlight 1-2 ms per VM)")
    print("   d) memory beyond the guest: peak RSS (VmHWM at exit, ptrace stop) minus the Rss of the guest RAM")
    print(
        "      mapping in /proc/PID/smaps at the same stop (the guest pages actually touched); min of \(rssRuns) runs")
    print("   " + padRight("", 44) + padLeft("peak RSS", 11) + padLeft("guest Rss", 11) + padLeft("beyond", 11))
    for p in s.kvmrun + (s.baseline.map { [$0] } ?? []) {
        let name =
            p.command.hasPrefix(kvmrunPath)
            ? "kvmrun --builtin hello-long -m \(p.memoryMiB)" : "kvm-baseline hello-long (64 MiB)"
        print(
            "   " + padRight(name, 44) + padLeft(fmt(Double(p.vmHWMKiB) / 1024, 2) + " MiB", 11)
                + padLeft(p.guestRSSKiB < 0 ? "n/a" : fmt(Double(p.guestRSSKiB) / 1024, 2) + " MiB", 11)
                + padLeft(fmt(p.beyondGuestMiB, 2) + " MiB", 11))
    }
    if let b = s.baseline, let k = s.kvmrun.first {
        print(
            "   kvmrun - C beyond guest (64 MiB): " + (k.beyondGuestMiB - b.beyondGuestMiB >= 0 ? "+" : "")
                + fmt(k.beyondGuestMiB - b.beyondGuestMiB, 2) + " MiB")
    }
    print(
        "   kvmrun beyond guest (worst): " + fmt(s.maxOverheadMiB, 2) + " MiB   target <= 3 MiB   "
            + verdict("kvmrun RSS beyond guest")
            + "   (published, not measured here: Firecracker <= \(fmt(Published.firecrackerOverheadMiB, 0)) MiB)")
    if let path = s.svgPath { print("   chart: \(path)") }
    print("")
}

func snapshotJSON(_ s: SnapshotBench, _ targets: [Target]) -> String {
    func pass(_ name: String) -> String { targets.first { $0.name == name }.map { "\($0.pass)" } ?? "false" }
    let restore = s.restore.map {
        "{\"memory_mib\": \($0.memoryMiB), \"file_bytes\": \($0.fileBytes), \"restore_median_ms\": \(jsonNumber($0.restoreMedian, 4)), "
            + "\"restore_samples_ms\": \(jsonArray($0.restoreMs, 4)), \"cold_median_ms\": \(jsonNumber($0.coldMedian, 4)), "
            + "\"cold_samples_ms\": \(jsonArray($0.coldMs, 4)), \"restore_over_cold\": \(jsonNumber($0.restoreMedian / $0.coldMedian, 4))}"
    }
    let reset = s.reset.map {
        "{\"dirty_pages\": \($0.pages), \"median_us\": \(jsonNumber($0.medianUs, 2)), \"samples_us\": \(jsonArray($0.us, 2)), "
            + "\"reset_over_restore\": \(jsonNumber($0.medianUs / s.restoreForReset64Us, 4))}"
    }
    func rss(_ p: OverheadPoint) -> String {
        "{\"command\": \(jsonString(p.command)), \"memory_mib\": \(p.memoryMiB), \"peak_rss_kib\": \(p.vmHWMKiB), "
            + "\"guest_rss_kib\": \(p.guestRSSKiB), \"beyond_guest_mib\": \(jsonNumber(p.beyondGuestMiB, 3))}"
    }
    return """
          "snapshot": {"runs": \(s.restoreRuns), \
        "restore": [\(restore.joined(separator: ", "))], \
        "restore_4gib_over_64mib": \(jsonNumber(s.flatness, 4)), "flat_target": 2, "flat_pass": \(pass("restore 4 GiB/64 MiB")), \
        "restore_512mib_ms": \(jsonNumber(s.restore512Ms, 4)), "restore_512mib_target_ms": 2, "restore_512mib_pass": \(pass("restore 512 MiB")), \
        "published_firecracker_resume_ms": \(jsonNumber(Published.firecrackerResumeMs, 0)), \
        "reset": [\(reset.joined(separator: ", "))], "restore_64mib_us": \(jsonNumber(s.restoreForReset64Us, 2)), \
        "reset_1_page_target_us": 50, "reset_1_page_pass": \(pass("reset 1 dirty page")), \
        "vms_per_second": {"restore": {"median": \(jsonNumber(s.restoreRate, 1)), "samples": \(jsonArray(s.vmsPerSecondRestore, 1)), "pass": \(pass("VM create+run+destroy (restore)"))}, \
        "plain": {"median": \(jsonNumber(s.plainRate, 1)), "samples": \(jsonArray(s.vmsPerSecondPlain, 1)), "pass": \(pass("VM create+run+destroy (plain)"))}, \
        "restore_over_plain": \(jsonNumber(s.restoreRate / s.plainRate, 4)), "target": 1000, \
        "published_hyperlight_ms_per_vm": [\(jsonNumber(Published.hyperlightVMMs.0, 0)), \(jsonNumber(Published.hyperlightVMMs.1, 0))]}, \
        "rss_beyond_guest": {"method": "VmHWM at PTRACE_EVENT_EXIT minus smaps Rss of the guest RAM mapping", \
        "kvmrun": [\(s.kvmrun.map(rss).joined(separator: ", "))], "c": \(s.baseline.map(rss) ?? "null"), \
        "worst_mib": \(jsonNumber(s.maxOverheadMiB, 3)), "target_mib": 3, "pass": \(pass("kvmrun RSS beyond guest")), \
        "published_firecracker_mib": \(jsonNumber(Published.firecrackerOverheadMiB, 0))}}
        """
}

/// A line chart of restore (and cold create) time against guest memory size,
/// log2 x axis, as plain SVG text.
func restoreSVG(_ s: SnapshotBench, host: HostFacts) -> String {
    let w = 720.0
    let h = 440.0
    let left = 80.0
    let right = 30.0
    let top = 50.0
    let bottom = 70.0
    let pw = w - left - right
    let ph = h - top - bottom
    let xs = s.restore.map { log2(Double($0.memoryMiB)) }
    let x0 = xs.min() ?? 6
    let x1 = xs.max() ?? 12
    let ymaxRaw = s.restore.flatMap { [$0.restoreMedian, $0.coldMedian] }.filter(\.isFinite).max() ?? 1
    // A round axis top: 1, 2 or 5 × 10^k.
    var step = 1.0
    while ymaxRaw / step > 10 { step *= 10 }
    while ymaxRaw / step < 2 { step /= 10 }
    let ticks = ymaxRaw / step > 5 ? 2.0 : (ymaxRaw / step > 2.5 ? 1.0 : 0.5)
    let yStep = step * ticks
    let ymax = (ymaxRaw / yStep).rounded(.up) * yStep
    func px(_ mib: Int) -> Double { left + (log2(Double(mib)) - x0) / max(x1 - x0, 1) * pw }
    func py(_ ms: Double) -> Double { top + ph - ms / ymax * ph }
    func n(_ v: Double) -> String { fmt(v, 1) }
    func esc(_ t: String) -> String {
        t.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;")
    }
    var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(n(w / 2))" y="22" text-anchor="middle" font-size="15">Snapshot restore time by guest memory size (kvm-bench, median of \(s.restoreRuns))</text>
        <text x="\(n(w / 2))" y="38" text-anchor="middle" font-size="10" fill="#555">\(esc(host.cpuModel)), \(host.onlineCPUs) CPUs, \(esc(host.kernel))</text>

        """
    var yv = 0.0
    while yv <= ymax + yStep / 2 {
        let y = py(yv)
        out += "<line x1=\"\(n(left))\" y1=\"\(n(y))\" x2=\"\(n(left + pw))\" y2=\"\(n(y))\" stroke=\"#ddd\"/>\n"
        out +=
            "<text x=\"\(n(left - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\">\(fmt(yv, yStep < 1 ? (yStep < 0.1 ? 2 : 1) : 0))</text>\n"
        yv += yStep
    }
    for p in s.restore {
        let x = px(p.memoryMiB)
        out += "<line x1=\"\(n(x))\" y1=\"\(n(top))\" x2=\"\(n(x))\" y2=\"\(n(top + ph))\" stroke=\"#eee\"/>\n"
        let label = p.memoryMiB >= 1024 ? "\(p.memoryMiB / 1024) GiB" : "\(p.memoryMiB) MiB"
        out += "<text x=\"\(n(x))\" y=\"\(n(top + ph + 18))\" text-anchor=\"middle\">\(label)</text>\n"
    }
    out +=
        "<line x1=\"\(n(left))\" y1=\"\(n(top + ph))\" x2=\"\(n(left + pw))\" y2=\"\(n(top + ph))\" stroke=\"black\"/>\n"
    out += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + ph))\" stroke=\"black\"/>\n"
    out +=
        "<text x=\"\(n(left + pw / 2))\" y=\"\(n(h - 22))\" text-anchor=\"middle\">guest memory size (log scale)</text>\n"
    out += "<text transform=\"translate(22 \(n(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">time (ms)</text>\n"
    func series(_ values: [Double], _ color: String, _ dash: String) {
        let pts = zip(s.restore, values).map { "\(n(px($0.0.memoryMiB))),\(n(py($0.1)))" }
        out +=
            "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"") points=\"\(pts.joined(separator: " "))\"/>\n"
        for (p, v) in zip(s.restore, values) {
            out +=
                "<circle cx=\"\(n(px(p.memoryMiB)))\" cy=\"\(n(py(v)))\" r=\"3.5\" fill=\"\(color)\"><title>\(fmt(v, 3)) ms</title></circle>\n"
        }
    }
    series(s.restore.map(\.coldMedian), "#999", "5,4")
    series(s.restore.map(\.restoreMedian), "#1f5fbf", "")
    let lx = left + 16
    let ly = top + 14
    out += "<rect x=\"\(n(lx - 8))\" y=\"\(n(ly - 14))\" width=\"360\" height=\"44\" fill=\"white\" stroke=\"#ccc\"/>\n"
    out +=
        "<line x1=\"\(n(lx))\" y1=\"\(n(ly))\" x2=\"\(n(lx + 24))\" y2=\"\(n(ly))\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>"
    out += "<text x=\"\(n(lx + 30))\" y=\"\(n(ly + 4))\">restore: Snapshot(contentsOf:) + Machine(restoring:)</text>\n"
    out +=
        "<line x1=\"\(n(lx))\" y1=\"\(n(ly + 20))\" x2=\"\(n(lx + 24))\" y2=\"\(n(ly + 20))\" stroke=\"#999\" stroke-width=\"2\" stroke-dasharray=\"5,4\"/>"
    out += "<text x=\"\(n(lx + 30))\" y=\"\(n(ly + 24))\">cold: Machine(memorySize:) + load (baseline)</text>\n"
    out += "</svg>\n"
    return out
}

extension String {
    func replacingAll(_ what: Character, _ with: String) -> String {
        var out = ""
        for c in self { if c == what { out += with } else { out.append(c) } }
        return out
    }
}

func writeTextFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw BenchError("\(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        guard n > 0 else { throw BenchError("write \(path): \(String(cString: strerror(errno)))") }
        done += n
    }
}
