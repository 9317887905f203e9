import Foundation
import Guests
import KVMCore
import XCTest

/// The nesting report's verdict logic on fabricated hosts, and what really
/// happens on this one (tests skip with the report's own words where the host
/// differs from what they need).
final class NestedHostTests: XCTestCase {
    // MARK: Verdicts on fabricated hosts

    private func cpu(
        vendor: String, vmx: Bool = false, svm: Bool = false,
        hypervisor: String? = nil, family: UInt32 = 6, model: UInt32 = 0x55
    ) -> HostCPU {
        HostCPU(cpuid: { leaf, _ in
            switch leaf {
            case 0:
                // The vendor string's order is EBX, EDX, ECX.
                let v = CPUIDEntry(function: 0, eax: 0x1F, signature: vendor)
                return (v.eax, v.ebx, v.edx, v.ecx)
            case 1:
                let eax = (family << 8) | ((model & 0xF) << 4) | ((model >> 4) << 16) | 2
                let ecx: UInt32 = (vmx ? 1 << 5 : 0) | (hypervisor != nil ? 1 << 31 : 0)
                return (eax, 0, ecx, 0)
            case 0x4000_0000:
                let h = CPUIDEntry(function: leaf, eax: 0x4000_0001, signature: hypervisor ?? "")
                return (h.eax, h.ebx, h.ecx, h.edx)
            case 0x8000_0000: return (0x8000_0008, 0, 0, 0)
            case 0x8000_0001: return (0, 0, svm ? 1 << 2 : 0, 0)
            default: return (0, 0, 0, 0)
            }
        })
    }

    private func facts(
        cpu: HostCPU, modules: [KVMModule], capability: Int = 8320,
        offersVMX: Bool = false, offersSVM: Bool = false, kvmError: String? = nil
    ) -> NestingFacts {
        NestingFacts(
            cpu: cpu, modules: modules, kernelRelease: "6.1.0", kvmOpenError: kvmError,
            apiVersion: kvmError == nil ? 12 : nil, nestedStateCapability: capability,
            supportedCPUIDHasVMX: offersVMX, supportedCPUIDHasSVM: offersSVM)
    }

    func testHostCPUDecodesVendorModelAndHypervisor() {
        let c = cpu(vendor: "GenuineIntel", vmx: true, hypervisor: "KVMKVMKVM", family: 6, model: 0xCF)
        XCTAssertEqual(c.vendor, .intel)
        XCTAssertEqual(c.family, 6)
        XCTAssertEqual(c.model, 0xCF)
        XCTAssertEqual(c.stepping, 2)
        XCTAssertTrue(c.isVirtualMachine)
        XCTAssertEqual(c.hypervisorSignature, "KVMKVMKVM")
        XCTAssertEqual(c.hypervisorName, "KVM")
        XCTAssertTrue(c.hasVMX)
        XCTAssertFalse(c.hasSVM)
    }

    func testBareMetalIntelWithNestedOnIsAvailable() {
        let report = NestingReport(
            facts: facts(
                cpu: cpu(vendor: "GenuineIntel", vmx: true),
                modules: [
                    KVMModule(name: "kvm", parameters: []),
                    KVMModule(name: "kvm_intel", parameters: [("nested", "Y"), ("ept", "Y")]),
                ],
                offersVMX: true))
        XCTAssertEqual(report.verdict, .available(.vmx))
        XCTAssertEqual(report.reasons, [])
        XCTAssertEqual(report.summary, "nested virtualization available (VMX)")
    }

    func testNestedParameterOffNamesTheModprobeFix() {
        let report = NestingReport(
            facts: facts(
                cpu: cpu(vendor: "AuthenticAMD", svm: true),
                modules: [KVMModule(name: "kvm_amd", parameters: [("nested", "0")])], capability: 4224, offersSVM: true)
        )
        XCTAssertEqual(report.verdict, .unavailable)
        XCTAssertEqual(report.reasons, ["kvm_amd is loaded with nested=0"])
        XCTAssertTrue(report.fixes[0].contains("options kvm-amd nested=1"), report.fixes[0])
        XCTAssertTrue(report.fixes[0].contains("/etc/modprobe.d/kvm_amd.conf"), report.fixes[0])
    }

