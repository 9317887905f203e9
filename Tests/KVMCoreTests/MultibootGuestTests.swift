import Foundation
import Guests
import XCTest

@testable import KVMCore

/// The multiboot test kernels (Guests/src/mb-*.c) run by KVMCore directly: a
/// `Machine` with fw_cfg, CMOS and the PC ports attached, the kernel loaded by
/// `Multiboot.load`. What they print was taken from QEMU 7.2 (`-M pc -accel kvm`,
/// SeaBIOS or qboot; see QEMUOracleTests for the live comparison).
final class MultibootGuestTests: XCTestCase {
    /// The kernel path QEMU would put first on the command line.
    static let kernelPath = "/tmp/kernel.elf"

    struct Run {
        let stop: StopReason
        let machine: Machine
        let boot: MultibootBoot
        var serial: String { machine.serial.text }

        var exitCode: UInt32? {
            if case .debugExit(let code) = stop { return code }
            return nil
        }

        /// QEMU reserves AMD's HyperTransport range for an AMD vCPU: the lines
        /// the kernel prints for it, by the vendor this machine's vCPU shows.
        func hyperTransport(_ lines: String...) throws -> [String] {
            PCMemoryMap.reservesHyperTransport(try machine.vcpu.cpuid()) ? lines : []
        }
    }

    /// Boots `name` as QEMU's `-kernel /tmp/kernel.elf -append append` would,
    /// on a machine like QEMU's `-M pc` (fw_cfg, CMOS, ports 0x80/0x92).
    func boot(
        _ name: String, append: String = "", modules: [MultibootModule] = [],
        memorySize: UInt64 = 128 << 20, cpus: Int = 1, irqchip: Bool = false,
        timeout: Duration = .seconds(20)
    ) throws -> Run {
        let kvm = try requireKVM()
        let guest = try GuestImage.require(name)
        let machine = try Machine(memorySize: memorySize, vcpus: cpus, irqchip: irqchip, serial: .buffer, kvm: kvm)
        let boot = try machine.bootMultiboot(
            kernel: guest.bytes,
            commandLine: Multiboot.qemuCommandLine(kernelPath: Self.kernelPath, append: append),
            modules: modules)
        let stop = try machine.run(timeout: timeout)
        return Run(stop: stop, machine: machine, boot: boot)
    }

    func testHello() throws {
        let run = try boot("mb-hello")
        XCTAssertEqual(run.serial, "Hello from multiboot\n")
        XCTAssertEqual(run.exitCode, 0, describe(run.stop))
    }

    /// mb-exit has the header's address fields: loaded at 0x200000, entered
    /// after the 32-byte header, exit code from the command line.
    func testExitCodeFromCommandLine() throws {
        let run = try boot("mb-exit", append: "exit=0x2a")
        XCTAssertEqual(run.serial, "mb-exit magic=0x2badb002 entry=0x00200020 code=0x2a\n")
        XCTAssertEqual(run.exitCode, 0x2A, describe(run.stop))
        XCTAssertEqual(DebugExit.exitStatus(for: 0x2A), 0x55)
        XCTAssertTrue(run.boot.header.hasAddressFields)
        XCTAssertEqual(run.boot.kernelAddress, 0x20_0000)

        let byDefault = try boot("mb-exit")
        XCTAssertEqual(byDefault.serial, "mb-exit magic=0x2badb002 entry=0x00200020 code=0x21\n")
        XCTAssertEqual(byDefault.exitCode, 0x21)
    }

