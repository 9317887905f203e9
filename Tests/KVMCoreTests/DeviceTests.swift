import Foundation
import XCTest

@testable import KVMCore

/// A port device that records every access and answers reads with a counter.
final class RecordingDevice: PortDevice {
    var writes: [(port: UInt16, size: Int, value: UInt32)] = []
    var reads: [(port: UInt16, size: Int)] = []
    var nextRead: UInt32
    /// Ask the run loop to stop on this (1-based) write.
    var stopOnWrite: Int?

    init(firstRead: UInt32 = 0x1000) { nextRead = firstRead }

    func read(port: UInt16, size: Int) -> UInt32 {
        reads.append((port, size))
        defer { nextRead &+= 1 }
        return nextRead
    }

    func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        writes.append((port, size, value))
        if writes.count == stopOnWrite { return .stop(.debugExit(code: value)) }
        return .proceed
    }
}

final class RecordingMMIODevice: MMIODevice {
    var writes: [(address: UInt64, size: Int, value: UInt64)] = []
    func read(address: UInt64, size: Int) -> UInt64 { 0x1122_3344_5566_7788 }
    func write(address: UInt64, size: Int, value: UInt64) -> DeviceAction {
        writes.append((address, size, value))
        return .proceed
    }
}

final class IOBusTests: XCTestCase {
    /// A `PortIO` over `bytes`, as the run loop decodes a KVM_EXIT_IO.
    private func withPortIO<R>(
        _ direction: PortIO.Direction, port: UInt16, size: Int, count: Int,
        bytes: inout [UInt8], _ body: (PortIO) -> R
    ) -> R {
        bytes.withUnsafeMutableBytes { raw in
            body(PortIO(direction: direction, port: port, size: size, count: count, data: raw.baseAddress!))
        }
    }

    func testAttachRefusesTakenPorts() throws {
        let bus = IOBus()
        let a = RecordingDevice()
        let b = RecordingDevice()
        try bus.attach(a, ports: 0x100...0x107)
        assertThrows(ConfigurationError.self, containing: ["0x107", "already attached"]) {
            try bus.attach(b, ports: 0x107...0x10F)
        }
        assertThrows(ConfigurationError.self, containing: ["0x100"]) { try bus.attach(b, ports: 0x0...0xFFFF) }
        // The refused attach left 0x108 unassigned.
        var data: [UInt8] = [0]
        _ = withPortIO(.out, port: 0x108, size: 1, count: 1, bytes: &data) { bus.dispatch($0) }
        XCTAssertTrue(b.writes.isEmpty)
        XCTAssertEqual(bus.unassignedPortAccesses, 1)
        // The same device may hold a second range.
        try bus.attach(a, ports: 0x200...0x200)
        data = [0x42]
        _ = withPortIO(.out, port: 0x200, size: 1, count: 1, bytes: &data) { bus.dispatch($0) }
        XCTAssertEqual(a.writes.map(\.value), [0x42])
    }

    func testAttachRefusesOverlappingMMIO() throws {
        let bus = IOBus()
        try bus.attach(RecordingMMIODevice(), range: 0xD000_0000..<0xD000_1000)
        assertThrows(ConfigurationError.self, containing: ["overlaps"]) {
            try bus.attach(RecordingMMIODevice(), range: 0xD000_0FFF..<0xD000_2000)
        }
        try bus.attach(RecordingMMIODevice(), range: 0xD000_1000..<0xD000_2000)
    }

