import Foundation
import Guests
import KVMCore
import XCTest

/// Every built-in guest (Guests/README.md) run on the real /dev/kvm: serial text,
/// the facts it reports through the hostcall port, and how it ends.
final class GuestTests: XCTestCase {
    /// The guests Guests/README.md documents must all be built in.
    func testDocumentedGuestsAreBuiltIn() {
        let documented = [
            "hello-real", "hello-protected", "hello-paged", "hello-long", "hello-c", "regs",
            "unassigned", "triple-fault", "spin", "debug-exit", "hostcall", "fail",
            "port-loop", "port-loop-real",
        ]
        let names = Set(GuestImage.all.map(\.name))
        for name in documented {
            XCTAssertTrue(names.contains(name), "guest \(name) is documented but not in GuestImage.all")
            XCTAssertNotNil(GuestImage.named(name), "GuestImage.named(\"\(name)\") is nil")
        }
        XCTAssertEqual(names.count, GuestImage.all.count, "GuestImage.all has duplicate names")
    }

    /// Every built-in guest is a loadable image with non-empty bytes and summary.
    func testEveryBuiltInGuestParses() throws {
        for guest in GuestImage.all {
            XCTAssertFalse(guest.bytes.isEmpty, guest.name)
            XCTAssertFalse(guest.summary.isEmpty, guest.name)
            let image = try guest.bootImage()
            XCTAssertTrue(
                image.segments.contains { image.entry >= $0.guestPhysical && image.entry < $0.end },
                "\(guest.name): entry \(hex(image.entry)) outside its segments")
        }
    }

    func testHelloReal() throws {
        let run = try runGuest(named: "hello-real")
        guard case .halted = run.stop else { return XCTFail("hello-real stopped with \(describe(run.stop))") }
        XCTAssertEqual(run.serial, "Hello from real mode\n")
        XCTAssertEqual(run.fact("mode"), 0)
        XCTAssertEqual(run.facts.map(\.key), ["mode"])
        let sregs = try run.machine.vcpu.specialRegisters()
        XCTAssertEqual(sregs.cr0 & ControlRegister.pe, 0, "real mode must have CR0.PE clear")
        XCTAssertEqual(sregs.cs.selector, 0x1000)
    }

    func testHelloProtected() throws {
        let run = try runGuest(named: "hello-protected")
        guard case .halted = run.stop else { return XCTFail("hello-protected stopped with \(describe(run.stop))") }
        XCTAssertEqual(run.serial, "Hello from protected mode\n")
        XCTAssertEqual(run.fact("mode"), 1)
        let cr0 = try XCTUnwrap(run.fact("cr0"), "no cr0 fact")
        XCTAssertEqual(cr0 & ControlRegister.pe, ControlRegister.pe, "CR0.PE must be set: cr0=\(hex(cr0))")
        XCTAssertEqual(cr0 & ControlRegister.pg, 0, "CR0.PG must be clear: cr0=\(hex(cr0))")
    }

    func testHelloPaged() throws {
        try requirePagingOutsideLongMode()
        let run = try runGuest(named: "hello-paged")
        guard case .halted = run.stop else { return XCTFail("hello-paged stopped with \(describe(run.stop))") }
        XCTAssertEqual(run.serial, "Hello from paged mode\n")
        XCTAssertEqual(run.fact("mode"), 2)
        let cr0 = try XCTUnwrap(run.fact("cr0"), "no cr0 fact")
        XCTAssertEqual(cr0 & ControlRegister.pg, ControlRegister.pg, "CR0.PG must be set: cr0=\(hex(cr0))")
    }

    func testHelloLong() throws {
        let run = try runGuest(named: "hello-long")
        guard case .halted = run.stop else { return XCTFail("hello-long stopped with \(describe(run.stop))") }
        XCTAssertEqual(run.serial, "Hello from long mode\n")
        XCTAssertEqual(run.fact("mode"), 3)
        let efer = try XCTUnwrap(run.fact("efer"), "no efer fact")
        XCTAssertEqual(efer & EFER.lma, EFER.lma, "EFER.LMA must be set: efer=\(hex(efer))")
        XCTAssertEqual(efer & EFER.lme, EFER.lme, "EFER.LME must be set: efer=\(hex(efer))")
    }

