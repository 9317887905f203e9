import Foundation
import KVMCore
import XCTest

/// What the host's KVM reports about itself.
final class KVMFactsTests: XCTestCase {
    func testCapabilities() throws {
        let kvm = try requireKVM()
        XCTAssertGreaterThan(kvm.check(.userMemory), 0, "KVM_CAP_USER_MEMORY")
        XCTAssertGreaterThan(kvm.check(.nrMemslots), 1, "KVM_CAP_NR_MEMSLOTS")
        XCTAssertGreaterThanOrEqual(kvm.vcpuMmapSize, 4096, "kvm_run is at least a page")
        XCTAssertEqual(kvm.path, "/dev/kvm")
        let all = kvm.capabilities()
        XCTAssertEqual(all.count, Capability.allCases.count)
        XCTAssertEqual(all.first { $0.0 == .userMemory }?.1, kvm.check(.userMemory))
        XCTAssertEqual(Capability.nestedState.kernelName, "KVM_CAP_NESTED_STATE")
        XCTAssertEqual(Set(Capability.allCases.map(\.kernelName)).count, Capability.allCases.count, "names are unique")
    }

    func testSupportedCPUID() throws {
        let cpuid = try requireKVM().supportedCPUID()
        XCTAssertFalse(cpuid.entries.isEmpty)
        XCTAssertEqual(cpuid.vendor.utf8.count, 12, "vendor \"\(cpuid.vendor)\" is 12 characters")
        let leaf0 = try XCTUnwrap(cpuid[0], "no CPUID leaf 0")
        XCTAssertGreaterThanOrEqual(leaf0.eax, 1, "leaf 0 reports the highest basic leaf")
        XCTAssertNotNil(cpuid[1], "leaf 1 is always there")
        XCTAssertNotNil(cpuid[0x8000_0000], "extended leaves are there")
    }

    func testVCPUCPUIDIsTheSupportedOneWithItsAPICID() throws {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        try vm.addMemory(at: 0, size: 1 << 20)
        let vcpu = try vm.createVCPU(id: 3)
        let table = try vcpu.cpuid()
        XCTAssertEqual(table.vendor, try kvm.supportedCPUID().vendor)
        let leaf1 = try XCTUnwrap(table[1])
        XCTAssertEqual(leaf1.ebx >> 24, 3, "initial APIC ID in CPUID.1:EBX[31:24]")
    }

    func testMSRIndexList() throws {
        let list = try requireKVM().msrIndexList()
        XCTAssertFalse(list.isEmpty)
        XCTAssertEqual(Set(list).count, list.count, "no duplicates")
        XCTAssertTrue(list.contains(0xC000_0102), "KERNEL_GS_BASE is saved by KVM: \(list.map { hex($0) })")
    }
}

/// vCPU state round trips: what is set is read back.
final class VCPUStateTests: XCTestCase {
    private var vm: VirtualMachine!
    private var vcpu: VCPU!

    override func setUpWithError() throws {
        vm = try requireKVM().createVM()
        try vm.addMemory(at: 0, size: 2 << 20)
        vcpu = try vm.createVCPU()
    }

    override func tearDown() {
        vcpu = nil
        vm = nil
    }

    func testRegisters() throws {
        var regs = try vcpu.registers()
        let values: [UInt64] = (1...16).map { UInt64($0) &* 0x0101_0101_0101_0101 }
        regs.rax = values[0]
        regs.rbx = values[1]
        regs.rcx = values[2]
        regs.rdx = values[3]
        regs.rsi = values[4]
        regs.rdi = values[5]
        regs.rbp = values[6]
        regs.rsp = values[7]
        regs.r8 = values[8]
        regs.r9 = values[9]
        regs.r10 = values[10]
        regs.r11 = values[11]
        regs.r12 = values[12]
        regs.r13 = values[13]
        regs.r14 = values[14]
        regs.r15 = values[15]
        regs.rip = 0xFFF0
        regs.rflags = 0x2 | 0x1 | 0x40 // CF, ZF
        try vcpu.setRegisters(regs)
        let back = try vcpu.registers()
        let pairs: [(UInt64, UInt64)] = [
            (back.rax, values[0]), (back.rbx, values[1]), (back.rcx, values[2]), (back.rdx, values[3]),
            (back.rsi, values[4]), (back.rdi, values[5]), (back.rbp, values[6]), (back.rsp, values[7]),
            (back.r8, values[8]), (back.r9, values[9]), (back.r10, values[10]), (back.r11, values[11]),
            (back.r12, values[12]), (back.r13, values[13]), (back.r14, values[14]), (back.r15, values[15]),
            (back.rip, 0xFFF0), (back.rflags, 0x43),
        ]
        for (i, (actual, expected)) in pairs.enumerated() {
            XCTAssertEqual(actual, expected, "register #\(i): \(hex(actual)) != \(hex(expected))")
        }
        XCTAssertTrue(back.dump.contains("rax") && back.dump.contains("=0101010101010101"), back.dump)
        XCTAssertTrue(back.dump.contains("=0000000000000043"), "rflags in the dump: \(back.dump)")
        XCTAssertEqual(back.dump.split(separator: "\n").count, 5, "18 registers, four a line")
    }

