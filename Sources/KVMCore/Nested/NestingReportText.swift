extension NestingReport {
    /// The report for people: host, KVM, then the verdict with reasons, fixes, warnings.
    public var text: String {
        let f = facts
        let cpu = f.cpu
        var lines: [String] = []
        func row(_ name: String, _ value: String) { lines.append("  " + padded(name, 24) + value) }
        func yesNo(_ b: Bool) -> String { b ? "yes" : "no" }

        lines.append("Host")
        row("CPU", "\(cpu.vendorString) family \(cpu.family) model \(cpu.model) stepping \(cpu.stepping)")
        row("kernel", f.kernelRelease)
        row(
            "virtual machine",
            cpu.isVirtualMachine
                ? "yes, under \(cpu.hypervisorName ?? "an unknown hypervisor")"
                    + (cpu.hypervisorSignature.map { " (\($0))" } ?? "")
                : "no (bare metal)")
        if let chain = cpu.chain {
            let base = chain.base.isEmpty ? "hardware" : HostCPU.hypervisorNames[chain.base] ?? chain.base
            row("VM chain", "level \(chain.level) of a chain of VMs run by kvmrun; L0 is \(base)")
        }
        row("CPU shows", "vmx=\(yesNo(cpu.hasVMX)) svm=\(yesNo(cpu.hasSVM))")
        lines.append("KVM")
        if let error = f.kvmOpenError {
            row("/dev/kvm", "unusable: \(error)")
        } else {
            row("/dev/kvm", "open, API version \(f.apiVersion ?? 0)")
        }
        row("modules", f.modules.isEmpty ? "none loaded" : f.modules.map(\.name).joined(separator: ", "))
        for module in f.modules where module.name != "kvm" {
            let interesting = module.parameters.filter { NestingReport.interestingParameters.contains($0.0) }
            let shown = interesting.isEmpty ? module.parameters : interesting
            row("  \(module.name)", shown.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
        }
        if f.kvmOpenError == nil {
            row(
                "KVM_CAP_NESTED_STATE",
                f.nestedStateCapability == 0 ? "0 (no nested state)" : "\(f.nestedStateCapability) bytes")
            row("supported CPUID offers", "vmx=\(yesNo(f.supportedCPUIDHasVMX)) svm=\(yesNo(f.supportedCPUIDHasSVM))")
        }
        lines.append("Verdict: " + (isAvailable ? summary : "nested virtualization unavailable"))
        for (i, reason) in reasons.enumerated() {
            lines.append("  why:  \(reason)")
            if i < fixes.count { lines.append("  fix:  \(fixes[i])") }
        }
        for warning in warnings { lines.append("  note: \(warning)") }
        return lines.joined(separator: "\n")
    }

    /// Module parameters that matter for nesting (the kernel's running-nested-guests.rst).
    static let interestingParameters: Set<String> = [
        "nested", "ept", "npt", "enable_shadow_vmcs", "enable_apicv", "avic", "vgif", "nrips", "vls",
        "unrestricted_guest", "vnmi", "force", "pvm_native",
    ]
}

private func padded(_ s: String, _ width: Int) -> String {
    s + String(repeating: " ", count: max(1, width - s.count))
}
