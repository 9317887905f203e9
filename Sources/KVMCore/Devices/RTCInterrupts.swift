/// The MC146818's interrupts, as QEMU's `mc146818rtc` raises them: register
/// C's flags and IRQ 8. `CMOS` owns one and hands it every register write the
/// interrupts depend on.
///
/// - UF (0x10): at every second boundary of the RTC, unless register A holds
///   the dividers in reset (A & 0x60 = 0x60); set with SET too, as QEMU does
///   (`rtc_update_timer`, `check_update_timer`).
/// - AF (0x20): at the second boundary where seconds, minutes and hours match
///   their alarm registers, a value of 0xc0–0xff matching any (QEMU's
///   `get_next_alarm`); not while SET stops the clock. A 12-hour alarm's hour
///   takes its own PM bit.
/// - PF (0x40): every period register A's rate (low 4 bits) gives — rate 1
///   and 2 as 8 and 9, the period 2^(rate−1) ticks of the 32768 Hz clock
///   (`periodic_period_to_clock`) — counted from when PIE or the rate last
///   changed; only while PIE is set, as QEMU's periodic timer runs only then.
///   Ticks missed are dropped (QEMU's default lost-tick policy, discard).
/// - IRQF (0x80) and the line: when a flag newly set is enabled in register B
///   (PIE 0x40, AIE 0x20, UIE 0x10: the same bits), IRQF is set and the line
///   raised; reading C returns the flags, clears them and lowers the line
///   (`rtc_periodic_timer`, `rtc_update_timer`, `cmos_ioport_read`). Writing B
///   raises at once when an enabled flag is already set, else clears IRQF and
///   lowers (`cmos_ioport_write`).
///
/// Flags are computed from the clock, so they are right whenever C is read,
/// interrupts or not: a guest polling C sees UF after a second boundary. With
/// an interrupt line and an interrupt enabled, a `DeviceTimer` thread wakes at
/// the next enabled event to raise the line while no vCPU exits; it starts at
/// the first enable and stops with `stop()`. One mutex guards this state; only
/// register C reads and writes of A, B, the alarms and the time take it.
// @unchecked: every mutable field is guarded by `lock`, which `line` and the timer's calls also take.
final class RTCInterrupts: @unchecked Sendable {
    /// Register C's bits; PF, AF and UF are also register B's enables.
    enum Flag {
        static let irq: UInt8 = 0x80
        static let periodic: UInt8 = 0x40
        static let alarm: UInt8 = 0x20
        static let update: UInt8 = 0x10
        static let sources: UInt8 = 0x70
    }

    /// The CMOS registers the interrupts depend on, as the guest last wrote them.
    struct Settings: Equatable {
        var a: UInt8 = 0x26
        var b: UInt8 = 0x02
        var secondsAlarm: UInt8 = 0, minutesAlarm: UInt8 = 0, hoursAlarm: UInt8 = 0
        /// Seconds the RTC is ahead of the host clock.
        var offset: Int64 = 0
    }

    static let nanosecondsPerSecond: Int64 = 1_000_000_000
    /// The MC146818's time base (QEMU's RTC_CLOCK_RATE).
    static let clockRate: UInt64 = 32768

    private let lock = Lock()
    /// Host time, nanoseconds since the epoch (the clock `CMOS` reads).
    private let clock: @Sendable () -> Int64
    /// Whether a `DeviceTimer` may deliver interrupts (false: only accesses and `poll()` do).
    private let usesThread: Bool
    private var settings: Settings
    private var flags: UInt8 = 0
    /// Events up to this time are in `flags`.
    private var accountedUntil: Int64
    /// When the periodic ticks are counted from.
    private var periodicStart: Int64
    private var level = false
    private var line: (@Sendable (Bool) -> Void)?
    private var timer: DeviceTimer?
    /// The next alarm after a guest second, while the settings stay as they are.
    private var alarmCache: (after: Int64, next: Int64?)?

    init(settings: Settings, clock: @escaping @Sendable () -> Int64, usesThread: Bool) {
        self.settings = settings
        self.clock = clock
        self.usesThread = usesThread
        let now = clock()
        accountedUntil = now
        periodicStart = now
    }

    /// Ends the timer thread, if any (the owner's deinit).
    func stop() {
        let running = lock.withLock { () -> DeviceTimer? in
            defer { timer = nil }
            return timer
        }
        running?.stop()
    }