    func testStringOutDispatchesEveryElement() {
        let bus = IOBus()
        let device = RecordingDevice()
        XCTAssertNoThrow(try bus.attach(device, ports: 0x500...0x500))
        var data: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]
        let action = withPortIO(.out, port: 0x500, size: 2, count: 4, bytes: &data) { bus.dispatch($0) }
        guard case .proceed = action else { return XCTFail("expected proceed") }
        XCTAssertEqual(device.writes.map(\.value), [0x0201, 0x0403, 0x0605, 0x0807])
        XCTAssertEqual(device.writes.map(\.size), [2, 2, 2, 2])
        XCTAssertEqual(Set(device.writes.map(\.port)), [0x500])
    }

    func testStringInFillsEveryElement() {
        let bus = IOBus()
        let device = RecordingDevice(firstRead: 0xA0B0_C0D0)
        XCTAssertNoThrow(try bus.attach(device, ports: 0x500...0x500))
        var data = [UInt8](repeating: 0, count: 12)
        _ = withPortIO(.in, port: 0x500, size: 4, count: 3, bytes: &data) { bus.dispatch($0) }
        XCTAssertEqual(device.reads.count, 3)
        XCTAssertEqual(data, [0xD0, 0xC0, 0xB0, 0xA0, 0xD1, 0xC0, 0xB0, 0xA0, 0xD2, 0xC0, 0xB0, 0xA0])
    }

    func testStringOutStopsWhereTheDeviceAsks() {
        let bus = IOBus()
        let device = RecordingDevice()
        device.stopOnWrite = 2
        XCTAssertNoThrow(try bus.attach(device, ports: 0x500...0x500))
        var data: [UInt8] = [10, 20, 30, 40]
        let action = withPortIO(.out, port: 0x500, size: 1, count: 4, bytes: &data) { bus.dispatch($0) }
        guard case .stop(.debugExit(let code)) = action else { return XCTFail("expected the device's stop") }
        XCTAssertEqual(code, 20)
        XCTAssertEqual(device.writes.count, 2, "no writes after the stop")
    }

    func testUnassignedStringIn() {
        let bus = IOBus()
        var data = [UInt8](repeating: 0, count: 8)
        _ = withPortIO(.in, port: 0x2F0, size: 2, count: 3, bytes: &data) { bus.dispatch($0) }
        XCTAssertEqual(data, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], "exactly size × count bytes are all ones")
        XCTAssertEqual(bus.unassignedPortAccesses, 3)
        XCTAssertEqual(bus.unassignedMMIOAccesses, 0)
    }

    func testMMIODispatch() throws {
        let bus = IOBus()
        let device = RecordingMMIODevice()
        try bus.attach(device, range: 0xD000_0000..<0xD000_1000)
        var data = [UInt8](repeating: 0, count: 8)
        data.withUnsafeMutableBytes { raw in
            _ = bus.dispatch(MMIOAccess(address: 0xD000_0010, size: 4, isWrite: false, data: raw.baseAddress!))
        }
        XCTAssertEqual(data, [0x88, 0x77, 0x66, 0x55, 0, 0, 0, 0], "a 4-byte read fills 4 bytes, little-endian")
        data = [1, 2, 3, 4, 5, 6, 7, 8]
        data.withUnsafeMutableBytes { raw in
            _ = bus.dispatch(MMIOAccess(address: 0xD000_0FF8, size: 8, isWrite: true, data: raw.baseAddress!))
            _ = bus.dispatch(MMIOAccess(address: 0xD000_1000, size: 2, isWrite: false, data: raw.baseAddress!))
        }
        XCTAssertEqual(device.writes.map(\.value), [0x0807_0605_0403_0201])
        XCTAssertEqual(data, [0xFF, 0xFF, 3, 4, 5, 6, 7, 8], "unassigned MMIO reads give all ones")
        XCTAssertEqual(bus.unassignedMMIOAccesses, 1)
    }

    /// A real guest doing `rep outsb` and `rep insw`: KVM hands the bus string I/O
    /// (count > 1) and every element reaches the device.
    func testStringIOFromARealGuest() throws {
        let machine = try Machine(serial: .buffer, kvm: try requireKVM())
        let device = RecordingDevice(firstRead: 0x7700)
        try machine.bus.attach(device, ports: 0x510...0x510)
        // 64-bit code at 0x100000, data at 0x100100:
        //   lea rsi, [rip + data] ; mov ecx, 5 ; mov dx, 0x510 ; rep outsb
        //   lea rdi, [rip + buffer] ; mov ecx, 3 ; rep insw ; hlt
        var code: [UInt8] = []
        code += [0x48, 0x8D, 0x35] + le32(0x100 - 7) // lea rsi, [rip+disp] (ends at 7)
        code += [0xB9, 0x05, 0x00, 0x00, 0x00] // mov ecx, 5          (12)
        code += [0x66, 0xBA, 0x10, 0x05] // mov dx, 0x510       (16)
        code += [0xF3, 0x6E] // rep outsb           (18)
        code += [0x48, 0x8D, 0x3D] + le32(0x200 - 25) // lea rdi, [rip+disp] (25)
        code += [0xB9, 0x03, 0x00, 0x00, 0x00] // mov ecx, 3          (30)
        code += [0x66, 0xF3, 0x6D] // rep insw            (33)
        code += [0xF4] // hlt
        code += [UInt8](repeating: 0x90, count: 0x100 - code.count)
        code += Array("HELLO".utf8)
        code += [UInt8](repeating: 0, count: 0x200 + 8 - code.count)
        try machine.load(.flat(code, mode: .long, load: 0x10_0000))
        let largestCount = Shared(0)
        let stop = try machine.run(timeout: .seconds(10)) { _, exit in
            if case .io(let io) = exit, io.port == 0x510 { largestCount.update { $0 = max($0, io.count) } }
        }
        guard case .halted = stop else { return XCTFail("stopped with \(describe(stop))") }
        XCTAssertEqual(device.writes.map(\.value), Array("HELLO".utf8).map(UInt32.init))
        XCTAssertEqual(device.reads.count, 3)
        XCTAssertEqual(try machine.memory.bytes(at: 0x10_0200, count: 8), [0x00, 0x77, 0x01, 0x77, 0x02, 0x77, 0, 0])
        XCTAssertGreaterThan(largestCount.current, 1, "KVM should batch rep outs/ins into one exit with count > 1")
    }

    private func le32(_ v: Int32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
    }
}

