/// The PC's i8042 keyboard controller (port 0x60 data, 0x64 status and
/// command) with a PS/2 keyboard and mouse that nobody types on or moves, as
/// QEMU's hw/input/pckbd.c (with its `extended-state`, the default) and ps2.c
/// have them, so Linux's i8042, atkbd and psmouse drivers probe at once and
/// find what they find under QEMU:
///
/// - status (read 0x64): OBF (0x01) while a byte waits at 0x60, with
///   MOUSE_OBF (0x20) when it is the aux port's; IBF never (commands complete
///   at once); the system flag (0x04) after a self-test; 0x08 and 0x10
///   (keyboard not locked) always, as in QEMU.
/// - controller commands (write 0x64, `kbd_write_command`): 0x20/0x60 read and
///   write the command byte; 0xaa self-test (→ 0x55, sets the system flag);
///   0xab and 0xa9 interface tests (→ 0x00); 0xad/0xae and 0xa7/0xa8 disable and
///   enable the keyboard and aux ports (command byte bits 4 and 5); 0xc0 input
///   port (→ 0x80); 0xd0/0xd1 output port read and write; 0xd2/0xd3 write the
///   output buffer as from the keyboard or aux port (Linux's AUX_LOOP test);
///   0xd4 sends the next byte to the mouse; 0xdd/0xdf A20 off and on (kept in
///   the output port only: KVM does not gate A20); 0xf0–0xff pulse output
///   port bits — pulsing bit 0 (0xfe) resets the machine, and so does an
///   output port write with bit 0 clear: the run stops with
///   `.systemEvent(type: PCPorts.resetEvent, flags: 0)`, like port 0x92.
///   Others are ignored.
/// - data written to 0x60 goes to the keyboard (`PS2Keyboard`: every command
///   acknowledged 0xfa, reset 0xff → 0xfa 0xaa, identify → 0xfa 0xab 0x41),
///   or after 0x60/0xd1–0xd4 to that command.
/// - which byte 0x60 gives next: a controller reply first, then the
///   keyboard's, then the mouse's; a port disabled in the command byte holds
///   its data back (`kbd_update_irq`, `kbd_pending`). With OBF clear, 0x60
///   gives the last byte again.
/// - interrupts (`interruptLine`): IRQ 1 is up while the keyboard's or a
///   controller byte is in the output buffer and the command byte enables it
///   (bit 0, keyboard port enabled); IRQ 12 while the mouse's or a 0xd3 byte is
///   and bit 1 enables it; reading 0x60 lowers the line before the next byte
///   raises it again, an edge per byte (`kbd_update_irq_lines`).
///
/// Accesses are byte-wide: a wider one acts on its first byte, and the bytes
/// above read 0xff.
public final class I8042: PortDevice {
    /// The data port.
    public static let dataPort: UInt16 = 0x60
    /// The status (read) and command (write) port.
    public static let commandPort: UInt16 = 0x64
    /// The keyboard's ISA interrupt.
    public static let keyboardIRQ: UInt32 = 1
    /// The mouse's ISA interrupt.
    public static let mouseIRQ: UInt32 = 12

    /// Status register bits.
    public enum Status {
        /// A byte waits in the output buffer.
        public static let outputFull: UInt8 = 0x01
        /// The controller has not taken the last byte written (always clear here).
        public static let inputFull: UInt8 = 0x02
        /// The system flag (set after a successful self-test).
        public static let system: UInt8 = 0x04
        /// The last write went to the command port.
        public static let command: UInt8 = 0x08
        /// The keyboard is not inhibited.
        public static let unlocked: UInt8 = 0x10
        /// The waiting byte is from the mouse.
        public static let mouseOutputFull: UInt8 = 0x20
    }

    /// Command byte ("mode") bits.
    public enum Mode {
        /// Interrupt on keyboard data (IRQ 1).
        public static let keyboardInterrupt: UInt8 = 0x01
        /// Interrupt on mouse data (IRQ 12).
        public static let mouseInterrupt: UInt8 = 0x02
        /// The system flag.
        public static let system: UInt8 = 0x04
        /// The keyboard port is disabled.
        public static let keyboardDisabled: UInt8 = 0x10
        /// The mouse port is disabled.
        public static let mouseDisabled: UInt8 = 0x20
        /// Scan codes are translated to set 1.
        public static let translate: UInt8 = 0x40
    }

