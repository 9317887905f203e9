/// A port device whose state a snapshot saves and a restore or reset puts back.
/// Every device on a machine's bus must be one, or `Machine.snapshot()` refuses
/// (naming it) rather than drop state the guest may depend on.
public protocol SnapshotDevice: PortDevice {
    /// The device type's name in snapshot files, e.g. "serial16550".
    var snapshotKind: String { get }
    /// The device's state: registers, buffers, pending input.
    func saveSnapshotState() -> [UInt8]
    /// Puts back what `saveSnapshotState()` returned (a `SnapshotError` when the
    /// bytes are not valid for this device). Called after the irqchip is restored.
    func restoreSnapshotState(_ bytes: [UInt8]) throws
    /// Throws what `restoreSnapshotState` would throw, changing nothing: a reset
    /// checks every device before it changes anything. By default, nothing.
    func checkSnapshotState(_ bytes: [UInt8]) throws
}

extension SnapshotDevice {
    /// Nothing to check by default.
    public func checkSnapshotState(_ bytes: [UInt8]) throws {}
}

/// Devices a restore can create when the machine it builds does not have them.
enum SnapshotDevices {
    static let creatable: [String: @Sendable (Snapshot.DeviceState, Machine) throws -> SnapshotDevice] = [
        FwCfg.kind: { state, machine in try FwCfg(restoring: state.bytes, memory: machine.memory) },
        CMOS.kind: { state, machine in
            let cmos = CMOS(lowMemory: 0)
            cmos.interruptLine = machine.irqLine(CMOS.irq)
            try cmos.restoreSnapshotState(state.bytes)
            return cmos
        },
        PCIHost.kind: { state, _ in
            let host = PCIHost()
            for function in PCIHost.qemuPCBus0() { try host.add(function) }
            try host.restoreSnapshotState(state.bytes)
            return host
        },
        PCPorts.kind: { state, _ in
            let ports = PCPorts()
            try ports.restoreSnapshotState(state.bytes)
            return ports
        },
        ACPIPowerManagement.kind: { state, machine in
            let pm = ACPIPowerManagement()
            pm.interruptLine = machine.irqLine(ACPIPowerManagement.sciIRQ)
            try pm.restoreSnapshotState(state.bytes)
            return pm
        },
        I8042.kind: { state, machine in
            let controller = I8042()
            controller.interruptLine = machine.irqLines()
            try controller.restoreSnapshotState(state.bytes)
            return controller
        },
    ]

    /// The kinds `Machine` attaches itself.
    static let builtIn: Set<String> = [Serial16550.kind, HostCall.kind, DebugExit.kind]
}

// MARK: - Serial16550

extension Serial16550: SnapshotDevice {
    static let kind = "serial16550"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { Serial16550.kind }

    /// Registers, interrupt state, input not read yet, and — with a `.buffer`
    /// sink — the output so far, so a restored machine's `output` continues it.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        for r in [ier, lcr, mcr, scr, fcr, dll, dlm] { w.u8(r) }
        input.locked {
            w.bool(thrInterruptPending)
            w.bool(lineLevel)
            w.blob(input.unread)
        }
        w.u64(UInt64(bytesWritten))
        if case .buffer = sink {
            w.bool(true)
            w.blob(output)
        } else {
            w.bool(false)
        }
        return w.bytes
    }

    private struct Decoded {
        var regs: [UInt8], thr: Bool, level: Bool, unread: [UInt8], written: UInt64, log: [UInt8]?
    }

    private static func decode(_ bytes: [UInt8]) throws -> Decoded {
        var r = SnapshotReader(bytes, what: "serial16550 state")
        let regs = try (0..<7).map { _ in try r.u8() }
        let thr = try r.bool()
        let level = try r.bool()
        let unread = try r.blob()
        let written = try r.u64()
        let log = try r.bool() ? try r.blob() : nil
        try r.expectEnd()
        return Decoded(regs: regs, thr: thr, level: level, unread: unread, written: written, log: log)
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try Serial16550.decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        let d = try Serial16550.decode(bytes)
        let (regs, thr, level, unread, written, log) = (d.regs, d.thr, d.level, d.unread, d.written, d.log)
        (ier, lcr, mcr, scr, fcr, dll, dlm) = (regs[0], regs[1], regs[2], regs[3], regs[4], regs[5], regs[6])
        bytesWritten = Int(truncatingIfNeeded: written)
        if case .buffer = sink { output = log ?? [] }
        input.locked {
            input.replaceUnread(unread)
            thrInterruptPending = thr
            lineLevel = level
        }
        // KVM's record of the line's level is not in the irqchip state: drive it.
        interruptLine?(level)
    }
}

// MARK: - HostCall

extension HostCall: SnapshotDevice {
    static let kind = "hostcall"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { HostCall.kind }

    /// The facts reported so far, so a restored machine's `facts` continue them.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        w.u64(UInt64(facts.count))
        for f in facts {
            w.string(f.key)
            w.u64(f.value)
        }
        return w.bytes
    }

    private static func decode(_ bytes: [UInt8]) throws -> [Fact] {
        var r = SnapshotReader(bytes, what: "hostcall state")
        var restored: [Fact] = []
        for _ in 0..<(try r.count(unit: 16)) { restored.append(Fact(key: try r.string(), value: try r.u64())) }
        try r.expectEnd()
        return restored
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try HostCall.decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        facts = try HostCall.decode(bytes)
    }
}

