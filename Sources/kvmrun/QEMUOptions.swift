import ArgumentParser
import KVMCore

/// QEMU's spellings for what kvmrun's machine is anyway, so a command line
/// written for `qemu-system-x86_64 -kernel` runs unchanged. Each is checked:
/// a value that asks for something kvmrun's machine is not is an error, never
/// silently ignored.
struct QEMUOptions: ParsableArguments {
    @Option(
        name: [.customLong("machine", withSingleDash: true), .customShort("M")],
        parsing: .unconditional,
        help: ArgumentHelp("pc, q35 or microvm; accel=kvm (the machine is always a PC on KVM).", valueName: "type"))
    var machine: String?

    @Option(
        name: .customLong("accel", withSingleDash: true), parsing: .unconditional,
        help: ArgumentHelp("kvm.", valueName: "kvm"))
    var accel: String?

    @Flag(name: .customLong("enable-kvm", withSingleDash: true), help: "Always on.")
    var enableKVM = false

    @Flag(
        name: .customLong("nodefaults", withSingleDash: true),
        help: "kvmrun has no default devices beyond COM1, debug-exit and fw_cfg.")
    var nodefaults = false

    @Flag(name: .customLong("no-reboot", withSingleDash: true), help: "A triple fault always ends the run (status 12).")
    var noReboot = false

    @Flag(name: .customLong("nographic", withSingleDash: true), help: "There is no display.")
    var nographic = false

    @Option(
        name: .customLong("display", withSingleDash: true), parsing: .unconditional,
        help: ArgumentHelp("none.", valueName: "none"))
    var display: String?

    @Option(
        name: .customLong("serial", withSingleDash: true), parsing: .unconditional,
        help: ArgumentHelp("stdio (COM1 is always on stdout).", valueName: "stdio"))
    var serial: String?

    @Option(
        name: .customLong("device", withSingleDash: true),
        parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "isa-debug-exit,iobase=0xf4[,iosize=N] (always present at 0xf4), pc-testdev or pci-testdev (QEMU's test devices, for multiboot kernels).",
            valueName: "spec"))
    var devices: [String] = []

    @Option(
        name: .customLong("cpu", withSingleDash: true),
        parsing: .unconditional,
        help: ArgumentHelp(
            "host, max (what KVM supports) or a QEMU model (qemu64, qemu32, kvm64, kvm32, Conroe, Penryn, Nehalem, Westmere), then ,+feat ,-feat ,feat=on|off ,vendor=… ,kvm=off; +vmx/+svm mean --nested.",
            valueName: "model[,…]"))
    var cpu: String?

    func check() throws {
        for part in (machine ?? "").split(separator: ",") {
            let item = String(part)
            if item.hasPrefix("accel=") {
                try checkAccel(String(item.dropFirst(6)), "-machine \(machine!)")
            } else if !["pc", "q35", "microvm", "type=pc", "type=q35", "type=microvm"].contains(item)
                && !item.contains("=")
            {
                throw CLIError(.usage, "-machine \(machine!): kvmrun's machine is a PC (pc, q35 or microvm accepted)")
            }
        }
        if let accel { try checkAccel(accel, "-accel \(accel)") }
        if let display, display != "none" {
            throw CLIError(.usage, "-display \(display): kvmrun has no display (use none)")
        }
        if let serial, serial != "stdio" && serial != "mon:stdio" {
            throw CLIError(.usage, "-serial \(serial): COM1 always goes to stdout (use stdio)")
        }
        for device in devices { try checkDevice(device) }
        _ = try cpuModel()
    }

    /// `-cpu`, parsed (nil without one); a value kvmrun cannot read is a usage error.
    func cpuModel() throws -> CPUModel? {
        guard let cpu else { return nil }
        do {
            return try CPUModel(parsing: cpu)
        } catch {
            throw CLIError(.usage, "-cpu \(cpu): \(error)")
        }
    }

    private func checkAccel(_ value: String, _ flag: String) throws {
        guard value.split(separator: ":").contains("kvm") else {
            throw CLIError(.usage, "\(flag): kvmrun runs on KVM only")
        }
    }
}