    /// Where the controller starts.
    public enum InitialState {
        /// QEMU's reset state (`kbd_reset`): command byte 0x03, no self-test yet.
        case powerOn
        /// As SeaBIOS leaves it for the OS (`ps2_keyboard_setup`): self-tested,
        /// command byte 0x61 (keyboard interrupt, aux port disabled,
        /// translation), the keyboard reset, in set 2 and scanning — what a
        /// kernel QEMU boots with `-kernel` finds.
        case afterSeaBIOS
    }

    /// Raises (true) or lowers IRQ `irq` (1 or 12); nil without an irqchip.
    public var interruptLine: ((UInt32, Bool) -> Void)?

    // The state snapshots save (the SnapshotDevice conformance below).
    private var status: UInt8
    private var mode: UInt8
    /// Output port P2: reset (bit 0), A20 (bit 1), 0xcc, and the OBF bits.
    private var outputPort: UInt8 = 0xCF
    /// The controller command whose data byte comes next at 0x60 (QEMU's write_cmd); 0: none.
    private var pendingCommand: UInt8 = 0
    /// Who has a byte for the output buffer (`Pending` bits).
    private var pending: UInt8 = 0
    /// The controller's own reply (QEMU's cbdata).
    private var controllerByte: UInt8 = 0
    /// Whose byte the output buffer holds (`Source`), valid while OBF is set.
    private var source: UInt8 = 0
    /// The last byte read from 0x60 (QEMU's obdata).
    var outputByte: UInt8 = 0
    var keyboard = PS2Keyboard()
    var mouse = PS2Mouse()
    var keyboardLevel = false
    var mouseLevel = false

    /// QEMU's KBD_PENDING_*: a port's bit is its command byte disable bit.
    enum Pending {
        static let controllerKeyboard: UInt8 = 0x04
        static let controllerMouse: UInt8 = 0x08
        static let keyboard: UInt8 = Mode.keyboardDisabled
        static let mouse: UInt8 = Mode.mouseDisabled
    }

    /// QEMU's KBD_OBSRC_*.
    enum Source {
        static let keyboard: UInt8 = 0x01
        static let mouse: UInt8 = 0x02
        static let controller: UInt8 = 0x04
    }

    /// A controller as at power-on or as SeaBIOS leaves it.
    public init(state: InitialState = .afterSeaBIOS) {
        switch state {
        case .powerOn:
            status = Status.command | Status.unlocked
            mode = Mode.keyboardInterrupt | Mode.mouseInterrupt
            keyboard.translated = false
        case .afterSeaBIOS:
            status = Status.system | Status.command | Status.unlocked
            mode = Mode.keyboardInterrupt | Mode.mouseDisabled | Mode.translate
            keyboard.translated = true
        }
    }

