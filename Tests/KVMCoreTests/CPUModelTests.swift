import KVMCore
import XCTest

/// `-cpu` parsing and `CPUModel.apply` on fabricated KVM_GET_SUPPORTED_CPUID
/// tables of an Intel and an AMD host, plus one real machine.
final class CPUModelTests: XCTestCase {
    // MARK: Fabricated hosts

    static func vendorWords(_ vendor: String) -> (UInt32, UInt32, UInt32) {
        let b = Array(vendor.utf8)
        func w(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[i * 4 + $1]) << ($1 * 8) } }
        return (w(0), w(1), w(2))
    }

    /// A modern host as KVM describes it: leaf 1 with SSE3…AVX, leaf 7 with AVX2/AVX-512F (Intel) or
    /// without AVX-512 (AMD), 80000001h with LM/NX/SYSCALL (and SVM, CR8LEGACY on AMD), KVM's leaves.
    static func host(_ vendor: String) -> CPUID {
        let amd = vendor == "AuthenticAMD"
        let (b, d, c) = vendorWords(vendor)
        // pni, pclmulqdq, ssse3, fma, cx16, sse4.x, x2apic, … rdrand; vmx on Intel
        let leaf1ECX: UInt32 = 0x7EFA_3203 | (amd ? 0 : 1 << 5)
        let leaf1EDX: UInt32 = 0x178B_FBFF
        // fsgsbase, bmi1, avx2, smep, bmi2, … (+avx512f on Intel)
        let l7EBX: UInt32 = amd ? 0x219C_01A9 : 0x219D_07AB
        // lahf-lm, svm, cr8legacy, abm… (AMD) / lahf-lm, abm, 3dnowprefetch (Intel)
        let extECX: UInt32 = amd ? 0x0000_0175 : 0x0000_0121
        let extEDX: UInt32 = amd ? 0x2FD3_FBFF : 0x2C10_0800
        return CPUID(
            entries: [
                CPUIDEntry(function: 0, eax: 0x1F, ebx: b, ecx: c, edx: d),
                CPUIDEntry(
                    function: 1, eax: amd ? 0x00A1_0F11 : 0x0005_0657, ebx: 0x0008_0800, ecx: leaf1ECX, edx: leaf1EDX),
                CPUIDEntry(function: 6, eax: 0x4),
                CPUIDEntry(function: 7, index: 0, flags: 1, eax: 1, ebx: l7EBX, ecx: 0x0040_0004, edx: 0x0000_0010),
                CPUIDEntry(function: 7, index: 1, flags: 1, eax: 0x20),
                CPUIDEntry(function: 0xB, index: 0, flags: 1, eax: 1, ebx: 1, ecx: 0x100),
                CPUIDEntry(function: 0xD, index: 1, flags: 1, eax: 0x7),
                CPUIDEntry(function: 0x1F, index: 0, flags: 1),
                CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0001, ebx: 0x4B4D_564B, ecx: 0x564B_4D56, edx: 0x4D),
                CPUIDEntry(function: 0x4000_0001, eax: 0x0100_7AFB),
                CPUIDEntry(
                    function: 0x8000_0000, eax: 0x8000_0021, ebx: amd ? b : 0, ecx: amd ? c : 0, edx: amd ? d : 0),
                CPUIDEntry(function: 0x8000_0001, ecx: extECX, edx: extEDX),
                CPUIDEntry(function: 0x8000_0008, eax: 0x3030, ebx: 0x0100_0000),
            ] + (amd ? [CPUIDEntry(function: 0x8000_000A, eax: 1, ebx: 8, edx: 0x9)] : []))
    }

    static let intel = host("GenuineIntel")
    static let amd = host("AuthenticAMD")
    static let hosts = [intel, amd]

    func model(_ spec: String) throws -> CPUModel { try CPUModel(parsing: spec) }
    func apply(_ spec: String, _ host: CPUID) throws -> CPUID { try model(spec).apply(to: host, supported: host) }
    func on(_ name: String, _ table: CPUID) -> Bool { CPUFeatures.named(name)!.isSet(in: table) }

    // MARK: Names and parsing

    func testFeatureNamesAsQEMUSpellsThem() {
        for (name, leaf, register, bit) in [
            ("fpu", 1, CPUIDRegister.edx, 0), ("pni", 1, .ecx, 0), ("sse3", 1, .ecx, 0),
            ("sse4.1", 1, .ecx, 19), ("sse4-1", 1, .ecx, 19), ("sse4_1", 1, .ecx, 19),
            ("sse4_2", 1, .ecx, 20), ("tsc-deadline", 1, .ecx, 24), ("tsc_deadline", 1, .ecx, 24),
            ("hypervisor", 1, .ecx, 31), ("vmx", 1, .ecx, 5), ("svm", 0x8000_0001, .ecx, 2),
            ("lahf_lm", 0x8000_0001, .ecx, 0), ("nx", 0x8000_0001, .edx, 20), ("xd", 0x8000_0001, .edx, 20),
            ("i64", 0x8000_0001, .edx, 29), ("sha-ni", 7, .ebx, 29), ("avx512f", 7, .ebx, 16),
            ("la57", 7, .ecx, 16), ("rdpid", 7, .ecx, 22), ("umip", 7, .ecx, 2),
            ("xsaveopt", 0xD, .eax, 0), ("arat", 6, .eax, 2), ("invtsc", 0x8000_0007, .edx, 8),
        ] {
            let f = CPUFeatures.named(name)
            XCTAssertEqual(f?.word.leaf, UInt32(leaf), name)
            XCTAssertEqual(f?.word.register, register, name)
            XCTAssertEqual(f?.bit, UInt32(bit), name)
        }
        XCTAssertNil(CPUFeatures.named("osxsave"))
        XCTAssertNil(CPUFeatures.named("bogus"))
        XCTAssertEqual(Set(CPUFeatures.all.map(\.name)).count, CPUFeatures.all.count, "every name once")
    }

    func testParsingBases() throws {
        XCTAssertEqual(try model("host").base, .host)
        XCTAssertEqual(try model("max").base, .max)
        guard case .named(let q) = try model("qemu64").base else { return XCTFail() }
        XCTAssertEqual(q.name, "qemu64")
        guard case .named(let n) = try model("Nehalem-v1").base else { return XCTFail() }
        XCTAssertEqual(n.name, "Nehalem")
        XCTAssertThrowsError(try model("Skylake-Server")) {
            XCTAssertEqual($0 as? CPUModelError, .unknownModel("Skylake-Server"))
        }
        XCTAssertThrowsError(try model("")) { XCTAssertEqual($0 as? CPUModelError, .noModel) }
        XCTAssertThrowsError(try model(",+x2apic"))
    }

    func testModifierForms() throws {
        let m = try model("max,+svm,-x2apic,avx2=off,rdrand=on,fma,sse4_1=off,vendor=GenuineIntel,kvm=off,enforce")
        let f = { CPUFeatures.named($0)! }
        XCTAssertEqual(m.requested[f("svm")], true)
        XCTAssertEqual(m.requested[f("x2apic")], false)
        XCTAssertEqual(m.requested[f("avx2")], false)
        XCTAssertEqual(m.requested[f("rdrand")], true)
        XCTAssertEqual(m.requested[f("fma")], true)
        XCTAssertEqual(m.requested[f("sse4.1")], false)
        XCTAssertEqual(m.vendor, "GenuineIntel")
        XCTAssertFalse(m.exposeKVM)
        XCTAssertTrue(m.enforce)
    }

    /// The features spelled out as constants are the table's.
    func testConstantFeaturesMatchTheTable() {
        for (name, feature) in [
            ("x2apic", CPUFeatures.x2apic), ("tsc-deadline", CPUFeatures.tscDeadline),
            ("hypervisor", CPUFeatures.hypervisor), ("vmx", CPUFeatures.vmx),
            ("svm", CPUFeatures.svm), ("apic", CPUFeatures.apic),
        ] {
            XCTAssertEqual(CPUFeatures.named(name), feature, name)
        }
    }

    /// QEMU: feat=on|off in order, then every +feat, then every -feat.
    func testOrderOfEffectAsQEMU() throws {
        let x2 = CPUFeatures.x2apic
        XCTAssertEqual(try model("host,x2apic=on,x2apic=off").requested[x2], false)
        XCTAssertEqual(try model("host,x2apic=off,x2apic").requested[x2], true)
        XCTAssertEqual(try model("host,-x2apic,x2apic=on").requested[x2], false)
        XCTAssertEqual(try model("host,+x2apic,-x2apic").requested[x2], false)
        XCTAssertEqual(try model("host,-x2apic,+x2apic").requested[x2], false)
        XCTAssertEqual(try model("host,x2apic=off,+x2apic").requested[x2], true)
    }

    func testBadModifiers() {
        for (spec, error) in [
            ("max,+bogus", CPUModelError.unknownFeature("bogus")), ("max,bogus=on", .unknownFeature("bogus")),
            ("max,x2apic=maybe", .badValue("x2apic", "maybe", "on or off")),
            ("max,kvm=nope", .badValue("kvm", "nope", "on or off")),
        ] {
            XCTAssertThrowsError(try model(spec), spec) { XCTAssertEqual($0 as? CPUModelError, error, spec) }
        }
        XCTAssertThrowsError(try model("max,vendor=Intel")) {
            XCTAssertEqual("\($0)", "vendor=Intel: expected 12 ASCII characters, e.g. GenuineIntel or AuthenticAMD")
        }
        XCTAssertThrowsError(try model("max,stepping=16"))
    }

    // MARK: apply

    func testHostAndMaxKeepWhatKVMGives() throws {
        for host in Self.hosts {
            XCTAssertEqual(try apply("host", host), host)
            XCTAssertEqual(try apply("max", host), host)
        }
    }

    func testPlusAndMinus() throws {
        for host in Self.hosts {
            var t = try apply("max,-x2apic,-avx2,-lm", host)
            XCTAssertFalse(on("x2apic", t))
            XCTAssertFalse(on("avx2", t))
            XCTAssertFalse(on("lm", t))
            XCTAssertTrue(on("sse4.2", t))
            t = try model("max,+x2apic,+tsc-deadline").apply(
                to: try apply("max,-x2apic,-tsc-deadline", host), supported: host.with("tsc-deadline"))
            XCTAssertTrue(on("x2apic", t))
            XCTAssertTrue(on("tsc-deadline", t))
        }
    }

    func testUnsupportedFeatureIsRefused() throws {
        // AVX-512F: the Intel table has it, the AMD one does not.
        XCTAssertTrue(on("avx512f", try apply("max,+avx512f", Self.intel)))
        XCTAssertThrowsError(try apply("max,+avx512f", Self.amd)) {
            XCTAssertEqual("\($0)", "feature 'avx512f' (CPUID.07H_0H:EBX bit 16): KVM does not support it on this host")
        }
        for host in Self.hosts {
            XCTAssertThrowsError(try apply("qemu64,+la57", host)) {
                XCTAssertEqual($0 as? CPUModelError, .notSupported(CPUFeatures.named("la57")!))
            }
            // x2APIC/TSC-deadline: offered only where the machine has the in-kernel irqchip.
            XCTAssertThrowsError(try apply("max,+tsc-deadline", host)) {
                XCTAssertTrue("\($0)".contains("in-kernel irqchip"), "\($0)")
            }
            XCTAssertThrowsError(try apply("max,-apic", host)) {
                XCTAssertEqual($0 as? CPUModelError, .fixedByKVM(CPUFeatures.apic))
            }
            // Turning off what KVM lacks is fine; hypervisor is always given.
            XCTAssertFalse(on("la57", try apply("max,-la57", host)))
            XCTAssertTrue(on("hypervisor", try apply("max,+hypervisor", host)))
            XCTAssertFalse(on("hypervisor", try apply("max,-hypervisor", host)))
        }
    }

    func testVendor() throws {
        for host in Self.hosts {
            for vendor in ["GenuineIntel", "AuthenticAMD", "HygonGenuine"] {
                let t = try apply("max,vendor=\(vendor)", host)
                XCTAssertEqual(t.vendor, vendor)
                let ext = try XCTUnwrap(t[0x8000_0000])
                let words = Self.vendorWords(vendor)
                XCTAssertEqual(
                    [ext.ebx, ext.edx, ext.ecx], [words.0, words.1, words.2], "80000000h carries the vendor too")
                XCTAssertEqual(ext.eax, 0x8000_0021, "xlevel kept")
            }
        }
        // AuthenticAMD repeats leaf 1 EDX's fpu…fxsr bits in 80000001h EDX, as QEMU copies them.
        let t = try apply("max,vendor=AuthenticAMD", Self.intel)
        XCTAssertEqual(t[0x8000_0001]!.edx & CPUFeatures.amdAliasMask, t[1]!.edx & CPUFeatures.amdAliasMask)
        XCTAssertEqual(t[0x8000_0001]!.edx & ~CPUFeatures.amdAliasMask, Self.intel[0x8000_0001]!.edx)
    }

    func testKVMOffHidesTheSignatureLeaves() throws {
        for host in Self.hosts {
            let t = try apply("max,kvm=off", host)
            XCTAssertNil(t[0x4000_0000])
            XCTAssertNil(t[0x4000_0001])
            XCTAssertTrue(
                on("hypervisor", try apply("qemu64,kvm=off", host)), "QEMU keeps the hypervisor bit under kvm=off")
            XCTAssertNotNil(try apply("max,kvm=on", host)[0x4000_0000])
        }
    }

    func testNamedModelsAreQEMUsDefinitionWithinWhatKVMSupports() throws {
        for host in Self.hosts {
            let t = try apply("qemu64", host)
            XCTAssertEqual(t[1]!.ecx, (1 << 0) | (1 << 13) | (1 << 21) | (1 << 31), "pni cx16 x2apic hypervisor")
            XCTAssertEqual(t[1]!.edx, 0x078B_FBFD, "PPRO + mtrr clflush mca pse36 (no vme)")
            XCTAssertEqual(t[1]!.eax, 0x0006_0FB1, "family 15 model 107 stepping 1")
            XCTAssertEqual(t[0]!.eax, 0xD)
            XCTAssertEqual(t[0x8000_0000]!.eax, 0x8000_000A)
            XCTAssertEqual(t[0x8000_0001]!.ecx, 1, "lahf-lm; svm off as QEMU has it under KVM")
            XCTAssertEqual(t[0x8000_0001]!.edx & ~CPUFeatures.amdAliasMask, (1 << 11) | (1 << 20) | (1 << 29))
            XCTAssertEqual(t.bits(CPUFeatureWord(leaf: 7, register: .ebx)), 0)
            XCTAssertEqual(t[7, 0]!.eax, 0)
            XCTAssertNil(t[7, 1])
            XCTAssertEqual(t.bits(CPUFeatureWord(leaf: 0xD, subleaf: 1, register: .eax)), 0)
            XCTAssertEqual(t.bits(CPUFeatureWord(leaf: 0x8000_0008, register: .ebx)), 0)
            XCTAssertEqual(t[0x8000_0008]!.eax, 0x3030, "address sizes kept")
            XCTAssertEqual(t.brand, "QEMU Virtual CPU version 2.5+")
            XCTAssertEqual(t.vendor, host.vendor, "QEMU under KVM keeps the host's vendor")
            XCTAssertNil(t[0x1F], "leaves above level 0xD removed")
            XCTAssertNotNil(t[0xB])
            XCTAssertNotNil(t[0x4000_0000])

            let q32 = try apply("qemu32", host)
            XCTAssertEqual(q32[0]!.eax, 4)
            XCTAssertNil(q32[7, 0])
            XCTAssertNil(q32[0x8000_0008])
            XCTAssertEqual(q32[0x8000_0000]!.eax, 0x8000_0004)
            XCTAssertFalse(on("lm", q32))
            // A feature above the model's level raises it, as QEMU's auto-level does.
            let raised = try apply("qemu32,+avx2", host)
            XCTAssertEqual(raised[0]!.eax, 7)
            XCTAssertTrue(on("avx2", raised))

            let nehalem = try apply("Nehalem,-popcnt", host)
            XCTAssertTrue(on("sse4.2", nehalem))
            XCTAssertFalse(on("popcnt", nehalem))
            XCTAssertFalse(on("avx", nehalem))
            XCTAssertEqual(nehalem[0]!.eax, 11)
            XCTAssertEqual(
                CPUModel.Base.named(NamedCPUModel.all.first { $0.name == "Westmere" }!), try model("Westmere").base)
        }
        // AMD vendor: fpu…fxsr repeated in 80000001h EDX.
        let t = try apply("kvm64", Self.amd)
        XCTAssertEqual(t[0x8000_0001]!.edx & CPUFeatures.amdAliasMask, t[1]!.edx & CPUFeatures.amdAliasMask)
        XCTAssertEqual(try apply("kvm64", Self.intel)[0x8000_0001]!.edx, (1 << 11) | (1 << 20) | (1 << 29))
    }

    /// QEMU warns and drops a model's feature the host lacks; so does kvmrun, and `enforce` refuses it.
    func testModelFeaturesKVMLacksAreDroppedOrEnforced() throws {
        let noSSSE3 = Self.intel.without("ssse3")
        let m = try model("Nehalem")
        XCTAssertEqual(m.missingModelFeatures(supported: noSSSE3).map(\.name), ["ssse3"])
        XCTAssertFalse(on("ssse3", try m.apply(to: noSSSE3, supported: noSSSE3)))
        XCTAssertEqual(try model("Nehalem,-ssse3").missingModelFeatures(supported: noSSSE3), [])
        XCTAssertThrowsError(try model("Nehalem,enforce").apply(to: noSSSE3, supported: noSSSE3)) {
            XCTAssertEqual($0 as? CPUModelError, .notSupported(CPUFeatures.named("ssse3")!))
        }
    }

    func testModelPropertiesAndAPICIDs() throws {
        var host = Self.amd
        host.setInitialAPICID(3)
        let t = try model("max,family=6,model=85,stepping=7,model-id=Test CPU,level=0xb").apply(
            to: host, supported: Self.amd)
        XCTAssertEqual(t[1]!.eax, 0x0005_0657)
        XCTAssertEqual(t.brand, "Test CPU")
        XCTAssertEqual(t[0]!.eax, 0xB)
        XCTAssertNil(t[0x1F])
        XCTAssertEqual(t[1]!.ebx >> 24, 3, "the vCPU's APIC ID kept")
    }

    // MARK: Nesting

    func testNestingPolicyFollowsTheHostsTechnology() throws {
        let intel = "GenuineIntel"
        let amd = "AuthenticAMD"
        XCTAssertEqual(try model("max,+vmx").nestingPolicy(explicit: nil, hostVendor: intel), .on)
        XCTAssertEqual(try model("max,+svm").nestingPolicy(explicit: nil, hostVendor: amd), .on)
        XCTAssertEqual(try model("max,+svm").nestingPolicy(explicit: .force, hostVendor: amd), .force)
        XCTAssertEqual(try model("max,+vmx").nestingPolicy(explicit: .on, hostVendor: intel), .on)
        XCTAssertEqual(try model("max").nestingPolicy(explicit: .on, hostVendor: intel), .on)
        XCTAssertEqual(
            try model("max,-svm").nestingPolicy(explicit: .on, hostVendor: intel), .on,
            "-svm is no contradiction on Intel")
        XCTAssertEqual(try model("max,-vmx").nestingPolicy(explicit: nil, hostVendor: intel), .off)
        XCTAssertThrowsError(try model("max,+svm").nestingPolicy(explicit: nil, hostVendor: intel)) {
            XCTAssertEqual("\($0)", "+svm: this host's CPU is GenuineIntel; KVM nests only with vmx here")
        }
        XCTAssertThrowsError(try model("max,+vmx").nestingPolicy(explicit: nil, hostVendor: amd)) {
            XCTAssertEqual($0 as? CPUModelError, .foreignNesting(CPUFeatures.vmx, hostVendor: amd))
        }
        XCTAssertThrowsError(try model("max,+vmx").nestingPolicy(explicit: .off, hostVendor: intel)) {
            XCTAssertEqual("\($0)", "+vmx contradicts --nested=off")
        }
        XCTAssertThrowsError(try model("max,-svm").nestingPolicy(explicit: .force, hostVendor: amd)) {
            XCTAssertEqual("\($0)", "-svm contradicts --nested=force")
        }
        XCTAssertThrowsError(try model("max,+vmx,vendor=AuthenticAMD").nestingPolicy(explicit: nil, hostVendor: intel))
        {
            XCTAssertEqual(
                "\($0)", "vmx with vendor=AuthenticAMD: VMX is GenuineIntel's; nesting needs the host's vendor")
        }
        XCTAssertThrowsError(try model("max,vendor=GenuineIntel").nestingPolicy(explicit: .on, hostVendor: amd))
        XCTAssertEqual(try model("max,vendor=GenuineIntel").nestingPolicy(explicit: nil, hostVendor: amd), .off)
    }

    /// `+vmx`/`+svm` leave the bit to `enableNesting`; `-vmx`/`-svm` clear it (and leaf 8000000Ah).
    func testNestingBitsInApply() throws {
        XCTAssertFalse(on("svm", try apply("qemu64", Self.amd)), "QEMU turns svm off under KVM")
        XCTAssertTrue(on("svm", try apply("max,+svm", Self.amd)), "as KVM gives it; enableNesting does the rest")
        let noSVM = try apply("max,-svm", Self.amd)
        XCTAssertFalse(on("svm", noSVM))
        XCTAssertNil(noSVM[0x8000_000A])
        XCTAssertFalse(on("vmx", try apply("max,-vmx", Self.intel)))
        XCTAssertNoThrow(try apply("qemu64,+vmx", Self.amd), "the host check is nestingPolicy's")
    }

    // MARK: A real machine

    func testMachineAppliesToEveryVCPU() throws {
        _ = try requireKVM()
        let machine = try Machine(memorySize: 16 << 20, vcpus: 2)
        let supported = try machine.supportedCPUID()
        XCTAssertTrue(CPUFeatures.x2apic.isSet(in: supported), "the in-kernel irqchip gives x2APIC")
        try machine.apply(cpu: model("qemu64,-x2apic,kvm=off,vendor=GenuineIntel"))
        for vcpu in machine.vcpus {
            let t = try vcpu.cpuid()
            XCTAssertEqual(t.vendor, "GenuineIntel")
            XCTAssertFalse(on("x2apic", t))
            XCTAssertNil(t[0x4000_0000])
            XCTAssertEqual(t[1]!.ebx >> 24, vcpu.id, "APIC ID")
            XCTAssertEqual(t.brand, "QEMU Virtual CPU version 2.5+")
        }
        let flat = try Machine(memorySize: 16 << 20)
        XCTAssertFalse(CPUFeatures.x2apic.isSet(in: try flat.supportedCPUID()), "no irqchip, no x2APIC to offer")
    }
}

extension CPUID {
    func with(_ name: String) -> CPUID {
        let f = CPUFeatures.named(name)!
        var t = self
        t[f.word.leaf, f.word.subleaf]![f.word.register] |= f.mask
        return t
    }
    func without(_ name: String) -> CPUID {
        let f = CPUFeatures.named(name)!
        var t = self
        t[f.word.leaf, f.word.subleaf]![f.word.register] &= ~f.mask
        return t
    }
}
