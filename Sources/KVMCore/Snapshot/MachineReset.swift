import CKVM
import Glibc

extension Machine {
    /// Puts this machine back, in place, into the state `snapshot` holds: guest
    /// memory, every vCPU, the irqchip, PIT, kvmclock and the devices. The
    /// snapshot must be of a machine like this one (memory size, vCPUs, irqchip,
    /// devices, CPUID); else nothing changes and a `SnapshotError` says why.
    ///
    /// Memory: when the machine logs dirty pages (`logDirtyPages`) and its RAM
    /// last equalled this snapshot (restored from it, reset to it, or it was taken
    /// here), only the pages written since — by the guest (KVM_GET_DIRTY_LOG) or
    /// through `GuestMemory`'s writes — are copied back. Otherwise the RAM is
    /// remapped copy-on-write from the snapshot's image (cheap now, but every page
    /// the guest then touches faults in again), and becomes the new baseline.
    ///
    /// vCPUs: a pending port or MMIO access is finished first (so it cannot
    /// complete into the restored state), then the state is written without
    /// CPUID (KVM keeps it; the snapshot's must be the same, but for the bits
    /// KVM derives from the vCPU's state: `CPUID.lessRuntimeBits`). A vCPU without
    /// nested state on a machine without an irqchip gets its registers, special
    /// registers and events through kvm_run's sync area (KVM_CAP_SYNC_REGS),
    /// loaded by one KVM_RUN that returns at once: two ioctls fewer.
    ///
    /// Call between runs. A failure after the checks (KVM refusing state it
    /// accepted before) leaves the machine half reset: reset it again or drop it.
    public func reset(to snapshot: Snapshot) throws {
        try snapshot.checkHost(kvm)
        let config = snapshot.configuration
        guard config.memorySize == memory.totalSize, config.vcpuCount == vcpus.count, config.irqchip == hasIRQChip,
            snapshot.memory.regions == MemoryImage.layout(of: memory)
        else {
            throw SnapshotError(
                .incompatible,
                "the snapshot is of a machine with \(config.memorySize >> 20) MiB, \(config.vcpuCount) vCPU(s), irqchip \(config.irqchip ? "on" : "off"); this one has \(memory.totalSize >> 20) MiB, \(vcpus.count), \(hasIRQChip ? "on" : "off")"
            )
        }
        let attached = try attachedDevices()
        guard attached.count == snapshot.devices.count,
            snapshot.devices.allSatisfy({ state in
                attached.contains { $0.device.snapshotKind == state.kind && $0.ports == state.ports }
            })
        else {
            throw SnapshotError(
                .incompatible,
                "the snapshot's devices (\(snapshot.devices.map(\.kind).joined(separator: ", "))) are not this machine's (\(attached.map { $0.device.snapshotKind }.joined(separator: ", ")))"
            )
        }
        for state in snapshot.devices {
            try attached.first { $0.device.snapshotKind == state.kind && $0.ports == state.ports }!.device
                .checkSnapshotState(state.bytes)
        }
        let tracking = snapshotTracking
        if tracking.cpuids.count != vcpus.count { tracking.cpuids = Array(repeating: nil, count: vcpus.count) }
        for (i, vcpu) in vcpus.enumerated() {
            if tracking.cpuids[i] == nil { tracking.cpuids[i] = try vcpu.cpuid() }
            // Equal whole is the common case, and costs no copies.
            guard
                tracking.cpuids[i] == snapshot.vcpus[i].cpuid
                    || tracking.cpuids[i]!.lessRuntimeBits == snapshot.vcpus[i].cpuid.lessRuntimeBits
            else {
                throw SnapshotError(
                    .incompatible, "vCPU \(i)'s CPUID is not the snapshot's (KVM cannot change it after the vCPU ran)")
            }
        }

        for vcpu in vcpus { try vcpu.finishPendingIO() }
        try resetMemory(to: snapshot.memory)
        if let chip = snapshot.irqchip { try vm.setIRQChipState(chip) }
        if let pit = snapshot.pit { try vm.setPITState(pit) }
        try restoreDevices(snapshot.devices, creating: false)
        if tracking.unwritableMSRs.count != vcpus.count {
            tracking.unwritableMSRs = Array(repeating: [:], count: vcpus.count)
        }
        if tracking.syncRegs == nil { tracking.syncRegs = kvm.canSyncRegs }
        let xsaveSize = max(kvm.check(.xsave2), MemoryLayout<kvm_xsave>.size)
        let canSync = !hasIRQChip && tracking.syncRegs!
        for (i, (vcpu, state)) in zip(vcpus, snapshot.vcpus).enumerated() {
            try vcpu.resetState(
                state.paddingXSAVE(to: xsaveSize), unwritable: &tracking.unwritableMSRs[i],
                throughSyncRegs: canSync && state.nestedState == nil)
        }
        if let clock = snapshot.clock { try vm.setClockState(clock) }
    }

