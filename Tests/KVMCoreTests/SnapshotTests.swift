import Foundation
import Guests
import KVMCore
import XCTest

/// Runs guests to their end, optionally stopping after a given number of exits,
/// and records what a run produced, for comparing interrupted runs with
/// uninterrupted ones.
enum SnapshotHarness {
    /// What a whole run produced.
    struct Outcome: Equatable, CustomStringConvertible {
        var stops: [String]
        var serial: String
        var facts: [HostCall.Fact]
        var registers: [UInt64]
        var exits: Int

        var description: String {
            "stops \(stops), \(serial.utf8.count) serial bytes, \(facts.count) facts, rip \(registers.last.map { hex($0) } ?? "?")"
        }
    }

    /// rax … r15, rip, rflags.
    static func registerList(_ r: Registers) -> [UInt64] {
        [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp,
            r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags,
        ]
    }

    static func describe(_ stop: StopReason) -> String {
        switch stop {
        case .sync(let stage): "sync \(stage)"
        case .snapshotRequested(let tag): "snapshot \(tag)"
        case .nestedDumpRequested: "dump"
        case .done(let status): "done \(status)"
        case .debugExit(let code): "debug-exit \(hex(code))"
        case .halted: "halted"
        case .failed(let failure): "failed \(failure)"
        default: "\(stop)"
        }
    }

    /// A fresh machine with `image` loaded.
    static func boot(
        _ image: GuestImage, kvm: KVM, memorySize: UInt64 = 16 << 20, irqchip: Bool = false,
        vcpus: Int = 1, logDirtyPages: Bool = false
    ) throws -> Machine {
        let machine = try Machine(
            memorySize: memorySize, vcpus: vcpus, irqchip: irqchip, serial: .buffer,
            kvm: kvm, logDirtyPages: logDirtyPages)
        try machine.load(image.bootImage())
        return machine
    }

    /// Runs until the guest ends, resuming after HC_SYNC, HC_SNAPSHOT and dump
    /// requests; with `stopAfter`, returns early (`paused` true) once that many
    /// exits (KVM_RUN interruptions not counted) have been handled. `stops`
    /// collects the hostcall stops and the final one.
    @discardableResult
    static func run(
        _ machine: Machine, stops: inout [String], exits: inout Int, stopAfter: Int? = nil,
        onRequest: (StopReason) throws -> Void = { _ in }
    ) throws -> (paused: Bool, last: StopReason?) {
        let count = AtomicCounter()
        count.add(exits)
        let trace: @Sendable (VCPU, VMExit) -> Void = { vcpu, exit in
            if case .interrupted = exit { return }
            count.add(1)
            if count.value == stopAfter { vcpu.stop() }
        }
        defer { exits = count.value }
        while true {
            let stop = try machine.run(timeout: .seconds(60), trace: trace)
            switch stop {
            case .stopped:
                return (true, nil)
            case .sync, .snapshotRequested, .nestedDumpRequested:
                stops.append(describe(stop))
                try onRequest(stop)
            default:
                stops.append(describe(stop))
                return (false, stop)
            }
        }
    }

    /// Runs `machine` to its end and returns everything it produced, `stops`
    /// and `exits` carried over from before.
    static func finish(_ machine: Machine, stops: [String] = [], exits: Int = 0) throws -> Outcome {
        var stops = stops
        var exits = exits
        let (paused, _) = try run(machine, stops: &stops, exits: &exits)
        precondition(!paused)
        return Outcome(
            stops: stops, serial: machine.serial.text, facts: machine.hostcall.facts,
            registers: registerList(try machine.vcpu.registers()), exits: exits)
    }
}

