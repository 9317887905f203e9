import Foundation
import Guests
import KVMCore
import XCTest

/// Timeouts, `VCPU.stop()` from another thread, and resource hygiene.
final class RunControlTests: XCTestCase {
    private func spinMachine() throws -> Machine {
        let machine = try Machine(serial: .buffer, kvm: try requireKVM())
        try machine.load(try GuestImage.require("spin").bootImage())
        return machine
    }

    func testStopFromAnotherThread() throws {
        let machine = try spinMachine()
        let vcpu = machine.vcpu
        let stopper = Thread {
            Thread.sleep(forTimeInterval: 0.2)
            vcpu.stop()
        }
        let started = Date()
        stopper.start()
        // The timeout only guards against a stop that never arrives.
        let stop = try machine.run(timeout: .seconds(20))
        let elapsed = Date().timeIntervalSince(started)
        guard case .stopped = stop else { return XCTFail("expected .stopped, got \(describe(stop))") }
        XCTAssertEqual(machine.serial.text, "spinning\n", "the guest ran before the stop")
        XCTAssertGreaterThanOrEqual(elapsed, 0.15)
        XCTAssertLessThan(elapsed, 10, "the stop took far too long to arrive")
    }

    func testStopFromAPosixThreadWhileRunning() throws {
        let machine = try spinMachine()
        let box = Unmanaged.passRetained(VCPUBox(machine.vcpu))
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<VCPUBox>.fromOpaque(raw!).takeRetainedValue()
                usleep(100_000)
                box.vcpu.stop()
                return nil
            }, box.toOpaque())
        XCTAssertEqual(created, 0)
        let stop = try machine.run(timeout: .seconds(20))
        pthread_join(thread, nil)
        guard case .stopped = stop else { return XCTFail("expected .stopped, got \(describe(stop))") }
    }

    /// One run loop per vCPU at a time: a run while one is in progress throws.
    func testASecondRunWhileRunningThrows() throws {
        let machine = try spinMachine()
        let bus = machine.bus
        var second: String?
        let stop = try machine.vcpu.run(bus: bus, timeout: .seconds(20)) { vcpu, _ in
            guard second == nil else { return }
            do {
                _ = try vcpu.run(bus: bus, timeout: .milliseconds(100)) // without the check: runs, then times out
                second = "ran"
            } catch {
                second = "\(error)"
            }
            vcpu.stop()
        }
        guard case .stopped = stop else { return XCTFail("expected .stopped, got \(describe(stop))") }
        XCTAssertTrue(second?.contains("is already running") == true, second ?? "no second run")
    }

    func testStopBeforeRunReturnsAtOnce() throws {
        let machine = try spinMachine()
        machine.vcpu.stop()
        let started = Date()
        let first = try machine.run(timeout: .seconds(20))
        guard case .stopped = first else { return XCTFail("expected .stopped, got \(describe(first))") }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        XCTAssertEqual(machine.serial.text, "", "the guest never ran")
        XCTAssertEqual(machine.vcpu.statistics.totalExits, 0, "no KVM_RUN was issued")
        // The request is used up: the next run goes on until its timeout.
        let second = try machine.run(timeout: .milliseconds(150))
        guard case .timedOut = second else { return XCTFail("expected .timedOut, got \(describe(second))") }
        XCTAssertEqual(machine.serial.text, "spinning\n")
    }

    func testTimedOutGuestCanBeResumed() throws {
        let machine = try spinMachine()
        for _ in 0..<3 {
            let stop = try machine.run(timeout: .milliseconds(50))
            guard case .timedOut = stop else { return XCTFail("expected .timedOut, got \(describe(stop))") }
        }
        XCTAssertEqual(machine.serial.text, "spinning\n", "printed once: each run resumes the same guest")
    }

    func testTraceSeesEveryExit() throws {
        let machine = try Machine(serial: .buffer, kvm: try requireKVM())
        try machine.load(try GuestImage.require("hello-long").bootImage())
        let shared = Shared<[UInt32]>([])
        let stop = try machine.run(timeout: .seconds(10)) { _, exit in shared.update { $0.append(exit.reason) } }
        let traced = shared.current
        guard case .halted = stop else { return XCTFail("stopped with \(describe(stop))") }
        XCTAssertEqual(traced.count, machine.vcpu.statistics.totalExits)
        XCTAssertEqual(traced.last, 5, "the last exit is the HLT")
        XCTAssertEqual(traced.filter { $0 == 2 }.count, machine.vcpu.statistics.exits[2])
        XCTAssertEqual(VMExit.name(ofReason: 2), "IO")
        XCTAssertEqual(VMExit.name(ofReason: 5), "HLT")
        XCTAssertEqual(VMExit.name(ofReason: 63), "EXIT_63")
    }

    func testMeasuredTime() throws {
        let machine = try Machine(serial: .buffer, kvm: try requireKVM())
        try machine.load(try GuestImage.require("hello-long").bootImage())
        machine.vcpu.statistics.measureTime = true
        _ = try machine.run(timeout: .seconds(10))
        XCTAssertGreaterThan(machine.vcpu.statistics.guestNanoseconds, 0)
        XCTAssertGreaterThan(machine.vcpu.statistics.vmmNanoseconds, 0)
    }

    func testMachineRefusesBadMemorySizes() throws {
        let kvm = try requireKVM()
        assertThrows(ConfigurationError.self, containing: ["too small"]) {
            try Machine(memorySize: 512 << 10, kvm: kvm)
        }
        assertThrows(ConfigurationError.self, containing: ["4 KiB pages"]) {
            try Machine(memorySize: (1 << 20) + 1, kvm: kvm)
        }
        assertThrows(ConfigurationError.self, containing: ["MiB this machine supports"]) {
            try Machine(memorySize: Machine.maxMemorySize + 4096, kvm: kvm)
        }
    }

    /// 200 machines created, run and dropped: no file descriptors and no guest
    /// memory mappings are left behind.
    func testMachinesReleaseTheirResources() throws {
        let kvm = try requireKVM()
        let image = try GuestImage.require("hello-long").bootImage()
        func once() throws {
            let machine = try Machine(serial: .buffer)
            try machine.load(image)
            let stop = try machine.run(timeout: .seconds(10))
            guard case .halted = stop else { throw TestSetupError("hello-long stopped with \(describe(stop))") }
        }
        _ = kvm
        try once() // warm up lazily created process state (signal handler, CPUID cache)
        let fdsBefore = try openFileDescriptorCount()
        let vmBefore = try virtualMemoryKiB()
        for _ in 0..<200 { try once() }
        let fdsAfter = try openFileDescriptorCount()
        let vmAfter = try virtualMemoryKiB()
        XCTAssertEqual(fdsAfter, fdsBefore, "file descriptors leaked by 200 machines")
        // Each machine maps 64 MiB of guest RAM; a leak of even one would show.
        XCTAssertLessThan(
            Int64(vmAfter) - Int64(vmBefore), 32 << 10,
            "virtual size grew from \(vmBefore) KiB to \(vmAfter) KiB")
    }
}

/// Carries a vCPU to a pthread.
final class VCPUBox: Sendable {
    let vcpu: VCPU
    init(_ vcpu: VCPU) { self.vcpu = vcpu }
}
