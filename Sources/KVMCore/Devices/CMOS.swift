import Glibc

/// The PC's CMOS RAM and real-time clock (an MC146818 at ports 0x70/0x71), as
/// QEMU's `mc146818rtc` and `pc_cmos_init` set it up for `-M pc`:
///
/// - the clock reads the host's UTC time, in BCD and 24-hour mode unless the
///   guest changes register B; a guest that sets the time (SET bit in B, write
///   the registers, clear SET) moves this clock's offset from the host's;
/// - register A = 0x26 (UIP set during the last 244 µs of each second),
///   B = 0x02, C = 0 (cleared on read), D = 0x80 (RAM valid);
/// - the basic bytes QEMU/SeaBIOS use: 0x10 floppies (none), 0x12 disks (none),
///   0x14 equipment (FPU, PS/2 mouse), 0x15–0x16 base memory in KiB,
///   0x17–0x18 and 0x30–0x31 extended memory in KiB (to 64 MiB), 0x34–0x35
///   memory above 16 MiB in 64 KiB units, 0x38 and 0x3d the boot order
///   ("cad"), 0x5b–0x5d memory above 4 GiB in 64 KiB units, 0x5f CPUs − 1;
/// - port 0x70 selects a register (bit 7, NMI disable, is dropped) and reads
///   0xff; 0x71 reads or writes the selected one. 128 bytes.
///
/// The RTC's interrupts are QEMU's (`RTCInterrupts`): register B's PIE, AIE
/// and UIE enable the periodic (rate from register A's low 4 bits), alarm (0xc0
/// and above in an alarm register matching any value) and update-ended (once a
/// second) interrupts; register C's flags (IRQF 0x80, PF 0x40, AF 0x20, UF
/// 0x10) are set as the events happen, read and cleared through C, and IRQ 8 is
/// raised through `interruptLine` until C is read, as QEMU with KVM's irqchip
/// does. A background thread raises the line while no vCPU exits; it starts at
/// the first interrupt enabled with a line set and ends with the device.
public final class CMOS: PortDevice {
    /// The index (0x70) and data (0x71) ports.
    public static let ports: ClosedRange<UInt16> = 0x70...0x71
    /// The RTC's ISA interrupt.
    public static let irq: UInt32 = 8

    /// Raises (true) or lowers IRQ 8; nil without an irqchip. Set it before the
    /// guest runs (it is not meant to change under a running guest).
    /// Called on the RTC's timer thread too.
    public var interruptLine: (@Sendable (Bool) -> Void)? {
        didSet { rtc.setLine(interruptLine) }
    }

    /// CMOS register indices (the MC146818 RTC's and the PC's century byte).
    public enum Register {
        /// Clock seconds and the alarm's.
        public static let seconds: UInt8 = 0x00, secondsAlarm: UInt8 = 0x01
        /// Clock minutes and the alarm's.
        public static let minutes: UInt8 = 0x02, minutesAlarm: UInt8 = 0x03
        /// Clock hours and the alarm's.
        public static let hours: UInt8 = 0x04, hoursAlarm: UInt8 = 0x05
        /// Day of the week (1–7) and of the month.
        public static let dayOfWeek: UInt8 = 0x06, dayOfMonth: UInt8 = 0x07
        /// Month and year (two digits).
        public static let month: UInt8 = 0x08, year: UInt8 = 0x09
        /// Status registers A–D.
        public static let a: UInt8 = 0x0A, b: UInt8 = 0x0B, c: UInt8 = 0x0C, d: UInt8 = 0x0D
        /// The century, as PC firmware keeps it.
        public static let century: UInt8 = 0x32
    }

    // The state snapshots save (the SnapshotDevice conformance below).
    /// CMOS bytes; the clock registers are computed on read.
    public private(set) var bytes = [UInt8](repeating: 0, count: 128)
    private var index: UInt8 = 0
    /// Seconds this clock is ahead of the host's (a guest may set the time).
    private var offset: Int64 = 0
    /// The host clock, seconds and nanoseconds since the epoch (tests replace it).
    private let now: @Sendable () -> (seconds: Int64, nanoseconds: Int64)
    /// Register C and IRQ 8.
    private let rtc: RTCInterrupts

