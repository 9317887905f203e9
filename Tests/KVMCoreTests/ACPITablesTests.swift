import Foundation
import XCTest

@testable import KVMCore

/// The ACPI tables, without KVM: the RSDP and every table's checksum, the
/// pointers between them, the FADT's 32- and 64-bit register blocks, the
/// MADT's entries, the DSDT's sleep packages, the limits, and the bytes in
/// guest memory; and, where the host has `iasl` (acpica-tools), its
/// disassembly of each table.
final class ACPITablesTests: XCTestCase {
    static let base: UInt64 = 0x07FE_0000

    /// The tables and the RSDP, read back by guest-physical address.
    struct Built {
        let rsdp: [UInt8]
        let tables: [UInt8]
        let base: UInt64

        init(cpus: Int, base: UInt64 = ACPITablesTests.base) throws {
            (rsdp, tables) = try ACPITables(cpus: cpus).build(tablesAddress: base)
            self.base = base
        }

        /// The table whose header is at `address`, as long as its length field says.
        func table(at address: UInt64, file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
            guard address >= base, address - base + 8 <= UInt64(tables.count) else {
                XCTFail("\(hex(address)) is outside the tables at \(hex(base))", file: file, line: line)
                return []
            }
            let start = Int(address - base)
            let length = Int(u32(tables, start + 4))
            guard length >= 8, start + length <= tables.count else {
                XCTFail("table at \(hex(address)) of \(length) bytes runs past the area", file: file, line: line)
                return []
            }
            return Array(tables[start..<start + length])
        }

        var rsdt: [UInt8] { table(at: UInt64(u32(rsdp, 16))) }
        var xsdt: [UInt8] { table(at: u64(rsdp, 24)) }
        /// The RSDT's entries.
        var entries: [UInt64] { stride(from: 36, to: rsdt.count, by: 4).map { UInt64(u32(rsdt, $0)) } }
        func table(_ signature: String) -> [UInt8] {
            entries.map { table(at: $0) }.first { Self.signature($0) == signature } ?? []
        }
        var fadt: [UInt8] { table("FACP") }
        var madt: [UInt8] { table("APIC") }
        var dsdt: [UInt8] { table(at: UInt64(u32(fadt, 40))) }
        var facs: [UInt8] {
            let at = UInt64(u32(fadt, 36))
            guard at >= base, at - base + 64 <= UInt64(tables.count) else { return [] }
            return Array(tables[Int(at - base)..<Int(at - base) + 64])
        }

        static func signature(_ table: [UInt8]) -> String { String(decoding: table.prefix(4), as: UTF8.self) }
    }

    // MARK: Checksums and pointers

    func testRSDP() throws {
        let t = try Built(cpus: 2)
        XCTAssertEqual(t.rsdp.count, 36)
        XCTAssertEqual(String(decoding: t.rsdp.prefix(8), as: UTF8.self), "RSD PTR ")
        XCTAssertEqual(t.rsdp[15], 2, "revision")
        XCTAssertEqual(u32(t.rsdp, 20), 36, "length")
        XCTAssertEqual(sum(t.rsdp.prefix(20)), 0, "ACPI 1.0 checksum")
        XCTAssertEqual(sum(t.rsdp), 0, "extended checksum")
        XCTAssertEqual(Built.signature(t.rsdt), "RSDT")
        XCTAssertEqual(Built.signature(t.xsdt), "XSDT")
    }

    /// Every -smp the tables allow (1…255): the extremes a fuzzer would look for, all of them.
    func testEveryTableChecksumsToZero() throws {
        for cpus in 1...ACPITables.maxCPUs {
            let t = try Built(cpus: cpus)
            for table in [t.rsdt, t.xsdt, t.fadt, t.madt, t.dsdt] {
                XCTAssertFalse(table.isEmpty)
                XCTAssertEqual(sum(table), 0, "\(Built.signature(table)) checksum, \(cpus) CPUs")
                XCTAssertEqual(String(decoding: table[10..<16], as: UTF8.self), "KVMRUN")
                XCTAssertEqual(String(decoding: table[16..<24], as: UTF8.self), "SWIFTKVM")
            }
        }
    }

