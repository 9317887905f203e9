import Glibc
import KVMCore

// Test 4: save/restore of a nested guest, with L2 running, into fresh VMs
// (nested-svm-l2 on an AMD host, nested-vmx-l2 on an Intel one: LabGuest).

/// What the nested state must say at each stop of the lab guest: in guest mode
/// (L2 running) or not, and the vendor's other bit: SVM's GIF, VMX's VMXON.
private func expectedNested(at stop: String) -> (guestMode: Bool, gifOrVMXOn: Bool)? {
    switch (LabGuest.vendor, stop) {
    case (.svm, "sync 1"): (false, true) // before EFER.SVME
    case (.svm, "sync 2"): (false, true) // VMCB ready, before VMRUN
    case (.svm, "dump"), (.svm, "sync 3"): (true, true) // from L2
    case (.svm, "sync 4"): (false, false) // right after #VMEXIT: GIF = 0
    case (.vmx, "sync 1"): (false, false) // before VMXON: vmxon_pa = -1
    case (.vmx, "sync 2"): (false, true) // VMXON, VMCS loaded, before VMLAUNCH
    case (.vmx, "dump"), (.vmx, "sync 3"): (true, true) // from L2
    case (.vmx, "sync 4"): (false, true) // right after the VM exit, still in VMX operation
    default: nil
    }
}

/// Checks a snapshot's nested state against the stop it was taken at.
private func checkNested(_ snapshot: Snapshot, at stop: String, facts: RunLog) throws -> String {
    guard let state = snapshot.nestedState else {
        throw LabFailure("at \(stop): KVM_GET_NESTED_STATE gave no decodable state")
    }
    var text = "flags=\(state.flags) size=\(state.size)"
    if let pa = state.svm?.header.vmcbPA, state.flags.contains(.guestMode) { text += " vmcb_pa=\(hex(pa))" }
    if let h = state.vmx?.header { text += " vmxon_pa=\(hex(h.vmxonPA)) vmcs12_pa=\(hex(h.vmcs12PA))" }
    guard let want = expectedNested(at: stop) else { return text }
    if LabGuest.vendor == .vmx {
        try checkVMXNested(state, at: stop, guestMode: want.guestMode, vmxOn: want.gifOrVMXOn, facts: facts)
        return text
    }
    if state.format != .svm { throw LabFailure("at \(stop): nested state format \(state.format), expected svm") }
    let gif = want.gifOrVMXOn
    if state.flags.contains(.guestMode) != want.guestMode || state.flags.contains(.gifSet) != gif {
        throw LabFailure(
            "at \(stop): nested flags \(state.flags), expected \(want.guestMode ? "GUEST_MODE|" : "")\(gif ? "GIF_SET" : "no GIF_SET")"
        )
    }
    if want.guestMode {
        let reported = facts.fact("vmcb_pa")
        if state.svm?.header.vmcbPA != reported {
            throw LabFailure(
                "at \(stop): vmcb_pa \(hex(state.svm?.header.vmcbPA ?? 0)) but the guest reported \(reported.map(hex) ?? "none")"
            )
        }
        if let asid = facts.fact("asid"), state.svm?.vmcb?.control.asid != UInt32(truncatingIfNeeded: asid) {
            throw LabFailure(
                "at \(stop): vmcb12 asid \(state.svm?.vmcb?.control.asid ?? 0), the guest reported \(asid)")
        }
    }
    return text
}

/// VMX: GUEST_MODE as expected; in VMX operation, vmxon_pa and vmcs12_pa are the
/// pages the guest reported and the vmcs12 has VMCS12_REVISION; before VMXON both are -1.
private func checkVMXNested(_ state: NestedState, at stop: String, guestMode: Bool, vmxOn: Bool, facts: RunLog) throws {
    guard state.format == .vmx, let vmx = state.vmx else {
        throw LabFailure("at \(stop): nested state format \(state.format), expected vmx")
    }
    if state.flags.contains(.guestMode) != guestMode {
        throw LabFailure(
            "at \(stop): nested flags \(state.flags), expected \(guestMode ? "GUEST_MODE" : "no GUEST_MODE")")
    }
    let invalid = NestedState.invalidGPA
    let wantVMXON: UInt64? = vmxOn ? facts.fact("vmxon_pa") : invalid
    let wantVMCS: UInt64? = vmxOn ? facts.fact("vmcs_pa") : invalid
    if vmx.header.vmxonPA != wantVMXON || vmx.header.vmcs12PA != wantVMCS {
        throw LabFailure(
            "at \(stop): vmxon_pa \(hex(vmx.header.vmxonPA)) vmcs12_pa \(hex(vmx.header.vmcs12PA)), expected \(wantVMXON.map(hex) ?? "none") and \(wantVMCS.map(hex) ?? "none") (what the guest reported)"
        )
    }
    if vmxOn, vmx.vmcs12?.revisionID != VMCS12.revision {
        throw LabFailure(
            "at \(stop): vmcs12 revision \(vmx.vmcs12.map { hex(UInt64($0.revisionID)) } ?? "none"), expected \(hex(UInt64(VMCS12.revision)))"
        )
    }
}

