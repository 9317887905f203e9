import Glibc

/// "Is nesting really on here?" — the host's answer, with the reason and the fix
/// when it is not. Built from facts gathered once (`NestingFacts`), so the
/// verdict logic is a pure function tests can feed any host.
public struct NestingReport: Sendable {
    /// Intel's VMX or AMD's SVM.
    public enum Technology: String, Sendable {
        /// Intel VMX.
        case vmx = "VMX"
        /// AMD SVM.
        case svm = "SVM"
    }

    /// Whether a guest here can run its own hypervisor.
    public enum Verdict: Equatable, Sendable {
        /// Nesting works, with this technology.
        case available(Technology)
        /// Nesting does not work; `reasons` says why.
        case unavailable
    }

    /// What the verdict was decided from.
    public let facts: NestingFacts
    /// The answer.
    public let verdict: Verdict
    /// Why nesting is unavailable, most fundamental first; empty when available.
    public let reasons: [String]
    /// What to do about each reason, as the kernel documentation says.
    public let fixes: [String]
    /// True but worth knowing, whatever the verdict.
    public let warnings: [String]

    /// The technology this host's vendor would nest with.
    public var technology: Technology? {
        switch facts.cpu.vendor {
        case .intel: .vmx
        case .amd: .svm
        case .other: nil
        }
    }

    /// Whether the verdict is `.available`.
    public var isAvailable: Bool { if case .available = verdict { true } else { false } }

    /// One line: the verdict and, when unavailable, the first reason.
    public var summary: String {
        switch verdict {
        case .available(let tech): "nested virtualization available (\(tech.rawValue))"
        case .unavailable: "nested virtualization unavailable: " + (reasons.first ?? "unknown reason")
        }
    }

    /// Decides the verdict, reasons, fixes and warnings from `facts`.
    public init(facts: NestingFacts) {
        self.facts = facts
        var reasons: [String] = []
        var fixes: [String] = []
        var warnings: [String] = []
        let cpu = facts.cpu
        let tech: Technology? = cpu.vendor == .intel ? .vmx : cpu.vendor == .amd ? .svm : nil
        let vendorModule = facts.modules.first { $0.isHardwareVendorModule }
        let otherModules = facts.modules.filter { $0.name != "kvm" && !$0.isHardwareVendorModule }
        let moduleName = tech == .svm ? "kvm_amd" : "kvm_intel"

        if let error = facts.kvmOpenError {
            reasons.append("/dev/kvm is not usable: \(error)")
            fixes.append(
                "load KVM (modprobe \(moduleName)), enable virtualization in firmware, and check /dev/kvm's permissions"
            )
        }
        if vendorModule == nil {
            if let other = otherModules.first {
                reasons.append(
                    "host KVM is \(other.name), not kvm_intel or kvm_amd: it is not backed by hardware VMX/SVM, so a guest cannot run its own hypervisor"
                )
                fixes.append(
                    "run on a host whose KVM is kvm_intel or kvm_amd, or use a software L0 (QEMU TCG -cpu max with kvm_amd nested=1: see the nested lab)"
                )
            } else if facts.kvmOpenError == nil {
                reasons.append("neither kvm_intel nor kvm_amd is loaded")
                fixes.append("modprobe \(moduleName) nested=1")
            }
        }
        if !cpu.hasVMX && !cpu.hasSVM {
            if cpu.isVirtualMachine {
                reasons.append(
                    "this host is itself a virtual machine (under \(cpu.hypervisorName ?? "an unknown hypervisor")) and its CPU does not show VMX or SVM"
                )
                fixes.append(
                    "on the L0 host, enable nesting (options \(moduleName.replacingUnderscoresWithDashes) nested=1) and start this VM with -cpu host, or a named model with \(tech == .svm ? "svm=on" : "vmx=on") (libvirt: <cpu mode='host-passthrough'/> or host-model)"
                )
            } else {
                reasons.append("the CPU shows neither VMX nor SVM: unsupported, or disabled in firmware")
                fixes.append("enable Intel VT-x or AMD-V (SVM) in the firmware setup")
            }
        }
        if let module = vendorModule, module.flag("nested") != true {
            let value = module.parameter("nested") ?? "absent"
            let dashed = module.name.replacingUnderscoresWithDashes
            reasons.append("\(module.name) is loaded with nested=\(value)")
            fixes.append(
                "echo 'options \(dashed) nested=1' > /etc/modprobe.d/\(module.name).conf, then modprobe -r \(module.name) && modprobe \(module.name) (or reboot)"
            )
        }
        if let tech, facts.kvmOpenError == nil, reasons.isEmpty {
            let offered = tech == .vmx ? facts.supportedCPUIDHasVMX : facts.supportedCPUIDHasSVM
            if !offered {
                reasons.append("KVM_GET_SUPPORTED_CPUID does not offer \(tech.rawValue) to guests")
                fixes.append("check dmesg for why \(moduleName) disabled nesting")
            }
        }
        if tech == nil && reasons.isEmpty {
            reasons.append("unknown CPU vendor \(cpu.vendorString): only Intel VMX and AMD SVM nest")
        }

        if facts.kvmOpenError == nil && facts.nestedStateCapability == 0 {
            warnings.append(
                "KVM_CAP_NESTED_STATE = 0: nested state cannot be saved, restored or migrated (KVM_GET/SET_NESTED_STATE fail with EINVAL)"
            )
        }
        if vendorModule == nil, let other = otherModules.first, facts.kvmOpenError == nil {
            warnings.append(
                "/dev/kvm works here, so guests run, but \(other.name) is not hardware KVM: do not mistake running guests for nested KVM (running-nested-guests.rst: check you run KVM on KVM, not emulation)"
            )
        }
        if cpu.hypervisorSignature == "TCGTCGTCGTCG" {
            warnings.append(
                "L0 is QEMU TCG: the virtualization this host offers is emulated, so its guests are nested on an emulator, not on hardware KVM (slow, but real KVM code paths)"
            )
        }
        if reasons.isEmpty, tech != nil, cpu.isVirtualMachine {
            warnings.append(
                "this host is a VM (L1 of \(cpu.hypervisorName ?? "its hypervisor")): its guests are L2, and a hypervisor inside them runs L3"
            )
        }
        if let module = vendorModule, tech == .svm, module.flag("nrips") == false {
            warnings.append("kvm_amd nrips=0 (next-RIP save unavailable): nested guests work, a little slower")
        }

        self.verdict = reasons.isEmpty && tech != nil ? .available(tech!) : .unavailable
        self.reasons = reasons
        self.fixes = fixes
        self.warnings = warnings
    }
}

