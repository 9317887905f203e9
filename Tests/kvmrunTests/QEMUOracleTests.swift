import Foundation
import Guests
import KVMCore
import XCTest

/// QEMU is the oracle: each multiboot test kernel (Guests/src/mb-*.c) boots
/// under `qemu-system-x86_64 -kernel` and under `kvmrun -kernel` with the same
/// -append/-initrd/-smp/-m, and both must print the same serial output and end
/// with the same exit status.
///
/// QEMU runs as the issue's command line has it (`-nodefaults -display none
/// -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x4`) on `-M pc`
/// with `-accel kvm` (`-accel tcg` where QEMU cannot use KVM), plus
/// `-no-reboot` so a guest that resets cannot loop. The firmware is qboot
/// (0.1 s) where the output does not depend on it; the kernels that print
/// the memory map boot on SeaBIOS, QEMU's default (about 2 s), whose E820 map
/// kvmrun reproduces. QEMU is installed with apt-get when missing; the tests
/// skip, saying why, only when that fails.
final class QEMUOracleTests: XCTestCase {
    enum Firmware: String {
        case qboot, seabios
    }

    struct QEMU {
        let path: String
        /// "kvm", or "tcg" when QEMU could not use KVM (`note` says why).
        let accel: String
        let qboot: String?
        let note: String?
    }

    /// Found (or installed) and probed once for all tests.
    // nonisolated(unsafe): XCTest runs these tests one at a time on one thread.
    nonisolated(unsafe) static var cached: Result<QEMU, XCTSkip>?

    static func qemu() throws -> QEMU {
        if cached == nil { cached = Result { try locateQEMU() }.mapError { $0 as? XCTSkip ?? XCTSkip("\($0)") } }
        return try cached!.get()
    }

    static func locateQEMU() throws -> QEMU {
        var path = which("qemu-system-x86_64")
        if path == nil {
            var log = ""
            for command in [
                ["apt-get", "install", "-y", "--no-install-recommends", "qemu-system-x86"],
                ["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", "qemu-system-x86"],
            ] {
                let r = try? run(
                    "/usr/bin/env", command, timeout: 900, environment: ["DEBIAN_FRONTEND": "noninteractive"])
                log =
                    r.map { $0.stderr.split(separator: "\n").last.map(String.init) ?? "status \($0.status)" }
                    ?? "apt-get did not run"
                path = which("qemu-system-x86_64")
                if path != nil { break }
            }
            guard path != nil else {
                throw XCTSkip(
                    "qemu-system-x86_64 is not installed and `apt-get install qemu-system-x86` failed: \(log)")
            }
        }
        let qemu = path!
        let qboot = ["/usr/share/qemu/qboot.rom", "/usr/share/seabios/qboot.rom"].first {
            FileManager.default.fileExists(atPath: $0)
        }
        // Can QEMU use KVM here? Boot mb-hello once with -accel kvm.
        let dir = NSTemporaryDirectory() + "qemu-probe-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kernel = dir + "/mb-hello.elf"
        _ = FileManager.default.createFile(atPath: kernel, contents: Data(GuestImage.mbHello.bytes))
        let probe = try run(
            qemu, qemuArguments(accel: "kvm", qboot: qboot, firmware: .qboot) + ["-kernel", kernel], timeout: 60)
        if probe.status == 1 && probe.stdout == "Hello from multiboot\n" {
            return QEMU(path: qemu, accel: "kvm", qboot: qboot, note: nil)
        }
        let reason = probe.stderr.split(separator: "\n").last.map(String.init) ?? "status \(probe.status)"
        return QEMU(path: qemu, accel: "tcg", qboot: qboot, note: "QEMU cannot use KVM here (\(reason))")
    }

    static func qemuArguments(accel: String, qboot: String?, firmware: Firmware, machine: String = "pc") -> [String] {
        var args = [
            "-M", machine, "-accel", accel, "-nodefaults", "-display", "none", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-no-reboot",
        ]
        if firmware == .qboot, let qboot, machine == "pc" { args += ["-bios", qboot] }
        return args
    }

    struct Outcome {
        let status: Int32
        let stdout: String
        let stderr: String
        let seconds: Double
    }

    // MARK: The kernels

    func testHello() throws {
        let q = try compareUnderQEMU("mb-hello")
        XCTAssertEqual(q.stdout, "Hello from multiboot\n")
        XCTAssertEqual(q.status, 1)
    }

    func testExitCodeFromCommandLine() throws {
        XCTAssertEqual(try compareUnderQEMU("mb-exit", append: "exit=0x2a").status, 0x55)
        XCTAssertEqual(try compareUnderQEMU("mb-exit", append: "exit=126").status, 0xFD)
        XCTAssertEqual(try compareUnderQEMU("mb-exit").status, 0x43)
    }

