import KVMCore

// The lab's snapshots are KVMCore's (`Machine.snapshot()`, `Snapshot.write(to:)`,
// `Snapshot(contentsOf:)`, `Machine(restoring:)`, Docs/snapshot-format.md). The
// serial output and the facts so far are device state a restored machine
// carries on; the stops so far travel in the snapshot's notes.

extension Snapshot {
    static let eventsNote = "nested-lab.events"

    /// The stops of the run before the snapshot.
    var labEvents: [String] {
        guard let bytes = notes[Snapshot.eventsNote], !bytes.isEmpty else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(
            String.init)
    }

    static func notes(events: [String]) -> [String: [UInt8]] {
        [eventsNote: Array(events.joined(separator: "\n").utf8)]
    }

    /// vCPU 0's nested state, decoded.
    var nestedState: NestedState? { vcpus[0].nestedState.flatMap { try? NestedState(bytes: $0) } }
}

extension LabGuest {
    /// A snapshot of `machine`, stopped by the run loop, with the stops so far.
    static func snapshot(_ machine: Machine, events: [String]) throws -> Snapshot {
        try machine.snapshot(notes: Snapshot.notes(events: events))
    }

    /// A fresh machine in the snapshot's state (nesting is in its CPUID and MSRs).
    static func restore(_ snapshot: Snapshot, kvm: KVM) throws -> Machine {
        do {
            return try Machine(restoring: snapshot, serial: .buffer, kvm: kvm)
        } catch {
            throw LabFailure("restore: \(error)")
        }
    }
}
