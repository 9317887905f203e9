import Foundation
import Guests
import KVMCore
import XCTest

/// `Machine.reset(to:)`: a running machine put back into a snapshot's state in
/// place — memory (the dirtied pages only, with dirty logging), registers and
/// devices — runs on exactly as from the snapshot.
final class SnapshotResetTests: XCTestCase {
    /// Every byte of RAM equals the snapshot's.
    private func assertMemoryEqual(
        _ machine: Machine, _ snapshot: Snapshot, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        for region in machine.memory.regions {
            let expected = try snapshot.memoryBytes(at: region.guestPhysical, count: Int(region.size))
            let same = expected.withUnsafeBytes { memcmp($0.baseAddress!, region.host, Int(region.size)) == 0 }
            if !same {
                let actual = UnsafeRawBufferPointer(start: region.host, count: Int(region.size))
                let first = (0..<expected.count).first { expected[$0] != actual[$0] } ?? -1
                XCTFail(
                    "RAM differs from the snapshot at \(hex(region.guestPhysical + UInt64(first)))", file: file,
                    line: line)
            }
        }
    }

    private func assertVCPUEqual(
        _ machine: Machine, _ snapshot: Snapshot, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let state = snapshot.vcpus[0]
        XCTAssertEqual(
            SnapshotHarness.registerList(try machine.vcpu.registers()),
            SnapshotHarness.registerList(state.registers), "registers", file: file, line: line)
        let sregs = try machine.vcpu.specialRegisters()
        XCTAssertEqual(
            [sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer, sregs.cs.base, UInt64(sregs.cs.selector)],
            [
                state.specialRegisters.cr0, state.specialRegisters.cr3, state.specialRegisters.cr4,
                state.specialRegisters.efer, state.specialRegisters.cs.base, UInt64(state.specialRegisters.cs.selector),
            ],
            "special registers", file: file, line: line)
        XCTAssertEqual(
            try canonicalXSAVE(machine.vcpu.xsave(), machine.kvm), try canonicalXSAVE(state.xsave, machine.kvm),
            "XSAVE", file: file, line: line)
        XCTAssertEqual(try machine.vcpu.mpState(), state.mpState, file: file, line: line)
    }

