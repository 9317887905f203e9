import XCTest

@testable import KVMCore

/// CMOS/RTC and the small PC ports, without KVM.
final class CMOSTests: XCTestCase {
    /// 2024-02-29 23:59:58 UTC, a Thursday.
    static let leapDay: Int64 = 1_709_251_198

    // @unchecked: set by the test between device calls on its own thread (no timer thread reads it).
    final class Clock: @unchecked Sendable {
        var seconds: Int64
        var nanoseconds: Int64 = 0
        init(_ seconds: Int64) { self.seconds = seconds }
    }

    func cmos(_ clock: Clock, memory: UInt64 = 128 << 20, cpus: Int = 1) -> CMOS {
        let split = PCLayout.ramSplit(memory)
        return CMOS(lowMemory: split.low, highMemory: split.high, cpus: cpus) { (clock.seconds, clock.nanoseconds) }
    }

    func read(_ c: CMOS, _ reg: UInt8) -> UInt8 {
        _ = c.write(port: 0x70, size: 1, value: UInt32(reg))
        return UInt8(c.read(port: 0x71, size: 1))
    }

    func write(_ c: CMOS, _ reg: UInt8, _ value: UInt8) {
        _ = c.write(port: 0x70, size: 1, value: UInt32(reg))
        _ = c.write(port: 0x71, size: 1, value: UInt32(value))
    }

    func time(_ c: CMOS) -> [UInt8] { [0, 2, 4, 6, 7, 8, 9, 0x32].map { read(c, $0) } }

    func testClockInBCD() {
        let clock = Clock(Self.leapDay)
        let c = cmos(clock)
        XCTAssertEqual(time(c), [0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20])
        clock.seconds += 2
        XCTAssertEqual(time(c), [0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20], "a second past midnight into March")
    }

    func testBinaryAnd12HourModes() {
        let clock = Clock(Self.leapDay)
        let c = cmos(clock)
        write(c, 0x0B, 0x04) // binary, 12-hour
        XCTAssertEqual(time(c), [58, 59, 11 | 0x80, 5, 29, 2, 24, 20])
        write(c, 0x0B, 0x06) // binary, 24-hour
        XCTAssertEqual(read(c, 4), 23)
    }

    /// SET freezes the clock; the guest's time then runs on from there.
    func testSettingTheTime() {
        let clock = Clock(Self.leapDay)
        let c = cmos(clock)
        write(c, 0x0B, 0x82)
        clock.seconds += 100
        XCTAssertEqual(read(c, 0), 0x58, "frozen while SET")
        for (reg, value) in [
            (0x00, 0x30), (0x02, 0x15), (0x04, 0x09), (0x07, 0x04), (0x08, 0x07), (0x09, 0x99), (0x32, 0x19),
        ] as [(UInt8, UInt8)] {
            write(c, reg, value)
        }
        write(c, 0x0B, 0x02)
        clock.seconds += 5
        XCTAssertEqual(time(c), [0x35, 0x15, 0x09, 0x01, 0x04, 0x07, 0x99, 0x19], "1999-07-04 09:15:35, a Sunday")
        // A single field written while the clock runs.
        write(c, 0x02, 0x45)
        XCTAssertEqual(read(c, 2), 0x45)
        XCTAssertEqual(read(c, 4), 0x09)
    }

    func testStatusRegisters() {
        let clock = Clock(Self.leapDay)
        let c = cmos(clock)
        XCTAssertEqual(read(c, 0x0A), 0x26)
        XCTAssertEqual(read(c, 0x0B), 0x02)
        XCTAssertEqual(read(c, 0x0C), 0x00)
        XCTAssertEqual(read(c, 0x0D), 0x80)
        write(c, 0x0D, 0)
        XCTAssertEqual(read(c, 0x0D), 0x80, "D is read-only")
        clock.nanoseconds = 999_900_000
        XCTAssertEqual(read(c, 0x0A), 0xA6, "UIP in the last 244 µs of a second")
        clock.nanoseconds = 999_000_000
        XCTAssertEqual(read(c, 0x0A), 0x26)
        write(c, 0x0B, 0x92)
        XCTAssertEqual(read(c, 0x0B), 0x82, "SET clears UIE")
    }

