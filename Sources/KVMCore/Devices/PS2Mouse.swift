/// The PS/2 mouse behind `I8042`'s second (aux) port, as QEMU's hw/input/ps2.c
/// answers its commands (`ps2_write_mouse`): a mouse that never moves, so its
/// queue only holds replies; commands QEMU does not know get no reply.
struct PS2Mouse: Equatable {
    static let ack: UInt8 = 0xFA
    /// QEMU's PS2_QUEUE_SIZE.
    static let queueSize = 16

    var queue: [UInt8] = []
    /// 0xE8 (resolution) or 0xF3 (sample rate) awaiting its parameter; nil: none.
    var pendingCommand: UInt8?
    /// Remote 0x40, enabled 0x20, 2:1 scaling 0x10 (what 0xE9 reports).
    var status: UInt8 = 0
    var resolution: UInt8 = 0
    var sampleRate: UInt8 = 0
    var wrap = false
    /// 0: PS/2; 3: IntelliMouse; 4: IntelliMouse Explorer.
    var type: UInt8 = 0
    /// How far the sample-rate sequence that switches `type` has come.
    var detectState: UInt8 = 0

    /// Takes a byte the controller passed on (0xd4, then a write to port 0x60).
    mutating func receive(_ byte: UInt8) {
        if let command = pendingCommand {
            pendingCommand = nil
            if command == 0xF3 {
                sampleRate = byte
                detect(byte)
            } else {
                resolution = byte
            }
            enqueue([Self.ack])
            return
        }
        if wrap {
            // Wrap mode echoes everything but "reset wrap mode" and reset.
            if byte == 0xEC {
                wrap = false
                enqueue([Self.ack])
                return
            }
            if byte != 0xFF {
                enqueue([byte])
                return
            }
        }
        switch byte {
        case 0xE6:
            status &= ~0x10
            enqueue([Self.ack]) // 1:1 scaling
        case 0xE7:
            status |= 0x10
            enqueue([Self.ack]) // 2:1 scaling
        case 0xEA:
            status &= ~0x40
            enqueue([Self.ack]) // stream mode
        case 0xEE:
            wrap = true
            enqueue([Self.ack])
        case 0xF0:
            status |= 0x40
            enqueue([Self.ack]) // remote mode
        case 0xF2: enqueue([Self.ack, type]) // get type
        case 0xE8, 0xF3:
            pendingCommand = byte
            enqueue([Self.ack])
        case 0xE9: enqueue([Self.ack, status, resolution, sampleRate]) // status request
        case 0xEB: // poll: a packet with no motion
            enqueue([Self.ack])
            enqueue(type == 0 ? [0x08, 0, 0] : [0x08, 0, 0, 0])
        case 0xF4:
            status |= 0x20
            enqueue([Self.ack]) // enable reporting
        case 0xF5:
            status &= ~0x20
            enqueue([Self.ack])
        case 0xF6: // set defaults
            (sampleRate, resolution, status) = (100, 2, 0)
            enqueue([Self.ack])
        case 0xFF: // reset: ACK, passed, ID
            (sampleRate, resolution, status, type) = (100, 2, 0, 0)
            queue.removeAll()
            enqueue([Self.ack, 0xAA, type])
        default:
            break
        }
    }

    /// The sample-rate knocks 200, 100, 80 (IntelliMouse) and 200, 200, 80
    /// (Explorer) that switch the mouse's type.
    private mutating func detect(_ rate: UInt8) {
        switch (detectState, rate) {
        case (0, 200): detectState = 1
        case (0, _): break
        case (1, 100): detectState = 2
        case (1, 200): detectState = 3
        case (2, 80):
            type = 3
            detectState = 0
        case (3, 80):
            type = 4
            detectState = 0
        default: detectState = 0
        }
    }

    /// Queues `bytes` if they all fit (QEMU's ps2_queue_N).
    private mutating func enqueue(_ bytes: [UInt8]) {
        guard Self.queueSize - queue.count >= bytes.count else { return }
        queue += bytes
    }

    /// The oldest byte; the queue must not be empty.
    mutating func next() -> UInt8 { queue.removeFirst() }
}
