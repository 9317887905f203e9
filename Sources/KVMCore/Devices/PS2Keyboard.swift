/// The PS/2 keyboard behind `I8042`'s first port, as QEMU's hw/input/ps2.c
/// answers its commands (`ps2_write_keyboard`): an MF2 keyboard that is never
/// typed on, so its queue only ever holds command replies.
struct PS2Keyboard: Equatable {
    static let ack: UInt8 = 0xFA, resend: UInt8 = 0xFE, selfTestPassed: UInt8 = 0xAA

    /// Bytes for the controller to read, oldest first.
    var queue: [UInt8] = []
    /// The command whose parameter byte comes next (0xED, 0xF0, 0xF3, 0xFC); nil: none.
    var pendingCommand: UInt8?
    var scanning = true
    /// Scancode set 1–3.
    var scancodeSet: UInt8 = 2
    /// Whether the controller translates to set 1 (its command byte's bit 6).
    var translated = true
    var leds: UInt8 = 0

    /// Takes a byte the controller passed on (a guest write to port 0x60).
    /// Replies not read yet are dropped first, as QEMU's `ps2_cqueue_reset` does.
    mutating func receive(_ byte: UInt8) {
        queue.removeAll()
        guard let command = pendingCommand else {
            execute(byte)
            return
        }
        pendingCommand = nil
        switch command {
        case 0xF0: // get/set scancode set
            switch byte {
            case 0:
                // Set 1–3 as the guest would read them through translation (QEMU's translate_table).
                let translatedSet: [UInt8] = [0xFF, 0x43, 0x41, 0x3F]
                queue = [Self.ack, translated ? translatedSet[Int(scancodeSet & 3)] : scancodeSet]
            case 1...3:
                scancodeSet = byte
                queue = [Self.ack]
            default:
                queue = [Self.resend]
            }
        case 0xED: // set LEDs
            leds = byte
            queue = [Self.ack]
        default: // 0xF3 typematic rate, 0xFC make/break mode
            queue = [Self.ack]
        }
    }

    private mutating func execute(_ command: UInt8) {
        switch command {
        case 0x00, 0xFA:
            queue = [Self.ack]
        case 0x05:
            queue = [Self.resend]
        case 0xF2: // identify: MF2, 0x41 when translated
            queue = [Self.ack, 0xAB, translated ? 0x41 : 0x83]
        case 0xEE: // echo
            queue = [0xEE]
        case 0xF4:
            scanning = true
            queue = [Self.ack]
        case 0xED, 0xF0, 0xF3, 0xFC:
            pendingCommand = command
            queue = [Self.ack]
        case 0xF5: // reset and disable
            reset()
            scanning = false
            queue = [Self.ack]
        case 0xF6: // reset and enable
            reset()
            queue = [Self.ack]
        case 0xFF: // reset: ACK, then self-test passed
            reset()
            queue = [Self.ack, Self.selfTestPassed]
        default:
            queue = [Self.resend]
        }
    }

    /// `ps2_reset_keyboard`.
    private mutating func reset() {
        scanning = true
        scancodeSet = 2
        leds = 0
        queue.removeAll()
    }

    /// The oldest byte; the queue must not be empty.
    mutating func next() -> UInt8 { queue.removeFirst() }
}
