import CKVM

// VCPUState in a snapshot's VCPU section: the fields in a fixed order, KVM's
// structs as their uapi bytes, each with its size so a mismatch is an error.

extension VCPUState {
    func encode(into w: inout SnapshotWriter) {
        w.u64(UInt64(cpuid.entries.count))
        for e in cpuid.entries {
            for v in [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx] { w.u32(v) }
        }
        w.raw(registers)
        w.raw(specialRegisters)
        w.blob(xsave.bytes)
        w.bool(xcrs != nil)
        if let xcrs { w.raw(xcrs) }
        w.u64(UInt64(msrs.count))
        for m in msrs {
            w.u32(m.index)
            w.u64(m.value)
        }
        w.raw(events)
        w.u32(mpState.rawValue)
        w.raw(debugRegisters)
        w.bool(lapic != nil)
        if let lapic { w.raw(lapic) }
        w.bool(nestedState != nil)
        if let nestedState { w.blob(nestedState) }
    }

    init(decoding r: inout SnapshotReader) throws {
        var entries: [CPUIDEntry] = []
        for _ in 0..<(try r.count(unit: 28)) {
            entries.append(
                CPUIDEntry(
                    function: try r.u32(), index: try r.u32(), flags: try r.u32(),
                    eax: try r.u32(), ebx: try r.u32(), ecx: try r.u32(), edx: try r.u32()))
        }
        let registers = try r.raw(Registers.self, "kvm_regs")
        let specialRegisters = try r.raw(SpecialRegisters.self, "kvm_sregs")
        let xsave = try r.blob()
        guard xsave.count >= MemoryLayout<kvm_xsave>.size else {
            throw SnapshotError(
                .corrupt, "corrupt: an XSAVE area of \(xsave.count) bytes, less than \(MemoryLayout<kvm_xsave>.size)")
        }
        let xcrs = try r.bool() ? try r.raw(XCRs.self, "kvm_xcrs") : nil
        var msrs: [MSR] = []
        for _ in 0..<(try r.count(unit: 12)) { msrs.append(MSR(try r.u32(), try r.u64())) }
        let events = try r.raw(VCPUEvents.self, "kvm_vcpu_events")
        let rawMP = try r.u32()
        guard let mpState = MPState(rawValue: rawMP) else {
            throw SnapshotError(.corrupt, "corrupt: MP state \(rawMP)")
        }
        let debugRegisters = try r.raw(DebugRegisters.self, "kvm_debugregs")
        let lapic = try r.bool() ? try r.raw(LAPICState.self, "kvm_lapic_state") : nil
        let nested = try r.bool() ? try r.blob() : nil
        self.init(
            cpuid: CPUID(entries: entries), registers: registers, specialRegisters: specialRegisters,
            xsave: XSAVEState(bytes: xsave), xcrs: xcrs, msrs: msrs, events: events, mpState: mpState,
            debugRegisters: debugRegisters, lapic: lapic, nestedState: nested)
    }
}
