import Foundation
import KVMCore
import XCTest

/// What one kvmrun process did.
struct ProcessResult {
    let status: Int32
    /// True when the process was killed by a signal (`status` is then the signal).
    let signaled: Bool
    let stdout: String
    let stderr: String
    let seconds: Double
}

enum KVMRunLocator {
    /// The built kvmrun: beside the running test bundle first (the build folder
    /// of this very build), then any `.build*/debug/kvmrun` under the package root.
    static func executable() throws -> URL {
        var candidates: [URL] = []
        if let argv0 = CommandLine.arguments.first {
            var url = URL(fileURLWithPath: argv0).resolvingSymlinksInPath()
            for _ in 0..<4 { // .../debug/swift-kvmPackageTests.xctest[/Contents/MacOS/...]
                url.deleteLastPathComponent()
                candidates.append(url.appendingPathComponent("kvmrun"))
            }
        }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("kvmrun"))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("kvmrun"))
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let builds = (try? FileManager.default.contentsOfDirectory(atPath: packageRoot.path)) ?? []
        for build in builds.sorted() where build.hasPrefix(".build") {
            candidates.append(packageRoot.appendingPathComponent(build).appendingPathComponent("debug/kvmrun"))
        }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
        throw KVMRunNotBuilt(searched: candidates.map(\.path))
    }
}

struct KVMRunNotBuilt: Error, CustomStringConvertible {
    let searched: [String]
    var description: String {
        "kvmrun is not built (build it with `swift build --build-tests`); looked in: "
            + searched.joined(separator: ", ")
    }
}

/// Runs kvmrun with `arguments`, killing it after `timeout` seconds (a test
/// failure). With `wrapper`, runs `wrapper + [kvmrun path] + arguments` instead
/// (e.g. in a private mount namespace).
/// With `interruptAfter`, sends SIGINT that many seconds after the start.
func kvmrun(
    _ arguments: [String], timeout: TimeInterval = 60, wrapper: [String] = [],
    interruptAfter: TimeInterval? = nil,
    file: StaticString = #filePath, line: UInt = #line
) throws -> ProcessResult {
    let executable: URL
    do {
        executable = try KVMRunLocator.executable()
    } catch {
        XCTFail("\(error)", file: file, line: line)
        throw error
    }
    let command = wrapper + [executable.path] + arguments
    let (result, killed) = try runProcess(
        command[0], Array(command.dropFirst()), timeout: timeout,
        interruptAfter: interruptAfter)
    if killed {
        XCTFail(
            "kvmrun \(arguments.joined(separator: " ")) ran past \(timeout) s and was killed", file: file, line: line)
    }
    return result
}

/// Runs `program` to its end with stdin empty and stdout and stderr captured;
/// kills it with SIGKILL after `timeout` seconds (`killed`). With
/// `interruptAfter`, sends SIGINT that many seconds after the start.
func runProcess(
    _ program: String, _ arguments: [String], timeout: TimeInterval,
    environment: [String: String] = [:], interruptAfter: TimeInterval? = nil
) throws
    -> (result: ProcessResult, killed: Bool)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("kvmrun-out-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outURL = directory.appendingPathComponent("stdout")
    let errURL = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let started = Date()
    try process.run()
    let deadline = started.addingTimeInterval(timeout)
    var interruptAt = interruptAfter.map { started.addingTimeInterval($0) }
    while process.isRunning && Date() < deadline {
        if let at = interruptAt, Date() >= at {
            kill(process.processIdentifier, SIGINT)
            interruptAt = nil
        }
        usleep(2_000)
    }
    let killed = process.isRunning
    if killed { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    let seconds = Date().timeIntervalSince(started)
    try out.close()
    try err.close()
    let result = ProcessResult(
        status: process.terminationStatus,
        signaled: process.terminationReason == .uncaughtSignal,
        stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self),
        seconds: seconds)
    return (result, killed)
}

/// Skips the calling test when /dev/kvm cannot be opened, with the library's reason.
func requireKVM() throws {
    do {
        _ = try KVM()
    } catch let error as KVMError {
        throw XCTSkip("KVM unavailable: \(error)")
    }
}

/// Skips a test that limits kvmrun's address space (`ulimit -v`) when the tests
/// were built with ASan or TSan (kvmrun then is too): their shadow memory needs
/// more than such a limit leaves.
func requireUnsanitized() throws {
    if dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
        || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil
    {
        throw XCTSkip(
            "built with a sanitizer: its shadow memory needs more address space than this test's ulimit -v leaves")
    }
}

/// A scratch directory removed when the test ends.
final class ScratchDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "kvmrun-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit {
        _ = chmod(path, 0o755)
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `bytes` to a file in the directory and returns its path.
    func file(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws -> String {
        let file = path + "/" + name
        guard FileManager.default.createFile(atPath: file, contents: Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown)
        }
        chmod(file, mode)
        return file
    }
}

extension XCTestCase {
    /// kvmrun failed the way errors must: the given status, exactly one stderr
    /// line starting with "kvmrun: " that mentions each fragment, and no crash text.
    func assertOneLineError(
        _ result: ProcessResult, status: Int32, mentioning fragments: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        guard !result.signaled else {
            let summary = result.stderr.split(separator: "\n").filter { !$0.isEmpty }.prefix(6).joined(separator: " | ")
            return XCTFail("kvmrun died of signal \(result.status): \(summary)", file: file, line: line)
        }
        XCTAssertEqual(result.status, status, "exit status; stderr: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(
            result.stderr.hasSuffix("\n"), "stderr ends with a newline: \(result.stderr.debugDescription)",
            file: file, line: line)
        XCTAssertEqual(
            result.stderr.filter { $0 == "\n" }.count, 1,
            "stderr must be exactly one line: \(result.stderr.prefix(600).debugDescription)",
            file: file, line: line)
        XCTAssertTrue(
            result.stderr.hasPrefix("kvmrun: "), "stderr: \(result.stderr.debugDescription)",
            file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(
                result.stderr.contains(fragment), "stderr does not mention \"\(fragment)\": \(result.stderr)",
                file: file, line: line)
        }
        assertNoCrashText(result, file: file, line: line)
    }

    func assertNoCrashText(_ result: ProcessResult, file: StaticString = #filePath, line: UInt = #line) {
        for text in ["Fatal error", "Backtrace", "Stack dump", "💣", "Illegal instruction", "Current stack trace"] {
            XCTAssertFalse(
                result.stderr.contains(text), "stderr has \"\(text)\": \(result.stderr.prefix(600))",
                file: file, line: line)
            XCTAssertFalse(
                result.stdout.contains(text), "stdout has \"\(text)\": \(result.stdout)", file: file, line: line)
        }
    }
}

/// A test that cannot set itself up (kvmrun ended before the test could go on).
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
