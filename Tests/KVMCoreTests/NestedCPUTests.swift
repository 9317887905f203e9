import XCTest

@testable import KVMCore

/// `VCPU.enableNesting`'s VMX MSR template, without a nesting host.
final class NestedCPUTests: XCTestCase {
    /// KVM_GET_MSR_FEATURE_INDEX_LIST's VMX part on Debian 6.1's kvm_intel, as
    /// Tools/vmx-lab/run --linux saw it (Bochs corei7_skylake_x): KVM refused
    /// 0x481–0x484, 0x487 and 0x489 with EINVAL (vmx_set_vmx_msr()), so they
    /// must not be copied; the rest are restorable.
    func testDerivedVMXCapabilityMSRsAreNotCopied() {
        let features: [UInt32] = [0x10, 0x3A] + Array(0x480...0x491) + [0xC001_0114]
        let copied = VCPU.vmxCapabilityMSRsToCopy(features)
        XCTAssertEqual(copied, [0x480, 0x485, 0x486, 0x488, 0x48A, 0x48B, 0x48C, 0x48D, 0x48E, 0x48F, 0x490, 0x491])
        for index: UInt32 in [0x481, 0x482, 0x483, 0x484, 0x487, 0x489] {
            XCTAssertFalse(copied.contains(index), "MSR \(String(index, radix: 16)) is derived by KVM")
        }
        XCTAssertEqual(VCPU.vmxCapabilityMSRsToCopy([0x3A, 0x10, 0x494]), [])
        XCTAssertEqual(VCPU.vmxCapabilityMSRsToCopy([0x48E, 0x480]), [0x48E, 0x480], "keeps KVM's order")
    }
}
