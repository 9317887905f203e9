import Foundation
import Guests
import KVMCore
import XCTest

/// Guests that attack the host (Guests/src/hostile-*, Docs/HARDENING.md): random
/// port and MMIO accesses, fw_cfg past its end, string I/O of 4 GiB, smashed
/// tables, broken hostcalls, interrupt storms, hostcall floods, on one vCPU and
/// on four at once. The library must survive each, report what happened as a
/// `StopReason`, and stop within a bounded time.
final class HostileGuestTests: XCTestCase {
    /// A 64 MiB machine (the size the guests assume) with the PC's firmware
    /// devices (fw_cfg with DMA, CMOS, ports 0x80 and 0x92). Not the i8042 or
    /// power management: the guests write random ports, and a pulse-reset or
    /// S5 would end the run, as it does on QEMU.
    private func pcMachine(vcpus: Int = 1, irqchip: Bool = false) throws -> Machine {
        let kvm = try requireKVM()
        let machine = try Machine(memorySize: 64 << 20, vcpus: vcpus, irqchip: irqchip, serial: .buffer, kvm: kvm)
        try machine.attachPCDevices(.firmware)
        return machine
    }

    private func fact(_ machine: Machine, _ key: String, file: StaticString = #filePath, line: UInt = #line) throws
        -> UInt64
    {
        try XCTUnwrap(
            machine.hostcall.fact(key), "fact \(key); facts: \(machine.hostcall.facts.prefix(12))", file: file,
            line: line)
    }

    // MARK: Random I/O

    func testRandomPortAndMMIOAccessesOnOneVCPU() throws {
        let machine = try pcMachine()
        try machine.load(try GuestImage.require("hostile-io").bootImage())
        let started = Date()
        guard case .sync(stage: 1) = try machine.run(timeout: .seconds(60)) else {
            return XCTFail("expected HC_SYNC 1")
        }
        let stop = try machine.run(timeout: .seconds(60))
        guard case .done(status: 0) = stop else {
            return XCTFail("expected HC_DONE 0, got \(describe(stop)); serial tail: \(machine.serial.text.suffix(200))")
        }
        XCTAssertEqual(try fact(machine, "port_accesses"), 6000)
        XCTAssertEqual(try fact(machine, "mmio_accesses"), 3000)
        XCTAssertEqual(try fact(machine, "fwcfg_bytes"), 0x40 * 600)
        XCTAssertEqual(try fact(machine, "aps_done"), 0)
        // Nearly all ports read 0xff: only COM1, fw_cfg, CMOS, 0x92 and the
        // hostcall/debug-exit ports have a device (a handful give other values).
        XCTAssertGreaterThan(try fact(machine, "sweep_ff"), 65_400)
        XCTAssertGreaterThan(machine.bus.unassignedPortAccesses, 60_000)
        XCTAssertGreaterThan(machine.bus.unassignedMMIOAccesses, 1000)
        XCTAssertTrue(
            machine.serial.text.hasSuffix("hostile-io: survived\n"),
            "serial tail: \(machine.serial.text.suffix(100).debugDescription)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
    }

    /// Four vCPUs attack at once: the host starts the three APs itself (MP state
    /// runnable, long mode at the guest's `ap_entry`, each with its own stack)
    /// while the BSP is paused at HC_SYNC 1. The guest's BSP waits for them.
    func testRandomPortAndMMIOAccessesOnFourVCPUsAtOnce() throws {
        let machine = try pcMachine(vcpus: 4)
        try machine.load(try GuestImage.require("hostile-io").bootImage())
        guard case .sync(stage: 1) = try machine.run(timeout: .seconds(60)) else {
            return XCTFail("expected HC_SYNC 1")
        }
        let entry = try fact(machine, "ap_entry")
        let stacks = try fact(machine, "ap_stacks")
        let stackSize = try fact(machine, "ap_stack_size")
        for ap in machine.vcpus.dropFirst() {
            try ap.setMPState(.runnable)
            try ap.setUp(mode: .long, entry: entry, stack: stacks + UInt64(ap.id) * stackSize)
        }
        try machine.memory.write(UInt32(3), at: try fact(machine, "expected_aps_addr"))
        let stop = try machine.run(timeout: .seconds(120))
        guard case .done(status: 0) = stop else {
            return XCTFail("expected HC_DONE 0, got \(describe(stop)); serial tail: \(machine.serial.text.suffix(200))")
        }
        XCTAssertEqual(try fact(machine, "aps_done"), 3)
        XCTAssertEqual(try fact(machine, "port_accesses"), 4 * 6000)
        XCTAssertEqual(try fact(machine, "mmio_accesses"), 4 * 3000)
        for ap in machine.vcpus.dropFirst() {
            XCTAssertGreaterThan(ap.statistics.totalExits, 6000, "AP \(ap.id) ran the hostile loop")
        }
    }

    // MARK: String I/O of 4 GiB

    func testRepOutsbOfFourGiBIsStoppedByTheTimeout() throws {
        let kvm = try requireKVM()
        let machine = try Machine(memorySize: 64 << 20, serial: .buffer, kvm: kvm)
        try machine.load(try GuestImage.require("hostile-rep-outsb").bootImage())
        let started = Date()
        let stop = try machine.run(timeout: .seconds(1))
        let elapsed = Date().timeIntervalSince(started)
        guard case .timedOut(let rip) = stop else { return XCTFail("expected a timeout, got \(describe(stop))") }
        XCTAssertTrue((0x10_0000..<0x10_1000).contains(rip), "stopped inside the guest: rip \(hex(rip))")
        XCTAssertLessThan(elapsed, 5, "the timeout stops a string instruction KVM splits into exits")
        XCTAssertGreaterThan(machine.bus.unassignedPortAccesses, 4096, "bytes reached the port")
        // Resumable: the instruction goes on where it was.
        guard case .timedOut = try machine.run(timeout: .milliseconds(200)) else { return XCTFail("second run") }
    }

    func testRepInsbOverTheEndOfRAMIsStoppedByTheTimeout() throws {
        let kvm = try requireKVM()
        let machine = try Machine(memorySize: 64 << 20, serial: .buffer, kvm: kvm)
        try machine.load(try GuestImage.require("hostile-rep-insb").bootImage())
        let started = Date()
        let stop = try machine.run(timeout: .seconds(2))
        let elapsed = Date().timeIntervalSince(started)
        guard case .timedOut = stop else { return XCTFail("expected a timeout, got \(describe(stop))") }
        XCTAssertLessThan(elapsed, 6)
        // The last MiB of RAM was filled with what the unassigned port reads.
        XCTAssertEqual(try machine.memory.bytes(at: (64 << 20) - 16, count: 16), [UInt8](repeating: 0xFF, count: 16))
        XCTAssertEqual(try machine.memory.read(UInt8.self, at: 0x03F0_0000), 0xFF)
    }

    // MARK: Smashed tables, triple faults

    func testSmashedIDTGDTAndPageTablesEndInATripleFault() throws {
        let run = try runGuest(named: "hostile-smash", timeout: .seconds(20))
        guard case .shutdown(let regs, _) = run.stop else {
            return XCTFail("expected SHUTDOWN, got \(describe(run.stop))")
        }
        XCTAssertTrue(
            (0x10_0000..<0x10_1000).contains(regs.rip) || regs.rip == 0xFFF0,
            "rip \(hex(regs.rip)): in the guest, or the reset vector after the shutdown")
        XCTAssertEqual(run.serial, "Smashing the IDT, GDT and page tables\n")
        let memory = run.machine.memory
        XCTAssertEqual(
            try memory.bytes(at: 0x1000, count: 0x1000), [UInt8](repeating: 0xAB, count: 0x1000), "IDT smashed")
        XCTAssertEqual(try memory.bytes(at: 0x500, count: 0x100), [UInt8](repeating: 0xAB, count: 0x100), "GDT smashed")
        // The first byte of the PML4 is enough: the entry gets reserved bits, and
        // the next page walk faults into the garbage IDT before the fill goes on.
        XCTAssertEqual(try memory.read(UInt8.self, at: 0x3000), 0xAB, "PML4 smashed")
    }

    // MARK: Broken hostcalls

    /// Each broken hostcall is a protocol error naming the problem; the run can
    /// be resumed after each and the guest goes on to the next.
    func testBrokenHostcallsAreProtocolErrorsAndTheGuestCanGoOn() throws {
        let kvm = try requireKVM()
        let machine = try Machine(memorySize: 64 << 20, serial: .buffer, kvm: kvm)
        try machine.load(try GuestImage.require("hostile-hostcall").bootImage())
        var errors: [String] = []
        var final: StopReason?
        for _ in 0..<20 {
            let stop = try machine.run(timeout: .seconds(20))
            if case .protocolError(let message) = stop {
                errors.append(message)
                continue
            }
            final = stop
            break
        }
        guard case .done(status: 0) = final else {
            return XCTFail("expected HC_DONE 0 at the end, got \(final.map(describe) ?? "nothing"); errors: \(errors)")
        }
        let expected: [[String]] = [
            ["1-byte access"], ["2-byte access"], ["0xfffffff0", "outside guest RAM"], ["magic 0x12345678"],
            ["unknown hostcall command 30583"], ["0xffffffffffff0000", "outside guest RAM"],
            ["0x4000000", "outside guest RAM"], ["0x3fffff8", "0x4000000", "outside guest RAM"], ["magic 0x12345678"],
        ]
        XCTAssertEqual(errors.count, expected.count, "protocol errors: \(errors)")
        for (message, fragments) in zip(errors, expected) {
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "\"\(message)\" does not mention \(fragment)")
            }
        }
        XCTAssertEqual(
            machine.hostcall.fact(String(repeating: "K", count: 63)), 77, "an unterminated key is cut at 63 bytes")
        XCTAssertEqual(machine.hostcall.fact("string_io"), 7, "the good block of the string out was served")
    }

