extension Machine {
    /// What this machine can give a vCPU's CPUID: KVM_GET_SUPPORTED_CPUID,
    /// with x2APIC and (KVM_CAP_TSC_DEADLINE_TIMER) the TSC-deadline timer only
    /// where the in-kernel irqchip emulates the LAPIC, and the hypervisor bit.
    /// Every vCPU starts with it. The hypervisor bit is what tells a guest
    /// to look for the KVM leaves (40000000h: kvm-clock, PV EOI, …), as
    /// QEMU's CPU models always set it; kvmrun's own leaves (40000100h) tell
    /// the guest where it sits in a chain of VMs (`VMChain`).
    public func supportedCPUID() throws -> CPUID {
        try Machine.supportedCPUID(kvm: kvm, irqchip: hasIRQChip)
    }

    static func supportedCPUID(kvm: KVM, irqchip: Bool) throws -> CPUID {
        var table = try kvm.supportedCPUID()
        let apicBits = CPUFeatures.x2apic.mask | CPUFeatures.tscDeadline.mask
        table[1]?.ecx &= ~apicBits
        if irqchip {
            table[1]?.ecx |= CPUFeatures.x2apic.mask
            if kvm.check(.tscDeadlineTimer) != 0 { table[1]?.ecx |= CPUFeatures.tscDeadline.mask }
        }
        table[1]?.ecx |= CPUFeatures.hypervisor.mask
        if table[VMChain.signatureLeaf] == nil, table[0x4000_0000] != nil {
            table.entries += VMChain.forThisHostsGuests.cpuidEntries
        }
        return table
    }

    /// Gives every vCPU `model`'s CPUID (`CPUModel.apply`), each keeping its
    /// APIC ID. Call before the first run. Returns warnings: the named model's
    /// features KVM lacks, dropped as QEMU drops them. Nesting (`+vmx`/`+svm`)
    /// is `VCPU.enableNesting`'s, after this.
    @discardableResult
    public func apply(cpu model: CPUModel) throws -> [String] {
        let supported = try supportedCPUID()
        let warnings = model.missingModelFeatures(supported: supported).map {
            "\($0.word).\($0.name) [bit \($0.bit)]: KVM does not support this feature of the CPU model; it is dropped"
        }
        for vcpu in vcpus {
            var table = try model.apply(to: vcpu.cpuid(), supported: supported)
            table.setInitialAPICID(vcpu.id)
            try vcpu.setCPUID(table)
        }
        return model.enforce ? [] : warnings
    }
}