/// Snapshots and restores: a guest stopped at any exit, snapshotted and
/// restored — in this process or through a file — ends exactly like an
/// uninterrupted run: same stops, serial output, facts and final registers.
final class SnapshotRestoreTests: XCTestCase {
    /// Snapshots `image` after every `k`-th exit; each snapshot is restored into
    /// a fresh machine (and every `fileEvery`-th also through a file) and run to
    /// the end, and the source machine runs on too: all must equal the reference.
    private func checkEveryKthExit(
        _ image: GuestImage, k: Int? = nil, points: Int = 12, fileEvery: Int = 4,
        irqchip: Bool = false, vcpus: Int = 1
    ) throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(
            SnapshotHarness.boot(image, kvm: kvm, irqchip: irqchip, vcpus: vcpus))
        XCTAssertGreaterThan(reference.exits, 1)
        let step = k ?? max(1, reference.exits / points)
        let directory = try SnapshotScratch()
        var checked = 0
        for (n, exit) in stride(from: step, to: reference.exits, by: step).enumerated() {
            let source = try SnapshotHarness.boot(image, kvm: kvm, irqchip: irqchip, vcpus: vcpus)
            var stops: [String] = []
            var exits = 0
            let (paused, last) = try SnapshotHarness.run(source, stops: &stops, exits: &exits, stopAfter: exit)
            guard paused else {
                XCTFail(
                    "\(image.name): the run ended (\(last.map(SnapshotHarness.describe) ?? "?")) before exit \(exit)")
                continue
            }
            var snapshot = try source.snapshot()
            if n % fileEvery == 0 {
                let path = directory.path + "/\(image.name)-\(exit).kvmsnap"
                try snapshot.write(to: path)
                snapshot = try Snapshot(contentsOf: path)
            }
            let restored = try Machine(restoring: snapshot, kvm: kvm)
            let restoredOutcome = try SnapshotHarness.finish(restored, stops: stops, exits: exits)
            XCTAssertEqual(restoredOutcome, reference, "\(image.name): restored at exit \(exit)")
            let sourceOutcome = try SnapshotHarness.finish(source, stops: stops, exits: exits)
            XCTAssertEqual(sourceOutcome, reference, "\(image.name): the source after its snapshot at exit \(exit)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
    }

    func testHostcallAtEveryExit() throws {
        try checkEveryKthExit(.hostcall, k: 1, fileEvery: 7)
    }

    func testHelloCAtEveryThirdExit() throws {
        try checkEveryKthExit(.helloC, k: 3, fileEvery: 5)
    }

    func testPortLoopEvery70000Exits() throws {
        try checkEveryKthExit(.portLoop, k: 70_000, fileEvery: 2)
    }

    func testRealModeGuest() throws {
        try checkEveryKthExit(.helloReal, points: 6, fileEvery: 2)
    }

    func testWithIRQChipAndTwoVCPUs() throws {
        // The in-kernel PIC, IOAPIC, PIT and LAPICs are saved and restored; the
        // AP waits for INIT/SIPI (MP state uninitialized) in the restored machine too.
        try checkEveryKthExit(.hostcall, points: 5, fileEvery: 2, irqchip: true, vcpus: 2)
    }

    /// Chain: one run that moves to a fresh machine at every hostcall stop.
    func testMovingAtEveryStop() throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.hostcall, kvm: kvm))
        var machine = try SnapshotHarness.boot(.hostcall, kvm: kvm)
        var stops: [String] = []
        var moves = 0
        while true {
            let stop = try machine.run(timeout: .seconds(10))
            stops.append(SnapshotHarness.describe(stop))
            guard case .sync = stop else { break }
            machine = try Machine(restoring: try machine.snapshot(), kvm: kvm)
            moves += 1
        }
        XCTAssertEqual(moves, 2)
        XCTAssertEqual(stops, reference.stops)
        XCTAssertEqual(machine.serial.text, reference.serial)
        XCTAssertEqual(machine.hostcall.facts, reference.facts)
        XCTAssertEqual(SnapshotHarness.registerList(try machine.vcpu.registers()), reference.registers)
    }

    func testSnapshotContents() throws {
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm, memorySize: 32 << 20)
        guard case .sync(1) = try machine.run(timeout: .seconds(10)) else { return XCTFail("no sync 1") }
        let snapshot = try machine.snapshot(notes: ["who": Array("test".utf8)])
        XCTAssertEqual(snapshot.configuration.memorySize, 32 << 20)
        XCTAssertEqual(snapshot.configuration.vcpuCount, 1)
        XCTAssertFalse(snapshot.configuration.irqchip)
        XCTAssertEqual(snapshot.configuration.cpuVendor, try kvm.supportedCPUID().vendor)
        XCTAssertNil(snapshot.irqchip)
        XCTAssertNil(snapshot.pit)
        XCTAssertEqual(snapshot.devices.map(\.kind), ["serial16550", "isa-debug-exit", "hostcall"])
        XCTAssertEqual(snapshot.notes["who"], Array("test".utf8))
        // The guest's code, page tables and stack; nothing like 32 MiB.
        XCTAssertGreaterThan(snapshot.storedPages, 2)
        XCTAssertLessThan(snapshot.storedPages, 64)
        // The vCPU is past the OUT of HC_SYNC 1 (its pending I/O was completed).
        let state = snapshot.vcpus[0]
        XCTAssertEqual(state.registers.rip, try machine.vcpu.registers().rip)
        XCTAssertEqual(
            try snapshot.memoryBytes(at: 0x10_0000, count: 16),
            try machine.memory.bytes(at: 0x10_0000, count: 16))
        XCTAssertEqual(
            try snapshot.memoryBytes(at: 0x10_0000, count: 16),
            Array(GuestImage.hostcall.bytes.prefix(16)))
    }

    func testRestoredMachineIsIndependentOfItsSnapshot() throws {
        // Copy-on-write: the guest's writes in one restored machine are not seen
        // by the snapshot or by another machine restored from it.
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm)
        guard case .sync(1) = try machine.run(timeout: .seconds(10)) else { return XCTFail("no sync 1") }
        let directory = try SnapshotScratch()
        let path = directory.path + "/s.kvmsnap"
        try machine.snapshot().write(to: path)
        let snapshot = try Snapshot(contentsOf: path)
        let a = try Machine(restoring: snapshot, kvm: kvm)
        let b = try Machine(restoring: snapshot, kvm: kvm)
        let original = try snapshot.memoryBytes(at: 0x10_0000, count: 8)
        try a.memory.write([1, 2, 3, 4, 5, 6, 7, 8], at: 0x10_0000)
        XCTAssertEqual(try b.memory.bytes(at: 0x10_0000, count: 8), original)
        XCTAssertEqual(try snapshot.memoryBytes(at: 0x10_0000, count: 8), original)
        XCTAssertEqual(try Snapshot(contentsOf: path).memoryBytes(at: 0x10_0000, count: 8), original)
        XCTAssertEqual(try SnapshotHarness.finish(b).stops, ["sync 2", "done 0"])
    }

    func testGuestRequestedSnapshotAndSerialInputCarryOver() throws {
        // HC_SNAPSHOT is a stop like HC_SYNC; pending serial input is device state.
        let kvm = try requireKVM()
        // mov eax, block; mov dx, 0x1000; out dx, eax; hlt — with the block at 0x100100.
        var code: [UInt8] = [0xB8, 0x00, 0x01, 0x10, 0x00, 0x66, 0xBA, 0x00, 0x10, 0xEF, 0xF4]
        code += [UInt8](repeating: 0, count: 0x100 - code.count)
        code += [0x48, 0x53, 0x43, 0x4C, 6, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0]
        let machine = try Machine(memorySize: 4 << 20, serial: .buffer, kvm: kvm)
        try machine.load(.flat(code, mode: .long, load: 0x10_0000))
        machine.serial.receive(Array("typed".utf8))
        guard case .snapshotRequested(tag: 42) = try machine.run(timeout: .seconds(5)) else {
            return XCTFail("no HC_SNAPSHOT")
        }
        let restored = try Machine(restoring: try machine.snapshot(), kvm: kvm)
        XCTAssertEqual(restored.serial.read(port: 0x3FD, size: 1) & 1, 1, "input pending after the restore")
        XCTAssertEqual(restored.serial.read(port: 0x3F8, size: 1), UInt32(UInt8(ascii: "t")))
        guard case .halted = try restored.run(timeout: .seconds(5)) else { return XCTFail("not halted") }
        XCTAssertEqual(try restored.vcpu.registers().rip, 0x10_000B)
    }

    func testFwCfgStateIsSavedAndTheDeviceRecreated() throws {
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm)
        var items = FwCfgItems.qemuPC(memoryMap: PCMemoryMap(ram: [(0, 16 << 20)], amdHyperTransport: false), cpus: 1)
        items.set(FwCfgKey.kernelAddress, u32: 0x1234_5678)
        let fwcfg = FwCfg(items: items, memory: machine.memory)
        try fwcfg.attach(to: machine.bus)
        guard case .sync(1) = try machine.run(timeout: .seconds(10)) else { return XCTFail("no sync 1") }
        fwcfg.select(FwCfgKey.kernelAddress)
        XCTAssertEqual(fwcfg.readByte(), 0x78)
        let directory = try SnapshotScratch()
        try machine.snapshot().write(to: directory.path + "/f.kvmsnap")
        let restored = try Machine(restoring: try Snapshot(contentsOf: directory.path + "/f.kvmsnap"), kvm: kvm)
        let copy = try XCTUnwrap(restored.bus.attachedPorts.lazy.compactMap { $0.device as? FwCfg }.first)
        XCTAssertEqual(copy.items, items)
        let ports: [ClosedRange<UInt16>] = restored.bus.attachedPorts.filter { $0.device === copy }.map { $0.ports }
        XCTAssertEqual(ports, [FwCfg.ports, FwCfg.dmaPorts])
        XCTAssertEqual(
            [copy.readByte(), copy.readByte(), copy.readByte()], [0x56, 0x34, 0x12], "the read offset carried over")
    }

    func testADeviceWithoutSnapshotSupportIsNamed() throws {
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm)
        try machine.bus.attach(StatelessDevice(), ports: 0x300...0x301)
        let error = assertThrows(SnapshotError.self, containing: ["StatelessDevice", "0x300"]) {
            try machine.snapshot()
        }
        XCTAssertEqual(error?.kind, .incompatible)
    }

    func testCMOSAndPCPortsTravelInASnapshot() throws {
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm)
        let cmos = CMOS(memorySize: 16 << 20)
        try machine.bus.attach(cmos, ports: CMOS.ports)
        let pcPorts = PCPorts()
        try pcPorts.attach(to: machine.bus)
        _ = cmos.write(port: 0x70, size: 1, value: 0x3F) // select a plain CMOS byte ...
        _ = cmos.write(port: 0x71, size: 1, value: 0xA5) // ... and write it
        _ = pcPorts.write(port: 0x92, size: 1, value: 0x00) // A20 off
        let restored = try Machine(restoring: try machine.snapshot(), kvm: kvm)
        let devices = restored.bus.attachedPorts.map(\.device)
        let cmosCopy = try XCTUnwrap(devices.lazy.compactMap { $0 as? CMOS }.first)
        let portsCopy = try XCTUnwrap(devices.lazy.compactMap { $0 as? PCPorts }.first)
        XCTAssertEqual(cmosCopy.bytes[0x3F], 0xA5)
        XCTAssertEqual(cmosCopy.read(port: 0x71, size: 1), 0xA5, "the selected index carried over")
        XCTAssertFalse(portsCopy.a20)
    }
}

/// A port device that keeps no snapshot state.
private final class StatelessDevice: PortDevice {
    func read(port: UInt16, size: Int) -> UInt32 { 0 }
    func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction { .proceed }
}

/// A temporary directory, removed with everything in it when released.
final class SnapshotScratch {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "snapshot-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