    /// Command line, modules with arguments and a comma, memory map (SeaBIOS's).
    func testInfo() throws {
        let modules: [(name: String, bytes: [UInt8], args: String?)] = [
            ("m0", Array("hello module zero\n".utf8), "arg1 arg2"),
            ("m1,x", Array("second,module".utf8), nil),
            ("empty", [], "nothing here"),
        ]
        let q = try compareUnderQEMU(
            "mb-info", append: "exit=5 foo  bar", modules: modules, firmware: .seabios,
            needsKVMInQEMU: "the E820 map (KVM's identity-map reservation)")
        XCTAssertEqual(q.status, 11)
        XCTAssertTrue(q.stdout.contains("mb-info: ok exit=5"), q.stdout)
    }

    func testInfoWithoutAppendOrModules() throws {
        try compareUnderQEMU("mb-info", append: nil, firmware: .seabios, needsKVMInQEMU: "the E820 map")
    }

    /// RAM above 4 GiB (QEMU keeps 3 GiB below it from -m 3.5G).
    func testInfoLargeMemory() throws {
        try compareUnderQEMU("mb-info", memory: "5000", firmware: .seabios, needsKVMInQEMU: "the E820 map")
    }

    /// The memory map follows the vendor the vCPU shows, not the host's: QEMU
    /// reserves AMD's HyperTransport range for an AMD vCPU with at least 40
    /// physical address bits. Both vendors on whatever host this is.
    func testMemoryMapFollowsTheVCPUsVendor() throws {
        try requireKVM()
        let supported = try KVM().supportedCPUID()
        let physicalBits = (supported[0x8000_0008]?.eax ?? 0) & 0xFF
        guard physicalBits >= 40 else {
            throw XCTSkip(
                "this host's vCPUs have \(physicalBits) physical address bits, QEMU's qemu64 has 40: the maps differ by design"
            )
        }
        for vendor in ["GenuineIntel", "AuthenticAMD"] {
            let q = try compareUnderQEMU(
                "mb-info", cpu: "qemu64,vendor=\(vendor)", firmware: .seabios, needsKVMInQEMU: "the E820 map")
            XCTAssertEqual(
                q.stdout.contains("base=0x000000fd00000000 length=0x0000000300000000 type=2"), vendor == "AuthenticAMD",
                "vendor \(vendor): \(q.stdout)")
        }
    }

    /// QEMU passes any string as -append, one that begins with '-' too.
    func testAppendThatBeginsWithADash() throws {
        let q = try compareUnderQEMU(
            "mb-info", append: "-foo bar exit=3", firmware: .seabios, needsKVMInQEMU: "the E820 map")
        XCTAssertTrue(q.stdout.contains(".elf -foo bar exit=3\""), q.stdout)
        XCTAssertEqual(q.status, 7)
    }

    /// A kernel that loads at 0x8000, over the information at 0x9000–0x9558.
    /// On SeaBIOS, QEMU's default firmware, the multiboot option ROM writes the
    /// information first and reads the kernel last, so the kernel finds its own
    /// bytes (its 0xa5 filler) there; kvmrun does the same. (qboot, whose own
    /// loader writes the information after the kernel, shows the information.)
    func testKernelLoadingOverTheInformation() throws {
        let q = try compareUnderQEMU("mb-low", firmware: .seabios)
        XCTAssertTrue(q.stdout.hasPrefix("mb-low magic=0x2badb002 ebx=0x00009500 load=0x00008000"), q.stdout)
        XCTAssertTrue(
            q.stdout.contains("at=0x00009500 words=0xa5a5a5a5,0xa5a5a5a5"),
            "the kernel covers the information: \(q.stdout)")
        XCTAssertEqual(q.status, 1)
    }

    func testFwCfg() throws {
        let q = try compareUnderQEMU(
            "mb-fwcfg", append: "console=ttyS0", modules: [("initrd.img", Array(repeating: 0x5A, count: 5000), nil)],
            needsKVMInQEMU: "etc/e820 (KVM's identity-map reservation)")
        XCTAssertTrue(q.stdout.hasPrefix("signature=\"QEMU\" id=0x00000003\n"), q.stdout)
    }

    func testPCPortsAndCMOS() throws {
        try compareUnderQEMU("mb-pcports")
        try compareUnderQEMU("mb-pcports", memory: "5G")
    }

    func testSMP() throws {
        for n in [1, 2, 4] {
            let q = try compareUnderQEMU("mb-smp", smp: n)
            XCTAssertTrue(q.stdout.hasSuffix("smp cpus_up=\(n) ok\n"), q.stdout)
        }
    }

    func testFwCfgCPUCount() throws {
        try compareUnderQEMU("mb-fwcfg", smp: 3, needsKVMInQEMU: "etc/e820")
    }

    func testLAPICTimer() throws {
        try compareUnderQEMU("mb-lapic-timer")
    }

    func testIOAPICPIT() throws {
        try compareUnderQEMU("mb-ioapic-pit")
    }