final class Serial16550Tests: XCTestCase {
    /// Writes 256 KiB through COM1 into a pipe (4× its buffer) whose reader
    /// starts late, and returns what the reader got.
    private func transmitThroughAPipe(nonBlocking: Bool, interruptingSignals: Bool) throws -> [UInt8] {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        if nonBlocking { _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK) }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let uart = Serial16550(sink: .fileDescriptor(writeEnd))
        let sent = (0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        // Handed over under a mutex: the reader's last act.
        let handedOver = Shared<[UInt8]?>(nil)
        let reader = Thread {
            usleep(100_000)
            var got: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while case let n = read(readEnd, &chunk, chunk.count), n > 0 {
                got += chunk[0..<n]
                usleep(200)
            }
            handedOver.update { $0 = got }
        }
        reader.start()
        var timer = itimerval()
        if interruptingSignals {
            // SIGALRM every millisecond without SA_RESTART: blocked writes fail with EINTR.
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in }
            sigaction(SIGALRM, &action, nil)
            timer.it_interval.tv_usec = 1000
            timer.it_value.tv_usec = 1000
            setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &timer, nil)
        }
        for byte in sent { _ = uart.write(port: 0x3F8, size: 1, value: UInt32(byte)) }
        if interruptingSignals {
            timer = itimerval()
            setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &timer, nil)
            signal(SIGALRM, SIG_DFL)
        }
        close(writeEnd)
        while handedOver.current == nil { usleep(10_000) }
        close(readEnd)
        let received = handedOver.current ?? []
        XCTAssertEqual(uart.bytesWritten, sent.count)
        XCTAssertEqual(received.count, sent.count, "bytes lost on the way out")
        XCTAssertTrue(received == sent, "bytes out of order or changed")
        return received
    }

    /// A full non-blocking descriptor (EAGAIN) does not drop guest output.
    func testOutputSurvivesAFullNonBlockingDescriptor() throws {
        _ = try transmitThroughAPipe(nonBlocking: true, interruptingSignals: false)
    }

    /// Signals interrupting a blocked write (EINTR) do not drop guest output.
    func testOutputSurvivesInterruptedWrites() throws {
        _ = try transmitThroughAPipe(nonBlocking: false, interruptingSignals: true)
    }

    func testLineStatusSaysTransmitterEmpty() {
        let uart = Serial16550(sink: .buffer)
        XCTAssertEqual(uart.read(port: 0x3FD, size: 1), 0x60, "LSR: THRE | TEMT")
        _ = uart.write(port: 0x3F8, size: 1, value: 0x41)
        XCTAssertEqual(uart.read(port: 0x3FD, size: 1), 0x60, "still empty after a write")
        XCTAssertEqual(uart.read(port: 0x3FA, size: 1), 0x01, "IIR: nothing pending, FIFOs off (QEMU's reset state)")
        _ = uart.write(port: 0x3FA, size: 1, value: 0x01)
        XCTAssertEqual(uart.read(port: 0x3FA, size: 1), 0xC1, "IIR: FIFOs on once FCR enables them")
    }

    func testReceivedBytesAreReadThroughRBRWithDataReady() {
        let uart = Serial16550(sink: .buffer)
        uart.receive(Array("ok".utf8))
        XCTAssertEqual(uart.read(port: 0x3FD, size: 1), 0x61, "LSR: data ready")
        XCTAssertEqual(uart.read(port: 0x3F8, size: 1), UInt32(UInt8(ascii: "o")))
        XCTAssertEqual(uart.read(port: 0x3F8, size: 1), UInt32(UInt8(ascii: "k")))
        XCTAssertEqual(uart.read(port: 0x3FD, size: 1), 0x60, "LSR: no data left")
        XCTAssertEqual(uart.read(port: 0x3F8, size: 1), 0, "RBR with nothing received")
    }

    func testInterruptLineFollowsTHREmptyAndReceivedData() {
        let uart = Serial16550(sink: .buffer)
        var levels: [Bool] = []
        uart.interruptLine = { levels.append($0) }
        _ = uart.write(port: 0x3F9, size: 1, value: 0x02) // IER: THR empty
        XCTAssertEqual(levels, [true], "enabling THRI with the THR empty raises IRQ 4")
        XCTAssertEqual(uart.read(port: 0x3FA, size: 1), 0x02, "IIR: THR empty")
        XCTAssertEqual(levels, [true, false], "reading IIR acknowledges it")
        _ = uart.write(port: 0x3F8, size: 1, value: 0x41)
        XCTAssertEqual(levels, [true, false, true], "each transmitted byte is a new edge")
        _ = uart.write(port: 0x3F9, size: 1, value: 0x01) // IER: received data only
        XCTAssertEqual(levels.last, false)
        uart.receive([0x7A])
        XCTAssertEqual(levels.last, true, "received data raises the line")
        XCTAssertEqual(uart.read(port: 0x3FA, size: 1), 0x04, "IIR: received data available")
        XCTAssertEqual(uart.read(port: 0x3F8, size: 1), 0x7A)
        XCTAssertEqual(levels.last, false, "reading the byte lowers it")
    }

    func testTransmitToBuffer() {
        let uart = Serial16550(sink: .buffer)
        for byte in Array("Hi\n".utf8) { _ = uart.write(port: 0x3F8, size: 1, value: UInt32(byte) | 0xFF00) }
        XCTAssertEqual(uart.text, "Hi\n")
        XCTAssertEqual(uart.output, [0x48, 0x69, 0x0A])
        XCTAssertEqual(uart.bytesWritten, 3)
    }

    func testDivisorLatchAndScratch() {
        let uart = Serial16550(sink: .buffer)
        _ = uart.write(port: 0x3FB, size: 1, value: 0x83) // DLAB = 1, 8N1
        _ = uart.write(port: 0x3F8, size: 1, value: 0x01) // DLL: 115200 baud, not transmitted
        _ = uart.write(port: 0x3F9, size: 1, value: 0x00) // DLM
        XCTAssertEqual(uart.read(port: 0x3F8, size: 1), 0x01)
        XCTAssertEqual(uart.read(port: 0x3FB, size: 1), 0x83)
        _ = uart.write(port: 0x3FB, size: 1, value: 0x03) // DLAB = 0
        XCTAssertEqual(uart.bytesWritten, 0, "divisor writes are not output")
        XCTAssertEqual(uart.read(port: 0x3F8, size: 1), 0, "no input")
        _ = uart.write(port: 0x3FF, size: 1, value: 0x5A)
        XCTAssertEqual(uart.read(port: 0x3FF, size: 1), 0x5A, "scratch reads back")
        _ = uart.write(port: 0x3F9, size: 1, value: 0xFF)
        XCTAssertEqual(uart.read(port: 0x3F9, size: 1), 0x0F, "IER keeps its low four bits")
    }

    func testDiscardAndFileDescriptorSinks() throws {
        let discard = Serial16550(sink: .discard)
        _ = discard.write(port: 0x3F8, size: 1, value: 0x41)
        XCTAssertEqual(discard.bytesWritten, 1)
        XCTAssertTrue(discard.output.isEmpty)

        let pipe = Pipe()
        let uart = Serial16550(sink: .fileDescriptor(pipe.fileHandleForWriting.fileDescriptor))
        for byte in Array("ok".utf8) { _ = uart.write(port: 0x3F8, size: 1, value: UInt32(byte)) }
        try pipe.fileHandleForWriting.close()
        XCTAssertEqual(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), "ok")
        XCTAssertTrue(uart.output.isEmpty, "a file-descriptor sink keeps nothing")
    }
}