    func testRSDTAndXSDTListTheFADTTheMADTAndTheWAET() throws {
        let t = try Built(cpus: 4)
        let xsdtEntries = stride(from: 36, to: t.xsdt.count, by: 8).map { u64(t.xsdt, $0) }
        XCTAssertEqual(t.entries.count, 3)
        XCTAssertEqual(xsdtEntries, t.entries)
        XCTAssertEqual(t.entries.map { Built.signature(t.table(at: $0)) }, ["FACP", "APIC", "WAET"])
        let waet = t.table(at: t.entries[2])
        XCTAssertEqual(waet.count, 40)
        XCTAssertEqual(waet.reduce(0) { $0 &+ $1 }, 0, "WAET checksum")
        XCTAssertEqual(u32(waet, 36), 2, "WAET: ACPI PM timer good")
    }

    func testFADTPointsAtTheDSDTAndTheFACS() throws {
        let t = try Built(cpus: 1)
        XCTAssertEqual(t.fadt.count, 244)
        XCTAssertEqual(t.fadt[8], 3, "revision")
        XCTAssertEqual(Built.signature(t.dsdt), "DSDT")
        XCTAssertEqual(u64(t.fadt, 140), UInt64(u32(t.fadt, 40)), "X_DSDT = DSDT")
        XCTAssertEqual(Built.signature(t.facs), "FACS")
        XCTAssertEqual(u32(t.facs, 4), 64)
        XCTAssertEqual(u32(t.fadt, 36) % 64, 0, "FACS 64-byte aligned")
        XCTAssertEqual(u64(t.fadt, 132), 0, "X_FIRMWARE_CTRL unused: FIRMWARE_CTRL holds the FACS")
    }

    // MARK: FADT

    /// Each block's 32-bit address and byte length against its X_ Generic
    /// Address (what ACPICA's acpi_tb_convert_fadt compares).
    func testFADTBlocksAgree() throws {
        let f = try Built(cpus: 2).fadt
        // (name, 32-bit address offset, length offset, X_ GAS offset, expected port, expected length)
        let blocks: [(String, Int, Int, Int, UInt16, UInt8)] = [
            ("PM1a_EVT", 56, 88, 148, ACPILayout.pm1aEvent, ACPILayout.pm1aEventLength),
            ("PM1b_EVT", 60, 88, 160, 0, 0),
            ("PM1a_CNT", 64, 89, 172, ACPILayout.pm1aControl, ACPILayout.pm1aControlLength),
            ("PM1b_CNT", 68, 89, 184, 0, 0),
            ("PM2_CNT", 72, 90, 196, 0, 0),
            ("PM_TMR", 76, 91, 208, ACPILayout.pmTimer, ACPILayout.pmTimerLength),
            ("GPE0", 80, 92, 220, ACPILayout.gpe0, ACPILayout.gpe0Length),
            ("GPE1", 84, 93, 232, 0, 0),
        ]
        for (name, address32, lengthOffset, gas, port, length) in blocks {
            XCTAssertEqual(u32(f, address32), UInt32(port), name)
            XCTAssertEqual(u64(f, gas + 4), UInt64(port), "X_\(name) address")
            XCTAssertEqual(f[gas + 2], 0, "X_\(name) bit offset")
            if port != 0 {
                XCTAssertEqual(f[lengthOffset], length, "\(name) length")
                XCTAssertEqual(Int(f[gas + 1]), 8 * Int(length), "X_\(name) bit width")
                XCTAssertEqual(f[gas], 1, "X_\(name) in system I/O")
            } else {
                XCTAssertEqual(f[gas + 1], 0, "X_\(name) bit width")
            }
        }
        XCTAssertEqual(f[90], 0, "PM2_CNT_LEN")
        XCTAssertEqual(f[93], 0, "GPE1_BLK_LEN")
    }

