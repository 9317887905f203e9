import KVMCore
import KVMTesting
import XCTest

/// A guest executes instructions; the host checks their effects at a checkpoint
/// and changes state the guest then checks (the selftests' stage pattern).
final class InstructionTests: XCTestCase {
    func testSWAPGSAndCPUIDSeenFromTheHost() throws {
        let kernelGSBase: UInt32 = 0xC000_0102
        var sawStage1 = false
        let run = try runGuest(.cpuidMsr) { checkpoint in
            guard checkpoint.stage == 1 else { return }
            sawStage1 = true
            // After the guest's WRMSR + SWAPGS: GS.base has the value, the MSR GS's old base.
            let sregs = try checkpoint.vcpu.specialRegisters()
            XCTAssertEqual(sregs.gs.base, 0x7FFF_1234_5678)
            XCTAssertEqual(try checkpoint.vcpu.msrs([kernelGSBase]).first?.value, 0)
            // A value of the host's, which the guest's RDMSR and next SWAPGS must see.
            try checkpoint.vcpu.setMSRs([MSR(kernelGSBase, 0xFFFF_8000_CAFE_0000)])
            try checkpoint.reply(0xFFFF_8000_CAFE_0000)
        }
        XCTAssertTrue(sawStage1)
        XCTAssertTrue(run.passed)
        XCTAssertEqual(try run.machine.vcpu.specialRegisters().gs.base, 0xFFFF_8000_CAFE_0000)
        // CPUID leaf 0 as the guest saw it is the vCPU's CPUID table.
        let leaf0 = try XCTUnwrap(try run.machine.vcpu.cpuid()[0])
        XCTAssertEqual(run.facts["cpuid0_eax", as: UInt32.self], leaf0.eax)
        XCTAssertEqual(run.facts["cpuid0_ebx", as: UInt32.self], leaf0.ebx)
        XCTAssertEqual(run.facts["cpuid0_ecx", as: UInt32.self], leaf0.ecx)
        XCTAssertEqual(run.facts["cpuid0_edx", as: UInt32.self], leaf0.edx)
        XCTAssertEqual(run.facts["xadd_sum"], 12)
    }
}
