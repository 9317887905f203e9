import Foundation
import Guests
import KVMCore
import XCTest

/// `-cpu` with QEMU as the oracle: mb-cpuid (Guests/src/mb-cpuid.c) prints
/// the CPUID words a -cpu line shapes, under `qemu-system-x86_64 -accel kvm`
/// and under kvmrun with the same -cpu, and the two must agree.
///
/// The comparison is masked, field by field:
/// - feature words (leaf 1 ECX/EDX, 7.0 EBX/ECX/EDX, 7.1 EAX, 0xD.1 EAX,
///   80000001h ECX/EDX, 80000008h EBX) on the bits QEMU names, i.e. the bits
///   -cpu can set — plus, in 80000001h EDX, the leaf 1 bits AMD repeats
///   there, which the model's vendor decides. Left out: bits no -cpu name
///   reaches, e.g. leaf 1 ECX.OSXSAVE (bit 27), which KVM derives at run
///   time from CR4, not from the table;
/// - leaf 1 EBX is not printed: it holds APIC IDs and counts QEMU derives
///   from its -smp topology;
/// - vendor, maximum basic and extended leaves, leaf 1 EAX (family, model,
///   stepping), brand string and the 40000000h signature: whole.
/// On a kvm_pvm host most of leaf 1 and leaf 7 reads back the host's bits
/// whatever the table says (seen under QEMU and kvmrun alike), so there the
/// oracle checks only the bits that follow the table; on kvm_intel/kvm_amd it
/// checks them all.
///
/// Lines whose explicit `+feature` KVM does not support on this host are left
/// out (kvmrun refuses them; QEMU warns and drops them), and `-cpu max` is
/// not compared: QEMU 7.2 aborts with it on some hosts (kvm_pvm rejects an
/// MSR it sets), and its `max` adds QEMU's own choices on others.
final class QEMUCPUOracleTests: XCTestCase {
    /// QEMU's spelling of `-cpu` lines where QEMU and kvmrun should agree. `%OTHER%` is
    /// the vendor that is not the host's.
    static let lines = [
        "qemu64", "qemu64,+x2apic,+tsc-deadline", "qemu64,x2apic=off,cx16=off", "qemu64,kvm=off",
        "kvm64", "kvm64,-x2apic", "qemu32", "qemu32,+cx16,+lm", "kvm32,kvm=off",
        "Conroe", "Penryn,-sse4.1", "Nehalem,-hypervisor", "Westmere,vendor=%OTHER%",
        "qemu64,vendor=%OTHER%,sse3=off,lahf_lm=off",
    ]

    func testCPUModelsAgainstQEMU() throws {
        let qemu = try QEMUOracleTests.qemu()
        if qemu.accel != "kvm" {
            throw XCTSkip("\(qemu.note ?? "QEMU runs on TCG"); -cpu models under TCG are not KVM's")
        }
        try requireKVM()
        let machine = try Machine(memorySize: 16 << 20, irqchip: true)
        let supported = try machine.supportedCPUID()
        let other = supported.vendor == "GenuineIntel" ? "AuthenticAMD" : "GenuineIntel"
        let scratch = try ScratchDirectory()
        let kernel = try scratch.file("mb-cpuid.elf", GuestImage.mbCpuid.bytes)
        var compared = 0
        for template in Self.lines {
            let line = template.replacingOccurrences(of: "%OTHER%", with: other)
            let model = try CPUModel(parsing: line)
            let lacking = model.requested.filter {
                $0.value && !$0.key.isSet(in: supported) && $0.key != CPUFeatures.hypervisor
            }
            if !lacking.isEmpty {
                print("-cpu \(line): not compared, KVM here lacks \(lacking.keys.map(\.name).sorted())")
                continue
            }
            let options = ["-kernel", kernel, "-m", "64", "-cpu", line]
            let q = try QEMUOracleTests.run(
                qemu.path, QEMUOracleTests.qemuArguments(accel: "kvm", qboot: qemu.qboot, firmware: .qboot) + options,
                timeout: 60)
            guard q.status == 1, !q.stdout.isEmpty else {
                print(
                    "-cpu \(line): not compared, QEMU did not run it (status \(q.status)): \(q.stderr.split(separator: "\n").last ?? "")"
                )
                continue
            }
            let k = try kvmrun(options, timeout: 60)
            XCTAssertEqual(k.status, 1, "-cpu \(line): kvmrun status \(k.status): \(k.stderr)")
            let qf = Self.fields(q.stdout)
            let kf = Self.fields(k.stdout)
            XCTAssertEqual(
                Set(qf.keys), Set(kf.keys),
                "-cpu \(line): printed fields differ\nQEMU:\n\(q.stdout)kvmrun:\n\(k.stdout)")
            for (key, qv) in qf.sorted(by: { $0.key < $1.key }) {
                guard let kv = kf[key] else { continue }
                if let mask = Self.masks[key], let a = UInt32(qv.dropFirst(2), radix: 16),
                    let b = UInt32(kv.dropFirst(2), radix: 16)
                {
                    XCTAssertEqual(
                        a & mask, b & mask,
                        "-cpu \(line): \(key) QEMU \(qv) kvmrun \(kv), differing bits \(Self.names(key, (a ^ b) & mask))"
                    )
                } else {
                    XCTAssertEqual(qv, kv, "-cpu \(line): \(key)")
                }
            }
            compared += 1
        }
        print("-cpu lines compared with QEMU: \(compared) of \(Self.lines.count)")
        XCTAssertGreaterThanOrEqual(compared, Self.lines.count / 2, "most lines compared")
    }

