// Text and JSON renderings of a nested state. The JSON schema is documented in
// Docs/nested-state-schema.md ("kvm-nested-state/1"); summary:
//
// {
//   "schema": "kvm-nested-state/1",
//   "flags": {"value": "0x0101", "names": ["GUEST_MODE", "GIF_SET"]},
//   "format": {"value": 1, "name": "svm"},          // name: "vmx" | "svm" | "unknown"
//   "size": 4224,                                    // header `size` field (integer)
//   "trailing_bytes": 0,                             // bytes after `size` (integer)
//   "vmx": null | {
//     "vmxon_pa": "0x…16", "vmcs12_pa": "0x…16",
//     "smm_flags": {"value": "0x0000", "names": []},
//     "pad": "0x0000",
//     "flags": {"value": "0x00000000", "names": []},
//     "preemption_timer_deadline": "0x…16",
//     "reserved_nonzero_bytes": 0,
//     "vmcs12": null | PAGE, "shadow_vmcs12": null | PAGE,
//     "extra_bytes": 0 },
//   "svm": null | {
//     "vmcb_pa": "0x…16", "reserved_nonzero_bytes": 0,
//     "vmcb": null | {"bytes": 4096, "control": FIELDS, "save": FIELDS,
//                     "unknown_nonzero_bytes": 0},
//     "extra_bytes": 0 },
//   "unknown": null | {"header_hex": "…240 hex digits…", "data_bytes": 0},
//   "raw_hex": null | "…"                           // only with includeRaw
// }
// PAGE   = {"bytes": 4096, "fields": FIELDS, "unknown_nonzero_bytes": 0}
// FIELDS = {"<kernel field name>": "0x<hex padded to the field width>" | "<hex bytes>" | null, …}
//          in offset order; null when the blob ends before the field.
// Exactly one of "vmx", "svm", "unknown" is non-null. Scalar field values are always
// hex strings zero-padded to the field's width (2 digits per byte); sizes and counts
// are JSON integers.

import Glibc

extension NestedState {
    package static let jsonSchemaName = "kvm-nested-state/1"

    // MARK: Text

