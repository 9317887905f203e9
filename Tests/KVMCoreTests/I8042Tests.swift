import XCTest

@testable import KVMCore

/// The i8042 keyboard controller and its PS/2 keyboard and mouse, without KVM,
/// driven as Linux's i8042, atkbd and psmouse drivers drive them.
final class I8042Tests: XCTestCase {
    // @unchecked: the device drives the lines on the test's thread (no vCPU runs).
    final class Lines: @unchecked Sendable {
        var history: [String] = []
    }

    func controller(_ state: I8042.InitialState = .afterSeaBIOS) -> (I8042, Lines) {
        let c = I8042(state: state)
        let lines = Lines()
        c.interruptLine = { irq, level in lines.history.append("\(irq)\(level ? "+" : "-")") }
        return (c, lines)
    }

    func status(_ c: I8042) -> UInt8 { UInt8(truncatingIfNeeded: c.read(port: 0x64, size: 1)) }
    func data(_ c: I8042) -> UInt8 { UInt8(truncatingIfNeeded: c.read(port: 0x60, size: 1)) }

    @discardableResult
    func command(_ c: I8042, _ byte: UInt8, file: StaticString = #filePath, line: UInt = #line) -> I8042 {
        guard case .proceed = c.write(port: 0x64, size: 1, value: UInt32(byte)) else {
            XCTFail("command \(hex(byte)) stopped the run", file: file, line: line)
            return c
        }
        return c
    }

    func send(_ c: I8042, _ byte: UInt8, file: StaticString = #filePath, line: UInt = #line) {
        guard case .proceed = c.write(port: 0x60, size: 1, value: UInt32(byte)) else {
            return XCTFail("data \(hex(byte)) stopped the run", file: file, line: line)
        }
    }

    /// Reads every byte the output buffer has, as i8042_flush does, with the
    /// status each came with.
    func drain(_ c: I8042) -> [(byte: UInt8, status: UInt8)] {
        var out: [(UInt8, UInt8)] = []
        while status(c) & 0x01 != 0, out.count < 32 {
            let s = status(c)
            out.append((data(c), s))
        }
        return out
    }

    func bytes(_ c: I8042) -> [UInt8] { drain(c).map(\.byte) }

    func resets(_ action: DeviceAction) -> Bool {
        guard case .stop(.systemEvent(let type, let flags)) = action else { return false }
        return type == PCPorts.resetEvent && flags == 0
    }

    func testStateAfterSeaBIOS() {
        let (c, lines) = controller()
        XCTAssertEqual(status(c), 0x1C, "system flag, command, unlocked; nothing to read")
        command(c, 0x20)
        XCTAssertEqual(status(c), 0x1D)
        XCTAssertEqual(data(c), 0x61, "keyboard interrupt, aux disabled, translation")
        XCTAssertEqual(status(c), 0x1C)
        XCTAssertEqual(lines.history, ["1+", "1-"], "a controller reply raises IRQ 1 when enabled")
        XCTAssertEqual(data(c), 0x61, "with OBF clear 0x60 gives the last byte again")
        XCTAssertEqual(c.read(port: 0x64, size: 2), 0xFFFF_FF1C, "a wide access: its first byte")
    }

    func testSelfTestSetsTheSystemFlag() {
        let (c, _) = controller(.powerOn)
        XCTAssertEqual(status(c), 0x18)
        command(c, 0x20)
        XCTAssertEqual(data(c), 0x03, "QEMU's reset command byte")
        command(c, 0xAA)
        XCTAssertEqual(status(c), 0x1D)
        XCTAssertEqual(data(c), 0x55)
        XCTAssertEqual(status(c), 0x1C)
        command(c, 0xAB)
        XCTAssertEqual(bytes(c), [0x00], "keyboard interface test")
        command(c, 0xA9)
        XCTAssertEqual(bytes(c), [0x00], "aux interface test")
        command(c, 0xC0)
        XCTAssertEqual(bytes(c), [0x80], "input port")
        command(c, 0xD0)
        XCTAssertEqual(bytes(c), [0xCF], "output port: reset, A20, 0xcc; OBF was clear when it was read")
        command(c, 0xDD)
        command(c, 0xD0)
        XCTAssertEqual(bytes(c), [0xCD], "A20 off")
    }