    /// mb-cpuid's output as "line.key" → value ("vendor", "leaf1.ecx", "brand", "hv.sig", …).
    static func fields(_ output: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in output.split(separator: "\n") {
            if line.hasPrefix("vendor=") || line.hasPrefix("brand=") {
                // vendor="…" max=…: the quoted string first.
                let name = String(line.prefix { $0 != "=" })
                let rest = line.dropFirst(name.count + 1)
                if let end = rest.dropFirst().firstIndex(of: "\"") {
                    result[name] = String(rest[...end])
                    for token in rest[rest.index(after: end)...].split(separator: " ") {
                        add(token, to: &result, prefix: name)
                    }
                }
                continue
            }
            let tokens = line.split(separator: " ")
            guard let head = tokens.first else { continue }
            for token in tokens.dropFirst() { add(token, to: &result, prefix: String(head)) }
        }
        return result
    }

    private static func add(_ token: Substring, to result: inout [String: String], prefix: String) {
        let kv = token.split(separator: "=", maxSplits: 1)
        if kv.count == 2 { result["\(prefix).\(kv[0])"] = String(kv[1]) }
    }

    /// The bits -cpu can name in each printed feature word.
    static let masks: [String: UInt32] = {
        func named(_ leaf: UInt32, _ subleaf: UInt32, _ register: CPUIDRegister) -> UInt32 {
            CPUFeatures.all.filter { $0.word == CPUFeatureWord(leaf: leaf, subleaf: subleaf, register: register) }
                .reduce(0) { $0 | $1.mask }
        }
        return [
            "leaf1.ecx": named(1, 0, .ecx), "leaf1.edx": named(1, 0, .edx),
            "leaf7.ebx": named(7, 0, .ebx), "leaf7.ecx": named(7, 0, .ecx), "leaf7.edx": named(7, 0, .edx),
            "leaf7.eax1": named(7, 1, .eax), "xsave.eax1": named(0xD, 1, .eax),
            "ext.ecx": named(0x8000_0001, 0, .ecx), "ext.edx": named(0x8000_0001, 0, .edx) | CPUFeatures.amdAliasMask,
            "ext8.ebx": named(0x8000_0008, 0, .ebx),
        ]
    }()

    static func names(_ key: String, _ bits: UInt32) -> String {
        let word: CPUFeatureWord? =
            switch key {
            case "leaf1.ecx": CPUFeatureWord(leaf: 1, register: .ecx)
            case "leaf1.edx": CPUFeatureWord(leaf: 1, register: .edx)
            case "leaf7.ebx": CPUFeatureWord(leaf: 7, register: .ebx)
            case "leaf7.ecx": CPUFeatureWord(leaf: 7, register: .ecx)
            case "leaf7.edx": CPUFeatureWord(leaf: 7, register: .edx)
            case "ext.ecx": CPUFeatureWord(leaf: 0x8000_0001, register: .ecx)
            case "ext.edx": CPUFeatureWord(leaf: 0x8000_0001, register: .edx)
            default: nil
            }
        return (0..<32).filter { bits & (1 << $0) != 0 }.map { bit in
            CPUFeatures.all.first { $0.word == word && $0.bit == bit }?.name ?? "bit \(bit)"
        }.joined(separator: ", ")
    }
}
