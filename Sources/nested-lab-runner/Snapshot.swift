import Glibc
import KVMCore

/// The whole state of a one-vCPU lab VM: RAM, every piece of vCPU state KVM lets
/// userspace read (the kernel selftests' `vcpu_save_state`), and what the guest
/// had produced so far (serial output, facts, stops) so a restored run can be
/// compared with an uninterrupted one. Device registers (the UART's LCR, …) are
/// not kept: the lab's devices have no state the guest reads back.
struct VMSnapshot {
    /// Non-zero 4 KiB pages: guest-physical address and contents.
    var pages: [(UInt64, [UInt8])] = []
    var memorySize: UInt64 = 0
    var cpuid = CPUID(entries: [])
    var regs = Registers()
    var sregs = SpecialRegisters()
    var msrs: [MSR] = []
    var xcrs: XCRs?
    /// The XSAVE area's bytes (XSAVEState has no public initializer: restore
    /// writes them into the fresh vCPU's own XSAVEState).
    var xsave: [UInt8] = []
    var events = VCPUEvents()
    var mpState: MPState = .runnable
    var debugRegs = DebugRegisters()
    var lapic: LAPICState?
    /// KVM_GET_NESTED_STATE's bytes (header `size` long).
    var nested: [UInt8] = []
    /// What the guest produced before the snapshot.
    var produced = RunLog()

    var nestedState: NestedState? { try? NestedState(bytes: nested) }
}

/// MSRs KVM_GET_MSR_INDEX_LIST does not always list but an SVM guest hypervisor sets.
private let extraMSRs: [UInt32] = [MSR.vmCR, 0xC001_0117 /* VM_HSAVE_PA */]

extension VMSnapshot {
    /// Takes the state of `machine`, stopped by the run loop (at a hostcall's OUT).
    /// The pending port exit is completed first (KVM_RUN with immediate_exit), or
    /// RIP would still point at the OUT and the restored guest would repeat it.
    /// Order as the selftests' vcpu_save_state.
    static func capture(_ machine: Machine, produced: RunLog) throws -> VMSnapshot {
        let vcpu = machine.vcpu
        let kvm = machine.kvm
        try vcpu.completePendingIO()
        var s = VMSnapshot()
        s.produced = produced
        s.cpuid = try vcpu.cpuid()
        s.events = try vcpu.events()
        s.mpState = try vcpu.mpState()
        s.regs = try vcpu.registers()
        s.xsave = try vcpu.xsave().bytes
        if kvm.check(.xcrs) != 0 { s.xcrs = try vcpu.xcrs() }
        s.sregs = try vcpu.specialRegisters()
        if kvm.check(.nestedState) != 0 { s.nested = try vcpu.nestedStateBytes() }
        s.msrs = try readableMSRs(vcpu, kvm: kvm)
        s.debugRegs = try vcpu.debugRegisters()
        s.lapic = try? vcpu.lapic()  // none without an in-kernel irqchip
        s.memorySize = machine.memory.totalSize
        s.pages = nonZeroPages(machine.memory)
        return s
    }

    /// Every MSR of KVM_GET_MSR_INDEX_LIST (plus the SVM ones) this vCPU reads.
    static func readableMSRs(_ vcpu: VCPU, kvm: KVM) throws -> [MSR] {
        var indices = try kvm.msrIndexList()
        for extra in extraMSRs where !indices.contains(extra) { indices.append(extra) }
        var out: [MSR] = []
        for index in indices {
            if let msr = try? vcpu.msrs([index]).first { out.append(msr) }
        }
        return out
    }

    static func nonZeroPages(_ memory: GuestMemory) -> [(UInt64, [UInt8])] {
        let page = Int(GuestMemory.pageSize)
        let zero = UnsafeMutableRawPointer.allocate(byteCount: page, alignment: 4096)
        defer { zero.deallocate() }
        zero.initializeMemory(as: UInt8.self, repeating: 0, count: page)
        var out: [(UInt64, [UInt8])] = []
        for region in memory.regions {
            var offset = 0
            while offset < Int(region.size) {
                let p = region.host + offset
                if memcmp(p, zero, page) != 0 {
                    out.append((region.guestPhysical + UInt64(offset), Array(UnsafeRawBufferPointer(start: p, count: page))))
                }
                offset += page
            }
        }
        return out
    }

