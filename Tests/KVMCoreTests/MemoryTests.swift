import KVMCore
import XCTest

/// `GuestMemory` bounds and slot refusals, and `BootImage` checks before and
/// while loading. Guest memory only exists inside a VM, so these need /dev/kvm.
final class GuestMemoryTests: XCTestCase {
    /// A VM with two adjacent 64 KiB slots: 0x0–0x10000 and 0x10000–0x20000.
    private func twoSlotVM() throws -> VirtualMachine {
        let vm = try requireKVM().createVM()
        try vm.addMemory(at: 0, size: 0x1_0000)
        try vm.addMemory(at: 0x1_0000, size: 0x1_0000)
        return vm
    }

    func testSlotsAreRecorded() throws {
        let vm = try twoSlotVM()
        let memory = vm.memory
        XCTAssertEqual(memory.regions.count, 2)
        XCTAssertEqual(memory.totalSize, 0x2_0000)
        XCTAssertEqual(memory.regions.map(\.guestPhysical), [0, 0x1_0000])
        XCTAssertEqual(Set(memory.regions.map(\.slot)).count, 2, "each region has its own slot number")
        XCTAssertEqual(memory.region(containing: 0xFFFF)?.guestPhysical, 0)
        XCTAssertEqual(memory.region(containing: 0x1_0000)?.guestPhysical, 0x1_0000)
        XCTAssertNil(memory.region(containing: 0x2_0000))
    }

    func testReadWriteAtTheEnds() throws {
        let memory = try twoSlotVM().memory
        // Last 8 bytes of each slot.
        try memory.write(UInt64(0x0102_0304_0506_0708), at: 0xFFF8)
        XCTAssertEqual(try memory.read(UInt64.self, at: 0xFFF8), 0x0102_0304_0506_0708)
        XCTAssertEqual(try memory.bytes(at: 0xFFF8, count: 8), [8, 7, 6, 5, 4, 3, 2, 1], "little-endian")
        try memory.write(UInt8(0x5A), at: 0x1_FFFF)
        XCTAssertEqual(try memory.read(UInt8.self, at: 0x1_FFFF), 0x5A)
        try memory.write(UInt32(0xDEAD_BEEF), at: 0)
        XCTAssertEqual(try memory.read(UInt32.self, at: 0), 0xDEAD_BEEF)
        try memory.fill(0xEE, count: 0x1_0000, at: 0x1_0000)
        XCTAssertEqual(try memory.bytes(at: 0x1_FFFC, count: 4), [0xEE, 0xEE, 0xEE, 0xEE])
        // Zero-length writes anywhere are no-ops.
        try memory.write([], at: 0x9999_0000)
        try memory.fill(0, count: 0, at: 0x9999_0000)
    }

    func testOnePastTheEndIsRefused() throws {
        let memory = try twoSlotVM().memory
        assertThrows(ConfigurationError.self, containing: ["outside guest RAM"]) {
            try memory.read(UInt8.self, at: 0x2_0000)
        }
        XCTAssertThrowsError(try memory.read(UInt16.self, at: 0x1_FFFF)) {
            XCTAssertEqual($0 as? ConfigurationError, .outsideGuestRAM(address: 0x1_FFFF, count: 2))
        }
        assertThrows(ConfigurationError.self) { try memory.read(UInt16.self, at: 0x1_FFFF) }
        assertThrows(ConfigurationError.self) { try memory.write(UInt64(1), at: 0x1_FFF9) }
        assertThrows(ConfigurationError.self) { try memory.bytes(at: 0x1_FFF0, count: 0x11) }
        assertThrows(ConfigurationError.self) { try memory.fill(0, count: 2, at: 0x1_FFFF) }
        assertThrows(ConfigurationError.self) { try memory.write([1, 2], at: 0x1_FFFF) }
        XCTAssertNil(memory.pointer(0x2_0000, count: 1))
        XCTAssertNotNil(memory.pointer(0x1_FFFF, count: 1))
    }

    func testAccessAcrossSlotsIsRefused() throws {
        let memory = try twoSlotVM().memory
        assertThrows(ConfigurationError.self) { try memory.read(UInt64.self, at: 0xFFFC) }
        assertThrows(ConfigurationError.self) { try memory.write(UInt32(1), at: 0xFFFE) }
        assertThrows(ConfigurationError.self) { try memory.bytes(at: 0xFFFF, count: 2) }
        XCTAssertNil(memory.pointer(0xFFFF, count: 2))
        // Nothing was written by the refused accesses.
        XCTAssertEqual(try memory.bytes(at: 0xFFF8, count: 8), [UInt8](repeating: 0, count: 8))
        XCTAssertEqual(try memory.bytes(at: 0x1_0000, count: 8), [UInt8](repeating: 0, count: 8))
    }