    func testFADTFields() throws {
        let f = try Built(cpus: 2).fadt
        XCTAssertEqual(u16(f, 46), UInt16(ACPILayout.sciIRQ), "SCI_INT")
        XCTAssertEqual(u32(f, 48), 0, "SMI_CMD: already in ACPI mode")
        XCTAssertEqual(f[52], 0, "ACPI_ENABLE")
        XCTAssertEqual(f[53], 0, "ACPI_DISABLE")
        XCTAssertEqual(f[108], 0x32, "CENTURY")
        XCTAssertEqual(u16(f, 109), 0x0003, "IAPC_BOOT_ARCH: LEGACY_DEVICES | 8042")
        let flags = u32(f, 112)
        XCTAssertEqual(flags, 0x84A5, "WBINVD, PROC_C1, SLP_BUTTON, RTC_S4, RESET_REG_SUP, USE_PLATFORM_CLOCK")
        XCTAssertEqual(flags & (1 << 8), 0, "TMR_VAL_EXT clear: 24-bit PM timer")
        XCTAssertEqual(flags & (1 << 4), 0, "fixed-feature power button")
        XCTAssertEqual(
            Array(f[116..<128]), [1, 8, 0, 0] + littleEndianBytes(UInt64(ACPILayout.resetPort)), "RESET_REG")
        XCTAssertEqual(f[128], ACPILayout.resetValue, "RESET_VALUE")
        XCTAssertEqual(u32(try Built(cpus: 9).fadt, 112) & (1 << 18), 1 << 18, "cluster model above 8 CPUs, as QEMU")
    }

    // MARK: MADT

