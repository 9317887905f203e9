import CKVM

/// A whole machine at one instant: its configuration, guest memory, every
/// vCPU's state, the in-kernel irqchip, PIT and kvmclock, and the devices'
/// state. Take one with `Machine.snapshot()`, write it with `write(to:)`, read
/// it with `Snapshot(contentsOf:)`, and continue it in a fresh machine with
/// `Machine(restoring:)` or in a running one with `Machine.reset(to:)`.
///
/// Guest memory is not held in this process's heap: it is a sparse image in a
/// file (the snapshot file, or an anonymous memfd for a snapshot not yet
/// written) that restores map copy-on-write. Pages that were never written (all
/// zeros) are not stored. Docs/snapshot-format.md describes the file.
public struct Snapshot {
    /// The format version this library writes and reads.
    public static let formatVersion: UInt32 = 1

    /// What the machine was built as; a restore builds the same.
    public struct Configuration: Equatable, Sendable {
        /// Guest RAM in bytes.
        public var memorySize: UInt64
        /// vCPUs.
        public var vcpuCount: Int
        /// Whether the machine has the in-kernel irqchip.
        public var irqchip: Bool
        /// CPUID vendor of the host the snapshot was taken on ("GenuineIntel", "AuthenticAMD").
        public var cpuVendor: String

        /// A configuration from its parts.
        public init(memorySize: UInt64, vcpuCount: Int, irqchip: Bool, cpuVendor: String) {
            self.memorySize = memorySize
            self.vcpuCount = vcpuCount
            self.irqchip = irqchip
            self.cpuVendor = cpuVendor
        }
    }

    /// The in-kernel interrupt controllers (KVM_GET_IRQCHIP): each the 512-byte
    /// `chip` union of `struct kvm_irqchip` (PIC: `kvm_pic_state`, IOAPIC:
    /// `kvm_ioapic_state`).
    public struct IRQChipState: Equatable, Sendable {
        /// The master PIC (`kvm_pic_state`).
        public var picMaster: [UInt8]
        /// The slave PIC (`kvm_pic_state`).
        public var picSlave: [UInt8]
        /// The IOAPIC (`kvm_ioapic_state`).
        public var ioapic: [UInt8]
    }

    /// The in-kernel i8254 (KVM_GET_PIT2: `struct kvm_pit_state2`, 112 bytes).
    public struct PITState: Equatable, Sendable {
        /// `struct kvm_pit_state2`.
        public var bytes: [UInt8]
    }

    /// kvmclock (KVM_GET_CLOCK): the guest's clock in nanoseconds, restored as is
    /// (the guest does not see the time the snapshot spent on disk), as QEMU does.
    public struct ClockState: Equatable, Sendable {
        /// The guest clock in nanoseconds.
        public var clock: UInt64
        /// KVM_GET_CLOCK's flags.
        public var flags: UInt32
    }

    /// One device's state: its kind (`SnapshotDevice.snapshotKind`), the ports it
    /// was attached to, and what `saveSnapshotState()` returned.
    public struct DeviceState: Equatable, Sendable {
        /// `SnapshotDevice.snapshotKind`.
        public var kind: String
        /// The port ranges the device was attached to.
        public var ports: [ClosedRange<UInt16>]
        /// What `saveSnapshotState()` returned.
        public var bytes: [UInt8]

        /// A device state from its parts.
        public init(kind: String, ports: [ClosedRange<UInt16>], bytes: [UInt8]) {
            self.kind = kind
            self.ports = ports
            self.bytes = bytes
        }
    }

    /// What the machine was built as.
    public var configuration: Configuration
    /// vCPU i's state at index i.
    public var vcpus: [VCPUState]
    /// With `configuration.irqchip`.
    public var irqchip: IRQChipState?
    /// With `configuration.irqchip`: the in-kernel PIT.
    public var pit: PITState?
    /// kvmclock, where the host has KVM_GET_CLOCK.
    public var clock: ClockState?
    /// Every device on the machine's I/O bus, in attach order.
    public var devices: [DeviceState]
    /// The embedder's own data, kept with the snapshot (e.g. a test's record of
    /// the run so far); KVMCore neither reads nor restores it.
    public var notes: [String: [UInt8]]
    /// The guest memory image.
    let memory: MemoryImage

    init(
        configuration: Configuration, vcpus: [VCPUState], irqchip: IRQChipState?, pit: PITState?,
        clock: ClockState?, devices: [DeviceState], notes: [String: [UInt8]], memory: MemoryImage
    ) {
        self.configuration = configuration
        self.vcpus = vcpus
        self.irqchip = irqchip
        self.pit = pit
        self.clock = clock
        self.devices = devices
        self.notes = notes
        self.memory = memory
    }

    /// Pages of guest memory the snapshot stores (the others are zero).
    public var storedPages: Int { memory.storedPages }

    /// The device state of `kind`, if the machine had one.
    public func device(_ kind: String) -> DeviceState? { devices.first { $0.kind == kind } }

