import CKVM
import Glibc

/// A KVM VM: its guest memory, in-kernel devices and vCPUs (kvm-ioctls' `VmFd`).
public final class VirtualMachine: Sendable {
    /// The /dev/kvm handle the VM was made with.
    public let kvm: KVM
    let handle: FileHandle
    /// The VM's memory slots.
    public let memory = GuestMemory()

    init(kvm: KVM, handle: FileHandle) {
        self.kvm = kvm
        self.handle = handle
    }

    /// Maps `size` bytes of fresh, zeroed RAM at `guestPhysical`.
    @discardableResult
    public func addMemory(at guestPhysical: UInt64, size: UInt64, logDirtyPages: Bool = false) throws -> MemoryRegion {
        try addMemory(at: guestPhysical, size: size, logDirtyPages: logDirtyPages, file: nil)
    }

    /// Maps `size` bytes of the file `fd` from `offset` (page aligned) at
    /// `guestPhysical`, copy-on-write: the guest sees the file's bytes (holes
    /// read as zeros), its writes stay in this process. Nothing is read up front,
    /// so the cost does not grow with `size`. `fd` may be closed afterwards.
    @discardableResult
    public func addMemory(
        at guestPhysical: UInt64, size: UInt64, mappingFile fd: Int32, offset: UInt64,
        logDirtyPages: Bool = false
    ) throws -> MemoryRegion {
        try addMemory(at: guestPhysical, size: size, logDirtyPages: logDirtyPages, file: (fd, offset))
    }

    private func addMemory(
        at guestPhysical: UInt64, size: UInt64, logDirtyPages: Bool,
        file: (fd: Int32, offset: UInt64)?
    ) throws -> MemoryRegion {
        let flags: UInt32 = logDirtyPages ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0
        return try memory.addRegion(at: guestPhysical, size: size, flags: flags, file: file) { region in
            var r = kvm_userspace_memory_region(
                slot: region.slot, flags: region.flags,
                guest_phys_addr: region.guestPhysical,
                memory_size: region.size,
                userspace_addr: UInt64(UInt(bitPattern: region.host)))
            try handle.ioctl(.setUserMemoryRegion, &r) { err in
                err == .EEXIST ? "slot \(region.slot) overlaps an existing KVM memory slot" : nil
            }
        }
    }

    /// PC RAM as QEMU lays it out: up to 3 GiB from 0, the rest from 4 GiB
    /// (the gap is the 32-bit PCI hole). With `file`, region i maps that file
    /// copy-on-write from `offsets[i]` (see `addMemory(at:size:mappingFile:offset:)`).
    public func addRAM(
        size: UInt64, logDirtyPages: Bool = false,
        file: (fd: Int32, offsets: [UInt64])? = nil
    ) throws {
        for (i, part) in PCLayout.ram(size: size).enumerated() {
            if let file {
                try addMemory(
                    at: part.guestPhysical, size: part.size, mappingFile: file.fd,
                    offset: file.offsets[i], logDirtyPages: logDirtyPages)
            } else {
                try addMemory(at: part.guestPhysical, size: part.size, logDirtyPages: logDirtyPages)
            }
        }
    }

    /// KVM_CREATE_VCPU, mapped `kvm_run`, and by default the CPUID KVM supports.
    public func createVCPU(id: UInt32 = 0, cpuid: CPUID? = nil) throws -> VCPU {
        let vcpu = try createVCPUWithoutCPUID(id: id)
        var table = try cpuid ?? kvm.supportedCPUID()
        table.setInitialAPICID(id)
        try vcpu.setCPUID(table)
        return vcpu
    }

    /// KVM_CREATE_VCPU and the mapped `kvm_run`, CPUID left for the caller to set
    /// (a restore sets the saved one: KVM_SET_CPUID2 is costly, do it once).
    func createVCPUWithoutCPUID(id: UInt32) throws -> VCPU {
        let fd = try handle.ioctl(.createVCPU, value: UInt(id)) { err in
            err == .EINVAL ? "vCPU id \(id) is out of range (KVM_CAP_MAX_VCPU_ID = \(self.kvm.check(.maxVCPUID)))" : nil
        }
        return try VCPU(vm: self, id: id, handle: FileHandle(fd))
    }

    /// KVM_SET_TSS_ADDR: three pages KVM needs on Intel for real-mode emulation.
    public func setTSSAddress(_ address: UInt64) throws {
        try handle.ioctl(.setTSSAddr, value: UInt(address))
    }

    /// KVM_SET_IDENTITY_MAP_ADDR: one page for the EPT identity map on Intel.
    public func setIdentityMapAddress(_ address: UInt64) throws {
        var a = address
        try handle.ioctl(.setIdentityMapAddr, &a)
    }

    /// KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and LAPICs.
    public func createIRQChip() throws {
        try handle.ioctl(.createIRQChip, value: 0)
    }

    /// KVM_CREATE_PIT2: in-kernel i8254.
    public func createPIT2() throws {
        var config = kvm_pit_config()
        try handle.ioctl(.createPIT2, &config)
    }

    /// KVM_IRQ_LINE: raise or lower a GSI on the in-kernel irqchip.
    public func setIRQLine(_ irq: UInt32, level: Bool) throws {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = level ? 1 : 0
        try handle.ioctl(.irqLine, &line)
    }

