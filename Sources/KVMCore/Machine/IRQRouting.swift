import CKVM

extension IOCtl {
    static let setGSIRouting = IOCtl("KVM_SET_GSI_ROUTING", CKVM_SET_GSI_ROUTING)
}

extension VirtualMachine {
    /// QEMU's PC interrupt routing (kvm_pc_setup_irq_routing): GSIs 0–7 but 2 to
    /// the master PIC, 8–15 to the slave, and every GSI but 2 to the IOAPIC pin of
    /// the same number — except GSI 0, the PIT, which goes to IOAPIC pin 2, as the
    /// ACPI interrupt override of a PC says. KVM's default routing sends it to pin 0.
    public func setPCInterruptRouting() throws {
        var routes: [(gsi: UInt32, chip: UInt32, pin: UInt32)] = []
        for gsi in UInt32(0)..<8 where gsi != 2 { routes.append((gsi, UInt32(KVM_IRQCHIP_PIC_MASTER), gsi)) }
        for gsi in UInt32(8)..<16 { routes.append((gsi, UInt32(KVM_IRQCHIP_PIC_SLAVE), gsi - 8)) }
        for gsi in UInt32(0)..<24 where gsi != 2 {
            routes.append((gsi, UInt32(KVM_IRQCHIP_IOAPIC), gsi == 0 ? 2 : gsi))
        }
        let header = MemoryLayout<kvm_irq_routing>.size
        let stride = MemoryLayout<kvm_irq_routing_entry>.stride
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: header + stride * routes.count, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: header + stride * routes.count)
        buffer.assumingMemoryBound(to: kvm_irq_routing.self).pointee.nr = UInt32(routes.count)
        for (i, route) in routes.enumerated() {
            var entry = kvm_irq_routing_entry()
            entry.gsi = route.gsi
            entry.type = UInt32(KVM_IRQ_ROUTING_IRQCHIP)
            entry.u.irqchip.irqchip = route.chip
            entry.u.irqchip.pin = route.pin
            buffer.storeBytes(of: entry, toByteOffset: header + i * stride, as: kvm_irq_routing_entry.self)
        }
        try handle.ioctl(.setGSIRouting, buffer)
    }
}
