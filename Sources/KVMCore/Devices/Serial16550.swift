import Glibc

/// Where a device's output goes.
public enum OutputSink: Sendable {
    /// Written unbuffered to a file descriptor (stdout: 1).
    case fileDescriptor(Int32)
    /// Kept in memory, for tests.
    case buffer
    case discard
}

/// A 16550A UART (COM1 at 0x3f8) good for polled output: the transmitter is
/// always empty, so LSR reads THRE|TEMT and a guest never waits. Divisor latch,
/// scratch and the modem registers read back what was written.
public final class Serial16550: PortDevice {
    public static let com1: ClosedRange<UInt16> = 0x3F8...0x3FF

    public let sink: OutputSink
    /// Everything the guest wrote, when the sink is `.buffer`.
    public private(set) var output: [UInt8] = []
    public private(set) var bytesWritten = 0

    private var ier: UInt8 = 0, lcr: UInt8 = 0, mcr: UInt8 = 0, scr: UInt8 = 0
    private var dll: UInt8 = 0x0C, dlm: UInt8 = 0

    public init(sink: OutputSink = .fileDescriptor(1)) {
        self.sink = sink
    }

    /// The captured output as text.
    public var text: String { String(decoding: output, as: UTF8.self) }

    private var dlab: Bool { lcr & 0x80 != 0 }

    public func read(port: UInt16, size: Int) -> UInt32 {
        switch port & 7 {
        case 0: UInt32(dlab ? dll : 0)             // RBR: no input yet
        case 1: UInt32(dlab ? dlm : ier)
        case 2: 0xC1                              // IIR: FIFOs enabled, no interrupt pending
        case 3: UInt32(lcr)
        case 4: UInt32(mcr)
        case 5: 0x60                              // LSR: THR empty, transmitter empty
        case 6: 0xB0                              // MSR: DCD, DSR, CTS
        default: UInt32(scr)
        }
    }

    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        let byte = UInt8(truncatingIfNeeded: value)
        switch port & 7 {
        case 0:
            if dlab { dll = byte } else { transmit(byte) }
        case 1:
            if dlab { dlm = byte } else { ier = byte & 0x0F }
        case 3: lcr = byte
        case 4: mcr = byte
        case 7: scr = byte
        default: break
        }
        return .proceed
    }

    private func transmit(_ byte: UInt8) {
        bytesWritten &+= 1
        switch sink {
        case .fileDescriptor(let fd):
            var b = byte
            _ = Glibc.write(fd, &b, 1)
        case .buffer:
            output.append(byte)
        case .discard:
            break
        }
    }
}