    /// A fresh machine (same RAM size, nesting on) in this state. Order as the
    /// selftests' vcpu_load_state: CPUID, RAM, then sregs, MSRs, XCRs, XSAVE,
    /// events, MP state, debug registers, regs, nested state last (it needs
    /// EFER.SVME from sregs). `nestedValidate` picks KVMCore's pre-check.
    func restore(kvm: KVM, upTo stop: RestoreStep = .all, nestedValidate: Bool = true) throws -> Machine {
        let machine = try LabGuest.machine(kvm: kvm, memorySize: memorySize)
        let vcpu = machine.vcpu
        try step("KVM_SET_CPUID2") { try vcpu.setCPUID(cpuid) }
        for (address, bytes) in pages { try machine.memory.write(bytes, at: address) }
        try step("KVM_SET_SREGS") { try vcpu.setSpecialRegisters(sregs) }
        try step("KVM_SET_MSRS") { try VMSnapshot.setMSRs(msrs, on: vcpu) }
        if let xcrs { try step("KVM_SET_XCRS") { try vcpu.setXCRs(xcrs) } }
        try step("KVM_SET_XSAVE") {
            var area = try vcpu.xsave()
            area.bytes = xsave
            try vcpu.setXSAVE(area)
        }
        try step("KVM_SET_VCPU_EVENTS") { try vcpu.setEvents(events) }
        try step("KVM_SET_MP_STATE") { try vcpu.setMPState(mpState) }
        try step("KVM_SET_DEBUGREGS") { try vcpu.setDebugRegisters(debugRegs) }
        if let lapic { try step("KVM_SET_LAPIC") { try vcpu.setLAPIC(lapic) } }
        try step("KVM_SET_REGS") { try vcpu.setRegisters(regs) }
        if stop == .beforeNested { return machine }
        if !nested.isEmpty {
            let state = try NestedState(bytes: nested)
            try step("KVM_SET_NESTED_STATE") { try vcpu.setNestedState(state, validate: nestedValidate) }
        }
        return machine
    }

    enum RestoreStep { case beforeNested, all }

    /// MSRs a fresh vCPU refused but already held at the saved value (seen so far).
    nonisolated(unsafe) static var refusedButEqual: Set<UInt32> = []

    /// KVM_SET_MSRS of all at once, as the selftests do. Some kernels refuse a
    /// host write of an MSR they list and read (6.1: MSR_KVM_POLL_CONTROL =
    /// 0x4b564d06 with value 0); such an MSR is let go when the fresh vCPU already
    /// holds the saved value, and is an error otherwise.
    static func setMSRs(_ msrs: [MSR], on vcpu: VCPU) throws {
        do {
            try vcpu.setMSRs(msrs)
            return
        } catch {}
        for msr in msrs {
            do {
                try vcpu.setMSRs([msr])
            } catch {
                let current = try? vcpu.msrs([msr.index]).first?.value
                guard current == msr.value else {
                    throw LabFailure("KVM refused MSR \(hex(msr.index)) = \(hex(msr.value)) and the fresh vCPU holds \(current.map { hex($0) } ?? "nothing readable")")
                }
                refusedButEqual.insert(msr.index)
            }
        }
    }

    private func step(_ what: String, _ body: () throws -> Void) throws {
        do { try body() } catch { throw LabFailure("restore: \(what): \(error)") }
    }
}

// MARK: - File format

/// The lab's own snapshot file (the snapshot file format proper is a later issue):
/// "SKVMLAB1", then sections: 4-byte tag, u64 length, bytes. Little-endian; KVM
/// structs as their raw bytes (same host ABI only).
enum SnapshotFile {
    static let magic = Array("SKVMLAB1".utf8)

    static func encode(_ s: VMSnapshot) -> [UInt8] {
        var w = ByteWriter()
        w.bytes(magic)
        func section(_ tag: String, _ body: (inout ByteWriter) -> Void) {
            var inner = ByteWriter()
            body(&inner)
            w.bytes(Array(tag.utf8))
            w.u64(UInt64(inner.out.count))
            w.bytes(inner.out)
        }
        section("MEMS") { $0.u64(s.memorySize) }
        section("PAGE") { w in
            w.u64(UInt64(s.pages.count))
            for (address, bytes) in s.pages { w.u64(address); w.bytes(bytes) }
        }
        section("CPID") { w in
            w.u64(UInt64(s.cpuid.entries.count))
            for e in s.cpuid.entries { for v in [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx] { w.u32(v) } }
        }
        section("REGS") { $0.raw(s.regs) }
        section("SREG") { $0.raw(s.sregs) }
        section("MSRS") { w in
            w.u64(UInt64(s.msrs.count))
            for m in s.msrs { w.u32(m.index); w.u64(m.value) }
        }
        if let xcrs = s.xcrs { section("XCRS") { $0.raw(xcrs) } }
        section("XSAV") { $0.bytes(s.xsave) }
        section("EVNT") { $0.raw(s.events) }
        section("MPST") { $0.u32(s.mpState.rawValue) }
        section("DBGR") { $0.raw(s.debugRegs) }
        if let lapic = s.lapic { section("LAPC") { $0.raw(lapic) } }
        section("NEST") { $0.bytes(s.nested) }
        section("SERI") { $0.bytes(s.produced.serial) }
        section("FACT") { w in
            w.u64(UInt64(s.produced.facts.count))
            for f in s.produced.facts { w.string(f.key); w.u64(f.value) }
        }
        section("STOP") { w in
            w.u64(UInt64(s.produced.events.count))
            for e in s.produced.events { w.string(e) }
        }
        return w.out
    }