    func testSpecialRegisters() throws {
        var sregs = try vcpu.specialRegisters()
        sregs.cr2 = 0x1234_5000
        sregs.gdt.base = 0x7000
        sregs.gdt.limit = 0x37
        sregs.idt.base = 0x8000
        sregs.idt.limit = 0xFFF
        sregs.ds.selector = 0x2000
        sregs.ds.base = 0x2_0000
        try vcpu.setSpecialRegisters(sregs)
        let back = try vcpu.specialRegisters()
        XCTAssertEqual(back.cr2, 0x1234_5000)
        XCTAssertEqual(back.gdt.base, 0x7000)
        XCTAssertEqual(back.gdt.limit, 0x37)
        XCTAssertEqual(back.idt.base, 0x8000)
        XCTAssertEqual(back.idt.limit, 0xFFF)
        XCTAssertEqual(back.ds.selector, 0x2000)
        XCTAssertEqual(back.ds.base, 0x2_0000)
    }

    func testLongModeSetUp() throws {
        try vcpu.setUp(mode: .long, entry: 0x10_0000)
        let sregs = try vcpu.specialRegisters()
        XCTAssertEqual(sregs.efer & (EFER.lme | EFER.lma), EFER.lme | EFER.lma)
        XCTAssertEqual(sregs.cr0 & (ControlRegister.pe | ControlRegister.pg), ControlRegister.pe | ControlRegister.pg)
        XCTAssertEqual(sregs.cr4 & ControlRegister.pae, ControlRegister.pae)
        XCTAssertEqual(sregs.cr3, BootLayout.pml4)
        XCTAssertEqual(sregs.cs.selector, BootLayout.code64)
        XCTAssertEqual(sregs.cs.l, 1)
        XCTAssertEqual(sregs.gdt.base, BootLayout.gdt)
        let regs = try vcpu.registers()
        XCTAssertEqual(regs.rip, 0x10_0000)
        XCTAssertEqual(regs.rsp, BootLayout.stackTop)
        XCTAssertEqual(regs.rflags, 0x2)
        // The identity map: PML4[0] → PDPT, PDPT[0] → first PD, PD[1] maps 2 MiB with a 2 MiB page.
        XCTAssertEqual(try vm.memory.read(UInt64.self, at: BootLayout.pml4) & ~0xFFF, BootLayout.pdpt)
        XCTAssertEqual(try vm.memory.read(UInt64.self, at: BootLayout.pdpt) & ~0xFFF, BootLayout.pageDirectories)
        XCTAssertEqual(try vm.memory.read(UInt64.self, at: BootLayout.pageDirectories + 8), (2 << 20) | 0x83)
        XCTAssertTrue(sregs.summary.contains("efer="), sregs.summary)
    }

    func testRealModeSetUp() throws {
        try vcpu.setUp(mode: .real, entry: 0x1_0000)
        let sregs = try vcpu.specialRegisters()
        XCTAssertEqual(sregs.cs.selector, 0x1000)
        XCTAssertEqual(sregs.cs.base, 0x1_0000)
        XCTAssertEqual(sregs.ss.selector, 0x1000)
        XCTAssertEqual(sregs.cr0 & ControlRegister.pe, 0)
        XCTAssertEqual(try vcpu.registers().rip, 0)
        XCTAssertEqual(try vcpu.registers().rsp, 0x8000)
        assertThrows(ConfigurationError.self, containing: ["above 1 MiB"]) {
            try vcpu.setUp(mode: .real, entry: 0x10_0000)
        }
    }

