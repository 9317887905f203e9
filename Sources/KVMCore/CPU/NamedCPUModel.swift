/// A CPU model QEMU names, as its `builtin_x86_defs` (target/i386/cpu.c,
/// QEMU 7.2, version 1 of each) define it: the feature bits, family, model,
/// stepping, maximum basic and extended leaves, and brand string.
///
/// Only models whose feature words lie wholly in `CPUFeatures`' table are
/// here (no VMX capability MSR sets, no cache descriptions): `qemu64`,
/// `qemu32`, `kvm64`, `kvm32`, `Conroe`, `Penryn`, `Nehalem`, `Westmere`.
/// `qemu64`'s definition has `svm`, which QEMU turns off under KVM; it is
/// left out here for the same reason. The vendor is not part of it: QEMU
/// under KVM keeps the host's (checked: `-cpu kvm64` on an AMD host says
/// AuthenticAMD).
public struct NamedCPUModel: Equatable, Sendable {
    /// QEMU's name ("Nehalem").
    public let name: String
    /// The maximum basic leaf.
    public let level: UInt32
    /// The maximum extended leaf.
    public let xlevel: UInt32
    /// CPUID family.
    public let family: UInt32
    /// CPUID model.
    public let model: UInt32
    /// CPUID stepping.
    public let stepping: UInt32
    /// The feature bits of each feature word.
    public let features: [CPUFeatureWord: UInt32]
    /// The brand string.
    public let modelID: String

    init(
        _ name: String, level: UInt32, xlevel: UInt32, family: UInt32, model: UInt32, stepping: UInt32,
        features: [String], modelID: String
    ) {
        self.name = name
        self.level = level
        self.xlevel = xlevel
        self.family = family
        self.model = model
        self.stepping = stepping
        self.modelID = modelID
        var words: [CPUFeatureWord: UInt32] = [:]
        for featureName in features {
            let feature = CPUFeatures.named(featureName)!
            words[feature.word, default: 0] |= feature.mask
        }
        self.features = words
    }

    /// Whether the model's definition has `feature`.
    public func has(_ feature: CPUFeature) -> Bool { (features[feature.word] ?? 0) & feature.mask != 0 }

    /// QEMU's PPRO_FEATURES.
    static let ppro = [
        "fpu", "de", "pse", "tsc", "msr", "mce", "cx8", "pge", "cmov", "pat",
        "fxsr", "mmx", "sse", "sse2", "pae", "sep", "apic",
    ]
    static let core = ppro + ["vme", "mtrr", "clflush", "mca", "pse36"]
    static let long = ["lm", "syscall", "nx"]

    /// Every model kvmrun knows.
    public static let all: [NamedCPUModel] = [
        NamedCPUModel(
            "qemu64", level: 0xD, xlevel: 0x8000_000A, family: 15, model: 107, stepping: 1,
            features: ppro + ["mtrr", "clflush", "mca", "pse36", "pni", "cx16", "lahf-lm"] + long,
            modelID: "QEMU Virtual CPU version 2.5+"),
        NamedCPUModel(
            "qemu32", level: 4, xlevel: 0x8000_0004, family: 6, model: 6, stepping: 3,
            features: ppro + ["pni"],
            modelID: "QEMU Virtual CPU version 2.5+"),
        NamedCPUModel(
            "kvm64", level: 0xD, xlevel: 0x8000_0008, family: 15, model: 6, stepping: 1,
            features: core + ["pni", "cx16"] + long,
            modelID: "Common KVM processor"),
        NamedCPUModel(
            "kvm32", level: 5, xlevel: 0x8000_0008, family: 15, model: 6, stepping: 1,
            features: core + ["pni"],
            modelID: "Common 32-bit KVM processor"),
        NamedCPUModel(
            "Conroe", level: 10, xlevel: 0x8000_0008, family: 6, model: 15, stepping: 3,
            features: core + ["ssse3", "pni", "lahf-lm"] + long,
            modelID: "Intel Celeron_4x0 (Conroe/Merom Class Core 2)"),
        NamedCPUModel(
            "Penryn", level: 10, xlevel: 0x8000_0008, family: 6, model: 23, stepping: 3,
            features: core + ["sse4.1", "cx16", "ssse3", "pni", "lahf-lm"] + long,
            modelID: "Intel Core 2 Duo P9xxx (Penryn Class Core 2)"),
        NamedCPUModel(
            "Nehalem", level: 11, xlevel: 0x8000_0008, family: 6, model: 26, stepping: 3,
            features: core + ["popcnt", "sse4.2", "sse4.1", "cx16", "ssse3", "pni", "lahf-lm"] + long,
            modelID: "Intel Core i7 9xx (Nehalem Class Core i7)"),
        NamedCPUModel(
            "Westmere", level: 11, xlevel: 0x8000_0008, family: 6, model: 44, stepping: 1,
            features: core + [
                "aes", "popcnt", "sse4.2", "sse4.1", "cx16", "ssse3", "pclmulqdq", "pni",
                "lahf-lm", "arat",
            ] + long,
            modelID: "Westmere E56xx/L56xx/X56xx (Nehalem-C)"),
    ]

    /// The names, for messages.
    public static var names: String { all.map(\.name).joined(separator: ", ") }
}