final class DebugExitTests: XCTestCase {
    func testExitStatus() {
        XCTAssertEqual(DebugExit.exitStatus(for: 0x2A), 0x55)
        XCTAssertEqual(DebugExit.exitStatus(for: 0x10), 0x21)
        XCTAssertEqual(DebugExit.exitStatus(for: 0), 1)
        XCTAssertEqual(DebugExit.exitStatus(for: 0x7F), 0xFF)
        XCTAssertEqual(DebugExit.exitStatus(for: 0x80), 1, "truncated to 8 bits by the OS")
        XCTAssertEqual(DebugExit.exitStatus(for: 0xFFFF_FFFF), 0xFF, "no overflow trap")
        for code in UInt32(0)..<256 {
            XCTAssertEqual(DebugExit.exitStatus(for: code) & 1, 1, "guest statuses are odd")
        }
    }

    func testWriteStops() {
        let device = DebugExit()
        guard case .stop(.debugExit(let code)) = device.write(port: 0xF4, size: 1, value: 0x2A) else {
            return XCTFail("a write must stop the run")
        }
        XCTAssertEqual(code, 0x2A)
        XCTAssertEqual(DebugExit.ports, 0xF4...0xF7)
    }
}

/// The hostcall device, driven directly with blocks written into guest memory.
final class HostCallDeviceTests: XCTestCase {
    private func block(
        _ memory: GuestMemory, at address: UInt64, magic: UInt32 = HostCall.magic,
        command: UInt32, args: [UInt64]
    ) throws {
        try memory.write(magic, at: address)
        try memory.write(command, at: address + 4)
        for (i, arg) in args.enumerated() { try memory.write(arg, at: address + 8 + 8 * UInt64(i)) }
    }

