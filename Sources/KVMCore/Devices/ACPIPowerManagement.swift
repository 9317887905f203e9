import Glibc

/// The ACPI fixed hardware of QEMU's `-M pc` (PIIX4 power management, QEMU's
/// hw/acpi/core.c and piix4.c, at the ports SeaBIOS gives it; `ACPILayout`):
///
/// - PM1a event block (`ACPILayout.pm1aEvent`, 4 bytes): PM1_STS (2 bytes,
///   write 1 to clear) and PM1_EN (2 bytes). TMR_STS (bit 0) is set each time
///   the PM timer's bit 23 changes (`acpi_pm1_evt_get_sts`; set from the start,
///   as QEMU's overflow time starts at 0); PWRBTN_STS (bit 8) by
///   `pressPowerButton()`.
/// - PM1a control block (`ACPILayout.pm1aControl`, 2 bytes): PM1_CNT, whose
///   SCI_EN (bit 0) always reads 1 — the FADT has no SMI_CMD, so the machine
///   is always in ACPI mode. Writing SLP_EN (bit 13) enters the sleep state of
///   SLP_TYP (bits 10–12), as `acpi_pm1_cnt_write` does:
///   `ACPILayout.sleepTypeS5` (soft off) stops the run with
///   `.systemEvent(type: SystemEvent.shutdown, flags: 0)`;
///   `ACPIPowerManagement.sleepTypeS4` also shuts down (QEMU's S4: the guest
///   has saved its image, QEMU powers off); `ACPILayout.sleepTypeS3` (suspend
///   to RAM) stops the run with `.systemEvent(type:
///   ACPIPowerManagement.suspendEvent, flags: 0)` — QEMU would hold the vCPUs
///   until a wakeup event and resume through the firmware's S3 path, which
///   kvmrun has neither of, so the run ends there, a reason apart from power
///   off. Other SLP_TYP values do nothing. SLP_EN reads 0.
/// - PM timer (`ACPILayout.pmTimer`, 4 bytes): 24 bits counting at 3.579545
///   MHz from CLOCK_MONOTONIC, from 0 when the device is made; reads of 1, 2
///   or 4 bytes; writes are ignored (`acpi_pm_tmr_read`).
/// - GPE0 block (`ACPILayout.gpe0`, 4 bytes): two status bytes (write 1 to
///   clear) and two enable bytes (`acpi_gpe_ioport_writeb`). Nothing here
///   sets a GPE (no hotplug).
///
/// Accesses are taken byte by byte, so any size and alignment works; bytes of
/// a block that hold no register read 0. The SCI (`ACPILayout.sciIRQ`, level)
/// is up while an enabled PM1 event (timer, global lock, power button, RTC)
/// or GPE is pending, as `acpi_update_sci` computes it; it is recomputed on
/// each access and event here (no thread: a timer overflow with TMR_EN set
/// raises it at the next access, where QEMU's timer would raise it at once —
/// ACPI OSes leave TMR_EN clear).
public final class ACPIPowerManagement: PortDevice {
    /// PM1_STS and PM1_EN bits.
    public enum Event {
        /// TMR_STS/TMR_EN: the PM timer's bit 23 changed.
        public static let timer: UInt16 = 1 << 0
        /// BM_STS: bus master activity.
        public static let busMaster: UInt16 = 1 << 4
        /// GBL_STS/GBL_EN: the global lock was released.
        public static let globalLock: UInt16 = 1 << 5
        /// PWRBTN_STS/PWRBTN_EN: the power button.
        public static let powerButton: UInt16 = 1 << 8
        /// SLPBTN_STS/SLPBTN_EN: the sleep button.
        public static let sleepButton: UInt16 = 1 << 9
        /// RTC_STS/RTC_EN: the RTC alarm.
        public static let rtc: UInt16 = 1 << 10
        /// WAK_STS: the system woke.
        public static let wake: UInt16 = 1 << 15
        /// The events that raise the SCI when enabled (QEMU's ACPI_BITMASK_PM1_COMMON_ENABLED).
        static let sciSources: UInt16 = timer | globalLock | powerButton | rtc
    }

