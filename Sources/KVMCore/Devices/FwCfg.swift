/// The selectors of QEMU's fw_cfg items (QEMU's `include/standard-headers/linux/qemu_fw_cfg.h`).
public enum FwCfgKey {
    /// FW_CFG_SIGNATURE: "QEMU" (0x00).
    public static let signature: UInt16 = 0x00
    /// FW_CFG_ID: the interfaces offered (bit 0 ports, bit 1 DMA) (0x01).
    public static let id: UInt16 = 0x01
    /// FW_CFG_UUID (0x02).
    public static let uuid: UInt16 = 0x02
    /// FW_CFG_RAM_SIZE (0x03).
    public static let ramSize: UInt16 = 0x03
    /// FW_CFG_NOGRAPHIC (0x04).
    public static let noGraphic: UInt16 = 0x04
    /// FW_CFG_NB_CPUS: the vCPUs at boot (0x05).
    public static let nbCPUs: UInt16 = 0x05
    /// FW_CFG_MACHINE_ID (0x06).
    public static let machineID: UInt16 = 0x06
    /// FW_CFG_KERNEL_ADDR (0x07).
    public static let kernelAddress: UInt16 = 0x07
    /// FW_CFG_KERNEL_SIZE (0x08).
    public static let kernelSize: UInt16 = 0x08
    /// FW_CFG_KERNEL_CMDLINE (0x09).
    public static let kernelCommandLine: UInt16 = 0x09
    /// FW_CFG_INITRD_ADDR (0x0a).
    public static let initrdAddress: UInt16 = 0x0A
    /// FW_CFG_INITRD_SIZE (0x0b).
    public static let initrdSize: UInt16 = 0x0B
    /// FW_CFG_BOOT_DEVICE (0x0c).
    public static let bootDevice: UInt16 = 0x0C
    /// FW_CFG_NUMA (0x0d).
    public static let numa: UInt16 = 0x0D
    /// FW_CFG_BOOT_MENU (0x0e).
    public static let bootMenu: UInt16 = 0x0E
    /// FW_CFG_MAX_CPUS (0x0f).
    public static let maxCPUs: UInt16 = 0x0F
    /// FW_CFG_KERNEL_ENTRY (0x10).
    public static let kernelEntry: UInt16 = 0x10
    /// FW_CFG_KERNEL_DATA (0x11).
    public static let kernelData: UInt16 = 0x11
    /// FW_CFG_INITRD_DATA (0x12).
    public static let initrdData: UInt16 = 0x12
    /// FW_CFG_CMDLINE_ADDR (0x13).
    public static let commandLineAddress: UInt16 = 0x13
    /// FW_CFG_CMDLINE_SIZE (0x14).
    public static let commandLineSize: UInt16 = 0x14
    /// FW_CFG_CMDLINE_DATA (0x15).
    public static let commandLineData: UInt16 = 0x15
    /// FW_CFG_SETUP_ADDR (0x16).
    public static let setupAddress: UInt16 = 0x16
    /// FW_CFG_SETUP_SIZE (0x17).
    public static let setupSize: UInt16 = 0x17
    /// FW_CFG_SETUP_DATA (0x18).
    public static let setupData: UInt16 = 0x18
    /// FW_CFG_FILE_DIR: the directory of named files (0x19).
    public static let fileDirectory: UInt16 = 0x19
    /// The first selector given to a named file.
    public static let fileFirst: UInt16 = 0x20
    /// x86 (FW_CFG_ARCH_LOCAL | n).
    public static let acpiTables: UInt16 = 0x8000
    /// FW_CFG_SMBIOS_ENTRIES (0x8001).
    public static let smbiosEntries: UInt16 = 0x8001
    /// FW_CFG_IRQ0_OVERRIDE (0x8002).
    public static let irq0Override: UInt16 = 0x8002
    /// FW_CFG_E820_TABLE (0x8003).
    public static let e820Table: UInt16 = 0x8003
    /// FW_CFG_HPET (0x8004).
    public static let hpet: UInt16 = 0x8004
}

/// What fw_cfg offers: numbered items and named files (the directory, item
/// 0x19, is built from the files). Values are the bytes a guest reads.
public struct FwCfgItems: Equatable, Sendable {
    /// Numbered items and their bytes.
    public private(set) var items: [UInt16: [UInt8]] = [:]
    /// Named files in the order they get selectors (0x20, 0x21, ...): sorted by
    /// name, as QEMU sorts them.
    public private(set) var files: [File] = []