    /// An XSAVE area as the CPU means it, so two can be compared: a component
    /// whose XSTATE_BV bit is clear is in its initial state whatever its bytes,
    /// and one whose bit is set over initial-state bytes means the same. The
    /// bit alone is not state: the host's XSAVE "init optimization" sets or
    /// clears it as the vCPU's FPU is switched out, which a loaded host does at
    /// random moments (a reset compared byte for byte failed that way once).
    private func canonicalXSAVE(_ state: XSAVEState, _ kvm: KVM) throws -> [UInt8] {
        var bytes = state.bytes
        guard bytes.count >= 576 else { return bytes }
        // Standard-format regions and initial values: x87 (FCW 0x37f, all else
        // zero; MXCSR at 24 is not x87's), SSE (XMM0-15), AVX (YMM upper halves),
        // then what CPUID leaf 0xD places for the others (initially zero).
        var regions: [(bit: Int, ranges: [Range<Int>], initial: (Int) -> UInt8)] = [
            (0, [0..<24, 32..<160], { $0 == 0 ? 0x7F : $0 == 1 ? 0x03 : 0 }),
            (1, [160..<416], { _ in 0 }),
        ]
        let cpuid = try kvm.supportedCPUID()
        for bit in 2..<63 {
            guard let leaf = cpuid[0xD, UInt32(bit)], leaf.eax > 0, Int(leaf.ebx) + Int(leaf.eax) <= bytes.count else {
                continue
            }
            regions.append((bit, [Int(leaf.ebx)..<Int(leaf.ebx) + Int(leaf.eax)], { _ in 0 }))
        }
        var present = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[512 + $1]) << (8 * $1) }
        for region in regions {
            let mask = UInt64(1) << region.bit
            let isInitial = region.ranges.allSatisfy { r in r.allSatisfy { bytes[$0] == region.initial($0) } }
            if present & mask == 0 || isInitial {
                for r in region.ranges { for i in r { bytes[i] = region.initial(i) } }
                present &= ~mask
            }
        }
        for i in 0..<8 { bytes[512 + i] = UInt8(truncatingIfNeeded: present >> (8 * i)) }
        return bytes
    }

    /// Runs `machine` to its end: the stops, serial output, facts and final
    /// registers are the reference's (exit counts are not compared).
    private func assertFinishes(
        _ machine: Machine, after stops: [String], like reference: SnapshotHarness.Outcome,
        _ message: String = "", file: StaticString = #filePath, line: UInt = #line
    ) throws {
        var outcome = try SnapshotHarness.finish(machine, stops: stops)
        outcome.exits = reference.exits
        XCTAssertEqual(outcome, reference, message, file: file, line: line)
    }

    /// hostcall stopped at HC_SYNC 1 on a dirty-logging machine, and its snapshot.
    private func machineAtSync1(kvm: KVM, logDirtyPages: Bool = true) throws -> (Machine, Snapshot) {
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm, logDirtyPages: logDirtyPages)
        guard case .sync(1) = try machine.run(timeout: .seconds(10)) else { throw XCTSkip("no sync 1") }
        return (machine, try machine.snapshot())
    }

    func testResetAfterTheGuestAndTheHostDirtiedPages() throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.hostcall, kvm: kvm))
        let (machine, snapshot) = try machineAtSync1(kvm: kvm)
        // The guest runs to its end (stack, hostcall block), and the host scribbles.
        try assertFinishes(machine, after: ["sync 1"], like: reference)
        try machine.memory.write([0xAA, 0xBB, 0xCC], at: 0x10_0000) // the guest's code
        try machine.memory.fill(0x55, count: 3 * 4096 + 100, at: 0x40_0000 - 50) // pages never stored
        let p = try XCTUnwrap(machine.memory.pointer(0x80_0000, count: 8))
        p.storeBytes(of: UInt64.max, as: UInt64.self)
        machine.memory.markDirty(0x80_0000, count: 8)
        try machine.vcpu.setRegisters(Registers())
        machine.serial.receive([1, 2, 3])

        try machine.reset(to: snapshot)
        try assertMemoryEqual(machine, snapshot)
        try assertVCPUEqual(machine, snapshot)
        XCTAssertEqual(machine.serial.read(port: 0x3FD, size: 1) & 1, 0, "no input pending at the snapshot")
        XCTAssertEqual(
            machine.serial.text, "Hostcall test: report, sync 1, sync 2, done\n", "output back to the snapshot's")
        XCTAssertEqual(machine.hostcall.facts, [HostCall.Fact(key: "answer", value: 42)])
        // And it runs on as from the snapshot, again and again.
        for round in 0..<5 {
            try assertFinishes(machine, after: ["sync 1"], like: reference, "round \(round)")
            try machine.reset(to: snapshot)
            try assertVCPUEqual(machine, snapshot)
        }
        try assertMemoryEqual(machine, snapshot)
    }

    func testResetOfAMachineRestoredFromAFile() throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.helloC, kvm: kvm))
        let source = try SnapshotHarness.boot(.helloC, kvm: kvm)
        var stops: [String] = []
        var exits = 0
        XCTAssertTrue(try SnapshotHarness.run(source, stops: &stops, exits: &exits, stopAfter: 20).paused)
        let scratch = try SnapshotScratch()
        try source.snapshot().write(to: scratch.path + "/h.kvmsnap")
        let snapshot = try Snapshot(contentsOf: scratch.path + "/h.kvmsnap")
        let machine = try Machine(restoring: snapshot, kvm: kvm, logDirtyPages: true)
        for round in 0..<10 {
            XCTAssertEqual(try SnapshotHarness.finish(machine, stops: stops, exits: exits), reference, "round \(round)")
            try machine.reset(to: snapshot)
            try assertVCPUEqual(machine, snapshot)
        }
        try assertMemoryEqual(machine, snapshot)
    }

    func testResetToAnotherSnapshotRemapsMemory() throws {
        // The machine's baseline is the last snapshot; resetting to an older one
        // cannot rely on the dirty log and remaps RAM from the snapshot's image.
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.hostcall, kvm: kvm))
        let (machine, first) = try machineAtSync1(kvm: kvm)
        guard case .sync(2) = try machine.run(timeout: .seconds(10)) else { return XCTFail("no sync 2") }
        let second = try machine.snapshot()
        try assertFinishes(machine, after: ["sync 1", "sync 2"], like: reference)
        try machine.reset(to: first)
        try assertMemoryEqual(machine, first)
        try assertVCPUEqual(machine, first)
        try assertFinishes(machine, after: ["sync 1"], like: reference)
        try machine.reset(to: second)
        try assertMemoryEqual(machine, second)
        try assertFinishes(machine, after: ["sync 1", "sync 2"], like: reference)
        try machine.reset(to: second) // now the baseline: the dirty pages only
        try assertMemoryEqual(machine, second)
        try assertFinishes(machine, after: ["sync 1", "sync 2"], like: reference)
    }

    func testResetWithoutDirtyLogging() throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.hostcall, kvm: kvm))
        let (machine, snapshot) = try machineAtSync1(kvm: kvm, logDirtyPages: false)
        for _ in 0..<3 {
            try assertFinishes(machine, after: ["sync 1"], like: reference)
            try machine.reset(to: snapshot)
            try assertMemoryEqual(machine, snapshot)
            try assertVCPUEqual(machine, snapshot)
        }
    }

    func testResetWithAnIRQChip() throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.hostcall, kvm: kvm, irqchip: true))
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm, irqchip: true, logDirtyPages: true)
        guard case .sync(1) = try machine.run(timeout: .seconds(10)) else { return XCTFail("no sync 1") }
        let snapshot = try machine.snapshot()
        for _ in 0..<3 {
            try assertFinishes(machine, after: ["sync 1"], like: reference)
            try machine.reset(to: snapshot)
            try assertVCPUEqual(machine, snapshot)
            let lapic = try machine.vcpu.lapic()
            XCTAssertEqual(
                withUnsafeBytes(of: lapic) { Array($0) }, withUnsafeBytes(of: snapshot.vcpus[0].lapic!) { Array($0) })
        }
        try assertMemoryEqual(machine, snapshot)
    }

    func testResetAtEveryExitOfPortLoopAgainstOneSnapshot() throws {
        // Reset in the middle of a run, with a port exit pending: the pending OUT
        // must not complete into the restored state.
        let kvm = try requireKVM()
        let machine = try SnapshotHarness.boot(.portLoop, kvm: kvm, logDirtyPages: true)
        var stops: [String] = []
        var exits = 0
        XCTAssertTrue(try SnapshotHarness.run(machine, stops: &stops, exits: &exits, stopAfter: 1000).paused)
        let snapshot = try machine.snapshot()
        for n in [1, 2, 3, 10, 77] {
            var more = 0
            XCTAssertTrue(try SnapshotHarness.run(machine, stops: &stops, exits: &more, stopAfter: n).paused)
            try machine.reset(to: snapshot)
            try assertVCPUEqual(machine, snapshot)
            XCTAssertEqual(
                try machine.vcpu.registers().rcx, 200_000 - 999,
                "the loop counter is the snapshot's (the 1000th OUT done, not yet its dec)")
        }
    }

    /// KVM rewrites CPUID bits from the vCPU's state (CPUID.1:ECX.OSXSAVE from
    /// CR4): a snapshot taken while CR4 differed — e.g. while the vCPU ran a
    /// nested guest — is still this machine's CPUID.
    func testResetAcrossACPUIDBitKVMDerivesFromCR4() throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.hostcall, kvm: kvm))
        let (machine, snapshot) = try machineAtSync1(kvm: kvm)
        guard let leaf1 = snapshot.vcpus[0].cpuid[1], leaf1.ecx & (1 << 26) != 0 else {
            throw XCTSkip("the vCPU's CPUID has no XSAVE, so CR4.OSXSAVE cannot be set")
        }
        var sregs = try machine.vcpu.specialRegisters()
        sregs.cr4 ^= 1 << 18 // OSXSAVE
        try machine.vcpu.setSpecialRegisters(sregs)
        XCTAssertNotEqual(try machine.vcpu.cpuid()[1]?.ecx, leaf1.ecx, "KVM mirrors CR4.OSXSAVE in CPUID.1:ECX")
        try machine.reset(to: snapshot)
        try assertVCPUEqual(machine, snapshot)
        XCTAssertEqual(try machine.vcpu.cpuid()[1]?.ecx, leaf1.ecx, "and mirrors the snapshot's CR4 again")
        try assertFinishes(machine, after: ["sync 1"], like: reference)
    }

    func testIncompatibleSnapshotsLeaveTheMachineAlone() throws {
        let kvm = try requireKVM()
        let reference = try SnapshotHarness.finish(SnapshotHarness.boot(.hostcall, kvm: kvm))
        let (machine, _) = try machineAtSync1(kvm: kvm)
        let other = try SnapshotHarness.boot(.hostcall, kvm: kvm, memorySize: 32 << 20)
        guard case .sync(1) = try other.run(timeout: .seconds(10)) else { return XCTFail("no sync 1") }
        let bigger = try other.snapshot()
        let error = assertThrows(SnapshotError.self, containing: ["32 MiB", "16 MiB"]) { try machine.reset(to: bigger) }
        XCTAssertEqual(error?.kind, .incompatible)
        let withIRQChip = try SnapshotHarness.boot(.hostcall, kvm: kvm, irqchip: true)
        guard case .sync(1) = try withIRQChip.run(timeout: .seconds(10)) else { return XCTFail("no sync 1") }
        assertThrows(SnapshotError.self, containing: ["irqchip"]) { try machine.reset(to: try withIRQChip.snapshot()) }
        try assertFinishes(machine, after: ["sync 1"], like: reference, "untouched")
    }
}