    func testFPU() throws {
        var fpu = try vcpu.fpu()
        // KVM_SET_FPU does not write MXCSR (the kernel copies every field but that
        // one), so only the fields it does take are checked.
        fpu.fcw = 0x027F
        fpu.last_ip = 0x1234
        withUnsafeMutableBytes(of: &fpu.xmm) { raw in
            for i in 0..<16 { raw[i] = UInt8(0xA0 + i) } // xmm0
        }
        try vcpu.setFPU(fpu)
        var back = try vcpu.fpu()
        XCTAssertEqual(back.fcw, 0x027F)
        XCTAssertEqual(back.last_ip, 0x1234)
        let xmm0 = withUnsafeBytes(of: &back.xmm) { Array($0.prefix(16)) }
        XCTAssertEqual(xmm0, (0..<16).map { UInt8(0xA0 + $0) })
    }

    func testXCRs() throws {
        var xcrs = try vcpu.xcrs()
        XCTAssertGreaterThanOrEqual(xcrs.nr_xcrs, 1, "XCR0 is reported")
        XCTAssertEqual(xcrs.xcrs.0.xcr, 0)
        XCTAssertEqual(xcrs.xcrs.0.value & 1, 1, "x87 is always on in XCR0")
        let target: UInt64 = xcrs.xcrs.0.value == 0x3 ? 0x1 : 0x3
        xcrs.nr_xcrs = 1
        xcrs.xcrs.0.value = target
        try vcpu.setXCRs(xcrs)
        XCTAssertEqual(try vcpu.xcrs().xcrs.0.value, target)
    }

    func testEvents() throws {
        var events = try vcpu.events()
        XCTAssertEqual(events.nmi.masked, 0, "a fresh vCPU has NMIs unmasked")
        events.nmi.masked = 1
        events.flags = 0
        try vcpu.setEvents(events)
        XCTAssertEqual(try vcpu.events().nmi.masked, 1)
        events.nmi.masked = 0
        try vcpu.setEvents(events)
        XCTAssertEqual(try vcpu.events().nmi.masked, 0)
    }

    func testDebugRegisters() throws {
        var dr = try vcpu.debugRegisters()
        dr.db = (0x1000, 0x2000, 0x3000, 0x4000)
        dr.dr7 = 0x0000_0400 | 0x1 | 0x4 // reserved bit 10, L0, L1
        dr.flags = 0
        try vcpu.setDebugRegisters(dr)
        let back = try vcpu.debugRegisters()
        XCTAssertEqual([back.db.0, back.db.1, back.db.2, back.db.3], [0x1000, 0x2000, 0x3000, 0x4000])
        XCTAssertEqual(back.dr7, 0x405)
    }

    func testMPStateWithoutAnIRQChip() throws {
        XCTAssertEqual(try vcpu.mpState(), .runnable)
        try vcpu.setMPState(.runnable)
        XCTAssertEqual(try vcpu.mpState(), .runnable)
        // Without an in-kernel LAPIC only RUNNABLE is accepted.
        let error = assertThrows(KVMError.self, containing: ["KVM_SET_MP_STATE"]) { try vcpu.setMPState(.halted) }
        XCTAssertEqual(error?.errno, .EINVAL)
    }

    func testMPStateWithAnIRQChip() throws {
        let vm = try requireKVM().createVM()
        do {
            try vm.createIRQChip()
        } catch let error as KVMError {
            throw XCTSkip("no in-kernel irqchip on this host: \(error)")
        }
        try vm.addMemory(at: 0, size: 1 << 20)
        let vcpu = try vm.createVCPU()
        XCTAssertEqual(try vcpu.mpState(), .runnable, "the BSP starts runnable")
        try vcpu.setMPState(.halted)
        XCTAssertEqual(try vcpu.mpState(), .halted)
        try vcpu.setMPState(.runnable)
        XCTAssertEqual(try vcpu.mpState(), .runnable)
        let lapic = try vcpu.lapic()
        try vcpu.setLAPIC(lapic)
    }

    /// A TSC deadline armed at snapshot time is armed in the fresh vCPU a
    /// restore writes: KVM drops the MSR while the LAPIC timer is not in
    /// TSC-deadline mode, so the restore writes it again after the LAPIC (a
    /// restored Linux otherwise never gets its next timer interrupt).
    func testTSCDeadlineSurvivesARestoreIntoAFreshVCPU() throws {
        let machine = try Machine(memorySize: 4 << 20, irqchip: true)
        guard machine.kvm.check(.tscDeadlineTimer) != 0 else {
            throw XCTSkip("KVM_CAP_TSC_DEADLINE_TIMER is 0 on this host")
        }
        var lapic = try machine.vcpu.lapic()
        // LVT timer (0x320): TSC-deadline mode (bits 17–18 = 2), vector 0xec.
        withUnsafeMutableBytes(of: &lapic) {
            $0.storeBytes(of: UInt32(2 << 17 | 0xEC), toByteOffset: 0x320, as: UInt32.self)
        }
        try machine.vcpu.setLAPIC(lapic)
        let deadline: UInt64 = 1 << 60
        try machine.vcpu.setMSRs([MSR(MSR.tscDeadline, deadline)])
        XCTAssertEqual(try machine.vcpu.msrs([MSR.tscDeadline]).first?.value, deadline, "armed in the original vCPU")
        let state = try machine.vcpu.saveState()
        let copy = try Machine(memorySize: 4 << 20, irqchip: true)
        try copy.vcpu.restoreState(state)
        XCTAssertEqual(try copy.vcpu.msrs([MSR.tscDeadline]).first?.value, deadline, "armed again in the fresh vCPU")
    }

