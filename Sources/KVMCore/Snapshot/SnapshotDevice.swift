/// A port device whose state a snapshot saves and a restore or reset puts back.
/// Every device on a machine's bus must be one, or `Machine.snapshot()` refuses
/// (naming it) rather than drop state the guest may depend on.
public protocol SnapshotDevice: PortDevice {
    /// The device type's name in snapshot files, e.g. "serial16550".
    var snapshotKind: String { get }
    /// The device's state: registers, buffers, pending input.
    func saveSnapshotState() -> [UInt8]
    /// Puts back what `saveSnapshotState()` returned (a `SnapshotError` when the
    /// bytes are not valid for this device). Called after the irqchip is restored.
    func restoreSnapshotState(_ bytes: [UInt8]) throws
    /// Throws what `restoreSnapshotState` would throw, changing nothing: a reset
    /// checks every device before it changes anything. By default, nothing.
    func checkSnapshotState(_ bytes: [UInt8]) throws
}

extension SnapshotDevice {
    /// Nothing to check by default.
    public func checkSnapshotState(_ bytes: [UInt8]) throws {}
}

/// Devices a restore can create when the machine it builds does not have them.
enum SnapshotDevices {
    static let creatable: [String: @Sendable (Snapshot.DeviceState, Machine) throws -> SnapshotDevice] = [
        FwCfg.kind: { state, machine in try FwCfg(restoring: state.bytes, memory: machine.memory) },
        CMOS.kind: { state, machine in
            let cmos = CMOS(lowMemory: 0)
            cmos.interruptLine = machine.irqLine(CMOS.irq)
            try cmos.restoreSnapshotState(state.bytes)
            return cmos
        },
        PCIHost.kind: { state, _ in
            let host = PCIHost()
            for function in PCIHost.qemuPCBus0() { try host.add(function) }
            try host.restoreSnapshotState(state.bytes)
            return host
        },
        PCPorts.kind: { state, _ in
            let ports = PCPorts()
            try ports.restoreSnapshotState(state.bytes)
            return ports
        },
        ACPIPowerManagement.kind: { state, machine in
            let pm = ACPIPowerManagement()
            pm.interruptLine = machine.irqLine(ACPIPowerManagement.sciIRQ)
            try pm.restoreSnapshotState(state.bytes)
            return pm
        },
        I8042.kind: { state, machine in
            let controller = I8042()
            controller.interruptLine = machine.irqLines()
            try controller.restoreSnapshotState(state.bytes)
            return controller
        },
    ]

    /// The kinds `Machine` attaches itself.
    static let builtIn: Set<String> = [Serial16550.kind, HostCall.kind, DebugExit.kind]
}