    /// Attaches ports 0x60 and 0x64 to `bus`.
    public func attach(to bus: IOBus) throws {
        try bus.attach(self, ports: I8042.dataPort...I8042.dataPort)
        try bus.attach(self, ports: I8042.commandPort...I8042.commandPort)
    }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        let byte = port == I8042.commandPort ? status : readData()
        return UInt32(byte) | 0xFFFF_FF00
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        let byte = UInt8(truncatingIfNeeded: value)
        return port == I8042.commandPort ? command(byte) : writeData(byte)
    }

    // MARK: Commands

    /// `kbd_write_command`.
    private func command(_ value: UInt8) -> DeviceAction {
        var value = value
        if value & 0xF0 == 0xF0 {
            // Pulse output port bits 3–0 low; only bit 0, the CPU reset, does anything.
            value = value & 1 == 0 ? 0xFE : 0xFF
        }
        switch value {
        case 0x20: queueControllerByte(mode, mouse: false)
        case 0x60, 0xD1, 0xD2, 0xD3, 0xD4: pendingCommand = value
        case 0xA7: mode |= Mode.mouseDisabled
        case 0xA8:
            mode &= ~Mode.mouseDisabled
            updateIfIdle()
        case 0xA9, 0xAB: queueControllerByte(0x00, mouse: false) // interface tests: no error
        case 0xAA:
            status |= Status.system
            queueControllerByte(0x55, mouse: false)
        case 0xAD: mode |= Mode.keyboardDisabled
        case 0xAE:
            mode &= ~Mode.keyboardDisabled
            updateIfIdle()
        case 0xC0: queueControllerByte(0x80, mouse: false)
        case 0xD0: queueControllerByte(outputPort, mouse: false)
        case 0xDD: outputPort &= ~0x02
        case 0xDF: outputPort |= 0x02
        case 0xFE: return .stop(.systemEvent(type: PCPorts.resetEvent, flags: 0))
        default: break
        }
        return .proceed
    }

    /// `kbd_write_data`.
    private func writeData(_ value: UInt8) -> DeviceAction {
        let command = pendingCommand
        pendingCommand = 0
        switch command {
        case 0:
            keyboard.receive(value)
            if !keyboard.queue.isEmpty { pending |= Pending.keyboard }
            // Sending data to the keyboard enables its port again.
            mode &= ~Mode.keyboardDisabled
            updateIfIdle()
        case 0x60:
            mode = value
            keyboard.translated = value & Mode.translate != 0
            updateLines()
            updateIfIdle()
        case 0xD1:
            outputPort = value
            if value & 1 == 0 { return .stop(.systemEvent(type: PCPorts.resetEvent, flags: 0)) }
        case 0xD2: queueControllerByte(value, mouse: false)
        case 0xD3: queueControllerByte(value, mouse: true)
        case 0xD4:
            mouse.receive(value)
            if !mouse.queue.isEmpty { pending |= Pending.mouse }
            mode &= ~Mode.mouseDisabled
            updateIfIdle()
        default:
            break
        }
        return .proceed
    }

    // MARK: Output buffer

    /// `kbd_read_data`: the byte in the output buffer, the next one moving in.
    private func readData() -> UInt8 {
        guard status & Status.outputFull != 0 else { return outputByte }
        clearOutput()
        switch source {
        case Source.keyboard:
            if !keyboard.queue.isEmpty {
                outputByte = keyboard.next()
                portDrained(Pending.keyboard, empty: keyboard.queue.isEmpty)
            }
        case Source.mouse:
            if !mouse.queue.isEmpty {
                outputByte = mouse.next()
                portDrained(Pending.mouse, empty: mouse.queue.isEmpty)
            }
        default:
            outputByte = controllerByte
            pending &= ~(Pending.controllerKeyboard | Pending.controllerMouse)
            if effectivePending != 0 { updateOutput() }
        }
        return outputByte
    }

    /// After a port's byte was taken: its line drops and, with more queued,
    /// rises again (ps2_read_data's lower then raise).
    private func portDrained(_ bit: UInt8, empty: Bool) {
        pending &= ~bit
        updateIfIdle()
        if !empty {
            pending |= bit
            updateIfIdle()
        }
    }

    /// `kbd_queue`: the controller's reply, ahead of both ports'.
    private func queueControllerByte(_ byte: UInt8, mouse: Bool) {
        controllerByte = byte
        pending &= ~(Pending.controllerKeyboard | Pending.controllerMouse)
        pending |= mouse ? Pending.controllerMouse : Pending.controllerKeyboard
        updateIfIdle()
    }

    /// Pending data of ports the command byte has not disabled (`kbd_pending`).
    private var effectivePending: UInt8 {
        pending & ~(mode & (Pending.keyboard | Pending.mouse))
    }

    /// `kbd_safe_update_irq`: fills an empty output buffer.
    private func updateIfIdle() {
        guard status & Status.outputFull == 0, effectivePending != 0 else { return }
        updateOutput()
    }

    /// `kbd_update_irq`: the highest-priority pending byte's source and OBF bits.
    private func updateOutput() {
        let p = effectivePending
        status &= ~(Status.outputFull | Status.mouseOutputFull)
        outputPort &= ~0x30
        if p != 0 {
            status |= Status.outputFull
            outputPort |= 0x10
            if p & Pending.controllerKeyboard != 0 {
                source = Source.controller
            } else if p & Pending.controllerMouse != 0 {
                source = Source.controller
                status |= Status.mouseOutputFull
                outputPort |= 0x20
            } else if p & Pending.keyboard != 0 {
                source = Source.keyboard
            } else {
                source = Source.mouse
                status |= Status.mouseOutputFull
                outputPort |= 0x20
            }
        }
        updateLines()
    }

    /// `kbd_deassert_irq`.
    private func clearOutput() {
        status &= ~(Status.outputFull | Status.mouseOutputFull)
        outputPort &= ~0x30
        updateLines()
    }

    /// `kbd_update_irq_lines`: only changes reach the irqchip.
    private func updateLines() {
        var keyboardUp = false
        var mouseUp = false
        if status & Status.outputFull != 0 {
            if status & Status.mouseOutputFull != 0 {
                mouseUp = mode & Mode.mouseInterrupt != 0
            } else {
                keyboardUp = mode & Mode.keyboardInterrupt != 0 && mode & Mode.keyboardDisabled == 0
            }
        }
        if keyboardUp != keyboardLevel {
            keyboardLevel = keyboardUp
            interruptLine?(I8042.keyboardIRQ, keyboardUp)
        }
        if mouseUp != mouseLevel {
            mouseLevel = mouseUp
            interruptLine?(I8042.mouseIRQ, mouseUp)
        }
    }
}

