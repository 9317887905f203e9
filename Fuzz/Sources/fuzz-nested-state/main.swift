import FuzzSupport
import KVMCore

// The nested-state decoder, encoder, validator and renderers
// (`kvmrun nested-state --decode FILE` reads any file). Properties:
// `NestedState(bytes:)` throws NestedStateError or decodes; `.bytes` of a decoded
// state is the input, byte for byte; `withUpdatedSize()` encodes to a state that
// decodes again; `NestedStateValidator.validate(bytes:context:)` never traps and
// reports a decode failure as a violation; the text dump, JSON and a diff render.

let contexts: [NestedStateHostContext] = [
    // A VMX host with nested state, facts of a long-mode vCPU that has VMX.
    NestedStateHostContext(
        capabilitySize: NestedState.vmxCapabilitySize, vendor: .vmx, efer: 0xD01,
        guestHasVMX: true, inSMM: false, cr0: 0x8000_0031, maxPhysAddrBits: 46),
    // An SVM host, EFER.SVME set, a small MAXPHYADDR.
    NestedStateHostContext(
        capabilitySize: NestedState.svmCapabilitySize, vendor: .svm, efer: 0x1D00,
        inSMM: true, cr0: 0x11, maxPhysAddrBits: 36),
    // No nested state support at all, nothing known about the vCPU (kvm_pvm).
    NestedStateHostContext(capabilitySize: 0, vendor: .unknown),
    // Odd facts: MAXPHYADDR out of range, eVMCS on, VMX not in CPUID.
    NestedStateHostContext(
        capabilitySize: 128, vendor: .vmx, efer: 0, evmcsEnabled: true,
        guestHasVMX: false, cr0: 0, maxPhysAddrBits: 64),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNestedState(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = FuzzReader(data, size).bytes
    for context in contexts {
        let violations = NestedStateValidator.validate(bytes: bytes, context: context)
        for v in violations { _ = v.description + v.name + v.kernelReference }
    }
    let state: NestedState
    do {
        state = try NestedState(bytes: bytes)
    } catch {
        fuzzExpectedError(error, [NestedStateError.self])
        fuzzCheck(
            !NestedStateValidator.validate(bytes: bytes, context: contexts[0]).isEmpty,
            "undecodable blob (\(error)) validated clean")
        return 0
    }
    fuzzCheck(
        state.bytes == bytes, "decode → encode changed the blob (\(bytes.count) bytes in, \(state.bytes.count) out)")
    fuzzCheck(
        Int(state.size) + state.trailing.count == bytes.count,
        "size \(state.size) + trailing \(state.trailing.count) ≠ \(bytes.count)")
    for context in contexts {
        _ = NestedStateValidator.validate(state, context: context)
        _ = NestedStateValidator.isAcceptable(state, context: context)
    }
    let resized = state.withUpdatedSize()
    let again: NestedState
    do {
        again = try NestedState(bytes: resized.bytes)
    } catch {
        fuzzCheck(false, "withUpdatedSize() made an undecodable state: \(error)")
        return 0
    }
    fuzzCheck(again.bytes == resized.bytes, "withUpdatedSize() state does not round-trip")
    _ = state.textDump()
    _ = state.textDump(includeZeroFields: false)
    _ = state.json(includeRaw: bytes.count <= 512).compact
    let diff = NestedState.diff(state, again)
    _ = diff.description
    _ = diff.json.compact
    fuzzCheck(NestedState.diff(state, state).isEmpty, "a state differs from itself")
    return 0
}