    func testVirtualMachineWithoutVMXSuggestsCPUHost() {
        let report = NestingReport(
            facts: facts(
                cpu: cpu(vendor: "GenuineIntel", hypervisor: "KVMKVMKVM"),
                modules: [KVMModule(name: "kvm_intel", parameters: [("nested", "Y")])]))
        XCTAssertEqual(report.verdict, .unavailable)
        XCTAssertTrue(
            report.reasons.contains { $0.contains("itself a virtual machine (under KVM)") }, "\(report.reasons)")
        XCTAssertTrue(
            report.fixes.contains {
                $0.contains("-cpu host") && $0.contains("vmx=on") && $0.contains("host-passthrough")
            })
    }

    func testParavirtualKVMIsNotMistakenForNesting() {
        let report = NestingReport(
            facts: facts(
                cpu: cpu(vendor: "GenuineIntel", hypervisor: "KVMKVMKVM"),
                modules: [
                    KVMModule(name: "kvm", parameters: []), KVMModule(name: "kvm_pvm", parameters: [("force", "N")]),
                ],
                capability: 0))
        XCTAssertEqual(report.verdict, .unavailable)
        XCTAssertTrue(report.reasons[0].hasPrefix("host KVM is kvm_pvm, not kvm_intel or kvm_amd"), report.reasons[0])
        XCTAssertTrue(report.warnings.contains { $0.contains("KVM_CAP_NESTED_STATE = 0") })
        XCTAssertTrue(report.warnings.contains { $0.contains("do not mistake running guests for nested KVM") })
    }

    func testTCGLevelZeroIsAvailableButWarnedAbout() {
        let report = NestingReport(
            facts: facts(
                cpu: cpu(vendor: "AuthenticAMD", svm: true, hypervisor: "TCGTCGTCGTCG"),
                modules: [KVMModule(name: "kvm_amd", parameters: [("nested", "1"), ("nrips", "0")])],
                capability: 4224, offersSVM: true))
        XCTAssertEqual(report.verdict, .available(.svm))
        XCTAssertTrue(report.warnings.contains { $0.contains("QEMU TCG") })
        XCTAssertTrue(report.warnings.contains { $0.contains("its guests are L2") })
        XCTAssertTrue(report.warnings.contains { $0.contains("nrips=0") })
    }

    func testUnusableDevKVMIsTheFirstReason() {
        let report = NestingReport(
            facts: facts(
                cpu: cpu(vendor: "GenuineIntel", vmx: true), modules: [],
                kvmError: "open /dev/kvm: ENOENT"))
        XCTAssertEqual(report.verdict, .unavailable)
        XCTAssertEqual(report.reasons.first, "/dev/kvm is not usable: open /dev/kvm: ENOENT")
    }

    func testReportJSONCarriesVerdictAndSchema() throws {
        let report = NestingReport(
            facts: facts(
                cpu: cpu(vendor: "AuthenticAMD", svm: true),
                modules: [KVMModule(name: "kvm_amd", parameters: [("nested", "1")])], capability: 4224, offersSVM: true)
        )
        let parsed = try JSONValue(parsing: report.json.pretty)
        XCTAssertEqual(parsed["schema"]?.stringValue, "swift-kvm/host-report/1")
        XCTAssertEqual(parsed["verdict"]?["available"]?.boolValue, true)
        XCTAssertEqual(parsed["verdict"]?["technology"]?.stringValue, "SVM")
        XCTAssertEqual(parsed["kvm"]?["nested_state_capability"]?.int64Value, 4224)
        XCTAssertEqual(parsed["kvm"]?["modules"]?[0]?["parameters"]?["nested"]?.stringValue, "1")
    }

    // MARK: This host

    private func liveReport() throws -> NestingReport {
        try requireKVM()
        return NestingReport(facts: .gather())
    }

