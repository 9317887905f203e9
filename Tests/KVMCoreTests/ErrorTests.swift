import Foundation
import KVMCore
import XCTest

/// Errno names and the one-line error formats tools print.
final class ErrorTests: XCTestCase {
    func testErrnoNames() {
        XCTAssertEqual(Errno.EINVAL.name, "EINVAL")
        XCTAssertEqual(Errno.ENOENT.name, "ENOENT")
        XCTAssertEqual(Errno.EACCES.name, "EACCES")
        XCTAssertEqual(Errno.E2BIG.name, "E2BIG")
        XCTAssertEqual(Errno(rawValue: EISDIR).name, "EISDIR")
        XCTAssertEqual(Errno(rawValue: 4242).name, "errno 4242")
        XCTAssertEqual(Errno(rawValue: -1).name, "errno -1")
        XCTAssertEqual(Errno.EINVAL.description, "EINVAL")
        XCTAssertEqual(Errno.EINVAL.message, String(cString: strerror(EINVAL)))
        XCTAssertEqual(Errno.EINVAL, Errno(rawValue: EINVAL))
        XCTAssertNotEqual(Errno.EINVAL, Errno.ENOENT)
    }

    func testKVMErrorDescription() {
        XCTAssertEqual(KVMError("KVM_X", errno: .EINVAL, hint: "hint").description, "KVM_X: EINVAL — hint")
        XCTAssertEqual(
            KVMError("KVM_SET_REGS", errno: .EFAULT).description,
            "KVM_SET_REGS: EFAULT (\(String(cString: strerror(EFAULT))))")
        let error = KVMError("KVM_RUN", errno: .EINTR, hint: "kicked")
        XCTAssertEqual(error.operation, "KVM_RUN")
        XCTAssertEqual(error.errno, .EINTR)
        XCTAssertEqual(error.hint, "kicked")
        XCTAssertFalse(error.description.contains("\n"), "one line")
    }

    func testOtherErrorDescriptions() {
        XCTAssertEqual(ConfigurationError.memoryLayout("bad size").description, "bad size")
        XCTAssertEqual(
            ConfigurationError.outsideGuestRAM(address: 0x2_0000, count: 4).description,
            "guest-physical 0x20000+4 is outside guest RAM")
        XCTAssertEqual(
            ConfigurationError.outsideSnapshotRAM(address: 0x10, count: 2).description,
            "guest-physical 0x10+2 is outside the snapshot's RAM")
        XCTAssertEqual(GuestImageError.malformed("bad image").description, "bad image")
        XCTAssertNotEqual(GuestImageError.malformed("x"), GuestImageError.truncated("x"))
    }

    /// Callers can match what went wrong, not only read it.
    func testErrorCasesCanBeMatched() {
        XCTAssertThrowsError(try ELFImage.parse([])) { error in
            guard case GuestImageError.unsupportedFormat(let message)? = error as? GuestImageError else {
                return XCTFail("\(error) is not GuestImageError.unsupportedFormat")
            }
            XCTAssertEqual(message, "not an ELF file (bad magic)")
        }
        XCTAssertThrowsError(try LinuxImage([UInt8](repeating: 0, count: 0x100))) { error in
            guard case GuestImageError.truncated? = error as? GuestImageError else {
                return XCTFail("\(error) is not GuestImageError.truncated")
            }
        }
        XCTAssertThrowsError(try NestedState.withBuffer(capacity: 0) { _ in }) { error in
            XCTAssertEqual(error as? NestedStateError, .invalidCapacity(0))
        }
    }

    /// Opening a missing device names the path, the errno and the likely cause.
    func testOpeningAMissingDevice() {
        let path = "/nonexistent-\(getpid())/kvm"
        let error = assertThrows(KVMError.self, containing: ["open \(path)", "ENOENT", "kvm module"]) {
            try KVM(path: path)
        }
        XCTAssertEqual(error?.errno, .ENOENT)
        XCTAssertEqual(error?.operation, "open \(path)")
    }

    /// A file that is not a KVM device: the API-version ioctl fails with ENOTTY.
    func testOpeningSomethingThatIsNotKVM() {
        let error = assertThrows(KVMError.self, containing: ["KVM_GET_API_VERSION"]) { try KVM(path: "/dev/null") }
        XCTAssertEqual(error?.errno, .ENOTTY)
    }

    func testFileErrors() throws {
        let dir = NSTemporaryDirectory() + "kvmcore-files-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        assertThrows(FileError.self, containing: ["cannot open", "\(dir)/missing", "ENOENT"]) {
            try Files.read("\(dir)/missing")
        }
        assertThrows(FileError.self, containing: ["EISDIR"]) { try Files.read(dir) }
        try Files.writeAtomically([1, 2, 3], to: "\(dir)/f")
        XCTAssertEqual(try Files.read("\(dir)/f"), [1, 2, 3])
        let tooLarge = assertThrows(FileTooLarge.self, containing: ["3 bytes", "2 bytes"]) {
            try Files.read("\(dir)/f", limit: 2)
        }
        XCTAssertEqual(tooLarge?.size, 3)
        XCTAssertEqual(try Files.read("\(dir)/f", limit: 3), [1, 2, 3])
        try Files.writeAtomically([], to: "\(dir)/f")
        XCTAssertEqual(try Files.read("\(dir)/f"), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["f"], "no temporary files left")
    }

    /// A writer killed mid-write leaves PATH.tmp-PID: the next write of PATH
    /// removes it when that process is gone, and leaves a live writer's alone.
    func testAbandonedTemporaryFilesAreRemoved() throws {
        let dir = NSTemporaryDirectory() + "kvmcore-temporaries-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let live = Process()
        live.executableURL = URL(fileURLWithPath: "/bin/sleep")
        live.arguments = ["30"]
        try live.run()
        defer {
            live.terminate()
            live.waitUntilExit()
        }
        for name in [
            "f.tmp-\(gone.processIdentifier)", "f.tmp-\(live.processIdentifier)", "g.tmp-\(gone.processIdentifier)",
            "f.tmp-x",
        ] {
            FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: Data([0]))
        }
        try Files.writeAtomically([7], to: "\(dir)/f")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir).sorted(),
            ["f", "f.tmp-\(live.processIdentifier)", "f.tmp-x", "g.tmp-\(gone.processIdentifier)"])
    }
}
