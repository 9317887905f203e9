import Glibc
import KVMCore

// Checks of what kvmrun printed inside the lab (the init script runs kvmrun and
// hands its output file and exit status here): tests 1–3.

private func readOutput(_ path: String) throws -> String {
    do {
        return String(decoding: try Files.read(path, limit: 64 << 20), as: UTF8.self)
    } catch {
        throw LabFailure("cannot read kvmrun's output: \(error)")
    }
}

/// Test 1: `kvmrun host --json`: nested SVM available, KVM_CAP_NESTED_STATE = 4224,
/// and the host (the lab's L1) is itself a QEMU TCG guest.
func checkHost(output path: String, status: Int32) throws {
    let name = "host"
    let text = try readOutput(path)
    let json: JSONValue
    do { json = try JSONValue(parsing: text) } catch { throw LabFailure("kvmrun host --json is not JSON: \(error)") }
    let available = json["verdict"]?["available"]?.boolValue
    let technology = json["verdict"]?["technology"]?.stringValue
    let capability = json["kvm"]?["nested_state_capability"]?.int64Value
    let signature = json["host"]?["hypervisor_signature"]?.stringValue
    let virtualMachine = json["host"]?["virtual_machine"]?.boolValue
    let vendor = json["host"]?["vendor"]?.stringValue
    let modules = json["kvm"]?["modules"]?.arrayValue ?? []
    let amd = modules.first { $0["name"]?.stringValue == "kvm_amd" }
    let nested = amd?["parameters"]?["nested"]?.stringValue
    let summary = json["verdict"]?["summary"]?.stringValue ?? "?"
    info(name, "verdict: \(summary)")
    info(
        name,
        "vendor=\(vendor ?? "?") virtual_machine=\(virtualMachine.map { "\($0)" } ?? "?") hypervisor_signature=\(signature ?? "none") kvm_amd nested=\(nested ?? "?") nested_state_capability=\(capability.map { "\($0)" } ?? "?")"
    )
    for warning in json["verdict"]?["warnings"]?.arrayValue ?? [] {
        info(name, "warning: \(warning.stringValue ?? "")")
    }
    var problems: [String] = []
    if status != 0 { problems.append("kvmrun host exited \(status), expected 0") }
    if available != true { problems.append("verdict.available is not true (\(summary))") }
    if technology != "SVM" { problems.append("verdict.technology is \(technology ?? "null"), expected SVM") }
    if capability != 4224 {
        problems.append("kvm.nested_state_capability is \(capability.map { "\($0)" } ?? "null"), expected 4224")
    }
    if virtualMachine != true || signature != "TCGTCGTCGTCG" {
        problems.append(
            "host.hypervisor_signature is \(signature ?? "null"), expected TCGTCGTCGTCG (L1 runs under QEMU TCG)")
    }
    if amd?["hardware"]?.boolValue != true { problems.append("kvm.modules has no hardware kvm_amd") }
    if nested != "1" && nested != "Y" { problems.append("kvm_amd nested=\(nested ?? "absent"), expected 1") }
    if !problems.isEmpty { throw LabFailure(problems.joined(separator: "; ")) }
}

/// Test 2: `kvmrun probe`: exit 0, the enable probe's VMRUN and the SVM L2
/// launcher (VMMCALL exit 0x81 with L2's RAX) succeed.
func checkProbe(output path: String, status: Int32) throws {
    let name = "probe"
    let text = try readOutput(path)
    let lines = text.split(separator: "\n")
    for line in lines where line.hasPrefix("probe ") || line.hasPrefix("verdict") || line.hasPrefix("nested-state") {
        info(name, String(line))
    }
    var problems: [String] = []
    if status != 0 { problems.append("kvmrun probe exited \(status), expected 0") }
    let vmruns = lines.filter { $0.hasPrefix("probe vmrun=ok ") && keyValues($0)["exitcode"] == "0x81" }
    if vmruns.count < 2 {
        problems.append(
            "\(vmruns.count) 'probe vmrun=ok exitcode=0x81' lines, expected 2 (nested-enable and nested-svm-l2)")
    }
    if !vmruns.contains(where: { keyValues($0)["l2_rax"] == "0x12345678" }) {
        problems.append("no launcher line with l2_rax=0x12345678")
    }
    if !lines.contains(where: { $0.hasPrefix("probe efer_svme=ok") }) {
        problems.append("no 'probe efer_svme=ok' (nested-enable)")
    }
    if !lines.contains(where: { $0 == "l2 entered" }) { problems.append("L2 never printed 'l2 entered'") }
    if !lines.contains(where: { $0.hasPrefix("verdict: nested virtualization works") }) {
        problems.append("no 'verdict: nested virtualization works' line")
    }
    if lines.contains(where: { $0.contains(" exception ") || $0.hasPrefix("probe exception") }) {
        problems.append("a probe guest took an exception")
    }
    if !problems.isEmpty { throw LabFailure(problems.joined(separator: "; ")) }
}

