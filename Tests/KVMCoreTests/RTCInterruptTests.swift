import XCTest

@testable import KVMCore

/// The RTC's interrupts (register B's PIE, AIE, UIE; register C; IRQ 8), without KVM.
final class RTCInterruptTests: XCTestCase {
    /// 2024-02-29 23:59:58 UTC.
    static let leapDay: Int64 = 1_709_251_198

    // @unchecked: with a test clock the device starts no timer thread; only the test's thread reads it.
    final class Clock: @unchecked Sendable {
        var seconds: Int64
        var nanoseconds: Int64 = 0
        init(_ seconds: Int64) { self.seconds = seconds }

        func advance(nanoseconds ns: Int64) {
            let total = nanoseconds + ns
            seconds += total / 1_000_000_000
            nanoseconds = total % 1_000_000_000
        }
    }

    /// Every level the device drove IRQ 8 to, in order (any thread).
    // @unchecked: `levels` is behind `lock`.
    final class Line: @unchecked Sendable {
        private let lock = Lock()
        private var levels: [Bool] = []
        func drive(_ level: Bool) { lock.withLock { levels.append(level) } }
        var history: [Bool] { lock.withLock { levels } }
        var raises: Int { history.filter { $0 }.count }
        func clear() { lock.withLock { levels.removeAll() } }
    }

    func rtc(_ clock: Clock) -> (CMOS, Line) {
        let c = CMOS(lowMemory: 64 << 20) { (clock.seconds, clock.nanoseconds) }
        let line = Line()
        c.interruptLine = { line.drive($0) }
        return (c, line)
    }

    func read(_ c: CMOS, _ reg: UInt8) -> UInt8 {
        _ = c.write(port: 0x70, size: 1, value: UInt32(reg))
        return UInt8(c.read(port: 0x71, size: 1))
    }

    func write(_ c: CMOS, _ reg: UInt8, _ value: UInt8) {
        _ = c.write(port: 0x70, size: 1, value: UInt32(reg))
        _ = c.write(port: 0x71, size: 1, value: UInt32(value))
    }

    /// A guest polling C without interrupts sees UF once a second boundary passed.
    func testUpdateFlagWithoutInterrupts() {
        let clock = Clock(Self.leapDay)
        clock.nanoseconds = 400_000_000
        let (c, line) = rtc(clock)
        XCTAssertEqual(read(c, 0x0C), 0x00)
        clock.advance(nanoseconds: 500_000_000)
        XCTAssertEqual(read(c, 0x0C), 0x00, "still the same second")
        clock.advance(nanoseconds: 200_000_000)
        XCTAssertEqual(read(c, 0x0C), 0x10, "UF: a second boundary passed; no IRQF without UIE")
        XCTAssertEqual(read(c, 0x0C), 0x00, "cleared on read")
        c.checkRTCEvents()
        XCTAssertEqual(line.raises, 0, "nothing enabled, no interrupt")
    }

