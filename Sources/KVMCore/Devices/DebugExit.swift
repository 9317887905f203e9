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
