/// What QEMU's `-cpu` asks of a vCPU, parsed: a base model and modifiers.
///
/// Forms (QEMU's): `host` or `max` (what KVM supports), a named model
/// (`qemu64`, `qemu32`, `kvm64`, `kvm32`, `Conroe`, `Penryn`, `Nehalem`,
/// `Westmere`, each also as `NAME-v1`), then comma-separated modifiers:
/// `+feat`, `-feat`, `feat=on|off`, bare `feat` (on), `vendor=GenuineIntel`
/// (any 12 characters), `kvm=on|off`, `family=`, `model=`, `stepping=`,
/// `level=`, `xlevel=`, `model-id=`, `enforce`, `check`. Feature names are
/// QEMU's (`CPUFeatures`), with `_` and `-` alike.
///
/// Order of effect, as QEMU's: `feat=on|off` and bare `feat` settings in
/// order (the last wins), then every `+feat`, then every `-feat` — so a
/// `-feat` always wins (`-x2apic,x2apic=on` leaves x2apic off).
///
/// `-apic` is refused: KVM derives CPUID.01H:EDX.APIC from IA32_APIC_BASE,
/// and kvmrun's vCPUs always have their local APIC (QEMU removes the APIC device).
///
/// `vmx` and `svm` turned on are nesting, which needs more than a CPUID bit
/// (the VMX capability MSRs, VM_CR): `apply` leaves them to
/// `VCPU.enableNesting`, and `nestingPolicy(explicit:hostVendor:)` says what
/// nesting the model asks for. Turned off, `apply` clears them.
public struct CPUModel: Equatable, Sendable {
    /// What the model starts from.
    public enum Base: Equatable, Sendable {
        /// `host` or `max`: the vCPU keeps what KVM supports (the table it was created with).
        case host, max
        /// A QEMU model (`qemu64`, `Nehalem`, …).
        case named(NamedCPUModel)
    }

    /// What the model starts from.
    public var base: Base
    /// Each named feature -cpu turned on or off, after QEMU's order of effect.
    public var requested: [CPUFeature: Bool] = [:]
    /// `vendor=`: the 12-character vendor string of leaves 0 and 80000000h.
    public var vendor: String?
    /// `kvm=off` hides the KVM leaves 40000000h–4FFFFFFFh (signature "KVMKVMKVM").
    public var exposeKVM = true
    /// `family=`.
    public var family: UInt32?
    /// `model=`.
    public var model: UInt32?
    /// `stepping=`.
    public var stepping: UInt32?
    /// `level=`: the maximum basic leaf.
    public var level: UInt32?
    /// `xlevel=`: the maximum extended leaf.
    public var xlevel: UInt32?
    /// `model-id=`: the brand string.
    public var modelID: String?
    /// `enforce`: a feature of the named model that KVM lacks is an error, not a warning.
    public var enforce = false

    /// A model of `base` with nothing changed.
    public init(base: Base) { self.base = base }