    /// Linux's i8042_controller_init and i8042_check_aux, step by step.
    func testLinuxProbe() {
        let (c, lines) = controller()
        XCTAssertEqual(drain(c).count, 0, "i8042_flush: nothing to flush")
        // Read the CTR twice (they must agree), disable both ports, write it back.
        command(c, 0x20)
        let ctr = data(c)
        command(c, 0x20)
        XCTAssertEqual(data(c), ctr)
        command(c, 0x60)
        send(c, (ctr | 0x30) & ~0x03)
        command(c, 0x20)
        XCTAssertEqual(data(c), 0x70)
        XCTAssertEqual(status(c) & 0x10, 0x10, "keylock off: no 'Keylock active' warning")
        XCTAssertEqual(lines.history, ["1+", "1-", "1+", "1-"], "the first two CTR reads, keyboard interrupt still on")
        lines.history.removeAll()
        // AUX_LOOP: the byte comes back as aux data.
        command(c, 0xD3)
        send(c, 0x5A)
        XCTAssertEqual(status(c), 0x3D, "OBF and MOUSE_OBF")
        XCTAssertEqual(data(c), 0x5A)
        // i8042_toggle_aux: 0xa7/0xa8 show in the CTR at once.
        command(c, 0xA7)
        command(c, 0x20)
        XCTAssertEqual(data(c) & 0x20, 0x20)
        command(c, 0xA8)
        command(c, 0x20)
        XCTAssertEqual(data(c) & 0x20, 0x00)
        XCTAssertEqual(lines.history, [], "interrupts still off in the CTR")
        // The AUX IRQ test: enable aux interrupts, loop 0xa5, IRQ 12 must come.
        command(c, 0x60)
        send(c, 0x52) // AUXINT, translation; keyboard disabled
        command(c, 0xD3)
        send(c, 0xA5)
        XCTAssertEqual(lines.history, ["12+"])
        XCTAssertEqual(status(c) & 0x21, 0x21)
        XCTAssertEqual(data(c), 0xA5)
        XCTAssertEqual(lines.history, ["12+", "12-"])
        XCTAssertEqual(status(c) & 0x01, 0)
    }

    /// atkbd's probe: GETID answered ACK, 0xab, 0x41 (translated), each byte
    /// its own IRQ 1 edge.
    func testKeyboardIdentifyWithInterrupts() {
        let (c, lines) = controller()
        send(c, 0xF2)
        XCTAssertEqual(lines.history, ["1+"])
        XCTAssertEqual(data(c), 0xFA)
        XCTAssertEqual(lines.history, ["1+", "1-", "1+"], "the next byte is a new edge")
        XCTAssertEqual(data(c), 0xAB)
        XCTAssertEqual(data(c), 0x41)
        XCTAssertEqual(lines.history, ["1+", "1-", "1+", "1-", "1+", "1-"])
        XCTAssertEqual(status(c) & 0x01, 0)
        // Untranslated, the second ID byte is 0x83.
        command(c, 0x60)
        send(c, 0x21)
        send(c, 0xF2)
        XCTAssertEqual(bytes(c), [0xFA, 0xAB, 0x83])
    }

    func testKeyboardCommands() {
        let (c, _) = controller()
        send(c, 0xFF)
        XCTAssertEqual(bytes(c), [0xFA, 0xAA], "reset: ACK, self-test passed")
        send(c, 0xED)
        XCTAssertEqual(bytes(c), [0xFA])
        send(c, 0x07)
        XCTAssertEqual(bytes(c), [0xFA], "LEDs")
        XCTAssertEqual(c.keyboard.leds, 0x07)
        send(c, 0xF0)
        send(c, 0x00)
        XCTAssertEqual(bytes(c), [0xFA, 0x41], "get scancode set: 2, as translated")
        send(c, 0xF3)
        send(c, 0x20)
        XCTAssertEqual(bytes(c), [0xFA], "typematic rate")
        send(c, 0xF5)
        XCTAssertEqual(bytes(c), [0xFA])
        XCTAssertFalse(c.keyboard.scanning)
        send(c, 0xF4)
        XCTAssertEqual(bytes(c), [0xFA])
        XCTAssertTrue(c.keyboard.scanning)
        send(c, 0xEE)
        XCTAssertEqual(bytes(c), [0xEE], "echo")
        send(c, 0x01)
        XCTAssertEqual(bytes(c), [0xFE], "unknown: resend")
        // A new command drops replies not read yet (QEMU's ps2_cqueue_reset).
        send(c, 0xF2)
        XCTAssertEqual(data(c), 0xFA)
        send(c, 0xF4)
        XCTAssertEqual(bytes(c), [0xFA], "0xab and 0x41 dropped: only the new reply")
    }

    /// psmouse's probe through 0xd4: reset, identify, status request.
    func testMouseCommands() {
        let (c, lines) = controller()
        command(c, 0x60)
        send(c, 0x47) // both interrupts, both ports enabled
        command(c, 0xD4)
        send(c, 0xFF)
        let reset = drain(c)
        XCTAssertEqual(reset.map(\.byte), [0xFA, 0xAA, 0x00])
        XCTAssertTrue(reset.allSatisfy { $0.status & 0x20 != 0 }, "aux data")
        XCTAssertEqual(lines.history.filter { $0.hasPrefix("12") }, ["12+", "12-", "12+", "12-", "12+", "12-"])
        command(c, 0xD4)
        send(c, 0xF2)
        XCTAssertEqual(bytes(c), [0xFA, 0x00], "a plain PS/2 mouse")
        // IntelliMouse knock: sample rates 200, 100, 80.
        for rate: UInt8 in [200, 100, 80] {
            command(c, 0xD4)
            send(c, 0xF3)
            command(c, 0xD4)
            send(c, rate)
        }
        XCTAssertEqual(bytes(c), [0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA])
        command(c, 0xD4)
        send(c, 0xF2)
        XCTAssertEqual(bytes(c), [0xFA, 0x03])
        command(c, 0xD4)
        send(c, 0xF4)
        command(c, 0xD4)
        send(c, 0xE9)
        XCTAssertEqual(bytes(c), [0xFA, 0xFA, 0x20, 0x02, 80], "enabled, the reset's resolution, the last sample rate")
        command(c, 0xD4)
        send(c, 0xE1)
        XCTAssertEqual(bytes(c), [], "a command QEMU's mouse does not know gets no reply")
    }