    func testHelloC() throws {
        let run = try runGuest(named: "hello-c")
        guard case .debugExit(let code) = run.stop else {
            return XCTFail("hello-c stopped with \(describe(run.stop))")
        }
        XCTAssertEqual(code, 0x10)
        XCTAssertEqual(DebugExit.exitStatus(for: code), 0x21)
        XCTAssertEqual(run.serial, "Hello from C (ELF64)\nsum(1..100) = 5050\n")
        XCTAssertEqual(run.fact("sum"), 5050)
        XCTAssertEqual(run.fact("fib20"), 6765)
        XCTAssertEqual(run.fact("mode"), 3)
        XCTAssertEqual(run.facts.map(\.key), ["sum", "fib20", "mode"])
    }

    func testRegs() throws {
        let run = try runGuest(named: "regs")
        guard case .halted = run.stop else { return XCTFail("regs stopped with \(describe(run.stop))") }
        XCTAssertEqual(run.serial, "Loading known register values\n")
        let r = run.registers
        let expected: [(String, UInt64, UInt64)] = [
            ("rax", r.rax, 0x1111_1111_1111_1111), ("rbx", r.rbx, 0x2222_2222_2222_2222),
            ("rcx", r.rcx, 0x3333_3333_3333_3333), ("rdx", r.rdx, 0x4444_4444_4444_4444),
            ("rsi", r.rsi, 0x5555_5555_5555_5555), ("rdi", r.rdi, 0x6666_6666_6666_6666),
            ("rbp", r.rbp, 0x7777_7777_7777_7777), ("rsp", r.rsp, BootLayout.stackTop),
            ("r8", r.r8, 0x8888_8888_8888_8888), ("r9", r.r9, 0x9999_9999_9999_9999),
            ("r10", r.r10, 0xAAAA_AAAA_AAAA_AAAA), ("r11", r.r11, 0xBBBB_BBBB_BBBB_BBBB),
            ("r12", r.r12, 0xCCCC_CCCC_CCCC_CCCC), ("r13", r.r13, 0xDDDD_DDDD_DDDD_DDDD),
            ("r14", r.r14, 0xEEEE_EEEE_EEEE_EEEE), ("r15", r.r15, 0xFFFF_FFFF_FFFF_FFFF),
            ("rip", r.rip, 0x10_0201),
        ]
        for (name, actual, value) in expected {
            XCTAssertEqual(actual, value, "\(name) = \(hex(actual)), expected \(hex(value))")
        }
        XCTAssertEqual(r.rflags, 0x2, "rflags = \(hex(r.rflags)), expected 0x2 (IF and status flags clear)")
    }

    func testUnassigned() throws {
        let run = try runGuest(named: "unassigned")
        guard case .done(let status) = run.stop else {
            return XCTFail("unassigned stopped with \(describe(run.stop))")
        }
        XCTAssertEqual(status, 0)
        XCTAssertEqual(run.serial, "Probing unassigned port 0x2f0 and MMIO 0xd0000000\ndone\n")
        let expected: [(String, UInt64)] = [
            ("in8", 0xFF), ("in16", 0xFFFF), ("in32", 0xFFFF_FFFF),
            ("mmio8", 0xFF), ("mmio16", 0xFFFF), ("mmio32", 0xFFFF_FFFF), ("mmio64", 0xFFFF_FFFF_FFFF_FFFF),
        ]
        for (key, value) in expected {
            XCTAssertEqual(run.fact(key), value, "fact \(key) = \(run.fact(key).map { hex($0) } ?? "missing")")
        }
        // Three writes and three reads of port 0x2f0; one MMIO write and four reads.
        XCTAssertEqual(run.machine.bus.unassignedPortAccesses, 6)
        XCTAssertGreaterThanOrEqual(run.machine.bus.unassignedMMIOAccesses, 5)
    }

    func testTripleFault() throws {
        let guest = try GuestImage.require("triple-fault")
        let run = try runGuest(try guest.bootImage())
        guard case .shutdown(let regs, _) = run.stop else {
            return XCTFail("triple-fault stopped with \(describe(run.stop))")
        }
        XCTAssertEqual(run.serial, "Triple-faulting now\n")
        XCTAssertTrue(
            (0x10_0000..<0x10_0000 + UInt64(guest.bytes.count)).contains(regs.rip),
            "rip \(hex(regs.rip)) at the shutdown is outside the guest")
    }

