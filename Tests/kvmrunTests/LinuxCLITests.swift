import Foundation
import KVMCore
import TestFixtures
import XCTest

/// `kvmrun -kernel bzImage [-initrd F] [-append A]`: a synthetic kernel boots
/// and sees its command line and initrd; every bad input is one stderr line
/// and its own exit status, before any guest code runs (the synthetic kernel
/// would print on stdout).
final class LinuxCLITests: XCTestCase {
    func testSyntheticKernelBootsWithCommandLineAndInitrd() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let kernel = try dir.file("bzImage", SyntheticBzImage.small.bytes)
        let initrd = try dir.file("initrd", Array("ramdisk!".utf8))
        let result = try kvmrun(["-m", "32", "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 -x"])
        XCTAssertFalse(result.signaled, result.stderr)
        XCTAssertEqual(result.status, 0x21, "(0x10 << 1) | 1: ESI was 0x10000; stderr: \(result.stderr)")
        XCTAssertEqual(result.stdout, "console=ttyS0 -x|ramdisk!\n")
        assertNoCrashText(result)
    }

    func testSyntheticKernelWithoutAppendOrInitrd() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        let result = try kvmrun(["-m", "32", "-kernel", try dir.file("bzImage", SyntheticBzImage.small.bytes)])
        XCTAssertEqual(result.status, 0x21, result.stderr)
        XCTAssertEqual(result.stdout, "|\n")
    }

    // MARK: Bad kernels

    func testTruncatedBzImage() throws {
        let dir = try ScratchDirectory()
        var image = SyntheticBzImage.small
        image.sysSize = UInt32(image.payload.count / 16) + 1
        let kernel = try dir.file("bzImage", image.bytes)
        let result = try kvmrun(["-kernel", kernel])
        assertOneLineError(
            result, status: 6, mentioning: [kernel, "truncated", "\(5 * 512 + 4096 + 16)", "\(5 * 512 + 4096)"])
        XCTAssertEqual(result.stdout, "")
        // Cut inside the setup header.
        let short = try dir.file("short", Array(SyntheticBzImage.small.bytes.prefix(0x230)))
        assertOneLineError(try kvmrun(["-kernel", short]), status: 6, mentioning: [short, "truncated"])
    }

    /// Without "HdrS" the file is not Linux; nor multiboot: kvmrun runs it as
    /// a flat binary (real mode at 0x10000), as it runs any other file. This
    /// one starts with cli; hlt, so it ends with status 0.
    func testWrongMagicIsAFlatBinary() throws {
        try requireKVM()
        let dir = try ScratchDirectory()
        var image = SyntheticBzImage.small
        image.magic = 0x5372_6447
        image.bootSector = [0xFA, 0xF4] // cli; hlt
        let kernel = try dir.file("notLinux", image.bytes)
        let result = try kvmrun(["-kernel", kernel, "--timeout", "10s"])
        XCTAssertFalse(result.signaled, result.stderr)
        XCTAssertEqual(result.status, 0, "halted with interrupts off; stderr: \(result.stderr)")
        XCTAssertEqual(result.stdout, "", "the Linux entry code did not run")
        // -append or -initrd with it: a usage error naming both kinds of kernel.
        assertOneLineError(
            try kvmrun(["-kernel", kernel, "-append", "quiet"]), status: 2,
            mentioning: [kernel, "Linux", "multiboot", "neither"])
    }

    func testProtocolTooOld() throws {
        let dir = try ScratchDirectory()
        var image = SyntheticBzImage.small
        image.version = 0x0205
        let kernel = try dir.file("bzImage", image.bytes)
        let result = try kvmrun(["-kernel", kernel])
        assertOneLineError(result, status: 6, mentioning: [kernel, "2.05", "too old"])
        XCTAssertEqual(result.stdout, "")
    }

    func testZImage() throws {
        let dir = try ScratchDirectory()
        var image = SyntheticBzImage.small
        image.loadFlags = 0
        let kernel = try dir.file("zImage", image.bytes)
        assertOneLineError(try kvmrun(["-kernel", kernel]), status: 6, mentioning: [kernel, "zImage"])
    }

    /// init_size (64 MiB from 2 MiB) past the RAM -m gives.
    func testKernelTooBigForMemory() throws {
        let dir = try ScratchDirectory()
        var image = SyntheticBzImage.small
        image.initSize = 0x400_0000
        let kernel = try dir.file("bzImage", image.bytes)
        let result = try kvmrun(["-m", "32", "-kernel", kernel])
        assertOneLineError(result, status: 6, mentioning: [kernel, "0x4200000", "give more memory with -m"])
        XCTAssertEqual(result.stdout, "")
        // With enough memory it runs.
        if (try? KVM()) != nil {
            XCTAssertEqual(try kvmrun(["-m", "80", "-kernel", kernel]).status, 0x21)
        }
    }

    /// A bzImage file larger than guest RAM is refused before it is read.
    func testKernelFileLargerThanMemory() throws {
        let dir = try ScratchDirectory()
        let kernel = try dir.file("bzImage", SyntheticBzImage.small.bytes + [UInt8](repeating: 0, count: 2 << 20))
        assertOneLineError(
            try kvmrun(["-m", "2", "-kernel", kernel]), status: 6,
            mentioning: [kernel, "larger than guest memory"])
    }

    /// pref_address is a u64 from the file; one near 2^64 must be an error
    /// (status 6), not an arithmetic trap in LinuxBoot.init. FAILS TODAY:
    /// kvmrun dies of SIGILL (LinuxBoot.swift's `runAddress + kernel.initSize`
    /// and `(kernelEnd + 0xFFFFF) >> 20` overflow). The Swift backtracer is off
    /// for these runs: it would hold each crash up for half a minute.
    func testPreferredAddressAtTheTopOfTheAddressSpace() throws {
        let dir = try ScratchDirectory()
        let executable = try KVMRunLocator.executable()
        for (name, relocatable, initSize, pref): (String, UInt8, UInt32, UInt64) in [
            ("relocatable", 1, 0x40_0000, 0xFFFF_FFFF_FFE0_0000),
            ("fixed", 0, 0x40_0000, 0xFFFF_FFFF_FFE0_0000),
            ("no-init-size", 0, 0, 0xFFFF_FFFF_FFFF_F000),
        ] {
            var image = SyntheticBzImage.small
            image.relocatable = relocatable
            image.initSize = initSize
            image.preferredAddress = pref
            let kernel = try dir.file(name, image.bytes)
            let (result, killed) = try runProcess(
                executable.path, ["-kernel", kernel], timeout: 60,
                environment: ["SWIFT_BACKTRACE": "enable=no"])
            XCTAssertFalse(killed, name)
            XCTAssertFalse(
                result.signaled,
                "\(name): kvmrun died of signal \(result.status) (an arithmetic trap in LinuxBoot.init)")
            assertOneLineError(result, status: 6, mentioning: [kernel, "kernel"])
        }
    }

    // MARK: Bad initrd and command line

    func testMissingInitrd() throws {
        let dir = try ScratchDirectory()
        let kernel = try dir.file("bzImage", SyntheticBzImage.small.bytes)
        let missing = dir.path + "/no-such-initrd"
        let result = try kvmrun(["-kernel", kernel, "-initrd", missing])
        assertOneLineError(result, status: 4, mentioning: ["-initrd", missing, "ENOENT"])
        XCTAssertEqual(result.stdout, "")
        assertOneLineError(
            try kvmrun(["-kernel", kernel, "-initrd", dir.path]), status: 4,
            mentioning: ["-initrd", dir.path, "EISDIR"])
    }

    /// An initrd larger than guest RAM (refused before reading), and one
    /// smaller that does not fit between the kernel and the top of RAM.
    func testInitrdTooBig() throws {
        let dir = try ScratchDirectory()
        let kernel = try dir.file("bzImage", SyntheticBzImage.small.bytes) // RAM to 3 MiB
        let huge = try dir.file("huge", [UInt8](repeating: 0x5A, count: (16 << 20) + 1))
        let result = try kvmrun(["-m", "16", "-kernel", kernel, "-initrd", huge])
        assertOneLineError(result, status: 6, mentioning: ["-initrd", huge, "larger than guest memory"])
        XCTAssertEqual(result.stdout, "")

        // 15 MiB: under -m 16, but the kernel ends at 3 MiB and SeaBIOS keeps the top 128 KiB.
        let large = try dir.file("large", [UInt8](repeating: 0x5A, count: 15 << 20))
        let tooLarge = try kvmrun(["-m", "16", "-kernel", kernel, "-initrd", large])
        assertOneLineError(tooLarge, status: 6, mentioning: [kernel, "initrd", "15360 KiB", "does not fit", "-m"])
        XCTAssertEqual(tooLarge.stdout, "")
    }

    func testCommandLineTooLong() throws {
        let dir = try ScratchDirectory()
        let kernel = try dir.file("bzImage", SyntheticBzImage.small.bytes)
        let result = try kvmrun(["-kernel", kernel, "-append", String(repeating: "a", count: 2048)])
        assertOneLineError(result, status: 6, mentioning: [kernel, "command line", "2048 bytes", "at most 2047"])
        XCTAssertEqual(result.stdout, "")
        if (try? KVM()) != nil {
            let fits = try kvmrun(["-kernel", kernel, "-append", String(repeating: "a", count: 2047)])
            XCTAssertEqual(fits.status, 0x21, fits.stderr)
            XCTAssertEqual(fits.stdout, String(repeating: "a", count: 2047) + "|\n")
        }
    }

    // MARK: The real kernel

    /// A Debian kernel someone's build cached: the package's (or, from a git
    /// worktree, its main checkout's) .build-linux/kernel or .build-lab, or
    /// $KVMRUN_LINUX_KERNEL.
    static func cachedKernel() -> String? {
        if let path = ProcessInfo.processInfo.environment["KVMRUN_LINUX_KERNEL"], !path.isEmpty { return path }
        let fm = FileManager.default
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        var roots = [packageRoot]
        // A worktree's .git is a file: "gitdir: MAIN/.git/worktrees/NAME".
        if let text = try? String(contentsOfFile: packageRoot + "/.git", encoding: .utf8),
            let range = text.range(of: "/.git/worktrees/")
        {
            roots.append(String(text[..<range.lowerBound]).replacingOccurrences(of: "gitdir: ", with: ""))
        }
        for root in roots {
            var folders = [root + "/.build-linux/kernel"]
            for lab in ["nested-lab", "vmx-lab", "vmx-lab/linux"] {
                let base = root + "/.build-lab/" + lab
                for name in ((try? fm.contentsOfDirectory(atPath: base)) ?? []).sorted() where name.hasPrefix("kernel-")
                {
                    folders.append(base + "/" + name + "/boot")
                }
            }
            for folder in folders {
                for name in ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted()
                where name.hasPrefix("vmlinuz-") {
                    return folder + "/" + name
                }
            }
        }
        return nil
    }

    /// Debian's stock kernel from Tools/linux-guest/get-kernel (apt-get download, cached); nil where it fails.
    static func fetchedKernel() throws -> String? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let r = try QEMUOracleTests.run(root + "/Tools/linux-guest/get-kernel", [], timeout: 600)
        guard r.status == 0, let path = r.stdout.split(separator: "\n").last else { return nil }
        return String(path)
    }

    /// Debian's 6.1 kernel needs init_size (~64 MiB) from 16 MiB: -m 16 cannot hold it.
    func testRealKernelInTooLittleMemory() throws {
        guard let kernel = try Self.cachedKernel() ?? Self.fetchedKernel() else {
            throw XCTSkip(
                "no cached Debian kernel (.build-linux/kernel/vmlinuz-* or .build-lab/*/kernel-*/boot/vmlinuz-*) and Tools/linux-guest/get-kernel could not fetch one; or set KVMRUN_LINUX_KERNEL"
            )
        }
        let result = try kvmrun(["-m", "16", "-kernel", kernel, "-append", "console=ttyS0"])
        assertOneLineError(
            result, status: 6, mentioning: [kernel, "kernel needs RAM up to", "give more memory with -m"])
        XCTAssertEqual(result.stdout, "")
        // Its header, as LinuxImage reads it.
        let image = try LinuxImage(try Files.read(kernel))
        XCTAssertGreaterThanOrEqual(image.version, 0x020C)
        XCTAssertTrue(image.has64BitEntry)
        XCTAssertTrue(image.relocatable)
        XCTAssertGreaterThan(image.initSize, 16 << 20)
    }
}