    /// The bytes of guest memory at `address` as the snapshot holds them.
    public func memoryBytes(at address: UInt64, count: Int) throws -> [UInt8] {
        try memory.bytes(at: address, count: count)
    }

    /// Reads and checks a snapshot file (see `init(contentsOf:verify:)`).
    public static func read(_ path: String) throws -> Snapshot {
        try Snapshot(contentsOf: path)
    }
}

extension Snapshot {
    /// How much of a file `Snapshot(contentsOf:)` checks.
    public enum Verification: Sendable {
        /// Every byte: header, metadata, the stored memory pages' checksums, and
        /// that everything else (padding, pages not stored) is zero. Reads every
        /// stored page once.
        case full
        /// Header and metadata only: memory pages are trusted. For a file this
        /// process wrote or already verified; restore time then does not depend
        /// on how much memory the guest used.
        case metadata
    }

    /// Refuses, naming the first reason, a snapshot this host cannot restore: a
    /// CPU of another vendor, a nested state of the other vendor's format or a
    /// host without nested state, or a KVM without a capability the saved state
    /// needs. Nothing is created.
    public func checkHost(_ kvm: KVM) throws {
        let config = configuration
        let host = HostCPU.cachedVendorString
        guard config.cpuVendor == host else {
            throw SnapshotError(.wrongHost, "taken on a \(config.cpuVendor) CPU; this host is \(host)")
        }
        let maxVCPUs = max(kvm.check(.maxVCPUs), kvm.check(.nrVCPUs), 1)
        guard config.vcpuCount <= maxVCPUs else {
            throw SnapshotError(.wrongHost, "\(config.vcpuCount) vCPUs; this host's KVM allows \(maxVCPUs)")
        }
        if config.irqchip && kvm.check(.irqchip) == 0 {
            throw SnapshotError(
                .wrongHost, "needs an in-kernel irqchip; this host's KVM has none (KVM_CAP_IRQCHIP = 0)")
        }
        if pit != nil && kvm.check(.pitState2) == 0 {
            throw SnapshotError(.wrongHost, "has PIT state; this host's KVM cannot restore it (KVM_CAP_PIT_STATE2 = 0)")
        }
        if clock != nil && kvm.check(.adjustClock) == 0 {
            throw SnapshotError(
                .wrongHost, "has kvmclock state; this host's KVM cannot set it (KVM_CAP_ADJUST_CLOCK = 0)")
        }
        let xsaveSize = max(kvm.check(.xsave2), MemoryLayout<kvm_xsave>.size)
        let nestedCapability = kvm.check(.nestedState)
        for (i, vcpu) in vcpus.enumerated() {
            if vcpu.xsave.bytes.count > xsaveSize {
                throw SnapshotError(
                    .wrongHost,
                    "vCPU \(i)'s XSAVE area is \(vcpu.xsave.bytes.count) bytes; this host's KVM handles \(xsaveSize) (KVM_CAP_XSAVE2)"
                )
            }
            if vcpu.xcrs != nil && kvm.check(.xcrs) == 0 {
                throw SnapshotError(
                    .wrongHost, "vCPU \(i) has XCRs; this host's KVM cannot set them (KVM_CAP_XCRS = 0)")
            }
            if vcpu.lapic != nil && !config.irqchip {
                throw SnapshotError(.corrupt, "vCPU \(i) has LAPIC state but the machine has no in-kernel irqchip")
            }
            guard let nested = vcpu.nestedState else { continue }
            let state: NestedState
            do {
                state = try NestedState(bytes: nested)
            } catch {
                throw SnapshotError(.corrupt, "vCPU \(i)'s nested state: \(error)")
            }
            let hostFormat: NestedStateFormat? =
                switch HostCPU.cachedVendorString {
                case HostCPU.Vendor.intel.rawValue: .vmx
                case HostCPU.Vendor.amd.rawValue: .svm
                default: nil
                }
            if state.format != hostFormat {
                let vendor =
                    state.format == .svm
                    ? "SVM (AMD)" : state.format == .vmx ? "VMX (Intel)" : "an unknown (\(state.format.rawValue))"
                throw SnapshotError(.wrongHost, "vCPU \(i)'s nested state is in \(vendor) format; this host is \(host)")
            }
            if nestedCapability == 0 {
                throw SnapshotError(
                    .wrongHost,
                    "vCPU \(i) has nested state; this host's KVM cannot restore it (KVM_CAP_NESTED_STATE = 0)")
            }
            if nested.count > nestedCapability {
                throw SnapshotError(
                    .wrongHost,
                    "vCPU \(i)'s nested state is \(nested.count) bytes; this host's KVM takes at most \(nestedCapability) (KVM_CAP_NESTED_STATE)"
                )
            }
        }
    }
}

extension HostCPU {
    /// This CPU's vendor string, read once per process (CPUID traps in a VM).
    static let cachedVendorString: String = HostCPU.current().vendorString
}
