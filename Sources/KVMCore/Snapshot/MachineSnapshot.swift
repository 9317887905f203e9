import CKVM
import Glibc
import Synchronization

/// What snapshots and resets remember about a machine.
final class SnapshotTracking {
    /// The image the RAM regions are mapped from (after a restore, or a reset
    /// that remapped them): its stored pages hold data even where no page table does.
    var backing: MemoryImage?
    /// The image the RAM equalled when the dirty logs were last cleared: a reset
    /// to it copies back only the pages logged since.
    var baseline: MemoryImage?
    /// Per vCPU: MSRs KVM refused to have written while the vCPU already held the
    /// saved value, with that value. The guest cannot change them either (KVM is
    /// stricter with the guest's writes than with the host's), so a reset to the
    /// same value skips them.
    var unwritableMSRs: [[UInt32: UInt64]] = []
    /// Per vCPU: its CPUID, read once (KVM refuses another after the first run).
    var cpuids: [CPUID?] = []
    /// KVM_CAP_SYNC_REGS offers what a reset loads through kvm_run; read once.
    var syncRegs: Bool?
}

extension Machine {
    /// The whole machine, now: every vCPU's state (a pending port or MMIO access
    /// is completed first on each, so nothing is lost or repeated), the irqchip,
    /// PIT and kvmclock, every device on the bus, and the non-zero pages of guest
    /// memory (copied into an anonymous memfd; `write(to:)` puts them in a file).
    ///
    /// Call it between runs (never while `run` is in progress on another thread).
    /// Refuses — a `SnapshotError` — when a device on the bus is not a
    /// `SnapshotDevice` or an MMIO device is attached. `notes` travel with the
    /// snapshot for the caller.
    public func snapshot(notes: [String: [UInt8]] = [:]) throws -> Snapshot {
        let devices = try deviceStates()
        let states = try vcpus.map { try $0.saveState() }
        for vcpu in vcpus { vcpu.markIOFinished() }
        var irqchip: Snapshot.IRQChipState?
        var pit: Snapshot.PITState?
        if hasIRQChip {
            irqchip = try vm.irqchipState()
            pit = try vm.pitState()
        }
        let clock = kvm.check(.adjustClock) != 0 ? try vm.clockState() : nil
        let image = try MemoryImage.capture(memory, backing: snapshotTracking.backing)
        if memory.regions.allSatisfy({ $0.flags & UInt32(KVM_MEM_LOG_DIRTY_PAGES) != 0 }) {
            // The RAM equals the new image: a reset to it needs the pages written from now on.
            try clearDirtyLogs()
            snapshotTracking.baseline = image
        }
        return Snapshot(
            configuration: Snapshot.Configuration(
                memorySize: memory.totalSize, vcpuCount: vcpus.count,
                irqchip: hasIRQChip, cpuVendor: HostCPU.cachedVendorString),
            vcpus: states, irqchip: irqchip, pit: pit, clock: clock,
            devices: try devices.map { try $0.state() }, notes: notes, memory: image)
    }

