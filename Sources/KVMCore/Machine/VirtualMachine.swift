import CKVM
import Glibc

/// A KVM VM: its guest memory, in-kernel devices and vCPUs (kvm-ioctls' `VmFd`).
public final class VirtualMachine {
    public let kvm: KVM
    let handle: FileHandle
    public let memory = GuestMemory()

    init(kvm: KVM, handle: FileHandle) {
        self.kvm = kvm
        self.handle = handle
    }

    /// Maps `size` bytes of fresh, zeroed RAM at `guestPhysical`.
    @discardableResult
    public func addMemory(at guestPhysical: UInt64, size: UInt64, logDirtyPages: Bool = false) throws -> MemoryRegion {
        try addMemory(at: guestPhysical, size: size, logDirtyPages: logDirtyPages, file: nil)
    }

    /// Maps `size` bytes of the file `fd` from `offset` (page aligned) at
    /// `guestPhysical`, copy-on-write: the guest sees the file's bytes (holes
    /// read as zeros), its writes stay in this process. Nothing is read up front,
    /// so the cost does not grow with `size`. `fd` may be closed afterwards.
    @discardableResult
    public func addMemory(at guestPhysical: UInt64, size: UInt64, mappingFile fd: Int32, offset: UInt64,
                          logDirtyPages: Bool = false) throws -> MemoryRegion {
        try addMemory(at: guestPhysical, size: size, logDirtyPages: logDirtyPages, file: (fd, offset))
    }

    private func addMemory(at guestPhysical: UInt64, size: UInt64, logDirtyPages: Bool,
                           file: (fd: Int32, offset: UInt64)?) throws -> MemoryRegion {
        let flags: UInt32 = logDirtyPages ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0
        return try memory.addRegion(at: guestPhysical, size: size, flags: flags, file: file) { region in
            var r = kvm_userspace_memory_region(slot: region.slot, flags: region.flags,
                                                guest_phys_addr: region.guestPhysical,
                                                memory_size: region.size,
                                                userspace_addr: UInt64(UInt(bitPattern: region.host)))
            try handle.ioctl(.setUserMemoryRegion, &r) { err in
                err == .EEXIST ? "slot \(region.slot) overlaps an existing KVM memory slot" : nil
            }
        }
    }

    /// PC RAM as QEMU lays it out: up to 3 GiB from 0, the rest from 4 GiB
    /// (the gap is the 32-bit PCI hole). With `file`, region i maps that file
    /// copy-on-write from `offsets[i]` (see `addMemory(at:size:mappingFile:offset:)`).
    public func addRAM(size: UInt64, logDirtyPages: Bool = false,
                       file: (fd: Int32, offsets: [UInt64])? = nil) throws {
        for (i, part) in PCLayout.ram(size: size).enumerated() {
            if let file {
                try addMemory(at: part.guestPhysical, size: part.size, mappingFile: file.fd,
                              offset: file.offsets[i], logDirtyPages: logDirtyPages)
            } else {
                try addMemory(at: part.guestPhysical, size: part.size, logDirtyPages: logDirtyPages)
            }
        }
    }

    /// KVM_CREATE_VCPU, mapped `kvm_run`, and by default the CPUID KVM supports.
    public func createVCPU(id: UInt32 = 0, cpuid: CPUID? = nil) throws -> VCPU {
        let vcpu = try createVCPUWithoutCPUID(id: id)
        var table = try cpuid ?? kvm.supportedCPUID()
        table.setInitialAPICID(id)
        try vcpu.setCPUID(table)
        return vcpu
    }

    /// KVM_CREATE_VCPU and the mapped `kvm_run`, CPUID left for the caller to set
    /// (a restore sets the saved one: KVM_SET_CPUID2 is costly, do it once).
    func createVCPUWithoutCPUID(id: UInt32) throws -> VCPU {
        let fd = try handle.ioctl(.createVCPU, value: UInt(id)) { err in
            err == .EINVAL ? "vCPU id \(id) is out of range (KVM_CAP_MAX_VCPU_ID = \(self.kvm.check(.maxVCPUID)))" : nil
        }
        return try VCPU(vm: self, id: id, handle: FileHandle(fd))
    }

