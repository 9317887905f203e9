import Foundation
import KVMCore
import XCTest

/// kvmrun against the hostile guests (Guests/src/hostile-*, Docs/HARDENING.md):
/// it stays up, says what happened in one line (registers after a triple
/// fault), exits with the README's status, and does so in bounded time.
final class HostileGuestCLITests: XCTestCase {
    /// Random port, fw_cfg and MMIO accesses: the guest survives and so does kvmrun.
    func testRandomIOEndsCleanly() throws {
        try requireKVM()
        for smp in ["1", "4"] {
            // With -smp 4 the hostile code runs on the BSP while three APs exist,
            // parked in KVM (kvmrun never starts them; HostileGuestTests does).
            let result = try kvmrun(["--builtin", "hostile-io", "-smp", smp, "--timeout", "60s"], timeout: 90)
            XCTAssertFalse(result.signaled, "-smp \(smp): \(result.stderr.prefix(400))")
            XCTAssertEqual(result.status, 0, "-smp \(smp): stderr \(result.stderr.prefix(400))")
            XCTAssertEqual(result.stderr, "", "-smp \(smp)")
            XCTAssertTrue(result.stdout.hasPrefix("hostile-io: ports, fw_cfg, MMIO\n"), "-smp \(smp)")
            XCTAssertTrue(
                result.stdout.hasSuffix("hostile-io: survived\n"),
                "-smp \(smp): \(result.stdout.suffix(80).debugDescription)")
            XCTAssertLessThan(result.seconds, 60, "-smp \(smp)")
            assertNoCrashText(result)
        }
    }

