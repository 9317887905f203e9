import CKVM
import Glibc

/// QEMU's `-device pci-testdev` (hw/misc/pci-testdev.c, 1b36:0005, class
/// 00ff, no interrupt pin), which kvm-unit-tests use to time and check KVM's
/// fast MMIO and port I/O paths (ioeventfd):
///
/// - BAR0: 4 KiB of memory, BAR1: 256 ports, both decoding the same registers.
/// - A byte written at offset 0 selects a test: 0-2 through BAR0 are
///   mmio-{no-eventfd, wildcard-eventfd, datamatch-eventfd}, through BAR1
///   portio-…; another value deselects. Reads (a byte at a time) give the
///   selected test's header: test (0-5), width (1), offset (u32: 2048+t for
///   mmio, 128+t for portio), data (0xfa to match, 0xce for wildcard), count
///   (u32), then its name; 0 past it or with no test selected.
/// - A write at the test's offset counts, byte by byte (for the matching tests
///   only a byte equal to data), unless KVM takes it first: the eventfd tests
///   register a KVM ioeventfd (KVM_IOEVENTFD) at the BAR's address + offset,
///   1 byte wide (any width for mmio-wildcard where KVM has
///   KVM_CAP_IOEVENTFD_ANY_LENGTH), matching data for datamatch; KVM completes
///   those writes without an exit and the count stays 0, exactly as under QEMU.
///   Moving a BAR or turning decoding off moves or drops the ioeventfd.
public final class PCITestDevice: PortDevice, MMIODevice {
    /// Bytes of the memory BAR (BAR 0).
    public static let memorySize: UInt32 = 4096
    /// Ports of the I/O BAR (BAR 1).
    public static let portCount: UInt32 = 256

    struct Test {
        let number: Int
        let name: String
        let offset: UInt32
        let matchData: Bool
        let data: UInt8
        let eventfd: Bool
        let isMemory: Bool
        /// The ioeventfd's length: 1, or 0 (any) for mmio-wildcard with KVM_CAP_IOEVENTFD_ANY_LENGTH.
        let length: UInt32
    }

    /// The device's configuration space.
    public let function: PCIFunction
    let tests: [Test]
    let vm: VirtualMachine
    /// Unowned: the bus holds the host bridge, which holds this device.
    unowned let bus: IOBus
    /// The selected test, -1 for none.
    public private(set) var current = -1
    /// Each test's count.
    public private(set) var counts = [UInt32](repeating: 0, count: 6)
    private var mappedMemory: UInt64?
    private var mappedPorts: UInt16?
    /// The ioeventfd registered with KVM now: its fd and the KVM_IOEVENTFD request that assigned it.
    private var registered: (fd: Int32, request: kvm_ioeventfd)?

    init(devfn: UInt8, vm: VirtualMachine, bus: IOBus) {
        self.vm = vm
        self.bus = bus
        let anyLength = vm.kvm.check(.ioeventfdAnyLength) > 0
        let kinds = ["no-eventfd", "wildcard-eventfd", "datamatch-eventfd"]
        tests = (0..<6).map { i in
            let isMemory = i < 3
            let match = kinds[i % 3] != "wildcard-eventfd"
            return Test(
                number: i, name: "\(isMemory ? "mmio" : "portio")-\(kinds[i % 3])",
                offset: (isMemory ? 2048 : 128) + UInt32(i), matchData: match, data: match ? 0xFA : 0xCE,
                eventfd: i % 3 != 0, isMemory: isMemory, length: isMemory && !match && anyLength ? 0 : 1)
        }
        function = PCIFunction(
            name: "pci-testdev", devfn: devfn,
            initial: [
                (0x00, 0x0005_1B36), (0x08, 0x00FF_0000), (0x14, 0x0000_0001), (0x2C, 0x1100_1AF4),
            ],
            bars: [
                .init(index: 0, size: PCITestDevice.memorySize, isIO: false),
                .init(index: 1, size: PCITestDevice.portCount, isIO: true),
            ])
        function.mappingsChanged = { [unowned self] in self.updateMappings() }
    }

    deinit {
        unregister()
    }

