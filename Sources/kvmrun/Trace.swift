import KVMCore

/// `--trace`: one line per exit on stderr.
func traceExit(_ vcpu: VCPU, _ exit: VMExit) {
    var line = "[vcpu\(vcpu.id)] \(exit.name)"
    switch exit {
    case .io(let io):
        line += " \(io.direction == .out ? "out" : "in") port=\(hex(io.port)) size=\(io.size)"
        if io.count > 1 { line += " count=\(io.count)" }
        if io.direction == .out { line += " value=\(hex(io.value))" }
    case .mmio(let access):
        line += " \(access.isWrite ? "write" : "read") addr=\(hex(access.address)) size=\(access.size)"
        if access.isWrite { line += " value=\(hex(access.value))" }
    case .failEntry(let reason, _):
        line += " reason=\(hex(reason))"
    case .internalError(let error):
        line += " \(error)"
    default:
        break
    }
    eprint(line)
}

/// `--stats`: exits by reason and the guest/VMM time split.
func printStatistics(_ machine: Machine) {
    let s = machine.vcpu.statistics
    var lines = ["exits: \(s.totalExits)"]
    for (name, count) in s.exitsByReason { lines.append("  \(pad(name, 16)) \(count)") }
    let guest = Double(s.guestNanoseconds) / 1e6
    let vmm = Double(s.vmmNanoseconds) / 1e6
    let share = guest + vmm > 0 ? Int((guest / (guest + vmm) * 100).rounded()) : 0
    lines.append("time: guest \(format(guest)) ms, vmm \(format(vmm)) ms (\(share)% in guest)")
    lines.append(
        "unassigned: \(machine.bus.unassignedPortAccesses) port, \(machine.bus.unassignedMMIOAccesses) MMIO accesses")
    eprint(lines.joined(separator: "\n"))
}

private func format(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}
