import Foundation
import KVMCore
import XCTest

/// SIGINT, SIGTERM and SIGHUP stop every vCPU of a running kvmrun cleanly: the
/// README's status (130, 143), one stderr line, no crash, the terminal as it was.
final class SignalTests: XCTestCase {
    func testSIGINTStopsAllVCPUs() throws {
        let result = try runAndSignal(["--builtin", "spin", "-smp", "2"], after: "spinning\n", signal: SIGINT)
        assertOneLineError(result, status: 130, mentioning: ["stopped by SIGINT"])
        XCTAssertEqual(result.stdout, "spinning\n")
    }

    func testSIGTERMStopsAllVCPUs() throws {
        let result = try runAndSignal(["--builtin", "spin", "-smp", "2"], after: "spinning\n", signal: SIGTERM)
        assertOneLineError(result, status: 143, mentioning: ["stopped by signal 15"])
        XCTAssertEqual(result.stdout, "spinning\n")
    }

    func testSIGHUPStopsAllVCPUs() throws {
        let result = try runAndSignal(["--builtin", "spin", "-smp", "2"], after: "spinning\n", signal: SIGHUP)
        assertOneLineError(result, status: 143, mentioning: ["stopped by signal 1"])
    }

    /// Four vCPUs under an interrupt storm, and one vCPU in the middle of a 4 GiB
    /// `rep outsb`: a signal still stops them at once.
    func testSignalsStopBusyGuests() throws {
        let storm = try runAndSignal(
            ["--builtin", "hostile-irq-storm", "-smp", "4"],
            after: "full rate\n", signal: SIGTERM)
        assertOneLineError(storm, status: 143, mentioning: ["stopped by signal 15"])
        let rep = try runAndSignal(["--builtin", "hostile-rep-outsb"], after: "port 0x2f0\n", signal: SIGINT)
        assertOneLineError(rep, status: 130, mentioning: ["stopped by SIGINT"])
    }

    /// With a terminal on stdin kvmrun puts it in raw mode (characters reach the
    /// guest's UART as typed) and puts it back when a signal stops it.
    func testTerminalIsRestoredAfterSIGINTAndSIGTERM() throws {
        for signal in [SIGINT, SIGTERM] {
            guard let pty = PTY.open() else { throw XCTSkip("no pseudo-terminal here") }
            let master = pty.master
            defer { close(master) }
            let slave = open(pty.slavePath, O_RDWR | O_NOCTTY)
            XCTAssertGreaterThanOrEqual(slave, 0)
            defer { close(slave) }
            var before = termios()
            XCTAssertEqual(tcgetattr(slave, &before), 0)
            XCTAssertNotEqual(before.c_lflag & tcflag_t(ICANON), 0, "a fresh pty is in canonical mode")
            var during = termios()
            let result = try runAndSignal(
                ["--builtin", "spin", "-smp", "2"], after: "spinning\n", signal: signal,
                stdin: FileHandle(fileDescriptor: slave, closeOnDealloc: false)
            ) {
                _ = tcgetattr(slave, &during)
            }
            XCTAssertEqual(result.status, signal == SIGINT ? 130 : 143, result.stderr)
            XCTAssertEqual(during.c_lflag & tcflag_t(ICANON | ECHO), 0, "raw mode while the guest ran")
            var after = termios()
            XCTAssertEqual(tcgetattr(slave, &after), 0)
            XCTAssertEqual(after.c_lflag, before.c_lflag, "local modes restored after signal \(signal)")
            XCTAssertEqual(after.c_iflag, before.c_iflag, "input modes restored after signal \(signal)")
            XCTAssertEqual(after.c_oflag, before.c_oflag, "output modes restored after signal \(signal)")
        }
    }