    /// An aligned `name: value` dump, one section per part. Addresses and registers are
    /// zero-padded hex, flag and control fields hex plus the names of the set bits
    /// (`flags: 0x101 GUEST_MODE|GIF_SET`), exit reasons and event fields decoded.
    /// With `includeZeroFields: false`, fields of the pages that are 0 are left out.
    public func textDump(includeZeroFields: Bool = true) -> String {
        var out: [String] = []
        func section(_ title: String, _ rows: [(String, String)]) {
            out.append(title)
            let width = rows.map { $0.0.count }.max() ?? 0
            for (name, value) in rows {
                out.append("  " + name + ":" + String(repeating: " ", count: width - name.count + 1) + value)
            }
        }
        section(
            "kvm_nested_state",
            [
                ("flags", flags.description),
                ("format", "\(format) (\(format.rawValue))"),
                ("size", "\(size)"),
            ] + (trailing.isEmpty ? [] : [("trailing bytes", "\(trailing.count)")]))

        switch payload {
        case .vmx(let v):
            let h = v.header
            var rows: [(String, String)] = [
                ("vmxon_pa", NestedState.gpaText(h.vmxonPA)),
                ("vmcs12_pa", NestedState.gpaText(h.vmcs12PA)),
                ("smm.flags", h.smmFlags.description),
                ("flags", h.flags.description),
                ("preemption_timer_deadline", NestedHex.padded(h.preemptionTimerDeadline, width: 8)),
            ]
            if h.pad != 0 { rows.append(("pad", NestedHex.padded(UInt64(h.pad), width: 2))) }
            let reservedNonZero = h.reserved.filter { $0 != 0 }.count
            if reservedNonZero > 0 { rows.append(("reserved non-zero bytes", "\(reservedNonZero)")) }
            section("vmx header", rows)
            if let page = v.vmcs12 {
                section(
                    "vmcs12 (\(NestedState.pageTitle(page)))",
                    NestedState.rows(VMCS12.layout, page.raw, includeZeroFields))
            } else {
                out.append("vmcs12: absent")
            }
            if let page = v.shadowVMCS12 {
                section(
                    "shadow_vmcs12 (\(NestedState.pageTitle(page)))",
                    NestedState.rows(VMCS12.layout, page.raw, includeZeroFields))
            }
            if !v.extra.isEmpty { out.append("extra data bytes: \(v.extra.count)") }
        case .svm(let s):
            var rows: [(String, String)] = [("vmcb_pa", NestedHex.padded(s.header.vmcbPA, width: 8))]
            let reservedNonZero = s.header.reserved.filter { $0 != 0 }.count
            if reservedNonZero > 0 { rows.append(("reserved non-zero bytes", "\(reservedNonZero)")) }
            section("svm header", rows)
            if let vmcb = s.vmcb {
                section(
                    "vmcb.control (L1's vmcb12 control area as cached by KVM, \(vmcb.control.raw.count) bytes)",
                    NestedState.rows(VMCBControl.layout, vmcb.control.raw, includeZeroFields))
                section(
                    "vmcb.save (L1 host state saved at VMRUN = vmcb01.save, not L2; \(vmcb.save.raw.count) bytes)",
                    NestedState.rows(VMCBSaveArea.layout, vmcb.save.raw, includeZeroFields))
                let unknown =
                    VMCBControl.layout.unknownNonZeroBytes(in: vmcb.control.raw)
                    + VMCBSaveArea.layout.unknownNonZeroBytes(in: vmcb.save.raw)
                    + vmcb.tail.filter { $0 != 0 }.count
                if unknown > 0 { out.append("vmcb unknown non-zero bytes: \(unknown)") }
            } else {
                out.append("vmcb: absent")
            }
            if !s.extra.isEmpty { out.append("extra data bytes: \(s.extra.count)") }
        case .unknown(let header, let data):
            section("unknown format", [("header", NestedHex.bytes(header)), ("data bytes", "\(data.count)")])
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func gpaText(_ gpa: UInt64) -> String {
        gpa == invalidGPA ? NestedHex.padded(gpa, width: 8) + " (none)" : NestedHex.padded(gpa, width: 8)
    }

    static func pageTitle(_ page: VMCS12) -> String {
        var parts: [String] = [
            page.isComplete ? "\(page.raw.count) bytes" : "\(page.raw.count) of \(VMCS12.pageSize) bytes"
        ]
        if page.raw.count >= 4 {
            parts.append(
                "revision \(NestedHex.string(UInt64(page.revisionID)))"
                    + (page.revisionID == VMCS12.revision
                        ? "" : " (expected \(NestedHex.string(UInt64(VMCS12.revision))))"))
        }
        let unknown = VMCS12.layout.unknownNonZeroBytes(in: page.raw)
        if unknown > 0 { parts.append("\(unknown) unknown non-zero bytes") }
        return parts.joined(separator: ", ")
    }

    static func rows(_ layout: NestedLayout, _ raw: [UInt8], _ includeZero: Bool) -> [(String, String)] {
        var rows: [(String, String)] = []
        for f in layout.fields {
            let v = f.value(in: raw)
            switch v {
            case .absent:
                if includeZero { rows.append((f.name, "absent")) }
            case .bytes(let b):
                if includeZero || b.contains(where: { $0 != 0 }) { rows.append((f.name, NestedHex.bytes(b))) }
            case .uint(let x, let w):
                if !includeZero && x == 0 { continue }
                rows.append((f.name, format(x, width: w, style: f.style)))
            case .page:
                break
            }
        }
        return rows
    }

    static func format(_ x: UInt64, width: Int, style: NestedFieldStyle) -> String {
        switch style {
        case .hex, .bytes: return NestedHex.padded(x, width: width)
        case .decimal: return String(x)
        case .bits(let table): return table.describe(x)
        case .annotated(let a): return NestedHex.padded(x, width: width) + " (" + a.describe(x) + ")"
        }
    }

    // MARK: JSON

    /// The state as JSON (schema "kvm-nested-state/1", see the file comment and
    /// Docs/nested-state-schema.md). With `includeRaw`, "raw_hex" holds the whole
    /// encoded blob so the document alone can restore the state.
    package func json(includeRaw: Bool = false) -> JSONValue {
        func flagObject(_ raw: UInt64, width: Int, _ table: NestedBitNames) -> JSONValue {
            var names: [JSONValue] = []
            for (bit, name) in table.table where raw & (UInt64(1) << UInt64(bit)) != 0 { names.append(.string(name)) }
            let unknown = raw & ~table.table.reduce(UInt64(0)) { $0 | UInt64(1) << UInt64($1.bit) }
            if unknown != 0 { names.append(.string(NestedHex.string(unknown))) }
            return .object([("value", .string(NestedHex.padded(raw, width: width))), ("names", .array(names))])
        }
        func hex(_ v: UInt64, _ width: Int) -> JSONValue { .string(NestedHex.padded(v, width: width)) }
        func fields(_ layout: NestedLayout, _ raw: [UInt8]) -> JSONValue {
            .object(layout.fields.map { ($0.name, $0.value(in: raw).json) })
        }
        func page(_ p: VMCS12?) -> JSONValue {
            guard let p else { return .null }
            return .object([
                ("bytes", .int(Int64(p.raw.count))), ("fields", fields(VMCS12.layout, p.raw)),
                ("unknown_nonzero_bytes", .int(Int64(VMCS12.layout.unknownNonZeroBytes(in: p.raw)))),
            ])
        }
        let formatName: String = format == .vmx ? "vmx" : format == .svm ? "svm" : "unknown"
        var vmxJSON = JSONValue.null
        var svmJSON = JSONValue.null
        var unknownJSON = JSONValue.null
        switch payload {
        case .vmx(let v):
            let h = v.header
            vmxJSON = .object([
                ("vmxon_pa", hex(h.vmxonPA, 8)), ("vmcs12_pa", hex(h.vmcs12PA, 8)),
                ("smm_flags", flagObject(UInt64(h.smmFlags.rawValue), width: 2, .smmFlags)),
                ("pad", hex(UInt64(h.pad), 2)),
                ("flags", flagObject(UInt64(h.flags.rawValue), width: 4, .vmxHeaderFlags)),
                ("preemption_timer_deadline", hex(h.preemptionTimerDeadline, 8)),
                ("reserved_nonzero_bytes", .int(Int64(h.reserved.filter { $0 != 0 }.count))),
                ("vmcs12", page(v.vmcs12)), ("shadow_vmcs12", page(v.shadowVMCS12)),
                ("extra_bytes", .int(Int64(v.extra.count))),
            ])
        case .svm(let s):
            var vmcbJSON = JSONValue.null
            if let vmcb = s.vmcb {
                let unknown =
                    VMCBControl.layout.unknownNonZeroBytes(in: vmcb.control.raw)
                    + VMCBSaveArea.layout.unknownNonZeroBytes(in: vmcb.save.raw) + vmcb.tail.filter { $0 != 0 }.count
                vmcbJSON = .object([
                    ("bytes", .int(Int64(vmcb.bytes.count))),
                    ("control", fields(VMCBControl.layout, vmcb.control.raw)),
                    ("save", fields(VMCBSaveArea.layout, vmcb.save.raw)),
                    ("unknown_nonzero_bytes", .int(Int64(unknown))),
                ])
            }
            svmJSON = .object([
                ("vmcb_pa", hex(s.header.vmcbPA, 8)),
                ("reserved_nonzero_bytes", .int(Int64(s.header.reserved.filter { $0 != 0 }.count))),
                ("vmcb", vmcbJSON), ("extra_bytes", .int(Int64(s.extra.count))),
            ])
        case .unknown(let header, let data):
            unknownJSON = .object([
                ("header_hex", .string(NestedHex.bytes(header))), ("data_bytes", .int(Int64(data.count))),
            ])
        }
        return .object([
            ("schema", .string(NestedState.jsonSchemaName)),
            ("flags", flagObject(UInt64(flags.rawValue), width: 2, .nestedFlags)),
            ("format", .object([("value", .int(Int64(format.rawValue))), ("name", .string(formatName))])),
            ("size", .int(Int64(size))),
            ("trailing_bytes", .int(Int64(trailing.count))),
            ("vmx", vmxJSON), ("svm", svmJSON), ("unknown", unknownJSON),
            ("raw_hex", includeRaw ? .string(NestedHex.bytes(bytes)) : .null),
        ])
    }
}
