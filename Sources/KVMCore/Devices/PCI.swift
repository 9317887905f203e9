/// One PCI function's 256-byte configuration space, kept as QEMU's PCIDevice
/// keeps it: the bytes, and a write mask (the cache line size, interrupt line,
/// the command register's I/O, memory, bus master, SERR and INTx-disable bits,
/// the BARs' address bits, and all of 0x40-0xff are writable; the rest is
/// read-only).
public final class PCIFunction {
    /// A base address register the function decodes.
    public struct BAR: Sendable {
        /// Which BAR (0–5).
        public let index: Int
        /// Bytes it decodes (a power of two).
        public let size: UInt32
        /// An I/O BAR; otherwise memory.
        public let isIO: Bool
    }

    /// The function's name in messages ("i440fx", "pci-testdev").
    public let name: String
    /// Device << 3 | function, on bus 0.
    public let devfn: UInt8
    /// The BARs it decodes.
    public let bars: [BAR]
    /// The configuration space as the guest sees it.
    public internal(set) var config = [UInt8](repeating: 0, count: 256)
    private var wmask = [UInt8](repeating: 0, count: 256)
    /// Called after a write to the command register, a BAR or the ROM BAR.
    var mappingsChanged: (() -> Void)?

    /// `initial`: the non-zero dwords of the space; `bars`: their sizes.
    public init(name: String, devfn: UInt8, initial: [(offset: Int, value: UInt32)], bars: [BAR] = []) {
        self.name = name
        self.devfn = devfn
        self.bars = bars
        for (offset, value) in initial {
            for i in 0..<4 { config[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        wmask[0x0C] = 0xFF
        wmask[0x3C] = 0xFF
        wmask[0x04] = 0x07 // I/O, memory, bus master
        wmask[0x05] = 0x05 // SERR, INTx disable
        for i in 0x40..<0x100 { wmask[i] = 0xFF }
        for bar in bars {
            let mask = ~(bar.size - 1)
            for i in 0..<4 { wmask[0x10 + 4 * bar.index + i] = UInt8(truncatingIfNeeded: mask >> (8 * i)) }
        }
    }

    /// `length` bytes (1 to 4) from `offset`; past the end reads 0.
    public func read(offset: Int, length: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<length where offset + i < 256 { value |= UInt32(config[offset + i]) << (8 * i) }
        return value
    }

    /// A guest's write of `length` bytes at `offset`, through the write mask.
    public func write(offset: Int, length: Int, value: UInt32) {
        let n = min(length, 256 - offset)
        guard n > 0 else { return }
        for i in 0..<n {
            let m = wmask[offset + i]
            config[offset + i] = config[offset + i] & ~m | UInt8(truncatingIfNeeded: value >> (8 * i)) & m
        }
        let range = offset..<(offset + n)
        if range.overlaps(0x10..<0x28) || range.overlaps(0x30..<0x34) || range.contains(0x04) {
            mappingsChanged?()
        }
    }

    /// The command register (offset 4).
    public var command: UInt16 { UInt16(config[4]) | UInt16(config[5]) << 8 }

    /// Where BAR `index` decodes now, or nil (decoding off, address 0, or an
    /// address range that wraps or, for I/O, leaves the 64 KiB port space): QEMU's
    /// pci_bar_address.
    public func barAddress(_ index: Int) -> UInt64? {
        guard let bar = bars.first(where: { $0.index == index }) else { return nil }
        guard command & (bar.isIO ? 1 : 2) != 0 else { return nil }
        let address = UInt64(read(offset: 0x10 + 4 * index, length: 4) & ~(bar.size - 1))
        let last = address + UInt64(bar.size) - 1
        guard address != 0, last < (bar.isIO ? 0x10000 : 0xFFFF_FFFF) else { return nil }
        return address
    }
}

/// Configuration mechanism 1 of QEMU's i440FX host bridge, ports 0xcf8-0xcff,
/// with PIIX3's reset control register at 0xcf9:
///
/// - 0xcf8: the address register; only a 4-byte write at 0xcf8 sets it; a
///   read of any size at 0xcf8, 0xcfa or 0xcfb gives its low bytes (QEMU's
///   pci_host_config_read ignores the offset).
/// - 0xcf9: reset control; a write with bit 2 set resets the machine (the run
///   stops with KVM's reset event, as for port 0x92), else bit 1 is kept.
/// - 0xcfc-0xcff: the data port; with bit 31 of the address clear, reads give
///   all ones and writes go nowhere; else the access goes to bus (bits 23-16),
///   device and function (15-8), register (7-2, plus the data port's offset).
///   Only bus 0 has functions; a missing one reads all ones.
///
/// Accesses are cut up as QEMU's memory core cuts them (see PCTestDevice).
public final class PCIHost: PortDevice {
    /// CONFIG_ADDRESS (0xcf8), the reset control register (0xcf9) and CONFIG_DATA (0xcfc–0xcff).
    public static let ports: ClosedRange<UInt16> = 0xCF8...0xCFF
    /// CONFIG_ADDRESS as last written.
    public internal(set) var configAddress: UInt32 = 0
    /// The reset control register (0xcf9) as last written.
    public internal(set) var resetControl: UInt8 = 0
    /// The functions on bus 0 by devfn.
    public private(set) var functions: [UInt8: PCIFunction] = [:]
    /// The device models behind functions (pci-testdev), kept alive with the bus.
    private var models: [AnyObject] = []

    /// A host bridge with no functions (`Machine.attachPCI` adds QEMU pc's).
    public init() {}

    /// Puts `model`'s `function` on bus 0 and keeps `model` alive with the host.
    func add(_ function: PCIFunction, model: AnyObject) throws {
        try add(function)
        models.append(model)
    }

    /// Puts `function` on bus 0; refuses a taken slot.
    public func add(_ function: PCIFunction) throws {
        guard functions[function.devfn] == nil else {
            throw ConfigurationError.deviceConflict(
                "PCI slot \(function.devfn >> 3).\(function.devfn & 7) is taken by \(functions[function.devfn]!.name)")
        }
        functions[function.devfn] = function
    }

    /// The first free device number (function 0) on bus 0.
    public var freeSlot: UInt8? { (0..<32).map { UInt8($0) << 3 }.first { functions[$0] == nil } }

    /// The address register (0xcf8; reads at 0xcfa and 0xcfb too), reset
    /// control (0xcf9) and the data port (0xcfc), each taking up to 4 bytes.
    static func region(_ port: UInt16) -> PortPieces.Region? {
        switch port {
        case 0xCF8, 0xCFA, 0xCFB: .init(base: 0xCF8, maxAccess: 4)
        case 0xCF9: .init(base: 0xCF9, maxAccess: 4)
        case 0xCFC...0xCFF: .init(base: 0xCFC, maxAccess: 4)
        default: nil
        }
    }

    private var configEnabled: Bool { configAddress & 0x8000_0000 != 0 }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        PortPieces.read(port: port, size: size, regions: PCIHost.region) { piece in
            switch piece.region?.base {
            case 0xCF8: configAddress
            case 0xCF9: (0..<piece.length).reduce(0) { $0 | UInt32(resetControl) << (8 * $1) }
            default: configEnabled ? dataRead(configAddress | UInt32(piece.offset), length: piece.length) : ~0
            }
        }
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        var action = DeviceAction.proceed
        PortPieces.walk(port: port, size: size, regions: PCIHost.region) { piece in
            switch piece.region?.base {
            case 0xCF8:
                if piece.offset == 0 && piece.length == 4 { configAddress = value }
            case 0xCF9:
                for i in 0..<piece.length {
                    let byte = UInt8(truncatingIfNeeded: value >> (8 * (piece.start + i)))
                    if byte & 4 != 0 {
                        action = .stop(.systemEvent(type: PCPorts.resetEvent, flags: 0))
                        return false
                    }
                    resetControl = byte & 2
                }
            case 0xCFC:
                if configEnabled {
                    dataWrite(configAddress | UInt32(piece.offset), length: piece.length, value: piece.bits(of: value))
                }
            default:
                break
            }
            return true
        }
        return action
    }

    private func function(at address: UInt32) -> PCIFunction? {
        guard (address >> 16) & 0xFF == 0 else { return nil }
        return functions[UInt8(truncatingIfNeeded: address >> 8)]
    }

    func dataRead(_ address: UInt32, length: Int) -> UInt32 {
        guard let f = function(at: address) else { return PortPieces.mask(length) }
        return f.read(offset: Int(address & 0xFF), length: length)
    }

    func dataWrite(_ address: UInt32, length: Int, value: UInt32) {
        function(at: address)?.write(offset: Int(address & 0xFF), length: length, value: value)
    }
}

extension PCIHost {
    /// Bus 0 of QEMU 7.2's `-M pc -nodefaults` as a kernel finds it after qboot:
    /// the i440FX host bridge (00.0, 8086:1237), PIIX3's ISA bridge (01.0,
    /// 8086:7000: PIRQ routing 10, 10, 11, 11), IDE (01.1, 8086:7010, BAR4 of 16
    /// ports, unassigned) and ACPI power management (01.3, 8086:7113: PM base
    /// 0x600, SMBus 0x700, IRQ 10), every non-zero byte of their configuration
    /// as QEMU's oracle shows it. qboot assigns no BARs, so neither does kvmrun.
    /// These functions are there to be found: their I/O (IDE bus mastering, the
    /// ACPI PM registers, PAM and SMRAM) is not modelled.
    public static func qemuPCBus0() -> [PCIFunction] {
        [
            PCIFunction(
                name: "i440FX", devfn: 0x00,
                initial: [
                    (0x00, 0x1237_8086), (0x08, 0x0600_0002), (0x2C, 0x1100_1AF4), (0x54, 0x1000_0000),
                    (0x58, 0x3333_3000), (0x5C, 0x3333_3333), (0x70, 0x0002_0000),
                ]),
            PCIFunction(
                name: "PIIX3", devfn: 0x08,
                initial: [
                    (0x00, 0x7000_8086), (0x04, 0x0200_0000), (0x08, 0x0601_0000), (0x0C, 0x0080_0000),
                    (0x2C, 0x1100_1AF4), (0x4C, 0x0003_004D), (0x60, 0x0B0B_0A0A), (0x68, 0x0000_0200),
                    (0x70, 0x0000_0080), (0x74, 0x0C0C_0000), (0x78, 0x0000_0002), (0xA0, 0x0000_0008),
                    (0xA8, 0x0000_000F),
                ]),
            PCIFunction(
                name: "PIIX3 IDE", devfn: 0x09,
                initial: [
                    (0x00, 0x7010_8086), (0x04, 0x0280_0000), (0x08, 0x0101_8000), (0x20, 0x0000_0001),
                    (0x2C, 0x1100_1AF4), (0x40, 0x8000_8000),
                ],
                bars: [.init(index: 4, size: 16, isIO: true)]),
            PCIFunction(
                name: "PIIX4 PM", devfn: 0x0B,
                initial: [
                    (0x00, 0x7113_8086), (0x04, 0x0280_0000), (0x08, 0x0680_0003), (0x2C, 0x1100_1AF4),
                    (0x3C, 0x0000_010A), (0x40, 0x0000_0601), (0x58, 0x0200_0000), (0x5C, 0x1000_0000),
                    (0x60, 0x6000_0000), (0x64, 0x0800_0000), (0x80, 0x0000_0001), (0x90, 0x0000_0701),
                    (0xD0, 0x0009_0000),
                ]),
        ]
    }
}

extension Machine {
    /// The PCI host bridge, if attached.
    public var pciHost: PCIHost? {
        bus.attachedPorts.lazy.compactMap { $0.device as? PCIHost }.first
    }

    /// Adds QEMU pc's PCI host bridge with bus 0's chipset functions (`PCIHost.qemuPCBus0()`).
    @discardableResult
    public func attachPCIHost() throws -> PCIHost {
        if let pciHost { return pciHost }
        let host = PCIHost()
        for function in PCIHost.qemuPCBus0() { try host.add(function) }
        try bus.attach(host, ports: PCIHost.ports)
        return host
    }

    /// Adds QEMU's pci-testdev in the first free slot of bus 0 (attaching the
    /// host bridge first when missing).
    @discardableResult
    public func attachPCITestDevice() throws -> PCITestDevice {
        let host = try attachPCIHost()
        guard let slot = host.freeSlot else { throw ConfigurationError.deviceConflict("PCI bus 0 has no free slot") }
        let device = PCITestDevice(devfn: slot, vm: vm, bus: bus)
        try host.add(device.function, model: device)
        return device
    }
}

// MARK: - Snapshots

extension PCIHost: SnapshotDevice {
    static let kind = "pci-host"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { PCIHost.kind }

    /// The address and reset control registers and each function's configuration
    /// space (by devfn). A device behind a function keeps no other state here:
    /// a mapped pci-testdev BAR is on the bus itself, and snapshots refuse it.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        w.u32(configAddress)
        w.u8(resetControl)
        let sorted = functions.values.sorted { $0.devfn < $1.devfn }
        w.u64(UInt64(sorted.count))
        for f in sorted {
            w.u8(f.devfn)
            w.blob(f.config)
        }
        return w.bytes
    }

    private func decode(_ bytes: [UInt8]) throws -> (address: UInt32, reset: UInt8, configs: [UInt8: [UInt8]]) {
        var r = SnapshotReader(bytes, what: "pci-host state")
        let address = try r.u32()
        let reset = try r.u8()
        var configs: [UInt8: [UInt8]] = [:]
        for _ in 0..<(try r.count(unit: 9)) {
            let devfn = try r.u8()
            let config = try r.blob()
            guard config.count == 256 else {
                throw SnapshotError(.corrupt, "corrupt: PCI function \(devfn) has \(config.count) configuration bytes")
            }
            configs[devfn] = config
        }
        try r.expectEnd()
        guard Set(configs.keys) == Set(functions.keys) else {
            throw SnapshotError(.incompatible, "the snapshot's PCI bus 0 has other functions than this machine's")
        }
        return (address, reset, configs)
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        let d = try decode(bytes)
        configAddress = d.address
        resetControl = d.reset
        for (devfn, config) in d.configs { functions[devfn]?.restore(config) }
    }
}

extension PCIFunction {
    func restore(_ bytes: [UInt8]) {
        config = bytes
        mappingsChanged?()
    }
}