    /// Parses QEMU's `-cpu` value; every unknown model, feature or property is an error.
    public init(parsing spec: String) throws(CPUModelError) {
        let parts = spec.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        switch name {
        case "host": base = .host
        case "max": base = .max
        case "":
            throw CPUModelError.noModel
        default:
            let plain = name.hasSuffix("-v1") ? String(name.dropLast(3)) : name
            guard let named = NamedCPUModel.all.first(where: { $0.name == plain }) else {
                throw CPUModelError.unknownModel(name)
            }
            base = .named(named)
        }
        var settings: [(CPUFeature, Bool)] = []
        var plus: [CPUFeature] = []
        var minus: [CPUFeature] = []
        for part in parts.dropFirst() {
            if part.isEmpty { continue }
            if let sign = part.first, sign == "+" || sign == "-" {
                let featureName = String(part.dropFirst())
                guard let feature = CPUFeatures.named(featureName) else {
                    throw CPUModelError.unknownFeature(featureName)
                }
                if sign == "+" { plus.append(feature) } else { minus.append(feature) }
                continue
            }
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = CPUFeatures.canonicalName(kv[0])
            let value = kv.count == 2 ? kv[1] : nil
            func flag() throws(CPUModelError) -> Bool {
                switch value {
                case nil, "on", "true", "yes": return true
                case "off", "false", "no": return false
                case let v?: throw CPUModelError.badValue(key, v, "on or off")
                }
            }
            func number(_ limit: UInt32) throws(CPUModelError) -> UInt32 {
                guard let text = value, let v = Parse.address(text), v <= limit else {
                    throw CPUModelError.badValue(key, value ?? "", "a number up to \(limit)")
                }
                return UInt32(v)
            }
            switch key {
            case "vendor":
                guard let v = value, v.utf8.count == 12, v.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                    throw CPUModelError.badValue(
                        key, value ?? "", "12 ASCII characters, e.g. GenuineIntel or AuthenticAMD")
                }
                vendor = v
            case "kvm": exposeKVM = try flag()
            case "enforce": enforce = try flag()
            case "check": _ = try flag()
            case "family": family = try number(0xFF + 0xF)
            case "model": model = try number(0xFF)
            case "stepping": stepping = try number(0xF)
            case "level": level = try number(0x3FFF_FFFF)
            case "xlevel":
                let v = try number(0xFFFF_FFFF)
                xlevel = v == 0 ? 0 : max(v, 0x8000_0000)
            case "model-id":
                guard let v = value, v.utf8.count <= 48 else {
                    throw CPUModelError.badValue(key, value ?? "", "at most 48 characters")
                }
                modelID = v
            default:
                guard let feature = CPUFeatures.named(key) else { throw CPUModelError.unknownFeature(kv[0]) }
                settings.append((feature, try flag()))
            }
        }
        for (feature, on) in settings { requested[feature] = on }
        for feature in plus { requested[feature] = true }
        for feature in minus { requested[feature] = false }
    }

    /// The named model's features KVM (`supported`) cannot give: QEMU warns and
    /// drops them, and so does `apply` (under `enforce`, `apply` refuses them).
    /// Features the model names and -cpu turns off are not missed.
    public func missingModelFeatures(supported: CPUID) -> [CPUFeature] {
        guard case .named(let named) = base else { return [] }
        return CPUFeatures.all.filter { feature in
            named.has(feature) && requested[feature] != false && !feature.isSet(in: supported)
        }
    }

    /// The vCPU's CPUID under this model: `table` is what the vCPU has now,
    /// `supported` what this machine can give (KVM_GET_SUPPORTED_CPUID, with
    /// x2APIC and TSC-deadline only with the in-kernel irqchip). Pure.
    ///
    /// - A feature turned on that `supported` lacks is refused (QEMU warns
    ///   and drops it; kvmrun never ignores a request). `hypervisor` is always
    ///   given; `vmx`/`svm` on are left to nesting.
    /// - A named model replaces every feature word `CPUFeatures` covers with
    ///   its own bits (QEMU's builtin_x86_defs) ∩ `supported`, plus what QEMU
    ///   adds under KVM (`hypervisor`; `x2apic` where supported, i.e. with the
    ///   in-kernel irqchip) and without `svm` (QEMU turns it off under KVM).
    ///   It sets leaf 1 EAX's family/model/stepping, the brand string
    ///   (80000002h–80000004h), and the maximum leaves (level/xlevel, raised
    ///   as QEMU's full-cpuid-auto-level does when a feature needs a higher
    ///   leaf, never above what KVM offers); leaves above them are removed.
    ///   The vendor stays the host's, as QEMU under KVM keeps it (`vendor=`
    ///   changes it). Other leaves (caches, topology, XSAVE sizes, KVM's own
    ///   40000000h leaves) stay as KVM gives them.
    /// - `vendor=` sets leaf 0 and 80000000h EBX/EDX/ECX; with an AMD vendor
    ///   the leaf 1 EDX bits AMD repeats in 80000001h EDX are copied there,
    ///   as QEMU does.
    /// - `kvm=off` removes leaves 40000000h–4FFFFFFFh.
    /// - `-svm` also removes leaf 8000000Ah (SVM features), as QEMU zeroes it.
    public func apply(to table: CPUID, supported: CPUID) throws(CPUModelError) -> CPUID {
        if requested[CPUFeatures.apic] == false { throw CPUModelError.fixedByKVM(CPUFeatures.apic) }
        for (feature, on) in requested where on && !Self.nesting.contains(feature) && feature != CPUFeatures.hypervisor
        {
            guard feature.isSet(in: supported) else { throw CPUModelError.notSupported(feature) }
        }
        var t = table
        var minLevel: UInt32 = 1
        var minXLevel: UInt32 = 0
        if case .named(let named) = base {
            if enforce, let missing = missingModelFeatures(supported: supported).first {
                throw CPUModelError.notSupported(missing)
            }
            for word in CPUFeatures.featureWords {
                var bits = named.features[word] ?? 0
                if word == CPUFeatures.x2apic.word { bits |= CPUFeatures.x2apic.mask | CPUFeatures.hypervisor.mask }
                bits &= supported.bits(word) | (word == CPUFeatures.hypervisor.word ? CPUFeatures.hypervisor.mask : 0)
                t.setBits(word, bits, from: supported)
            }
            if var leaf1 = t[1] {
                leaf1.eax = Self.version(family: named.family, model: named.model, stepping: named.stepping)
                t[1] = leaf1
            }
            minLevel = named.level
            minXLevel = named.xlevel
            t.setBrand(named.modelID)
        }
        for (feature, on) in requested {
            if on && Self.nesting.contains(feature) { continue }
            var bits = t.bits(feature.word)
            bits = on ? bits | feature.mask : bits & ~feature.mask
            t.setBits(feature.word, bits, from: supported)
        }
        if requested[CPUFeatures.svm] == false { t[0x8000_000A] = nil }
        if case .named = base, t[7, 0] != nil {
            // QEMU's level_func7: leaf 7's maximum subleaf is 1 only when 7.1 has
            // features; QEMU then gives no subleaf above it, nor does this.
            let subleaves: UInt32 = t.bits(CPUFeatureWord(leaf: 7, subleaf: 1, register: .eax)) != 0 ? 1 : 0
            t[7, 0]!.eax = subleaves
            t.entries.removeAll { $0.function == 7 && $0.index > subleaves }
        }
        if family != nil || model != nil || stepping != nil, var leaf1 = t[1] {
            let old = Self.decodeVersion(leaf1.eax)
            leaf1.eax = Self.version(
                family: family ?? old.family, model: model ?? old.model, stepping: stepping ?? old.stepping)
            t[1] = leaf1
        }
        if let modelID { t.setBrand(modelID) }
        if case .named = base {
            // QEMU's full-cpuid-auto-level: a feature in a leaf above the model's level raises it.
            for word in CPUFeatures.featureWords where t.bits(word) != 0 {
                if word.leaf < 0x4000_0000 {
                    minLevel = max(minLevel, word.leaf)
                } else {
                    minXLevel = max(minXLevel, word.leaf)
                }
            }
            let kvmLevel = supported[0]?.eax ?? t[0]?.eax ?? 1
            let kvmXLevel = supported[0x8000_0000]?.eax ?? t[0x8000_0000]?.eax ?? 0
            t.setMaxLeaves(level: level ?? min(minLevel, kvmLevel), xlevel: xlevel ?? min(minXLevel, kvmXLevel))
        } else if level != nil || xlevel != nil {
            t.setMaxLeaves(level: level ?? t[0]?.eax ?? 1, xlevel: xlevel ?? t[0x8000_0000]?.eax ?? 0)
        }
        if let vendor { t.setVendor(vendor) }
        if case .named = base, vendor == nil, t.vendor.utf8.count == 12 {
            t.setVendor(t.vendor) // QEMU writes the vendor into 80000000h too, for every model
        }
        if t.vendor == "AuthenticAMD", t[0x8000_0001] != nil {
            let leaf1EDX = t[1]?.edx ?? 0
            t[0x8000_0001]!.edx =
                (t[0x8000_0001]!.edx & ~CPUFeatures.amdAliasMask) | (leaf1EDX & CPUFeatures.amdAliasMask)
        }
        if !exposeKVM { t.entries.removeAll { (0x4000_0000...0x4FFF_FFFF).contains($0.function) } }
        return t
    }

    static let nesting: Set<CPUFeature> = [CPUFeatures.vmx, CPUFeatures.svm]

    /// The nesting this -cpu asks for, with `--nested`'s `explicit` policy
    /// (nil: not given) on a host whose CPU vendor is `hostVendor`.
    ///
    /// `+vmx`/`+svm` mean `--nested` (`.on`: refused with the host's reason
    /// where it cannot nest), or `--nested=force` where that is given too.
    /// Refused: the other vendor's technology (`+svm` on an Intel host, `+vmx`
    /// on AMD: KVM nests only with the host's own), nesting with a `vendor=`
    /// that is not the technology's (VMX is GenuineIntel's, SVM
    /// AuthenticAMD's), and contradictions with `--nested`: `--nested=off`
    /// with `+vmx`/`+svm`, or `--nested`/`--nested=force` with `-vmx`/`-svm`
    /// of the host's technology. (QEMU lets the last setting win; -cpu and
    /// --nested have no order between them, so kvmrun refuses instead.)
    public func nestingPolicy(explicit: NestingPolicy?, hostVendor: String) throws(CPUModelError) -> NestingPolicy {
        let hostFeature: CPUFeature? =
            switch hostVendor {
            case "GenuineIntel": CPUFeatures.vmx
            case "AuthenticAMD": CPUFeatures.svm
            default: nil
            }
        for feature in Self.nesting.sorted(by: { $0.name > $1.name }) where requested[feature] == true {
            guard feature == hostFeature else { throw CPUModelError.foreignNesting(feature, hostVendor: hostVendor) }
        }
        var policy = explicit ?? .off
        if let hostFeature, let asked = requested[hostFeature] {
            switch (asked, explicit) {
            case (true, .off?), (false, .on?), (false, .force?):
                throw CPUModelError.nestingContradiction(hostFeature, on: asked, nested: explicit!)
            case (true, nil): policy = .on
            default: break
            }
        }
        if policy != .off, let vendor, let hostFeature, vendor != hostVendor {
            throw CPUModelError.nestingVendor(hostFeature, vendor: vendor)
        }
        return policy
    }

    /// Leaf 1 EAX for a family, model and stepping, as QEMU encodes them.
    static func version(family: UInt32, model: UInt32, stepping: UInt32) -> UInt32 {
        var eax = (stepping & 0xF) | ((model & 0xF) << 4) | (((model >> 4) & 0xF) << 16)
        eax |= family > 0xF ? (0xF << 8) | ((family - 0xF) << 20) : family << 8
        return eax
    }

    static func decodeVersion(_ eax: UInt32) -> (family: UInt32, model: UInt32, stepping: UInt32) {
        var family = (eax >> 8) & 0xF
        if family == 0xF { family += (eax >> 20) & 0xFF }
        let model = ((eax >> 4) & 0xF) | (((eax >> 16) & 0xF) << 4)
        return (family, model, eax & 0xF)
    }
}