// MARK: - DebugExit

extension DebugExit: SnapshotDevice {
    static let kind = "isa-debug-exit"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { DebugExit.kind }
    /// `SnapshotDevice`: the device's state.
    public func saveSnapshotState() -> [UInt8] { [] }
    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws { try checkSnapshotState(bytes) }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws {
        guard bytes.isEmpty else {
            throw SnapshotError(.corrupt, "corrupt: isa-debug-exit has no state, the file gives \(bytes.count) bytes")
        }
    }
}

// MARK: - fw_cfg

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

// MARK: - CMOS

extension CMOS: SnapshotDevice {
    static let kind = "cmos"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { CMOS.kind }

    /// The 128 bytes (register C with the RTC's events up to now), the
    /// selected index, how far the guest set the clock from the host's (the
    /// clock itself follows the host's, as on QEMU), and IRQ 8's level.
    public func saveSnapshotState() -> [UInt8] {
        var cells = bytes
        let rtcState = rtc.saved()
        cells[Int(Register.c)] = rtcState.flags
        var w = SnapshotWriter()
        w.blob(cells)
        w.u8(index)
        w.u64(UInt64(bitPattern: offset))
        w.bool(rtcState.level)
        return w.bytes
    }

    private static func decode(_ bytes: [UInt8]) throws -> (bytes: [UInt8], index: UInt8, offset: Int64, level: Bool) {
        var r = SnapshotReader(bytes, what: "cmos state")
        let cells = try r.blob()
        guard cells.count == 128 else { throw SnapshotError(.corrupt, "cmos state has \(cells.count) bytes, not 128") }
        let index = try r.u8()
        let offset = Int64(bitPattern: try r.u64())
        // Snapshots from before the RTC raised interrupts end here: the line was low.
        let level = r.isAtEnd ? false : try r.bool()
        try r.expectEnd()
        return (cells, index, offset, level)
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try CMOS.decode(bytes) }

    /// Puts the registers back; the periodic interrupt counts its ticks again
    /// from the restore.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        let d = try CMOS.decode(bytes)
        (self.bytes, index, offset) = (d.bytes, d.index, d.offset)
        let flags = self.bytes[Int(Register.c)]
        self.bytes[Int(Register.c)] = 0 // register C lives in `rtc`
        rtc.restore(settings: rtcSettings, flags: flags, level: d.level)
    }
}

// MARK: - PC ports 0x80 and 0x92

extension PCPorts: SnapshotDevice {
    static let kind = "pc-ports"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { PCPorts.kind }

    /// `SnapshotDevice`: the device's state.
    public func saveSnapshotState() -> [UInt8] {
        var w = SnapshotWriter()
        w.u8(systemControl)
        return w.bytes
    }

    private static func decode(_ bytes: [UInt8]) throws -> UInt8 {
        var r = SnapshotReader(bytes, what: "pc-ports state")
        let value = try r.u8()
        try r.expectEnd()
        return value
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try PCPorts.decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        systemControl = try PCPorts.decode(bytes)
    }
}

// MARK: - ACPI power management

extension ACPIPowerManagement: SnapshotDevice {
    static let kind = "acpi-pm"
    /// `SnapshotDevice`: the device type's name in snapshot files.
    public var snapshotKind: String { ACPIPowerManagement.kind }

    /// The registers, the SCI's level, and the PM timer's count, which a
    /// restore continues from (as QEMU's virtual clock does).
    public func saveSnapshotState() -> [UInt8] {
        lock.withLock {
            var w = SnapshotWriter()
            for r in [currentStatus, enable, control, gpeStatus, gpeEnable] { w.u16(r) }
            w.bool(sciLevel)
            w.u64(ticks)
            w.u64(overflowTick)
            return w.bytes
        }
    }

    private struct Decoded {
        var registers: [UInt16], level: Bool, ticks: UInt64, overflowTick: UInt64
    }

    private static func decode(_ bytes: [UInt8]) throws -> Decoded {
        var r = SnapshotReader(bytes, what: "acpi-pm state")
        let registers = try (0..<5).map { _ in try r.u16() }
        let d = Decoded(registers: registers, level: try r.bool(), ticks: try r.u64(), overflowTick: try r.u64())
        try r.expectEnd()
        return d
    }

    /// `SnapshotDevice`: throws what `restoreSnapshotState(_:)` would, changing nothing.
    public func checkSnapshotState(_ bytes: [UInt8]) throws { _ = try ACPIPowerManagement.decode(bytes) }

    /// `SnapshotDevice`: puts back what `saveSnapshotState()` returned.
    public func restoreSnapshotState(_ bytes: [UInt8]) throws {
        let d = try ACPIPowerManagement.decode(bytes)
        lock.withLock {
            (status, enable, control, gpeStatus, gpeEnable) = (
                d.registers[0], d.registers[1], d.registers[2], d.registers[3], d.registers[4]
            )
            clockBase = clock()
            tickBase = d.ticks
            overflowTick = d.overflowTick
            sciLevel = d.level
            // KVM's record of the line's level is not in the irqchip state: drive it.
            interruptLine?(d.level)
        }
    }
}

// MARK: - i8042

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