    func testAddressesNearTheTopNeverTrap() throws {
        let memory = try twoSlotVM().memory
        assertThrows(ConfigurationError.self) { try memory.read(UInt64.self, at: UInt64.max) }
        assertThrows(ConfigurationError.self) { try memory.read(UInt64.self, at: UInt64.max - 3) }
        assertThrows(ConfigurationError.self) { try memory.bytes(at: 0x100, count: Int.max) }
        XCTAssertNil(memory.pointer(0x100, count: -1))
        XCTAssertNil(memory.region(containing: UInt64.max, count: 2))
    }

    func testCString() throws {
        let memory = try twoSlotVM().memory
        try memory.write(Array("hello\0world".utf8), at: 0x100)
        XCTAssertEqual(try memory.cString(at: 0x100), "hello")
        XCTAssertEqual(try memory.cString(at: 0x100, maxLength: 3), "hel")
        XCTAssertEqual(try memory.cString(at: 0x106), "world", "the byte after 'world' is zero RAM")
        // Unterminated at the very end of RAM: refused, not read past the end.
        try memory.fill(0x41, count: 4, at: 0x1_FFFC)
        assertThrows(ConfigurationError.self) { try memory.cString(at: 0x1_FFFC, maxLength: 64) }
    }

    func testAddMemoryRefusals() throws {
        let vm = try twoSlotVM()
        let before = vm.memory.regions.count
        assertThrows(ConfigurationError.self, containing: ["not page aligned"]) {
            try vm.addMemory(at: 0x2_0800, size: 0x1000)
        }
        assertThrows(ConfigurationError.self, containing: ["not page aligned"]) {
            try vm.addMemory(at: 0x3_0000, size: 0x800)
        }
        assertThrows(ConfigurationError.self, containing: ["size 0"]) { try vm.addMemory(at: 0x4_0000, size: 0) }
        assertThrows(ConfigurationError.self, containing: ["overlaps slot"]) {
            try vm.addMemory(at: 0x8000, size: 0x1_0000)
        }
        assertThrows(ConfigurationError.self, containing: ["overlaps slot"]) {
            try vm.addMemory(at: 0x1_F000, size: 0x1000)
        }
        assertThrows(ConfigurationError.self, containing: ["wraps"]) {
            try vm.addMemory(at: UInt64.max & ~0xFFF, size: 0x2000)
        }
        XCTAssertEqual(vm.memory.regions.count, before, "refused slots are not recorded")
        // Adjacent slots are fine, and usable.
        try vm.addMemory(at: 0x2_0000, size: 0x1000)
        XCTAssertEqual(vm.memory.regions.count, before + 1)
        try vm.memory.write(UInt32(7), at: 0x2_0FFC)
        XCTAssertEqual(try vm.memory.read(UInt32.self, at: 0x2_0FFC), 7)
    }

    func testAddRAMSplitsAroundThePCIHoleAsQEMUDoes() throws {
        let below = try requireKVM().createVM()
        try below.addRAM(size: 3300 << 20)
        XCTAssertEqual(below.memory.regions.map(\.size), [3300 << 20], "under 3.5 GiB all RAM is below 4 GiB")
        let vm = try requireKVM().createVM()
        try vm.addRAM(size: (3 << 30) + (1 << 30) + (64 << 20))
        XCTAssertEqual(vm.memory.regions.map(\.guestPhysical), [0, PCLayout.highMemoryStart])
        XCTAssertEqual(vm.memory.regions.map(\.size), [PCLayout.lowMemoryLimit, (1 << 30) + (64 << 20)])
        XCTAssertNil(vm.memory.region(containing: PCLayout.lowMemoryLimit))
        let top = PCLayout.highMemoryStart + (1 << 30) + (64 << 20) - 8
        try vm.memory.write(UInt64(42), at: top)
        XCTAssertEqual(try vm.memory.read(UInt64.self, at: top), 42)
    }
}

final class BootImageTests: XCTestCase {
    /// A segment of `bytes` at `address`, zero-filled up to `memorySize`.
    private func segment(_ address: UInt64, _ bytes: [UInt8], memorySize: UInt64) -> BootImage.Segment {
        BootImage.Segment(guestPhysical: address, bytes: bytes[...], memorySize: memorySize)
    }

    private func machine(memory: UInt64 = 1 << 20) throws -> Machine {
        try Machine(memorySize: memory, serial: .buffer, kvm: try requireKVM())
    }

