import Foundation
import Guests
import KVMCore
import XCTest

/// The snapshot file: its documented layout (Docs/snapshot-format.md), and a
/// file that is truncated, corrupt, of another version or for another host is
/// refused whole with the reason.
final class SnapshotFileTests: XCTestCase {
    private var scratch: SnapshotScratch!
    private var path: String!
    private var kvm: KVM!

    override func setUpWithError() throws {
        kvm = try requireKVM()
        scratch = try SnapshotScratch()
        path = scratch.path + "/hostcall.kvmsnap"
        let machine = try SnapshotHarness.boot(.hostcall, kvm: kvm)
        guard case .sync(1) = try machine.run(timeout: .seconds(10)) else {
            throw XCTSkip("hostcall did not reach sync 1")
        }
        try machine.snapshot(notes: ["note": [1, 2, 3]]).write(to: path)
    }

    override func tearDown() {
        scratch = nil
        kvm = nil
    }

    // MARK: Helpers

    private func fileBytes() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Overwrites bytes in place (the rest of the file, holes included, stays).
    private func patch(_ offset: Int, _ bytes: [UInt8], in file: String? = nil) throws {
        let fd = open(file ?? path, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }, bytes.count)
    }

    private func readByte(_ offset: Int) throws -> UInt8 {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var b: UInt8 = 0
        XCTAssertEqual(pread(fd, &b, 1, off_t(offset)), 1)
        return b
    }

    private func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }
    private func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }
    private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    /// CRC-32C, bit by bit (independent of the library's table-driven one).
    private func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = ~0
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        }
        return ~c
    }

    private struct Header {
        var version: UInt32, fileSize: UInt64, metaOffset: UInt64, metaLength: UInt64, memOffset: UInt64,
            memLength: UInt64, metaCRC: UInt32, headerCRC: UInt32
    }

    private func header(_ b: [UInt8]) -> Header {
        Header(
            version: u32(b, 8), fileSize: u64(b, 16), metaOffset: u64(b, 24), metaLength: u64(b, 32),
            memOffset: u64(b, 40), memLength: u64(b, 48), metaCRC: u32(b, 56), headerCRC: u32(b, 60))
    }

    /// Recomputes the header checksum after an edit of bytes 0..<60.
    private func resealHeader() throws {
        let b = try fileBytes()
        try patch(60, le32(crc32c(Array(b[0..<60]))))
    }

    /// Replaces the metadata (it must still fit before the memory image) and reseals.
    private func replaceMetadata(_ metadata: [UInt8]) throws {
        let h = header(try fileBytes())
        XCTAssertLessThanOrEqual(4096 + UInt64(metadata.count), h.memOffset)
        try patch(4096, metadata + [UInt8](repeating: 0, count: Int(h.memOffset) - 4096 - metadata.count))
        try patch(32, le64(UInt64(metadata.count)))
        try patch(56, le32(crc32c(metadata)))
        try resealHeader()
    }

    private func metadata() throws -> [UInt8] {
        let b = try fileBytes()
        let h = header(b)
        return Array(b[Int(h.metaOffset)..<Int(h.metaOffset + h.metaLength)])
    }

    private func section(_ tag: String, flags: UInt32, _ payload: [UInt8]) -> [UInt8] {
        var s = Array(tag.utf8) + le32(flags) + le64(UInt64(payload.count)) + payload
        s += [UInt8](repeating: 0, count: (8 - payload.count % 8) % 8)
        return s
    }

    @discardableResult
    private func assertRefused(
        _ kind: SnapshotError.Kind, _ fragments: [String] = [],
        file: StaticString = #filePath, line: UInt = #line
    ) -> SnapshotError? {
        let error = assertThrows(SnapshotError.self, containing: [path] + fragments, file: file, line: line) {
            try Snapshot(contentsOf: path)
        }
        if let error {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), "one line", file: file, line: line)
        }
        return error
    }

    // MARK: The layout

    func testLayoutIsTheDocumentedOne() throws {
        let b = try fileBytes()
        XCTAssertEqual(Array(b[0..<8]), Array("SKVMSNAP".utf8))
        let h = header(b)
        XCTAssertEqual(h.version, 1)
        XCTAssertEqual(u32(b, 12), 64, "header size")
        XCTAssertEqual(h.headerCRC, crc32c(Array(b[0..<60])), "header CRC-32C")
        XCTAssertEqual(h.metaOffset, 4096)
        XCTAssertEqual(h.memOffset % 4096, 0, "the memory image is page aligned (so it can be mapped)")
        XCTAssertEqual(h.memLength, 16 << 20, "a full-size image of RAM")
        XCTAssertEqual(h.fileSize, h.memOffset + h.memLength)
        XCTAssertEqual(UInt64(b.count), h.fileSize)
        XCTAssertEqual(h.metaCRC, crc32c(try metadata()))
        XCTAssertTrue(b[64..<4096].allSatisfy { $0 == 0 })
        // Sections: CONF first, then MEMX, VCPU, devices, the note.
        var tags: [String] = []
        let meta = try metadata()
        var at = 0
        while at < meta.count {
            tags.append(String(decoding: meta[at..<at + 4], as: UTF8.self))
            let length = Int(u64(meta, at + 8))
            at += 16 + length + (8 - length % 8) % 8
        }
        XCTAssertEqual(tags, ["CONF", "MEMX", "VCPU", "CLCK", "DEVC", "DEVC", "DEVC", "NOTE"])
        // The guest's code is in the image where the guest sees it (RAM from 0).
        // (The hostcall block after it is written by the guest.)
        let code = Array(GuestImage.hostcall.bytes.prefix(0xE0))
        XCTAssertEqual(Array(b[Int(h.memOffset) + 0x10_0000..<Int(h.memOffset) + 0x10_0000 + code.count]), code)
        // Sparse: the file takes far less disk than its size.
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertLessThan(UInt64(info.st_blocks) * 512, 2 << 20, "pages not stored are holes")
        let snapshot = try Snapshot(contentsOf: path)
        XCTAssertEqual(snapshot.notes, ["note": [1, 2, 3]])
    }

    func testWriteIsAtomicAndLeavesNoTemporaryFile() throws {
        let snapshot = try Snapshot(contentsOf: path)
        try snapshot.write(to: path) // over itself: the open file's mapping is not affected
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["hostcall.kvmsnap"])
        _ = try Snapshot(contentsOf: path)
        XCTAssertThrowsError(try snapshot.write(to: scratch.path + "/no/such/dir/x.kvmsnap")) { error in
            XCTAssertTrue(error is FileError, "\(error)")
        }
    }

    // MARK: Refusals

    func testNotASnapshot() throws {
        try Data("hello, world".utf8).write(to: URL(fileURLWithPath: path))
        assertRefused(.notSnapshot, ["SKVMSNAP"])
        try Data().write(to: URL(fileURLWithPath: path))
        assertRefused(.notSnapshot)
        XCTAssertThrowsError(try Snapshot(contentsOf: scratch.path + "/missing")) { XCTAssertTrue($0 is FileError) }
        XCTAssertThrowsError(try Snapshot(contentsOf: scratch.path)) { error in
            XCTAssertEqual((error as? SnapshotError)?.kind, .notSnapshot, "a directory: \(error)")
        }
    }

    func testTruncationAnywhereIsRefused() throws {
        let h = header(try fileBytes())
        let original = path + ".orig"
        try FileManager.default.copyItem(atPath: path, toPath: original)
        for length in [
            8, 30, 63, 64, 100, 4095, 4096, Int(h.metaOffset + h.metaLength) - 1, Int(h.memOffset),
            Int(h.memOffset) + 0x10_0000, Int(h.fileSize) - 1,
        ] {
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.copyItem(atPath: original, toPath: path)
            XCTAssertEqual(truncate(path, off_t(length)), 0)
            let error = assertThrows(SnapshotError.self, containing: [path]) { try Snapshot(contentsOf: path) }
            XCTAssertEqual(error?.kind, .truncated, "cut at \(length): \(error.map { "\($0)" } ?? "")")
        }
        // Bytes after the end are refused too.
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: original, toPath: path)
        XCTAssertEqual(truncate(path, off_t(h.fileSize + 1)), 0)
        assertRefused(.corrupt, ["after the end"])
    }

    func testFlippedBitsAreRefused() throws {
        let b = try fileBytes()
        let h = header(b)
        let snapshot = try Snapshot(contentsOf: path)
        // Where the stored pages are: the guest's code at 1 MiB.
        let code = Int(h.memOffset) + 0x10_0000
        var offsets = [
            0, 7, 8, 12, 16, 40, 56, 60, 63, 64, 2000, 4095, // header and its padding
            4096, 4100, 4104, 4112, Int(h.metaOffset + h.metaLength) - 1, // metadata
            Int(h.metaOffset + h.metaLength), Int(h.memOffset) - 1, // padding before memory
            code, code + 5, code + 4095, // a stored page
            Int(h.memOffset), Int(h.memOffset) + 0x20_0000, Int(h.fileSize) - 1,
        ] // pages not stored
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<40 { offsets.append(Int.random(in: 0..<Int(h.fileSize), using: &generator)) }
        for offset in offsets {
            let bit = UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
            let original = try readByte(offset)
            try patch(offset, [original ^ bit])
            let error = assertThrows(SnapshotError.self, containing: [path]) { try Snapshot(contentsOf: path) }
            if let error {
                XCTAssertTrue(
                    [.corrupt, .notSnapshot, .truncated].contains(error.kind), "bit \(bit) at \(offset): \(error)")
            } else {
                XCTFail("a flipped bit at offset \(offset) (of \(h.fileSize)) was not noticed")
            }
            try patch(offset, [original])
        }
        XCTAssertEqual(try Snapshot(contentsOf: path).storedPages, snapshot.storedPages, "intact again")
    }

    func testMemoryChecksumsCanBeSkippedButMetadataCannot() throws {
        let h = header(try fileBytes())
        try patch(Int(h.memOffset) + 0x10_0000, [try readByte(Int(h.memOffset) + 0x10_0000) ^ 0x80])
        assertRefused(.corrupt, ["guest memory 0x"])
        XCTAssertNoThrow(try Snapshot(contentsOf: path, verify: .metadata))
        try patch(4200, [try readByte(4200) ^ 1])
        XCTAssertThrowsError(try Snapshot(contentsOf: path, verify: .metadata))
    }

    func testAnotherVersionIsRefused() throws {
        try patch(8, le32(2))
        try resealHeader()
        assertRefused(.unsupportedVersion, ["version 2", "version 1"])
    }

    func testUnknownSectionsRequiredOrNot() throws {
        let meta = try metadata()
        try replaceMetadata(meta + section("XTRA", flags: 0, [9, 9, 9]))
        XCTAssertNoThrow(try Snapshot(contentsOf: path), "an optional section is skipped")
        try replaceMetadata(meta + section("XTRA", flags: 1, [9, 9, 9]))
        assertRefused(.unsupportedVersion, ["XTRA"])
    }

    func testInconsistentMetadataIsRefused() throws {
        let meta = try metadata()
        // CONF's vCPU count (offset 16 + 8 in the first section) says 2, there is one VCPU section.
        var edited = meta
        edited[24] = 2
        try replaceMetadata(edited)
        assertRefused(.corrupt, ["2 vCPUs"])
        // A section length running past the metadata.
        edited = meta
        edited.replaceSubrange(8..<16, with: le64(1 << 40))
        try replaceMetadata(edited)
        assertRefused(.corrupt, ["runs past"])
    }

    func testAnotherVendorsCPUIsRefusedAtRestore() throws {
        var snapshot = try Snapshot(contentsOf: path)
        snapshot.configuration.cpuVendor =
            snapshot.configuration.cpuVendor == "AuthenticAMD" ? "GenuineIntel" : "AuthenticAMD"
        try snapshot.write(to: path)
        let read = try Snapshot(contentsOf: path)
        let fds = try openFileDescriptorCount()
        let error = assertThrows(SnapshotError.self, containing: ["taken on a \(snapshot.configuration.cpuVendor) CPU"])
        {
            try Machine(restoring: read, kvm: kvm)
        }
        XCTAssertEqual(error?.kind, .wrongHost)
        XCTAssertEqual(try openFileDescriptorCount(), fds, "nothing was created")
    }

    func testNestedStateOfTheOtherVendorIsRefusedAtRestore() throws {
        var snapshot = try Snapshot(contentsOf: path)
        let intel = snapshot.configuration.cpuVendor == "GenuineIntel"
        let other: NestedState = intel ? .svm(SVMNestedState()) : .vmx(VMXNestedState())
        snapshot.vcpus[0].nestedState = other.bytes
        try snapshot.write(to: path)
        let read = try Snapshot(contentsOf: path)
        XCTAssertEqual(read.vcpus[0].nestedState, other.bytes, "the blob round-trips")
        let error = assertThrows(
            SnapshotError.self, containing: [intel ? "SVM (AMD)" : "VMX (Intel)", snapshot.configuration.cpuVendor]
        ) {
            try Machine(restoring: read, kvm: kvm)
        }
        XCTAssertEqual(error?.kind, .wrongHost)
    }

    func testNestedStateNeedsTheCapability() throws {
        guard kvm.check(.nestedState) == 0 else { throw XCTSkip("this host has KVM_CAP_NESTED_STATE") }
        var snapshot = try Snapshot(contentsOf: path)
        let own: NestedState =
            snapshot.configuration.cpuVendor == "GenuineIntel" ? .vmx(VMXNestedState()) : .svm(SVMNestedState())
        snapshot.vcpus[0].nestedState = own.bytes
        let error = assertThrows(SnapshotError.self, containing: ["KVM_CAP_NESTED_STATE = 0"]) {
            try Machine(restoring: snapshot, kvm: kvm)
        }
        XCTAssertEqual(error?.kind, .wrongHost)
    }

    func testAnXSAVEAreaLargerThanTheHostsIsRefused() throws {
        var snapshot = try Snapshot(contentsOf: path)
        snapshot.vcpus[0].xsave.bytes += [UInt8](repeating: 0, count: 64 << 10)
        assertThrows(SnapshotError.self, containing: ["XSAVE", "KVM_CAP_XSAVE2"]) {
            try Machine(restoring: snapshot, kvm: kvm)
        }
    }

    func testAnUnknownDeviceKindIsRefusedAtRestore() throws {
        var snapshot = try Snapshot(contentsOf: path)
        snapshot.devices.append(Snapshot.DeviceState(kind: "floppy", ports: [0x3F0...0x3F7], bytes: []))
        try snapshot.write(to: path)
        let read = try Snapshot(contentsOf: path)
        assertThrows(SnapshotError.self, containing: ["floppy"]) { try Machine(restoring: read, kvm: kvm) }
    }
}
