import Glibc

/// Where a device's output goes.
public enum OutputSink: Sendable {
    /// Written unbuffered to a file descriptor (stdout: 1).
    case fileDescriptor(Int32)
    /// Kept in memory, for tests.
    case buffer
    /// Thrown away.
    case discard
}

/// A 16550A UART (COM1 at 0x3f8, IRQ 4). The transmitter is always empty, so a
/// polling guest never waits; with an interrupt line (an in-kernel irqchip) it
/// also raises the THR-empty and received-data interrupts as QEMU's serial does.
/// Input comes from `receive(_:)` (kvmrun feeds it from stdin).
///
/// Polled output takes no lock. Interrupt state and input are guarded by one
/// mutex, touched only when interrupts are enabled or input is pending.
// @unchecked: `receive` (any thread) touches only `input` and, under its lock, the interrupt state; the rest is the bus's.
public final class Serial16550: PortDevice, @unchecked Sendable {
    /// COM1's eight ports.
    public static let com1: ClosedRange<UInt16> = 0x3F8...0x3FF
    /// COM1's ISA interrupt.
    public static let irq: UInt32 = 4

    /// Where transmitted bytes go.
    public let sink: OutputSink
    /// Everything the guest wrote, when the sink is `.buffer`.
    public internal(set) var output: [UInt8] = []
    /// Bytes the guest transmitted, whatever the sink.
    public internal(set) var bytesWritten = 0
    /// Raises (true) or lowers the UART's interrupt line; nil without an irqchip.
    public var interruptLine: ((Bool) -> Void)?

    // The state snapshots save (the SnapshotDevice conformance below).
    private var ier: UInt8 = 0, lcr: UInt8 = 0, mcr: UInt8 = 0, scr: UInt8 = 0, fcr: UInt8 = 0
    private var dll: UInt8 = 0x0C, dlm: UInt8 = 0
    private var thrInterruptPending = false
    private var lineLevel = false
    private let input = SerialInput()

    /// A UART whose output goes to `sink` (stdout by default).
    public init(sink: OutputSink = .fileDescriptor(1)) {
        self.sink = sink
    }

    /// The captured output as text.
    public var text: String { String(decoding: output, as: UTF8.self) }

    /// Queues bytes for the guest to read (any thread).
    public func receive(_ bytes: [UInt8]) {
        input.append(bytes)
        if interruptLine != nil { input.locked { updateInterrupt() } }
    }

    private var dlab: Bool { lcr & 0x80 != 0 }

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        switch port & 7 {
        case 0:
            if dlab { return UInt32(dll) }
            guard input.count > 0 else { return 0 }
            return UInt32(
                input.locked { () -> UInt8 in
                    let byte = input.popFirst()
                    updateInterrupt()
                    return byte
                })
        case 1: return UInt32(dlab ? dlm : ier)
        case 2:
            guard interruptLine != nil else { return UInt32(identification) }
            return UInt32(
                input.locked { () -> UInt8 in
                    let iir = identification
                    if iir & 0x0F == 0x02 { // reading IIR acknowledges THR empty
                        thrInterruptPending = false
                        updateInterrupt()
                    }
                    return iir
                })
        case 3: return UInt32(lcr)
        case 4: return UInt32(mcr)
        case 5: return 0x60 | (input.count > 0 ? 0x01 : 0) // THRE, TEMT, data ready
        case 6: return 0xB0 // DCD, DSR, CTS
        default: return UInt32(scr)
        }
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        let byte = UInt8(truncatingIfNeeded: value)
        switch port & 7 {
        case 0:
            if dlab {
                dll = byte
            } else {
                transmit(byte)
                if interruptLine != nil {
                    // The THR empties at once: a fresh edge for the THR-empty interrupt.
                    input.locked {
                        thrInterruptPending = false
                        updateInterrupt()
                        thrInterruptPending = true
                        updateInterrupt()
                    }
                }
            }
        case 1:
            if dlab {
                dlm = byte
            } else {
                let enablingTHRI = byte & 0x02 != 0 && ier & 0x02 == 0
                ier = byte & 0x0F
                if interruptLine != nil {
                    input.locked {
                        if enablingTHRI { thrInterruptPending = true }
                        updateInterrupt()
                    }
                }
            }
        case 2: fcr = byte & 0xC9
        case 3: lcr = byte
        case 4: mcr = byte & 0x1F
        case 7: scr = byte
        default: break
        }
        return .proceed
    }

    /// IIR: received data first, then THR empty, else none (FIFO bits when enabled).
    private var identification: UInt8 {
        let fifo: UInt8 = fcr & 0x01 != 0 ? 0xC0 : 0
        if ier & 0x01 != 0 && input.count > 0 { return fifo | 0x04 }
        if ier & 0x02 != 0 && thrInterruptPending { return fifo | 0x02 }
        return fifo | 0x01
    }

    /// Sets the line to match IIR; only changes cost an ioctl.
    private func updateInterrupt() {
        guard let line = interruptLine else { return }
        let level = identification & 0x01 == 0
        if level != lineLevel {
            lineLevel = level
            line(level)
        }
    }

    private func transmit(_ byte: UInt8) {
        bytesWritten &+= 1
        switch sink {
        case .fileDescriptor(let fd):
            Self.write(byte, to: fd)
        case .buffer:
            output.append(byte)
        case .discard:
            break
        }
    }

    /// Writes one byte, never dropping it for a transient cause: a signal
    /// (kvmrun's vCPU kicks, SIGUSR1) interrupts a write to a slow terminal
    /// with EINTR, and a full non-blocking descriptor says EAGAIN until its
    /// reader catches up. Other errors (a closed pipe) drop the byte: the guest
    /// runs on, as a UART with no cable does.
    private static func write(_ byte: UInt8, to fd: Int32) {
        var b = byte
        while Glibc.write(fd, &b, 1) != 1 {
            switch errno {
            case EINTR:
                continue
            case EAGAIN:
                var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&ready, 1, -1)
            default:
                return
            }
        }
    }
}

/// Bytes waiting for the guest: appended by any thread, counted atomically so a
/// polling guest's LSR reads take no lock.
final class SerialInput {
    private var bytes: [UInt8] = []
    private var head = 0
    private let pending = AtomicCounter()
    private let lock = Lock()

    var count: Int { pending.value }

    func append(_ new: [UInt8]) {
        locked {
            bytes.append(contentsOf: new)
            pending.add(new.count)
        }
    }

    /// The bytes not read yet; call inside `locked`.
    var unread: [UInt8] { Array(bytes[head...]) }

    /// Replaces the bytes not read yet; call inside `locked`.
    func replaceUnread(_ new: [UInt8]) {
        pending.add(new.count - (bytes.count - head))
        bytes = new
        head = 0
    }

    /// The oldest byte; call inside `locked` with `count > 0`.
    func popFirst() -> UInt8 {
        guard head < bytes.count else { return 0 }
        let byte = bytes[head]
        head += 1
        pending.add(-1)
        if head == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            head = 0
        }
        return byte
    }

    func locked<R>(_ body: () -> R) -> R { lock.withLock(body) }
}

// MARK: - Snapshot

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