    /// The first broken hostcall (a 1-byte out to the port) ends the run: status 22.
    func testBrokenHostcallIsAProtocolError() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "hostile-hostcall"])
        assertOneLineError(result, status: 22, mentioning: ["1-byte access", "32-bit out"])
        XCTAssertEqual(result.stdout, "Breaking the hostcall protocol\n")
    }

    /// `rep outsb`/`rep insb` with RCX = 2^32 - 1: KVM splits them into exits, and
    /// --timeout stops them (status 16) as any other runaway guest.
    func testFourGiBStringIOIsStoppedByTheTimeout() throws {
        try requireKVM()
        for guest in ["hostile-rep-outsb", "hostile-rep-insb"] {
            let result = try kvmrun(["--builtin", guest, "--timeout", "1s"], timeout: 30)
            assertOneLineError(result, status: 16, mentioning: ["--timeout 1s", "rip=0x"])
            XCTAssertGreaterThanOrEqual(result.seconds, 1, guest)
            XCTAssertLessThan(result.seconds, 10, guest)
            XCTAssertTrue(result.stdout.hasPrefix("rep "), "\(guest): \(result.stdout)")
        }
    }

    /// IDT, GDT and page tables overwritten, then an exception: a triple fault,
    /// reported with the registers (status 12).
    func testSmashedTablesAreATripleFault() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "hostile-smash"], timeout: 30)
        XCTAssertFalse(result.signaled)
        XCTAssertEqual(result.status, 12, result.stderr)
        XCTAssertEqual(result.stdout, "Smashing the IDT, GDT and page tables\n")
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.first, "kvmrun: guest triple fault (KVM_EXIT_SHUTDOWN)", result.stderr)
        for register in ["rip", "rflags", "cr0", "cr3", "efer"] {
            XCTAssertTrue(result.stderr.contains(register), "no \(register) in: \(result.stderr)")
        }
        assertNoCrashText(result)
    }

    /// PIT, LAPIC timer and self-IPIs at full rate with -smp 2 (the in-kernel
    /// irqchip): kvmrun still stops the guest at its timeout.
    func testInterruptStormIsStoppedByTheTimeout() throws {
        try requireKVM()
        for smp in ["2", "4"] {
            let result = try kvmrun(["--builtin", "hostile-irq-storm", "-smp", smp, "--timeout", "2s"], timeout: 30)
            assertOneLineError(result, status: 16, mentioning: ["--timeout 2s"])
            XCTAssertLessThan(result.seconds, 10, "-smp \(smp)")
            XCTAssertEqual(result.stdout, "hostile-irq-storm: PIT, LAPIC timer and self-IPIs at full rate\n")
        }
    }

    /// A guest that hostcalls (HC_SYNC, HC_SNAPSHOT, HC_DUMP_NESTED) faster than
    /// the timeout must still be stopped by --timeout: the limit is the run's,
    /// not one per resumed request.
    func testHostcallFloodIsStoppedByTheTimeout() throws {
        try requireKVM()
        let result = try kvmrun(["--builtin", "hostile-flood", "--timeout", "1s"], timeout: 15)
        guard result.seconds < 10 else {
            return XCTFail(
                "--timeout 1s did not stop a guest that hostcalls faster than the timeout: killed after \(Int(result.seconds)) s"
            )
        }
        XCTAssertFalse(result.signaled)
        XCTAssertEqual(result.status, 16, "expected the timeout status; stderr tail: \(result.stderr.suffix(200))")
        XCTAssertTrue(result.stderr.hasSuffix("\n"))
        XCTAssertTrue(
            result.stderr.split(separator: "\n").last?.contains("--timeout 1s") ?? false,
            "last stderr line: \(result.stderr.split(separator: "\n").last ?? "")")
        assertNoCrashText(result)
    }

    /// A hostile file, not a guest: an 88-byte ELF32 multiboot kernel whose
    /// program header asks for nearly 4 GiB (Fuzz/Findings/fuzz-multiboot). It
    /// must be refused (status 6) before anything that size is allocated, also
    /// when guest RAM is larger than what it claims: run with its address space
    /// limited, kvmrun may not die of it.
    func testMultibootKernelAskingForFourGiBIsRefusedCheaply() throws {
        try requireKVM()
        try requireUnsanitized()
        // Fuzz/Findings/fuzz-multiboot/elf32-memsz-4gib-oom, less the fuzz input's
        // 14-byte prefix: an ELF32 header, a PT_LOAD at 0x1badb002 of 0xe4524ffb
        // bytes, and the multiboot magic with its checksum inside the header.
        let hex =
            "7f454c4601010100ffff00000000000002000300010000000c00100034000000940200000000000034002000"
            + "020028000600050001000000000000000000000002b0ad1b03000000fb4f52e4fafc89000000000000010000"
        let kernel: [UInt8] = stride(from: 0, to: hex.count, by: 2).map {
            let i = hex.index(hex.startIndex, offsetBy: $0)
            return UInt8(hex[i..<hex.index(i, offsetBy: 2)], radix: 16)!
        }
        let scratch = try ScratchDirectory()
        let path = try scratch.file("evil-kernel.elf", kernel)
        // With 8 GiB of guest RAM the address space holds that mapping too: what
        // 11 GB leaves beside it is less than the 3.8 GB the kernel claims. (The
        // kernel must lie below 4 GiB, where a PC has at most 3 GiB of RAM.)
        for (memory, limit) in [("64M", "2000000"), ("8G", "11000000")] {
            let result = try kvmrun(
                ["-m", memory, "-kernel", path], timeout: 60,
                wrapper: ["/bin/sh", "-c", "ulimit -v \(limit) && exec \"$@\"", "sh"])
            assertOneLineError(result, status: 6, mentioning: [path])
            XCTAssertLessThan(result.seconds, 10, "-m \(memory)")
        }
    }

    /// hostile-flood asks for a snapshot with a new tag each round: with
    /// --snapshot-dir it could fill the disk. Only --snapshot-limit files are
    /// written, the refusal is said once, and no temporary file is left.
    func testSnapshotRequestsCannotFillTheDisk() throws {
        try requireKVM()
        let scratch = try ScratchDirectory()
        let result = try kvmrun(
            [
                "--builtin", "hostile-flood", "--timeout", "2s", "--snapshot-dir", scratch.path,
                "--snapshot-limit", "3",
            ], timeout: 30)
        XCTAssertEqual(result.status, 16, result.stderr.suffix(300).description)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(),
            ["snapshot-1.kvmsnap", "snapshot-2.kvmsnap", "snapshot-3.kvmsnap"])
        let refusals = result.stderr.components(separatedBy: "more than 3 distinct snapshots").count - 1
        XCTAssertEqual(refusals, 1, result.stderr.suffix(600).description)
        XCTAssertTrue(result.stderr.contains("from tag 4 on"), result.stderr.suffix(600).description)
        assertNoCrashText(result)
        let usage = try kvmrun(["--builtin", "hostile-flood", "--snapshot-limit", "0"])
        assertOneLineError(usage, status: 2, mentioning: ["--snapshot-limit 0"])
    }

    /// A guest-requested snapshot that would leave less than 5% of its
    /// filesystem free is not written (a 1 MiB tmpfs here): said once, the run goes on.
    func testSnapshotRequestsKeepTheFilesystemFromFilling() throws {
        try requireKVM()
        let unshare = ["/usr/bin/unshare", "/bin/unshare"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let unshare, geteuid() == 0 else {
            throw XCTSkip("a small tmpfs needs root and unshare(1) for a private mount namespace")
        }
        let scratch = try ScratchDirectory()
        let script = "mount -t tmpfs -o size=1m none \"$1\" || exit 97; shift; exec \"$@\""
        let result = try kvmrun(
            ["--builtin", "hostile-flood", "--timeout", "1s", "--snapshot-dir", scratch.path],
            timeout: 30,
            wrapper: [
                unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", script,
                "sh", scratch.path,
            ])
        if result.status == 97 || result.stderr.hasPrefix("unshare:") {
            throw XCTSkip("cannot mount a tmpfs in a private mount namespace here: \(result.stderr.prefix(200))")
        }
        XCTAssertEqual(result.status, 16, result.stderr.suffix(300).description)
        XCTAssertEqual(
            result.stderr.components(separatedBy: "would leave less than 5% of its filesystem free").count - 1, 1,
            result.stderr.suffix(600).description)
        XCTAssertFalse(result.stderr.contains("written to"), result.stderr.suffix(600).description)
        assertNoCrashText(result)
    }
}