    /// A named file (`etc/e820`, …).
    public struct File: Equatable, Sendable {
        /// The name, at most 55 bytes.
        public var name: String
        /// The contents.
        public var bytes: [UInt8]
    }

    /// No items.
    public init() {}

    /// Item `key`'s bytes (nil: never set, reads give zeros).
    public subscript(key: UInt16) -> [UInt8]? {
        get { items[key] }
        set { items[key] = newValue }
    }

    /// Sets item `key` to a little-endian 16-bit value.
    public mutating func set(_ key: UInt16, u16 value: UInt16) { items[key] = littleEndianBytes(value) }
    /// Sets item `key` to a little-endian 32-bit value.
    public mutating func set(_ key: UInt16, u32 value: UInt32) { items[key] = littleEndianBytes(value) }
    /// Sets item `key` to a little-endian 64-bit value.
    public mutating func set(_ key: UInt16, u64 value: UInt64) { items[key] = littleEndianBytes(value) }

    /// Adds (or replaces) the file `name` (at most 55 bytes of name).
    public mutating func addFile(_ name: String, _ bytes: [UInt8]) {
        files.removeAll { $0.name == name }
        files.append(File(name: name, bytes: bytes))
        files.sort { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
    }

    /// The file's selector, if there is such a file.
    public func selector(ofFile name: String) -> UInt16? {
        files.firstIndex { $0.name == name }.map { FwCfgKey.fileFirst + UInt16($0) }
    }

    /// Items and files of `other` replace those of the same key or name.
    public mutating func merge(_ other: FwCfgItems) {
        for (key, value) in other.items { items[key] = value }
        for file in other.files { addFile(file.name, file.bytes) }
    }

    /// The directory (item 0x19): big-endian count, then per file a big-endian
    /// size, selector and reserved half-word and a 56-byte NUL-padded name.
    public var directory: [UInt8] {
        var out = bigEndianBytes(UInt32(files.count))
        for (i, file) in files.enumerated() {
            out += bigEndianBytes(UInt32(file.bytes.count))
            out += bigEndianBytes(FwCfgKey.fileFirst + UInt16(i))
            out += [0, 0]
            var name = Array(file.name.utf8.prefix(55))
            name += [UInt8](repeating: 0, count: 56 - name.count)
            out += name
        }
        return out
    }

    /// The machine items QEMU's `-M pc` puts in fw_cfg with KVM (fw_cfg_init1,
    /// fw_cfg_arch_create and kvm_arch_init): signature "QEMU", ID (1, or 3
    /// with the DMA interface), a zero UUID, RAM size, NOGRAPHIC 0, NB_CPUS,
    /// MAX_CPUS, BOOT_MENU 0, a NUMA item with no nodes, IRQ0_OVERRIDE 1, the
    /// legacy E820 table of reservations, and the file `etc/e820`: the whole
    /// `memoryMap` in QEMU's order.
    public static func qemuPC(memoryMap: PCMemoryMap, cpus: Int, maxCPUs: Int? = nil, dma: Bool = true) -> FwCfgItems {
        var c = FwCfgItems()
        c[FwCfgKey.signature] = Array("QEMU".utf8)
        c.set(FwCfgKey.id, u32: dma ? 3 : 1)
        c[FwCfgKey.uuid] = [UInt8](repeating: 0, count: 16)
        c.set(FwCfgKey.ramSize, u64: memoryMap.ram.reduce(0) { $0 + $1.size })
        c.set(FwCfgKey.noGraphic, u16: 0)
        c.set(FwCfgKey.bootMenu, u16: 0)
        c.set(FwCfgKey.nbCPUs, u16: UInt16(clamping: cpus))
        let apicIDLimit = maxCPUs ?? cpus
        c.set(FwCfgKey.maxCPUs, u16: UInt16(clamping: apicIDLimit))
        c[FwCfgKey.numa] = [UInt8](repeating: 0, count: 8 * (1 + apicIDLimit))
        c.set(FwCfgKey.irq0Override, u32: 1)
        // Legacy table: u32 count, then 16 entries of 20 bytes.
        let reserved = memoryMap.reservations
        var legacy = littleEndianBytes(UInt32(reserved.count))
        for e in reserved { legacy += e.bytes }
        legacy += [UInt8](repeating: 0, count: 4 + 16 * 20 - legacy.count)
        c[FwCfgKey.e820Table] = legacy
        c.addFile("etc/e820", memoryMap.entries.flatMap(\.bytes))
        return c
    }
}

/// QEMU's fw_cfg on the legacy I/O ports: 0x510 selects an item (16-bit write),
/// 0x511 reads its next byte (8-bit read); reads past an item's end, or of an
/// item never set, give 0. With guest memory, the DMA interface at 0x514
/// (big-endian address of a FWCfgDmaAccess, high half at 0x514, low half at
/// 0x518 starts it) reads items into guest RAM; its port reads "QEMU CFG".
/// Nothing is writable (a DMA write sets the error bit), as in QEMU for the
/// items a `-kernel` boot has.
public final class FwCfg: PortDevice {
    /// The selector (0x510, 16-bit) and data (0x511) ports.
    public static let ports: ClosedRange<UInt16> = 0x510...0x511
    /// The DMA address registers (big-endian, high half first).
    public static let dmaPorts: ClosedRange<UInt16> = 0x514...0x51B
    /// "QEMU CFG", what the DMA port reads.
    public static let dmaSignature: UInt64 = 0x5145_4D55_2043_4647