    func testLiveReportIsConsistent() throws {
        let report = try liveReport()
        XCTAssertEqual(report.isAvailable, report.reasons.isEmpty && report.technology != nil)
        XCTAssertEqual(report.reasons.count, report.fixes.count)
        if FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") {
            XCTAssertEqual(report.verdict, .unavailable)
            XCTAssertTrue(report.reasons[0].contains("kvm_pvm"), report.reasons[0])
        }
        XCTAssertEqual(report.facts.nestedStateCapability, try requireKVM().check(.nestedState))
    }

    func testNestingOnIsRefusedWithTheReportsReason() throws {
        let report = try liveReport()
        guard !report.isAvailable else { throw XCTSkip("this host can nest (\(report.summary)): nothing to refuse") }
        let machine = try Machine(serial: .buffer)
        XCTAssertThrowsError(try machine.vcpu.enableNesting(.on, report: report)) { error in
            XCTAssertEqual((error as? NestingUnavailable)?.description, report.summary)
        }
    }

    func testForcedNestingShowsTheGuestAnExceptionNotATripleFault() throws {
        let report = try liveReport()
        guard !report.isAvailable else {
            throw XCTSkip("this host can nest (\(report.summary)): the lab covers the working path")
        }
        guard report.technology != nil else { throw XCTSkip("unknown CPU vendor: \(report.facts.cpu.vendorString)") }
        let machine = try Machine(serial: .buffer)
        try machine.vcpu.enableNesting(.force, report: report)
        let cpuid = try machine.vcpu.cpuid()
        if report.technology == .vmx {
            XCTAssertNotEqual((cpuid[1]?.ecx ?? 0) & (1 << 5), 0, "VMX bit set in the vCPU's CPUID")
        } else {
            XCTAssertNotEqual((cpuid[0x8000_0001]?.ecx ?? 0) & (1 << 2), 0, "SVM bit set in the vCPU's CPUID")
        }
        try machine.load(ELFImage.parse(GuestImage.nestedEnable.bytes))
        let stop = try machine.run(timeout: .seconds(20))
        guard case .done(status: 0) = stop else { return XCTFail("expected HC_DONE 0, got \(stop)") }
        let vector = machine.hostcall.fact("exception")
        XCTAssertTrue(
            vector == 13 || vector == 6,
            "expected #GP (13) or #UD (6), got \(String(describing: vector)); serial:\n\(machine.serial.text)")
        XCTAssertNotNil(machine.hostcall.fact("exception_rip"))
        XCTAssertTrue(machine.serial.text.contains("probe exception vector="), machine.serial.text)
    }

    func testGetNestedStateNamesTheMissingCapability() throws {
        let kvm = try requireKVM()
        guard kvm.check(.nestedState) == 0 else {
            throw XCTSkip("KVM_CAP_NESTED_STATE = \(kvm.check(.nestedState)): this host has nested state")
        }
        let machine = try Machine(serial: .buffer, kvm: kvm)
        XCTAssertThrowsError(try machine.vcpu.nestedState()) { error in
            guard let error = error as? KVMError else { return XCTFail("not a KVMError: \(error)") }
            XCTAssertEqual(error.operation, "KVM_GET_NESTED_STATE")
            XCTAssertEqual(error.errno, .EINVAL)
            XCTAssertEqual(
                error.description,
                "KVM_GET_NESTED_STATE: EINVAL — host KVM has no nested state support (KVM_CAP_NESTED_STATE = 0)")
        }
    }

    func testSetNestedStateIsRefusedBeforeTheIoctlAndByTheKernel() throws {
        let kvm = try requireKVM()
        guard kvm.check(.nestedState) == 0 else {
            throw XCTSkip("KVM_CAP_NESTED_STATE = \(kvm.check(.nestedState)): this host has nested state")
        }
        let machine = try Machine(serial: .buffer, kvm: kvm)
        let headerOnly = NestedState.vmx(VMXNestedState())
        XCTAssertThrowsError(try machine.vcpu.setNestedState(headerOnly)) { error in
            guard let rejected = error as? NestedStateRejected else {
                return XCTFail("not refused before the ioctl: \(error)")
            }
            XCTAssertTrue(rejected.violations.contains(.noNestedStateSupport), "\(rejected.violations)")
        }
        XCTAssertThrowsError(try machine.vcpu.setNestedState(headerOnly, validate: false)) { error in
            XCTAssertEqual(
                (error as? KVMError)?.description,
                "KVM_SET_NESTED_STATE: EINVAL — host KVM has no nested state support (KVM_CAP_NESTED_STATE = 0)")
        }
    }
}
