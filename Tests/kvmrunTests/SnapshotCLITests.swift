import Foundation
import Guests
import XCTest

@testable import KVMCore

/// Snapshots through kvmrun: taken at an exit count, when the guest asks, or on
/// SIGUSR1, and continued by `kvmrun restore FILE` in a new process, which
/// prints the rest of the output and exits with the same status as an
/// uninterrupted run. Bad files are refused with status 24 and one line.
final class SnapshotCLITests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws {
        try requireKVM()
        scratch = try ScratchDirectory()
    }

    override func tearDown() { scratch = nil }

    // MARK: In-process reference runs (the same machine kvmrun builds: 64 MiB, one vCPU)

    /// Runs `image` in this process until `exits` exits of vCPU 0 (KVM_RUN
    /// interruptions not counted) have been handled, or to its end when nil.
    /// Returns the serial output so far, the vCPU's registers, and the total
    /// exits when it ran to the end.
    private func runInProcess(_ image: GuestImage, exits limit: Int? = nil) throws -> (
        serial: String, registers: Registers, exits: Int
    ) {
        let machine = try Machine(memorySize: 64 << 20, serial: .buffer)
        try machine.load(try image.bootImage())
        let count = AtomicCounter()
        let trace: @Sendable (VCPU, VMExit) -> Void = { vcpu, exit in
            if case .interrupted = exit { return }
            count.add(1)
            if count.value == limit { vcpu.stop() }
        }
        while true {
            let stop = try machine.run(timeout: .seconds(30), trace: trace)
            if case .stopped = stop { break }
            if case .sync = stop { continue }
            break
        }
        return (machine.serial.text, try machine.vcpu.registers(), count.value)
    }

    private func registerList(_ r: Registers) -> [UInt64] {
        [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14,
            r.r15, r.rip, r.rflags,
        ]
    }

    // MARK: Property: snapshot at every k-th exit, restore in a new process

    /// For each k-th exit N: `kvmrun --snapshot-at-exit N FILE` runs like an
    /// uninterrupted run; `kvmrun restore FILE` (a new process) prints exactly the
    /// rest of the output, exits with the same status, and — snapshotted once
    /// more, one exit before the end — holds the registers the uninterrupted run
    /// holds at that exit.
    private func checkNewProcessRestores(_ image: GuestImage, every k: Int, atLeast points: Int = 2) throws {
        let reference = try kvmrun(["--builtin", image.name])
        XCTAssertEqual(reference.stderr, "", image.name)
        let whole = try runInProcess(image)
        XCTAssertEqual(whole.serial, reference.stdout, "\(image.name): in-process and kvmrun runs agree")
        let beforeEnd = try runInProcess(image, exits: whole.exits - 1)
        var checked = 0
        for n in stride(from: k, to: whole.exits - 1, by: k) {
            let file = scratch.path + "/\(image.name)-\(n).kvmsnap"
            let taking = try kvmrun(["--builtin", image.name, "--snapshot-at-exit", "\(n)", file])
            XCTAssertEqual(taking.status, reference.status, "\(image.name) at \(n): \(taking.stderr)")
            XCTAssertEqual(taking.stdout, reference.stdout, "\(image.name) at \(n): the run goes on as before")
            XCTAssertEqual(taking.stderr, "kvmrun: snapshot at exit \(n) written to \(file)\n")

            let last = scratch.path + "/\(image.name)-\(n)-last.kvmsnap"
            let restored = try kvmrun(["restore", file, "--snapshot-at-exit", "\(whole.exits - 1 - n)", last])
            XCTAssertEqual(restored.status, reference.status, "\(image.name) restored at \(n): \(restored.stderr)")
            let prefix = try runInProcess(image, exits: n).serial
            XCTAssertEqual(
                prefix + restored.stdout, reference.stdout, "\(image.name) restored at \(n): the rest of the output")
            let end = try Snapshot(contentsOf: last)
            XCTAssertEqual(
                registerList(end.vcpus[0].registers), registerList(beforeEnd.registers),
                "\(image.name) restored at \(n): registers one exit before the end")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, points)
    }

    func testHostcallRestoredInANewProcess() throws {
        try checkNewProcessRestores(.hostcall, every: 9)
    }

    func testHelloCRestoredInANewProcess() throws {
        try checkNewProcessRestores(.helloC, every: 11)
    }

    func testPortLoopRestoredInANewProcess() throws {
        try checkNewProcessRestores(.portLoop, every: 130_000, atLeast: 1)
    }

    // MARK: The other triggers

    func testGuestRequestedSnapshotGoesToTheDirectory() throws {
        // HC_SNAPSHOT tag 42, then prints '!' and halts.
        var code: [UInt8] = [
            0xB8, 0x00, 0x01, 0x10, 0x00, 0x66, 0xBA, 0x00, 0x10, 0xEF, // mov eax, block; mov dx, 0x1000; out dx, eax
            0xB0, 0x21, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xF4,
        ] // mov al, '!'; mov dx, 0x3f8; out dx, al; hlt
        code += [UInt8](repeating: 0, count: 0x100 - code.count)
        code += [0x48, 0x53, 0x43, 0x4C, 6, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0]
        let guest = try scratch.file("snap.bin", code)
        let result = try kvmrun([guest, "--mode", "long", "--load", "0x100000", "--snapshot-dir", scratch.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "!")
        let file = scratch.path + "/snapshot-42.kvmsnap"
        XCTAssertEqual(result.stderr, "kvmrun: snapshot at HC_SNAPSHOT 42 written to \(file)\n")
        let restored = try kvmrun(["restore", file])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(restored.stdout, "!")
        XCTAssertEqual(restored.stderr, "")
        // Without --snapshot-dir the request is noted and the run goes on.
        let plain = try kvmrun([guest, "--mode", "long", "--load", "0x100000"])
        XCTAssertEqual(plain.status, 0)
        XCTAssertEqual(plain.stderr, "kvmrun: the guest asked for snapshot 42; --snapshot-dir DIR takes it\n")
    }

    func testSIGUSR1TakesASnapshotAndTheRunGoesOn() throws {
        let file = scratch.path + "/signal.kvmsnap"
        let result = try runSignalled(["--builtin", "spin", "--timeout", "3s", "--snapshot-on-signal", file])
        XCTAssertEqual(result.status, 16, "the spin guest runs on to its timeout: \(result.stderr)")
        XCTAssertTrue(result.stderr.hasPrefix("kvmrun: snapshot at SIGUSR1 written to \(file)\n"), result.stderr)
        let restored = try kvmrun(["restore", file, "--timeout", "300ms"])
        XCTAssertEqual(restored.status, 16, restored.stderr)
        XCTAssertEqual(restored.stdout, "", "'spinning' was printed before the snapshot")
        XCTAssertTrue(restored.stderr.contains("still running after --timeout 300ms"), restored.stderr)
    }

    /// kvmrun with `arguments`; once its output shows the guest running, SIGUSR1.
    private func runSignalled(_ arguments: [String]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = try KVMRunLocator.executable()
        process.arguments = arguments
        let out = scratch.path + "/out"
        let err = scratch.path + "/err"
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        var signalled = false
        while process.isRunning && Date() < deadline {
            if !signalled, (try? String(contentsOfFile: out, encoding: .utf8))?.contains("spinning") == true {
                usleep(100_000)
                kill(process.processIdentifier, SIGUSR1)
                signalled = true
            }
            usleep(10_000)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        XCTAssertTrue(signalled, "the guest never printed 'spinning'")
        return ProcessResult(
            status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
            stdout: try String(contentsOfFile: out, encoding: .utf8),
            stderr: try String(contentsOfFile: err, encoding: .utf8), seconds: 0)
    }

    // MARK: Refusals: status 24, one line

    private func hostcallSnapshot() throws -> String {
        let file = scratch.path + "/good.kvmsnap"
        let result = try kvmrun(["--builtin", "hostcall", "--snapshot-at-exit", "5", file])
        XCTAssertEqual(result.status, 0, result.stderr)
        return file
    }

    func testBadFilesAreRefusedWithStatus24() throws {
        let good = try hostcallSnapshot()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        // Not a snapshot.
        assertOneLineError(
            try kvmrun(["restore", try scratch.file("text", Array("hello".utf8))]), status: 24,
            mentioning: ["not a swift-kvm snapshot"])
        // Truncated.
        assertOneLineError(
            try kvmrun(["restore", try scratch.file("cut", Array(bytes.prefix(6000)))]), status: 24,
            mentioning: ["truncated"])
        // A flipped bit in the metadata.
        var flipped = Array(bytes)
        flipped[4200] ^= 0x10
        assertOneLineError(
            try kvmrun(["restore", try scratch.file("flipped", flipped)]), status: 24,
            mentioning: ["corrupt", "checksum"])
        // Another format version (header checksum resealed).
        var version = Array(bytes)
        version[8] = 9
        let crc = CRC32C.checksum(Array(version[0..<60]))
        for i in 0..<4 { version[60 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        assertOneLineError(
            try kvmrun(["restore", try scratch.file("version", version)]), status: 24,
            mentioning: ["version 9"])
        // Missing: the file's own status.
        assertOneLineError(
            try kvmrun(["restore", scratch.path + "/missing.kvmsnap"]), status: 4,
            mentioning: ["missing.kvmsnap", "ENOENT"])
    }

    func testAnotherHostsSnapshotIsRefusedWithStatus24() throws {
        var snapshot = try Snapshot(contentsOf: try hostcallSnapshot())
        let host = snapshot.configuration.cpuVendor
        snapshot.configuration.cpuVendor = host == "AuthenticAMD" ? "GenuineIntel" : "AuthenticAMD"
        let file = scratch.path + "/other.kvmsnap"
        try snapshot.write(to: file)
        assertOneLineError(
            try kvmrun(["restore", file]), status: 24,
            mentioning: ["taken on a \(snapshot.configuration.cpuVendor) CPU", host])
    }

    func testSnapshotOptionsAreChecked() throws {
        assertOneLineError(
            try kvmrun(["--builtin", "hostcall", "--snapshot-at-exit", "0", "x"]), status: 2,
            mentioning: ["--snapshot-at-exit"])
        assertOneLineError(
            try kvmrun(["--builtin", "hostcall", "--snapshot-at-exit", "5"]), status: 2,
            mentioning: ["--snapshot-at-exit"])
        assertOneLineError(
            try kvmrun(["--builtin", "hostcall", "--snapshot-at-exit", "3", "/no/such/dir/x.kvmsnap"]),
            status: 4, mentioning: ["snapshot at exit 3", "/no/such/dir/x.kvmsnap"])
    }
}