    /// PM1_CNT bits.
    public enum Control {
        /// SCI_EN: events raise the SCI.
        public static let sciEnable: UInt16 = 1 << 0
        /// SLP_EN: enter the sleep state in SLP_TYP.
        public static let sleepEnable: UInt16 = 1 << 13
        static let sleepTypeShift: UInt16 = 10
    }

    /// The StopReason.systemEvent type of an S3 request: KVM_SYSTEM_EVENT_SUSPEND's
    /// value (5), the event KVM reports when a guest asks to suspend.
    public static let suspendEvent: UInt32 = 5
    /// SLP_TYP of S4, QEMU piix4's default `s4_val` (2).
    public static let sleepTypeS4: UInt8 = 2
    /// The port ranges to attach: PM1a event, PM1a control, PM timer, GPE0.
    public static let ports: [ClosedRange<UInt16>] = [
        ACPILayout.pm1aEvent...(ACPILayout.pm1aEvent + UInt16(ACPILayout.pm1aEventLength) - 1),
        ACPILayout.pm1aControl...(ACPILayout.pm1aControl + UInt16(ACPILayout.pm1aControlLength) - 1),
        ACPILayout.pmTimer...(ACPILayout.pmTimer + UInt16(ACPILayout.pmTimerLength) - 1),
        ACPILayout.gpe0...(ACPILayout.gpe0 + UInt16(ACPILayout.gpe0Length) - 1),
    ]
    /// The SCI's ISA interrupt.
    public static let sciIRQ = UInt32(ACPILayout.sciIRQ)

    /// Raises (true) or lowers the SCI; nil without an irqchip.
    public var interruptLine: ((Bool) -> Void)?

    // Guarded by `lock` (`pressPowerButton()` comes from other threads).
    // The state snapshots save (the SnapshotDevice conformance below).
    private var status: UInt16 = 0
    private var enable: UInt16 = 0
    /// PM1_CNT as written, SLP_EN dropped.
    private var control: UInt16 = 0
    var gpeStatus: UInt16 = 0 // internal: tests raise a GPE through it
    private var gpeEnable: UInt16 = 0
    private var sciLevel = false
    /// The timer tick at which TMR_STS is next set (QEMU's tmr.overflow_time).
    private var overflowTick: UInt64 = 0
    let lock = Lock() // internal: guards gpeStatus for the tests too

    /// The clock, monotonic nanoseconds (tests replace it).
    let clock: () -> UInt64
    /// The clock's reading at `tickBase` ticks; reads need no lock, and only a
    /// restore changes these.
    var clockBase: UInt64
    var tickBase: UInt64 = 0

    /// `clock`: monotonic nanoseconds, CLOCK_MONOTONIC by default.
    public init(clock: (() -> UInt64)? = nil) {
        self.clock = clock ?? { monotonicNanoseconds() }
        clockBase = self.clock()
    }

    /// Attaches the four register blocks to `bus`.
    public func attach(to bus: IOBus) throws {
        for range in ACPIPowerManagement.ports { try bus.attach(self, ports: range) }
    }

    /// Presses the power button (QEMU's `system_powerdown`): sets PWRBTN_STS,
    /// which raises the SCI once the guest enabled it; an ACPI OS then shuts
    /// down. Any thread.
    public func pressPowerButton() {
        lock.withLock {
            status |= Event.powerButton
            updateSCI()
        }
    }

    /// PM timer ticks since the device was made.
    var ticks: UInt64 {
        tickBase &+ (clock() &- clockBase).scaled(by: ACPILayout.pmTimerFrequency, per: 1_000_000_000)
    }