    /// KVM_SET_TSS_ADDR: three pages KVM needs on Intel for real-mode emulation.
    public func setTSSAddress(_ address: UInt64) throws {
        try handle.ioctl(.setTSSAddr, value: UInt(address))
    }

    /// KVM_SET_IDENTITY_MAP_ADDR: one page for the EPT identity map on Intel.
    public func setIdentityMapAddress(_ address: UInt64) throws {
        var a = address
        try handle.ioctl(.setIdentityMapAddr, &a)
    }

    /// KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and LAPICs.
    public func createIRQChip() throws {
        try handle.ioctl(.createIRQChip, value: 0)
    }

    /// KVM_CREATE_PIT2: in-kernel i8254.
    public func createPIT2() throws {
        var config = kvm_pit_config()
        try handle.ioctl(.createPIT2, &config)
    }

    /// KVM_IRQ_LINE: raise or lower a GSI on the in-kernel irqchip.
    public func setIRQLine(_ irq: UInt32, level: Bool) throws {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = level ? 1 : 0
        try handle.ioctl(.irqLine, &line)
    }

    /// KVM_ENABLE_CAP on the VM.
    public func enable(_ capability: Capability, args: [UInt64] = []) throws {
        var cap = kvm_enable_cap()
        cap.cap = UInt32(capability.rawValue)
        withUnsafeMutableBytes(of: &cap.args) { raw in
            for (i, a) in args.prefix(4).enumerated() { raw.storeBytes(of: a, toByteOffset: i * 8, as: UInt64.self) }
        }
        try handle.ioctl(.enableCap, &cap)
    }

    /// KVM_GET_DIRTY_LOG for `region`: one bit per page written since the last call.
    public func dirtyLog(_ region: MemoryRegion) throws -> [UInt64] {
        let pages = Int(region.size / GuestMemory.pageSize)
        var bitmap = [UInt64](repeating: 0, count: (pages + 63) / 64)
        try bitmap.withUnsafeMutableBytes { raw in
            var log = kvm_dirty_log()
            log.slot = region.slot
            log.dirty_bitmap = raw.baseAddress
            try handle.ioctl(.getDirtyLog, &log) { err in
                err == .ENOENT ? "slot \(region.slot) was not created with dirty-page logging" : nil
            }
        }
        return bitmap
    }
}

/// Where things sit in a PC's guest-physical address space, as QEMU's `-M pc`
/// with KVM lays it out (so a multiboot memory map and fw_cfg agree with QEMU's).
public enum PCLayout {
    /// Below 3.5 GiB of RAM, all of it sits below 4 GiB ...
    public static let maxRAMBelow4G: UInt64 = 0xE000_0000
    /// ... from 3.5 GiB, RAM below 4 GiB stops at 3 GiB and the rest is above 4 GiB
    /// (pc_init1's gigabyte alignment); the gap is the 32-bit PCI hole.
    public static let lowMemoryLimit: UInt64 = 3 << 30
    public static let highMemoryStart: UInt64 = 4 << 30
    /// QEMU's kvm_arch_init: the EPT identity-map page for KVM_SET_IDENTITY_MAP_ADDR,
    /// then the three pages of KVM_SET_TSS_ADDR; 16 KiB reserved in the memory map.
    public static let identityMapAddress: UInt64 = 0xFEFF_C000
    public static let tssAddress: UInt64 = 0xFEFF_D000
    public static let identityMapReservedSize: UInt64 = 0x4000

    /// How `size` bytes of RAM split: (below 4 GiB, from 4 GiB).
    public static func ramSplit(_ size: UInt64) -> (low: UInt64, high: UInt64) {
        size >= maxRAMBelow4G ? (lowMemoryLimit, size - lowMemoryLimit) : (size, 0)
    }

    /// Where `size` bytes of RAM go: the low part from 0, the rest from 4 GiB.
    public static func ram(size: UInt64) -> [(guestPhysical: UInt64, size: UInt64)] {
        let (low, high) = ramSplit(size)
        return high > 0 ? [(UInt64(0), low), (highMemoryStart, high)] : [(UInt64(0), low)]
    }
}
