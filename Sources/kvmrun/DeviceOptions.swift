import KVMCore

/// What `-device` may ask for, QEMU's spelling: the devices kvmrun has.
///
/// - `isa-debug-exit[,iobase=0xf4][,iosize=N]`: always present at 0xf4; the
///   option only checks that the spec describes it.
/// - `pc-testdev`: QEMU's ISA test device (ports 0xe0-0xeb, IRQ ports
///   0x2000-0x2017, 64 KiB of MMIO at 0xff000000), attached only when asked
///   for, as in QEMU.
/// - `pci-testdev`: QEMU's PCI test device (1b36:0005) in slot 2 of bus 0.
///
/// The test devices need the PC machine kvmrun builds for multiboot kernels
/// (`-kernel`, in-kernel irqchip, PCI host bridge): for a flat or ELF guest
/// they are refused with one line rather than half there.
enum DeviceSpec: Equatable {
    case isaDebugExit
    case pcTestdev
    case pciTestdev

    init(parsing spec: String) throws {
        let parts = spec.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "isa-debug-exit":
            try DeviceSpec.checkDebugExit(spec, options: parts.dropFirst())
            self = .isaDebugExit
        case "pc-testdev", "pci-testdev":
            if let option = parts.dropFirst().first {
                throw CLIError(.usage, "-device \(spec): \(parts[0]) takes no properties (\(option))")
            }
            self = parts[0] == "pc-testdev" ? .pcTestdev : .pciTestdev
        default:
            throw CLIError(.usage, "-device \(spec): kvmrun has isa-debug-exit, pc-testdev and pci-testdev")
        }
    }

    var isTestDevice: Bool { self != .isaDebugExit }

    private static func checkDebugExit(_ spec: String, options: ArraySlice<String>) throws {
        for option in options {
            let kv = option.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let value = Parse.address(kv[1]) else {
                throw CLIError(.usage, "-device \(spec): cannot read \(option)")
            }
            switch kv[0] {
            case "iobase" where value != 0xF4:
                throw CLIError(.usage, "-device \(spec): kvmrun's isa-debug-exit is at iobase=0xf4")
            case "iosize" where value == 0 || value > 4:
                throw CLIError(.usage, "-device \(spec): iosize must be 1 to 4")
            case "iobase", "iosize":
                break
            default:
                throw CLIError(.usage, "-device \(spec): unknown property \(kv[0])")
            }
        }
    }
}

extension QEMUOptions {
    /// Refuses a `-device` kvmrun does not have, or a test device given twice
    /// (QEMU refuses the second: its ports are taken).
    func checkDevice(_ spec: String) throws {
        let device = try DeviceSpec(parsing: spec)
        if device.isTestDevice, try devices.filter({ try DeviceSpec(parsing: $0) == device }).count > 1 {
            throw CLIError(.usage, "-device \(spec): given twice")
        }
    }

    /// The `-device` test devices asked for, in order.
    func testDevices() throws -> [DeviceSpec] {
        try devices.map(DeviceSpec.init(parsing:)).filter(\.isTestDevice)
    }

    /// Attaches the test devices asked for to a multiboot kernel's PC machine
    /// (`Machine.bootMultiboot`, which has the PCI host bridge).
    func attachDevices(to machine: Machine) throws {
        for device in try testDevices() {
            do {
                switch device {
                case .pcTestdev: try machine.attachPCTestDevice()
                case .pciTestdev: try machine.attachPCITestDevice()
                case .isaDebugExit: break
                }
            } catch let error as ConfigurationError {
                throw CLIError(.usage, "-device \(device): \(error)")
            }
        }
    }

    /// The test devices need the PC machine of a multiboot boot: refused for `guest`, a flat or ELF guest.
    func refuseTestDevices(for guest: String) throws {
        if let device = try testDevices().first {
            throw CLIError(
                .usage,
                "-device \(device.name): QEMU's test devices need the PC machine kvmrun builds for multiboot kernels; \(guest) is not one"
            )
        }
    }
}

extension DeviceSpec: CustomStringConvertible {
    var name: String {
        switch self {
        case .isaDebugExit: "isa-debug-exit"
        case .pcTestdev: "pc-testdev"
        case .pciTestdev: "pci-testdev"
        }
    }
    var description: String { name }
}