    static func decode(_ bytes: [UInt8]) throws -> VMSnapshot {
        var r = ByteReader(bytes)
        guard try r.bytes(8) == magic else { throw LabFailure("not a lab snapshot (magic is not SKVMLAB1)") }
        var s = VMSnapshot()
        var facts: [RunLog.Fact] = []
        var stops: [String] = []
        var serial: [UInt8] = []
        var seen: Set<String> = []
        while !r.atEnd {
            let tag = String(decoding: try r.bytes(4), as: UTF8.self)
            let length = Int(try r.u64())
            var b = ByteReader(try r.bytes(length))
            seen.insert(tag)
            switch tag {
            case "MEMS": s.memorySize = try b.u64()
            case "PAGE":
                for _ in 0..<(try b.u64()) { s.pages.append((try b.u64(), try b.bytes(Int(GuestMemory.pageSize)))) }
            case "CPID":
                for _ in 0..<(try b.u64()) {
                    let v = try (0..<7).map { _ in try b.u32() }
                    s.cpuid.entries.append(CPUIDEntry(function: v[0], index: v[1], flags: v[2], eax: v[3], ebx: v[4], ecx: v[5], edx: v[6]))
                }
            case "REGS": s.regs = try b.raw(Registers.self)
            case "SREG": s.sregs = try b.raw(SpecialRegisters.self)
            case "MSRS": for _ in 0..<(try b.u64()) { s.msrs.append(MSR(try b.u32(), try b.u64())) }
            case "XCRS": s.xcrs = try b.raw(XCRs.self)
            case "XSAV": s.xsave = b.rest()
            case "EVNT": s.events = try b.raw(VCPUEvents.self)
            case "MPST":
                let raw = try b.u32()
                guard let state = MPState(rawValue: raw) else { throw LabFailure("snapshot: unknown MP state \(raw)") }
                s.mpState = state
            case "DBGR": s.debugRegs = try b.raw(DebugRegisters.self)
            case "LAPC": s.lapic = try b.raw(LAPICState.self)
            case "NEST": s.nested = b.rest()
            case "SERI": serial = b.rest()
            case "FACT": for _ in 0..<(try b.u64()) { facts.append(RunLog.Fact(key: try b.string(), value: try b.u64())) }
            case "STOP": for _ in 0..<(try b.u64()) { stops.append(try b.string()) }
            default: break  // unknown sections are skipped
            }
        }
        for needed in ["MEMS", "PAGE", "CPID", "REGS", "SREG", "MSRS", "XSAV", "EVNT", "MPST", "DBGR", "NEST"] where !seen.contains(needed) {
            throw LabFailure("snapshot: section \(needed) missing")
        }
        s.produced = RunLog(events: stops, serial: serial, facts: facts)
        return s
    }
}

struct ByteWriter {
    var out: [UInt8] = []
    mutating func bytes(_ b: [UInt8]) { out += b }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func string(_ s: String) { let b = Array(s.utf8); u64(UInt64(b.count)); bytes(b) }
    mutating func raw<T>(_ value: T) { withUnsafeBytes(of: value) { out += $0 } }
}

struct ByteReader {
    let data: [UInt8]
    var offset = 0
    init(_ data: [UInt8]) { self.data = data }
    var atEnd: Bool { offset >= data.count }

    mutating func bytes(_ n: Int) throws -> [UInt8] {
        guard n >= 0, n <= data.count - offset else { throw LabFailure("snapshot truncated at byte \(offset) (need \(n) more)") }
        defer { offset += n }
        return Array(data[offset..<(offset + n)])
    }
    mutating func rest() -> [UInt8] { defer { offset = data.count }; return Array(data[offset...]) }
    mutating func u32() throws -> UInt32 { try bytes(4).reversed().reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func u64() throws -> UInt64 { try bytes(8).reversed().reduce(0) { $0 << 8 | UInt64($1) } }
    mutating func string() throws -> String { String(decoding: try bytes(Int(try u64())), as: UTF8.self) }
    mutating func raw<T>(_ type: T.Type) throws -> T {
        let b = try bytes(MemoryLayout<T>.size)
        let p = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        defer { p.deallocate() }
        b.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: b.count) }
        return p.load(as: T.self)
    }
}