    func testIndexPort() {
        let c = cmos(Clock(0))
        _ = c.write(port: 0x70, size: 1, value: 0x8F) // NMI off, register 0x0f
        write(c, 0x0F, 0x5A)
        _ = c.write(port: 0x70, size: 1, value: 0x8F)
        XCTAssertEqual(UInt8(c.read(port: 0x71, size: 1)), 0x5A)
        XCTAssertEqual(UInt8(c.read(port: 0x70, size: 1)), 0xFF)
        write(c, 0x50, 0x77)
        XCTAssertEqual(read(c, 0x50), 0x77, "plain CMOS RAM")
    }

    /// The bytes QEMU 7.2's pc_cmos_init sets (measured with mb-pcports).
    func testMemoryBytesLikeQEMU() {
        let bytes: [UInt8] = [
            0x10, 0x12, 0x14, 0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x38, 0x3D, 0x5B, 0x5C, 0x5D, 0x5F,
        ]
        let small = cmos(Clock(0), memory: 128 << 20)
        XCTAssertEqual(
            bytes.map { read(small, $0) },
            [0x00, 0x00, 0x06, 0x80, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x07, 0x30, 0x12, 0x00, 0x00, 0x00, 0x00])
        let large = cmos(Clock(0), memory: 5 << 30, cpus: 3)
        XCTAssertEqual(
            bytes.map { read(large, $0) },
            [0x00, 0x00, 0x06, 0x80, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xBF, 0x30, 0x12, 0x00, 0x80, 0x00, 0x02])
        let tiny = CMOS(lowMemory: 2 << 20)
        XCTAssertEqual(
            [0x15, 0x16, 0x17, 0x18, 0x34, 0x35].map { read(tiny, $0) }, [0x80, 0x02, 0x00, 0x04, 0x00, 0x00])
        XCTAssertEqual(read(CMOS(lowMemory: 64 << 20, cpus: 300), 0x5F), 0, "more CPUs than a byte holds")
        let conv = CMOS(memorySize: 3300 << 20)
        XCTAssertEqual(
            [0x34, 0x35, 0x5B, 0x5C].map { read(conv, $0) }, [0x40, 0xCD, 0x00, 0x00], "3300 MiB all below 4 GiB")
    }

    func testCalendar() {
        for (seconds, date) in [
            (Int64(0), (1970, 1, 1, 4)), (951_782_400, (2000, 2, 29, 2)),
            (4_107_542_400, (2100, 3, 1, 1)), (-86_400, (1969, 12, 31, 3)),
        ] {
            let t = CalendarTime(epochSeconds: seconds)
            XCTAssertEqual([t.year, t.month, t.day, t.weekday], [date.0, date.1, date.2, date.3], "\(seconds)")
            XCTAssertEqual(t.epochSeconds, seconds)
        }
    }

    // MARK: Ports 0x80 and 0x92

    func testPCPorts() throws {
        let p = PCPorts()
        XCTAssertEqual(p.read(port: 0x80, size: 1), 0xFFFF_FFFF)
        guard case .proceed = p.write(port: 0x80, size: 1, value: 0x12) else { return XCTFail("0x80 write stopped") }
        XCTAssertEqual(p.read(port: 0x92, size: 1), 0x02)
        XCTAssertTrue(p.a20)
        guard case .proceed = p.write(port: 0x92, size: 1, value: 0x00) else { return XCTFail("A20 off stopped") }
        XCTAssertFalse(p.a20)
        XCTAssertEqual(p.read(port: 0x92, size: 1), 0x00)
        guard case .stop(.systemEvent(let type, _)) = p.write(port: 0x92, size: 1, value: 0x03) else {
            return XCTFail("bit 0 must request a reset")
        }
        XCTAssertEqual(type, PCPorts.resetEvent)
        guard case .proceed = p.write(port: 0x92, size: 1, value: 0x03) else { return XCTFail("no new edge, no reset") }
        let bus = IOBus()
        try p.attach(to: bus)
        try bus.attach(CMOS(memorySize: 64 << 20), ports: CMOS.ports)
    }
}
