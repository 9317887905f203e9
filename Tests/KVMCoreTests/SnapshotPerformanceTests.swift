import Foundation
import KVMCore
import XCTest

/// Prints what snapshots cost here: restore time by guest memory size, reset
/// time by dirty pages, and machines created, run and destroyed per second.
/// Nothing is asserted about time (debug builds and busy hosts vary); the
/// figures in the report come from a release build.
final class SnapshotPerformanceTests: XCTestCase {
    // mov al, 'A'; mov dx, 0x3f8; out dx, al; hlt
    private let hello: [UInt8] = [0xB0, 0x41, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xF4]
    // mov al, 1; mov edi, 0x200000; 1: mov [rdi], al; add rdi, 4096; dec ecx; jnz 1b; hlt  (rcx = pages)
    private let dirtier: [UInt8] = [0xB0, 0x01, 0xBF, 0x00, 0x00, 0x20, 0x00, 0x88, 0x07, 0x48, 0x81, 0xC7,
                                    0x00, 0x10, 0x00, 0x00, 0xFF, 0xC9, 0x75, 0xF3, 0xF4]

    private func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    private func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
    private func µs(_ s: Double) -> String { "\(Int((s * 1e6).rounded())) µs" }

    func testPrintRestoreTimesByMemorySize() throws {
        let kvm = try requireKVM()
        let scratch = try SnapshotScratch()
        for size: UInt64 in [64 << 20, 512 << 20, 4 << 30] {
            let machine = try Machine(memorySize: size, serial: .buffer, kvm: kvm)
            try machine.load(.flat(hello, mode: .long, load: 0x10_0000))
            let path = scratch.path + "/\(size >> 20).kvmsnap"
            try machine.snapshot().write(to: path)
            let snapshot = try Snapshot(contentsOf: path)
            var restores: [Double] = []
            for _ in 0..<5 {
                var restored: Machine?
                restores.append(try seconds { restored = try Machine(restoring: snapshot, kvm: kvm) })
                guard case .halted = try restored!.run(timeout: .seconds(5)) else { return XCTFail("not halted") }
                XCTAssertEqual(restored!.serial.text, "A")
            }
            print("snapshot restore, \(size >> 20) MiB guest: Machine(restoring:) median \(µs(median(restores)))")
        }
    }

    func testPrintResetTimesByDirtyPages() throws {
        let kvm = try requireKVM()
        let machine = try Machine(memorySize: 64 << 20, serial: .buffer, kvm: kvm, logDirtyPages: true)
        try machine.load(.flat(dirtier, mode: .long, load: 0x10_0000))
        let snapshot = try machine.snapshot()
        for pages in [1, 100, 10_000] {
            var times: [Double] = []
            for _ in 0..<5 {
                var regs = try machine.vcpu.registers()
                regs.rcx = UInt64(pages)
                try machine.vcpu.setRegisters(regs)
                guard case .halted = try machine.run(timeout: .seconds(5)) else { return XCTFail("not halted") }
                times.append(try seconds { try machine.reset(to: snapshot) })
            }
            XCTAssertEqual(try machine.vcpu.registers().rip, snapshot.vcpus[0].registers.rip)
            print("snapshot reset after \(pages) dirty pages: median \(µs(median(times)))")
        }
    }

    func testPrintMachinesPerSecond() throws {
        let kvm = try requireKVM()
        let booted = try Machine(memorySize: 64 << 20, serial: .buffer, kvm: kvm)
        try booted.load(.flat(hello, mode: .long, load: 0x10_0000))
        let snapshot = try booted.snapshot()
        let n = 50
        let restoring = try seconds {
            for _ in 0..<n {
                let machine = try Machine(restoring: snapshot, kvm: kvm)
                _ = try machine.run(timeout: .seconds(5))
            }
        }
        let reusing = try Machine(restoring: snapshot, kvm: kvm, logDirtyPages: true)
        let resetting = try seconds {
            for _ in 0..<n {
                try reusing.reset(to: snapshot)
                _ = try reusing.run(timeout: .seconds(5))
            }
        }
        print("snapshot: Machine(restoring:) + run hello + destroy: \(Int(Double(n) / restoring))/s; reset + run: \(Int(Double(n) / resetting))/s")
    }
}