    /// QEMU 7.2 with SeaBIOS, `-m 128 -append "exit=5 foo" -initrd "m0 arg1 arg2,m1"`
    /// with the kernel at obj/mb-info/mb-info.elf printed this (kernel path
    /// aside, which moves the later strings) on an Intel vCPU; an AMD vCPU's
    /// map has the HyperTransport range too (QEMUOracleTests checks both live).
    func testInfoMatchesQEMU() throws {
        let m0 = Array("hello module zero\n".utf8)
        let m1 = Array("second,module".utf8)
        let run = try boot(
            "mb-info", append: "exit=5 foo",
            modules: [
                MultibootModule(bytes: m0, string: "m0 arg1 arg2"),
                MultibootModule(bytes: m1, string: "m1"),
            ])
        XCTAssertEqual(run.exitCode, 5, "\(describe(run.stop)): \(run.serial)")
        let base = run.boot.kernelAddress
        XCTAssertEqual(base, 0x10_0000)
        let list = base + Multiboot.pageAlign(run.boot.kernelSize)
        let kernelCmdline = list + 0x20 + 13 + 3
        let loader =
            list + 0x20
            + UInt64(Self.kernelPath.utf8.count + 1 + "exit=5 foo".utf8.count + 1 + "m0 arg1 arg2,m1".utf8.count + 1)
        let expected = """
            multiboot magic=0x2badb002 info=0x00009500 flags=0x0000024f
            memory mem_lower=639 mem_upper=129920
            boot device=0x8000ffff
            cmdline addr=\(hex8(kernelCmdline)) string="\(Self.kernelPath) exit=5 foo"
            loader addr=\(hex8(loader)) name="qemu"
            modules count=2 addr=\(hex8(list))
            module 0: start=\(hex8(list + 0x1000)) end=\(hex8(list + 0x1012)) size=18 fnv1a=0xfbf57215 string_addr=\(hex8(list + 0x20)) string="m0 arg1 arg2" head="hello module zero\\x0a"
            module 1: start=\(hex8(list + 0x2000)) end=\(hex8(list + 0x200d)) size=13 fnv1a=0x549978ef string_addr=\(hex8(list + 0x2d)) string="m1" head="second,module"
            mmap addr=0x00009000 length=\(try run.hyperTransport("").isEmpty ? 168 : 192)
            mmap 0: base=0x0000000000000000 length=0x000000000009fc00 type=1 size=20
            mmap 1: base=0x000000000009fc00 length=0x0000000000000400 type=2 size=20
            mmap 2: base=0x00000000000f0000 length=0x0000000000010000 type=2 size=20
            mmap 3: base=0x0000000000100000 length=0x0000000007ee0000 type=1 size=20
            mmap 4: base=0x0000000007fe0000 length=0x0000000000020000 type=2 size=20
            mmap 5: base=0x00000000feffc000 length=0x0000000000004000 type=2 size=20
            mmap 6: base=0x00000000fffc0000 length=0x0000000000040000 type=2 size=20
            \(try run.hyperTransport("mmap 7: base=0x000000fd00000000 length=0x0000000300000000 type=2 size=20\n").joined())mb-info: ok exit=5

            """
        XCTAssertEqual(run.serial, expected)
    }