    func testFlatRefusals() {
        assertThrows(GuestImageError.self, containing: ["empty"]) {
            try BootImage.flat([], mode: .long, load: 0x10_0000)
        }
        assertThrows(GuestImageError.self, containing: ["entry 0x100004"]) {
            try BootImage.flat([1, 2, 3, 4], mode: .long, load: 0x10_0000, entry: 0x10_0004)
        }
        assertThrows(GuestImageError.self, containing: ["entry"]) {
            try BootImage.flat([1, 2, 3, 4], mode: .long, load: 0x10_0000, entry: 0xF_FFFF)
        }
        assertThrows(GuestImageError.self, containing: ["below 1 MiB"]) {
            try BootImage.flat([UInt8](repeating: 0x90, count: 0x10), mode: .real, load: 0xF_FFF8)
        }
        // Ends exactly at 1 MiB: accepted.
        XCTAssertNoThrow(try BootImage.flat([UInt8](repeating: 0x90, count: 0x10), mode: .real, load: 0xF_FFF0))
    }

    func testFlatImage() throws {
        let image = try BootImage.flat([1, 2, 3, 4], mode: .protected, load: 0x20_0000, entry: 0x20_0002)
        XCTAssertEqual(image.entry, 0x20_0002)
        XCTAssertEqual(image.mode, .protected)
        XCTAssertEqual(image.segments.count, 1)
        XCTAssertEqual(image.segments.first?.guestPhysical, 0x20_0000)
        XCTAssertEqual(image.segments.first?.memorySize, 4)
        XCTAssertEqual(try BootImage.flat([9], mode: .long, load: 0x30_0000).entry, 0x30_0000, "entry defaults to load")
    }

    func testLoadOutsideRAM() throws {
        let m = try machine()
        assertThrows(GuestImageError.self, containing: ["outside guest RAM", "1 MiB"]) {
            try BootImage.flat([0xF4], mode: .long, load: 0x20_0000).load(into: m.memory)
        }
        // Straddles the end of RAM.
        assertThrows(GuestImageError.self, containing: ["outside guest RAM"]) {
            try BootImage.flat([UInt8](repeating: 0xF4, count: 0x20), mode: .long, load: 0xF_FFF0).load(into: m.memory)
        }
        // A zero-filled tail past the end counts too.
        let bss = BootImage(
            segments: [segment(0xF_F000, [0xF4], memorySize: 0x2000)],
            entry: 0xF_F000, mode: .long)
        assertThrows(GuestImageError.self, containing: ["outside guest RAM"]) { try bss.load(into: m.memory) }
        // Exactly the last bytes of RAM: accepted.
        try BootImage.flat([1, 2, 3, 4], mode: .long, load: 0xF_FFFC).load(into: m.memory)
        XCTAssertEqual(try m.memory.bytes(at: 0xF_FFFC, count: 4), [1, 2, 3, 4])
    }

    func testOverlappingSegments() throws {
        let m = try machine()
        let image = BootImage(
            segments: [
                segment(0x2_0000, [1, 2, 3, 4], memorySize: 0x100),
                segment(0x2_0080, [5, 6], memorySize: 2),
            ], entry: 0x2_0000, mode: .long)
        assertThrows(GuestImageError.self, containing: ["overlap", "0x20000", "0x20080"]) {
            try image.load(into: m.memory)
        }
        XCTAssertEqual(
            try m.memory.bytes(at: 0x2_0000, count: 4), [0, 0, 0, 0], "nothing is copied from a refused image")
        // Listed out of order, touching but not overlapping: accepted.
        let touching = BootImage(
            segments: [
                segment(0x2_0100, [7], memorySize: 1),
                segment(0x2_0000, [1, 2, 3, 4], memorySize: 0x100),
            ], entry: 0x2_0000, mode: .long)
        try touching.load(into: m.memory)
        XCTAssertEqual(try m.memory.bytes(at: 0x2_00FE, count: 3), [0, 0, 7])
    }

    func testBootStructuresAreProtectedOutsideRealMode() throws {
        let m = try machine()
        for mode in [CPUMode.protected, .paged, .long] {
            for (load, count) in [(UInt64(0x8000), 0x10), (0x400, 0x101), (0xFFFF, 2), (0x500, 1), (0x0, 0x2_0000)] {
                assertThrows(GuestImageError.self, containing: ["boot structures"]) {
                    try BootImage.flat([UInt8](repeating: 0x90, count: count), mode: mode, load: load).load(
                        into: m.memory)
                }
            }
            // Just below 0x500 and from 0x10000 on: accepted.
            XCTAssertNoThrow(
                try BootImage.flat([UInt8](repeating: 0x90, count: 0x100), mode: mode, load: 0x400).load(into: m.memory)
            )
            XCTAssertNoThrow(try BootImage.flat([0x90], mode: mode, load: 0x1_0000).load(into: m.memory))
        }
        // Real mode has no such structures.
        try BootImage.flat([1, 2, 3], mode: .real, load: 0x8000).load(into: m.memory)
        XCTAssertEqual(try m.memory.bytes(at: 0x8000, count: 3), [1, 2, 3])
    }
}