    /// Not a check: QEMU's boot-to-exit time for mb-hello on pc+qboot and on
    /// microvm, and kvmrun's, printed for the record (best of 5).
    func testBootTimes() throws {
        let qemu = try Self.qemu()
        try requireKVM()
        let scratch = try ScratchDirectory()
        let kernel = try scratch.file("mb-hello.elf", GuestImage.mbHello.bytes)
        func best(_ body: () throws -> Double) rethrows -> Double { try (0..<5).map { _ in try body() }.min()! }
        let pc = try best {
            try Self.run(
                qemu.path,
                Self.qemuArguments(accel: qemu.accel, qboot: qemu.qboot, firmware: .qboot) + ["-kernel", kernel],
                timeout: 60
            ).seconds
        }
        let microvm = try best {
            try Self.run(
                qemu.path,
                Self.qemuArguments(accel: qemu.accel, qboot: nil, firmware: .seabios, machine: "microvm") + [
                    "-kernel", kernel,
                ], timeout: 60
            ).seconds
        }
        let ours = try best { try kvmrun(["-kernel", kernel], timeout: 60).seconds }
        print(
            String(
                format:
                    "boot-to-exit, mb-hello, best of 5: QEMU (%@) pc+qboot %.0f ms, microvm %.0f ms; kvmrun %.1f ms",
                qemu.accel, pc * 1000, microvm * 1000, ours * 1000))
    }

    // MARK: Processes

    static func which(_ name: String) -> String? {
        let dirs =
            (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") + [
                "/usr/bin", "/usr/local/bin",
            ]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a program to completion, killing it after `timeout` seconds (status 137 then).
    static func run(
        _ program: String, _ arguments: [String], timeout: TimeInterval,
        environment: [String: String] = [:]
    ) throws -> Outcome {
        let (r, killed) = try runProcess(program, arguments, timeout: timeout, environment: environment)
        return Outcome(status: killed ? 137 : r.status, stdout: r.stdout, stderr: r.stderr, seconds: r.seconds)
    }
}

extension XCTestCase {
    /// Boots `guest` under QEMU and under kvmrun with the same QEMU-style
    /// options and requires the same stdout and exit status; returns QEMU's.
    @discardableResult
    func compareUnderQEMU(
        _ guest: String, append: String? = nil, modules: [(name: String, bytes: [UInt8], args: String?)] = [],
        smp: Int? = nil, memory: String? = "128", cpu: String? = nil, devices: [String] = [],
        firmware: QEMUOracleTests.Firmware = .qboot, needsKVMInQEMU: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> QEMUOracleTests.Outcome {
        let qemu = try QEMUOracleTests.qemu()
        if qemu.accel != "kvm", let why = needsKVMInQEMU {
            throw XCTSkip("\(qemu.note ?? "QEMU runs on TCG"); \(guest) prints \(why), which differs under TCG")
        }
        try requireKVM()
        guard let image = GuestImage.named(guest) else {
            XCTFail("no built-in guest \(guest)", file: file, line: line)
            throw XCTSkip("no guest")
        }
        let scratch = try ScratchDirectory()
        let kernel = try scratch.file("\(guest).elf", image.bytes)
        var options = ["-kernel", kernel]
        if let append { options += ["-append", append] }
        if !modules.isEmpty {
            var entries: [String] = []
            for m in modules {
                let path = try scratch.file(m.name, m.bytes)
                let entry = m.args.map { "\(path) \($0)" } ?? path
                entries.append(entry.replacingOccurrences(of: ",", with: ",,"))
            }
            options += ["-initrd", entries.joined(separator: ",")]
        }
        if let smp { options += ["-smp", "\(smp)"] }
        if let memory { options += ["-m", memory] }
        if let cpu { options += ["-cpu", cpu] }
        for device in devices { options += ["-device", device] }

        let q = try QEMUOracleTests.run(
            qemu.path,
            QEMUOracleTests.qemuArguments(accel: qemu.accel, qboot: qemu.qboot, firmware: firmware) + options,
            timeout: 120)
        XCTAssertFalse(
            q.stdout.isEmpty, "QEMU printed nothing (status \(q.status)): \(q.stderr)", file: file, line: line)
        XCTAssertEqual(
            q.status & 1, 1, "QEMU did not end through isa-debug-exit (status \(q.status)): \(q.stderr)",
            file: file, line: line)
        let k = try kvmrun(options, timeout: 120, file: file, line: line)
        XCTAssertEqual(k.stdout, q.stdout, "serial output differs (kvmrun stderr: \(k.stderr))", file: file, line: line)
        XCTAssertEqual(k.status, q.status, "exit status differs (kvmrun stderr: \(k.stderr))", file: file, line: line)
        XCTAssertFalse(k.signaled, "kvmrun died of signal \(k.status)", file: file, line: line)
        return q
    }
}
