import Foundation
import Guests
import KVMCore
import Synchronization
import XCTest

/// A value a `@Sendable` closure (a trace, another thread) changes and the test
/// reads afterwards.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func update(_ body: (inout Value) -> Void) { value.withLock { body(&$0) } }
    var current: Value { value.withLock { $0 } }
}

// Shared helpers for the KVMCore tests: skipping when /dev/kvm is unusable,
// running built-in guests, and reading process resources.

/// Opens /dev/kvm, or skips the calling test with the library's own error text
/// (e.g. "open /dev/kvm: ENOENT — /dev/kvm does not exist: is the kvm module
/// loaded…"), so tests that need KVM are reported as skipped with the reason
/// while the pure unit tests still run.
@discardableResult
func requireKVM() throws -> KVM {
    do {
        return try KVM()
    } catch let error as KVMError {
        throw XCTSkip("KVM unavailable: \(error)")
    }
}

/// True when the host's KVM is the paravirtual kvm_pvm module, which only
/// supports paging in long mode (32-bit paged guests triple-fault at once).
var hostIsKVMPVM: Bool { FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") }

/// Skips the calling test on kvm_pvm hosts, which cannot run 32-bit paging.
func requirePagingOutsideLongMode() throws {
    if hostIsKVMPVM {
        throw XCTSkip("host KVM is kvm_pvm, which supports paging only in long mode")
    }
}

extension GuestImage {
    /// A built-in guest by name, failing the test (not crashing) when it is missing.
    static func require(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> GuestImage {
        guard let image = GuestImage.all.first(where: { $0.name == name }) else {
            XCTFail(
                "no built-in guest named \(name); GuestImage.all has \(GuestImage.all.map(\.name))",
                file: file, line: line)
            throw TestSetupError("no built-in guest \(name)")
        }
        return image
    }
}

/// What one run of a guest left behind.
struct GuestRun {
    let stop: StopReason
    let machine: Machine
    let registers: Registers
    var serial: String { machine.serial.text }
    var facts: [HostCall.Fact] { machine.hostcall.facts }
    func fact(_ key: String) -> UInt64? { machine.hostcall.fact(key) }
}

/// Boots `image` in a fresh `Machine(serial: .buffer)` and runs it once, until
/// the first stop the caller must see (or `timeout`). Skips when KVM is unusable.
func runGuest(
    _ image: BootImage, memorySize: UInt64 = 64 << 20,
    timeout: Duration = .seconds(20)
) throws -> GuestRun {
    let kvm = try requireKVM()
    let machine = try Machine(memorySize: memorySize, serial: .buffer, kvm: kvm)
    try machine.load(image)
    let stop = try machine.run(timeout: timeout)
    return GuestRun(stop: stop, machine: machine, registers: try machine.vcpu.registers())
}

/// Runs a built-in guest by name (see `runGuest(_:)`).
func runGuest(
    named name: String, memorySize: UInt64 = 64 << 20,
    timeout: Duration = .seconds(20)
) throws -> GuestRun {
    try runGuest(try GuestImage.require(name).bootImage(), memorySize: memorySize, timeout: timeout)
}

/// A readable description of a stop reason for failure messages.
func describe(_ stop: StopReason) -> String {
    switch stop {
    case .failed(let failure): return "failed(\(failure))"
    case .shutdown(let regs, _): return "shutdown(rip=\(hex(regs.rip)))"
    case .unhandled(let exit): return "unhandled(\(exit.name))"
    default: return "\(stop)"
    }
}

/// Number of open file descriptors of this process (entries in /proc/self/fd,
/// less the one the listing itself uses).
func openFileDescriptorCount() throws -> Int {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
}

/// The process's virtual size in KiB (VmSize in /proc/self/status).
func virtualMemoryKiB() throws -> UInt64 {
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    for line in status.split(separator: "\n") where line.hasPrefix("VmSize:") {
        let digits = line.dropFirst("VmSize:".count).filter(\.isNumber)
        if let value = UInt64(String(digits)) { return value }
    }
    throw TestSetupError("no VmSize in /proc/self/status")
}

/// Asserts that `body` throws an error of type `E` whose description contains
/// every string in `fragments`; returns the error for further checks.
@discardableResult
func assertThrows<E: Error, R>(
    _ errorType: E.Type, containing fragments: [String] = [],
    file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> R
) -> E? {
    do {
        let value = try body()
        XCTFail("expected \(E.self), got a result: \(value)", file: file, line: line)
        return nil
    } catch let error as E {
        let text = "\(error)"
        for fragment in fragments where !text.contains(fragment) {
            XCTFail("\(E.self) \"\(text)\" does not mention \"\(fragment)\"", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("expected \(E.self), got \(type(of: error)): \(error)", file: file, line: line)
        return nil
    }
}

/// A small deterministic generator (SplitMix64) for the mutation tests: the
/// same inputs every run, so a failure can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var i = 0
        while i < n {
            var v = next()
            for _ in 0..<8 where i < n {
                out[i] = UInt8(truncatingIfNeeded: v)
                v >>= 8
                i += 1
            }
        }
        return out
    }
}

/// A test that cannot set itself up (a missing guest, an unreadable /proc file).
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A 128 MiB PC (QEMU -m 128, Intel vCPU) as SeaBIOS reports it: what the
/// Linux and multiboot loaders hand a kernel.
let seaBIOSMap128M: [E820Entry] = [
    E820Entry(address: 0, length: 0x9_FC00, type: .ram),
    E820Entry(address: 0x9_FC00, length: 0x400, type: .reserved),
    E820Entry(address: 0xF_0000, length: 0x1_0000, type: .reserved),
    E820Entry(address: 0x10_0000, length: 0x7EE_0000, type: .ram),
    E820Entry(address: 0x7FE_0000, length: 0x2_0000, type: .reserved),
    E820Entry(address: 0xFEFF_C000, length: 0x4000, type: .reserved),
    E820Entry(address: 0xFFFC_0000, length: 0x4_0000, type: .reserved),
]