    // MARK: Interrupt storm

    func testInterruptStormWithTheIRQChipIsStoppedByTheTimeout() throws {
        for vcpus in [1, 2] {
            let kvm = try requireKVM()
            let machine = try Machine(memorySize: 64 << 20, vcpus: vcpus, irqchip: true, serial: .buffer, kvm: kvm)
            try machine.load(try GuestImage.require("hostile-irq-storm").bootImage())
            let started = Date()
            let stop = try machine.run(timeout: .seconds(2))
            let elapsed = Date().timeIntervalSince(started)
            guard case .timedOut = stop else {
                return XCTFail(
                    "\(vcpus) vCPU(s): expected a timeout, got \(describe(stop)); facts \(machine.hostcall.facts)")
            }
            XCTAssertLessThan(elapsed, 6, "\(vcpus) vCPU(s)")
            let counters = try fact(machine, "counters_addr")
            let pit = try machine.memory.read(UInt64.self, at: counters)
            let timer = try machine.memory.read(UInt64.self, at: counters + 8)
            let ipis = try machine.memory.read(UInt64.self, at: counters + 16)
            let exceptions = try machine.memory.read(UInt64.self, at: counters + 40)
            // Every source fires; how often depends on the host's load (2 s, idle
            // host: ≈ 9,900 PIT, 9,800 timer, 20,000-38,000 IPIs; loaded: 100s).
            XCTAssertGreaterThan(pit, 0, "\(vcpus) vCPU(s): PIT interrupts")
            XCTAssertGreaterThan(timer, 0, "\(vcpus) vCPU(s): LAPIC timer interrupts")
            XCTAssertGreaterThan(ipis, 0, "\(vcpus) vCPU(s): self-IPIs")
            XCTAssertGreaterThan(pit + timer + ipis, 100, "\(vcpus) vCPU(s): a storm")
            print(
                "hostile-irq-storm, \(vcpus) vCPU(s), 2 s: \(pit) PIT, \(timer) LAPIC timer, \(ipis) self-IPI interrupts"
            )
            XCTAssertEqual(exceptions, 0, "\(vcpus) vCPU(s)")
            XCTAssertNil(machine.hostcall.fact("exception"))
        }
    }