    /// CMOS for a PC with `lowMemory` bytes of RAM below 4 GiB, `highMemory`
    /// from 4 GiB, and `cpus` CPUs. With `clock` (tests) no thread raises the
    /// RTC's interrupts: they come on register accesses and `checkRTCEvents()`.
    public init(
        lowMemory: UInt64, highMemory: UInt64 = 0, cpus: Int = 1,
        clock: (@Sendable () -> (seconds: Int64, nanoseconds: Int64))? = nil
    ) {
        let now: @Sendable () -> (seconds: Int64, nanoseconds: Int64) =
            clock ?? {
                var ts = timespec()
                clock_gettime(CLOCK_REALTIME, &ts)
                return (Int64(ts.tv_sec), Int64(ts.tv_nsec))
            }
        self.now = now
        rtc = RTCInterrupts(
            settings: RTCInterrupts.Settings(),
            clock: {
                let t = now()
                return t.seconds &* RTCInterrupts.nanosecondsPerSecond &+ t.nanoseconds
            },
            usesThread: clock == nil)
        bytes[Int(Register.a)] = 0x26
        bytes[Int(Register.b)] = 0x02
        bytes[Int(Register.d)] = 0x80
        let kib: UInt64 = 1024
        let mib: UInt64 = 1 << 20
        let base = min(lowMemory / kib, 640)
        bytes[0x15] = UInt8(truncatingIfNeeded: base)
        bytes[0x16] = UInt8(truncatingIfNeeded: base >> 8)
        let extended = min(lowMemory > mib ? (lowMemory - mib) / kib : 0, 65535)
        bytes[0x17] = UInt8(truncatingIfNeeded: extended)
        bytes[0x18] = UInt8(truncatingIfNeeded: extended >> 8)
        bytes[0x30] = UInt8(truncatingIfNeeded: extended)
        bytes[0x31] = UInt8(truncatingIfNeeded: extended >> 8)
        let above16 = min(lowMemory > 16 * mib ? (lowMemory - 16 * mib) / (64 * kib) : 0, 65535)
        bytes[0x34] = UInt8(truncatingIfNeeded: above16)
        bytes[0x35] = UInt8(truncatingIfNeeded: above16 >> 8)
        let above4G = highMemory / (64 * kib)
        bytes[0x5B] = UInt8(truncatingIfNeeded: above4G)
        bytes[0x5C] = UInt8(truncatingIfNeeded: above4G >> 8)
        bytes[0x5D] = UInt8(truncatingIfNeeded: above4G >> 16)
        bytes[0x5F] = cpus > 0xFF ? 0 : UInt8(truncatingIfNeeded: cpus - 1)
        bytes[0x14] = 0x02 | 0x04 // FPU, PS/2 mouse; no floppies
        bytes[0x3D] = 0x12 // boot order "cad": first disk (2), then floppy (1)
        bytes[0x38] = 0x30 // third: CD-ROM (3); floppy boot signature check on
    }

    deinit { rtc.stop() }

    /// Accounts the RTC events up to now, raising IRQ 8 if one is due: what the
    /// background thread does, for a CMOS built with a test clock.
    func checkRTCEvents() { rtc.poll() }

    /// CMOS for `memorySize` bytes of RAM split as QEMU's `-M pc` splits it
    /// (`PCLayout.ramSplit`).
    public convenience init(memorySize: UInt64, cpus: Int = 1) {
        let split = PCLayout.ramSplit(memorySize)
        self.init(lowMemory: split.low, highMemory: split.high, cpus: cpus)
    }

    private var binary: Bool { bytes[Int(Register.b)] & 0x04 != 0 }
    private var twentyFourHour: Bool { bytes[Int(Register.b)] & 0x02 != 0 }
    private var setting: Bool { bytes[Int(Register.b)] & 0x80 != 0 }

    private func encode(_ v: Int) -> UInt8 {
        binary ? UInt8(v) : UInt8((v / 10) << 4 | v % 10)
    }

    private func decode(_ b: UInt8) -> Int {
        binary ? Int(b) : Int(b >> 4) * 10 + Int(b & 0x0F)
    }

    /// Register `reg` as the guest reads it.
    public func value(of reg: UInt8) -> UInt8 {
        let reg = reg & 0x7F
        switch reg {
        case Register.seconds, Register.minutes, Register.hours, Register.dayOfWeek, Register.dayOfMonth,
            Register.month, Register.year, Register.century:
            if setting { return bytes[Int(reg)] }
            let t = CalendarTime(epochSeconds: now().seconds + offset)
            switch reg {
            case Register.seconds: return encode(t.second)
            case Register.minutes: return encode(t.minute)
            case Register.hours:
                if twentyFourHour { return encode(t.hour) }
                let h12 = t.hour % 12 == 0 ? 12 : t.hour % 12
                return encode(h12) | (t.hour >= 12 ? 0x80 : 0)
            case Register.dayOfWeek: return encode(t.weekday + 1)
            case Register.dayOfMonth: return encode(t.day)
            case Register.month: return encode(t.month)
            case Register.year: return encode(t.year % 100)
            default: return encode(t.year / 100)
            }
        case Register.a:
            // Update in progress during the last 244 µs before each second.
            let uip: UInt8 = !setting && now().nanoseconds >= 1_000_000_000 - 244_000 ? 0x80 : 0
            return bytes[Int(reg)] & 0x7F | uip
        case Register.c:
            return rtc.readC()
        default:
            return bytes[Int(reg)]
        }
    }

