import Glibc

/// QEMU's `-device pc-testdev` (hw/misc/pc-testdev.c), the ISA device
/// kvm-unit-tests drive to test KVM's emulation and interrupt routing:
///
/// - ports 0xe0-0xe3, "pc-testdev-ioport": a 32-bit register; an access of
///   any size at 0xe0+n reads or writes its bytes n, n+1, ….
/// - ports 0xe4-0xe7, "pc-testdev-flush-page": a 4-byte write of a
///   guest-physical address flushes that page as QEMU does: the page's host
///   mapping is made inaccessible and then read-write again (mprotect), so KVM
///   drops its mapping (MMU notifier) and the guest's next access faults it
///   back in. Nothing else; reads give 0, other sizes are ignored.
/// - ports 0xe8-0xeb, "pc-testdev-ioport-byte": the same register, accessed a
///   byte at a time.
/// - ports 0x2000-0x2017, "pc-testdev-irq-line": a byte v written to
///   0x2000+n sets ISA IRQ line n to v != 0 (KVM_IRQ_LINE on GSI n, what QEMU
///   does with KVM's irqchip); reads give 0.
/// - MMIO 0xff000000-0xff00ffff, "pc-testdev-iomem": a 64 KiB buffer (zeroed
///   at start), read back as written, for emulated instructions on MMIO.
///
/// Accesses are cut up as QEMU's memory core cuts them (an access is split
/// at each region's largest valid size and its natural alignment; a piece a
/// region does not accept reads 0 and writes nothing), so every size and
/// alignment, and an access that runs on into the next region or off the
/// end onto unassigned ports (all ones), gives what QEMU gives.
///
/// Snapshots refuse a machine with this device, naming it: they keep port
/// devices only, and the iomem buffer is MMIO.
public final class PCTestDevice: PortDevice, MMIODevice {
    /// The 32-bit register (0xe0).
    public static let registerPorts: ClosedRange<UInt16> = 0xE0...0xE3
    /// The flush-page port (0xe4): flushes the page at the address written.
    public static let flushPorts: ClosedRange<UInt16> = 0xE4...0xE7
    /// The register, byte-wide (0xe8).
    public static let bytePorts: ClosedRange<UInt16> = 0xE8...0xEB
    /// IRQ ports: a byte v at 0x2000 + n sets ISA IRQ n to v.
    public static let irqPorts: ClosedRange<UInt16> = 0x2000...0x2017
    /// Guest-physical base of the iomem buffer.
    public static let iomemBase: UInt64 = 0xFF00_0000
    /// Bytes in the iomem buffer.
    public static let iomemSize = 0x10000
    /// The iomem buffer's guest-physical range.
    public static var iomem: Range<UInt64> { iomemBase..<(iomemBase + UInt64(iomemSize)) }

    /// The register at 0xe0 (and 0xe8).
    public internal(set) var register: UInt32 = 0
    /// The iomem buffer.
    let buffer: UnsafeMutablePointer<UInt8>
    /// The levels last written to the IRQ ports, bit n for line n.
    public internal(set) var irqLevels: UInt32 = 0
    /// Sets ISA IRQ line n (KVM_IRQ_LINE); nil without an irqchip.
    let setIRQLine: ((UInt32, Bool) -> Void)?
    /// Flushes the page at a guest-physical address.
    let flushPage: ((UInt64) -> Void)?

    /// A test device; `setIRQLine` sets an ISA IRQ line (nil without an irqchip), `flushPage` flushes a guest page.
    public init(setIRQLine: ((UInt32, Bool) -> Void)? = nil, flushPage: ((UInt64) -> Void)? = nil) {
        self.setIRQLine = setIRQLine
        self.flushPage = flushPage
        buffer = .allocate(capacity: PCTestDevice.iomemSize)
        buffer.initialize(repeating: 0, count: PCTestDevice.iomemSize)
    }

    deinit { buffer.deallocate() }

    /// The iomem buffer's bytes.
    public var iomemBytes: [UInt8] { Array(UnsafeBufferPointer(start: buffer, count: PCTestDevice.iomemSize)) }