// MARK: - Snapshot

extension I8042: SnapshotDevice {
    static let kind = "i8042"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { I8042.kind }

    /// The controller's registers and output buffer, both lines' levels, and
    /// the keyboard's and mouse's settings and unread replies.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        for r in [status, mode, outputPort, pendingCommand, pending, controllerByte, source, outputByte] { w.u8(r) }
        w.bool(keyboardLevel)
        w.bool(mouseLevel)
        w.blob(keyboard.queue)
        w.bool(keyboard.pendingCommand != nil)
        w.u8(keyboard.pendingCommand ?? 0)
        w.bool(keyboard.scanning)
        w.u8(keyboard.scancodeSet)
        w.bool(keyboard.translated)
        w.u8(keyboard.leds)
        w.blob(mouse.queue)
        w.bool(mouse.pendingCommand != nil)
        w.u8(mouse.pendingCommand ?? 0)
        for r in [mouse.status, mouse.resolution, mouse.sampleRate, mouse.type, mouse.detectState] { w.u8(r) }
        w.bool(mouse.wrap)
        return w.bytes
    }

    private struct Decoded {
        var registers: [UInt8], keyboardLevel: Bool, mouseLevel: Bool, keyboard: PS2Keyboard, mouse: PS2Mouse
    }

    private static func decode(_ bytes: [UInt8]) throws -> Decoded {
        var r = SnapshotReader(bytes, what: "i8042 state")
        let registers = try (0..<8).map { _ in try r.u8() }
        let keyboardLevel = try r.bool()
        let mouseLevel = try r.bool()
        var keyboard = PS2Keyboard()
        keyboard.queue = try r.blob()
        let keyboardCommand = try (r.bool(), r.u8())
        keyboard.pendingCommand = keyboardCommand.0 ? keyboardCommand.1 : nil
        keyboard.scanning = try r.bool()
        keyboard.scancodeSet = try r.u8()
        keyboard.translated = try r.bool()
        keyboard.leds = try r.u8()
        var mouse = PS2Mouse()
        mouse.queue = try r.blob()
        let mouseCommand = try (r.bool(), r.u8())
        mouse.pendingCommand = mouseCommand.0 ? mouseCommand.1 : nil
        (mouse.status, mouse.resolution, mouse.sampleRate, mouse.type, mouse.detectState) =
            (try r.u8(), try r.u8(), try r.u8(), try r.u8(), try r.u8())
        mouse.wrap = try r.bool()
        try r.expectEnd()
        guard keyboard.queue.count <= PS2Mouse.queueSize, mouse.queue.count <= PS2Mouse.queueSize else {
            throw SnapshotError(
                .corrupt,
                "corrupt: i8042 state has \(keyboard.queue.count) and \(mouse.queue.count) queued bytes, more than 16")
        }
        return Decoded(
            registers: registers, keyboardLevel: keyboardLevel, mouseLevel: mouseLevel, keyboard: keyboard, mouse: mouse
        )
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try I8042.decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        let d = try I8042.decode(bytes)
        let g = d.registers
        (status, mode, outputPort, pendingCommand, pending, controllerByte, source, outputByte) =
            (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7])
        (keyboard, mouse) = (d.keyboard, d.mouse)
        (keyboardLevel, mouseLevel) = (d.keyboardLevel, d.mouseLevel)
        // KVM's record of the lines' levels is not in the irqchip state: drive them.
        interruptLine?(I8042.keyboardIRQ, keyboardLevel)
        interruptLine?(I8042.mouseIRQ, mouseLevel)
    }
}