    /// A machine in the state `snapshot` holds, ready to `run` on from where it
    /// was taken. Refused whole (nothing is created) when this host cannot
    /// restore it (`Snapshot.checkHost`) or it has a device this library cannot
    /// recreate. Guest memory maps the snapshot's memory image copy-on-write, so
    /// the time this takes does not grow with the guest's memory: pages are read
    /// when the guest touches them. Restore order as QEMU: irqchip and PIT,
    /// devices, each vCPU (`VCPU.restoreState`: the selftests' order, nested
    /// state last), kvmclock. A vCPU without nested state on a machine without
    /// an irqchip takes two ioctls fewer: its registers, special registers and
    /// events go through kvm_run's sync area after the rest (as `reset(to:)`).
    ///
    /// With `logDirtyPages`, `reset(to:)` this snapshot copies back only the pages
    /// written since.
    public convenience init(
        restoring snapshot: Snapshot, serial sink: OutputSink = .buffer, kvm: KVM? = nil,
        logDirtyPages: Bool = false
    ) throws {
        let kvm = try kvm ?? KVM()
        try snapshot.checkHost(kvm)
        try snapshot.checkDevicesRestorable()
        let config = snapshot.configuration
        let image = snapshot.memory
        try self.init(
            memorySize: config.memorySize, vcpus: config.vcpuCount, irqchip: config.irqchip,
            serial: sink, kvm: kvm, logDirtyPages: logDirtyPages,
            image: (image.fd, image.regions.indices.map { image.fileOffset(ofRegion: $0) }))
        snapshotTracking.backing = image
        snapshotTracking.baseline = image
        if let chip = snapshot.irqchip { try vm.setIRQChipState(chip) }
        if let pit = snapshot.pit { try vm.setPITState(pit) }
        try restoreDevices(snapshot.devices, creating: true)
        let xsaveSize = max(kvm.check(.xsave2), MemoryLayout<kvm_xsave>.size)
        let sync = !config.irqchip && kvm.canSyncRegs
        snapshotTracking.unwritableMSRs = Array(repeating: [:], count: vcpus.count)
        for (i, (vcpu, state)) in zip(vcpus, snapshot.vcpus).enumerated() {
            let state = state.paddingXSAVE(to: xsaveSize)
            if sync && state.nestedState == nil {
                // A fresh vCPU: CPUID first, then as a reset does, less what a fresh
                // vCPU with this CPUID is known to hold.
                try vcpu.setCPUID(state.cpuid)
                var defaults = try FreshVCPU.defaults(for: state.cpuid, reading: vcpu)
                let known = defaults
                try vcpu.resetState(state, unwritable: &defaults.unwritableMSRs, throughSyncRegs: true, skipping: known)
                FreshVCPU.learn(defaults)
                snapshotTracking.unwritableMSRs[i] = defaults.unwritableMSRs
            } else {
                try vcpu.restoreState(state)
            }
        }
        snapshotTracking.cpuids = snapshot.vcpus.map(\.cpuid)
        if let clock = snapshot.clock { try vm.setClockState(clock) }
    }

    // MARK: Devices

    /// Each device on the bus with all its port ranges, in attach order.
    func attachedDevices() throws -> [(device: SnapshotDevice, ports: [ClosedRange<UInt16>])] {
        if let mmio = bus.attachedMMIO.first {
            throw SnapshotError(
                .incompatible,
                "the MMIO device \(type(of: mmio.device)) at \(hex(mmio.range.lowerBound)) cannot be saved: snapshots keep port devices only"
            )
        }
        var out: [(device: SnapshotDevice, ports: [ClosedRange<UInt16>])] = []
        for (device, ports) in bus.attachedPorts {
            if let i = out.firstIndex(where: { $0.device === device }) {
                out[i].ports.append(ports)
                continue
            }
            guard let saved = device as? SnapshotDevice else {
                throw SnapshotError(
                    .incompatible,
                    "the device \(type(of: device)) on ports \(hex(ports.lowerBound))–\(hex(ports.upperBound)) cannot be saved (it is not a SnapshotDevice)"
                )
            }
            out.append((saved, [ports]))
        }
        return out
    }

    private func deviceStates() throws -> [DeviceRecord] {
        try attachedDevices().map { DeviceRecord(device: $0.device, ports: $0.ports) }
    }

    /// Puts each saved device state back into the device of that kind on those
    /// ports; with `creating`, a device the machine lacks is created and attached
    /// (fw_cfg), otherwise the devices must match exactly.
    func restoreDevices(_ states: [Snapshot.DeviceState], creating: Bool) throws {
        let attached = try attachedDevices()
        for state in states {
            if let match = attached.first(where: { $0.device.snapshotKind == state.kind && $0.ports == state.ports }) {
                try match.device.restoreSnapshotState(state.bytes)
            } else if creating, let make = SnapshotDevices.creatable[state.kind] {
                let device = try make(state, self)
                for range in state.ports { try bus.attach(device, ports: range) }
            } else {
                throw SnapshotError(
                    .incompatible,
                    "the machine has no \(state.kind) device on ports \(state.ports.map { "\(hex($0.lowerBound))–\(hex($0.upperBound))" }.joined(separator: ", "))"
                )
            }
        }
    }
}