    func testLAPICWithoutAnIRQChipNamesTheCause() throws {
        // KVM answers EINVAL when there is no in-kernel LAPIC (arch/x86/kvm/x86.c).
        let error = assertThrows(KVMError.self, containing: ["KVM_GET_LAPIC", "irqchip"]) { try vcpu.lapic() }
        XCTAssertEqual(error?.errno, .EINVAL)
    }

    func testMSRs() throws {
        let kernelGSBase: UInt32 = 0xC000_0102
        let tscAux: UInt32 = 0xC000_0103
        try vcpu.setMSRs([MSR(kernelGSBase, 0x0000_1234_5678_9000), MSR(tscAux, 0x42)])
        let back = try vcpu.msrs([kernelGSBase, tscAux])
        XCTAssertEqual(back, [MSR(kernelGSBase, 0x0000_1234_5678_9000), MSR(tscAux, 0x42)])
        try vcpu.setMSRs([MSR(kernelGSBase, 0xFFFF_8000_0000_1000)])
        XCTAssertEqual(try vcpu.msrs([kernelGSBase]).first?.value, 0xFFFF_8000_0000_1000)
        XCTAssertEqual(try vcpu.msrs([]), [])
    }

    func testBogusMSRIsNamed() throws {
        if let ignore = try? String(contentsOfFile: "/sys/module/kvm/parameters/ignore_msrs", encoding: .utf8),
            ignore.hasPrefix("Y")
        {
            throw XCTSkip("kvm.ignore_msrs=Y: KVM accepts unknown MSRs")
        }
        let bogus: UInt32 = 0x4B56_4D99 // in no MSR range KVM emulates
        let setError = assertThrows(KVMError.self, containing: ["KVM_SET_MSRS", hex(bogus)]) {
            try vcpu.setMSRs([MSR(0xC000_0102, 0x1000), MSR(bogus, 0x1234)])
        }
        XCTAssertTrue(setError?.hint?.contains(hex(bogus)) ?? false, "hint: \(setError?.hint ?? "nil")")
        XCTAssertTrue(setError?.hint?.contains("0x1234") ?? false, "the hint names the value too")
        assertThrows(KVMError.self, containing: ["KVM_GET_MSRS", hex(bogus)]) { try vcpu.msrs([0xC000_0102, bogus]) }
    }

    func testXSAVE() throws {
        var state = try vcpu.xsave()
        XCTAssertGreaterThanOrEqual(state.bytes.count, 4096)
        // Legacy area: xmm0 at byte 160; XSTATE_BV at 512, bit 1 = SSE state present.
        for i in 0..<16 { state.bytes[160 + i] = UInt8(0x30 + i) }
        state.bytes[512] |= 0x2
        try vcpu.setXSAVE(state)
        let back = try vcpu.xsave()
        XCTAssertEqual(Array(back.bytes[160..<176]), (0..<16).map { UInt8(0x30 + $0) })
        // The same register seen through KVM_GET_FPU.
        var fpu = try vcpu.fpu()
        let xmm0 = withUnsafeBytes(of: &fpu.xmm) { Array($0.prefix(16)) }
        XCTAssertEqual(xmm0, (0..<16).map { UInt8(0x30 + $0) })
        var short = back
        short.bytes = [UInt8](repeating: 0, count: 16)
        assertThrows(ConfigurationError.self, containing: ["XSAVE area of 16 bytes"]) { try vcpu.setXSAVE(short) }
    }

    func testVCPUIDOutOfRangeIsExplained() throws {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        let maxID = kvm.check(.maxVCPUID)
        try XCTSkipIf(maxID <= 0 || maxID > Int(UInt32.max), "KVM_CAP_MAX_VCPU_ID = \(maxID)")
        assertThrows(KVMError.self, containing: ["KVM_CREATE_VCPU", "out of range"]) {
            try vm.createVCPU(id: UInt32(maxID))
        }
    }
}
