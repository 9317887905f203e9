// Field-by-field comparison of two nested states.
//
// Paths use the JSON names: header fields "header.flags" / "header.format" /
// "header.size"; VMX header "vmx.vmxon_pa", "vmx.vmcs12_pa", "vmx.smm_flags", "vmx.pad",
// "vmx.flags", "vmx.preemption_timer_deadline"; SVM header "svm.vmcb_pa"; page fields
// "vmcs12.guest_rip", "shadow_vmcs12.vm_exit_reason", "vmcb.control.exit_code",
// "vmcb.save.cs.base". A page present on one side only is one difference at the page's
// path ("vmcs12", "shadow_vmcs12", "vmcb") between `.absent` and `.page(bytes:)`.
// Bytes outside named fields (reserved header bytes, padding, the unused rest of each
// page, extra data, trailing bytes) are not listed; they are counted in
// `unknownBytesDiffering`.

import Glibc

/// One named field whose value differs between two nested states.
public struct FieldDifference: Equatable, Sendable, CustomStringConvertible {
    /// Where the field is: "vmx.vmcs12.guest_rip", "svm.vmcb.control.exit_code", ….
    public let path: String
    /// The value in the first state.
    public let old: NestedFieldValue
    /// The value in the second state.
    public let new: NestedFieldValue

    /// A difference from its parts.
    public init(path: String, old: NestedFieldValue, new: NestedFieldValue) {
        self.path = path
        self.old = old
        self.new = new
    }

    /// "vmcb.control.exit_code: 0x…0060 -> 0x…0072".
    public var description: String { "\(path): \(old) -> \(new)" }
}

/// What changed between two nested states, field by field.
public struct NestedStateDiff: Equatable, Sendable, CustomStringConvertible {
    /// Changed named fields, in layout order.
    public var fields: [FieldDifference]
    /// Differing bytes outside named fields (a byte present on one side only counts).
    public var unknownBytesDiffering: Int

    /// Whether the states are byte-for-byte the same.
    public var isEmpty: Bool { fields.isEmpty && unknownBytesDiffering == 0 }

    /// Looks up the difference for one path.
    public subscript(path: String) -> FieldDifference? { fields.first { $0.path == path } }

    /// `{"schema": "kvm-nested-state-diff/1", "fields": [{"path", "old", "new"}, …],
    /// "unknown_bytes_differing": n}`. Values as in the state JSON: hex strings for
    /// fields, null for absent, an integer byte count for a page that is present.
    package var json: JSONValue {
        .object([
            ("schema", .string("kvm-nested-state-diff/1")),
            (
                "fields",
                .array(
                    fields.map { .object([("path", .string($0.path)), ("old", $0.old.json), ("new", $0.new.json)]) })
            ),
            ("unknown_bytes_differing", .int(Int64(unknownBytesDiffering))),
        ])
    }

    /// One line per changed field, then the count of other differing bytes.
    public var description: String {
        var lines = fields.map(\.description)
        if unknownBytesDiffering > 0 { lines.append("(\(unknownBytesDiffering) bytes outside named fields differ)") }
        return lines.isEmpty ? "(no differences)" : lines.joined(separator: "\n")
    }
}

extension NestedState {
    /// The named fields that differ between `a` (old) and `b` (new), plus a count of
    /// differing bytes outside named fields.
    public static func diff(_ a: NestedState, _ b: NestedState) -> NestedStateDiff {
        var out: [FieldDifference] = []
        var unknown = 0
        func scalar(_ path: String, _ x: UInt64, _ y: UInt64, _ width: Int) {
            if x != y {
                out.append(FieldDifference(path: path, old: .uint(x, width: width), new: .uint(y, width: width)))
            }
        }
        func rawDiff(_ x: [UInt8], _ y: [UInt8]) -> Int {
            var n = 0
            for i in 0..<max(x.count, y.count) where i >= x.count || i >= y.count || x[i] != y[i] { n += 1 }
            return n
        }
        func pages(_ path: String, _ layout: NestedLayout, _ x: [UInt8]?, _ y: [UInt8]?) {
            switch (x, y) {
            case (nil, nil): return
            case (let x?, nil): out.append(FieldDifference(path: path, old: .page(bytes: x.count), new: .absent))
            case (nil, let y?): out.append(FieldDifference(path: path, old: .absent, new: .page(bytes: y.count)))
            case (let x?, let y?):
                for f in layout.fields {
                    let vx = f.value(in: x)
                    let vy = f.value(in: y)
                    if vx != vy { out.append(FieldDifference(path: path + "." + f.name, old: vx, new: vy)) }
                }
                unknown += layout.unknownDifferingBytes(x, y)
            }
        }

        scalar("header.flags", UInt64(a.flags.rawValue), UInt64(b.flags.rawValue), 2)
        scalar("header.format", UInt64(a.format.rawValue), UInt64(b.format.rawValue), 2)
        scalar("header.size", UInt64(a.size), UInt64(b.size), 4)
        unknown += rawDiff(a.trailing, b.trailing)

        switch (a.payload, b.payload) {
        case (.vmx(let x), .vmx(let y)):
            scalar("vmx.vmxon_pa", x.header.vmxonPA, y.header.vmxonPA, 8)
            scalar("vmx.vmcs12_pa", x.header.vmcs12PA, y.header.vmcs12PA, 8)
            scalar("vmx.smm_flags", UInt64(x.header.smmFlags.rawValue), UInt64(y.header.smmFlags.rawValue), 2)
            scalar("vmx.pad", UInt64(x.header.pad), UInt64(y.header.pad), 2)
            scalar("vmx.flags", UInt64(x.header.flags.rawValue), UInt64(y.header.flags.rawValue), 4)
            scalar(
                "vmx.preemption_timer_deadline", x.header.preemptionTimerDeadline, y.header.preemptionTimerDeadline, 8)
            unknown += rawDiff(x.header.reserved, y.header.reserved)
            pages("vmcs12", VMCS12.layout, x.vmcs12?.raw, y.vmcs12?.raw)
            pages("shadow_vmcs12", VMCS12.layout, x.shadowVMCS12?.raw, y.shadowVMCS12?.raw)
            unknown += rawDiff(x.extra, y.extra)
        case (.svm(let x), .svm(let y)):
            scalar("svm.vmcb_pa", x.header.vmcbPA, y.header.vmcbPA, 8)
            unknown += rawDiff(x.header.reserved, y.header.reserved)
            switch (x.vmcb, y.vmcb) {
            case (nil, nil): break
            case (let v?, nil):
                out.append(FieldDifference(path: "vmcb", old: .page(bytes: v.bytes.count), new: .absent))
            case (nil, let v?):
                out.append(FieldDifference(path: "vmcb", old: .absent, new: .page(bytes: v.bytes.count)))
            case (let v?, let w?):
                pages("vmcb.control", VMCBControl.layout, v.control.raw, w.control.raw)
                pages("vmcb.save", VMCBSaveArea.layout, v.save.raw, w.save.raw)
                unknown += rawDiff(v.tail, w.tail)
            }
            unknown += rawDiff(x.extra, y.extra)
        default:
            // Different (or unknown) formats: nothing to match field by field.
            unknown += rawDiff(a.unionBytes + a.dataBytes, b.unionBytes + b.dataBytes)
        }
        return NestedStateDiff(fields: out, unknownBytesDiffering: unknown)
    }

    /// `NestedState.diff(self, other)`.
    public func diff(against other: NestedState) -> NestedStateDiff { NestedState.diff(self, other) }
}
