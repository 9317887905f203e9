import Foundation
import Guests
import KVMCore
import XCTest

/// Several vCPUs: the in-kernel irqchip, APs parked in KVM until INIT/SIPI, the
/// first terminal stop on any vCPU stopping them all.
final class SMPTests: XCTestCase {
    func testAPsWaitForSIPIAndTheBootstrapsDebugExitEndsTheRun() throws {
        let kvm = try requireKVM()
        let machine = try Machine(vcpus: 4, serial: .buffer, kvm: kvm)
        XCTAssertTrue(machine.hasIRQChip, "more than one vCPU implies the in-kernel irqchip")
        XCTAssertEqual(machine.vcpus.map(\.id), [0, 1, 2, 3])
        for ap in machine.vcpus.dropFirst() {
            XCTAssertEqual(try ap.mpState(), .uninitialized, "AP \(ap.id) waits for INIT/SIPI")
        }
        try machine.load(GuestImage.helloC.bootImage())
        let stop = try machine.run(timeout: .seconds(20))
        guard case .debugExit(code: 0x10) = stop else { return XCTFail("expected debug-exit 0x10, got \(stop)") }
        XCTAssertEqual(machine.serial.text, "Hello from C (ELF64)\nsum(1..100) = 5050\n")
    }

    func testHaltWithInterruptsOffEndsTheRunEvenWithTheIRQChip() throws {
        let kvm = try requireKVM()
        for count in [1, 2] {
            let machine = try Machine(vcpus: count, irqchip: true, serial: .buffer, kvm: kvm)
            try machine.load(GuestImage.helloLong.bootImage())
            let stop = try machine.run(timeout: .seconds(10))
            guard case .halted = stop else { return XCTFail("\(count) vCPU(s): expected .halted, got \(stop)") }
            XCTAssertEqual(machine.serial.text, "Hello from long mode\n")
        }
    }

    func testEachVCPUSeesItsOwnAPICIDInCPUID() throws {
        let kvm = try requireKVM()
        let machine = try Machine(vcpus: 3, serial: .buffer, kvm: kvm)
        for vcpu in machine.vcpus {
            let leaf1 = try XCTUnwrap(try vcpu.cpuid()[1])
            XCTAssertEqual(leaf1.ebx >> 24, vcpu.id, "CPUID.1:EBX[31:24] of vCPU \(vcpu.id)")
            XCTAssertNotEqual(leaf1.ecx & (1 << 21), 0, "x2APIC offered with the in-kernel LAPIC")
        }
    }

    func testTimeoutStopsEveryVCPUAndJoinsTheirThreads() throws {
        let kvm = try requireKVM()
        let before = try openFileDescriptorCount()
        do {
            let machine = try Machine(vcpus: 4, serial: .buffer, kvm: kvm)
            try machine.load(GuestImage.spin.bootImage())
            let stop = try machine.run(timeout: .milliseconds(200))
            guard case .timedOut = stop else { return XCTFail("expected a timeout, got \(stop)") }
            XCTAssertEqual(machine.serial.text, "spinning\n")
            // A second run resumes the same machine, APs included.
            guard case .timedOut = try machine.run(timeout: .milliseconds(100)) else { return XCTFail("second run") }
        }
        XCTAssertEqual(try openFileDescriptorCount(), before, "VM, vCPU and timer descriptors all closed")
    }

    func testStopFromAnotherThreadStopsAllVCPUs() throws {
        let kvm = try requireKVM()
        let machine = try Machine(vcpus: 2, serial: .buffer, kvm: kvm)
        try machine.load(GuestImage.spin.bootImage())
        let vcpus = machine.vcpus
        let stopper = try PosixThread {
            usleep(100_000)
            for vcpu in vcpus { vcpu.stop() }
        }
        let stop = try machine.run(timeout: .seconds(20))
        stopper.join()
        guard case .stopped = stop else { return XCTFail("expected .stopped, got \(stop)") }
    }

    func testVCPUCountIsChecked() throws {
        let kvm = try requireKVM()
        XCTAssertThrowsError(try Machine(vcpus: 0, kvm: kvm))
        let limit = max(kvm.check(.maxVCPUs), kvm.check(.nrVCPUs))
        XCTAssertThrowsError(try Machine(vcpus: limit + 1, kvm: kvm)) { error in
            XCTAssertTrue("\(error)".contains("KVM_CAP_MAX_VCPUS"), "\(error)")
        }
    }
}