    /// What the device offers.
    public let items: FwCfgItems
    private var table: [UInt16: [UInt8]]
    // The state snapshots save (the SnapshotDevice conformance below).
    private var selected: [UInt8]?
    private let memory: GuestMemory?
    private var selectedKey: UInt16?
    private var offset = 0
    private var dmaAddress: UInt64 = 0

    /// `memory` enables the DMA interface. Without an ID item, the ID says
    /// which interfaces there are (1: ports, 3: ports and DMA).
    public init(items: FwCfgItems, memory: GuestMemory? = nil) {
        self.items = items
        self.memory = memory
        var table = items.items
        if table[FwCfgKey.id] == nil { table[FwCfgKey.id] = littleEndianBytes(UInt32(memory == nil ? 1 : 3)) }
        table[FwCfgKey.fileDirectory] = items.directory
        for (i, file) in items.files.enumerated() { table[FwCfgKey.fileFirst + UInt16(i)] = file.bytes }
        self.table = table
    }

    /// Attaches the ports (and the DMA ports when there is guest memory) to `bus`.
    public func attach(to bus: IOBus) throws {
        try bus.attach(self, ports: FwCfg.ports)
        if memory != nil { try bus.attach(self, ports: FwCfg.dmaPorts) }
    }

    /// Selects `key`, as a guest's 16-bit write to 0x510 does.
    public func select(_ key: UInt16) {
        selectedKey = key
        selected = table[key]
        offset = 0
    }

    /// The next data byte (0 past the end), as a guest's read of 0x511 gives.
    public func readByte() -> UInt8 {
        guard let item = selected, offset < item.count else { return 0 }
        defer { offset += 1 }
        return item[offset]
    }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        switch port {
        case 0x510, 0x511:
            // QEMU accepts only byte reads here (either port reads data).
            return size == 1 ? UInt32(readByte()) : 0xFFFF_FFFF
        case 0x514...0x51B:
            let shift = (8 - Int(port - 0x514) - size) * 8
            guard shift >= 0 else { return 0xFFFF_FFFF }
            let value = FwCfg.dmaSignature >> UInt64(shift)
            let bigEndian =
                size == 4
                ? UInt32(truncatingIfNeeded: value).byteSwapped
                : size == 2
                    ? UInt32(UInt16(truncatingIfNeeded: value).byteSwapped) : UInt32(UInt8(truncatingIfNeeded: value))
            return bigEndian
        default:
            return 0xFFFF_FFFF
        }
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        switch (port, size) {
        case (0x510, 2), (0x511, 2):
            select(UInt16(truncatingIfNeeded: value))
        case (0x514, 4):
            dmaAddress = UInt64(value.byteSwapped) << 32
        case (0x518, 4):
            dmaAddress |= UInt64(value.byteSwapped)
            let access = dmaAddress
            dmaAddress = 0
            dma(at: access)
        default:
            break // data writes are ignored; nothing is writable
        }
        return .proceed
    }

