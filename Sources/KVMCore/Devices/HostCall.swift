/// The guest → host protocol port (Docs/PROTOCOL.md), as the KVM selftests' ucall:
/// the guest writes the guest-physical address of a hostcall block to port 0x1000.
public final class HostCall: PortDevice {
    /// The port the guest writes a hostcall block's address to.
    public static let port: UInt16 = 0x1000
    /// The block's first word, "HSCL".
    public static let magic: UInt32 = 0x4C43_5348 // "HSCL"
    /// Facts kept; past this the oldest half is dropped.
    public static let factLimit = 65_536

    /// What a hostcall block asks (Docs/PROTOCOL.md).
    public enum Command: UInt32, Sendable {
        /// HC_REPORT: a named value the guest measured.
        case report = 1
        /// HC_DONE: the guest finished with a status.
        case done = 2
        /// HC_FAIL: a guest assertion failed (message, line, values).
        case fail = 3
        /// HC_SYNC: a stage reached; the host may check and answer.
        case sync = 4
        /// HC_DUMP_NESTED: dump the vCPU's nested state now.
        case dumpNested = 5
        /// HC_SNAPSHOT: take a snapshot now.
        case snapshot = 6
    }

    /// One `HC_REPORT`: a named value the guest measured.
    public struct Fact: Equatable, Sendable {
        /// The fact's name.
        public let key: String
        /// The value reported.
        public let value: UInt64
        /// A fact from its name and value.
        public init(key: String, value: UInt64) {
            self.key = key
            self.value = value
        }
    }

    private let memory: GuestMemory
    /// Facts in the order reported.
    public internal(set) var facts: [Fact] = []

    /// A hostcall port that reads blocks from `memory`.
    public init(memory: GuestMemory) {
        self.memory = memory
    }

    /// The last value reported under `key`.
    public func fact(_ key: String) -> UInt64? {
        facts.last { $0.key == key }?.value
    }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 { 0xFFFF_FFFF }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        guard size == 4 else {
            return .stop(.protocolError("hostcall port written with a \(size)-byte access; use a 32-bit out"))
        }
        do {
            return try handle(block: UInt64(value))
        } catch {
            return .stop(.protocolError("hostcall block at \(hex(value)): \(error)"))
        }
    }

    /// The file a failure names after its message's NUL (ESC "file=" PATH), or nil.
    private func failureFile(after address: UInt64, message: String) -> String? {
        let count = UInt64(message.utf8.count)
        guard count < 255, let marker = try? memory.cString(at: address + count + 1, maxLength: 6),
            marker == "\u{1B}file="
        else { return nil }
        guard let path = try? memory.cString(at: address + count + 7, maxLength: 1024), !path.isEmpty else {
            return nil
        }
        return path
    }

    private func handle(block address: UInt64) throws -> DeviceAction {
        let magic: UInt32 = try memory.read(at: address)
        guard magic == HostCall.magic else {
            return .stop(
                .protocolError(
                    "hostcall block at \(hex(address)) has magic \(hex(magic)), expected \(hex(HostCall.magic))"))
        }
        let raw: UInt32 = try memory.read(at: address + 4)
        func arg(_ i: UInt64) throws -> UInt64 { try memory.read(at: address + 8 + 8 * i) }
        guard let command = Command(rawValue: raw) else {
            return .stop(.protocolError("unknown hostcall command \(raw)"))
        }
        switch command {
        case .report:
            // Bounded: a guest reporting in a loop must not grow the VMM without end.
            if facts.count >= HostCall.factLimit { facts.removeFirst(HostCall.factLimit / 2) }
            facts.append(Fact(key: try memory.cString(at: try arg(0), maxLength: 63), value: try arg(1)))
            return .proceed
        case .done:
            return .stop(.done(status: try arg(0)))
        case .fail:
            let messageAddress = try arg(0)
            let message = try memory.cString(at: messageAddress, maxLength: 255)
            return .stop(
                .failed(
                    GuestFailure(
                        message: message, line: try arg(1), values: (try arg(2), try arg(3)),
                        file: failureFile(after: messageAddress, message: message))))
        case .sync:
            return .stop(.sync(stage: try arg(0)))
        case .dumpNested:
            return .stop(.nestedDumpRequested)
        case .snapshot:
            return .stop(.snapshotRequested(tag: try arg(0)))
        }
    }
}

// MARK: - Snapshot

extension HostCall: SnapshotDevice {
    static let kind = "hostcall"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { HostCall.kind }

    /// The facts reported so far, so a restored machine's `facts` continue them.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        w.u64(UInt64(facts.count))
        for f in facts {
            w.string(f.key)
            w.u64(f.value)
        }
        return w.bytes
    }

    private static func decode(_ bytes: [UInt8]) throws -> [Fact] {
        var r = SnapshotReader(bytes, what: "hostcall state")
        var restored: [Fact] = []
        for _ in 0..<(try r.count(unit: 16)) { restored.append(Fact(key: try r.string(), value: try r.u64())) }
        try r.expectEnd()
        return restored
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try HostCall.decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        facts = try HostCall.decode(bytes)
    }
}