/// Why a -cpu value cannot be had: one line each.
public enum CPUModelError: Error, Equatable, CustomStringConvertible, Sendable {
    /// An empty -cpu value.
    case noModel
    /// A model name kvmrun does not know.
    case unknownModel(String)
    /// A feature or property name QEMU does not have.
    case unknownFeature(String)
    /// `key=value` with a value of the wrong kind: key, value, what was expected.
    case badValue(String, String, String)
    /// A feature KVM cannot give on this host.
    case notSupported(CPUFeature)
    /// A feature KVM derives from other state (the APIC bit), not CPUID.
    case fixedByKVM(CPUFeature)
    /// `+vmx`/`+svm` on a host of the other vendor.
    case foreignNesting(CPUFeature, hostVendor: String)
    /// `+vmx`/`+svm` with a `vendor=` of the other vendor.
    case nestingVendor(CPUFeature, vendor: String)
    /// `+vmx`/`-vmx` (or svm) against the `--nested` policy.
    case nestingContradiction(CPUFeature, on: Bool, nested: NestingPolicy)

    /// The one line the CLI prints.
    public var description: String {
        switch self {
        case .noModel:
            "no CPU model (expected host, max or \(NamedCPUModel.names))"
        case .unknownModel(let name):
            "unknown CPU model '\(name)' (kvmrun knows host, max, \(NamedCPUModel.names))"
        case .unknownFeature(let name):
            "unknown CPU feature or property '\(name)'"
        case .badValue(let key, let value, let expected):
            "\(key)=\(value): expected \(expected)"
        case .notSupported(let f):
            "feature '\(f.name)' (\(f.word) bit \(f.bit)): KVM does not support it on this host"
                + (f == CPUFeatures.x2apic || f == CPUFeatures.tscDeadline
                    ? " without the in-kernel irqchip (a multiboot kernel or -smp 2 has one)" : "")
        case .fixedByKVM(let f):
            "-\(f.name): KVM shows \(f.word).\(f.name) from the vCPU's IA32_APIC_BASE, not from CPUID; kvmrun's vCPUs always have a local APIC"
        case .foreignNesting(let f, let hostVendor):
            "+\(f.name): this host's CPU is \(hostVendor.isEmpty ? "of an unknown vendor" : hostVendor); KVM nests only with "
                + (hostVendor == "GenuineIntel"
                    ? "vmx" : hostVendor == "AuthenticAMD" ? "svm" : "the host's own VMX or SVM") + " here"
        case .nestingVendor(let f, let vendor):
            "\(f.name) with vendor=\(vendor): \(f == CPUFeatures.vmx ? "VMX is GenuineIntel's" : "SVM is AuthenticAMD's"); nesting needs the host's vendor"
        case .nestingContradiction(let f, let on, let nested):
            "\(on ? "+" : "-")\(f.name) contradicts --nested=\(nested.rawValue)"
        }
    }
}

