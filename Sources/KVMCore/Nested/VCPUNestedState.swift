extension VCPU {
    /// KVM_GET_NESTED_STATE as raw bytes, with a buffer of KVM_CAP_NESTED_STATE
    /// bytes, 4 KiB aligned, header `size` preset. Where the host has no nested state
    /// the ioctl is still made (so the errno is the kernel's) and the error says why.
    public func nestedStateBytes() throws -> [UInt8] {
        let capability = vm.kvm.check(.nestedState)
        return try NestedState.withBuffer(capacity: max(capability, NestedState.headerSize)) { buffer in
            try handle.ioctl(.getNestedState, buffer.baseAddress) { err in
                if capability == 0 { return "host KVM has no nested state support (KVM_CAP_NESTED_STATE = 0)" }
                if err == .E2BIG { return "the state is larger than KVM_CAP_NESTED_STATE (\(capability) bytes) said" }
                return nil
            }
            let size = Int(buffer.load(fromByteOffset: 4, as: UInt32.self))
            return Array(buffer.prefix(min(max(size, NestedState.headerSize), buffer.count)))
        }
    }

    /// KVM_GET_NESTED_STATE, decoded.
    public func nestedState() throws -> NestedState {
        try NestedState(bytes: nestedStateBytes())
    }

    /// What the validator needs to know about this host and vCPU, read now: restore
    /// sregs (EFER.SVME), CPUID and events before nested state, as the selftests do.
    public func nestedStateContext() throws -> NestedStateHostContext {
        let sregs = try specialRegisters()
        let table = try cpuid()
        let vendor: NestedVendor =
            switch HostCPU.current().vendor {
            case .intel: .vmx
            case .amd: .svm
            case .other: .unknown
            }
        let physBits = table[0x8000_0008].map { Int($0.eax & 0xFF) }
        return NestedStateHostContext(
            capabilitySize: vm.kvm.check(.nestedState), vendor: vendor, efer: sregs.efer,
            evmcsEnabled: false, guestHasVMX: (table[1]?.ecx ?? 0) & (1 << 5) != 0,
            inSMM: (try? events()).map { $0.smi.smm != 0 }, cr0: sregs.cr0,
            maxPhysAddrBits: physBits)
    }

    /// KVM_SET_NESTED_STATE, after checking the rules the kernel enforces: a broken
    /// rule is named (`NestedStateRejected`) instead of a bare EINVAL. `validate:
    /// false` sends the bytes as they are (to compare with the kernel's verdict).
    public func setNestedState(_ state: NestedState, validate: Bool = true) throws {
        let context = try nestedStateContext()
        let violations = NestedStateValidator.validate(state, context: context)
        if validate, violations.contains(where: { $0.severity == .error }) {
            throw NestedStateRejected(violations: violations)
        }
        try state.withEncodedBuffer { raw in
            let buffer = UnsafeMutableRawBufferPointer.allocate(
                byteCount: max(raw.count, NestedState.headerSize), alignment: 4096)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.copyMemory(from: raw)
            try handle.ioctl(.setNestedState, buffer.baseAddress) { _ in
                if context.capabilitySize == 0 {
                    return "host KVM has no nested state support (KVM_CAP_NESTED_STATE = 0)"
                }
                let named = violations.map(\.message)
                return named.isEmpty
                    ? "the kernel refused a state that passes every rule kvmrun checks"
                    : named.joined(separator: "; ")
            }
        }
    }
}

/// A nested state refused before KVM_SET_NESTED_STATE, with every rule it breaks.
public struct NestedStateRejected: Error, CustomStringConvertible, Sendable {
    /// Every rule the state breaks, warnings included.
    public let violations: [NestedStateViolation]
    /// One line: the broken error rules' messages.
    public var description: String {
        "KVM_SET_NESTED_STATE: refused before the ioctl: "
            + violations.filter { $0.severity == .error }.map(\.message).joined(separator: "; ")
    }
}
