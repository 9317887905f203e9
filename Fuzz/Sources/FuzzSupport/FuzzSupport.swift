import Glibc
import KVMCore

/// Shared pieces of the fuzz targets: a property check that crashes the way
/// libFuzzer records (abort, after a line naming the property), guest memory to
/// load into, and a reader that splits one input into several values.

/// Fails the run when `condition` is false: libFuzzer saves the input as a crash.
@inline(__always)
public func fuzzCheck(
    _ condition: Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    guard !condition else { return }
    let text = "fuzz property violated at \(file):\(line): \(message())\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    abort()
}

/// An error a parser may throw on bad input: it must be one of the library's
/// typed errors with a message, never anything else.
public func fuzzExpectedError(_ error: Error, _ types: [Error.Type], file: StaticString = #fileID, line: UInt = #line) {
    let ok = types.contains { ObjectIdentifier($0) == ObjectIdentifier(type(of: error)) }
    fuzzCheck(ok, "unexpected error type \(type(of: error)): \(error)", file: file, line: line)
    fuzzCheck(!"\(error)".isEmpty, "error with an empty message: \(type(of: error))", file: file, line: line)
}

/// Guest RAM from a real (never run) KVM VM at guest-physical 0, made once per
/// process; nil without /dev/kvm, when the targets only parse.
public enum FuzzMemory {
    nonisolated(unsafe) private static var vm: VirtualMachine?
    nonisolated(unsafe) private static var made = false

    public static func shared(size: UInt64 = 8 << 20) -> GuestMemory? {
        if !made {
            made = true
            do {
                let kvm = try KVM()
                let machine = try kvm.createVM()
                try machine.addMemory(at: 0, size: size)
                vm = machine
            } catch {
                let text = "fuzz: no guest memory (\(error)); loading is not fuzzed, parsing is\n"
                _ = text.withCString { write(2, $0, strlen($0)) }
            }
        }
        return vm?.memory
    }
}

/// Reads values off the front of a fuzz input; past its end it gives zeros and
/// empty arrays, so every input is usable.
public struct FuzzReader {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    }

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset >= bytes.count }
    public var rest: [UInt8] { offset < bytes.count ? Array(bytes[offset...]) : [] }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }

    /// Up to `count` bytes.
    public mutating func take(_ count: Int) -> [UInt8] {
        let n = max(0, min(count, bytes.count - offset))
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
}

/// Writes `text` on stderr (libFuzzer's output stream).
public func fuzzLog(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