    /// Copies back the pages written since the baseline, or remaps the RAM.
    private func resetMemory(to image: MemoryImage) throws {
        let logging = memory.regions.allSatisfy { $0.flags & UInt32(KVM_MEM_LOG_DIRTY_PAGES) != 0 }
        if logging && snapshotTracking.baseline === image {
            // Stored pages are copied from the image, the others zeroed (reading
            // a hole of a memfd image would allocate a page for it).
            let view = try image.view()
            let stored = image.storedBitmaps
            let page = Int(GuestMemory.pageSize)
            for (i, region) in memory.regions.enumerated() {
                var bitmap = try vm.dirtyLog(region)
                if let host = memory.takeHostDirtyPages(region: i) {
                    for w in bitmap.indices { bitmap[w] |= host[w] }
                }
                let source = view + Int(image.regions[i].imageOffset)
                for (w, word) in bitmap.enumerated() where word != 0 {
                    var bits = word
                    while bits != 0 {
                        let bit = bits.trailingZeroBitCount
                        let p = w * 64 + bit
                        if stored[i][w] & (1 << UInt64(bit)) != 0 {
                            (region.host + p * page).copyMemory(from: source + p * page, byteCount: page)
                        } else {
                            memset(region.host + p * page, 0, page)
                        }
                        bits &= bits - 1
                    }
                }
            }
            return
        }
        for i in memory.regions.indices {
            try memory.remap(region: i, fd: image.fd, offset: image.fileOffset(ofRegion: i))
        }
        snapshotTracking.backing = image
        if logging {
            try clearDirtyLogs()
            snapshotTracking.baseline = image
        }
    }

    /// Empties KVM's dirty logs and the host-write bitmaps.
    func clearDirtyLogs() throws {
        for (i, region) in memory.regions.enumerated() {
            _ = try vm.dirtyLog(region)
            _ = memory.takeHostDirtyPages(region: i)
        }
    }
}

extension VCPU {
    /// `completePendingIO()` when the last exit was a port or MMIO access that
    /// may still be pending; afterwards the exit reads as KVM_EXIT_INTR, so a
    /// second call costs nothing.
    func finishPendingIO() throws {
        let reason = runPage.pointee.exit_reason
        guard reason == UInt32(KVM_EXIT_IO) || reason == UInt32(KVM_EXIT_MMIO) else { return }
        try completePendingIO()
        markIOFinished()
    }

    /// Records in kvm_run that no port or MMIO access is pending (after
    /// `completePendingIO()`): the exit reads as KVM_EXIT_INTR until the next run.
    func markIOFinished() {
        runPage.pointee.exit_reason = UInt32(KVM_EXIT_INTR)
    }

