import KVMCore
import XCTest

/// kvmrun's chain leaves (40000100h–40000101h): what a guest is told, and what
/// a kvmrun inside that guest reads back and tells its own guests.
final class VMChainTests: XCTestCase {
    /// A CPUID function answering from `table` (zeros elsewhere).
    private func host(_ table: [CPUIDEntry], hypervisorBit: Bool) -> HostCPU {
        HostCPU(cpuid: { leaf, _ in
            if leaf == 0 { return (0xD, 0, 0, 0) }
            if leaf == 1 { return (0, 0, hypervisorBit ? 1 << 31 : 0, 0) }
            guard let e = table.first(where: { $0.function == leaf }) else { return (0, 0, 0, 0) }
            return (e.eax, e.ebx, e.ecx, e.edx)
        })
    }

    private func signature(_ text: String) -> CPUIDEntry {
        CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0001, signature: text)
    }

    func testLevelsDownAChain() {
        // Bare metal: kvmrun's guests are level 1 on hardware.
        let metal = VMChain(guestOf: host([], hypervisorBit: false))
        XCTAssertEqual(metal, VMChain(level: 1, base: ""))
        // Under QEMU TCG (the nested lab's L1): its guests are level 2 on TCG.
        let l1 = host([signature("TCGTCGTCGTCG")], hypervisorBit: true)
        XCTAssertNil(l1.chain, "QEMU does not present kvmrun's leaves")
        let l2Chain = VMChain(guestOf: l1)
        XCTAssertEqual(l2Chain, VMChain(level: 2, base: "TCGTCGTCGTCG"))
        // In that guest, which kvmrun runs: it reads its level and passes one more down.
        let l2 = host([signature("KVMKVMKVM")] + l2Chain.cpuidEntries, hypervisorBit: true)
        XCTAssertEqual(l2.chain, l2Chain)
        XCTAssertEqual(l2.hypervisorSignature, "KVMKVMKVM", "KVM's leaf is untouched")
        XCTAssertEqual(VMChain(guestOf: l2), VMChain(level: 3, base: "TCGTCGTCGTCG"))
    }

    /// The host report of a machine under kvmrun names its level and its L0.
    func testTheReportNamesTheChain() {
        let l2 = host(
            [signature("KVMKVMKVM")] + VMChain(level: 2, base: "TCGTCGTCGTCG").cpuidEntries, hypervisorBit: true)
        let report = NestingReport(
            facts: NestingFacts(
                cpu: l2, modules: [KVMModule(name: "kvm_amd", parameters: [("nested", "1")])], kernelRelease: "6.1.0",
                kvmOpenError: nil, apiVersion: 12, nestedStateCapability: 4224, supportedCPUIDHasVMX: false,
                supportedCPUIDHasSVM: true))
        XCTAssertTrue(
            report.text.contains(
                "VM chain                level 2 of a chain of VMs run by kvmrun; L0 is QEMU TCG (emulation)"),
            report.text)
        XCTAssertTrue(
            report.json.compact.contains("\"chain\":{\"level\":2,\"base_signature\":\"TCGTCGTCGTCG\"}"),
            report.json.compact)
        let plain = NestingReport(
            facts: NestingFacts(
                cpu: host([signature("KVMKVMKVM")], hypervisorBit: true), modules: [], kernelRelease: "6.1.0",
                kvmOpenError: nil, apiVersion: 12, nestedStateCapability: 0, supportedCPUIDHasVMX: false,
                supportedCPUIDHasSVM: false))
        XCTAssertFalse(plain.text.contains("VM chain"))
        XCTAssertTrue(plain.json.compact.contains("\"chain\":null"))
    }

    func testLeavesAreKVMRunsOwn() {
        let entries = VMChain(level: 2, base: "TCGTCGTCGTCG").cpuidEntries
        XCTAssertEqual(entries.map(\.function), [0x4000_0100, 0x4000_0101])
        XCTAssertEqual(entries[0].eax, 0x4000_0101, "the last leaf")
        XCTAssertEqual(entries[1].eax, 2)
        // A wrong signature at 40000100h is not a chain.
        var forged = entries
        forged[0].ebx ^= 1
        XCTAssertNil(host([signature("KVMKVMKVM")] + forged, hypervisorBit: true).chain)
    }

    /// A guest reads its level from CPUID 40000101h (EAX, sent out through
    /// isa-debug-exit), and KVM's signature is still at 40000000h.
    func testAGuestReadsItsLevel() throws {
        _ = try requireKVM()
        let machine = try Machine(memorySize: 4 << 20)
        let expected = VMChain(guestOf: HostCPU.current())
        XCTAssertEqual(try machine.vcpu.cpuid()[VMChain.levelLeaf]?.eax, expected.level)
        // mov eax, 0x40000101; cpuid; out 0xf4, al
        let code: [UInt8] = [0xB8, 0x01, 0x01, 0x00, 0x40, 0x0F, 0xA2, 0xE6, 0xF4]
        try machine.load(.flat(code, mode: .long, load: 0x10_0000))
        guard case .debugExit(let level) = try machine.run(timeout: .seconds(10)) else {
            return XCTFail("the guest did not reach its debug-exit")
        }
        XCTAssertEqual(level & 0xFF, expected.level)
        XCTAssertNotNil(try machine.vcpu.cpuid()[0x4000_0000], "KVM's leaves stay")
    }
}