/// Everything the nesting verdict is decided from.
public struct NestingFacts: Sendable {
    /// The host CPU as CPUID shows it.
    public var cpu: HostCPU
    /// The loaded KVM modules and their parameters.
    public var modules: [KVMModule]
    /// `uname -r`.
    public var kernelRelease: String
    /// Why /dev/kvm could not be opened; nil when it could.
    public var kvmOpenError: String?
    /// KVM_GET_API_VERSION; nil when /dev/kvm could not be opened.
    public var apiVersion: Int?
    /// KVM_CAP_NESTED_STATE (0: no nested state support).
    public var nestedStateCapability: Int
    /// KVM_GET_SUPPORTED_CPUID offers VMX to guests.
    public var supportedCPUIDHasVMX: Bool
    /// KVM_GET_SUPPORTED_CPUID offers SVM to guests.
    public var supportedCPUIDHasSVM: Bool
    /// KVM_GET_SUPPORTED_CPUID offers the hypervisor bit (CPUID.1:ECX[31]).
    public var supportedCPUIDHasHypervisorBit: Bool

    /// Facts from their values (tests feed any host this way).
    public init(
        cpu: HostCPU, modules: [KVMModule], kernelRelease: String, kvmOpenError: String?,
        apiVersion: Int?, nestedStateCapability: Int,
        supportedCPUIDHasVMX: Bool, supportedCPUIDHasSVM: Bool, supportedCPUIDHasHypervisorBit: Bool = false
    ) {
        self.cpu = cpu
        self.modules = modules
        self.kernelRelease = kernelRelease
        self.kvmOpenError = kvmOpenError
        self.apiVersion = apiVersion
        self.nestedStateCapability = nestedStateCapability
        self.supportedCPUIDHasVMX = supportedCPUIDHasVMX
        self.supportedCPUIDHasSVM = supportedCPUIDHasSVM
        self.supportedCPUIDHasHypervisorBit = supportedCPUIDHasHypervisorBit
    }

    /// Gathers the facts of this host: CPUID, /sys/module, uname, and /dev/kvm if it opens.
    public static func gather(kvmPath: String = "/dev/kvm") -> NestingFacts {
        var facts = NestingFacts(
            cpu: .current(), modules: KVMModule.loaded(), kernelRelease: currentKernelRelease(),
            kvmOpenError: nil, apiVersion: nil, nestedStateCapability: 0,
            supportedCPUIDHasVMX: false, supportedCPUIDHasSVM: false)
        do {
            let kvm = try KVM(path: kvmPath)
            facts.apiVersion = Int(KVM.apiVersion)
            facts.nestedStateCapability = kvm.check(.nestedState)
            if let cpuid = try? kvm.supportedCPUID() {
                facts.supportedCPUIDHasVMX = (cpuid[1]?.ecx ?? 0) & (1 << 5) != 0
                facts.supportedCPUIDHasSVM = (cpuid[0x8000_0001]?.ecx ?? 0) & (1 << 2) != 0
                facts.supportedCPUIDHasHypervisorBit = (cpuid[1]?.ecx ?? 0) & (1 << 31) != 0
            }
        } catch {
            facts.kvmOpenError = "\(error)"
        }
        return facts
    }
}

extension KVM {
    /// The nesting report for this host.
    public func nestingReport() -> NestingReport {
        NestingReport(facts: .gather(kvmPath: path))
    }
}

/// `uname -r`.
func currentKernelRelease() -> String {
    var name = utsname()
    uname(&name)
    return withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

extension String {
    var replacingUnderscoresWithDashes: String { String(map { $0 == "_" ? "-" : $0 }) }
}