    func testCommands() throws {
        let machine = try Machine(memorySize: 1 << 20, serial: .buffer, kvm: try requireKVM())
        let memory = machine.memory
        let hc = machine.hostcall
        try memory.write(Array("key\0".utf8), at: 0x3000)
        try block(memory, at: 0x2000, command: 1, args: [0x3000, 99])
        guard case .proceed = hc.write(port: HostCall.port, size: 4, value: 0x2000) else {
            return XCTFail("report must proceed")
        }
        XCTAssertEqual(hc.fact("key"), 99)
        try block(memory, at: 0x2000, command: 1, args: [0x3000, 100])
        _ = hc.write(port: HostCall.port, size: 4, value: 0x2000)
        XCTAssertEqual(hc.fact("key"), 100, "the last value reported wins")
        XCTAssertEqual(hc.facts.count, 2)

        try block(memory, at: 0x2000, command: 2, args: [3])
        guard case .stop(.done(let status)) = hc.write(port: HostCall.port, size: 4, value: 0x2000) else {
            return XCTFail("done")
        }
        XCTAssertEqual(status, 3)

        try block(memory, at: 0x2000, command: 4, args: [9])
        guard case .stop(.sync(let stage)) = hc.write(port: HostCall.port, size: 4, value: 0x2000) else {
            return XCTFail("sync")
        }
        XCTAssertEqual(stage, 9)

        try block(memory, at: 0x2000, command: 6, args: [0x77])
        guard case .stop(.snapshotRequested(let tag)) = hc.write(port: HostCall.port, size: 4, value: 0x2000) else {
            return XCTFail("snapshot")
        }
        XCTAssertEqual(tag, 0x77)
    }

    func testProtocolErrors() throws {
        let machine = try Machine(memorySize: 1 << 20, serial: .buffer, kvm: try requireKVM())
        let memory = machine.memory
        let hc = machine.hostcall
        func protocolError(_ action: DeviceAction) -> String? {
            if case .stop(.protocolError(let message)) = action { return message }
            return nil
        }
        try block(memory, at: 0x2000, magic: 0x1234_5678, command: 1, args: [])
        XCTAssertTrue(
            protocolError(hc.write(port: HostCall.port, size: 4, value: 0x2000))?.contains("0x12345678") ?? false)
        try block(memory, at: 0x2000, command: 77, args: [])
        XCTAssertTrue(protocolError(hc.write(port: HostCall.port, size: 4, value: 0x2000))?.contains("77") ?? false)
        XCTAssertTrue(protocolError(hc.write(port: HostCall.port, size: 1, value: 0x20))?.contains("1-byte") ?? false)
        // A block outside RAM, and a key pointer outside RAM.
        XCTAssertNotNil(protocolError(hc.write(port: HostCall.port, size: 4, value: 0xFFFF_FFF0)))
        try block(memory, at: 0x2000, command: 1, args: [0xFFFF_0000, 1])
        XCTAssertNotNil(protocolError(hc.write(port: HostCall.port, size: 4, value: 0x2000)))
        XCTAssertTrue(hc.facts.isEmpty)
    }
}