    /// Writes `state` but CPUID (`restoreState` is CPUID, then this), in the
    /// order `restoreState` documents; or with `throughSyncRegs` (a vCPU without
    /// an in-kernel LAPIC) the rest first and
    /// registers, special registers and events through kvm_run's sync area,
    /// loaded by a KVM_RUN that exits at once. `skipping` names state the vCPU
    /// is known to hold already (a fresh vCPU's defaults).
    func resetState(
        _ state: VCPUState, unwritable: inout [UInt32: UInt64], throughSyncRegs: Bool,
        skipping known: FreshVCPU.Defaults? = nil
    ) throws {
        if throughSyncRegs {
            try restoreMSRs(state.msrs, unwritable: &unwritable)
            if let xcrs = state.xcrs, !(known?.xcrs.map { sameBytes($0, xcrs) } ?? false) { try setXCRs(xcrs) }
            if !(known.map { $0.xsave == state.xsave } ?? false) { try setXSAVE(state.xsave) }
            // Without an in-kernel LAPIC the MP state is RUNNABLE and can be nothing else
            // (KVM_SET_MP_STATE refuses any other): nothing to write.
            if state.mpState != .runnable { try setMPState(state.mpState) }
            if !(known.map { sameBytes($0.debugRegisters, state.debugRegisters) } ?? false) {
                try setDebugRegisters(state.debugRegisters)
            }
            runPage.pointee.s.regs.regs = state.registers
            runPage.pointee.s.regs.sregs = state.specialRegisters
            runPage.pointee.s.regs.events = state.events
            runPage.pointee.kvm_dirty_regs = UInt64(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)
            runPage.pointee.immediate_exit = 1
            let result = ckvm_run(handle.fd)
            let err = Errno.current
            runPage.pointee.immediate_exit = 0
            runPage.pointee.kvm_dirty_regs = 0
            markIOFinished()
            if result < 0 && err != .EINTR {
                throw KVMError("KVM_RUN (loading kvm_run sync registers)", errno: err, hint: VCPU.runHint(err))
            }
            return
        }
        try setSpecialRegisters(state.specialRegisters)
        try restoreMSRs(state.msrs, unwritable: &unwritable)
        if let xcrs = state.xcrs { try setXCRs(xcrs) }
        try setXSAVE(state.xsave)
        try setEvents(state.events)
        try setMPState(state.mpState)
        try setDebugRegisters(state.debugRegisters)
        try setRegisters(state.registers)
        if let lapic = state.lapic {
            try setLAPIC(lapic)
            // KVM drops a TSC-deadline write while the LAPIC timer is not in
            // TSC-deadline mode, which a fresh vCPU's is not: armed again now
            // that the LVT says so (QEMU orders it so too), or a restored Linux
            // never gets its next timer interrupt.
            if let deadline = state.msrs.first(where: { $0.index == MSR.tscDeadline }), deadline.value != 0 {
                _ = try MSR.set([deadline], on: handle)
            }
        }
        if let bytes = state.nestedState { try setNestedState(try NestedState(bytes: bytes)) }
    }

    /// `restoreMSRs` that skips an MSR `unwritable` says this vCPU already holds
    /// at the saved value and KVM refuses to have written (one KVM_SET_MSRS
    /// instead of three ioctls per such MSR), and records the refusals it meets:
    /// KVM refusing a write of the value the vCPU already holds. Any other
    /// refusal throws, naming the MSR.
    func restoreMSRs(_ msrs: [MSR], unwritable: inout [UInt32: UInt64]) throws {
        var pending = unwritable.isEmpty ? msrs[...] : msrs.filter { unwritable[$0.index] != $0.value }[...]
        while !pending.isEmpty {
            let written = try MSR.set(Array(pending), on: handle)
            guard written < pending.count else { return }
            let refused = pending[pending.startIndex + written]
            let current = try MSR.get([refused.index], on: handle).first
            guard current == refused else {
                throw KVMError(
                    "KVM_SET_MSRS", errno: .EINVAL,
                    hint: "KVM refused MSR \(hex(refused.index)) = \(hex(refused.value))"
                        + (current.map { " (the vCPU holds \(hex($0.value)))" } ?? ""))
            }
            unwritable[refused.index] = refused.value
            pending = pending.dropFirst(written + 1)
        }
    }
}

/// The bytes of two values of a C struct are the same.
func sameBytes<T>(_ a: T, _ b: T) -> Bool {
    withUnsafeBytes(of: a) { x in withUnsafeBytes(of: b) { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
}
