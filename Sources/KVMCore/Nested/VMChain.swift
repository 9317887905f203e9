/// Where a machine sits in a chain of VMs, as kvmrun tells its guests through
/// two CPUID leaves of its own at 40000100h, past KVM's (40000000h): Linux
/// looks for KVM's signature from 40000000h in steps of 100h and finds KVM's
/// first, so kvm-clock and the other paravirtual features keep working.
///
/// - 40000100h: EAX = 40000101h (the last leaf), EBX/ECX/EDX = "swift-kvmrun";
/// - 40000101h: EAX = the guest's level (1: its hypervisor runs on hardware),
///   EBX/ECX/EDX = the signature of the hypervisor at the chain's bottom, L0
///   ("TCGTCGTCGTCG" for QEMU TCG; empty when kvmrun itself runs on hardware).
///
/// A kvmrun inside a guest reads them (`HostCPU.chain`) and tells its own
/// guests the next level. Below an unknown hypervisor the host counts as
/// level 1, as nothing shows what is under it.
public struct VMChain: Equatable, Sendable {
    /// CPUID 40000100h: the last leaf in EAX and the signature.
    public static let signatureLeaf: UInt32 = 0x4000_0100
    /// CPUID 40000101h: the level in EAX and L0's signature.
    public static let levelLeaf: UInt32 = 0x4000_0101
    /// The signature at `signatureLeaf` (EBX, ECX, EDX).
    public static let signature = "swift-kvmrun"

    /// The machine's level: 1 for a VM on hardware, 2 for a VM in a VM, …
    public let level: UInt32
    /// The bottom hypervisor's CPUID signature; empty for hardware (kvmrun at L0).
    public let base: String

    /// A chain position from its level and L0's signature.
    public init(level: UInt32, base: String) {
        self.level = level
        self.base = base
    }

    /// The chain a guest of a machine with CPU `host` is in: one level below
    /// the host's own level.
    public init(guestOf host: HostCPU) {
        if let chain = host.chain {
            self.init(level: chain.level + 1, base: chain.base)
        } else if host.isVirtualMachine {
            self.init(level: 2, base: host.hypervisorSignature ?? "")
        } else {
            self.init(level: 1, base: "")
        }
    }

    /// The chain of this process's guests, read once (each CPUID of a VM's
    /// host may trap to its hypervisor).
    public static let forThisHostsGuests = VMChain(guestOf: HostCPU.current())

    /// The two leaves that tell it.
    public var cpuidEntries: [CPUIDEntry] {
        [
            CPUIDEntry(function: Self.signatureLeaf, eax: Self.levelLeaf, signature: Self.signature),
            CPUIDEntry(function: Self.levelLeaf, eax: level, signature: base),
        ]
    }

    /// Reads the leaves through `cpuid`; nil when 40000100h does not carry the signature.
    init?(cpuid: (UInt32, UInt32) -> (eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32)) {
        let sig = cpuid(Self.signatureLeaf, 0)
        guard fourCC(sig.ebx) + fourCC(sig.ecx) + fourCC(sig.edx) == Self.signature, sig.eax >= Self.levelLeaf else {
            return nil
        }
        let leaf = cpuid(Self.levelLeaf, 0)
        self.init(level: leaf.eax, base: fourCC(leaf.ebx) + fourCC(leaf.ecx) + fourCC(leaf.edx))
    }
}