    func testUpdateEndedInterrupt() {
        let clock = Clock(Self.leapDay - 3600) // an hour before midnight, the alarm's 00:00:00
        let (c, line) = rtc(clock)
        write(c, 0x0B, 0x12) // UIE, 24-hour
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [])
        clock.advance(nanoseconds: 999_999_999)
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [], "not before the second ends")
        clock.advance(nanoseconds: 1)
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [true])
        clock.advance(nanoseconds: 1_000_000_000)
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [true], "the line stays up until C is read")
        XCTAssertEqual(read(c, 0x0C), 0x90)
        XCTAssertEqual(line.history, [true, false], "reading C lowers it")
        clock.advance(nanoseconds: 1_000_000_000)
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [true, false, true], "the next second raises it again")
    }

    /// Register A's rate 6 (its 0x26 after reset): 1024 Hz, a period of 32
    /// ticks of the 32768 Hz clock, 976.5625 µs.
    func testPeriodicInterrupt() {
        let clock = Clock(Self.leapDay)
        clock.nanoseconds = 100_000_000
        let (c, line) = rtc(clock)
        clock.advance(nanoseconds: 10_000_000)
        XCTAssertEqual(read(c, 0x0C), 0x00, "no PF while PIE is clear (QEMU's periodic timer is off)")
        write(c, 0x0B, 0x42) // PIE
        clock.advance(nanoseconds: 976_000)
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [], "just under a period")
        clock.advance(nanoseconds: 600)
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [true])
        XCTAssertEqual(read(c, 0x0C), 0xC0)
        clock.advance(nanoseconds: 5_000_000) // several periods: one interrupt (lost ticks are dropped)
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [true, false, true])
        XCTAssertEqual(read(c, 0x0C), 0xC0)
        // Rate 15: 2 Hz, counted from the change.
        write(c, 0x0A, 0x2F)
        clock.advance(nanoseconds: 499_000_000)
        XCTAssertEqual(read(c, 0x0C) & 0x40, 0)
        clock.advance(nanoseconds: 1_000_000)
        XCTAssertEqual(read(c, 0x0C) & 0xC0, 0xC0)
        // Rate 0: off.
        write(c, 0x0A, 0x20)
        clock.advance(nanoseconds: 2_000_000_000)
        XCTAssertEqual(read(c, 0x0C) & 0x40, 0)
    }

    /// Rates 1 and 2 are 3 and 4 below rate 8 and 9's periods as QEMU has them
    /// (256 and 128 Hz), not 32768 and 16384 Hz.
    func testPeriodicRatesOneAndTwo() {
        for (rate, hz) in [(UInt8(1), Int64(256)), (2, 128), (3, 8192), (15, 2)] {
            let clock = Clock(Self.leapDay)
            let (c, _) = rtc(clock)
            write(c, 0x0A, 0x20 | rate)
            write(c, 0x0B, 0x42)
            let period = 1_000_000_000 / hz
            clock.advance(nanoseconds: period - 1_000)
            XCTAssertEqual(read(c, 0x0C), 0, "rate \(rate): before a period")
            clock.advance(nanoseconds: 2_000)
            XCTAssertEqual(read(c, 0x0C), 0xC0, "rate \(rate): after a period")
        }
    }

    /// Alarm at second 05 of any minute and hour (0xc0 and above: don't care).
    func testAlarmWithDontCareFields() {
        let clock = Clock(Self.leapDay) // 23:59:58
        let (c, line) = rtc(clock)
        write(c, 0x01, 0x05)
        write(c, 0x03, 0xC0)
        write(c, 0x05, 0xFF)
        write(c, 0x0B, 0x22) // AIE
        clock.seconds += 6 // 00:00:04
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [])
        XCTAssertEqual(read(c, 0x0C), 0x10, "UF only")
        clock.seconds += 1 // 00:00:05
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [true])
        XCTAssertEqual(read(c, 0x0C), 0xB0, "IRQF, AF, UF")
        clock.seconds += 59 // 00:01:04
        XCTAssertEqual(read(c, 0x0C), 0x10)
        clock.seconds += 1 // 00:01:05: every minute
        XCTAssertEqual(read(c, 0x0C), 0xB0)
    }

    /// A full alarm: hours, minutes and seconds all given, in BCD, 24-hour.
    func testAlarmAtATime() {
        let clock = Clock(Self.leapDay) // 23:59:58
        let (c, _) = rtc(clock)
        write(c, 0x05, 0x00)
        write(c, 0x03, 0x01)
        write(c, 0x01, 0x00) // 00:01:00
        clock.seconds += 61 // 00:00:59
        XCTAssertEqual(read(c, 0x0C) & 0x20, 0)
        clock.seconds += 1 // 00:01:00
        XCTAssertEqual(read(c, 0x0C), 0x30, "AF and UF; no IRQF without AIE")
        clock.seconds += 3600
        XCTAssertEqual(read(c, 0x0C), 0x10, "a day later, not an hour")
    }

    func testNextAlarmMatch() {
        let t: Int64 = 86400 * 10 + 3600 * 23 + 60 * 59 + 58 // 23:59:58
        XCTAssertEqual(RTCInterrupts.nextMatch(after: t, alarm: (nil, nil, nil)), t + 1)
        XCTAssertEqual(RTCInterrupts.nextMatch(after: t, alarm: (58, 59, 23)), t + 86400, "the same time: tomorrow")
        XCTAssertEqual(RTCInterrupts.nextMatch(after: t, alarm: (0, nil, nil)), t + 2)
        XCTAssertEqual(
            RTCInterrupts.nextMatch(after: t, alarm: (nil, 30, nil)), t + 2 + 30 * 60,
            "00:30:00, the minute's first second")
        XCTAssertEqual(RTCInterrupts.nextMatch(after: t, alarm: (nil, nil, 23)), t + 1)
        XCTAssertNil(RTCInterrupts.nextMatch(after: t, alarm: (nil, nil, 24)), "no such hour")
    }

    /// Enabling an interrupt whose flag is already set raises at once; writing
    /// B without one pending clears IRQF and lowers the line (QEMU's cmos_ioport_write).
    func testEnablingAPendingFlagRaisesAtOnce() {
        let clock = Clock(Self.leapDay)
        let (c, line) = rtc(clock)
        clock.seconds += 1
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [])
        write(c, 0x0B, 0x12) // UIE, UF already set
        XCTAssertEqual(line.history, [true])
        write(c, 0x0B, 0x02) // UIE off
        XCTAssertEqual(line.history, [true, false])
        XCTAssertEqual(read(c, 0x0C), 0x10, "UF stays; IRQF went with the enable")
    }

    func testSetStopsAlarmsAndClearsUIE() {
        let clock = Clock(Self.leapDay)
        let (c, _) = rtc(clock)
        write(c, 0x01, 0xC0)
        write(c, 0x03, 0xC0)
        write(c, 0x05, 0xC0) // every second
        write(c, 0x0B, 0x92) // SET and UIE: UIE dropped
        XCTAssertEqual(read(c, 0x0B), 0x82)
        clock.seconds += 1
        XCTAssertEqual(read(c, 0x0C), 0x10, "UF with SET (QEMU), no AF while the clock is stopped")
        write(c, 0x0B, 0x02)
        clock.seconds += 1
        XCTAssertEqual(read(c, 0x0C), 0x30)
    }

    /// Register A's dividers in reset (0x60): no update cycles, no UF or AF.
    func testDividerResetStopsUpdates() {
        let clock = Clock(Self.leapDay)
        let (c, _) = rtc(clock)
        write(c, 0x0A, 0x66)
        clock.seconds += 3
        XCTAssertEqual(read(c, 0x0C), 0)
        write(c, 0x0A, 0x26)
        clock.seconds += 1
        XCTAssertEqual(read(c, 0x0C), 0x10)
    }

    func testSnapshotKeepsFlagsAndLine() throws {
        let clock = Clock(Self.leapDay)
        let (c, line) = rtc(clock)
        write(c, 0x0B, 0x12)
        clock.seconds += 1
        c.checkRTCEvents()
        XCTAssertEqual(line.history, [true])
        let saved = c.saveSnapshotState()

        let (copy, copyLine) = rtc(clock)
        try copy.restoreSnapshotState(saved)
        XCTAssertEqual(copyLine.history, [true], "the restore drives the saved level")
        XCTAssertEqual(copy.bytes[0x0B], 0x12)
        XCTAssertEqual(read(copy, 0x0C), 0x90, "the pending flags carried over")
        XCTAssertEqual(copyLine.history, [true, false])
        clock.seconds += 1
        copy.checkRTCEvents()
        XCTAssertEqual(copyLine.history, [true, false, true], "and its interrupts run on")

        // A snapshot from before the RTC kept its line: no level, the line low.
        var w = SnapshotWriter()
        w.blob([UInt8](repeating: 0, count: 128))
        w.u8(0x0C)
        w.u64(0)
        let (old, oldLine) = rtc(clock)
        try old.restoreSnapshotState(w.bytes)
        XCTAssertEqual(oldLine.history, [false])
        XCTAssertThrowsError(try old.restoreSnapshotState(w.bytes + [1, 0]), "trailing bytes")
    }

    /// With the host clock and a line, a thread raises IRQ 8 while nothing
    /// touches the device, and ends with it.
    func testInterruptsArriveWithoutAccesses() throws {
        weak var released: CMOS?
        try {
            let c = CMOS(lowMemory: 64 << 20)
            let line = Line()
            c.interruptLine = { line.drive($0) }
            write(c, 0x0B, 0x42) // PIE at 1024 Hz
            try waitFor("a periodic interrupt") { line.raises >= 1 }
            XCTAssertEqual(read(c, 0x0C) & 0xC0, 0xC0)
            try waitFor("another after reading C") { line.raises >= 2 }
            write(c, 0x0B, 0x12) // UIE instead: once a second
            _ = read(c, 0x0C)
            line.clear()
            try waitFor("an update-ended interrupt", seconds: 2) { line.raises >= 1 }
            XCTAssertEqual(read(c, 0x0C) & 0x90, 0x90)
            released = c
        }()
        XCTAssertNil(released, "the thread holds no reference to the device")
    }

    private func waitFor(_ what: String, seconds: Double = 1, _ condition: () -> Bool) throws {
        let end = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while !condition() {
            guard monotonicNanoseconds() < end else { return XCTFail("no \(what) within \(seconds) s") }
            usleep(1000)
        }
    }

    /// A restore into a machine without a CMOS creates it, IRQ 8 wired.
    func testTravelsInAMachineSnapshot() throws {
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm, irqchip: true)
        let cmos = CMOS(memorySize: 16 << 20)
        try machine.bus.attach(cmos, ports: CMOS.ports)
        write(cmos, 0x0B, 0x22)
        write(cmos, 0x01, 0xC5)
        let restored = try Machine(restoring: try machine.snapshot(), kvm: kvm)
        let copy = try XCTUnwrap(restored.bus.attachedPorts.lazy.compactMap { $0.device as? CMOS }.first)
        XCTAssertNotNil(copy.interruptLine, "IRQ 8 is wired to the restored irqchip")
        XCTAssertEqual(read(copy, 0x0B), 0x22)
        XCTAssertEqual(copy.rtcSettings.secondsAlarm, 0xC5)
    }
}
