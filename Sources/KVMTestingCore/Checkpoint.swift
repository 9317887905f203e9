import KVMCore

/// A guest paused at a hostcall that resumes (the KVM selftests' stage pattern):
/// `sync_stage(n)` / `sync_stage_value(n)` (HC_SYNC), `HC_DUMP_NESTED` or
/// `HC_SNAPSHOT`. The test reads or changes registers, MSRs, memory or nested
/// state through `vcpu` and `memory`; the guest resumes when the handler returns.
/// A handler that throws ends the run, failing it with the error.
public struct Checkpoint {
    public enum Reason: Equatable, Sendable {
        /// HC_SYNC with this stage number.
        case sync(stage: UInt64)
        /// HC_DUMP_NESTED: the guest (often an L2) asks the host to look at nested state now.
        case nestedDump
        /// HC_SNAPSHOT with this tag.
        case snapshot(tag: UInt64)
    }

    public let reason: Reason
    public let machine: Machine
    let factsStart: Int
    let baseFacts: [HostCall.Fact]
    let serialStart: Int

    /// The HC_SYNC stage, or nil for the other reasons.
    public var stage: UInt64? { if case .sync(let s) = reason { s } else { nil } }
    /// The bootstrap vCPU (the one that made the hostcall).
    public var vcpu: VCPU { machine.vcpu }
    public var memory: GuestMemory { machine.memory }
    /// The facts of this run so far.
    public var facts: GuestFacts { GuestFacts(baseFacts + machine.hostcall.facts.dropFirst(factsStart)) }
    /// This run's serial output so far.
    public var serial: String { String(decoding: machine.serial.output.dropFirst(serialStart), as: UTF8.self) }

    /// Answers the hostcall: writes `value` into the block's args[0], which the
    /// guest library's `hostcall()` returns, so `sync_stage_value(n)` returns it.
    /// (The block's address is in EAX at the `out`, as the library's hostcall leaves it.)
    public func reply(_ value: UInt64) throws {
        let block = try vcpu.registers().rax & 0xFFFF_FFFF
        guard try memory.read(UInt32.self, at: block) == HostCall.magic else {
            throw ConfigurationError.invalidRequest(
                "checkpoint reply: no hostcall block at EAX = \(hex(block)) (the guest library's hostcall leaves it there)"
            )
        }
        try memory.write(value, at: block + 8)
    }
}