extension CPUID {
    /// A feature word's bits (0 where the leaf is absent).
    public func bits(_ word: CPUFeatureWord) -> UInt32 {
        self[word.leaf, word.subleaf]?[word.register] ?? 0
    }

    /// Sets a feature word; where the leaf is absent, `supported`'s entry is
    /// copied first (nothing is created for bits that are all zero).
    mutating func setBits(_ word: CPUFeatureWord, _ bits: UInt32, from supported: CPUID) {
        if self[word.leaf, word.subleaf] == nil {
            guard bits != 0 else { return }
            self[word.leaf, word.subleaf] =
                supported[word.leaf, word.subleaf]
                ?? CPUIDEntry(
                    function: word.leaf, index: word.subleaf,
                    flags: word.leaf == 7 || word.leaf == 0xD ? CPUIDEntry.significantIndex : 0)
        }
        self[word.leaf, word.subleaf]![word.register] = bits
    }

    /// Leaf 0 and 80000000h EBX/EDX/ECX: the 12-character vendor string.
    public mutating func setVendor(_ vendor: String) {
        let bytes = Array(vendor.utf8.prefix(12)) + [UInt8](repeating: 0, count: max(0, 12 - vendor.utf8.count))
        func word(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[i * 4 + $1]) << ($1 * 8) } }
        for leaf: UInt32 in [0, 0x8000_0000] where self[leaf] != nil {
            self[leaf]!.ebx = word(0)
            self[leaf]!.edx = word(1)
            self[leaf]!.ecx = word(2)
        }
    }

    /// The brand string of 80000002h–80000004h (48 bytes, NUL-padded).
    public mutating func setBrand(_ brand: String) {
        let bytes = Array(brand.utf8.prefix(47)) + [UInt8](repeating: 0, count: 48 - min(brand.utf8.count, 47))
        for i in 0..<3 {
            func word(_ r: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[i * 16 + r * 4 + $1]) << ($1 * 8) } }
            self[0x8000_0002 + UInt32(i)] = CPUIDEntry(
                function: 0x8000_0002 + UInt32(i), eax: word(0), ebx: word(1), ecx: word(2), edx: word(3))
        }
    }

    /// The brand string, if the table has one.
    public var brand: String {
        (0..<3).compactMap { self[0x8000_0002 + UInt32($0)] }.map {
            fourCC($0.eax) + fourCC($0.ebx) + fourCC($0.ecx) + fourCC($0.edx)
        }.joined()
    }

    /// Leaf 0 EAX and 80000000h EAX, with the leaves above them removed
    /// (KVM answers a leaf it has an entry for, whatever the maximum says).
    mutating func setMaxLeaves(level: UInt32, xlevel: UInt32) {
        self[0]?.eax = level
        entries.removeAll { $0.function > level && $0.function < 0x4000_0000 }
        if xlevel >= 0x8000_0000 {
            self[0x8000_0000]?.eax = xlevel
            entries.removeAll { $0.function > xlevel && $0.function >= 0x8000_0000 && $0.function <= 0x8FFF_FFFF }
        } else {
            entries.removeAll { $0.function >= 0x8000_0000 && $0.function <= 0x8FFF_FFFF }
        }
    }
}

extension CPUIDEntry {
    static let significantIndex: UInt32 = 1 // KVM_CPUID_FLAG_SIGNIFCANT_INDEX
}
