import XCTest

@testable import KVMCore

final class NestedRenderingTests: XCTestCase {

    // MARK: Text dump

    func testSVMTextDump() throws {
        let state = try NestedState(bytes: NestedBlob.svmGuestMode())
        let text = state.textDump()
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "kvm_nested_state")
        XCTAssertEqual(lines[1], "  flags:  0x101 GUEST_MODE|GIF_SET")
        XCTAssertEqual(lines[2], "  format: svm (1)")
        XCTAssertEqual(lines[3], "  size:   4224")
        XCTAssertTrue(lines.contains("  vmcb_pa: 0x0000000000003000"))
        XCTAssertTrue(text.contains("vmcb.save (L1 host state saved at VMRUN = vmcb01.save, not L2"))
        XCTAssertTrue(lines.contains { $0.hasPrefix("  exit_code:") && $0.hasSuffix("0x0000000000000078 (HLT)") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("  intercept_misc2:") && $0.hasSuffix("0x1 VMRUN") })
        XCTAssertTrue(
            lines.contains {
                $0.hasPrefix("  exit_int_info:") && $0.hasSuffix("(valid vector=14 type=exception error-code)")
            })
        XCTAssertTrue(lines.contains { $0.hasPrefix("  efer:") && $0.hasSuffix("0x1d00 LME|LMA|NXE|SVME") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("  cr0:") && $0.hasSuffix("0x80000011 PE|ET|PG") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("  asid:") && $0.hasSuffix(" 1") })
        // Values in a section start in the same column.
        let section = lines.drop { !$0.hasPrefix("vmcb.control") }.dropFirst().prefix { $0.hasPrefix("  ") }
        let columns = Set(
            section.map { line -> Int in
                let afterColon = line.firstIndex(of: ":")!
                return line[line.index(after: afterColon)...].prefix { $0 == " " }.count
                    + line.distance(from: line.startIndex, to: afterColon)
            })
        XCTAssertEqual(columns.count, 1)
    }

    func testVMXTextDump() throws {
        let state = try NestedState(bytes: NestedBlob.vmxGuestMode())
        let text = state.textDump(includeZeroFields: false)
        XCTAssertTrue(text.contains("  flags:  0x3 GUEST_MODE|RUN_PENDING\n"))
        XCTAssertTrue(text.contains("vmcs12 (4096 bytes, revision 0x11e57ed0)"))
        XCTAssertTrue(text.contains("shadow_vmcs12 (4096 bytes, revision 0x11e57ed0)"))
        XCTAssertTrue(text.contains("vm_exit_reason:"))
        XCTAssertTrue(text.contains("0x0000000c (HLT)"))
        XCTAssertTrue(text.contains("(valid vector=14 type=hw-exception error-code)"))
        XCTAssertTrue(text.contains("0x80000080 HLT_EXITING|ACTIVATE_SECONDARY_CONTROLS"))
        XCTAssertTrue(text.contains("0x4002 ENABLE_EPT|SHADOW_VMCS"))
        XCTAssertTrue(text.contains("flags:                     0x1 PREEMPTION_TIMER_DEADLINE"))
        XCTAssertTrue(text.contains("  pin_based_vm_exec_control: 0x16\n")) // only unnamed (always-1) bits
        XCTAssertFalse(text.contains("io_bitmap_a")) // zero fields left out
        XCTAssertTrue(state.textDump().contains("io_bitmap_a"))

        let off = NestedState.vmx(VMXNestedState())
        let offText = off.textDump()
        XCTAssertTrue(offText.contains("vmxon_pa:                  0xffffffffffffffff (none)"))
        XCTAssertTrue(offText.contains("vmcs12: absent"))
    }

    func testTextDumpOfOddStates() throws {
        var blob = NestedBlob.vmxGuestMode()
        blob = Array(blob[0..<700])
        NestedBlob.put(&blob, 4, 4, 700)
        NestedBlob.put(&blob, 128, 4, 0x1234)
        let partial = try NestedState(bytes: blob).textDump()
        XCTAssertTrue(partial.contains("vmcs12 (572 of 4096 bytes, revision 0x1234 (expected 0x11e57ed0))"))
        XCTAssertTrue(partial.contains("vm_exit_reason:"))
        XCTAssertTrue(partial.contains("absent"))
        let unknown = NestedState(format: NestedStateFormat(rawValue: 9), payload: .unknown(header: [1, 2], data: [3]))
        XCTAssertTrue(unknown.textDump().contains("format: unknown(9) (9)"))
    }

    func testFlagDescriptions() {
        XCTAssertEqual(NestedStateFlags([.guestMode, .gifSet]).description, "0x101 GUEST_MODE|GIF_SET")
        XCTAssertEqual(NestedStateFlags(rawValue: 0x21).description, "0x21 GUEST_MODE|0x20")
        XCTAssertEqual(NestedStateFlags(rawValue: 0x20).description, "0x20")
        XCTAssertEqual(NestedStateFlags().description, "0x0")
        XCTAssertEqual(NestedSMMFlags([.guestMode, .vmxon]).description, "0x3 GUEST_MODE|VMXON")
        XCTAssertEqual(NestedBitNames.cr0.describe(0x8000_0011), "0x80000011 PE|ET|PG")
        XCTAssertEqual(NestedAnnotation.svmExitCode.describe(0x400), "NPF")
        XCTAssertEqual(NestedAnnotation.svmExitCode.describe(0x13), "WRITE_CR3")
        XCTAssertEqual(NestedAnnotation.svmExitCode.describe(UInt64.max), "ERR (invalid guest state)")
        XCTAssertEqual(NestedAnnotation.vmxExitReason.describe(0x8000_0021), "INVALID_STATE (VM-entry failure)")
        XCTAssertEqual(NestedAnnotation.vmxInterruptionInfo.describe(0), "invalid")
    }

    // MARK: JSON

    func testJSONSchemaShape() throws {
        let state = try NestedState(bytes: NestedBlob.svmGuestMode())
        let json = state.json()
        XCTAssertEqual(json["schema"]?.stringValue, "kvm-nested-state/1")
        XCTAssertEqual(json["flags"]?["value"]?.stringValue, "0x0101")
        XCTAssertEqual(json["flags"]?["names"], .array([.string("GUEST_MODE"), .string("GIF_SET")]))
        XCTAssertEqual(json["format"]?["value"]?.int64Value, 1)
        XCTAssertEqual(json["format"]?["name"]?.stringValue, "svm")
        XCTAssertEqual(json["size"]?.int64Value, 4224)
        XCTAssertEqual(json["trailing_bytes"]?.int64Value, 0)
        XCTAssertEqual(json["vmx"], .null)
        XCTAssertEqual(json["unknown"], .null)
        XCTAssertEqual(json["raw_hex"], .null)
        let svm = try XCTUnwrap(json["svm"])
        XCTAssertEqual(svm["vmcb_pa"]?.stringValue, "0x0000000000003000")
        XCTAssertEqual(svm["vmcb"]?["bytes"]?.int64Value, 4096)
        XCTAssertEqual(svm["vmcb"]?["control"]?["exit_code"]?.stringValue, "0x0000000000000078")
        XCTAssertEqual(svm["vmcb"]?["control"]?["asid"]?.stringValue, "0x00000001")
        XCTAssertEqual(svm["vmcb"]?["control"]?["insn_bytes"]?.stringValue, String(repeating: "0", count: 30))
        XCTAssertEqual(svm["vmcb"]?["save"]?["cs.attrib"]?.stringValue, "0x029b")
        XCTAssertEqual(svm["vmcb"]?["save"]?["rip"]?.stringValue, "0x0000000000400000")
        XCTAssertEqual(svm["vmcb"]?["unknown_nonzero_bytes"]?.int64Value, 0)
        // Keys in the documented order.
        XCTAssertEqual(
            json.objectValue?.map(\.0),
            ["schema", "flags", "format", "size", "trailing_bytes", "vmx", "svm", "unknown", "raw_hex"])
        XCTAssertEqual(svm.objectValue?.map(\.0), ["vmcb_pa", "reserved_nonzero_bytes", "vmcb", "extra_bytes"])
        XCTAssertEqual(svm["vmcb"]?["save"]?.objectValue?.first?.0, "es.selector")

        let vmx = try NestedState(bytes: NestedBlob.vmxGuestMode()).json(includeRaw: true)
        XCTAssertEqual(
            vmx["vmx"]?.objectValue?.map(\.0),
            [
                "vmxon_pa", "vmcs12_pa", "smm_flags", "pad", "flags", "preemption_timer_deadline",
                "reserved_nonzero_bytes", "vmcs12", "shadow_vmcs12", "extra_bytes",
            ])
        XCTAssertEqual(vmx["vmx"]?["vmcs12"]?["fields"]?["guest_rip"]?.stringValue, "0xffffffff81000000")
        XCTAssertEqual(vmx["vmx"]?["vmcs12"]?["fields"]?["revision_id"]?.stringValue, "0x11e57ed0")
        XCTAssertEqual(vmx["vmx"]?["shadow_vmcs12"]?["fields"]?["shadow_vmcs"]?.stringValue, "0x01")
        XCTAssertEqual(vmx["vmx"]?["flags"]?["names"], .array([.string("PREEMPTION_TIMER_DEADLINE")]))
        XCTAssertEqual(vmx["raw_hex"]?.stringValue?.count, 8320 * 2)
        XCTAssertEqual(vmx["raw_hex"]?.stringValue, NestedHex.bytes(NestedBlob.vmxGuestMode()))
    }

    func testJSONRoundTripsThroughParser() throws {
        for blob in [NestedBlob.svmGuestMode(), NestedBlob.vmxGuestMode()] {
            let json = try NestedState(bytes: blob).json(includeRaw: true)
            XCTAssertEqual(try JSONValue(parsing: json.pretty), json)
            XCTAssertEqual(try JSONValue(parsing: json.compact), json)
        }
        let partial = NestedState.vmx(VMXNestedState(vmcs12: VMCS12(raw: [1, 2, 3])))
        XCTAssertEqual(partial.json()["vmx"]?["vmcs12"]?["fields"]?["guest_rip"], .null)
        XCTAssertEqual(partial.json()["vmx"]?["vmcs12"]?["bytes"]?.int64Value, 3)
    }

    // MARK: JSONValue itself

    func testJSONEscaping() throws {
        let tricky = "quote\" backslash\\ nl\n cr\r tab\t bs\u{08} ff\u{0C} nul\u{00} us\u{1F} del\u{7F} é 🚀 /"
        let json = JSONValue.object([("k\"ey", .string(tricky))])
        XCTAssertEqual(
            json.compact,
            "{\"k\\\"ey\":\"quote\\\" backslash\\\\ nl\\n cr\\r tab\\t bs\\b ff\\f nul\\u0000 us\\u001f del\u{7F} é 🚀 /\"}"
        )
        XCTAssertEqual(try JSONValue(parsing: json.compact), json)
        XCTAssertEqual(try JSONValue(parsing: "\"\\ud83d\\ude80\\u00e9\\/\""), .string("🚀é/"))
    }

    func testJSONPrettyAndCompact() throws {
        let v = JSONValue.object([
            ("a", .array([.int(-1), .uint(UInt64.max), .bool(true), .null])),
            ("b", .object([])), ("c", .array([])), ("d", .string("")),
        ])
        XCTAssertEqual(v.compact, "{\"a\":[-1,18446744073709551615,true,null],\"b\":{},\"c\":[],\"d\":\"\"}")
        XCTAssertEqual(
            v.pretty,
            """
            {
              "a": [
                -1,
                18446744073709551615,
                true,
                null
              ],
              "b": {},
              "c": [],
              "d": ""
            }
            """)
        XCTAssertEqual(try JSONValue(parsing: v.pretty), v)
        XCTAssertEqual(JSONValue.int(5), JSONValue.uint(5))
        XCTAssertNotEqual(
            JSONValue.object([("a", .null), ("b", .null)]), JSONValue.object([("b", .null), ("a", .null)]))
    }

    func testJSONParserRejectsBadInput() {
        for bad in [
            "", "{", "[1,]", "{\"a\" 1}", "01", "1.5", "1e3", "\"abc", "\"\\x\"", "tru", "[1] 2",
            "\"\\ud800\"", "\"a\u{01}\"", "18446744073709551616", "-9223372036854775809",
        ] {
            XCTAssertThrowsError(try JSONValue(parsing: bad), bad)
        }
        XCTAssertEqual(
            try JSONValue(parsing: " [ -9223372036854775808 , 0 ] "),
            .array([.int(.min), .int(0)]))
    }

    // MARK: Diff

    func testDiffNamesChangedFields() throws {
        let a = try NestedState(bytes: NestedBlob.svmGuestMode())
        var b = a
        b.flags = .gifSet
        b.editVMCB {
            $0.control.exitCode = 0x7b
            $0.save.setSegment(.cs, VMCBSegment(selector: 0x10, attrib: 0x29b, limit: 0xffff_ffff, base: 0x1000))
            $0.tail[5] = 1
            $0.control.raw[0x30] = 7 // reserved byte
        }
        let d = NestedState.diff(a, b)
        XCTAssertEqual(d.fields.map(\.path), ["header.flags", "vmcb.control.exit_code", "vmcb.save.cs.base"])
        XCTAssertEqual(
            d["vmcb.control.exit_code"],
            FieldDifference(path: "vmcb.control.exit_code", old: .uint(0x78, width: 8), new: .uint(0x7b, width: 8)))
        XCTAssertEqual(
            d["vmcb.control.exit_code"]?.description,
            "vmcb.control.exit_code: 0x0000000000000078 -> 0x000000000000007b")
        XCTAssertEqual(d.unknownBytesDiffering, 2)
        XCTAssertFalse(d.isEmpty)
        XCTAssertEqual(d.json["schema"]?.stringValue, "kvm-nested-state-diff/1")
        XCTAssertEqual(
            d.json["fields"]?[1],
            .object([
                ("path", .string("vmcb.control.exit_code")),
                ("old", .string("0x0000000000000078")),
                ("new", .string("0x000000000000007b")),
            ]))
        XCTAssertEqual(d.json["unknown_bytes_differing"]?.int64Value, 2)
        XCTAssertEqual(try JSONValue(parsing: d.json.pretty), d.json)
        XCTAssertTrue(NestedState.diff(a, a).isEmpty)
        XCTAssertEqual(NestedState.diff(a, a).description, "(no differences)")
    }

    func testDiffVMXPagesAndHeader() throws {
        let a = try NestedState(bytes: NestedBlob.vmxGuestMode())
        var b = a
        b.editVMX {
            $0.header.vmcs12PA = 0x3000
            $0.vmcs12?.guestRIP = 0x42
            $0.shadowVMCS12 = nil
            $0.header.reserved[3] = 1
        }
        b.size = 4224
        let d = a.diff(against: b)
        XCTAssertEqual(d.fields.map(\.path), ["header.size", "vmx.vmcs12_pa", "vmcs12.guest_rip", "shadow_vmcs12"])
        XCTAssertEqual(d["shadow_vmcs12"]?.new, .absent)
        XCTAssertEqual(d["shadow_vmcs12"]?.old, .page(bytes: 4096))
        XCTAssertEqual(d.unknownBytesDiffering, 1)
        XCTAssertEqual(d.json["fields"]?[3]?["old"], .int(4096))
        XCTAssertEqual(d.json["fields"]?[3]?["new"], .null)

        let svm = try NestedState(bytes: NestedBlob.svmGuestMode())
        let cross = NestedState.diff(a, svm)
        XCTAssertEqual(cross["header.format"]?.new, .uint(1, width: 2))
        XCTAssertGreaterThan(cross.unknownBytesDiffering, 0)
    }
}