    /// The MADT's entries (type, bytes), walked by their length bytes.
    func madtEntries(_ madt: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [(
        type: UInt8, bytes: [UInt8]
    )] {
        var out: [(UInt8, [UInt8])] = []
        var offset = 44
        while offset + 2 <= madt.count {
            let length = Int(madt[offset + 1])
            guard length >= 2, offset + length <= madt.count else {
                XCTFail("MADT entry at \(offset) of length \(length) runs past \(madt.count)", file: file, line: line)
                break
            }
            out.append((madt[offset], Array(madt[offset..<offset + length])))
            offset += length
        }
        XCTAssertEqual(offset, madt.count, "entries fill the MADT exactly", file: file, line: line)
        return out
    }

    func testMADT() throws {
        for cpus in [1, 2, 4, 8, 9, 128, 254, 255] {
            let madt = try Built(cpus: cpus).madt
            XCTAssertEqual(u32(madt, 36), 0xFEE0_0000, "local APIC address")
            XCTAssertEqual(u32(madt, 40), 1, "PCAT_COMPAT")
            let entries = madtEntries(madt)
            let lapics = entries.filter { $0.type == 0 }.map(\.bytes)
            XCTAssertEqual(lapics.count, cpus)
            for (i, e) in lapics.enumerated() {
                XCTAssertEqual(e, [0, 8, UInt8(i), UInt8(i), 1, 0, 0, 0], "CPU \(i)")
            }
            let ioapics = entries.filter { $0.type == 1 }.map(\.bytes)
            XCTAssertEqual(ioapics, [[1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0]])
            let overrides = entries.filter { $0.type == 2 }.map(\.bytes)
            XCTAssertEqual(
                overrides,
                [
                    [2, 10, 0, 0, 2, 0, 0, 0, 0x0, 0],
                    [2, 10, 0, 5, 5, 0, 0, 0, 0xD, 0],
                    [2, 10, 0, 9, 9, 0, 0, 0, 0xD, 0],
                    [2, 10, 0, 10, 10, 0, 0, 0, 0xD, 0],
                    [2, 10, 0, 11, 11, 0, 0, 0, 0xD, 0],
                ])
            XCTAssertEqual(entries.filter { $0.type == 4 }.map(\.bytes), [[4, 6, 0xFF, 0, 0, 1]], "LAPIC NMI on LINT1")
            XCTAssertEqual(entries.count, cpus + 1 + 5 + 1)
        }
    }

    // MARK: DSDT

    /// Finds `Name (segment, Package (n) {first, ...})` in the DSDT's AML and
    /// decodes the package's element count and first element.
    func sleepPackage(_ segment: String, in dsdt: [UInt8]) -> (count: UInt8, first: UInt64)? {
        let aml = Array(dsdt.dropFirst(36))
        let pattern = [AML.nameOp] + Array(segment.utf8) + [AML.packageOp]
        guard
            let at = (0...max(0, aml.count - pattern.count)).first(where: {
                Array(aml[$0..<min(aml.count, $0 + pattern.count)]) == pattern
            })
        else { return nil }
        var i = at + pattern.count
        guard i < aml.count else { return nil }
        let lengthBytes = Int(aml[i] >> 6) // PkgLength: 0 extra bytes for a small package
        i += 1 + lengthBytes
        guard i + 1 < aml.count else { return nil }
        let count = aml[i]
        i += 1
        switch aml[i] {
        case AML.zeroOp: return (count, 0)
        case AML.oneOp: return (count, 1)
        case AML.bytePrefix where i + 1 < aml.count: return (count, UInt64(aml[i + 1]))
        default: return nil
        }
    }

    func testDSDTSleepStates() throws {
        let dsdt = try Built(cpus: 1).dsdt
        let s5 = sleepPackage("_S5_", in: dsdt)
        XCTAssertEqual(s5?.count, 4)
        XCTAssertEqual(s5?.first, UInt64(ACPILayout.sleepTypeS5))
        let s3 = sleepPackage("_S3_", in: dsdt)
        XCTAssertEqual(s3?.count, 4)
        XCTAssertEqual(s3?.first, UInt64(ACPILayout.sleepTypeS3))
        // The whole body: both names, nothing else.
        XCTAssertEqual(
            Array(dsdt.dropFirst(36)),
            [0x08] + Array("_S3_".utf8) + [0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00]
                + [0x08] + Array("_S5_".utf8) + [0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00])
    }

    func testAMLEncoders() {
        XCTAssertEqual(AML.pkgLength(0), [0x01])
        XCTAssertEqual(AML.pkgLength(62), [0x3F])
        // 63 + 2 = 65 = 0x41: one extra byte, low nibble 1, then 0x04.
        XCTAssertEqual(AML.pkgLength(63), [0x41, 0x04])
        XCTAssertEqual(AML.pkgLength(0xFFD), [0x4F, 0xFF])
        XCTAssertEqual(AML.pkgLength(0xFFE), [0x81, 0x00, 0x01])
        XCTAssertEqual(AML.integer(0), [0x00])
        XCTAssertEqual(AML.integer(1), [0x01])
        XCTAssertEqual(AML.integer(2), [0x0A, 0x02])
        XCTAssertEqual(AML.integer(0x1234), [0x0B, 0x34, 0x12])
        XCTAssertEqual(AML.integer(0x1_0000), [0x0C, 0x00, 0x00, 0x01, 0x00])
        XCTAssertEqual(AML.integer(1 << 32), [0x0E, 0, 0, 0, 0, 1, 0, 0, 0])
        XCTAssertEqual(AML.nameSeg("_S5"), Array("_S5_".utf8))
    }

    // MARK: Limits and layout

    func testCPUCountLimits() {
        for bad in [0, -1, 256] {
            XCTAssertThrowsError(try ACPITables(cpus: bad), "\(bad) CPUs") { XCTAssertTrue($0 is ConfigurationError) }
        }
        XCTAssertNoThrow(try ACPITables(cpus: 1))
        XCTAssertNoThrow(try ACPITables(cpus: 255))
    }

    /// Within ACPILayout.tablesMaxSize at 255 CPUs; every table aligned even
    /// when the area's address is not.
    func testSizeAndAlignment() throws {
        for base: UInt64 in [0x07FE_0000, 0x07FE_0008, 0x0010_0024] {
            let t = try Built(cpus: 255, base: base)
            XCTAssertLessThanOrEqual(UInt64(t.tables.count), ACPILayout.tablesMaxSize)
            for address in t.entries + [UInt64(u32(t.rsdp, 16)), u64(t.rsdp, 24), UInt64(u32(t.fadt, 40))] {
                XCTAssertEqual(address % 16, 0, "\(hex(address)) at base \(hex(base))")
            }
            XCTAssertEqual(u32(t.fadt, 36) % 64, 0)
        }
    }

    /// RAM without a VM (the slot is never told to KVM), as FwCfgTests does.
    func memory(_ size: UInt64) throws -> GuestMemory {
        let memory = GuestMemory()
        _ = try memory.addRegion(at: 0, size: size, flags: 0) { _ in }
        return memory
    }

    func testWriteIntoGuestMemory() throws {
        let memory = try memory(16 << 20)
        let acpi = try ACPITables(cpus: 4)
        let tablesAddress: UInt64 = (16 << 20) - ACPILayout.tablesMaxSize
        try acpi.write(into: memory, tablesAddress: tablesAddress)
        let (rsdp, tables) = acpi.build(tablesAddress: tablesAddress)
        XCTAssertEqual(try memory.bytes(at: ACPILayout.rsdpAddress, count: 36), rsdp)
        XCTAssertEqual(try memory.bytes(at: 0xF_0000, count: 8), Array("RSD PTR ".utf8))
        XCTAssertEqual(try memory.bytes(at: tablesAddress, count: tables.count), tables)

        XCTAssertThrowsError(try acpi.write(into: memory, tablesAddress: 0xF_0000 - 16), "overlaps the RSDP")
        XCTAssertThrowsError(try acpi.write(into: memory, tablesAddress: (1 << 32) - 0x100), "past 4 GiB")
        XCTAssertThrowsError(try acpi.write(into: memory, tablesAddress: 32 << 20), "outside RAM") {
            XCTAssertTrue($0 is ConfigurationError)
        }

        // RAM from 1 MiB only: no RSDP, and so no tables either.
        let high = GuestMemory()
        _ = try high.addRegion(at: 1 << 20, size: 1 << 20, flags: 0) { _ in }
        XCTAssertThrowsError(try acpi.write(into: high, tablesAddress: 1 << 20), "RSDP outside RAM") {
            XCTAssertTrue($0 is ConfigurationError)
        }
        XCTAssertEqual(try high.bytes(at: 1 << 20, count: 64), [UInt8](repeating: 0, count: 64), "nothing written")
    }

    // MARK: acpica-tools

    /// The path of an acpica-tools program, or a skip naming what is missing.
    func acpicaTool(_ name: String) throws -> String {
        let dirs =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/bin", "/usr/local/bin"]
        guard
            let path = dirs.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            throw XCTSkip(
                "\(name) not installed (Debian: apt-get install acpica-tools): the tables are not checked by ACPICA")
        }
        return path
    }