    /// A port disabled in the command byte holds its data back until enabled.
    func testDisabledPortHoldsItsData() {
        let (c, _) = controller()
        command(c, 0xD4)
        send(c, 0xE9) // four bytes queued
        XCTAssertEqual(data(c), 0xFA)
        command(c, 0xA7) // the next byte is already in the buffer
        XCTAssertEqual(data(c), 0x00)
        XCTAssertEqual(status(c) & 0x01, 0, "held back")
        command(c, 0x20)
        XCTAssertEqual(bytes(c), [0x61], "controller replies still come (0xd4 enabled the port, 0xa7 disabled it)")
        command(c, 0xA8)
        XCTAssertEqual(bytes(c), [0x00, 0x00])
    }

    func testResetLine() {
        let (c, _) = controller()
        XCTAssertTrue(resets(c.write(port: 0x64, size: 1, value: 0xFE)), "pulse the reset line")
        XCTAssertTrue(resets(c.write(port: 0x64, size: 1, value: 0xF0)), "pulse bits 3–0: bit 0 included")
        guard case .proceed = c.write(port: 0x64, size: 1, value: 0xFF) else { return XCTFail("0xff pulses nothing") }
        guard case .proceed = c.write(port: 0x64, size: 1, value: 0xD1) else { return XCTFail() }
        guard case .proceed = c.write(port: 0x60, size: 1, value: 0x03) else {
            return XCTFail("output port, reset bit set")
        }
        command(c, 0xD1)
        XCTAssertTrue(resets(c.write(port: 0x60, size: 1, value: 0x02)), "output port with bit 0 clear")
    }

    func testStatusNeverShowsInputFull() {
        let (c, _) = controller()
        for byte: UInt8 in [0x20, 0xAA, 0xAD, 0xAE, 0xA7, 0xA8, 0xD0] {
            command(c, byte)
            XCTAssertEqual(status(c) & 0x02, 0)
            _ = bytes(c)
        }
    }

    func testAttach() throws {
        let bus = IOBus()
        try I8042().attach(to: bus)
        XCTAssertEqual(bus.attachedPorts.map(\.ports), [0x60...0x60, 0x64...0x64])
    }

    func testSnapshotRoundTrip() throws {
        let (c, _) = controller()
        command(c, 0x60)
        send(c, 0x03) // interrupts on, both ports, no translation
        send(c, 0xF2) // three keyboard bytes
        command(c, 0xD4)
        send(c, 0xF2) // two mouse bytes
        XCTAssertEqual(data(c), 0xFA, "the keyboard's, then the mouse's byte moves in")
        command(c, 0xD4) // a half-done command
        let saved = c.saveSnapshotState()

        let (copy, copyLines) = controller(.powerOn)
        try copy.checkSnapshotState(saved)
        try copy.restoreSnapshotState(saved)
        XCTAssertEqual(copyLines.history, ["1-", "12+"], "the restore drives both saved levels")
        XCTAssertEqual(copy.saveSnapshotState(), saved)
        send(copy, 0xF4) // goes to the mouse: the 0xd4 carried over
        XCTAssertEqual(bytes(copy), [0xFA, 0xAB, 0x00, 0x83, 0xFA], "the ports take turns, as on QEMU")
        XCTAssertThrowsError(try copy.restoreSnapshotState(saved + [0]))
    }

    /// A restore into a machine without the device creates it, IRQs wired.
    func testTravelsInAMachineSnapshot() throws {
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm, irqchip: true)
        let (c, _) = controller()
        try c.attach(to: machine.bus)
        command(c, 0xA8)
        send(c, 0xF2)
        let restored = try Machine(restoring: try machine.snapshot(), kvm: kvm)
        let copy = try XCTUnwrap(restored.bus.attachedPorts.lazy.compactMap { $0.device as? I8042 }.first)
        XCTAssertNotNil(copy.interruptLine, "IRQ 1 and 12 are wired to the restored irqchip")
        XCTAssertEqual(bytes(copy), [0xFA, 0xAB, 0x41])
        command(copy, 0x20)
        XCTAssertEqual(bytes(copy), [0x41])
    }
}
