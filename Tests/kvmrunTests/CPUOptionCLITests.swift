import Foundation
import Guests
import KVMCore
import XCTest

/// `-cpu` refusals and nesting through kvmrun as a process: one stderr line,
/// the right status. Expectations follow the host's vendor (read through
/// KVM), never this machine's.
final class CPUOptionCLITests: XCTestCase {
    func hostVendor() throws -> String {
        try requireKVM()
        return try KVM().supportedCPUID().vendor
    }

    func refuse(
        _ arguments: [String], status: Int32 = 2, containing text: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let r = try kvmrun(arguments, file: file, line: line)
        XCTAssertEqual(r.status, status, "kvmrun \(arguments): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { !$0.contains("warning:") }
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(text), "'\(text)' in: \(r.stderr)", file: file, line: line)
    }

    func testUnknownModelsFeaturesAndValues() throws {
        try refuse(["-cpu", "pentium9"], containing: "-cpu pentium9: unknown CPU model 'pentium9'")
        try refuse(["-cpu", "qemu64,+nosuchfeature"], containing: "unknown CPU feature or property 'nosuchfeature'")
        try refuse(["-cpu", "max,x2apic=maybe"], containing: "x2apic=maybe: expected on or off")
        try refuse(["-cpu", "max,vendor=Intel"], containing: "expected 12 ASCII characters")
    }

    func testFeatureKVMLacksIsRefused() throws {
        try requireKVM()
        let supported = try Machine(memorySize: 16 << 20, irqchip: true).supportedCPUID()
        let skip: Set<String> = ["vmx", "svm", "apic", "hypervisor"]
        guard let lacking = CPUFeatures.all.first(where: { !skip.contains($0.name) && !$0.isSet(in: supported) }) else {
            throw XCTSkip("KVM here supports every feature kvmrun can name")
        }
        let scratch = try ScratchDirectory()
        let kernel = try scratch.file("mb-cpuid.elf", GuestImage.mbCpuid.bytes)
        try refuse(
            ["-kernel", kernel, "-cpu", "max,+\(lacking.name)"],
            containing:
                "feature '\(lacking.name)' (\(lacking.word) bit \(lacking.bit)): KVM does not support it on this host")
        // Without the in-kernel irqchip (a flat guest, one vCPU) there is no x2APIC to give.
        try refuse(["--builtin", "hello-c", "-cpu", "max,+x2apic"], containing: "without the in-kernel irqchip")
        try refuse(["-cpu", "host,-apic"], containing: "always have a local APIC")
    }

    /// `-cpu …,+svm|+vmx` is `--nested`: the same status (20 where the host cannot
    /// nest, with the report's reason); the other vendor's technology is refused.
    func testNestingThroughCPU() throws {
        let vendor = try hostVendor()
        guard vendor == "GenuineIntel" || vendor == "AuthenticAMD" else { throw XCTSkip("host vendor \(vendor)") }
        let own = vendor == "GenuineIntel" ? "vmx" : "svm"
        let foreign = own == "vmx" ? "svm" : "vmx"
        let guest = ["--builtin", "nested-cpuid", "--timeout", "20"]
        let nested = try kvmrun(guest + ["--nested"])
        let viaCPU = try kvmrun(guest + ["-cpu", "max,+\(own)"])
        XCTAssertEqual(
            viaCPU.status, nested.status, "-cpu max,+\(own) as --nested: \(viaCPU.stderr) / \(nested.stderr)")
        if nested.status == 20 {
            XCTAssertTrue(viaCPU.stderr.hasPrefix("kvmrun: -cpu max,+\(own): "), viaCPU.stderr)
            XCTAssertEqual(viaCPU.stderr.split(separator: "\n").count, 1, viaCPU.stderr)
        } else {
            XCTAssertTrue(viaCPU.stdout.contains("\(own)=1"), viaCPU.stdout)
        }
        XCTAssertEqual(
            try kvmrun(guest + ["-cpu", "max,+\(own)", "--nested=force"]).status,
            try kvmrun(guest + ["--nested=force"]).status, "--nested=force with +\(own) is --nested=force")
        try refuse(
            guest + ["-cpu", "max,+\(foreign)"],
            containing: "+\(foreign): this host's CPU is \(vendor); KVM nests only with \(own) here")
        try refuse(guest + ["-cpu", "max,+\(own)", "--nested=off"], containing: "+\(own) contradicts --nested=off")
        try refuse(guest + ["-cpu", "max,-\(own)", "--nested"], containing: "-\(own) contradicts --nested=on")
        let otherVendor = vendor == "GenuineIntel" ? "AuthenticAMD" : "GenuineIntel"
        try refuse(
            guest + ["-cpu", "max,+\(own),vendor=\(otherVendor)"], containing: "\(own) with vendor=\(otherVendor)")
        // Off is off: the guest sees no VMX/SVM.
        let off = try kvmrun(guest + ["-cpu", "max,-\(own)"])
        XCTAssertEqual(off.status, 0, off.stderr)
        XCTAssertTrue(off.stdout.contains("\(own)=0"), off.stdout)
    }

    /// kvmrun adds x2APIC with the in-kernel irqchip; `-x2apic` must win, on every vCPU.
    func testMinusX2APICWins() throws {
        try requireKVM()
        let scratch = try ScratchDirectory()
        let kernel = try scratch.file("mb-cpuid.elf", GuestImage.mbCpuid.bytes)
        for (cpu, x2apic) in [("host", true), ("host,-x2apic", false), ("max,x2apic=off", false), ("qemu64", true)] {
            let r = try kvmrun(["-kernel", kernel, "-cpu", cpu, "-smp", "2"])
            XCTAssertEqual(r.status, 1, r.stderr)
            let ecx = QEMUCPUOracleTests.fields(r.stdout)["leaf1.ecx"].flatMap { UInt32($0.dropFirst(2), radix: 16) }
            XCTAssertEqual(ecx.map { $0 & (1 << 21) != 0 }, x2apic, "-cpu \(cpu): \(r.stdout)")
        }
    }
}
