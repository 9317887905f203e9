import Foundation
import Guests
import XCTest

/// The built `kvmrun` executable, run as a process: statuses, stdout, and that
/// every error is one line on stderr, never a trap or a backtrace.
final class KVMRunGuestTests: XCTestCase {
    private func guest(_ name: String) throws -> GuestImage {
        try XCTUnwrap(GuestImage.named(name), "no built-in guest \(name)")
    }

    func testHelloC() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "hello-c"])
        XCTAssertEqual(result.status, 0x21, result.stderr)
        XCTAssertEqual(result.stdout, "Hello from C (ELF64)\nsum(1..100) = 5050\n")
        XCTAssertEqual(result.stderr, "")
        XCTAssertFalse(result.signaled)
    }

    func testNoArgumentsRunsHelloC() throws {
        try requireKVM()
        let result = try kvmrun([])
        XCTAssertEqual(result.status, 0x21, result.stderr)
        XCTAssertEqual(result.stdout, "Hello from C (ELF64)\nsum(1..100) = 5050\n")
        XCTAssertEqual(result.stderr, "")
    }

    func testExplicitRunSubcommand() throws {
        try requireKVM()
        let result = try kvmrun(["run", "--builtin", "hello-real"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "Hello from real mode\n")
    }

    func testDebugExit() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "debug-exit"])
        XCTAssertEqual(result.status, 0x55, result.stderr)
        XCTAssertEqual(result.stdout, "Exiting through isa-debug-exit with 0x2a\n")
        XCTAssertEqual(result.stderr, "")
    }

    func testHaltingAndDoneGuestsExitZero() throws {
        try requireKVM()
        let expected: [(String, String)] = [
            ("hello-real", "Hello from real mode\n"),
            ("hello-protected", "Hello from protected mode\n"),
            ("hello-long", "Hello from long mode\n"),
            ("regs", "Loading known register values\n"),
            ("unassigned", "Probing unassigned port 0x2f0 and MMIO 0xd0000000\ndone\n"),
            ("hostcall", "Hostcall test: report, sync 1, sync 2, done\nsynced twice\n"),
        ]
        for (name, stdout) in expected {
            let result = try kvmrun(["--builtin", name])
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
            XCTAssertEqual(result.stdout, stdout, name)
            XCTAssertEqual(result.stderr, "", name)
        }
    }

    func testTripleFault() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "triple-fault"])
        XCTAssertEqual(result.status, 12)
        XCTAssertFalse(result.signaled)
        XCTAssertEqual(result.stdout, "Triple-faulting now\n")
        // Registers follow the one-line message: several lines are allowed here.
        let lines = result.stderr.split(separator: "\n")
        XCTAssertTrue(lines.first?.hasPrefix("kvmrun: ") ?? false, result.stderr)
        XCTAssertTrue(lines.first?.contains("triple fault") ?? false, result.stderr)
        for register in ["rax", "rip", "rflags", "cr0", "efer"] {
            XCTAssertTrue(result.stderr.contains(register), "no \(register) in: \(result.stderr)")
        }
        assertNoCrashText(result)
    }

    func testSpinTimesOut() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "spin", "--timeout", "300ms"])
        assertOneLineError(result, status: 16, mentioning: ["rip=0x", "300ms"])
        XCTAssertEqual(result.stdout, "spinning\n")
        XCTAssertGreaterThanOrEqual(result.seconds, 0.3)
        XCTAssertLessThan(result.seconds, 30)
    }

    func testGuestFailure() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "fail"])
        assertOneLineError(result, status: 18, mentioning: ["expected failure", "line 7"])
        XCTAssertEqual(result.stdout, "Failing on purpose\n")
    }

    /// On kvm_pvm, paging without long mode is unsupported and the guest
    /// triple-faults at once (Guests/README.md); elsewhere it prints and halts.
    func testHelloPaged() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "hello-paged"])
        if FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") {
            XCTAssertEqual(result.status, 12, "kvm_pvm: expected the triple-fault status; stderr: \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "no instruction ran")
            XCTAssertTrue(result.stderr.hasPrefix("kvmrun: guest triple fault"), result.stderr)
        } else {
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, "Hello from paged mode\n")
        }
        assertNoCrashText(result)
    }

    /// SIGINT ends a guest that would run forever: status 130 (or death by
    /// SIGINT, which a shell reports as 130), never a crash.
    func testInterruptStopsARunawayGuest() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "spin"], timeout: 30, interruptAfter: 0.5)
        if result.signaled {
            XCTAssertEqual(result.status, SIGINT, "killed by another signal")
        } else {
            assertOneLineError(result, status: 130, mentioning: [])
        }
        XCTAssertEqual(result.stdout, "spinning\n")
        XCTAssertLessThan(result.seconds, 10, "SIGINT took too long to stop kvmrun")
        assertNoCrashText(result)
    }

    func testListBuiltins() throws {
        let result = try kvmrun(["--list-builtins"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        let names = result.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        XCTAssertEqual(names, GuestImage.all.map(\.name), "one line per built-in guest, in order")
        for image in GuestImage.all {
            XCTAssertTrue(result.stdout.contains(image.summary), "summary of \(image.name) missing")
        }
    }

    func testStatsGoToStderr() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "port-loop", "--stats"], timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "")
        XCTAssertTrue(result.stderr.contains("200001") || result.stderr.contains("200,001"), result.stderr)
        XCTAssertTrue(result.stderr.contains("IO"), result.stderr)
    }

    // MARK: Guests from files

    func testFlatRealModeFileByDefault() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let path = try dir.file("hello-real.bin", try guest("hello-real").bytes)
        let result = try kvmrun([path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "Hello from real mode\n")
        XCTAssertEqual(result.stderr, "")
    }

    func testFlatLongModeFileAtALoadAddress() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let path = try dir.file("hello-long.bin", try guest("hello-long").bytes)
        let result = try kvmrun(["--mode", "long", "--load", "0x100000", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "Hello from long mode\n")
        // Without --load the default for long mode is 0x100000 too.
        let defaulted = try kvmrun(["--mode", "long", path])
        XCTAssertEqual(defaulted.status, 0, defaulted.stderr)
        XCTAssertEqual(defaulted.stdout, "Hello from long mode\n")
    }

    func testFlatProtectedModeFile() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let path = try dir.file("hello-protected.bin", try guest("hello-protected").bytes)
        let result = try kvmrun(["--mode", "protected", "--load", "0x10_0000", "-m", "16M", path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "Hello from protected mode\n")
    }

    func testELFFile() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let path = try dir.file("hello-c.elf", try guest("hello-c").bytes)
        // --mode is for flat binaries; an ELF64 starts in long mode whatever it says.
        let result = try kvmrun([path, "--mode", "real"])
        XCTAssertEqual(result.status, 0x21, result.stderr)
        XCTAssertEqual(result.stdout, "Hello from C (ELF64)\nsum(1..100) = 5050\n")
    }

    // MARK: Bad input

    func testMissingFile() throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/no-such-guest.bin"
        assertOneLineError(try kvmrun([path]), status: 4, mentioning: [path, "ENOENT"])
    }

    func testDirectory() throws {
        let dir = try ScratchDirectory()
        assertOneLineError(try kvmrun([dir.path]), status: 4, mentioning: [dir.path, "EISDIR"])
    }

    func testUnreadableFile() throws {
        if geteuid() == 0 { throw XCTSkip("running as root (euid 0): a chmod 000 file is still readable") }
        let dir = try ScratchDirectory()
        let path = try dir.file("secret.bin", [0xF4], mode: 0)
        assertOneLineError(try kvmrun([path]), status: 4, mentioning: [path, "EACCES"])
    }

    func testEmptyFile() throws {
        let dir = try ScratchDirectory()
        let path = try dir.file("empty.bin", [])
        assertOneLineError(try kvmrun([path]), status: 6, mentioning: [path, "empty"])
    }

    func testGarbageWithELFMagic() throws {
        let dir = try ScratchDirectory()
        var generator = SystemRandomNumberGenerator()
        let bytes = [0x7F, 0x45, 0x4C, 0x46] + (0..<200).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = try dir.file("garbage.elf", bytes)
        assertOneLineError(try kvmrun([path]), status: 6, mentioning: [path, "ELF"])
    }

    func testELFWithInterpreter() throws {
        var bytes = try guest("hello-c").bytes
        let phoff = Int(bytes[32]) | Int(bytes[33]) << 8
        XCTAssertEqual(bytes[phoff], 1, "hello-c's first program header is PT_LOAD")
        bytes[phoff] = 3 // PT_INTERP
        let dir = try ScratchDirectory()
        let path = try dir.file("interp.elf", bytes)
        assertOneLineError(try kvmrun([path]), status: 6, mentioning: [path, "PT_INTERP"])
    }

    func testPositionIndependentELF() throws {
        var bytes = try guest("hello-c").bytes
        bytes[16] = 3 // e_type = ET_DYN
        let dir = try ScratchDirectory()
        let path = try dir.file("pie.elf", bytes)
        assertOneLineError(try kvmrun([path]), status: 6, mentioning: [path, "ET_DYN"])
    }

    func testFlatGuestLargerThanMemory() throws {
        let dir = try ScratchDirectory()
        let path = try dir.file("big.bin", [UInt8](repeating: 0x90, count: (1 << 20) + 4096))
        assertOneLineError(try kvmrun(["-m", "1M", path]), status: 6, mentioning: [path, "larger than guest memory"])
    }

    func testImageOverlappingBootStructures() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let path = try dir.file("low.bin", try guest("hello-long").bytes)
        assertOneLineError(
            try kvmrun(["--mode", "long", "--load", "0x8000", path]), status: 6,
            mentioning: [path, "boot structures"])
    }

    func testImageOutsideRAM() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let path = try dir.file("high.bin", try guest("hello-long").bytes)
        assertOneLineError(
            try kvmrun(["--mode", "long", "--load", "0x40000000", "-m", "16M", path]), status: 6,
            mentioning: [path, "outside guest RAM"])
    }

    /// A load address at the very top of the address space: refused with a
    /// message, not an arithmetic-overflow trap computing the image's end.
    func testLoadAddressAtTheTopOfTheAddressSpace() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let path = try dir.file("top.bin", [0xF4])
        for mode in ["long", "real"] {
            assertOneLineError(
                try kvmrun(["--mode", mode, "--load", "0xffffffffffffffff", path]), status: 6,
                mentioning: [path])
        }
    }

    func testBadOptions() throws {
        let cases: [([String], [String])] = [
            (["--mode", "bogus"], ["--mode bogus"]),
            (["-m", "12Q"], ["-m 12Q"]),
            (["--memory", "0"], ["-m 0"]),
            (["--load", "zz"], ["--load zz"]),
            (["--entry", "0xq"], ["--entry 0xq"]),
            (["--timeout", "-1"], ["--timeout"]),
            (["--timeout=-1"], ["--timeout -1"]),
            (["--timeout", "soon"], ["--timeout soon"]),
            (["--bogus"], ["--bogus"]),
            (["--builtin", "nope"], ["nope"]),
            (["-m", "100000G"], ["-m 100000G"]),
            (["--builtin", "hello-c", "/some/file"], ["not both"]),
            // QEMU's options take values that begin with '-': each is read, then judged.
            (["-m", "-5"], ["-m -5", "not a size"]),
            (["-smp", "-2"], ["-smp -2"]),
            (["-machine", "-x"], ["-machine -x"]),
            (["-accel", "-x"], ["-accel -x"]),
            (
                ["-append", "-foo bar", "--builtin", "hello-c"],
                ["-append and -initrd are for Linux and multiboot kernels"]
            ),
            (["-initrd", "-m0", "--builtin", "hello-c"], ["-append and -initrd are for Linux and multiboot kernels"]),
        ]
        for (arguments, fragments) in cases {
            let result = try kvmrun(arguments)
            assertOneLineError(result, status: 2, mentioning: fragments)
            XCTAssertEqual(result.stdout, "", "\(arguments): nothing on stdout")
        }
        assertOneLineError(try kvmrun(["-kernel", "-missing-kernel"]), status: 4, mentioning: ["-missing-kernel"])
    }

    /// Guest RAM that cannot be mapped (address space limited with ulimit -v) is
    /// a set-up failure (status 10) named in one line, not a usage error.
    func testGuestMemoryThatCannotBeMapped() throws {
        try requireKVM()
        try requireUnsanitized()
        let result = try kvmrun(["-m", "8G"], wrapper: ["/bin/sh", "-c", "ulimit -v 1000000 && exec \"$@\"", "sh"])
        assertOneLineError(result, status: 10, mentioning: ["mmap guest memory", "ENOMEM"])
        XCTAssertFalse(result.stderr.contains("--help"), "not a usage error: \(result.stderr)")
    }

    /// Runs kvmrun in a private mount namespace where `setup` has replaced
    /// /dev/kvm; skips when namespaces are not available (not root, no unshare).
    private func kvmrunWithoutKVM(_ setup: String, _ arguments: [String] = []) throws -> ProcessResult {
        let unshare = ["/usr/bin/unshare", "/bin/unshare"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let unshare, geteuid() == 0 else {
            throw XCTSkip(
                "hiding /dev/kvm needs root and unshare(1) for a private mount namespace; status 8 not exercised")
        }
        let script = "\(setup) || exit 97; exec \"$0\" \"$@\""
        let result = try kvmrun(
            arguments, wrapper: [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", script])
        if result.status == 97 || result.stderr.hasPrefix("unshare:") {
            throw XCTSkip("cannot make a private mount namespace here: \(result.stderr.prefix(200))")
        }
        return result
    }

    func testKVMMissing() throws {
        // An empty /dev: opening /dev/kvm gives ENOENT.
        let result = try kvmrunWithoutKVM("mount -t tmpfs none /dev")
        assertOneLineError(result, status: 8, mentioning: ["/dev/kvm", "ENOENT", "kvm module"])
        XCTAssertEqual(result.stdout, "")
    }

    func testKVMIsNotAKVMDevice() throws {
        // /dev/kvm is /dev/null: it opens, but the API-version ioctl fails.
        let result = try kvmrunWithoutKVM("mount --bind /dev/null /dev/kvm", ["--builtin", "hello-real"])
        assertOneLineError(result, status: 8, mentioning: ["KVM_GET_API_VERSION", "ENOTTY"])
        XCTAssertEqual(result.stdout, "")
    }

    // MARK: Help

    /// `kvmrun help run` and `kvmrun run --help` print the exit-status table, and
    /// every status the other tests observe is in it.
    func testHelpPrintsTheExitStatusTable() throws {
        for arguments in [["help", "run"], ["run", "--help"]] {
            let result = try kvmrun(arguments)
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
            assertNoCrashText(result)
            var table: [Int: String] = [:]
            for line in result.stdout.split(separator: "\n") {
                let fields = line.drop { $0 == " " }.split(separator: "\t", maxSplits: 1)
                if fields.count == 2, let status = Int(fields[0]) { table[status] = String(fields[1]) }
            }
            for status in [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 22] {
                XCTAssertNotNil(
                    table[status], "\(arguments): status \(status) missing from the table:\n\(result.stdout)")
            }
            XCTAssertTrue(table[16]?.contains("timeout") ?? false)
            XCTAssertTrue(table[12]?.contains("triple") ?? false)
            XCTAssertTrue(
                table.keys.filter { $0 != 0 && $0 < 128 }.allSatisfy { $0 % 2 == 0 },
                "kvmrun's own statuses are even (odd ones belong to isa-debug-exit)")
            XCTAssertTrue(result.stdout.contains("isa-debug-exit"), "the odd statuses are explained")
        }
    }

    func testVersion() throws {
        let result = try kvmrun(["--version"])
        XCTAssertEqual(result.status, 0)
        XCTAssertFalse(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }
}
