import Foundation
import Guests
import KVMCore
import XCTest

/// What machines cost the process and give back: descriptors and memory stay
/// flat over thousands of VMs, guest RAM is backed only where the guest touches
/// it and returned when the machine goes, and RAM that cannot be mapped is an
/// error, not a crash. Numbers in Docs/HARDENING.md.
final class ResourceTests: XCTestCase {
    /// Under ASan or TSan freed memory is held back (quarantine, shadow), so RSS
    /// says nothing about leaks there: only descriptors are compared.
    private var underSanitizer: Bool {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil
            || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil
    }

    /// 10,000 machines made and dropped one after the other (a VM, its RAM, a
    /// vCPU with its kvm_run mapping, the devices): after a warm-up of 500, the
    /// descriptor count is unchanged and resident memory grows by less than 8 MiB
    /// (measured: 0 to 8 KiB).
    func testTenThousandMachinesLeaveDescriptorsAndMemoryFlat() throws {
        let kvm = try requireKVM()
        func churn(_ count: Int) throws {
            for _ in 0..<count {
                let machine = try Machine(memorySize: 1 << 20, serial: .buffer, kvm: kvm)
                XCTAssertEqual(machine.vcpus.count, 1)
            }
        }
        try churn(500)
        let descriptors = try openFileDescriptorCount()
        let resident = try residentKiB()
        let started = Date()
        try churn(10_000)
        let seconds = Date().timeIntervalSince(started)
        let grown = Int(try residentKiB()) - Int(resident)
        print(
            "ResourceTests: 10,000 machines in \(String(format: "%.1f", seconds)) s, resident memory \(grown >= 0 ? "+" : "")\(grown) KiB"
        )
        XCTAssertEqual(try openFileDescriptorCount(), descriptors, "descriptors after 10,000 machines")
        if !underSanitizer {
            XCTAssertLessThan(grown, 8 << 10, "resident memory grew by \(grown) KiB over 10,000 machines")
        }
    }

    /// Machines that run (several vCPUs: threads, the in-kernel irqchip, PIT,
    /// timers) give everything back too.
    func testMachinesThatRunOnSeveralVCPUsLeaveNothingBehind() throws {
        let kvm = try requireKVM()
        let halt = try BootImage.flat([0xFA, 0xF4], mode: .long, load: 0x10_0000) // cli; hlt
        func churn(_ count: Int) throws {
            for i in 0..<count {
                let machine = try Machine(memorySize: 2 << 20, vcpus: 2 + i % 3, serial: .buffer, kvm: kvm)
                try machine.load(halt)
                guard case .halted = try machine.run(timeout: .seconds(10)) else {
                    return XCTFail("machine \(i) did not halt")
                }
            }
        }
        try churn(20)
        let descriptors = try openFileDescriptorCount()
        let resident = try residentKiB()
        try churn(200)
        let grown = Int(try residentKiB()) - Int(resident)
        print("ResourceTests: 200 SMP machines run, resident memory \(grown >= 0 ? "+" : "")\(grown) KiB")
        XCTAssertEqual(try openFileDescriptorCount(), descriptors)
        if !underSanitizer {
            XCTAssertLessThan(grown, 8 << 10, "resident memory grew by \(grown) KiB over 200 SMP runs")
        }
    }

    /// Guest RAM is mapped MAP_NORESERVE: untouched, it costs nothing. A guest
    /// that touches every page makes the host back all of it, and dropping the
    /// machine gives it back.
    func testGuestTouchingAllItsRAMIsBackedAndReleased() throws {
        let kvm = try requireKVM()
        let size: UInt64 = 256 << 20
        let before = try residentKiB()
        var during: UInt64 = 0
        do {
            let machine = try Machine(memorySize: size, serial: .buffer, kvm: kvm)
            try machine.load(try GuestImage.require("hostile-touch").bootImage())
            XCTAssertLessThan(Int(try residentKiB()) - Int(before), 16 << 10, "an untouched 256 MiB guest costs little")
            var stop = try machine.run(timeout: .seconds(60))
            if case .snapshotRequested(tag: 1) = stop { stop = try machine.run(timeout: .seconds(60)) }
            guard case .done(status: 0) = stop else { return XCTFail("expected HC_DONE 0, got \(describe(stop))") }
            XCTAssertEqual(machine.hostcall.fact("ram_top"), size, "the guest finds RAM up to its size, then MMIO")
            XCTAssertEqual(machine.hostcall.fact("pages"), (size - (2 << 20)) / 4096)
            during = try residentKiB()
        }
        let after = try residentKiB()
        print("ResourceTests: 256 MiB guest touching every page: resident \(before) → \(during) → \(after) KiB")
        XCTAssertGreaterThan(Int(during) - Int(before), 240 << 10, "the touched pages are resident")
        XCTAssertLessThan(Int(after) - Int(before), 16 << 10, "munmap gave them back")
    }

    /// Guest RAM the process cannot map (here: its address space limited, as
    /// `ulimit -v` does) is a KVMError naming mmap and ENOMEM, never a crash, and
    /// leaves no descriptor behind.
    func testRAMThatCannotBeMappedIsAnError() throws {
        let kvm = try requireKVM()
        if underSanitizer { throw XCTSkip("a sanitizer's shadow memory needs the address space this test takes away") }
        let descriptors = try openFileDescriptorCount()
        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_AS.rawValue), &saved), 0)
        var limited = saved
        limited.rlim_cur = rlim_t(try virtualMemoryKiB() * 1024 + (512 << 20))
        XCTAssertEqual(setrlimit(Int32(RLIMIT_AS.rawValue), &limited), 0)
        defer { _ = setrlimit(Int32(RLIMIT_AS.rawValue), &saved) }
        assertThrows(KVMError.self, containing: ["mmap guest memory", "ENOMEM"]) {
            try Machine(memorySize: 2 << 30, serial: .buffer, kvm: kvm)
        }
        _ = setrlimit(Int32(RLIMIT_AS.rawValue), &saved)
        XCTAssertEqual(try openFileDescriptorCount(), descriptors, "the VM made before the mmap failed is closed")
        // With the limit gone the same machine is made: the mapping reserves nothing.
        let machine = try Machine(memorySize: 2 << 30, serial: .buffer, kvm: kvm)
        XCTAssertEqual(machine.memory.totalSize, 2 << 30)
    }

    /// More RAM than the machine must ever back is still accepted up to
    /// `Machine.maxMemorySize`, and refused above it.
    func testLargestMemoryIsMappedLazilyAndMoreIsRefused() throws {
        let kvm = try requireKVM()
        let before = try residentKiB()
        do {
            let machine = try Machine(memorySize: Machine.maxMemorySize, serial: .buffer, kvm: kvm)
            try machine.load(GuestImage.helloLong.bootImage())
            guard case .halted = try machine.run(timeout: .seconds(20)) else {
                return XCTFail("hello-long did not halt")
            }
            XCTAssertLessThan(
                Int(try residentKiB()) - Int(before), 64 << 10,
                "\(Machine.maxMemorySize >> 30) GiB of guest RAM, a few pages touched")
        }
        assertThrows(ConfigurationError.self, containing: ["this machine supports"]) {
            try Machine(memorySize: Machine.maxMemorySize + (1 << 30), serial: .buffer, kvm: kvm)
        }
    }
}