    /// Attaches the four port ranges and the iomem buffer to `bus`.
    public func attach(to bus: IOBus) throws {
        for ports in [
            PCTestDevice.registerPorts, PCTestDevice.flushPorts, PCTestDevice.bytePorts, PCTestDevice.irqPorts,
        ] {
            try bus.attach(self, ports: ports)
        }
        try bus.attach(self as MMIODevice, range: PCTestDevice.iomem)
    }

    // MARK: Ports

    /// The device's port region that holds `port`, with its largest valid access.
    static func region(_ port: UInt16) -> PortPieces.Region? {
        switch port {
        case registerPorts: .init(base: registerPorts.lowerBound, maxAccess: 4)
        case flushPorts: .init(base: flushPorts.lowerBound, maxAccess: 4)
        case bytePorts: .init(base: bytePorts.lowerBound, maxAccess: 4)
        case irqPorts: .init(base: irqPorts.lowerBound, maxAccess: 1)
        default: nil
        }
    }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        PortPieces.read(port: port, size: size, regions: PCTestDevice.region) { piece in
            switch piece.region?.base {
            case PCTestDevice.registerPorts.lowerBound, PCTestDevice.bytePorts.lowerBound:
                register >> (8 * piece.offset)
            default: 0
            }
        }
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        PortPieces.walk(port: port, size: size, regions: PCTestDevice.region) { piece in
            let bits = piece.bits(of: value)
            switch piece.region?.base {
            case PCTestDevice.registerPorts.lowerBound, PCTestDevice.bytePorts.lowerBound:
                let mask = PortPieces.mask(piece.length) << (8 * piece.offset)
                register = register & ~mask | (bits << (8 * piece.offset)) & mask
            case PCTestDevice.flushPorts.lowerBound:
                if piece.length == 4 { flushPage?(UInt64(bits) & ~0xFFF) }
            case PCTestDevice.irqPorts.lowerBound:
                let line = UInt32(piece.offset)
                if bits != 0 { irqLevels |= 1 << line } else { irqLevels &= ~(1 << line) }
                setIRQLine?(line, bits != 0)
            default:
                break
            }
            return true
        }
        return .proceed
    }

    // MARK: iomem

    /// Bytes past the buffer's end read as QEMU's unassigned memory does (0).
    public func read(address: UInt64, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<min(size, 8) {
            let offset = Int(address &- PCTestDevice.iomemBase) + i
            guard offset < PCTestDevice.iomemSize else { break }
            value |= UInt64(buffer[offset]) << (8 * i)
        }
        return value
    }

    /// `MMIODevice`: a guest write of `value` (`size` bytes) to `address`.
    public func write(address: UInt64, size: Int, value: UInt64) -> DeviceAction {
        for i in 0..<min(size, 8) {
            let offset = Int(address &- PCTestDevice.iomemBase) + i
            guard offset < PCTestDevice.iomemSize else { break }
            buffer[offset] = UInt8(truncatingIfNeeded: value >> (8 * i))
        }
        return .proceed
    }
}

extension GuestMemory {
    /// What QEMU's pc-testdev does to "flush" a guest page: its host mapping is
    /// made inaccessible and then read-write again, so KVM, told by the MMU
    /// notifier, drops its mapping of the page. The bytes stay. Addresses that
    /// are not RAM are ignored.
    public func flushPage(_ guestPhysical: UInt64) {
        let page = guestPhysical & ~(GuestMemory.pageSize - 1)
        guard let host = pointer(page, count: Int(GuestMemory.pageSize)) else { return }
        mprotect(host, Int(GuestMemory.pageSize), PROT_NONE)
        mprotect(host, Int(GuestMemory.pageSize), PROT_READ | PROT_WRITE)
    }
}

extension Machine {
    /// Adds QEMU's pc-testdev: its IRQ ports drive the in-kernel irqchip (a
    /// machine without one ignores them), its flush port flushes guest pages.
    @discardableResult
    public func attachPCTestDevice() throws -> PCTestDevice {
        let vm = self.vm
        let setLine: ((UInt32, Bool) -> Void)? =
            hasIRQChip ? { line, level in try? vm.setIRQLine(line, level: level) } : nil
        let memory = vm.memory
        let device = PCTestDevice(setIRQLine: setLine, flushPage: { memory.flushPage($0) })
        try device.attach(to: bus)
        return device
    }
}
