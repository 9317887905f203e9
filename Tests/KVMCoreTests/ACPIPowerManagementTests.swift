import XCTest

@testable import KVMCore

/// The PIIX4-style ACPI registers (PM1a event and control, PM timer, GPE0), without KVM.
final class ACPIPowerManagementTests: XCTestCase {
    // @unchecked: set and read on the test's thread only (no vCPU runs).
    final class Clock: @unchecked Sendable {
        var nanoseconds: UInt64 = 5_000_000_000
    }

    // @unchecked: driven on the test's thread only (no vCPU runs).
    final class Line: @unchecked Sendable {
        var history: [Bool] = []
    }

    func pm(_ clock: Clock = Clock()) -> (ACPIPowerManagement, Line) {
        let device = ACPIPowerManagement { clock.nanoseconds }
        let line = Line()
        device.interruptLine = { line.history.append($0) }
        return (device, line)
    }

    let event = ACPILayout.pm1aEvent, control = ACPILayout.pm1aControl
    let timer = ACPILayout.pmTimer, gpe = ACPILayout.gpe0

    func proceeds(_ action: DeviceAction, file: StaticString = #filePath, line: UInt = #line) {
        guard case .proceed = action else { return XCTFail("the write stopped the run", file: file, line: line) }
    }

    func systemEvent(_ action: DeviceAction) -> UInt32? {
        guard case .stop(.systemEvent(let type, let flags)) = action, flags == 0 else { return nil }
        return type
    }

    func testPortsAreACPILayouts() throws {
        XCTAssertEqual(ACPIPowerManagement.ports, [0x600...0x603, 0x604...0x605, 0x608...0x60B, 0xAFE0...0xAFE3])
        XCTAssertEqual(ACPIPowerManagement.sciIRQ, 9)
        let bus = IOBus()
        try ACPIPowerManagement().attach(to: bus)
        XCTAssertEqual(bus.attachedPorts.map(\.ports), ACPIPowerManagement.ports)
    }

    /// SCI_EN reads 1 whatever is written: the FADT has no SMI_CMD.
    func testSCIEnableAlwaysReadsOne() {
        let (p, _) = pm()
        XCTAssertEqual(p.read(port: control, size: 2), 0x0001)
        proceeds(p.write(port: control, size: 2, value: 0x0000))
        XCTAssertEqual(p.read(port: control, size: 2), 0x0001)
        proceeds(p.write(port: control, size: 2, value: 0x0004)) // GBL_RLS, kept
        XCTAssertEqual(p.read(port: control, size: 2), 0x0005)
        XCTAssertEqual(p.read(port: control, size: 1), 0x05)
        XCTAssertEqual(p.read(port: control + 1, size: 1), 0x00)
        XCTAssertEqual(p.read(port: control, size: 4), 0x0005, "bytes past PM1_CNT read 0")
    }

    /// Linux's acpi_hw_legacy_sleep: SLP_TYP first, then SLP_TYP | SLP_EN.
    func testS5ShutsDown() {
        let (p, _) = pm()
        let typ = UInt32(ACPILayout.sleepTypeS5) << 10
        proceeds(p.write(port: control, size: 2, value: typ))
        XCTAssertEqual(systemEvent(p.write(port: control, size: 2, value: typ | 0x2000)), SystemEvent.shutdown)
        XCTAssertEqual(p.read(port: control, size: 2) & 0x2000, 0, "SLP_EN is not kept")
        XCTAssertEqual(SystemEvent.shutdown, 1, "KVM_SYSTEM_EVENT_SHUTDOWN")
    }

