import Glibc

/// A device on the I/O port bus.
public protocol PortDevice: AnyObject {
    /// The value a guest `in` of `size` bytes (1, 2, 4) reads at `port`.
    func read(port: UInt16, size: Int) -> UInt32
    /// A guest `out`; the device may ask the run loop to stop.
    func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction
}

/// A device on the MMIO bus.
public protocol MMIODevice: AnyObject {
    /// The value a guest read of `size` bytes (1, 2, 4, 8) at `address` gives.
    func read(address: UInt64, size: Int) -> UInt64
    /// A guest write; the device may ask the run loop to stop.
    func write(address: UInt64, size: Int, value: UInt64) -> DeviceAction
}

/// Routes port and MMIO exits to devices. Ports are found through a 64 Ki-entry
/// table (one lookup, no search); unassigned ports and addresses behave as on
/// QEMU: reads give all ones, writes are ignored, and both are counted.
///
/// A bus shared by several vCPU threads serializes device accesses with one
/// mutex; a single vCPU's bus takes no lock.
// @unchecked: devices and counters are reached under `mutex` when shared, else by the one vCPU thread (no lock per exit).
public final class IOBus: @unchecked Sendable {
    /// Device index + 1 for each port; 0 = unassigned.
    private let portTable: UnsafeMutablePointer<UInt8>
    private var portDevices: [PortDevice] = []
    private var mmioDevices: [(range: Range<UInt64>, device: MMIODevice)] = []
    /// [0]: unassigned port accesses, [1]: unassigned MMIO accesses. Raw memory, not
    /// stored properties: a class property updated per exit costs a dynamic
    /// exclusivity check (swift_beginAccess/endAccess) every time.
    private let counters: UnsafeMutablePointer<Int>

    /// Held around each access when several vCPUs share the bus.
    private let mutex: Lock?

    /// Guest accesses to ports no device decodes.
    public var unassignedPortAccesses: Int { counters[0] }
    /// Guest accesses to MMIO no device decodes (not guest RAM either).
    public var unassignedMMIOAccesses: Int { counters[1] }

    /// `shared`: several vCPU threads will dispatch to this bus at once.
    public init(shared: Bool = false) {
        mutex = shared ? Lock() : nil
        portTable = .allocate(capacity: 0x10000)
        portTable.initialize(repeating: 0, count: 0x10000)
        counters = .allocate(capacity: 2)
        counters.initialize(repeating: 0, count: 2)
    }

    deinit {
        portTable.deallocate()
        counters.deallocate()
    }

    /// Attaches `device` to `ports`; refuses ports another device holds.
    public func attach(_ device: PortDevice, ports: ClosedRange<UInt16>) throws {
        if let taken = ports.first(where: { portTable[Int($0)] != 0 }) {
            throw ConfigurationError.deviceConflict("I/O port \(hex(taken)) is already attached to a device")
        }
        let index =
            portDevices.firstIndex { $0 === device }
            ?? {
                portDevices.append(device)
                return portDevices.count - 1
            }()
        guard index < 255 else { throw ConfigurationError.deviceConflict("too many port devices") }
        for port in ports { portTable[Int(port)] = UInt8(index + 1) }
        attachedPorts.append((device, ports))
    }

    /// Every port device with the ports it was attached to, in attach order.
    public private(set) var attachedPorts: [(device: PortDevice, ports: ClosedRange<UInt16>)] = []

    /// Every MMIO device with its range, in attach order.
    public var attachedMMIO: [(device: MMIODevice, range: Range<UInt64>)] {
        mmioDevices.map { ($0.device, $0.range) }
    }

    /// Attaches `device` to the guest-physical `range`; refuses overlaps.
    public func attach(_ device: MMIODevice, range: Range<UInt64>) throws {
        if let other = mmioDevices.first(where: { $0.range.overlaps(range) }) {
            throw ConfigurationError.deviceConflict(
                "MMIO range \(hex(range.lowerBound))–\(hex(range.upperBound)) overlaps \(hex(other.range.lowerBound))–\(hex(other.range.upperBound))"
            )
        }
        mmioDevices.append((range, device))
    }

    /// Detaches `device` from `ports` (those of them it holds), e.g. a PCI BAR
    /// the guest moved or turned off.
    public func detach(_ device: PortDevice, ports: ClosedRange<UInt16>) {
        guard let index = portDevices.firstIndex(where: { $0 === device }) else { return }
        for port in ports where portTable[Int(port)] == UInt8(index + 1) { portTable[Int(port)] = 0 }
        attachedPorts.removeAll { $0.device === device && $0.ports == ports }
    }

    /// Detaches `device` from the MMIO `range` it was attached to.
    public func detach(_ device: MMIODevice, range: Range<UInt64>) {
        mmioDevices.removeAll { $0.device === device && $0.range == range }
    }

    /// Handles a port exit, string I/O included (`count` accesses of `size` bytes).
    @inline(__always)
    public func dispatch(_ io: PortIO) -> DeviceAction {
        mutex?.lock()
        defer { mutex?.unlock() }
        let slot = Int(portTable[Int(io.port)])
        guard slot != 0 else {
            counters[0] &+= io.count
            if io.direction == .in {
                io.data.initializeMemory(as: UInt8.self, repeating: 0xFF, count: io.size * io.count)
            }
            return .proceed
        }
        let device = portDevices[slot - 1]
        var p = io.data
        for _ in 0..<io.count {
            switch io.direction {
            case .out:
                if case .stop(let reason) = device.write(
                    port: io.port, size: io.size, value: loadValue(p, size: io.size))
                {
                    return .stop(reason)
                }
            case .in:
                storeValue(device.read(port: io.port, size: io.size), p, size: io.size)
            }
            p += io.size
        }
        return .proceed
    }

    /// Handles an MMIO exit.
    public func dispatch(_ access: MMIOAccess) -> DeviceAction {
        mutex?.lock()
        defer { mutex?.unlock() }
        for (range, device) in mmioDevices where range.contains(access.address) {
            if access.isWrite {
                return device.write(address: access.address, size: access.size, value: access.value)
            }
            var value = device.read(address: access.address, size: access.size).littleEndian
            withUnsafeBytes(of: &value) {
                access.data.copyMemory(from: $0.baseAddress!, byteCount: min(access.size, 8))
            }
            return .proceed
        }
        counters[1] &+= 1
        if !access.isWrite { access.data.initializeMemory(as: UInt8.self, repeating: 0xFF, count: min(access.size, 8)) }
        return .proceed
    }
}