    /// SIGKILL (what the OOM killer sends) in the middle of a snapshot write
    /// never leaves a torn snapshot: the write goes to a temporary file beside
    /// the target, fsync, rename. Killed at several points of writing a 256 MiB
    /// snapshot over an older 16 MiB one, the target always reads back whole,
    /// old or new. The killed writes' temporary files stay behind until the
    /// next write of that path removes them.
    ///
    /// Each writer is frozen with SIGSTOP before it is judged, so what it was
    /// doing cannot change between the look and the kill: still writing (its
    /// temporary file is there), already renamed, or already gone. A writer
    /// that finished before the kill is an outcome, not a failure; at least
    /// one kill must land mid-write (the first, at 0 ms, always does: the write
    /// of 256 MiB and its fsync take far longer than one poll).
    func testSIGKILLDuringASnapshotWriteLeavesAWholeFile() throws {
        try requireKVM()
        let executable = try KVMRunLocator.executable()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kvmrun-kill-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("snapshot-1.kvmsnap").path
        func start(_ memory: String) throws -> Process {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["-m", memory, "--builtin", "hostile-touch", "--snapshot-dir", directory.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            return process
        }
        let old = try start("16M")
        old.waitUntilExit()
        XCTAssertEqual(old.terminationStatus, 0)
        XCTAssertEqual(try Snapshot(contentsOf: target).configuration.memorySize, 16 << 20)

        var outcomes: [String] = []
        var killedMidWrite = 0
        for delay in [0, 50_000, 200_000, 600_000] as [useconds_t] {
            let process = try start("256M")
            let pid = process.processIdentifier
            let temporary = "\(target).tmp-\(pid)"
            let started = Date()
            while process.isRunning && !FileManager.default.fileExists(atPath: temporary)
                && Date().timeIntervalSince(started) < 60
            {
                usleep(1_000)
            }
            usleep(delay)
            kill(pid, SIGSTOP)
            let state = Self.waitUntilStoppedOrGone(pid)
            let midWrite = state == "T" && FileManager.default.fileExists(atPath: temporary)
            kill(pid, SIGKILL)
            process.waitUntilExit()
            if state == "T" {
                XCTAssertEqual(process.terminationReason, .uncaughtSignal, "killed while stopped")
            } else {
                XCTAssertEqual(process.terminationReason, .exit, "gone before the kill (state \(state))")
                XCTAssertEqual(process.terminationStatus, 0, "a writer that finished first exits 0")
            }
            if midWrite { killedMidWrite += 1 }
            let snapshot: Snapshot
            do {
                snapshot = try Snapshot(contentsOf: target)
            } catch {
                XCTFail("killed \(delay / 1000) ms into the write: \(target) is torn: \(error)")
                continue
            }
            let size = snapshot.configuration.memorySize
            XCTAssertTrue(size == 16 << 20 || size == 256 << 20, "memory size \(size)")
            let what =
                midWrite ? "killed mid-write" : state == "T" ? "killed after the rename" : "finished before the kill"
            outcomes.append(
                "\(delay / 1000) ms: \(what), \(size >> 20) MiB snapshot, temporary file \(FileManager.default.fileExists(atPath: temporary) ? "left" : "gone")"
            )
        }
        print("SIGKILL during snapshot writes: " + outcomes.joined(separator: "; "))
        XCTAssertGreaterThanOrEqual(killedMidWrite, 1, "no kill landed mid-write: \(outcomes)")
        // The next write of the path removes the temporary files the killed writers left.
        let last = try start("16M")
        last.waitUntilExit()
        XCTAssertEqual(last.terminationStatus, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["snapshot-1.kvmsnap"])
    }

    /// After SIGSTOP: "T" once the process is stopped, "Z" (or "gone", once
    /// reaped) if it had exited first. Its state is the field after the
    /// command's closing parenthesis in /proc/PID/stat.
    private static func waitUntilStoppedOrGone(_ pid: pid_t) -> String {
        let started = Date()
        while Date().timeIntervalSince(started) < 10 {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return "gone" }
            let state = stat[stat.index(after: close)...].split(separator: " ").first.map(String.init) ?? "?"
            if state == "T" || state == "t" { return "T" }
            if state == "Z" || state == "X" { return "Z" }
            usleep(500)
        }
        return "?"
    }

    /// Starts kvmrun, waits for `marker` on its stdout (the guest is running and
    /// kvmrun's signal thread is up), runs `whileRunning`, sends `signal`, and
    /// waits at most `timeout` seconds for the exit.
    private func runAndSignal(
        _ arguments: [String], after marker: String, signal: Int32,
        stdin: FileHandle = FileHandle.nullDevice, timeout: TimeInterval = 30,
        whileRunning: () -> Void = {},
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> ProcessResult {
        try requireKVM()
        let executable = try KVMRunLocator.executable()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kvmrun-signal-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("stdout")
        let errURL = directory.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        let started = Date()
        try process.run()
        func stdoutText() -> String { readWholeFile(outURL.path) }
        while process.isRunning && !stdoutText().contains(marker) && Date().timeIntervalSince(started) < timeout {
            usleep(10_000)
        }
        guard process.isRunning else {
            XCTFail("kvmrun \(arguments.joined(separator: " ")) ended before the signal", file: file, line: line)
            process.waitUntilExit()
            throw TestSetupError("kvmrun ended early: \(readWholeFile(errURL.path))")
        }
        usleep(100_000) // well inside the run, the vCPU threads all started
        whileRunning()
        let signalled = Date()
        kill(process.processIdentifier, signal)
        while process.isRunning && Date().timeIntervalSince(signalled) < timeout { usleep(5_000) }
        let stopSeconds = Date().timeIntervalSince(signalled)
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTFail("kvmrun did not stop within \(timeout) s of signal \(signal)", file: file, line: line)
        }
        process.waitUntilExit()
        XCTAssertLessThan(
            stopSeconds, 5, "signal \(signal) took \(stopSeconds) s to stop kvmrun", file: file, line: line)
        return ProcessResult(
            status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
            stdout: stdoutText(), stderr: readWholeFile(errURL.path),
            seconds: Date().timeIntervalSince(started))
    }
}

/// A file's bytes as text, read with plain read(2): polled often, and
/// Foundation's `String(contentsOf:)` leaks a 4 KiB buffer per empty file
/// (swift-foundation's readBytesFromFile; LeakSanitizer reports it).
private func readWholeFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A pseudo-terminal pair. posix_openpt and friends are not in Swift's Glibc
/// module (they need _XOPEN_SOURCE), so they are looked up at run time.
private enum PTY {
    typealias IntFunction = @convention(c) (Int32) -> Int32
    typealias NameFunction = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?

    static func open() -> (master: Int32, slavePath: String)? {
        func symbol<T>(_ name: String, as type: T.Type) -> T? {
            guard let p = dlsym(nil, name) else { return nil } // RTLD_DEFAULT
            return unsafeBitCast(p, to: type)
        }
        guard let openpt = symbol("posix_openpt", as: IntFunction.self),
            let grant = symbol("grantpt", as: IntFunction.self),
            let unlock = symbol("unlockpt", as: IntFunction.self),
            let name = symbol("ptsname", as: NameFunction.self)
        else { return nil }
        let master = openpt(O_RDWR | O_NOCTTY)
        guard master >= 0 else { return nil }
        guard grant(master) == 0, unlock(master) == 0, let path = name(master) else {
            close(master)
            return nil
        }
        return (master, String(cString: path))
    }
}
