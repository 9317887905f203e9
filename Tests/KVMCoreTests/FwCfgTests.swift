import XCTest

@testable import KVMCore

/// fw_cfg on its ports, without KVM: selection, reads, reads past the end,
/// the file directory, the DMA interface (on a plain GuestMemory), and the
/// items QEMU's `-M pc` has.
final class FwCfgTests: XCTestCase {
    func select(_ d: FwCfg, _ key: UInt16) {
        XCTAssertTrue(proceeds(d.write(port: 0x510, size: 2, value: UInt32(key))))
    }
    func proceeds(_ action: DeviceAction) -> Bool { if case .proceed = action { return true } else { return false } }
    func readBytes(_ d: FwCfg, _ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(d.read(port: 0x511, size: 1)) } }

    func pc(cpus: Int = 2, dma: Bool = true) -> FwCfgItems {
        FwCfgItems.qemuPC(memoryMap: PCMemoryMap(ram: [(0, 128 << 20)], amdHyperTransport: false), cpus: cpus, dma: dma)
    }

    /// RAM without a VM (the slot is never told to KVM).
    func memory(_ size: UInt64 = 0x10000) throws -> GuestMemory {
        let memory = GuestMemory()
        _ = try memory.addRegion(at: 0, size: size, flags: 0) { _ in }
        return memory
    }

    func testSignatureIDAndNumbers() {
        let d = FwCfg(items: pc())
        select(d, FwCfgKey.signature)
        XCTAssertEqual(readBytes(d, 4), Array("QEMU".utf8))
        select(d, FwCfgKey.id)
        XCTAssertEqual(readBytes(d, 4), [3, 0, 0, 0])
        select(d, FwCfgKey.ramSize)
        XCTAssertEqual(readBytes(d, 8), [0, 0, 0, 8, 0, 0, 0, 0])
        select(d, FwCfgKey.nbCPUs)
        XCTAssertEqual(readBytes(d, 2), [2, 0])
        select(d, FwCfgKey.maxCPUs)
        XCTAssertEqual(readBytes(d, 2), [2, 0])
        select(d, FwCfgKey.uuid)
        XCTAssertEqual(readBytes(d, 16), [UInt8](repeating: 0, count: 16))
        select(d, FwCfgKey.irq0Override)
        XCTAssertEqual(readBytes(d, 4), [1, 0, 0, 0])
        select(d, FwCfgKey.numa)
        XCTAssertEqual(readBytes(d, 24), [UInt8](repeating: 0, count: 24))
    }

    /// Past an item's end, of an item never set, and with an out-of-range key: zeros.
    func testReadsPastTheEndGiveZero() {
        let d = FwCfg(items: pc())
        select(d, FwCfgKey.nbCPUs)
        XCTAssertEqual(readBytes(d, 6), [2, 0, 0, 0, 0, 0])
        select(d, FwCfgKey.commandLineSize)
        XCTAssertEqual(readBytes(d, 4), [0, 0, 0, 0])
        select(d, 0x3FFF)
        XCTAssertEqual(readBytes(d, 4), [0, 0, 0, 0])
        select(d, 0xFFFF)
        XCTAssertEqual(readBytes(d, 2), [0, 0])
    }

    /// Selecting restarts at offset 0; either port reads data (QEMU's combined
    /// region), byte reads only; byte writes are ignored.
    func testPortDetails() {
        let d = FwCfg(items: pc())
        select(d, FwCfgKey.signature)
        XCTAssertEqual(UInt8(d.read(port: 0x511, size: 1)), UInt8(ascii: "Q"))
        XCTAssertEqual(UInt8(d.read(port: 0x510, size: 1)), UInt8(ascii: "E"))
        XCTAssertEqual(d.read(port: 0x511, size: 2), 0xFFFF_FFFF)
        XCTAssertTrue(proceeds(d.write(port: 0x511, size: 1, value: 0x55)))
        XCTAssertEqual(UInt8(d.read(port: 0x511, size: 1)), UInt8(ascii: "M"))
        XCTAssertTrue(proceeds(d.write(port: 0x510, size: 1, value: 0x01))) // not a select
        XCTAssertEqual(UInt8(d.read(port: 0x511, size: 1)), UInt8(ascii: "U"))
        select(d, FwCfgKey.signature)
        XCTAssertEqual(UInt8(d.read(port: 0x511, size: 1)), UInt8(ascii: "Q"))
    }

    func testIDFollowsTheInterfaces() throws {
        var items = FwCfgItems()
        items[FwCfgKey.signature] = Array("QEMU".utf8)
        let ports = FwCfg(items: items)
        select(ports, FwCfgKey.id)
        XCTAssertEqual(readBytes(ports, 4), [1, 0, 0, 0])
        let withDMA = FwCfg(items: items, memory: try memory())
        select(withDMA, FwCfgKey.id)
        XCTAssertEqual(readBytes(withDMA, 4), [3, 0, 0, 0])
    }

    /// The directory: big-endian count, then size, selector, reserved and a
    /// 56-byte name per file, selectors from 0x20 in name order.
    func testFileDirectory() {
        var items = FwCfgItems()
        items.addFile("zeta", [1, 2, 3])
        items.addFile("etc/e820", [9])
        items.addFile("alpha", [])
        XCTAssertEqual(items.selector(ofFile: "alpha"), 0x20)
        XCTAssertEqual(items.selector(ofFile: "etc/e820"), 0x21)
        XCTAssertEqual(items.selector(ofFile: "zeta"), 0x22)
        XCTAssertNil(items.selector(ofFile: "nope"))
        let d = FwCfg(items: items)
        select(d, FwCfgKey.fileDirectory)
        let dir = readBytes(d, 4 + 3 * 64)
        XCTAssertEqual(Array(dir[0..<4]), [0, 0, 0, 3])
        let zeta = Array(dir[4 + 128..<4 + 192])
        XCTAssertEqual(Array(zeta[0..<8]), [0, 0, 0, 3, 0x00, 0x22, 0, 0])
        XCTAssertEqual(Array(zeta[8..<13]), Array("zeta".utf8) + [0])
        select(d, 0x22)
        XCTAssertEqual(readBytes(d, 4), [1, 2, 3, 0])
    }

    /// etc/e820 as QEMU with KVM has it: the identity-map reservation first,
    /// then (AMD vCPUs) the HyperTransport range, then RAM; and the legacy
    /// table of reservations.
    func testQEMUPCE820() {
        let identity = E820Entry(address: 0xFEFF_C000, length: 0x4000, type: .reserved)
        let hyperTransport = E820Entry(address: 0xFD_0000_0000, length: 0x3_0000_0000, type: .reserved)
        let ram = [
            E820Entry(address: 0, length: 3 << 30, type: .ram),
            E820Entry(address: 4 << 30, length: 0x7880_0000, type: .ram),
        ]
        for amd in [false, true] {
            let map = PCMemoryMap(ram: [(4 << 30, 0x7880_0000), (0, 3 << 30)], amdHyperTransport: amd)
            let items = FwCfgItems.qemuPC(memoryMap: map, cpus: 1)
            let reserved = amd ? [identity, hyperTransport] : [identity]
            XCTAssertEqual(
                items.files.first { $0.name == "etc/e820" }?.bytes, (reserved + ram).flatMap(\.bytes), "AMD: \(amd)")
            XCTAssertEqual(items[FwCfgKey.ramSize], littleEndianBytes(UInt64(5000 << 20)))
            let legacy = items[FwCfgKey.e820Table] ?? []
            XCTAssertEqual(legacy.count, 324)
            XCTAssertEqual(Array(legacy[0..<4]), [UInt8(reserved.count), 0, 0, 0])
            XCTAssertEqual(Array(legacy[4..<4 + 20 * reserved.count]), reserved.flatMap(\.bytes))
            XCTAssertEqual(
                Array(legacy[(4 + 20 * reserved.count)...]), [UInt8](repeating: 0, count: 320 - 20 * reserved.count))
        }
    }

    /// QEMU's IS_AMD_CPU and phys_bits >= 40: the vendor the vCPU shows, not the host's.
    func testHyperTransportRangeFollowsTheVCPUsVendorAndAddressWidth() {
        func cpu(_ vendor: String, physicalBits: UInt32?) -> CPUID {
            let words = Array(vendor.utf8).withUnsafeBytes { raw in
                (0..<3).map { raw.load(fromByteOffset: $0 * 4, as: UInt32.self) }
            }
            var entries = [CPUIDEntry(function: 0, eax: 0xD, ebx: words[0], ecx: words[2], edx: words[1])]
            if let physicalBits { entries.append(CPUIDEntry(function: 0x8000_0008, eax: 0x3000 | physicalBits)) }
            return CPUID(entries: entries)
        }
        XCTAssertEqual(cpu("AuthenticAMD", physicalBits: 48).vendor, "AuthenticAMD")
        XCTAssertTrue(PCMemoryMap.reservesHyperTransport(cpu("AuthenticAMD", physicalBits: 48)))
        XCTAssertTrue(PCMemoryMap.reservesHyperTransport(cpu("AuthenticAMD", physicalBits: 40)))
        XCTAssertFalse(PCMemoryMap.reservesHyperTransport(cpu("AuthenticAMD", physicalBits: 39)))
        XCTAssertFalse(PCMemoryMap.reservesHyperTransport(cpu("AuthenticAMD", physicalBits: nil)))
        XCTAssertFalse(PCMemoryMap.reservesHyperTransport(cpu("GenuineIntel", physicalBits: 46)))
        XCTAssertFalse(PCMemoryMap.reservesHyperTransport(cpu("HygonGenuine", physicalBits: 48)))
    }

    /// QEMU moves RAM above 4 GiB to 1 TiB when RAM's end, rounded up to 1 GiB,
    /// plus its 64-bit PCI hole (2 GiB on i440FX) would reach the HyperTransport
    /// range. PCMemoryMap does not model that move: this holds while the largest
    /// machine stays clear of it, and fails, saying why, if the limit grows.
    func testLargestMachineStaysClearOfTheHyperTransportRange() {
        let high = PCLayout.ram(size: Machine.maxMemorySize).map { $0.guestPhysical + $0.size }.max() ?? 0
        let gib: UInt64 = 1 << 30
        let maxUsed = (high + gib - 1) / gib * gib + 2 * gib - 1
        XCTAssertLessThan(
            maxUsed, PCMemoryMap.hyperTransport.address,
            "RAM can now reach AMD's HyperTransport range: QEMU would start RAM above 4 GiB at 1 TiB; model that in PCLayout"
        )
    }

    func testMerge() {
        var items = pc()
        var boot = FwCfgItems()
        boot.set(FwCfgKey.kernelAddress, u32: 0x10_0000)
        boot.set(FwCfgKey.nbCPUs, u16: 7)
        items.merge(boot)
        XCTAssertEqual(items[FwCfgKey.kernelAddress], [0, 0, 0x10, 0])
        XCTAssertEqual(items[FwCfgKey.nbCPUs], [7, 0])
        XCTAssertEqual(items[FwCfgKey.signature], Array("QEMU".utf8))
    }

    // MARK: DMA

    func testDMAPortReadsSignature() {
        let d = FwCfg(items: pc())
        XCTAssertEqual(d.read(port: 0x514, size: 4), 0x554D_4551) // "QEMU" in memory order
        XCTAssertEqual(d.read(port: 0x518, size: 4), 0x4746_4320) // " CFG"
        XCTAssertEqual(d.read(port: 0x514, size: 1), UInt32(UInt8(ascii: "Q")))
        XCTAssertEqual(d.read(port: 0x51B, size: 1), UInt32(UInt8(ascii: "G")))
    }

    /// Writes a FWCfgDmaAccess at `at` and starts it (high half, then low half).
    func dma(_ d: FwCfg, _ memory: GuestMemory, at: UInt64, control: UInt32, length: UInt32, address: UInt64) throws
        -> UInt32
    {
        try memory.write(control.byteSwapped, at: at)
        try memory.write(length.byteSwapped, at: at + 4)
        try memory.write(address.byteSwapped, at: at + 8)
        _ = d.write(port: 0x514, size: 4, value: UInt32(at >> 32).byteSwapped)
        _ = d.write(port: 0x518, size: 4, value: UInt32(truncatingIfNeeded: at).byteSwapped)
        return try memory.read(UInt32.self, at: at).byteSwapped
    }

    func testDMARead() throws {
        let memory = try memory()
        let d = FwCfg(items: pc(), memory: memory)
        try memory.fill(0xAA, count: 16, at: 0x2000)
        // SELECT signature | READ, 6 bytes: "QEMU" then two zeros.
        XCTAssertEqual(
            try dma(
                d, memory, at: 0x1000, control: UInt32(FwCfgKey.signature) << 16 | 0x0A, length: 6, address: 0x2000), 0)
        XCTAssertEqual(try memory.bytes(at: 0x2000, count: 8), Array("QEMU".utf8) + [0, 0, 0xAA, 0xAA])
        // Reads go on from the offset: RAM size in two halves.
        select(d, FwCfgKey.ramSize)
        XCTAssertEqual(try dma(d, memory, at: 0x1000, control: 0x02, length: 4, address: 0x3000), 0)
        XCTAssertEqual(try dma(d, memory, at: 0x1000, control: 0x02, length: 4, address: 0x3004), 0)
        XCTAssertEqual(try memory.read(UInt64.self, at: 0x3000), 128 << 20)
        // SKIP moves on without writing.
        select(d, FwCfgKey.signature)
        XCTAssertEqual(try dma(d, memory, at: 0x1000, control: 0x04, length: 2, address: 0x4000), 0)
        XCTAssertEqual(UInt8(d.read(port: 0x511, size: 1)), UInt8(ascii: "M"))
    }

    func testDMAErrors() throws {
        let memory = try memory()
        let d = FwCfg(items: pc(), memory: memory)
        // A write: nothing is writable.
        XCTAssertEqual(
            try dma(
                d, memory, at: 0x1000, control: UInt32(FwCfgKey.signature) << 16 | 0x18, length: 4, address: 0x2000), 1)
        // A destination outside RAM.
        XCTAssertEqual(
            try dma(
                d, memory, at: 0x1000, control: UInt32(FwCfgKey.signature) << 16 | 0x0A, length: 4, address: 0x10_0000),
            1)
        // An access structure outside RAM: nothing happens, nothing traps.
        _ = d.write(port: 0x514, size: 4, value: 0)
        _ = d.write(port: 0x518, size: 4, value: UInt32(0x20_0000).byteSwapped)
        // No control bits: nothing transferred, done.
        XCTAssertEqual(try dma(d, memory, at: 0x1000, control: 0, length: 4, address: 0x2000), 0)
    }

    func testNoDMAWithoutMemory() throws {
        let d = FwCfg(items: pc())
        let bus = IOBus()
        try d.attach(to: bus)
        XCTAssertThrowsError(try bus.attach(PCPorts(), ports: 0x510...0x510), "0x510 is fw_cfg's")
        try bus.attach(PCPorts(), ports: 0x514...0x514) // no DMA ports without memory
    }
}