    /// A fresh directory holding each table of `t` as `<signature>.dat`
    /// (the RSDP is not a table iasl reads: its own test checks it).
    func dumpTables(_ t: Built) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("acpi-tables-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, bytes) in [
            ("rsdt", t.rsdt), ("xsdt", t.xsdt), ("facp", t.fadt), ("facs", t.facs),
            ("apic", t.madt), ("dsdt", t.dsdt),
        ] {
            try Data(bytes).write(to: dir.appendingPathComponent("\(name).dat"))
        }
        return dir
    }

    /// Lines of ACPICA output that report a problem with the tables.
    func complaints(_ text: String) -> [Substring] {
        text.split(separator: "\n").filter {
            $0.range(of: #"\b(Error|Warning|Invalid|Incorrect|bug)\b"#, options: .regularExpression) != nil
        }
    }

    /// `iasl -d` disassembles every table with no complaint, and the DSDT's
    /// source compiles back to the same AML. Skips without iasl.
    func testIASLDisassemblesEveryTable() throws {
        let iasl = try acpicaTool("iasl")
        let dir = try dumpTables(try Built(cpus: 4))
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["rsdt", "xsdt", "facp", "facs", "apic", "dsdt"] {
            let (status, output) = try run(iasl, ["-d", "\(name).dat"], in: dir)
            XCTAssertEqual(status, 0, "iasl -d \(name).dat:\n\(output)")
            let dsl = (try? String(contentsOf: dir.appendingPathComponent("\(name).dsl"), encoding: .utf8)) ?? ""
            XCTAssertFalse(dsl.isEmpty, "no \(name).dsl:\n\(output)")
            for line in complaints(output + dsl) { XCTFail("iasl -d \(name).dat: \(line)") }
        }
        let (status, output) = try run(iasl, ["-p", "recompiled", "dsdt.dsl"], in: dir)
        XCTAssertEqual(status, 0, "iasl dsdt.dsl:\n\(output)")
        XCTAssertTrue(output.contains("0 Errors, 0 Warnings"), output)
        let recompiled = [UInt8]((try? Data(contentsOf: dir.appendingPathComponent("recompiled.aml"))) ?? Data())
        XCTAssertEqual(
            Array(recompiled.dropFirst(36)), Array(try Built(cpus: 4).dsdt.dropFirst(36)),
            "iasl compiles the disassembly back to the same AML")
    }

    /// acpiexec (ACPICA, the interpreter Linux runs) installs the FADT, DSDT
    /// and MADT with no warning, which covers tbfadt.c's 32/64-bit checks,
    /// and evaluates \_S3 and \_S5 to their packages. Its own self-tests
    /// then poke registers this machine lacks (PM2's ARB_DIS, GPEs past 15):
    /// those "Unexpected AE_..." lines are acpiexec's, not the tables'.
    func testACPIExecLoadsTheTables() throws {
        let acpiexec = try acpicaTool("acpiexec")
        let dir = try dumpTables(try Built(cpus: 4))
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, output) = try run(
            acpiexec, ["-b", "Evaluate \\_S3; Evaluate \\_S5", "dsdt.dat", "facp.dat", "apic.dat"], in: dir)
        XCTAssertEqual(status, 0, output)
        for line in complaints(output) { XCTFail("acpiexec: \(line)") }
        XCTAssertTrue(output.contains("ACPI: FACP") && output.contains("ACPI: APIC"), output)
        for (state, type) in [("_S3", ACPILayout.sleepTypeS3), ("_S5", ACPILayout.sleepTypeS5)] {
            guard let at = output.range(of: "Evaluation of \\\(state) returned") else {
                XCTFail("\\\(state) not evaluated:\n\(output)")
                continue
            }
            let rest = output[at.upperBound...]
            XCTAssertTrue(rest.contains("Contains 4 Elements"), output)
            let expected = String(format: "[Integer] = %016X", UInt32(type))
            let first = rest.range(of: "[Integer] = ").map { String(rest[$0.lowerBound...].prefix(expected.count)) }
            XCTAssertEqual(first, expected, "\\\(state)'s SLP_TYPa")
        }
    }

    func run(_ tool: String, _ arguments: [String], in dir: URL) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.currentDirectoryURL = dir
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}

private func u16(_ b: [UInt8], _ o: Int) -> UInt16 {
    guard o + 2 <= b.count else { return 0 }
    return UInt16(b[o]) | UInt16(b[o + 1]) << 8
}

private func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
    guard o + 4 <= b.count else { return 0 }
    return (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) }
}

private func u64(_ b: [UInt8], _ o: Int) -> UInt64 {
    guard o + 8 <= b.count else { return 0 }
    return (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) }
}

/// The bytes' sum mod 256: 0 for a table with a right checksum.
private func sum<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 { bytes.reduce(0, &+) }
