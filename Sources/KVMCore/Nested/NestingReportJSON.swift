extension NestingReport {
    /// The report as JSON; the schema is Docs/host-report-schema.md (stable: fields
    /// are only ever added).
    package var json: JSONValue {
        let f = facts
        let cpu = f.cpu
        let kvm: JSONValue = .object([
            ("usable", .bool(f.kvmOpenError == nil)),
            ("error", f.kvmOpenError.map(JSONValue.string) ?? .null),
            ("api_version", f.apiVersion.map { .int(Int64($0)) } ?? .null),
            ("nested_state_capability", .int(Int64(f.nestedStateCapability))),
            (
                "supported_cpuid",
                .object([
                    ("vmx", .bool(f.supportedCPUIDHasVMX)),
                    ("svm", .bool(f.supportedCPUIDHasSVM)),
                ])
            ),
            (
                "modules",
                .array(
                    f.modules.map { module in
                        .object([
                            ("name", .string(module.name)),
                            ("hardware", .bool(module.isHardwareVendorModule)),
                            ("parameters", .object(module.parameters.map { ($0.0, .string($0.1)) })),
                        ])
                    })
            ),
        ])
        return .object([
            ("schema", .string("swift-kvm/host-report/1")),
            (
                "verdict",
                .object([
                    ("available", .bool(isAvailable)),
                    ("technology", isAvailable ? technology.map { .string($0.rawValue) } ?? .null : .null),
                    ("summary", .string(summary)),
                    ("reasons", .array(reasons.map(JSONValue.string))),
                    ("fixes", .array(fixes.map(JSONValue.string))),
                    ("warnings", .array(warnings.map(JSONValue.string))),
                ])
            ),
            (
                "host",
                .object([
                    ("vendor", .string(cpu.vendorString)),
                    ("family", .int(Int64(cpu.family))),
                    ("model", .int(Int64(cpu.model))),
                    ("stepping", .int(Int64(cpu.stepping))),
                    ("kernel", .string(f.kernelRelease)),
                    ("virtual_machine", .bool(cpu.isVirtualMachine)),
                    ("hypervisor_signature", cpu.hypervisorSignature.map(JSONValue.string) ?? .null),
                    ("hypervisor", cpu.hypervisorName.map(JSONValue.string) ?? .null),
                    (
                        "chain",
                        cpu.chain.map {
                            .object([("level", .int(Int64($0.level))), ("base_signature", .string($0.base))])
                        }
                            ?? .null
                    ),
                    ("vmx", .bool(cpu.hasVMX)),
                    ("svm", .bool(cpu.hasSVM)),
                ])
            ),
            ("kvm", kvm),
        ])
    }
}