/// A device and its ports, saved when the snapshot is assembled.
private struct DeviceRecord {
    let device: SnapshotDevice
    let ports: [ClosedRange<UInt16>]
    func state() throws -> Snapshot.DeviceState {
        Snapshot.DeviceState(kind: device.snapshotKind, ports: ports, bytes: device.saveSnapshotState())
    }
}

extension Snapshot {
    /// Every device can be put back: the machine's own (serial, isa-debug-exit,
    /// hostcall) on their usual ports, or a kind a restore creates (fw_cfg).
    func checkDevicesRestorable() throws {
        let standard: [String: [ClosedRange<UInt16>]] = [
            Serial16550.kind: [Serial16550.com1], DebugExit.kind: [DebugExit.ports],
            HostCall.kind: [HostCall.port...HostCall.port],
        ]
        for device in devices {
            if let ports = standard[device.kind] {
                guard ports == device.ports else {
                    throw SnapshotError(
                        .incompatible, "its \(device.kind) is on other ports than this library's machine puts it")
                }
            } else if SnapshotDevices.creatable[device.kind] == nil {
                throw SnapshotError(.incompatible, "has a device of kind \(device.kind) this library cannot recreate")
            }
        }
    }
}

extension VCPUState {
    /// The state with its XSAVE area zero-extended to `size` bytes (KVM_SET_XSAVE
    /// reads as many bytes as the host's area has; missing components stay in
    /// their initial state, as XSTATE_BV says).
    func paddingXSAVE(to size: Int) -> VCPUState {
        guard xsave.bytes.count < size else { return self }
        var copy = self
        copy.xsave.bytes += [UInt8](repeating: 0, count: size - xsave.bytes.count)
        return copy
    }
}

/// What this process learnt about fresh vCPUs on this host.
enum FreshVCPU {
    /// What a vCPU holds right after KVM_CREATE_VCPU and KVM_SET_CPUID2 with a
    /// given CPUID (KVM's reset values: XCR0 = x87, the XSAVE init state, DR6 =
    /// 0xffff0ff0, DR7 = 0x400): a restore need not write state equal to it.
    struct Defaults: Sendable {
        var cpuid: CPUID
        var xcrs: XCRs?
        var xsave: XSAVEState
        var debugRegisters: DebugRegisters
        /// MSRs KVM refused to have written while the fresh vCPU held the value
        /// being written (e.g. MSR_KVM_POLL_CONTROL = 0 where the CPUID lacks
        /// KVM_FEATURE_POLL_CONTROL): a restore skips them, one ioctl instead of three.
        var unwritableMSRs: [UInt32: UInt64] = [:]
    }

    private static let known = Mutex<[Defaults]>([])

    /// The defaults of a fresh vCPU with `cpuid`, read from `vcpu` (which must be
    /// one, its CPUID just set) the first time this CPUID is seen in this process.
    static func defaults(for cpuid: CPUID, reading vcpu: VCPU) throws -> Defaults {
        let found = known.withLock { $0.first { $0.cpuid == cpuid } }
        if let found { return found }
        let kvm = vcpu.vm.kvm
        let read = Defaults(
            cpuid: cpuid, xcrs: kvm.check(.xcrs) != 0 ? try vcpu.xcrs() : nil,
            xsave: try vcpu.xsave(), debugRegisters: try vcpu.debugRegisters())
        learn(read)
        return read
    }

    /// Keeps (or updates) what is known of fresh vCPUs with `defaults.cpuid`.
    static func learn(_ defaults: Defaults) {
        known.withLock { known in
            if let i = known.firstIndex(where: { $0.cpuid == defaults.cpuid }) {
                known[i].unwritableMSRs.merge(defaults.unwritableMSRs) { _, new in new }
            } else if known.count < 16 {
                known.append(defaults)
            }
        }
    }
}

extension KVM {
    /// KVM_CAP_SYNC_REGS offers registers, special registers and events.
    var canSyncRegs: Bool {
        let wanted = Int(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)
        return check(.syncRegs) & wanted == wanted
    }
}
