import KVMCore
import XCTest

/// Builds small static ELF32/ELF64 executables byte by byte, so each malformed
/// variant differs from a good one in exactly one field.
struct ELFBuilder {
    struct ProgramHeader {
        var type: UInt32 = 1 // PT_LOAD
        var offset: UInt64? = nil // nil: where `data` is placed in the file
        var paddr: UInt64
        var data: [UInt8]
        var memsz: UInt64? = nil // nil: data.count
        var filesz: UInt64? = nil // nil: data.count
    }

    var is64 = true
    var type: UInt16 = 2 // ET_EXEC
    var machine: UInt16? = nil // nil: 62 (x86-64) or 3 (i386)
    var entry: UInt64
    var headers: [ProgramHeader]
    var littleEndian = true

    var bytes: [UInt8] {
        let ehsize = is64 ? 64 : 52
        let phentsize = is64 ? 56 : 32
        var out = [UInt8](repeating: 0, count: ehsize + phentsize * headers.count)
        func put(_ value: UInt64, _ size: Int, at offset: Int) {
            for i in 0..<size { out[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        out[0...3] = [0x7F, 0x45, 0x4C, 0x46]
        out[4] = is64 ? 2 : 1
        out[5] = littleEndian ? 1 : 2
        out[6] = 1
        put(UInt64(type), 2, at: 16)
        put(UInt64(machine ?? (is64 ? 62 : 3)), 2, at: 18)
        put(1, 4, at: 20)
        if is64 {
            put(entry, 8, at: 24)
            put(64, 8, at: 32)
            put(64, 2, at: 52)
            put(56, 2, at: 54)
            put(UInt64(headers.count), 2, at: 56)
        } else {
            put(entry, 4, at: 24)
            put(52, 4, at: 28)
            put(52, 2, at: 40)
            put(32, 2, at: 42)
            put(UInt64(headers.count), 2, at: 44)
        }
        for (i, h) in headers.enumerated() {
            let offset = h.offset ?? UInt64(out.count)
            if h.offset == nil { out += h.data }
            let filesz = h.filesz ?? UInt64(h.data.count)
            let memsz = h.memsz ?? UInt64(h.data.count)
            let base = ehsize + i * phentsize
            put(UInt64(h.type), 4, at: base)
            if is64 {
                put(5, 4, at: base + 4) // p_flags R+X
                put(offset, 8, at: base + 8)
                put(h.paddr, 8, at: base + 16)
                put(h.paddr, 8, at: base + 24)
                put(filesz, 8, at: base + 32)
                put(memsz, 8, at: base + 40)
                put(0x1000, 8, at: base + 48)
            } else {
                put(offset, 4, at: base + 4)
                put(h.paddr, 4, at: base + 8)
                put(h.paddr, 4, at: base + 12)
                put(filesz, 4, at: base + 16)
                put(memsz, 4, at: base + 20)
                put(5, 4, at: base + 24)
                put(0x1000, 4, at: base + 28)
            }
        }
        return out
    }

    /// 64-bit code: mov al, 'L'; mov dx, 0x3f8; out dx, al; hlt
    static let code64: [UInt8] = [0xB0, 0x4C, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xF4]
    /// 32-bit code: mov al, 'P'; mov dx, 0x3f8; out dx, al; hlt (same bytes, other letter)
    static let code32: [UInt8] = [0xB0, 0x50, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xF4]

    static func good64(bss: UInt64 = 0x100) -> ELFBuilder {
        ELFBuilder(
            entry: 0x20_0000,
            headers: [
                ProgramHeader(paddr: 0x20_0000, data: code64, memsz: UInt64(code64.count) + bss)
            ])
    }

    static func good32() -> ELFBuilder {
        ELFBuilder(is64: false, entry: 0x30_0000, headers: [ProgramHeader(paddr: 0x30_0000, data: code32)])
    }
}

final class ELFImageTests: XCTestCase {
    func testGoodELF64() throws {
        let image = try ELFImage.parse(ELFBuilder.good64(bss: 0x100).bytes)
        XCTAssertEqual(image.mode, .long)
        XCTAssertEqual(image.entry, 0x20_0000)
        XCTAssertEqual(image.segments.count, 1)
        let segment = try XCTUnwrap(image.segments.first)
        XCTAssertEqual(segment.guestPhysical, 0x20_0000)
        XCTAssertEqual(Array(segment.bytes), ELFBuilder.code64)
        XCTAssertEqual(segment.memorySize, UInt64(ELFBuilder.code64.count) + 0x100)
        XCTAssertEqual(segment.end, 0x20_0000 + UInt64(ELFBuilder.code64.count) + 0x100)
    }

    func testGoodELF32() throws {
        let image = try ELFImage.parse(ELFBuilder.good32().bytes)
        XCTAssertEqual(image.mode, .protected)
        XCTAssertEqual(image.entry, 0x30_0000)
        XCTAssertEqual(image.segments.map(\.guestPhysical), [0x30_0000])
        XCTAssertEqual(image.segments.first.map { Array($0.bytes) }, ELFBuilder.code32)
    }

    func testNonLoadSegmentsAreSkipped() throws {
        var elf = ELFBuilder.good64()
        // PT_NOTE and PT_GNU_STACK before the PT_LOAD, and an empty PT_LOAD.
        elf.headers.insert(.init(type: 4, paddr: 0, data: [1, 2, 3, 4]), at: 0)
        elf.headers.insert(.init(type: 0x6474_E551, paddr: 0, data: []), at: 0)
        elf.headers.append(.init(paddr: 0x40_0000, data: []))
        let image = try ELFImage.parse(elf.bytes)
        XCTAssertEqual(image.segments.map(\.guestPhysical), [0x20_0000])
    }

    func testELF64RunsAndZeroesItsBSS() throws {
        let kvm = try requireKVM()
        let machine = try Machine(serial: .buffer, kvm: kvm)
        // Dirty the memory the segment's zero-filled tail will cover.
        try machine.memory.fill(0xAB, count: 0x200, at: 0x20_0000)
        try machine.load(try ELFImage.parse(ELFBuilder.good64(bss: 0x100).bytes))
        let tail = try machine.memory.bytes(at: 0x20_0000 + UInt64(ELFBuilder.code64.count), count: 0x100)
        XCTAssertEqual(tail, [UInt8](repeating: 0, count: 0x100), "p_memsz > p_filesz must be zero-filled")
        XCTAssertEqual(
            try machine.memory.read(UInt8.self, at: 0x20_0000 + UInt64(ELFBuilder.code64.count) + 0x100), 0xAB,
            "bytes past p_memsz are left alone")
        let stop = try machine.run(timeout: .seconds(10))
        guard case .halted = stop else { return XCTFail("stopped with \(describe(stop))") }
        XCTAssertEqual(machine.serial.text, "L")
    }

    func testELF32RunsInProtectedMode() throws {
        let run = try runGuest(try ELFImage.parse(ELFBuilder.good32().bytes))
        guard case .halted = run.stop else { return XCTFail("stopped with \(describe(run.stop))") }
        XCTAssertEqual(run.serial, "P")
        let sregs = try run.machine.vcpu.specialRegisters()
        XCTAssertEqual(sregs.cr0 & ControlRegister.pe, ControlRegister.pe)
        XCTAssertEqual(sregs.efer & EFER.lma, 0, "an ELF32 guest must not start in long mode")
    }

    func testTruncated() {
        let good = ELFBuilder.good64().bytes
        for length in [4, 5, 17, 40, 64 + 20] {
            assertThrows(GuestImageError.self, containing: ["truncated"]) {
                try ELFImage.parse(Array(good.prefix(length)))
            }
        }
        // The header is complete but the program headers it points at are not there.
        assertThrows(GuestImageError.self, containing: ["program headers"]) {
            try ELFImage.parse(Array(good.prefix(64)))
        }
        // The segment's bytes run past the end of the file.
        var elf = ELFBuilder.good64()
        elf.headers[0].filesz = 0x1000
        elf.headers[0].memsz = 0x1000
        assertThrows(GuestImageError.self, containing: ["truncated"]) { try ELFImage.parse(elf.bytes) }
        // p_offset far past the end; offset + filesz would wrap around.
        elf = ELFBuilder.good64()
        elf.headers[0].offset = UInt64.max - 2
        assertThrows(GuestImageError.self, containing: ["truncated"]) { try ELFImage.parse(elf.bytes) }
    }

    func testBadMagic() {
        var bytes = ELFBuilder.good64().bytes
        bytes[1] = 0x46
        XCTAssertFalse(ELFImage.isELF(bytes))
        assertThrows(GuestImageError.self, containing: ["bad magic"]) { try ELFImage.parse(bytes) }
        assertThrows(GuestImageError.self, containing: ["bad magic"]) { try ELFImage.parse([]) }
        XCTAssertTrue(ELFImage.isELF(ELFBuilder.good64().bytes))
        XCTAssertFalse(ELFImage.isELF([0x7F, 0x45, 0x4C]))
    }

    func testHeaderRefusals() {
        var elf = ELFBuilder.good64()
        elf.type = 3
        assertThrows(GuestImageError.self, containing: ["ET_DYN"]) { try ELFImage.parse(elf.bytes) }
        elf.type = 1
        assertThrows(GuestImageError.self, containing: ["ET_EXEC"]) { try ELFImage.parse(elf.bytes) }

        elf = ELFBuilder.good64()
        elf.machine = 183 // AArch64
        assertThrows(GuestImageError.self, containing: ["machine 183"]) { try ELFImage.parse(elf.bytes) }

        var bytes = ELFBuilder.good64().bytes
        bytes[4] = 3
        assertThrows(GuestImageError.self, containing: ["class 3"]) { try ELFImage.parse(bytes) }

        elf = ELFBuilder.good64()
        elf.littleEndian = false
        assertThrows(GuestImageError.self, containing: ["little-endian"]) { try ELFImage.parse(elf.bytes) }

        elf = ELFBuilder.good64()
        elf.headers = []
        assertThrows(GuestImageError.self, containing: ["no program headers"]) { try ELFImage.parse(elf.bytes) }
    }

    func testInterpreterAndDynamic() {
        var elf = ELFBuilder.good64()
        elf.headers.insert(.init(type: 3, paddr: 0, data: Array("/lib/ld.so\0".utf8)), at: 0)
        assertThrows(GuestImageError.self, containing: ["PT_INTERP"]) { try ELFImage.parse(elf.bytes) }

        var elf32 = ELFBuilder.good32()
        elf32.headers.append(.init(type: 2, paddr: 0, data: [0, 0, 0, 0]))
        assertThrows(GuestImageError.self, containing: ["PT_DYNAMIC"]) { try ELFImage.parse(elf32.bytes) }
    }

    func testFileSizeLargerThanMemorySize() {
        var elf = ELFBuilder.good64()
        elf.headers[0].memsz = 4
        assertThrows(GuestImageError.self, containing: ["p_filesz > p_memsz"]) { try ELFImage.parse(elf.bytes) }
    }

    func testEntryOutsideSegments() {
        var elf = ELFBuilder.good64(bss: 0)
        elf.entry = 0x20_0000 + UInt64(ELFBuilder.code64.count) // one past the end
        assertThrows(GuestImageError.self, containing: ["entry point", hex(elf.entry)]) {
            try ELFImage.parse(elf.bytes)
        }
        elf.entry = 0x1F_FFFF // one before the start
        assertThrows(GuestImageError.self, containing: ["entry point"]) { try ELFImage.parse(elf.bytes) }
    }

    func testNoLoadableSegments() {
        var elf = ELFBuilder.good64()
        elf.headers = [.init(type: 4, paddr: 0, data: [1, 2, 3, 4])]
        assertThrows(GuestImageError.self, containing: ["no loadable segments"]) { try ELFImage.parse(elf.bytes) }
    }

    func testSegmentWrappingTheAddressSpace() {
        var elf = ELFBuilder.good64()
        elf.headers[0].paddr = UInt64.max - 3
        elf.entry = UInt64.max - 3
        assertThrows(GuestImageError.self, containing: ["wraps"]) { try ELFImage.parse(elf.bytes) }
    }

    /// Random mutations of a good file must be refused or parsed, never trap.
    func testMutationsNeverTrap() {
        let good = ELFBuilder.good64().bytes
        var generator = SplitMix64(seed: 0x5EED)
        var refused = 0
        for _ in 0..<2000 {
            var bytes = good
            for _ in 0..<Int(generator.next() % 4 + 1) {
                let i = Int(generator.next() % UInt64(bytes.count))
                bytes[i] = UInt8(truncatingIfNeeded: generator.next())
            }
            if generator.next() % 4 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count)))) }
            do { _ = try ELFImage.parse(bytes) } catch is GuestImageError { refused += 1 } catch {
                XCTFail("unexpected error type \(type(of: error)): \(error)")
            }
        }
        XCTAssertGreaterThan(refused, 0)
    }
}