/// Test 3: `kvmrun nested-state --builtin nested-svm-l2 --json`: the dump taken
/// while L2 runs (HC_DUMP_NESTED) is GUEST_MODE|GIF_SET, format svm, and its
/// decoded vmcb12 agrees with what the guest reported on serial.
func checkNestedDump(output path: String, status: Int32) throws {
    let name = "nested-state-dump"
    let text = try readOutput(path)
    let lines = text.split(separator: "\n")
    var problems: [String] = []
    if status != 0 { problems.append("kvmrun nested-state exited \(status), expected 0") }
    guard let svmLine = lines.first(where: { $0.hasPrefix("svm vmcb_pa=") }) else {
        throw LabFailure("the guest never printed its 'svm vmcb_pa=…' line")
    }
    let guest = keyValues(svmLine)
    info(name, "guest: \(svmLine)")
    var dumps: [JSONValue] = []
    for line in lines where line.hasPrefix("{") {
        do { dumps.append(try JSONValue(parsing: String(line))) } catch {
            throw LabFailure("a JSON line does not parse: \(error)")
        }
    }
    guard let request = dumps.first(where: { $0["trigger"]?.stringValue == "request" }), let state = request["state"]
    else {
        throw LabFailure("no dump with trigger 'request' (HC_DUMP_NESTED from L2); \(dumps.count) dumps")
    }
    let flags = (state["flags"]?["names"]?.arrayValue ?? []).compactMap(\.stringValue)
    let format = state["format"]?["name"]?.stringValue
    let svm = state["svm"]
    let control = svm?["vmcb"]?["control"]
    let save = svm?["vmcb"]?["save"]
    func field(_ object: JSONValue?, _ key: String) -> UInt64? { number(object?[key]?.stringValue) }
    let vmcbPA = number(svm?["vmcb_pa"]?.stringValue)
    let asid = field(control, "asid")
    let misc1 = field(control, "intercept_misc1")
    let misc2 = field(control, "intercept_misc2")
    let intercept = misc1.flatMap { a in misc2.map { b in a | b << 32 } }
    let l1EFER = field(save, "efer")
    info(
        name,
        "dump (request): flags=\(flags.joined(separator: "|")) format=\(format ?? "?") size=\(state["size"]?.int64Value ?? -1) vmcb_pa=\(vmcbPA.map(hex) ?? "?") asid=\(asid.map { "\($0)" } ?? "?") intercept=\(intercept.map(hex) ?? "?") l1.efer=\(l1EFER.map(hex) ?? "?") l1.rip=\(field(save, "rip").map(hex) ?? "?")"
    )
    if !flags.contains("GUEST_MODE") || !flags.contains("GIF_SET") {
        problems.append("flags are \(flags.joined(separator: "|")), expected GUEST_MODE|GIF_SET while L2 runs")
    }
    if format != "svm" { problems.append("format is \(format ?? "null"), expected svm") }
    if state["size"]?.int64Value != 4224 {
        problems.append("size is \(state["size"]?.int64Value ?? -1), expected 4224")
    }
    func compare(_ what: String, _ dumped: UInt64?, _ reported: String?) {
        guard let r = number(reported) else {
            problems.append("the guest did not report \(what)")
            return
        }
        if dumped != r {
            problems.append("\(what): dump says \(dumped.map(hex) ?? "null"), the guest reported \(hex(r))")
        }
    }
    compare("vmcb_pa", vmcbPA, guest["vmcb_pa"])
    compare("asid", asid, guest["asid"])
    compare("intercept (misc1|misc2<<32)", intercept, guest["intercept"])
    compare("L1 EFER (vmcb12 save area; the guest gave L2 its own EFER)", l1EFER, guest["efer"])
    if let efer = l1EFER, efer & (1 << 12) == 0 { problems.append("L1 EFER \(hex(efer)) in the dump lacks SVME") }
    if let last = dumps.last(where: { $0["trigger"]?.stringValue == "exit" }) {
        let exitFlags = (last["state"]?["flags"]?["names"]?.arrayValue ?? []).compactMap(\.stringValue)
        info(name, "dump (exit): flags=\(exitFlags.isEmpty ? "0" : exitFlags.joined(separator: "|"))")
        if exitFlags.contains("GUEST_MODE") { problems.append("the exit dump still says GUEST_MODE") }
    } else {
        problems.append("no dump at exit")
    }
    if !lines.contains(where: { $0.hasPrefix("probe vmrun=ok exitcode=0x81") }) {
        problems.append("the guest did not finish its VMRUN")
    }
    if !problems.isEmpty { throw LabFailure(problems.joined(separator: "; ")) }
}