    /// Writes register `reg` as the guest does.
    public func set(_ reg: UInt8, to value: UInt8) {
        let reg = reg & 0x7F
        switch reg {
        case Register.seconds, Register.minutes, Register.hours, Register.dayOfWeek, Register.dayOfMonth,
            Register.month, Register.year, Register.century:
            if !setting {
                // Writing one field while the clock runs: freeze the others first.
                freezeClock()
                bytes[Int(reg)] = value
                thawClock()
            } else {
                bytes[Int(reg)] = value
            }
        case Register.secondsAlarm, Register.minutesAlarm, Register.hoursAlarm:
            bytes[Int(reg)] = value
            rtc.update { [bytes] in
                ($0.secondsAlarm, $0.minutesAlarm, $0.hoursAlarm) =
                    (
                        bytes[Int(Register.secondsAlarm)], bytes[Int(Register.minutesAlarm)],
                        bytes[Int(Register.hoursAlarm)]
                    )
            }
        case Register.a:
            bytes[Int(reg)] = value & 0x7F
            rtc.update { $0.a = value & 0x7F }
        case Register.b:
            let wasSetting = setting
            if !wasSetting && value & 0x80 != 0 { freezeClock() }
            bytes[Int(reg)] = value & 0x80 != 0 ? value & ~0x10 : value // SET clears UIE
            if wasSetting && value & 0x80 == 0 { thawClock() }
            rtc.writeB(bytes[Int(reg)])
        case Register.c, Register.d:
            break // read-only
        default:
            bytes[Int(reg)] = value
        }
    }

    /// Copies the running clock into the time registers.
    private func freezeClock() {
        for r in [
            Register.seconds, Register.minutes, Register.hours, Register.dayOfWeek,
            Register.dayOfMonth, Register.month, Register.year, Register.century,
        ] {
            bytes[Int(r)] = value(of: r)
        }
    }

    /// Restarts the clock from the time registers.
    private func thawClock() {
        var hour = decode(bytes[Int(Register.hours)] & 0x7F)
        if !twentyFourHour {
            hour %= 12
            if bytes[Int(Register.hours)] & 0x80 != 0 { hour += 12 }
        }
        let century = decode(bytes[Int(Register.century)])
        let t = CalendarTime(
            year: century * 100 + decode(bytes[Int(Register.year)]),
            month: decode(bytes[Int(Register.month)]), day: decode(bytes[Int(Register.dayOfMonth)]),
            hour: hour, minute: decode(bytes[Int(Register.minutes)]),
            second: decode(bytes[Int(Register.seconds)]))
        offset = t.epochSeconds - now().seconds
        rtc.update { [offset] in $0.offset = offset }
    }

    /// What of the registers the RTC's interrupts depend on.
    var rtcSettings: RTCInterrupts.Settings {
        RTCInterrupts.Settings(
            a: bytes[Int(Register.a)], b: bytes[Int(Register.b)],
            secondsAlarm: bytes[Int(Register.secondsAlarm)],
            minutesAlarm: bytes[Int(Register.minutesAlarm)],
            hoursAlarm: bytes[Int(Register.hoursAlarm)], offset: offset)
    }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        port == 0x70 ? 0xFF : UInt32(value(of: index))
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        if port == 0x70 {
            index = UInt8(truncatingIfNeeded: value) & 0x7F
        } else {
            set(index, to: UInt8(truncatingIfNeeded: value))
        }
        return .proceed
    }
}

/// A UTC calendar time (proleptic Gregorian), from and to seconds since 1970.
struct CalendarTime: Equatable {
    var year, month, day, hour, minute, second: Int
    /// 0 = Sunday.
    var weekday: Int {
        let days = CalendarTime.daysFromCivil(year, month, day)
        return Int(((days % 7) + 11) % 7) // 1970-01-01 was a Thursday (4)
    }

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (
            year, month, day, hour, minute, second
        )
    }

    init(epochSeconds: Int64) {
        var days = epochSeconds / 86400
        var rem = epochSeconds % 86400
        if rem < 0 {
            rem += 86400
            days -= 1
        }
        hour = Int(rem / 3600)
        minute = Int(rem % 3600 / 60)
        second = Int(rem % 60)
        // Howard Hinnant's civil_from_days.
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = Int(doy - (153 * mp + 2) / 5 + 1)
        month = Int(mp < 10 ? mp + 3 : mp - 9)
        year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
    }

    static func daysFromCivil(_ y: Int, _ m: Int, _ d: Int) -> Int64 {
        let y = Int64(m <= 2 ? y - 1 : y)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((m + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    var epochSeconds: Int64 {
        CalendarTime.daysFromCivil(year, month, day) * 86400 + Int64(hour * 3600 + minute * 60 + second)
    }
}

// MARK: - Snapshot

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
