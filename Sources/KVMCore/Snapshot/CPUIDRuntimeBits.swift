extension CPUID {
    /// This table less the bits KVM rewrites whenever the vCPU's state changes
    /// (kvm_update_cpuid_runtime): CPUID.1:ECX.OSXSAVE (CR4.OSXSAVE),
    /// CPUID.1:EDX.APIC (IA32_APIC_BASE's enable bit), CPUID.7.0:ECX.OSPKE
    /// (CR4.PKE) and leaf 0xD's XSAVE sizes in EBX (XCR0, XSS). A snapshot's
    /// CPUID and a vCPU's are the same CPUID when these two agree: KVM derives
    /// the rest again from the state a restore or reset writes. (A snapshot
    /// taken while the vCPU ran a nested guest holds that guest's CR4 bits.)
    var lessRuntimeBits: CPUID {
        var table = self
        for i in table.entries.indices {
            let entry = table.entries[i]
            switch (entry.function, entry.index) {
            case (1, _):
                table.entries[i].ecx &= ~(1 << 27)
                table.entries[i].edx &= ~(1 << 9)
            case (7, 0):
                table.entries[i].ecx &= ~(1 << 4)
            case (0xD, 0), (0xD, 1):
                table.entries[i].ebx = 0
            default:
                break
            }
        }
        return table
    }
}
