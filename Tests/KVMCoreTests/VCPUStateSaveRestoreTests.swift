import Guests
import KVMCore
import XCTest

/// `VCPU.saveState()` / `restoreState(_:)`: a guest stopped mid-run, moved with
/// its RAM into a fresh machine, finishes exactly as an uninterrupted run.
final class VCPUStateSaveRestoreTests: XCTestCase {
    private func copyRAM(from source: Machine, to target: Machine) throws {
        for region in source.memory.regions {
            try target.memory.write(
                UnsafeRawBufferPointer(start: region.host, count: Int(region.size)),
                at: region.guestPhysical)
        }
    }

    func testGuestMovedAtASyncPointFinishesLikeAnUninterruptedRun() throws {
        let kvm = try requireKVM()
        let image = try GuestImage.hostcall.bootImage()

        let reference = try Machine(memorySize: 16 << 20, serial: .buffer, kvm: kvm)
        try reference.load(image)
        var stops: [String] = []
        while true {
            let stop = try reference.run(timeout: .seconds(10))
            stops.append("\(stop)")
            if case .sync = stop { continue }
            break
        }

        let first = try Machine(memorySize: 16 << 20, serial: .buffer, kvm: kvm)
        try first.load(image)
        guard case .sync(stage: 1) = try first.run(timeout: .seconds(10)) else { return XCTFail("no sync 1") }
        let state = try first.vcpu.saveState()
        XCTAssertFalse(state.msrs.isEmpty, "MSRs from KVM_GET_MSR_INDEX_LIST")

        let second = try Machine(memorySize: 16 << 20, serial: .buffer, kvm: kvm)
        try copyRAM(from: first, to: second)
        try second.vcpu.restoreState(state)
        XCTAssertEqual(try second.vcpu.registers().rip, state.registers.rip)
        XCTAssertEqual(try second.vcpu.specialRegisters().efer, state.specialRegisters.efer)
        var after: [String] = ["\(StopReason.sync(stage: 1))"]
        while true {
            let stop = try second.run(timeout: .seconds(10))
            after.append("\(stop)")
            if case .sync = stop { continue }
            break
        }
        XCTAssertEqual(after, stops, "the same stops, in order, with none repeated")
        XCTAssertEqual(first.serial.text + second.serial.text, reference.serial.text)
        XCTAssertEqual((first.hostcall.facts + second.hostcall.facts), reference.hostcall.facts)
    }
}