    func testS3SuspendsAndS4ShutsDown() {
        let (p, _) = pm()
        XCTAssertEqual(
            systemEvent(p.write(port: control, size: 2, value: UInt32(ACPILayout.sleepTypeS3) << 10 | 0x2000)),
            ACPIPowerManagement.suspendEvent)
        XCTAssertEqual(ACPIPowerManagement.suspendEvent, 5, "KVM_SYSTEM_EVENT_SUSPEND")
        XCTAssertEqual(
            systemEvent(p.write(port: control, size: 2, value: 2 << 10 | 0x2000)), SystemEvent.shutdown,
            "S4 (QEMU's s4_val 2)")
        proceeds(p.write(port: control, size: 2, value: 5 << 10 | 0x2000)) // no such state: nothing
        // SLP_EN in the high byte alone, SLP_TYP written before.
        proceeds(p.write(port: control + 1, size: 1, value: 0x00))
        XCTAssertEqual(systemEvent(p.write(port: control + 1, size: 1, value: 0x20)), SystemEvent.shutdown)
    }

    /// 3.579545 MHz, 24 bits, from CLOCK_MONOTONIC; 1, 2 and 4 byte reads.
    func testPMTimer() {
        let clock = Clock()
        let (p, _) = pm(clock)
        XCTAssertEqual(p.read(port: timer, size: 4), 0)
        clock.nanoseconds += 1_000_000_000
        XCTAssertEqual(p.read(port: timer, size: 4), 3_579_545)
        XCTAssertEqual(p.read(port: timer, size: 2), 3_579_545 & 0xFFFF)
        XCTAssertEqual(p.read(port: timer, size: 1), 3_579_545 & 0xFF)
        XCTAssertEqual(p.read(port: timer + 1, size: 1), (3_579_545 >> 8) & 0xFF)
        XCTAssertEqual(p.read(port: timer + 2, size: 1), 3_579_545 >> 16)
        XCTAssertEqual(p.read(port: timer + 3, size: 1), 0, "the top byte of a 24-bit timer")
        clock.nanoseconds += 4_000_000_000 // 5 s: 17_897_725 ticks, past 2^24
        XCTAssertEqual(p.read(port: timer, size: 4), 17_897_725 & 0xFF_FFFF)
        proceeds(p.write(port: timer, size: 4, value: 0))
        XCTAssertEqual(p.read(port: timer, size: 4), 17_897_725 & 0xFF_FFFF, "writes are ignored")
        // With the real clock it moves.
        let real = ACPIPowerManagement()
        let first = real.timerValue
        usleep(2000)
        XCTAssertNotEqual(real.timerValue, first)
    }

    /// PM1_STS: write 1 to clear; TMR_STS set at the start (QEMU's overflow
    /// time 0) and again when the timer's bit 23 flips.
    func testStatusAndTimerOverflow() {
        let clock = Clock()
        let (p, _) = pm(clock)
        XCTAssertEqual(p.read(port: event, size: 2), 0x0001)
        proceeds(p.write(port: event, size: 2, value: 0x0001))
        XCTAssertEqual(p.read(port: event, size: 2), 0x0000)
        clock.nanoseconds += 2_300_000_000 // 8_232_953 ticks, under 2^23
        XCTAssertEqual(p.read(port: event, size: 2), 0x0000)
        clock.nanoseconds += 100_000_000 // 8_590_908, over 2^23 = 8_388_608
        XCTAssertEqual(p.read(port: event, size: 2), 0x0001)
        proceeds(p.write(port: event, size: 2, value: 0x0000))
        XCTAssertEqual(p.read(port: event, size: 2), 0x0001, "writing 0 clears nothing")
        proceeds(p.write(port: event, size: 2, value: 0x0001))
        XCTAssertEqual(p.read(port: event, size: 2), 0x0000, "cleared until bit 23 flips back at 2^24")
    }