    /// The PM timer as the guest reads it.
    public var timerValue: UInt32 { UInt32(truncatingIfNeeded: ticks) & 0xFF_FFFF }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        let timer =
            Self.timerBlock.contains(port) || Self.timerBlock.contains(port &+ UInt16(size - 1)) ? timerValue : 0
        return lock.withLock {
            var value: UInt32 = 0
            for i in 0..<size {
                value |= UInt32(byte(at: port &+ UInt16(i), timer: timer)) << (8 * i)
            }
            return value
        }
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        lock.withLock {
            var sleep = false
            for i in 0..<size {
                let p = port &+ UInt16(i)
                store(UInt8(truncatingIfNeeded: value >> (8 * i)), at: p)
                if p == ACPILayout.pm1aControl + 1 { sleep = control & Control.sleepEnable != 0 }
            }
            updateSCI()
            guard sleep else { return .proceed }
            control &= ~Control.sleepEnable
            return enterSleep(type: UInt8((control >> Control.sleepTypeShift) & 7))
        }
    }

    // MARK: Registers (lock held)

    private static let timerBlock = ACPILayout.pmTimer..<(ACPILayout.pmTimer + UInt16(ACPILayout.pmTimerLength))

    /// PM1_STS with TMR_STS brought up to date.
    var currentStatus: UInt16 {
        if ticks >= overflowTick { status |= Event.timer }
        return status
    }

    private func byte(at port: UInt16, timer: UInt32) -> UInt8 {
        func half(_ v: UInt16, _ high: Bool) -> UInt8 { UInt8(truncatingIfNeeded: high ? v >> 8 : v) }
        switch port {
        case ACPILayout.pm1aEvent, ACPILayout.pm1aEvent + 1:
            return half(currentStatus, port == ACPILayout.pm1aEvent + 1)
        case ACPILayout.pm1aEvent + 2, ACPILayout.pm1aEvent + 3:
            return half(enable, port == ACPILayout.pm1aEvent + 3)
        case ACPILayout.pm1aControl, ACPILayout.pm1aControl + 1:
            return half(control | Control.sciEnable, port == ACPILayout.pm1aControl + 1)
        case ACPILayout.pmTimer..<(ACPILayout.pmTimer + 4):
            return UInt8(truncatingIfNeeded: timer >> (8 * UInt32(port - ACPILayout.pmTimer)))
        case ACPILayout.gpe0, ACPILayout.gpe0 + 1:
            return half(gpeStatus, port == ACPILayout.gpe0 + 1)
        case ACPILayout.gpe0 + 2, ACPILayout.gpe0 + 3:
            return half(gpeEnable, port == ACPILayout.gpe0 + 3)
        default:
            return 0
        }
    }

    private func store(_ byte: UInt8, at port: UInt16) {
        func set(_ v: inout UInt16, _ high: Bool) {
            v = high ? v & 0x00FF | UInt16(byte) << 8 : v & 0xFF00 | UInt16(byte)
        }
        func clear(_ v: inout UInt16, _ high: Bool) { v &= ~(UInt16(byte) << (high ? 8 : 0)) }
        switch port {
        case ACPILayout.pm1aEvent, ACPILayout.pm1aEvent + 1:
            // Clearing TMR_STS starts the wait for the next bit-23 change (acpi_pm1_evt_write_sts).
            if port == ACPILayout.pm1aEvent, byte & 1 != 0, currentStatus & Event.timer != 0 {
                overflowTick = (ticks + 0x80_0000) & ~0x7F_FFFF
            }
            clear(&status, port == ACPILayout.pm1aEvent + 1)
        case ACPILayout.pm1aEvent + 2, ACPILayout.pm1aEvent + 3:
            set(&enable, port == ACPILayout.pm1aEvent + 3)
        case ACPILayout.pm1aControl, ACPILayout.pm1aControl + 1:
            set(&control, port == ACPILayout.pm1aControl + 1)
        case ACPILayout.gpe0, ACPILayout.gpe0 + 1:
            clear(&gpeStatus, port == ACPILayout.gpe0 + 1)
        case ACPILayout.gpe0 + 2, ACPILayout.gpe0 + 3:
            set(&gpeEnable, port == ACPILayout.gpe0 + 3)
        default:
            break // the PM timer and unassigned bytes take no writes
        }
    }

    private func enterSleep(type: UInt8) -> DeviceAction {
        switch type {
        case ACPILayout.sleepTypeS5, ACPIPowerManagement.sleepTypeS4:
            return .stop(.systemEvent(type: SystemEvent.shutdown, flags: 0))
        case ACPILayout.sleepTypeS3:
            return .stop(.systemEvent(type: ACPIPowerManagement.suspendEvent, flags: 0))
        default:
            return .proceed
        }
    }

    /// Drives the SCI to what the registers say; only changes reach the line.
    private func updateSCI() {
        let level = currentStatus & enable & Event.sciSources != 0 || gpeStatus & gpeEnable != 0
        guard level != sciLevel else { return }
        sciLevel = level
        interruptLine?(level)
    }
}

// MARK: - Snapshot

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
