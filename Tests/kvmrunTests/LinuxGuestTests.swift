import Foundation
import KVMCore
import XCTest

/// Debian's stock kernel under kvmrun, booted to Tools/linux-guest's init:
/// its facts, `poweroff`, and QEMU as the oracle of the facts.
///
/// A boot needs guest kernel-mode code to run at hardware speed. Where the
/// host's KVM runs it in its instruction emulator (kvm_pvm), no boot finishes
/// in a test's time: each test measures that first and skips with the figure.
/// The nested lab (Tools/nested-lab) runs the same checks on kvm_amd.
final class LinuxGuestTests: XCTestCase {
    /// Nanoseconds per guest instruction of a CPL0 long-mode loop, measured
    /// once: a few on hardware KVM, hundreds where KVM emulates kernel mode.
    // nonisolated(unsafe): XCTest runs these tests one at a time on one thread.
    nonisolated(unsafe) static var kernelModeSpeed: Result<Double, Error>?

    static func measureKernelMode() throws -> Double {
        let iterations: UInt32 = 500_000
        // mov ecx, N; 1: dec rcx; jnz 1b; mov al, 0; out 0xf4, al
        let code: [UInt8] =
            [0xB9] + (0..<4).map { UInt8(truncatingIfNeeded: iterations >> (8 * $0)) } + [
                0x48, 0xFF, 0xC9, 0x75, 0xFB, 0xB0, 0x00, 0xE6, 0xF4,
            ]
        let machine = try Machine(memorySize: 16 << 20)
        try machine.load(.flat(code, mode: .long, load: 0x10_0000))
        let start = Date()
        let stop = try machine.run(timeout: .seconds(60))
        guard case .debugExit = stop else { throw XCTSkip("the calibration loop ended with \(stop)") }
        return Date().timeIntervalSince(start) * 1e9 / Double(2 * iterations)
    }

    /// Skips where guest kernel-mode code is emulated (over 50 ns an instruction).
    func requireHardwareSpeedKernelMode() throws {
        try requireKVM()
        if Self.kernelModeSpeed == nil { Self.kernelModeSpeed = Result { try Self.measureKernelMode() } }
        let ns = try Self.kernelModeSpeed!.get()
        if ns > 50 {
            let modules = KVMModule.loaded().map(\.name).joined(separator: ", ")
            throw XCTSkip(
                "host KVM (\(modules)) runs guest kernel-mode code in its instruction emulator: a CPL0 long-mode loop took \(Int(ns)) ns per instruction (hardware KVM: ~1), so Linux does not boot in a test's time here; the nested lab boots it on kvm_amd (Tools/nested-lab, tests l2-linux-boots … linux-qemu-oracle)"
            )
        }
    }

    /// The kernel and the rig's initramfs (Tools/linux-guest), fetched or built once.
    func linuxGuest() throws -> (kernel: String, initrd: String) {
        func tool(_ name: String) throws -> String {
            let r = try QEMUOracleTests.run(packageRoot + "/Tools/linux-guest/" + name, [], timeout: 600)
            guard r.status == 0, let path = r.stdout.split(separator: "\n").last else {
                throw XCTSkip(
                    "Tools/linux-guest/\(name) failed (status \(r.status)): \(r.stderr.split(separator: "\n").last ?? "")"
                )
            }
            return String(path)
        }
        return (try tool("get-kernel"), try tool("make-initramfs"))
    }

    private var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The FACT lines of a run (Tools/linux-guest/README.md), keyed; repeated keys joined by newlines.
    static func facts(_ output: String) -> [String: String] {
        var facts: [String: String] = [:]
        for line in output.split(separator: "\n").map({ $0.trimmingCharacters(in: .init(charactersIn: "\r")) })
        where line.hasPrefix("FACT ") {
            let words = line.dropFirst(5).split(separator: " ", maxSplits: 1)
            let key = String(words[0])
            let value = words.count > 1 ? String(words[1]) : ""
            facts[key] = facts[key].map { $0 + "\n" + value } ?? value
        }
        return facts
    }

    func testBootsToInitWithItsFactsAndPowersOff() throws {
        try requireHardwareSpeedKernelMode()
        let (kernel, initrd) = try linuxGuest()
        for (smp, memory) in [(1, 128), (4, 512)] {
            let append = "console=ttyS0 quiet kvmrun.facts=1"
            let r = try kvmrun(
                ["-kernel", kernel, "-initrd", initrd, "-append", append, "-smp", "\(smp)", "-m", "\(memory)"],
                timeout: 120)
            XCTAssertEqual(r.status, 0, "poweroff (ACPI S5) ends the run with 0: \(r.stderr)")
            let facts = Self.facts(r.stdout)
            XCTAssertEqual(facts["cpus"], "\(smp)")
            XCTAssertEqual(facts["cmdline"], append)
            XCTAssertEqual(facts["initrd"], "swift-kvm linux-guest initrd marker v1")
            XCTAssertEqual(facts["acpi_errors"], "0", facts["acpi_error_line"] ?? "")
            XCTAssertEqual(facts["clocksource"], "kvm-clock")
            let kib = Int(facts["memtotal_kib"] ?? "") ?? 0
            XCTAssertTrue(kib < memory << 10 && kib > (memory - 96) << 10, "MemTotal \(kib) KiB with -m \(memory)")
            XCTAssertEqual(
                facts["acpi_tables"]?.split(separator: " ").sorted(), ["APIC", "DSDT", "FACP", "FACS", "WAET"])
        }
    }

    /// QEMU -M pc (hpet=off: kvmrun has no HPET) and kvmrun print the same
    /// facts, less those of devices kvmrun does not have (option ROMs, PCI
    /// windows) and those of the accelerator (clocksource, CPU flags).
    func testFactsMatchQEMU() throws {
        try requireHardwareSpeedKernelMode()
        let qemu = try QEMUOracleTests.qemu()
        let (kernel, initrd) = try linuxGuest()
        let options = [
            "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet kvmrun.facts=1", "-smp", "2", "-m",
            "256",
        ]
        let q = try QEMUOracleTests.run(
            qemu.path,
            [
                "-accel", qemu.accel, "-M", "pc,hpet=off", "-nographic", "-no-reboot",
                "-nic", "none",
            ] + options, timeout: 300)
        let k = try kvmrun(options, timeout: 120)
        let compared = ["cpus", "cmdline", "initrd", "acpi_tables", "memmap"]
        let (qf, kf) = (Self.facts(q.stdout), Self.facts(k.stdout))
        XCTAssertNotNil(qf["cpus"], "QEMU printed no facts: \(q.stderr)")
        // QEMU reserves KVM's identity map and TSS (0xfeffc000) only with -accel kvm.
        func comparable(_ value: String?) -> [Substring] {
            (value ?? "").split(separator: "\n").filter {
                qemu.accel == "kvm" || !$0.hasPrefix("0xfeffc000") && !$0.hasPrefix("feffc000")
            }
        }
        for key in compared { XCTAssertEqual(comparable(kf[key]), comparable(qf[key]), key) }
        func ramAndReserved(_ iomem: String?) -> [Substring] {
            comparable(iomem).filter { $0.hasSuffix(": System RAM") || $0.hasSuffix(": Reserved") }
        }
        XCTAssertEqual(ramAndReserved(kf["iomem"]), ramAndReserved(qf["iomem"]), "iomem")
    }
}
