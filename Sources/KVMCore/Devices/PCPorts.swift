/// The small PC ports test kernels poke, as QEMU's `-M pc` has them:
///
/// - 0x80, the POST/delay port: writes are ignored, reads give 0xff.
/// - 0x92, system control port A: bit 1 (A20 gate) reads back what was written
///   (KVM does not mask A20, so A20 is always on in fact); it starts at 0x02,
///   A20 on, as after a BIOS. Setting bit 0 (from 0) requests a reset: the run
///   stops with `.systemEvent(type: PCPorts.resetEvent, flags: 0)`, what KVM
///   reports for a guest reset (KVM_SYSTEM_EVENT_RESET).
public final class PCPorts: PortDevice {
    /// The POST/delay port.
    public static let postPort: UInt16 = 0x80
    /// System control port A.
    public static let systemControlPort: UInt16 = 0x92
    /// KVM_SYSTEM_EVENT_RESET.
    public static let resetEvent: UInt32 = SystemEvent.reset

    /// Port 0x92 as last written.
    public internal(set) var systemControl: UInt8

    /// The ports, with port 0x92 starting at `systemControl` (A20 on).
    public init(systemControl: UInt8 = 0x02) {
        self.systemControl = systemControl
    }

    /// A20 as port 0x92 says.
    public var a20: Bool { systemControl & 0x02 != 0 }

    /// Attaches 0x80 and 0x92 to `bus`.
    public func attach(to bus: IOBus) throws {
        try bus.attach(self, ports: PCPorts.postPort...PCPorts.postPort)
        try bus.attach(self, ports: PCPorts.systemControlPort...PCPorts.systemControlPort)
    }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        switch port {
        case PCPorts.systemControlPort: UInt32(systemControl)
        default: 0xFFFF_FFFF
        }
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        guard port == PCPorts.systemControlPort else { return .proceed }
        let old = systemControl
        systemControl = UInt8(truncatingIfNeeded: value)
        if systemControl & 1 != 0 && old & 1 == 0 {
            return .stop(.systemEvent(type: PCPorts.resetEvent, flags: 0))
        }
        return .proceed
    }
}

// MARK: - Snapshot

extension PCPorts: SnapshotDevice {
    static let kind = "pc-ports"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { PCPorts.kind }

    /// `SnapshotDevice`: the device's state.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        w.u8(systemControl)
        return w.bytes
    }

    private static func decode(_ bytes: [UInt8]) throws -> UInt8 {
        var r = SnapshotReader(bytes, what: "pc-ports state")
        let value = try r.u8()
        try r.expectEnd()
        return value
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try PCPorts.decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        systemControl = try PCPorts.decode(bytes)
    }
}