    /// Above 3.5 GiB QEMU's pc keeps 3 GiB below 4 GiB; SeaBIOS's map then has
    /// RAM above 4 GiB last (QEMU: -m 5000).
    func testInfoMemoryMapAbove4G() throws {
        let size: UInt64 = 5000 << 20
        let low = PCLayout.lowMemoryLimit
        let run = try boot("mb-info", memorySize: size)
        XCTAssertEqual(run.exitCode, 0, "\(describe(run.stop)): \(run.serial)")
        let lines = run.serial.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("memory mem_lower=639 mem_upper=\((low - 0x20000 - 0x100000) >> 10)"), run.serial)
        XCTAssertEqual(
            lines.filter { $0.hasPrefix("mmap ") && $0.contains(": ") },
            [
                "mmap 0: base=0x0000000000000000 length=0x000000000009fc00 type=1 size=20",
                "mmap 1: base=0x000000000009fc00 length=0x0000000000000400 type=2 size=20",
                "mmap 2: base=0x00000000000f0000 length=0x0000000000010000 type=2 size=20",
                "mmap 3: base=0x0000000000100000 length=0x00000000bfee0000 type=1 size=20",
                "mmap 4: base=0x00000000bffe0000 length=0x0000000000020000 type=2 size=20",
                "mmap 5: base=0x00000000feffc000 length=0x0000000000004000 type=2 size=20",
                "mmap 6: base=0x00000000fffc0000 length=0x0000000000040000 type=2 size=20",
                "mmap 7: base=0x0000000100000000 length=0x0000000078800000 type=1 size=20",
            ] + (try run.hyperTransport("mmap 8: base=0x000000fd00000000 length=0x0000000300000000 type=2 size=20")))
    }

    /// What QEMU's fw_cfg holds for a multiboot boot (QEMU 7.2, -m 128, no
    /// -append, no -initrd), less the hashes that depend on the kernel path.
    func testFwCfgDump() throws {
        let run = try boot("mb-fwcfg")
        XCTAssertEqual(run.exitCode, 0, "\(describe(run.stop)): \(run.serial)")
        let lines = run.serial.split(separator: "\n").map(String.init)
        let b = run.boot
        let cmdline = b.commandLineAddress
        XCTAssertEqual(lines.first, "signature=\"QEMU\" id=0x00000003")
        XCTAssertTrue(lines.contains("uuid=00000000000000000000000000000000 ram_size=0x0000000008000000"), run.serial)
        XCTAssertTrue(lines.contains("cpus nb_cpus=1 max_cpus=1 nographic=0 boot_menu=0"), run.serial)
        let size = b.image.segments[0].memorySize
        XCTAssertTrue(
            lines.contains {
                $0.hasPrefix("kernel addr=0x00100000 size=\(hex8(size)) entry=0x0010000c head_fnv1a_pio=")
            }, run.serial)
        XCTAssertTrue(lines.contains("kernel in memory matches KERNEL_DATA head: yes"), run.serial)
        XCTAssertTrue(lines.contains { $0.hasPrefix("initrd addr=0x00009500 size=0x00000058 data_fnv1a=") }, run.serial)
        let list = 0x10_0000 + Multiboot.pageAlign(b.kernelSize)
        XCTAssertEqual(cmdline, list)
        XCTAssertTrue(
            lines.contains(
                "initrd words: 0x0000024f 0x00000000 0x00000000 0x8000ffff \(hex8(cmdline)) 0x00000000 \(hex8(list)) 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000 0x00009000 0x00000000 0x00000000 0x00000000 \(hex8(b.loaderNameAddress)) 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000"
            ), run.serial)
        XCTAssertTrue(
            lines.contains("cmdline addr=0x00000000 size=0x00000000 data=\"\" kernel_cmdline=0x00000000"), run.serial)
        XCTAssertTrue(
            lines.contains(
                "past_end nb_cpus=0100000000000000 unknown_key=0000000000000000 irq0_override=0100000000000000"),
            run.serial)
        XCTAssertTrue(
            lines.contains(
                "dma port=\"QEMU CFG\" read=\"QEMU\" control=0x00000000 past_end=0100000000000000 control=0x00000000"),
            run.serial)
        let e820 =
            ["e820 addr=0x00000000feffc000 length=0x0000000000004000 type=2"]
            + (try run.hyperTransport("e820 addr=0x000000fd00000000 length=0x0000000300000000 type=2"))
            + ["e820 addr=0x0000000000000000 length=0x0000000008000000 type=1"]
        XCTAssertTrue(lines.contains("etc/e820 size=\(e820.count * 20)"), run.serial)
        XCTAssertEqual(lines.filter { $0.hasPrefix("e820 addr=") }, e820, run.serial)
        XCTAssertEqual(lines.last, "mb-fwcfg: done")
        // KERNEL_DATA read by DMA: the kernel, and the list and strings up to the loader name.
        let data = Array(b.image.segments[0].bytes)
        let strings = Array(data[Int(list - 0x10_0000)..<Int(b.loaderNameAddress + 5 - 0x10_0000)])
        XCTAssertTrue(
            lines.contains(
                "kernel data image=\(hex8(b.kernelSize)) image_fnv1a=\(hex8(UInt64(fnv1a(Array(data.prefix(Int(b.kernelSize)))))))"
                    + " strings_fnv1a=\(hex8(UInt64(fnv1a(strings))))"), run.serial)
    }

    /// QEMU 7.2 (-m 5G -smp 3) printed these CMOS bytes.
    func testPCPortsAndCMOS() throws {
        let run = try boot("mb-pcports", memorySize: 5 << 30, cpus: 1)
        XCTAssertEqual(run.exitCode, 0, "\(describe(run.stop)): \(run.serial)")
        let lines = run.serial.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "port92 a20=0x1 read=0x02 port80=0xff")
        XCTAssertTrue(lines.contains("cmos a=0x26 b=0x02 c=0x00 d=0x80"), run.serial)
        XCTAssertTrue(
            lines.contains(
                "cmos bytes 0x10=0x00 0x12=0x00 0x14=0x06 0x15=0x80 0x16=0x02 0x17=0xff 0x18=0xff 0x30=0xff 0x31=0xff 0x34=0x00 0x35=0xbf 0x38=0x30 0x3d=0x12 0x5b=0x00 0x5c=0x80 0x5d=0x00 0x5f=0x00"
            ), run.serial)
        XCTAssertTrue(lines.contains("cmos port70=0xff"), run.serial)
        XCTAssertEqual(lines.last, "rtc valid bcd 24h time, century 20")
    }

    /// The SMP kernel on N vCPUs with the in-kernel irqchip.
    func testSMP() throws {
        for cpus in [1, 2, 4] {
            let run = try boot("mb-smp", cpus: cpus, irqchip: true)
            var expected = "smp nb_cpus=\(cpus) bsp_apic_id=0\n"
            for id in 1..<max(cpus, 1) { expected += "ap apic_id=\(id)\n" }
            expected += "smp cpus_up=\(cpus) ok\n"
            XCTAssertEqual(run.serial, expected, "-smp \(cpus)")
            XCTAssertEqual(run.exitCode, 0, "-smp \(cpus): \(describe(run.stop))")
        }
    }

    func testLAPICTimer() throws {
        let run = try boot("mb-lapic-timer", irqchip: true)
        XCTAssertEqual(
            run.serial,
            """
            lapic timer periodic_ticks=5
            lapic timer one_shot_ticks=1 current_count=0
            mb-lapic-timer: ok

            """)
        XCTAssertEqual(run.exitCode, 0, describe(run.stop))
    }

    /// Needs the PIT's IRQ 0 routed to IOAPIC pin 2, as QEMU's pc routes it
    /// (kvm_pc_setup_irq_routing); KVM's default routing sends GSI 0 to pin 0.
    func testIOAPICPIT() throws {
        let run = try boot("mb-ioapic-pit", irqchip: true)
        XCTAssertEqual(
            run.serial,
            """
            ioapic redirection_entries=24
            pit irq0 pin2_interrupts=5 pin0_interrupts=0 watchdog=quiet
            mb-ioapic-pit: ok

            """)
        XCTAssertEqual(run.exitCode, 0, describe(run.stop))
    }

    private func hex8(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    private func fnv1a(_ bytes: [UInt8]) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for b in bytes {
            h ^= UInt32(b)
            h = h &* 16_777_619
        }
        return h
    }
}