    /// Sets the function that drives IRQ 8 (nil: none).
    func setLine(_ newLine: (@Sendable (Bool) -> Void)?) {
        lock.withLock {
            line = newLine
            scheduleTimer()
        }
    }

    /// Register C as a guest read returns it: the flags, then cleared, the line lowered.
    func readC() -> UInt8 {
        lock.withLock {
            account(until: clock())
            let value = flags
            flags = 0
            drive(false)
            scheduleTimer()
            return value
        }
    }

    /// Applies a guest write of register A, the alarms or the time.
    func update(_ change: (inout Settings) -> Void) {
        lock.withLock {
            let now = clock()
            account(until: now)
            let old = settings
            change(&settings)
            reconfigured(from: old, at: now)
        }
    }

    /// Applies a guest write of register B (SET's effects on UIE already applied).
    func writeB(_ value: UInt8) {
        lock.withLock {
            let now = clock()
            account(until: now)
            let old = settings
            settings.b = value
            if value & flags & Flag.sources != 0 {
                flags |= Flag.irq
                drive(true)
            } else {
                flags &= ~Flag.irq
                drive(false)
            }
            reconfigured(from: old, at: now)
        }
    }

    /// Accounts the events up to now, raising the line if one is due: what the
    /// timer thread does, for tests that run without it.
    func poll() {
        lock.withLock { account(until: clock()) }
    }

    /// Register C (events up to now included) and the line's level, for a snapshot.
    func saved() -> (flags: UInt8, level: Bool) {
        lock.withLock {
            account(until: clock())
            return (flags, level)
        }
    }

    /// Puts back a snapshot's state; periodic ticks count again from now, and
    /// events between the save and now are not replayed.
    func restore(settings restored: Settings, flags savedFlags: UInt8, level savedLevel: Bool) {
        lock.withLock {
            let now = clock()
            settings = restored
            flags = savedFlags
            accountedUntil = now
            periodicStart = now
            alarmCache = nil
            level = savedLevel
            // KVM's record of the line's level is not in the irqchip state: drive it.
            line?(savedLevel)
            scheduleTimer()
        }
    }

    // MARK: Events (lock held)

    private func reconfigured(from old: Settings, at now: Int64) {
        let periodChanged = (old.a ^ settings.a) & 0x0F != 0 || (old.b ^ settings.b) & Flag.periodic != 0
        if periodChanged { periodicStart = now }
        if old != settings { alarmCache = nil }
        scheduleTimer()
    }

    private func drive(_ high: Bool) {
        guard high != level else { return }
        level = high
        line?(high)
    }

    /// Sets the flags of the events in (accountedUntil, until], and IRQF and
    /// the line when one newly set is enabled.
    private func account(until now: Int64) {
        let from = accountedUntil
        accountedUntil = now
        guard now > from else { return } // the host clock stepped back: nothing happened
        var events: UInt8 = 0
        let second = RTCInterrupts.floorSeconds(from)
        let nowSecond = RTCInterrupts.floorSeconds(now)
        if updatesRun && nowSecond > second {
            events |= Flag.update
            if alarmRuns, let alarm = nextAlarm(afterGuestSecond: second + settings.offset),
                alarm - settings.offset <= nowSecond
            {
                events |= Flag.alarm
            }
        }
        if let ticks = periodTicks, tickIndex(at: now, period: ticks) > tickIndex(at: from, period: ticks) {
            events |= Flag.periodic
        }
        let new = events & ~flags
        flags |= events
        if new & settings.b & Flag.sources != 0 {
            flags |= Flag.irq
            drive(true)
        }
    }

    /// Nanoseconds from `now` to the next event that would raise the line, or
    /// nil when none can (nothing enabled, or the line is up until C is read).
    private func nextInterrupt(after now: Int64) -> UInt64? {
        guard flags & Flag.irq == 0 else { return nil }
        var next: Int64?
        func consider(_ t: Int64) { next = min(next ?? t, t) }
        let b = settings.b
        let nowSecond = RTCInterrupts.floorSeconds(now)
        if updatesRun && b & Flag.update != 0 {
            consider((nowSecond + 1) * RTCInterrupts.nanosecondsPerSecond)
        }
        if updatesRun && alarmRuns && b & Flag.alarm != 0,
            let alarm = nextAlarm(afterGuestSecond: nowSecond + settings.offset)
        {
            consider((alarm - settings.offset) * RTCInterrupts.nanosecondsPerSecond)
        }
        if let ticks = periodTicks {
            let k = tickIndex(at: now, period: ticks) + 1
            consider(
                periodicStart
                    + Int64(
                        (k * ticks).scaled(by: UInt64(RTCInterrupts.nanosecondsPerSecond), per: RTCInterrupts.clockRate)
                    ) + 1)
        }
        return next.map { UInt64(max(1, $0 - now)) }
    }

