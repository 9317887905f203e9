/// A CPUID output register.
public enum CPUIDRegister: String, Sendable, CaseIterable {
    /// EAX, EBX, ECX, EDX.
    case eax, ebx, ecx, edx
}

extension CPUIDEntry {
    /// One of the entry's four output registers.
    public subscript(register: CPUIDRegister) -> UInt32 {
        get {
            switch register {
            case .eax: eax
            case .ebx: ebx
            case .ecx: ecx
            case .edx: edx
            }
        }
        set {
            switch register {
            case .eax: eax = newValue
            case .ebx: ebx = newValue
            case .ecx: ecx = newValue
            case .edx: edx = newValue
            }
        }
    }
}

/// A 32-bit CPUID register that holds feature bits: QEMU's "feature word".
public struct CPUFeatureWord: Hashable, Sendable, CustomStringConvertible {
    /// The CPUID leaf (EAX input).
    public let leaf: UInt32
    /// The subleaf (ECX input); 0 where the leaf has none.
    public let subleaf: UInt32
    /// The output register.
    public let register: CPUIDRegister
    /// A feature word from its leaf, subleaf and register.
    public init(leaf: UInt32, subleaf: UInt32 = 0, register: CPUIDRegister) {
        self.leaf = leaf
        self.subleaf = subleaf
        self.register = register
    }
    /// As QEMU writes it in its warnings: `CPUID.01H:ECX`, `CPUID.07H_0H:EBX`.
    public var description: String {
        let hexLeaf = String(leaf, radix: 16, uppercase: true)
        let leafText = leaf < 0x10 ? "0" + hexLeaf : hexLeaf
        let indexed = leaf == 7 || leaf == 0xD
        return "CPUID.\(leafText)H\(indexed ? "_\(subleaf)H" : ""):\(register.rawValue.uppercased())"
    }
}

/// A named CPUID feature bit, as QEMU's `-cpu` spells it (`feature_word_info`
/// in QEMU's target/i386/cpu.c).
public struct CPUFeature: Hashable, Sendable, CustomStringConvertible {
    /// QEMU's canonical name (with '-', e.g. `tsc-deadline`, `sse4.1`).
    public let name: String
    /// The register that holds the bit.
    public let word: CPUFeatureWord
    /// The bit number (0–31).
    public let bit: UInt32
    /// `1 << bit`.
    public var mask: UInt32 { 1 << bit }
    /// The name.
    public var description: String { name }

    /// Whether the bit is set in `table`.
    public func isSet(in table: CPUID) -> Bool {
        (table[word.leaf, word.subleaf]?[word.register] ?? 0) & mask != 0
    }
}

/// QEMU's table of CPUID feature names: every name `-cpu` accepts as `+name`,
/// `-name` or `name=on|off`. Names compare after QEMU's normalisation: `_` is
/// `-`, and the legacy aliases (`sse3` for `pni`, `sse4_1` for `sse4.1`, `xd`
/// for `nx`, `i64` for `lm`, …) name the same bit.
public enum CPUFeatures {
    /// The words and their 32 names each (nil: QEMU names no feature there).
    /// Leaf 1 EDX bits that AMD repeats in 80000001h EDX are named in leaf 1 only, as in QEMU.
    static let words: [(CPUFeatureWord, [String?])] = [
        (
            CPUFeatureWord(leaf: 1, register: .edx),
            [
                "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce",
                "cx8", "apic", nil, "sep", "mtrr", "pge", "mca", "cmov",
                "pat", "pse36", "pn", "clflush", nil, "ds", "acpi", "mmx",
                "fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe",
            ]
        ),
        (
            CPUFeatureWord(leaf: 1, register: .ecx),
            [
                "pni", "pclmulqdq", "dtes64", "monitor", "ds-cpl", "vmx", "smx", "est",
                "tm2", "ssse3", "cid", nil, "fma", "cx16", "xtpr", "pdcm",
                nil, "pcid", "dca", "sse4.1", "sse4.2", "x2apic", "movbe", "popcnt",
                "tsc-deadline", "aes", "xsave", nil, "avx", "f16c", "rdrand", "hypervisor",
            ]
        ),
        (
            CPUFeatureWord(leaf: 0x8000_0001, register: .edx),
            [
                nil, nil, nil, nil, nil, nil, nil, nil,
                nil, nil, nil, "syscall", nil, nil, nil, nil,
                nil, nil, nil, nil, "nx", nil, "mmxext", nil,
                nil, "fxsr-opt", "pdpe1gb", "rdtscp", nil, "lm", "3dnowext", "3dnow",
            ]
        ),
        (
            CPUFeatureWord(leaf: 0x8000_0001, register: .ecx),
            [
                "lahf-lm", "cmp-legacy", "svm", "extapic", "cr8legacy", "abm", "sse4a", "misalignsse",
                "3dnowprefetch", "osvw", "ibs", "xop", "skinit", "wdt", nil, "lwp",
                "fma4", "tce", nil, "nodeid-msr", nil, "tbm", "topoext", "perfctr-core",
                "perfctr-nb", nil, nil, nil, nil, nil, nil, nil,
            ]
        ),
        (
            CPUFeatureWord(leaf: 7, subleaf: 0, register: .ebx),
            [
                "fsgsbase", "tsc-adjust", "sgx", "bmi1", "hle", "avx2", nil, "smep",
                "bmi2", "erms", "invpcid", "rtm", nil, nil, "mpx", nil,
                "avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma", "pcommit", "clflushopt",
                "clwb", "intel-pt", "avx512pf", "avx512er", "avx512cd", "sha-ni", "avx512bw", "avx512vl",
            ]
        ),
        (
            CPUFeatureWord(leaf: 7, subleaf: 0, register: .ecx),
            [
                nil, "avx512vbmi", "umip", "pku", nil, "waitpkg", "avx512vbmi2", "cet-ss",
                "gfni", "vaes", "vpclmulqdq", "avx512vnni", "avx512bitalg", nil, "avx512-vpopcntdq", nil,
                "la57", nil, nil, nil, nil, nil, "rdpid", nil,
                "bus-lock-detect", "cldemote", nil, "movdiri", "movdir64b", nil, "sgxlc", "pks",
            ]
        ),
        (
            CPUFeatureWord(leaf: 7, subleaf: 0, register: .edx),
            [
                nil, nil, "avx512-4vnniw", "avx512-4fmaps", "fsrm", nil, nil, nil,
                "avx512-vp2intersect", nil, "md-clear", nil, nil, nil, "serialize", nil,
                "tsx-ldtrk", nil, nil, nil, "cet-ibt", nil, "amx-bf16", "avx512-fp16",
                "amx-tile", "amx-int8", "spec-ctrl", "stibp", nil, "arch-capabilities", "core-capability", "ssbd",
            ]
        ),
        (
            CPUFeatureWord(leaf: 7, subleaf: 1, register: .eax),
            [
                nil, nil, nil, nil, "avx-vnni", "avx512-bf16", nil, nil,
                nil, nil, "fzrm", "fsrs", "fsrc", nil, nil, nil,
                nil, nil, nil, nil, nil, nil, "amx-fp16", nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
            ]
        ),
        (
            CPUFeatureWord(leaf: 0xD, subleaf: 1, register: .eax),
            [
                "xsaveopt", "xsavec", "xgetbv1", "xsaves", "xfd", nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
            ]
        ),
        (
            CPUFeatureWord(leaf: 6, register: .eax),
            [
                nil, nil, "arat", nil, nil, nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
            ]
        ),
        (
            CPUFeatureWord(leaf: 0x8000_0007, register: .edx),
            [
                nil, nil, nil, nil, nil, nil, nil, nil,
                "invtsc", nil, nil, nil, nil, nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
                nil, nil, nil, nil, nil, nil, nil, nil,
            ]
        ),
        (
            CPUFeatureWord(leaf: 0x8000_0008, register: .ebx),
            [
                "clzero", nil, "xsaveerptr", nil, nil, nil, nil, nil,
                nil, "wbnoinvd", nil, nil, "ibpb", nil, "ibrs", "amd-stibp",
                nil, nil, nil, nil, nil, nil, nil, nil,
                "amd-ssbd", "virt-ssbd", "amd-no-ssb", nil, nil, nil, nil, nil,
            ]
        ),
    ]