    /// KVM_ENABLE_CAP on the VM.
    public func enable(_ capability: Capability, args: [UInt64] = []) throws {
        var cap = kvm_enable_cap()
        cap.cap = UInt32(capability.rawValue)
        withUnsafeMutableBytes(of: &cap.args) { raw in
            for (i, a) in args.prefix(4).enumerated() { raw.storeBytes(of: a, toByteOffset: i * 8, as: UInt64.self) }
        }
        try handle.ioctl(.enableCap, &cap)
    }

    /// KVM_GET_DIRTY_LOG for `region`: one bit per page written since the last call.
    public func dirtyLog(_ region: MemoryRegion) throws -> [UInt64] {
        let pages = Int(region.size / GuestMemory.pageSize)
        var bitmap = [UInt64](repeating: 0, count: (pages + 63) / 64)
        try bitmap.withUnsafeMutableBytes { raw in
            var log = kvm_dirty_log()
            log.slot = region.slot
            log.dirty_bitmap = raw.baseAddress
            try handle.ioctl(.getDirtyLog, &log) { err in
                err == .ENOENT ? "slot \(region.slot) was not created with dirty-page logging" : nil
            }
        }
        return bitmap
    }
}

// MARK: - Interrupt routing

extension VirtualMachine {
    /// QEMU's PC interrupt routing (kvm_pc_setup_irq_routing): GSIs 0–7 but 2 to
    /// the master PIC, 8–15 to the slave, and every GSI but 2 to the IOAPIC pin of
    /// the same number — except GSI 0, the PIT, which goes to IOAPIC pin 2, as the
    /// ACPI interrupt override of a PC says. KVM's default routing sends it to pin 0.
    public func setPCInterruptRouting() throws {
        var routes: [(gsi: UInt32, chip: UInt32, pin: UInt32)] = []
        for gsi in UInt32(0)..<8 where gsi != 2 { routes.append((gsi, UInt32(KVM_IRQCHIP_PIC_MASTER), gsi)) }
        for gsi in UInt32(8)..<16 { routes.append((gsi, UInt32(KVM_IRQCHIP_PIC_SLAVE), gsi - 8)) }
        for gsi in UInt32(0)..<24 where gsi != 2 {
            routes.append((gsi, UInt32(KVM_IRQCHIP_IOAPIC), gsi == 0 ? 2 : gsi))
        }
        let header = MemoryLayout<kvm_irq_routing>.size
        let stride = MemoryLayout<kvm_irq_routing_entry>.stride
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: header + stride * routes.count, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: header + stride * routes.count)
        buffer.assumingMemoryBound(to: kvm_irq_routing.self).pointee.nr = UInt32(routes.count)
        for (i, route) in routes.enumerated() {
            var entry = kvm_irq_routing_entry()
            entry.gsi = route.gsi
            entry.type = UInt32(KVM_IRQ_ROUTING_IRQCHIP)
            entry.u.irqchip.irqchip = route.chip
            entry.u.irqchip.pin = route.pin
            buffer.storeBytes(of: entry, toByteOffset: header + i * stride, as: kvm_irq_routing_entry.self)
        }
        try handle.ioctl(.setGSIRouting, buffer)
    }
}

// MARK: - I/O events

extension VirtualMachine {
    /// KVM_IOEVENTFD: KVM completes a guest write matching `request` itself and
    /// signals its eventfd instead of exiting (or, with the DEASSIGN flag, stops).
    func setIOEventFD(_ request: inout kvm_ioeventfd) throws {
        try handle.ioctl(.ioeventfd, &request)
    }
}

// MARK: - In-kernel device state (snapshots)

extension VirtualMachine {
    /// KVM_GET_IRQCHIP of the PIC master (0), PIC slave (1) and IOAPIC (2).
    func irqchipState() throws -> Snapshot.IRQChipState {
        func chip(_ id: UInt32) throws -> [UInt8] {
            var c = kvm_irqchip()
            c.chip_id = id
            try handle.ioctl(.getIRQChip, &c)
            return withUnsafeBytes(of: c.chip) { Array($0) }
        }
        return Snapshot.IRQChipState(picMaster: try chip(0), picSlave: try chip(1), ioapic: try chip(2))
    }

    func setIRQChipState(_ state: Snapshot.IRQChipState) throws {
        for (id, bytes) in [(UInt32(0), state.picMaster), (1, state.picSlave), (2, state.ioapic)] {
            var c = kvm_irqchip()
            c.chip_id = id
            withUnsafeMutableBytes(of: &c.chip) { $0.copyBytes(from: bytes.prefix($0.count)) }
            try handle.ioctl(.setIRQChip, &c)
        }
    }

    func pitState() throws -> Snapshot.PITState {
        var p = kvm_pit_state2()
        try handle.ioctl(.getPIT2, &p)
        return Snapshot.PITState(bytes: withUnsafeBytes(of: p) { Array($0) })
    }

    func setPITState(_ state: Snapshot.PITState) throws {
        var p = kvm_pit_state2()
        withUnsafeMutableBytes(of: &p) { $0.copyBytes(from: state.bytes.prefix($0.count)) }
        try handle.ioctl(.setPIT2, &p)
    }

    func clockState() throws -> Snapshot.ClockState {
        var c = kvm_clock_data()
        try handle.ioctl(.getClock, &c)
        return Snapshot.ClockState(clock: c.clock, flags: c.flags)
    }

    /// KVM_SET_CLOCK to the saved value (flags 0: no correction for the time since).
    func setClockState(_ state: Snapshot.ClockState) throws {
        var c = kvm_clock_data()
        c.clock = state.clock
        try handle.ioctl(.setClock, &c)
    }
}