    // MARK: Hostcall flood

    /// A guest that does nothing but hostcalls keeps the run loop responsive:
    /// each request comes back at once, and a runner that resumes them all meets
    /// its own deadline. (`Machine.run(timeout:)` times one call: a runner with
    /// an overall limit must keep its own deadline, as this one does.)
    func testHostcallFloodKeepsTheRunnerResponsive() throws {
        let kvm = try requireKVM()
        let machine = try Machine(memorySize: 64 << 20, serial: .buffer, kvm: kvm)
        try machine.load(try GuestImage.require("hostile-flood").bootImage())
        let residentBefore = try residentKiB()
        let started = Date()
        let deadline = started.addingTimeInterval(2)
        var requests = 0
        var slowest = 0.0
        while Date() < deadline {
            let call = Date()
            let stop = try machine.run(timeout: .seconds(10))
            slowest = max(slowest, Date().timeIntervalSince(call))
            switch stop {
            case .sync, .snapshotRequested, .nestedDumpRequested: requests += 1
            default: return XCTFail("expected only requests, got \(describe(stop))")
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2 + slowest + 0.5, "the runner met its deadline")
        XCTAssertLessThan(slowest, 2, "every request came back at once (slowest: \(slowest) s)")
        XCTAssertGreaterThan(requests, 1000)
        let facts = machine.hostcall.facts.count
        let grown = Int(try residentKiB()) - Int(residentBefore)
        // HostCall keeps every HC_REPORT (Docs/HARDENING.md): memory grows with the
        // number of reports, slowly. Bounded here by what 2 s of reports can add.
        print("hostile-flood: \(requests) requests resumed, \(facts) facts kept, resident memory +\(grown) KiB in 2 s")
        XCTAssertLessThan(grown, 64 << 10, "resident memory grew by \(grown) KiB")
    }
}

/// The process's resident set in KiB (VmRSS in /proc/self/status).
func residentKiB() throws -> UInt64 {
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        if let value = UInt64(String(line.dropFirst("VmRSS:".count).filter(\.isNumber))) { return value }
    }
    throw TestSetupError("no VmRSS in /proc/self/status")
}