    /// Every named feature, in table order.
    public static let all: [CPUFeature] = words.flatMap { word, names in
        names.enumerated().compactMap { bit, name in
            name.map { CPUFeature(name: $0, word: word, bit: UInt32(bit)) }
        }
    }

    /// The feature words `-cpu` names bits in.
    public static var featureWords: [CPUFeatureWord] { words.map(\.0) }

    /// QEMU's legacy spellings (after '_' became '-'), as its property aliases have them.
    static let aliases: [String: String] = [
        "sse3": "pni", "pclmuldq": "pclmulqdq", "sse4-1": "sse4.1", "sse4-2": "sse4.2",
        "xd": "nx", "ffxsr": "fxsr-opt", "i64": "lm",
    ]

    static let byName: [String: CPUFeature] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

    /// QEMU's normalisation: '_' is '-', and an alias names its feature.
    public static func canonicalName(_ name: String) -> String {
        let dashed = String(name.map { $0 == "_" ? "-" : $0 })
        return aliases[dashed] ?? dashed
    }

    /// The feature `name` spells (`sse4_1`, `sse4-1` and `sse4.1` are one), or nil.
    public static func named(_ name: String) -> CPUFeature? {
        byName[canonicalName(name)]
    }

    // Spelled out, not looked up by name: every Machine's CPUID set-up uses
    // them, and `byName` costs more at start than the rest of that set-up
    // (CPUModelTests checks each against the table).

    /// CPUID.01H:ECX bit 21.
    public static let x2apic = CPUFeature(name: "x2apic", word: CPUFeatureWord(leaf: 1, register: .ecx), bit: 21)
    /// CPUID.01H:ECX bit 24.
    public static let tscDeadline = CPUFeature(
        name: "tsc-deadline", word: CPUFeatureWord(leaf: 1, register: .ecx), bit: 24)
    /// CPUID.01H:ECX bit 31: running under a hypervisor.
    public static let hypervisor = CPUFeature(
        name: "hypervisor", word: CPUFeatureWord(leaf: 1, register: .ecx), bit: 31)
    /// CPUID.01H:ECX bit 5.
    public static let vmx = CPUFeature(name: "vmx", word: CPUFeatureWord(leaf: 1, register: .ecx), bit: 5)
    /// CPUID.80000001H:ECX bit 2.
    public static let svm = CPUFeature(name: "svm", word: CPUFeatureWord(leaf: 0x8000_0001, register: .ecx), bit: 2)
    /// CPUID.01H:EDX bit 9: an on-chip APIC.
    public static let apic = CPUFeature(name: "apic", word: CPUFeatureWord(leaf: 1, register: .edx), bit: 9)

    /// Leaf 1 EDX bits AMD repeats in 80000001h EDX (QEMU's CPUID_EXT2_AMD_ALIASES).
    public static let amdAliasMask: UInt32 = 0x0183_F3FF
}
