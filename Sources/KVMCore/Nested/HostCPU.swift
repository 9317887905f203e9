import CKVM

/// What the host CPU says about itself through CPUID: vendor, model, whether it
/// is itself a virtual machine, and whether it shows VMX or SVM.
public struct HostCPU: Equatable, Sendable {
    /// The CPU vendor, from the CPUID leaf 0 string.
    public enum Vendor: String, Sendable {
        /// "GenuineIntel".
        case intel = "GenuineIntel"
        /// "AuthenticAMD".
        case amd = "AuthenticAMD"
        /// Any other vendor string.
        case other
    }

    /// CPUID leaf 0's vendor string ("GenuineIntel", "AuthenticAMD", …).
    public let vendorString: String
    /// Display family (CPUID.1:EAX, extended family added).
    public let family: UInt32
    /// Display model (CPUID.1:EAX, extended model added).
    public let model: UInt32
    /// Stepping (CPUID.1:EAX[3:0]).
    public let stepping: UInt32
    /// CPUID.1:ECX[31]: set when the OS runs under a hypervisor.
    public let isVirtualMachine: Bool
    /// The hypervisor's signature at leaf 0x40000000 ("KVMKVMKVM", "TCGTCGTCGTCG", …).
    public let hypervisorSignature: String?
    /// CPUID.1:ECX[5].
    public let hasVMX: Bool
    /// CPUID.80000001h:ECX[2].
    public let hasSVM: Bool
    /// Where this machine sits in a chain of VMs, when its hypervisor is
    /// kvmrun and says so (`VMChain`'s leaves).
    public let chain: VMChain?

    /// The vendor, `.other` for any string but Intel's and AMD's.
    public var vendor: Vendor { Vendor(rawValue: vendorString) ?? .other }

    /// A person's name for the hypervisor under this host, from its signature.
    public var hypervisorName: String? {
        guard let signature = hypervisorSignature else { return nil }
        return HostCPU.hypervisorNames[signature] ?? signature
    }

    static let hypervisorNames = [
        "KVMKVMKVM": "KVM", "Linux KVM Hv": "KVM (Hyper-V enlightenments)", "Microsoft Hv": "Hyper-V",
        "VMwareVMware": "VMware", "XenVMMXenVMM": "Xen", "TCGTCGTCGTCG": "QEMU TCG (emulation)",
        "VBoxVBoxVBox": "VirtualBox", "bhyve bhyve ": "bhyve", "ACRNACRNACRN": "ACRN", " lrpepyh  vr": "Parallels",
    ]

    /// Reads the CPU this code runs on.
    public static func current() -> HostCPU {
        HostCPU(cpuid: { leaf, sub in
            var r: [UInt32] = [0, 0, 0, 0]
            ckvm_cpuid(leaf, sub, &r)
            return (r[0], r[1], r[2], r[3])
        })
    }

    /// Decodes the facts from a CPUID function (the host's, or a table's in tests).
    public init(cpuid: (UInt32, UInt32) -> (eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32)) {
        let leaf0 = cpuid(0, 0)
        vendorString = fourCC(leaf0.ebx) + fourCC(leaf0.edx) + fourCC(leaf0.ecx)
        let leaf1 = leaf0.eax >= 1 ? cpuid(1, 0) : (eax: 0, ebx: 0, ecx: 0, edx: 0)
        let baseFamily = (leaf1.eax >> 8) & 0xF
        let baseModel = (leaf1.eax >> 4) & 0xF
        family = baseFamily == 0xF ? baseFamily + ((leaf1.eax >> 20) & 0xFF) : baseFamily
        model = baseFamily == 0x6 || baseFamily == 0xF ? baseModel | ((leaf1.eax >> 12) & 0xF0) : baseModel
        stepping = leaf1.eax & 0xF
        isVirtualMachine = leaf1.ecx & (1 << 31) != 0
        hasVMX = leaf1.ecx & (1 << 5) != 0
        if isVirtualMachine {
            let hv = cpuid(0x4000_0000, 0)
            let signature = fourCC(hv.ebx) + fourCC(hv.ecx) + fourCC(hv.edx)
            hypervisorSignature = signature.isEmpty ? nil : signature
            chain = VMChain(cpuid: cpuid)
        } else {
            hypervisorSignature = nil
            chain = nil
        }
        let maxExtended = cpuid(0x8000_0000, 0).eax
        hasSVM = maxExtended >= 0x8000_0001 && cpuid(0x8000_0001, 0).ecx & (1 << 2) != 0
    }
}
