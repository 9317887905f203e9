extension Machine {
    /// QEMU's `-M pc` with KVM as a `-kernel` boot starts it: `memorySize`
    /// bytes of RAM, `cpus` vCPUs, and the in-kernel irqchip (PIC, IOAPIC,
    /// LAPICs) and PIT. Then set CPUID (`apply(cpu:)`, nesting) and boot a
    /// kernel with `bootLinux(kernel:initrd:commandLine:)` or
    /// `bootMultiboot(kernel:commandLine:modules:)`, which attach the PC's
    /// devices and, for Linux, its ACPI tables:
    ///
    ///     let pc = try Machine.pc(memorySize: 256 << 20, cpus: 2)
    ///     try pc.bootLinux(kernel: bzImage, initrd: initramfs, commandLine: "console=ttyS0")
    ///     let stop = try pc.run()
    ///
    /// `logDirtyPages` as for `init`: a machine reset to a snapshot again and
    /// again (boot once, reset per test) copies back only the pages written.
    public static func pc(memorySize: UInt64, cpus: Int = 1, serial: OutputSink = .buffer,
                          kvm: KVM? = nil, logDirtyPages: Bool = false) throws -> Machine {
        try Machine(memorySize: memorySize, vcpus: cpus, irqchip: true, serial: serial, kvm: kvm,
                    logDirtyPages: logDirtyPages)
    }
}