    /// Starts the timer thread at the first enabled interrupt with a line, or
    /// makes it look again.
    private func scheduleTimer() {
        if let timer {
            timer.kick()
        } else if usesThread, line != nil, settings.b & Flag.sources != 0 {
            // Without a thread (pthread_create failed) the flags still come right
            // on reads; only interrupts between accesses are lost.
            timer = try? DeviceTimer { [weak self] in self?.fire() }
        }
    }

    private func fire() -> UInt64? {
        lock.withLock {
            let now = clock()
            account(until: now)
            return nextInterrupt(after: now)
        }
    }

    // MARK: Clock arithmetic

    /// Update cycles run unless register A holds the dividers in reset.
    private var updatesRun: Bool { settings.a & 0x60 != 0x60 }
    /// The clock stands still while SET: no alarm matches.
    private var alarmRuns: Bool { settings.b & 0x80 == 0 }

    /// The periodic interrupt's period in 32768 Hz ticks; nil when off (QEMU's
    /// `rtc_periodic_clock_ticks`).
    private var periodTicks: UInt64? {
        guard settings.b & Flag.periodic != 0 else { return nil }
        var rate = Int(settings.a & 0x0F)
        guard rate != 0 else { return nil }
        if rate <= 2 { rate += 7 }
        return 1 << (rate - 1)
    }

    /// How many whole periods have passed at `t` since `periodicStart`.
    private func tickIndex(at t: Int64, period: UInt64) -> UInt64 {
        let elapsed = UInt64(max(0, t - periodicStart))
        return elapsed.scaled(by: RTCInterrupts.clockRate, per: UInt64(RTCInterrupts.nanosecondsPerSecond)) / period
    }

    static func floorSeconds(_ ns: Int64) -> Int64 {
        let s = ns / nanosecondsPerSecond
        return ns % nanosecondsPerSecond < 0 ? s - 1 : s
    }

    // MARK: Alarm

    /// The first guest second after `guestSecond` whose time matches the alarm
    /// registers, nil when none can (a field out of range).
    private func nextAlarm(afterGuestSecond guestSecond: Int64) -> Int64? {
        if let cache = alarmCache, cache.after <= guestSecond, cache.next.map({ guestSecond < $0 }) ?? true {
            return cache.next
        }
        let next = RTCInterrupts.nextMatch(after: guestSecond, alarm: alarmFields)
        alarmCache = (guestSecond, next)
        return next
    }

    /// Seconds, minutes and 24-hour hours of the alarm, nil for "any".
    private var alarmFields: (second: Int?, minute: Int?, hour: Int?) {
        let binary = settings.b & 0x04 != 0
        let twentyFourHour = settings.b & 0x02 != 0
        func field(_ raw: UInt8) -> Int? {
            guard raw & 0xC0 != 0xC0 else { return nil }
            return binary ? Int(raw) : Int(raw >> 4) * 10 + Int(raw & 0x0F)
        }
        var hour = field(settings.hoursAlarm)
        if !twentyFourHour, hour != nil {
            hour = field(settings.hoursAlarm & 0x7F).map { $0 % 12 + (settings.hoursAlarm & 0x80 != 0 ? 12 : 0) }
        }
        return (field(settings.secondsAlarm), field(settings.minutesAlarm), hour)
    }

    /// The first second after `t` (seconds since the epoch) whose time of day
    /// matches: minute by minute through the next day.
    static func nextMatch(after t: Int64, alarm: (second: Int?, minute: Int?, hour: Int?)) -> Int64? {
        var secondOfDay = t % 86400
        if secondOfDay < 0 { secondOfDay += 86400 }
        let second = Int(secondOfDay % 60)
        let minuteOfDay = Int(secondOfDay / 60)
        let minuteStart = t - Int64(second)
        for k in 0...1440 {
            let m = (minuteOfDay + k) % 1440
            if let hour = alarm.hour, hour != m / 60 { continue }
            if let minute = alarm.minute, minute != m % 60 { continue }
            let candidate = alarm.second ?? (k == 0 ? second + 1 : 0)
            guard candidate < 60, k > 0 || candidate > second else { continue }
            return minuteStart + Int64(k * 60 + candidate)
        }
        return nil
    }
}