/// Runs a fresh guest to its `index`-th stop and takes a snapshot there.
/// Returns the snapshot and the still-live source machine.
func snapshotAtStop(_ index: Int, kvm: KVM) throws -> (Snapshot, Machine, [String]) {
    let machine = try LabGuest.boot(kvm: kvm)
    var events: [String] = []
    let ended = try LabGuest.drive(machine, log: &events, pause: { _, count in count == index + 1 })
    if ended { throw LabFailure("the run ended (\(events.last ?? "?")) before stop \(index + 1)") }
    return (try LabGuest.snapshot(machine, events: events), machine, events)
}

/// Restores `snapshot` into a fresh machine and runs it to the end: the log of
/// the whole run (before + after the snapshot).
private func finishRestored(_ snapshot: Snapshot, kvm: KVM) throws -> RunLog {
    let machine = try LabGuest.restore(snapshot, kvm: kvm)
    var events = snapshot.labEvents
    try LabGuest.drive(machine, log: &events)
    return LabGuest.log(of: machine, events: events)
}

/// The stops of the reference run where a snapshot may be taken (all but the last).
private func snapshotPoints(_ reference: RunLog) -> [Int] {
    Array(0..<(reference.events.count - 1))
}

/// 4a: at each stop (HC_SYNC 1..4, HC_DUMP_NESTED), snapshot, restore into a fresh
/// VM in this process and finish there; also finish the source; and once more
/// migrating at every stop in turn. Every run must equal the uninterrupted one.
func checkSaveRestoreInProcess() throws {
    let name = "save-restore-in-process"
    let kvm = try KVM()
    let reference = try LabGuest.reference(kvm: kvm)
    info(
        name,
        "reference run: \(reference.events.joined(separator: ", ")); \(reference.serial.count) serial bytes, \(reference.facts.count) facts"
    )
    var problems: [String] = []
    for index in snapshotPoints(reference) {
        let stop = reference.events[index]
        do {
            let (snapshot, source, events) = try snapshotAtStop(index, kvm: kvm)
            let nested = try checkNested(snapshot, at: stop, facts: reference)
            let restored = try finishRestored(snapshot, kvm: kvm)
            if let diff = restored.difference(from: reference) { throw LabFailure("restored run: \(diff)") }
            // The source, its port exit completed by the snapshot, must go on as if nothing happened.
            var rest: [String] = []
            try LabGuest.drive(source, log: &rest)
            if let diff = LabGuest.log(of: source, events: events + rest).difference(from: reference) {
                throw LabFailure("source after the snapshot: \(diff)")
            }
            info(
                name,
                "at \(stop): \(snapshot.storedPages) pages, \(snapshot.vcpus[0].msrs.count) MSRs, nested \(nested): restored and source both finish like the reference"
            )
        } catch {
            problems.append("at \(stop): \(error)")
            info(name, "at \(stop): FAILED: \(error)")
        }
    }
    // Chain: one run that moves to a fresh VM at every stop.
    do {
        var machine = try LabGuest.boot(kvm: kvm)
        var events: [String] = []
        var moves = 0
        while true {
            let ended = try LabGuest.drive(machine, log: &events, pause: { _, _ in true })
            if ended { break }
            machine = try LabGuest.restore(try LabGuest.snapshot(machine, events: events), kvm: kvm)
            moves += 1
        }
        let whole = LabGuest.log(of: machine, events: events)
        if let diff = whole.difference(from: reference) { throw LabFailure(diff) }
        info(name, "chain: moved to a fresh VM at each of \(moves) stops; finishes like the reference")
    } catch {
        problems.append("chain: \(error)")
    }
    if !problems.isEmpty { throw LabFailure(problems.joined(separator: "; ")) }
}

/// 4b, first half: snapshots at every stop, written to `directory`/stop-N.snap.
func saveSnapshots(to directory: String) throws {
    let name = "save-restore-new-process"
    let kvm = try KVM()
    let reference = try LabGuest.reference(kvm: kvm)
    for index in snapshotPoints(reference) {
        let (snapshot, _, _) = try snapshotAtStop(index, kvm: kvm)
        let path = "\(directory)/stop-\(index + 1).snap"
        try snapshot.write(to: path)
        info(
            name,
            "saved \(path) at \(reference.events[index]) in pid \(getpid()) (\(snapshot.storedPages) pages stored, nested flags \(snapshot.nestedState?.flags.description ?? "?"))"
        )
    }
}