    /// Runs the FWCfgDmaAccess at `address` (control, length, address; big-endian)
    /// and writes its control word back: 0 when done, 1 (error) on a bad address
    /// or a write.
    private func dma(at address: UInt64) {
        guard let memory else { return }
        let errorBit: UInt32 = 1
        let read: UInt32 = 2
        let skip: UInt32 = 4
        let selectBit: UInt32 = 8
        let write: UInt32 = 0x10
        guard let control = try? memory.read(UInt32.self, at: address).byteSwapped,
            var length = try? memory.read(UInt32.self, at: address + 4).byteSwapped,
            var target = try? memory.read(UInt64.self, at: address + 8).byteSwapped
        else {
            try? memory.write(errorBit.byteSwapped, at: address)
            return
        }
        if control & selectBit != 0 { select(UInt16(control >> 16)) }
        let isRead = control & read != 0
        let isWrite = !isRead && control & write != 0
        if !isRead && !isWrite && control & skip == 0 { length = 0 }
        var status: UInt32 = 0
        while length > 0 && status & errorBit == 0 {
            let available = (selected?.count ?? 0) - offset
            if available <= 0 {
                // Past the end (or nothing selected): reads give zeros, writes fail.
                if isRead, (try? memory.fill(0, count: Int(length), at: target)) == nil { status |= errorBit }
                if isWrite { status |= errorBit }
                target &+= UInt64(length)
                length = 0
            } else {
                let n = min(Int(length), available)
                if isRead {
                    let chunk = selected![offset..<offset + n]
                    if (try? chunk.withUnsafeBytes({ try memory.write($0, at: target) })) == nil { status |= errorBit }
                }
                if isWrite { status |= errorBit }
                offset += n
                target &+= UInt64(n)
                length -= UInt32(n)
            }
        }
        try? memory.write(status.byteSwapped, at: address)
    }
}

func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}

func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    littleEndianBytes(value).reversed()
}

// MARK: - Snapshot

extension FwCfg: SnapshotDevice {
    static let kind = "fw_cfg"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { FwCfg.kind }

    /// Its items and files (so a restore in another process can recreate it),
    /// whether DMA is on, the selected item, the read offset, and a DMA address
    /// half written.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        w.bool(memory != nil)
        w.bool(selectedKey != nil)
        w.u16(selectedKey ?? 0)
        w.u64(UInt64(offset))
        w.u64(dmaAddress)
        let keys = items.items.keys.sorted()
        w.u64(UInt64(keys.count))
        for key in keys {
            w.u16(key)
            w.blob(items.items[key]!)
        }
        w.u64(UInt64(items.files.count))
        for file in items.files {
            w.string(file.name)
            w.blob(file.bytes)
        }
        return w.bytes
    }

    private struct Decoded {
        var dma: Bool
        var selected: UInt16?
        var offset: Int
        var dmaAddress: UInt64
        var items: FwCfgItems
    }

    private static func decode(_ bytes: [UInt8]) throws -> Decoded {
        var r = SnapshotReader(bytes, what: "fw_cfg state")
        let dma = try r.bool()
        let hasSelection = try r.bool()
        let key = try r.u16()
        let offset = try r.u64()
        let dmaAddress = try r.u64()
        var items = FwCfgItems()
        for _ in 0..<(try r.count(unit: 10)) {
            let k = try r.u16()
            items[k] = try r.blob()
        }
        for _ in 0..<(try r.count(unit: 16)) {
            let name = try r.string()
            items.addFile(name, try r.blob())
        }
        try r.expectEnd()
        guard offset <= UInt64(Int.max) else { throw SnapshotError(.corrupt, "corrupt: fw_cfg offset \(offset)") }
        return Decoded(
            dma: dma, selected: hasSelection ? key : nil, offset: Int(offset), dmaAddress: dmaAddress, items: items)
    }

    /// A fw_cfg device in the saved state (DMA through `memory` when it had DMA).
    convenience init(restoring bytes: [UInt8], memory: GuestMemory) throws {
        let d = try FwCfg.decode(bytes)
        self.init(items: d.items, memory: d.dma ? memory : nil)
        apply(d)
    }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        apply(try checked(bytes))
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try checked(bytes) }

    private func checked(_ bytes: [UInt8]) throws -> Decoded {
        let d = try FwCfg.decode(bytes)
        guard d.items == items, d.dma == (memory != nil) else {
            throw SnapshotError(.incompatible, "the snapshot's fw_cfg has other items than this machine's")
        }
        return d
    }

    private func apply(_ d: Decoded) {
        if let key = d.selected {
            select(key)
        } else {
            selectedKey = nil
            selected = nil
        }
        offset = d.offset
        dmaAddress = d.dmaAddress
    }
}
