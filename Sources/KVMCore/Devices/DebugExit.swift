/// QEMU's isa-debug-exit (`-device isa-debug-exit,iobase=0xf4,iosize=0x4`):
/// a write of `v` ends the run, and kvmrun exits with `(v << 1) | 1` as QEMU does.
public final class DebugExit: PortDevice {
    /// The ports isa-debug-exit decodes (iobase 0xf4, iosize 4).
    public static let ports: ClosedRange<UInt16> = 0xF4...0xF7

    /// The device.
    public init() {}

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 { 0xFFFF_FFFF }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        .stop(.debugExit(code: value))
    }

    /// The process exit status QEMU gives for `code` (truncated to 8 bits by the OS).
    public static func exitStatus(for code: UInt32) -> Int32 {
        Int32(truncatingIfNeeded: (code << 1) | 1) & 0xFF
    }
}

// MARK: - Snapshot

extension DebugExit: SnapshotDevice {
    static let kind = "isa-debug-exit"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { DebugExit.kind }
    /// `SnapshotDevice`: the device's state.
    public func saveSnapshotState() -> [UInt8] { [] }
    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws { try checkSnapshotState(bytes) }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws {
        guard bytes.isEmpty else {
            throw SnapshotError(.corrupt, "corrupt: isa-debug-exit has no state, the file gives \(bytes.count) bytes")
        }
    }
}