    /// The selected test's header and name, as QEMU lays out PCITestDevHdr.
    private func header(_ t: Test) -> [UInt8] {
        var b: [UInt8] = [UInt8(t.number), 1, 0, 0]
        for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: t.offset >> (8 * i))) }
        b += [t.data, 0, 0, 0]
        for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: counts[t.number] >> (8 * i))) }
        return b + Array(t.name.utf8) + [0]
    }

    private func readByte(_ offset: UInt32) -> UInt8 {
        guard current >= 0 else { return 0 }
        let h = header(tests[current])
        return Int(offset) + 1 < h.count ? h[Int(offset)] : 0
    }

    private func writeByte(_ offset: UInt32, _ byte: UInt8, memory: Bool) {
        if offset == 0 {
            select(byte < 3 ? (memory ? 0 : 3) + Int(byte) : -1)
            return
        }
        guard current >= 0 else { return }
        let t = tests[current]
        guard offset == t.offset, !t.matchData || byte == t.data else { return }
        counts[current] &+= 1
    }

    private func select(_ test: Int) {
        unregister()
        current = test
        guard test >= 0 else { return }
        counts[test] = 0
        register()
    }

    // MARK: Bus

    /// `PortDevice`: the value a guest `in` of `size` bytes reads at `port`.
    public func read(port: UInt16, size: Int) -> UInt32 {
        guard let base = mappedPorts else { return ~0 }
        var value: UInt32 = 0
        for i in 0..<size {
            let offset = UInt32(port &- base) + UInt32(i)
            value |= UInt32(offset < PCITestDevice.portCount ? readByte(offset) : 0xFF) << (8 * i)
        }
        return value
    }

    /// `PortDevice`: a guest `out` of `value` (`size` bytes) to `port`.
    public func write(port: UInt16, size: Int, value: UInt32) -> DeviceAction {
        guard let base = mappedPorts else { return .proceed }
        for i in 0..<size {
            let offset = UInt32(port &- base) + UInt32(i)
            if offset < PCITestDevice.portCount {
                writeByte(offset, UInt8(truncatingIfNeeded: value >> (8 * i)), memory: false)
            }
        }
        return .proceed
    }

    /// `MMIODevice`: the value a guest read of `size` bytes at `address` gives.
    public func read(address: UInt64, size: Int) -> UInt64 {
        guard let base = mappedMemory else { return 0 }
        var value: UInt64 = 0
        for i in 0..<min(size, 8) {
            let offset = address - base + UInt64(i)
            if offset < UInt64(PCITestDevice.memorySize) { value |= UInt64(readByte(UInt32(offset))) << (8 * i) }
        }
        return value
    }

    /// `MMIODevice`: a guest write of `value` (`size` bytes) to `address`.
    public func write(address: UInt64, size: Int, value: UInt64) -> DeviceAction {
        guard let base = mappedMemory else { return .proceed }
        for i in 0..<min(size, 8) {
            let offset = address - base + UInt64(i)
            if offset < UInt64(PCITestDevice.memorySize) {
                writeByte(UInt32(offset), UInt8(truncatingIfNeeded: value >> (8 * i)), memory: true)
            }
        }
        return .proceed
    }

    // MARK: BARs and ioeventfds

    /// Follows the BARs and the command register: (re)attaches the registers
    /// where they decode now and moves the ioeventfd with them. A BAR over
    /// addresses another device holds is left unmapped.
    func updateMappings() {
        let memory = function.barAddress(0)
        if memory != mappedMemory {
            if let old = mappedMemory {
                bus.detach(self as MMIODevice, range: old..<(old + UInt64(PCITestDevice.memorySize)))
            }
            mappedMemory = nil
            if let memory,
                (try? bus.attach(self as MMIODevice, range: memory..<(memory + UInt64(PCITestDevice.memorySize))))
                    != nil
            {
                mappedMemory = memory
            }
        }
        let ports = function.barAddress(1).map { UInt16($0) }
        if ports != mappedPorts {
            if let old = mappedPorts { bus.detach(self, ports: old...(old + UInt16(PCITestDevice.portCount - 1))) }
            mappedPorts = nil
            if let ports, (try? bus.attach(self, ports: ports...(ports + UInt16(PCITestDevice.portCount - 1)))) != nil {
                mappedPorts = ports
            }
        }
        unregister()
        register()
    }

    private func register() {
        guard current >= 0, tests[current].eventfd else { return }
        let t = tests[current]
        let address: UInt64
        if t.isMemory {
            guard let base = mappedMemory else { return }
            address = base + UInt64(t.offset)
        } else {
            guard let base = mappedPorts else { return }
            address = UInt64(base) + UInt64(t.offset)
        }
        let fd = ckvm_eventfd()
        guard fd >= 0 else { return }
        var request = kvm_ioeventfd()
        request.addr = address
        request.len = t.length
        request.fd = fd
        request.datamatch = UInt64(t.data)
        request.flags = (t.matchData ? CKVM_IOEVENTFD_FLAG_DATAMATCH : 0) | (t.isMemory ? 0 : CKVM_IOEVENTFD_FLAG_PIO)
        do {
            try vm.setIOEventFD(&request)
            registered = (fd, request)
        } catch {
            // No ioeventfds here: the writes come to the device and count.
            close(fd)
        }
    }

    private func unregister() {
        guard var (fd, request) = registered else { return }
        request.flags |= CKVM_IOEVENTFD_FLAG_DEASSIGN
        try? vm.setIOEventFD(&request)
        close(fd)
        registered = nil
    }
}