    func testSpinTimesOut() throws {
        let guest = try GuestImage.require("spin")
        let started = Date()
        let run = try runGuest(try guest.bootImage(), timeout: .milliseconds(200))
        let elapsed = Date().timeIntervalSince(started)
        guard case .timedOut(let rip) = run.stop else {
            return XCTFail("spin stopped with \(describe(run.stop))")
        }
        XCTAssertEqual(run.serial, "spinning\n")
        // Real mode: rip is the offset in cs = 0x1000, inside the image.
        XCTAssertLessThan(rip, UInt64(guest.bytes.count), "rip \(hex(rip)) is outside the spin image")
        XCTAssertGreaterThanOrEqual(elapsed, 0.2, "stopped before the timeout")
        XCTAssertLessThan(elapsed, 10, "took far longer than the 200 ms timeout")
    }

    func testDebugExit() throws {
        let run = try runGuest(named: "debug-exit")
        guard case .debugExit(let code) = run.stop else {
            return XCTFail("debug-exit stopped with \(describe(run.stop))")
        }
        XCTAssertEqual(code, 0x2A)
        XCTAssertEqual(DebugExit.exitStatus(for: code), 0x55)
        XCTAssertEqual(run.serial, "Exiting through isa-debug-exit with 0x2a\n")
    }

    func testHostcallSyncsThenDone() throws {
        let kvm = try requireKVM()
        let machine = try Machine(serial: .buffer, kvm: kvm)
        try machine.load(try GuestImage.require("hostcall").bootImage())

        let first = try machine.run(timeout: .seconds(20))
        guard case .sync(let stage1) = first else { return XCTFail("first stop: \(describe(first))") }
        XCTAssertEqual(stage1, 1)
        XCTAssertEqual(machine.hostcall.fact("answer"), 42, "answer is reported before sync 1")
        XCTAssertEqual(machine.serial.text, "Hostcall test: report, sync 1, sync 2, done\n")

        let second = try machine.run(timeout: .seconds(20))
        guard case .sync(let stage2) = second else { return XCTFail("second stop: \(describe(second))") }
        XCTAssertEqual(stage2, 2)
        XCTAssertEqual(
            machine.serial.text, "Hostcall test: report, sync 1, sync 2, done\n",
            "nothing printed between the syncs")

        let third = try machine.run(timeout: .seconds(20))
        guard case .done(let status) = third else { return XCTFail("third stop: \(describe(third))") }
        XCTAssertEqual(status, 0)
        XCTAssertEqual(machine.serial.text, "Hostcall test: report, sync 1, sync 2, done\nsynced twice\n")
        XCTAssertEqual(machine.hostcall.facts.map(\.key), ["answer"], "one fact, reported once")
    }

    func testFail() throws {
        let run = try runGuest(named: "fail")
        guard case .failed(let failure) = run.stop else { return XCTFail("fail stopped with \(describe(run.stop))") }
        XCTAssertEqual(failure.message, "expected failure")
        XCTAssertEqual(failure.line, 7)
        XCTAssertEqual(failure.values.0, 1)
        XCTAssertEqual(failure.values.1, 2)
        XCTAssertEqual(run.serial, "Failing on purpose\n")
        XCTAssertTrue(failure.description.contains("expected failure"), failure.description)
        XCTAssertTrue(failure.description.contains("line 7"), failure.description)
    }

    /// The benchmark guests: exactly 200,000 port writes (KVM_EXIT_IO = 2) and
    /// one HLT (KVM_EXIT_HLT = 5).
    func testPortLoopExitCounts() throws {
        for name in ["port-loop", "port-loop-real"] {
            let run = try runGuest(named: name, timeout: .seconds(60))
            guard case .halted = run.stop else {
                XCTFail("\(name) stopped with \(describe(run.stop))")
                continue
            }
            let exits = run.machine.vcpu.statistics.exits
            XCTAssertEqual(exits[2], 200_000, "\(name): KVM_EXIT_IO count")
            XCTAssertEqual(exits[5], 1, "\(name): KVM_EXIT_HLT count")
            XCTAssertEqual(run.serial, "", "\(name) prints nothing")
            XCTAssertEqual(run.machine.bus.unassignedPortAccesses, 200_000, "\(name): port 0x80 is unassigned")
            XCTAssertEqual(run.machine.vcpu.statistics.exitsByReason.first?.0, "IO")
        }
    }
}
