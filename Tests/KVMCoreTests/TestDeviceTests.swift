import XCTest

@testable import KVMCore

/// QEMU's test devices and the PCI host bridge, without a guest.
final class TestDeviceTests: XCTestCase {
    func testPCTestdevRegisterSizesAndAlignment() {
        let dev = PCTestDevice()
        _ = dev.write(port: 0xE0, size: 4, value: 0x1234_5678)
        XCTAssertEqual(dev.read(port: 0xE0, size: 4), 0x1234_5678)
        XCTAssertEqual(dev.read(port: 0xE1, size: 2), 0x3456)
        XCTAssertEqual(dev.read(port: 0xE1, size: 4), 0x0012_3456) // byte 1, bytes 2-3, then the flush port (0)
        XCTAssertEqual(dev.read(port: 0xEA, size: 4), 0xFFFF_1234) // the alias, then unassigned 0xec
        _ = dev.write(port: 0xE1, size: 2, value: 0x1122)
        XCTAssertEqual(dev.read(port: 0xE8, size: 4), 0x1211_2278)
        XCTAssertEqual(dev.read(port: 0x2016, size: 4), 0xFFFF_0000)
    }

    func testPCTestdevIRQPortsAndFlush() {
        var lines: [(UInt32, Bool)] = []
        var flushed: [UInt64] = []
        let dev = PCTestDevice(setIRQLine: { lines.append(($0, $1)) }, flushPage: { flushed.append($0) })
        _ = dev.write(port: 0x200E, size: 1, value: 5)
        _ = dev.write(port: 0x2000, size: 2, value: 0x0100) // two byte writes: line 0 low, line 1 high
        XCTAssertEqual(lines.map(\.0), [14, 0, 1])
        XCTAssertEqual(lines.map(\.1), [true, false, true])
        _ = dev.write(port: 0xE4, size: 4, value: 0x12345)
        _ = dev.write(port: 0xE4, size: 2, value: 0x1000)
        XCTAssertEqual(flushed, [0x12000])
    }

    func testPCTestdevIOMem() {
        let dev = PCTestDevice()
        _ = dev.write(address: 0xFF00_0001, size: 8, value: 0x1122_3344_5566_7788)
        XCTAssertEqual(dev.read(address: 0xFF00_0000, size: 4), 0x6677_8800)
        XCTAssertEqual(dev.read(address: 0xFF00_FFFF, size: 2), 0)
    }

    func testPCIConfigMechanismAndBARSizing() {
        let host = PCIHost()
        for f in PCIHost.qemuPCBus0() { XCTAssertNoThrow(try host.add(f)) }
        XCTAssertEqual(host.read(port: 0xCFC, size: 4), 0xFFFF_FFFF) // bit 31 clear
        _ = host.write(port: 0xCF8, size: 4, value: 0x8000_0000)
        XCTAssertEqual(host.read(port: 0xCF8, size: 4), 0x8000_0000)
        _ = host.write(port: 0xCF8, size: 1, value: 0x12) // only 4-byte writes latch
        XCTAssertEqual(host.read(port: 0xCFC, size: 4), 0x1237_8086)
        XCTAssertEqual(host.read(port: 0xCFE, size: 2), 0x1237)
        XCTAssertEqual(host.read(port: 0xCFD, size: 4), 0xFF12_3780) // byte, word, then unassigned
        _ = host.write(port: 0xCF8, size: 4, value: 0x8000_0000 | 9 << 8 | 0x20) // IDE BAR4
        _ = host.write(port: 0xCFC, size: 4, value: 0xFFFF_FFFF)
        XCTAssertEqual(host.read(port: 0xCFC, size: 4), 0xFFFF_FFF1)
        _ = host.write(port: 0xCF8, size: 4, value: 0x8001_0000)
        XCTAssertEqual(host.read(port: 0xCFC, size: 4), 0xFFFF_FFFF) // bus 1
        guard case .stop(.systemEvent(let type, _)) = host.write(port: 0xCF9, size: 1, value: 0x06) else {
            return XCTFail("0xcf9 bit 2 resets")
        }
        XCTAssertEqual(type, PCPorts.resetEvent)
    }

    func testPCIBARDecoding() {
        let f = PCIFunction(
            name: "t", devfn: 16, initial: [(0x14, 1)],
            bars: [.init(index: 0, size: 4096, isIO: false), .init(index: 1, size: 256, isIO: true)])
        f.write(offset: 0x10, length: 4, value: 0xE000_0123)
        f.write(offset: 0x14, length: 4, value: 0xC0FF)
        XCTAssertNil(f.barAddress(0))
        f.write(offset: 0x04, length: 2, value: 3)
        XCTAssertEqual(f.barAddress(0), 0xE000_0000)
        XCTAssertEqual(f.barAddress(1), 0xC000)
        f.write(offset: 0x14, length: 4, value: 0xFFFF_FF00) // ports past 64 KiB
        XCTAssertNil(f.barAddress(1))
        XCTAssertEqual(f.read(offset: 0x14, length: 4), 0xFFFF_FF01)
    }
}