/// 4b, second half, in a new process: restore each file into a fresh VM and finish
/// the run there; it must equal an uninterrupted run made here.
func checkRestoreFiles(_ paths: [String]) throws {
    let name = "save-restore-new-process"
    guard !paths.isEmpty else { throw LabFailure("no snapshot files given") }
    let kvm = try KVM()
    let reference = try LabGuest.reference(kvm: kvm)
    var problems: [String] = []
    for path in paths {
        do {
            let snapshot = try Snapshot(contentsOf: path)
            let stop = snapshot.labEvents.last ?? "?"
            let restored = try finishRestored(snapshot, kvm: kvm)
            if let diff = restored.difference(from: reference) { throw LabFailure(diff) }
            info(
                name,
                "\(path) (at \(stop), nested flags \(snapshot.nestedState?.flags.description ?? "?")): restored in pid \(getpid()), finishes like the reference"
            )
        } catch {
            problems.append("\(path): \(error)")
        }
    }
    if !problems.isEmpty { throw LabFailure(problems.joined(separator: "; ")) }
}

/// Test 6: the chain of hypervisors, from this process's point of view.
func checkChain() throws {
    let name = "chain"
    let facts = NestingFacts.gather()
    let report = NestingReport(facts: facts)
    let cpu = facts.cpu
    let amd = facts.modules.first { $0.name == "kvm_amd" }
    let kvm = try KVM()
    let machine = try LabGuest.boot(kvm: kvm)
    var events: [String] = []
    var l3State: NestedState?
    try LabGuest.drive(
        machine, log: &events,
        onStop: { stop in
            if stop == "dump" { l3State = try machine.vcpu.nestedState() }
        })
    let log = LabGuest.log(of: machine, events: events)
    var problems: [String] = []
    if cpu.hypervisorSignature != "TCGTCGTCGTCG" {
        problems.append("L0 is not QEMU TCG (hypervisor signature \(cpu.hypervisorSignature ?? "none"))")
    }
    if amd == nil || amd?.flag("nested") != true { problems.append("L1's kvm_amd is not loaded with nested=1") }
    if !report.isAvailable { problems.append("L1 reports no nesting: \(report.summary)") }
    if log.fact("vmrun") != 1 || log.fact("exitcode") != 0x81 {
        problems.append("L2 (the guest hypervisor) did not complete a VMRUN with a VMMCALL exit")
    }
    if log.fact("l2_entered") != 1 || log.fact("l2_rax") != 0x1234_5678 {
        problems.append("L3 (its guest) did not run")
    }
    if l3State?.flags.contains(.guestMode) != true {
        problems.append("L1's KVM did not report GUEST_MODE while L3 ran")
    }
    if events.last != "done 0" { problems.append("the guest ended with \(events.last ?? "nothing")") }
    info(
        name,
        "L0 = \(cpu.hypervisorName ?? "none") (\(cpu.vendorString) family \(hex(cpu.family)) model \(hex(cpu.model)), CPUID signature \(cpu.hypervisorSignature ?? "none"))"
    )
    info(
        name,
        "L1 = Linux \(facts.kernelRelease) + KVM (kvm_amd nested=\(amd?.parameter("nested") ?? "absent") npt=\(amd?.parameter("npt") ?? "?") nrips=\(amd?.parameter("nrips") ?? "?"), KVM_CAP_NESTED_STATE=\(facts.nestedStateCapability)): runs nested-lab-runner"
    )
    info(
        name,
        "L2 = \(LabGuest.image.name), a guest hypervisor (EFER.SVME, VMRUN of vmcb_pa=\(log.fact("vmcb_pa").map(hex) ?? "?") asid=\(log.fact("asid") ?? 0))"
    )
    info(
        name,
        "L3 = its guest (l2_entered=\(log.fact("l2_entered") ?? 0), VMMCALL exit \(log.fact("exitcode").map(hex) ?? "?") with rax=\(log.fact("l2_rax").map(hex) ?? "?"); L1's KVM saw nested flags \(l3State?.flags.description ?? "?") while it ran)"
    )
    if !problems.isEmpty { throw LabFailure(problems.joined(separator: "; ")) }
}

/// Debugging: which saved MSRs a fresh vCPU refuses, and what it holds instead.
func debugMSRs() throws {
    let kvm = try KVM()
    let (snapshot, _, _) = try snapshotAtStop(0, kvm: kvm)
    let fresh = try LabGuest.machine(kvm: kvm)
    let state = snapshot.vcpus[0]
    try fresh.vcpu.setCPUID(state.cpuid)
    try fresh.vcpu.setSpecialRegisters(state.specialRegisters)
    for msr in state.msrs {
        let before = (try? fresh.vcpu.msrs([msr.index]).first?.value).map { hex($0) } ?? "unreadable"
        do {
            try fresh.vcpu.setMSRs([msr])
        } catch {
            say("msr \(hex(msr.index)) saved=\(hex(msr.value)) fresh=\(before): refused: \(error)")
        }
    }
    say("\(state.msrs.count) MSRs checked")
}