    func testEnableRegisterAndPowerButtonSCI() {
        let (p, line) = pm()
        proceeds(p.write(port: event, size: 2, value: 0xFFFF)) // clear everything, TMR_STS included
        p.pressPowerButton()
        XCTAssertEqual(p.read(port: event, size: 2), 0x0100)
        XCTAssertEqual(line.history, [], "PWRBTN_EN clear: no SCI")
        proceeds(p.write(port: event + 2, size: 2, value: 0x0100))
        XCTAssertEqual(p.read(port: event + 2, size: 2), 0x0100)
        XCTAssertEqual(p.read(port: event, size: 4), 0x0100_0100, "status and enable in one read")
        XCTAssertEqual(line.history, [true], "enabled: the SCI rises")
        proceeds(p.write(port: event + 1, size: 1, value: 0x01)) // clear PWRBTN_STS by its byte
        XCTAssertEqual(line.history, [true, false])
        XCTAssertEqual(p.read(port: event, size: 2), 0x0000)
        // A 4-byte write covers status (write 1 to clear) and enable together.
        p.pressPowerButton()
        XCTAssertEqual(line.history, [true, false, true])
        proceeds(p.write(port: event, size: 4, value: 0x0000_0100))
        XCTAssertEqual(line.history, [true, false, true, false])
        XCTAssertEqual(p.read(port: event + 2, size: 2), 0x0000)
    }

    func testGPEBlock() {
        let (p, line) = pm()
        XCTAssertEqual(p.read(port: gpe, size: 4), 0)
        proceeds(p.write(port: gpe + 2, size: 2, value: 0x0304))
        XCTAssertEqual(p.read(port: gpe + 2, size: 2), 0x0304)
        XCTAssertEqual(p.read(port: gpe + 3, size: 1), 0x03)
        p.lock.withLock { p.gpeStatus = 0x0006 } // as if GPEs 1 and 2 fired
        proceeds(p.write(port: gpe + 3, size: 1, value: 0x03)) // any access updates the SCI
        XCTAssertEqual(line.history, [true], "GPE 2 is enabled")
        proceeds(p.write(port: gpe, size: 1, value: 0x04))
        XCTAssertEqual(p.read(port: gpe, size: 2), 0x0002)
        XCTAssertEqual(line.history, [true, false])
    }

    func testSnapshotRoundTrip() throws {
        let clock = Clock()
        let (p, _) = pm(clock)
        proceeds(p.write(port: event, size: 2, value: 0x0001))
        proceeds(p.write(port: event + 2, size: 2, value: 0x0120))
        proceeds(p.write(port: control, size: 2, value: 0x0004))
        proceeds(p.write(port: gpe + 2, size: 2, value: 0x0001))
        p.pressPowerButton()
        clock.nanoseconds += 1_000_000_000
        let saved = p.saveSnapshotState()

        let later = Clock()
        later.nanoseconds = 99_000_000_000
        let (copy, copyLine) = pm(later)
        try copy.checkSnapshotState(saved)
        try copy.restoreSnapshotState(saved)
        XCTAssertEqual(copyLine.history, [true], "the restore drives the saved SCI level")
        XCTAssertEqual(copy.read(port: event, size: 4), 0x0120_0100)
        XCTAssertEqual(copy.read(port: control, size: 2), 0x0005)
        XCTAssertEqual(copy.read(port: gpe + 2, size: 2), 0x0001)
        XCTAssertEqual(copy.read(port: timer, size: 4), 3_579_545, "the timer continues from the saved count")
        later.nanoseconds += 1_000_000_000
        XCTAssertEqual(copy.read(port: timer, size: 4), 7_159_090)
        XCTAssertThrowsError(try copy.restoreSnapshotState(Array(saved.dropLast())))
    }

    /// A restore into a machine without the device creates it, SCI wired.
    func testTravelsInAMachineSnapshot() throws {
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm, irqchip: true)
        let device = ACPIPowerManagement()
        try device.attach(to: machine.bus)
        proceeds(device.write(port: event + 2, size: 2, value: 0x0100))
        let restored = try Machine(restoring: try machine.snapshot(), kvm: kvm)
        let copy = try XCTUnwrap(restored.bus.attachedPorts.lazy.compactMap { $0.device as? ACPIPowerManagement }.first)
        XCTAssertEqual(restored.bus.attachedPorts.filter { $0.device === copy }.map(\.ports), ACPIPowerManagement.ports)
        XCTAssertEqual(copy.read(port: event + 2, size: 2), 0x0100)
        XCTAssertNotNil(copy.interruptLine, "the SCI is wired to the restored irqchip")
    }
}
