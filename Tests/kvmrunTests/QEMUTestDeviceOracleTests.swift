import Foundation
import Guests
import XCTest

/// QEMU's test devices with QEMU as the oracle: each kernel boots under
/// `qemu-system-x86_64 -device pc-testdev|pci-testdev` (QEMUOracleTests' command
/// line: -M pc, KVM, qboot) and under `kvmrun` with the same options; serial
/// output and exit status must be identical.
final class QEMUTestDeviceOracleTests: XCTestCase {
    /// Boots `guest` with `devices` (each a `-device` value) on both; returns QEMU's outcome.
    @discardableResult
    func compare(
        _ guest: String, devices: [String], append: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> QEMUOracleTests.Outcome {
        try compareUnderQEMU(
            guest, append: append, devices: devices,
            needsKVMInQEMU: "what KVM's own irqchip and instruction emulator do", file: file, line: line)
    }

    /// The register, flush port, IRQ port reads and the iomem buffer.
    func testPCTestdev() throws {
        let q = try compare("mb-pc-testdev", devices: ["pc-testdev"])
        XCTAssertTrue(q.stdout.hasSuffix("mb-pc-testdev: ok\n"), q.stdout)
        XCTAssertEqual(q.status, 1)
    }

    /// Edge and level-triggered interrupts through the in-kernel IOAPIC, all
    /// cases in one boot and each on its own. (Where the host's KVM re-delivers
    /// a level interrupt once more after its EOI — kvm_pvm does — the kernel's
    /// own checks fail under QEMU and kvmrun alike; the comparison still holds.)
    func testLevelTriggeredInterrupts() throws {
        let all = try compare("mb-ioapic-level", devices: ["pc-testdev"])
        XCTAssertTrue(all.stdout.contains("edge first=1 held_high=1 after_pulse=2\n"), all.stdout)
        XCTAssertTrue(all.stdout.contains("isa-irq0 pin2=1 pin0=0\n"), all.stdout)
        // The level semantics themselves (re-delivery while held high, coalescing,
        // one interrupt per assertion) are the host KVM's IOAPIC: required on a
        // hardware-backed KVM, only compared on kvm_pvm, which re-delivers once more.
        if FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") {
            print(
                "mb-ioapic-level: kvm_pvm's IOAPIC re-delivers level interrupts after EOI; semantics compared with QEMU, not required"
            )
        } else {
            XCTAssertTrue(all.stdout.hasSuffix("mb-ioapic-level: ok\n"), all.stdout)
        }
        for n in 1...7 { try compare("mb-ioapic-level", devices: ["pc-testdev"], append: "case=\(n)") }
    }

    /// PCI bus 0 (i440FX, PIIX3, IDE, PM) and pci-testdev's BARs and tests,
    /// ioeventfds included; and bus 0 alone, which kvmrun's PC always has.
    func testPCITestdev() throws {
        let q = try compare("mb-pci", devices: ["pci-testdev"])
        XCTAssertTrue(q.stdout.hasSuffix("mb-pci: ok\n"), q.stdout)
        XCTAssertTrue(q.stdout.contains("name=\"portio-datamatch-eventfd\""), q.stdout)
        let bare = try compare("mb-pci", devices: [])
        XCTAssertEqual(bare.status, 0xF1)
        XCTAssertTrue(bare.stdout.contains("function 0x00:0x01.3\n"), bare.stdout)
    }

    /// Both test devices at once.
    func testBothDevices() throws {
        try compare("mb-pc-testdev", devices: ["pc-testdev", "pci-testdev"])
    }
}
