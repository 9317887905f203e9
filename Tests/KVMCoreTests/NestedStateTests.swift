import XCTest

@testable import KVMCore

/// NestedBlob builders that write straight to kernel offsets (independent of the model code).
enum NestedBlob {
    static func put(_ b: inout [UInt8], _ offset: Int, _ width: Int, _ value: UInt64) {
        for i in 0..<width { b[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    static func get(_ b: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
        (0..<width).reduce(UInt64(0)) { $0 | UInt64(b[offset + $1]) << (8 * UInt64($1)) }
    }
    static func header(flags: UInt16, format: UInt16, size: UInt32, total: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: total)
        put(&b, 0, 2, UInt64(flags))
        put(&b, 2, 2, UInt64(format))
        put(&b, 4, 4, UInt64(size))
        return b
    }

    /// A VMX state as KVM writes it in guest mode with vmcs12 + shadow (8320 bytes).
    static func vmxGuestMode() -> [UInt8] {
        var b = header(flags: 0x3, format: 0, size: 8320, total: 8320)
        put(&b, 8, 8, 0x1000) // vmxon_pa
        put(&b, 16, 8, 0x2000) // vmcs12_pa
        put(&b, 28, 4, 1) // hdr.vmx.flags = PREEMPTION_TIMER_DEADLINE
        put(&b, 32, 8, 0x1234_5678_9abc) // preemption_timer_deadline
        let v = 128
        put(&b, v + 0, 4, 0x11e5_7ed0) // revision
        put(&b, v + 8, 4, 1) // launch_state
        put(&b, v + 176, 8, 0x5000) // vmcs_link_pointer
        put(&b, v + 424, 8, 0x8000_0031) // guest_cr0
        put(&b, v + 432, 8, 0x7000) // guest_cr3
        put(&b, v + 440, 8, 0x2020) // guest_cr4
        put(&b, v + 456, 8, 0) // guest_cs_base
        put(&b, v + 536, 8, 0x8ff0) // guest_rsp
        put(&b, v + 544, 8, 0xffff_ffff_8100_0000) // guest_rip
        put(&b, v + 552, 8, 0x202) // guest_rflags
        put(&b, v + 584, 8, 0x8000_0031) // host_cr0: PE|NE|PG, which VMX fixes to 1
        put(&b, v + 592, 8, 0x9000) // host_cr3
        put(&b, v + 600, 8, 0x2020) // host_cr4: VMXE
        put(&b, v + 672, 8, 0x40_1000) // host_rip
        put(&b, v + 744, 4, 0x16) // pin-based
        put(&b, v + 748, 4, 0x8000_0080) // primary: HLT exiting + secondary
        put(&b, v + 804, 4, 0x4002) // secondary: EPT + SHADOW_VMCS
        put(&b, v + 812, 4, 12) // exit reason HLT
        put(&b, v + 408, 8, 0xabc) // exit qualification
        put(&b, v + 808, 4, 7) // vm_instruction_error
        put(&b, v + 816, 4, 0x8000_0b0e) // exit intr info: valid, #PF, hw exception, error code
        put(&b, v + 884, 4, 0xa09b) // guest_cs_ar_bytes
        put(&b, v + 966, 2, 0x10) // guest_cs_selector
        put(&b, v + 984, 2, 0x08) // host_cs_selector
        put(&b, v + 996, 2, 511) // guest_pml_index
        let s = 128 + 4096
        put(&b, s + 0, 4, 0x8000_0000 | 0x11e5_7ed0) // shadow revision + shadow bit
        put(&b, s + 544, 8, 0xdead_beef)
        return b
    }

    /// An SVM state in guest mode (4224 bytes).
    static func svmGuestMode() -> [UInt8] {
        var b = header(flags: 0x101, format: 1, size: 4224, total: 4224)
        put(&b, 8, 8, 0x3000) // vmcb_pa
        let c = 128
        put(&b, c + 0x0c, 4, 0x1000_0000) // misc1: MSR_PROT
        put(&b, c + 0x10, 4, 0x1) // misc2: VMRUN
        put(&b, c + 0x40, 8, 0x10_0000) // iopm
        put(&b, c + 0x48, 8, 0x20_0000) // msrpm
        put(&b, c + 0x58, 4, 1) // asid
        put(&b, c + 0x60, 4, 0x0100_0000) // int_ctl V_INTR_MASKING
        put(&b, c + 0x70, 8, 0x78) // exit_code HLT
        put(&b, c + 0x78, 8, 0x11) // exit_info_1
        put(&b, c + 0x80, 8, 0x22) // exit_info_2
        put(&b, c + 0x88, 4, 0x8000_0b0e) // exit_int_info: valid #PF exception + error code
        put(&b, c + 0x90, 8, 1) // nested_ctl NP
        put(&b, c + 0xa8, 4, 0x8000_0020) // event_inj
        put(&b, c + 0xb0, 8, 0x6000) // nested_cr3
        put(&b, c + 0xc8, 8, 0x40_1234) // next_rip
        let s = 128 + 0x400
        put(&b, s + 0x10, 2, 0x10) // cs.selector
        put(&b, s + 0x12, 2, 0x29b) // cs.attrib
        put(&b, s + 0x14, 4, 0xffff_ffff) // cs.limit
        put(&b, s + 0x98, 8, 0xfeed_0000) // tr.base
        put(&b, s + 0xcb, 1, 0) // cpl
        put(&b, s + 0xd0, 8, 0x1d00) // efer: SVME|LMA|LME|NXE
        put(&b, s + 0x148, 8, 0x20) // cr4 PAE
        put(&b, s + 0x150, 8, 0x9000) // cr3
        put(&b, s + 0x158, 8, 0x8000_0011) // cr0 PG|ET|PE
        put(&b, s + 0x160, 8, 0x400) // dr7
        put(&b, s + 0x168, 8, 0xffff_0ff0) // dr6
        put(&b, s + 0x170, 8, 0x2) // rflags
        put(&b, s + 0x178, 8, 0x40_0000) // rip
        put(&b, s + 0x1d8, 8, 0x7000) // rsp
        put(&b, s + 0x1f8, 8, 0xaa) // rax
        put(&b, s + 0x208, 8, 0xffff_ffff_8180_0000) // lstar
        put(&b, s + 0x220, 8, 0x1111) // kernel_gs_base
        put(&b, s + 0x240, 8, 0x2222) // cr2
        put(&b, s + 0x268, 8, 0x0007_0406_0007_0406) // g_pat
        put(&b, s + 0x270, 8, 0x1) // dbgctl
        return b
    }
}

final class NestedStateTests: XCTestCase {

    // MARK: VMX

    func testDecodeVMXGuestModeAtKernelOffsets() throws {
        let blob = NestedBlob.vmxGuestMode()
        let state = try NestedState(bytes: blob)
        XCTAssertEqual(state.flags, [.guestMode, .runPending])
        XCTAssertEqual(state.format, .vmx)
        XCTAssertEqual(state.size, 8320)
        let vmx = try XCTUnwrap(state.vmx)
        XCTAssertEqual(vmx.header.vmxonPA, 0x1000)
        XCTAssertEqual(vmx.header.vmcs12PA, 0x2000)
        XCTAssertEqual(vmx.header.flags, .preemptionTimerDeadline)
        XCTAssertEqual(vmx.header.preemptionTimerDeadline, 0x1234_5678_9abc)
        let v = try XCTUnwrap(vmx.vmcs12)
        XCTAssertEqual(v.revisionID, VMCS12.revision)
        XCTAssertFalse(v.isShadow)
        XCTAssertEqual(v.launchState, 1)
        XCTAssertEqual(v.guestCR0, 0x8000_0031)
        XCTAssertEqual(v.guestCR3, 0x7000)
        XCTAssertEqual(v.guestCR4, 0x2020)
        XCTAssertEqual(v.guestRSP, 0x8ff0)
        XCTAssertEqual(v.guestRIP, 0xffff_ffff_8100_0000)
        XCTAssertEqual(v.guestRFLAGS, 0x202)
        XCTAssertEqual(v.hostCR3, 0x9000)
        XCTAssertEqual(v.hostRIP, 0x40_1000)
        XCTAssertEqual(v.pinBasedControls, 0x16)
        XCTAssertEqual(v.primaryProcBasedControls, 0x8000_0080)
        XCTAssertEqual(v.secondaryProcBasedControls, 0x4002)
        XCTAssertTrue(v.usesShadowVMCS)
        XCTAssertEqual(v.vmExitReason, 12)
        XCTAssertEqual(v.exitQualification, 0xabc)
        XCTAssertEqual(v.vmInstructionError, 7)
        XCTAssertEqual(v.vmExitInterruptionInfo, 0x8000_0b0e)
        XCTAssertEqual(v.vmcsLinkPointer, 0x5000)
        XCTAssertEqual(v.guestSegment(.cs), VMCS12Segment(selector: 0x10, base: 0, limit: 0, accessRights: 0xa09b))
        XCTAssertEqual(v.hostSelector(.cs), 0x08)
        XCTAssertEqual(v.value(of: "guest_pml_index"), .uint(511, width: 2))
        let shadow = try XCTUnwrap(vmx.shadowVMCS12)
        XCTAssertTrue(shadow.isShadow)
        XCTAssertEqual(shadow.revisionID, VMCS12.revision)
        XCTAssertEqual(shadow.guestRIP, 0xdead_beef)
        XCTAssertEqual(vmx.extra, [])
        XCTAssertEqual(state.bytes, blob)
    }

    func testVMXWithVMCS12ButNoShadow() throws {
        var blob = Array(NestedBlob.vmxGuestMode()[0..<(128 + 4096)])
        NestedBlob.put(&blob, 4, 4, UInt64(128 + 4096))
        let state = try NestedState(bytes: blob)
        XCTAssertNotNil(state.vmx?.vmcs12)
        XCTAssertNil(state.vmx?.shadowVMCS12)
        XCTAssertEqual(state.bytes, blob)
    }

    func testHeaderOnlyVMX() throws {
        // VMXON with no current VMCS: size 128, no data — must decode, not be "absent".
        var blob = NestedBlob.header(flags: 0, format: 0, size: 128, total: 128)
        NestedBlob.put(&blob, 8, 8, 0x1000)
        NestedBlob.put(&blob, 16, 8, ~0)
        let state = try NestedState(bytes: blob)
        XCTAssertEqual(state.size, 128)
        let vmx = try XCTUnwrap(state.vmx)
        XCTAssertEqual(vmx.header.vmxonPA, 0x1000)
        XCTAssertEqual(vmx.header.vmcs12PA, NestedState.invalidGPA)
        XCTAssertNil(vmx.vmcs12)
        XCTAssertNil(vmx.shadowVMCS12)
        XCTAssertEqual(state.bytes, blob)
    }

    func testHeaderOnlySVM() throws {
        let blob = NestedBlob.header(flags: 0x100, format: 1, size: 128, total: 128)
        let state = try NestedState(bytes: blob)
        XCTAssertEqual(state.flags, .gifSet)
        let svm = try XCTUnwrap(state.svm)
        XCTAssertEqual(svm.header.vmcbPA, 0)
        XCTAssertNil(svm.vmcb)
        XCTAssertEqual(state.bytes, blob)
    }

    // MARK: SVM

    func testDecodeSVMGuestModeAtKernelOffsets() throws {
        let blob = NestedBlob.svmGuestMode()
        let state = try NestedState(bytes: blob)
        XCTAssertEqual(state.flags, [.guestMode, .gifSet])
        XCTAssertEqual(state.format, .svm)
        let svm = try XCTUnwrap(state.svm)
        XCTAssertEqual(svm.header.vmcbPA, 0x3000)
        let vmcb = try XCTUnwrap(svm.vmcb)
        let c = vmcb.control
        XCTAssertEqual(c.interceptMisc1, 0x1000_0000)
        XCTAssertTrue(c.interceptsVMRUN)
        XCTAssertEqual(c.iopmBasePA, 0x10_0000)
        XCTAssertEqual(c.msrpmBasePA, 0x20_0000)
        XCTAssertEqual(c.asid, 1)
        XCTAssertEqual(c.intCtl, 0x0100_0000)
        XCTAssertEqual(c.exitCode, 0x78)
        XCTAssertEqual(c.exitInfo1, 0x11)
        XCTAssertEqual(c.exitInfo2, 0x22)
        XCTAssertEqual(c.exitIntInfo, 0x8000_0b0e)
        XCTAssertEqual(c.nestedControl, 1)
        XCTAssertEqual(c.eventInjection, 0x8000_0020)
        XCTAssertEqual(c.nestedCR3, 0x6000)
        XCTAssertEqual(c.nextRIP, 0x40_1234)
        let s = vmcb.save
        XCTAssertEqual(s.segment(.cs), VMCBSegment(selector: 0x10, attrib: 0x29b, limit: 0xffff_ffff, base: 0))
        XCTAssertEqual(s.segment(.tr).base, 0xfeed_0000)
        XCTAssertEqual(s.efer, 0x1d00)
        XCTAssertEqual(s.cr4, 0x20)
        XCTAssertEqual(s.cr3, 0x9000)
        XCTAssertEqual(s.cr0, 0x8000_0011)
        XCTAssertEqual(s.dr7, 0x400)
        XCTAssertEqual(s.dr6, 0xffff_0ff0)
        XCTAssertEqual(s.rflags, 2)
        XCTAssertEqual(s.rip, 0x40_0000)
        XCTAssertEqual(s.rsp, 0x7000)
        XCTAssertEqual(s.rax, 0xaa)
        XCTAssertEqual(s.lstar, 0xffff_ffff_8180_0000)
        XCTAssertEqual(s.kernelGSBase, 0x1111)
        XCTAssertEqual(s.cr2, 0x2222)
        XCTAssertEqual(s.gPAT, 0x0007_0406_0007_0406)
        XCTAssertEqual(s.debugCtl, 1)
        XCTAssertEqual(vmcb.tail.count, 4096 - 0x400 - 744)
        XCTAssertEqual(state.bytes, blob)
    }

    // MARK: Errors and odd inputs

    func testTruncatedBelowHeader() {
        for n in [0, 1, 7, 8, 127] {
            XCTAssertThrowsError(try NestedState(bytes: [UInt8](repeating: 0, count: n))) {
                XCTAssertEqual($0 as? NestedStateError, .truncated(expected: 128, got: n))
            }
        }
    }

    func testTruncatedBelowSize() {
        var blob = NestedBlob.vmxGuestMode()
        blob.removeLast(100)
        XCTAssertThrowsError(try NestedState(bytes: blob)) {
            XCTAssertEqual($0 as? NestedStateError, .truncated(expected: 8320, got: 8220))
        }
    }

    func testSizeBelowHeader() {
        let blob = NestedBlob.header(flags: 0, format: 0, size: 64, total: 128)
        XCTAssertThrowsError(try NestedState(bytes: blob)) {
            XCTAssertEqual($0 as? NestedStateError, .sizeTooSmall(64))
        }
    }

    func testHugeSizeField() {
        let blob = NestedBlob.header(flags: 0, format: 0, size: .max, total: 200)
        XCTAssertThrowsError(try NestedState(bytes: blob)) {
            XCTAssertEqual($0 as? NestedStateError, .truncated(expected: Int(UInt32.max), got: 200))
        }
    }

    func testOversizedBufferKeepsTrailingBytes() throws {
        // A GET buffer of capacity 8320 that KVM filled with a 4224-byte SVM state.
        var blob = NestedBlob.svmGuestMode() + [UInt8](repeating: 0, count: 4096)
        blob[blob.count - 1] = 0x5a
        let state = try NestedState(bytes: blob)
        XCTAssertEqual(state.size, 4224)
        XCTAssertEqual(state.trailing.count, 4096)
        XCTAssertEqual(state.bytes, blob)
        XCTAssertEqual(state.withUpdatedSize().bytes, NestedBlob.svmGuestMode())
    }

    func testOversizedDataKeptAsExtra() throws {
        var blob = NestedBlob.vmxGuestMode() + [1, 2, 3]
        NestedBlob.put(&blob, 4, 4, UInt64(blob.count))
        let state = try NestedState(bytes: blob)
        XCTAssertEqual(state.vmx?.extra, [1, 2, 3])
        XCTAssertEqual(state.bytes, blob)

        var svmBlob = NestedBlob.svmGuestMode() + [9]
        NestedBlob.put(&svmBlob, 4, 4, UInt64(svmBlob.count))
        let svm = try NestedState(bytes: svmBlob)
        XCTAssertEqual(svm.svm?.extra, [9])
        XCTAssertEqual(svm.bytes, svmBlob)
    }

    func testPartialPagesDecodeWhatIsThere() throws {
        // 128 + 600 bytes of vmcs12: fields below 600 decode, later ones are absent.
        var blob = NestedBlob.vmxGuestMode()
        blob = Array(blob[0..<728])
        NestedBlob.put(&blob, 4, 4, 728)
        let state = try NestedState(bytes: blob)
        let v = try XCTUnwrap(state.vmx?.vmcs12)
        XCTAssertFalse(v.isComplete)
        XCTAssertEqual(v.guestRIP, 0xffff_ffff_8100_0000)
        XCTAssertEqual(v.value(of: "vm_exit_reason"), .absent)
        XCTAssertEqual(v.vmExitReason, 0) // typed access past the end reads 0
        XCTAssertEqual(state.bytes, blob)

        var svmBlob = Array(NestedBlob.svmGuestMode()[0..<(128 + 0x500)])
        NestedBlob.put(&svmBlob, 4, 4, UInt64(svmBlob.count))
        let svm = try NestedState(bytes: svmBlob)
        XCTAssertEqual(svm.svm?.vmcb?.save.raw.count, 0x100)
        XCTAssertEqual(svm.svm?.vmcb?.save.segment(.cs).selector, 0x10)
        XCTAssertEqual(svm.bytes, svmBlob)
    }

    func testUnknownFormatIsKept() throws {
        var blob = NestedBlob.header(flags: 1, format: 7, size: 140, total: 140)
        blob[20] = 0xee
        blob[139] = 0x44
        let state = try NestedState(bytes: blob)
        XCTAssertEqual(state.format.rawValue, 7)
        guard case .unknown(let header, let data) = state.payload else { return XCTFail("expected unknown payload") }
        XCTAssertEqual(header.count, 120)
        XCTAssertEqual(header[12], 0xee)
        XCTAssertEqual(data.count, 12)
        XCTAssertEqual(state.bytes, blob)
    }

    func testReservedHeaderBytesRoundTrip() throws {
        var blob = NestedBlob.vmxGuestMode()
        blob[26] = 0x77 // pad
        blob[100] = 0x99 // reserved
        var svm = NestedBlob.svmGuestMode()
        svm[16] = 0x42 // reserved (proposed gpat area)
        XCTAssertEqual(try NestedState(bytes: blob).bytes, blob)
        XCTAssertEqual(try NestedState(bytes: blob).vmx?.header.pad, 0x77)
        XCTAssertEqual(try NestedState(bytes: svm).bytes, svm)
    }

    // MARK: Fuzz

    func testRandomBlobsNeverCrashAndRoundTrip() {
        var rng = SplitMix64(seed: 0x5eed_1e55)
        var decoded = 0
        for i in 0..<10_000 {
            let length = Int(rng.next() % 9000)
            var blob = rng.bytes(length)
            // Most blobs get a plausible header so they decode; the rest stay raw.
            if length >= 128, rng.next() % 8 != 0 {
                let formats: [UInt16] = [0, 1, 0, 1, UInt16(truncatingIfNeeded: rng.next())]
                NestedBlob.put(&blob, 2, 2, UInt64(formats[Int(rng.next() % 5)]))
                let size = 128 + Int(rng.next() % UInt64(length - 127))
                NestedBlob.put(&blob, 4, 4, UInt64(size))
            }
            do {
                let state = try NestedState(bytes: blob)
                decoded += 1
                XCTAssertEqual(state.bytes, blob, "round trip failed for blob \(i)")
                XCTAssertTrue(NestedState.diff(state, state).isEmpty)
                _ = NestedStateValidator.validate(
                    state,
                    context: .init(
                        capabilitySize: 8320, vendor: .vmx, efer: 0,
                        inSMM: false, cr0: 0, maxPhysAddrBits: 46))
                if i % 25 == 0 {
                    _ = state.textDump()
                    _ = state.json(includeRaw: true).compact
                }
                if i % 50 == 0, let edited = try? NestedState(bytes: state.withUpdatedSize().bytes) {
                    XCTAssertEqual(edited.withUpdatedSize(), edited)
                }
            } catch let error as NestedStateError {
                _ = error.description
                _ = NestedStateValidator.validate(bytes: blob, context: .init(capabilitySize: 4224, vendor: .svm))
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
        XCTAssertGreaterThan(decoded, 7000)
    }

    // MARK: Buffers

    func testWithBufferPresetsSizeAndAlignment() throws {
        let count = try NestedState.withBuffer(capacity: NestedState.vmxCapabilitySize) { buffer in
            XCTAssertEqual(Int(bitPattern: buffer.baseAddress) % 4096, 0)
            XCTAssertEqual(NestedBlob.get(Array(buffer[0..<8]), 4, 4), 8320)
            XCTAssertTrue(buffer[8...].allSatisfy { $0 == 0 })
            return buffer.count
        }
        XCTAssertEqual(count, 8320)
        XCTAssertThrowsError(try NestedState.withBuffer(capacity: 0) { _ in XCTFail("body ran for capacity 0") }) {
            XCTAssertEqual($0 as? NestedStateError, .invalidCapacity(0))
        }
        XCTAssertThrowsError(try NestedState.withBuffer(capacity: 127) { _ in XCTFail("body ran for capacity 127") })
    }

    func testDecodeFromKernelFilledBuffer() throws {
        try NestedState.withBuffer(capacity: NestedState.vmxCapabilitySize) { buffer in
            let svm = NestedBlob.svmGuestMode() // what KVM would write: size 4224 into an 8320 buffer
            buffer.copyBytes(from: svm)
            let state = try NestedState(buffer: UnsafeRawBufferPointer(buffer))
            XCTAssertEqual(state.size, 4224)
            XCTAssertEqual(state.trailing, [])
            XCTAssertEqual(state.bytes, svm)

            buffer[4] = 0xff
            buffer[5] = 0xff // size larger than the buffer
            XCTAssertThrowsError(try NestedState(buffer: UnsafeRawBufferPointer(buffer)))
        }
    }

    func testWithEncodedBufferIsAlignedAndExact() throws {
        let state = try NestedState(bytes: NestedBlob.vmxGuestMode())
        state.withEncodedBuffer { buf in
            XCTAssertEqual(Int(bitPattern: buf.baseAddress) % 4096, 0)
            XCTAssertEqual(Array(buf), NestedBlob.vmxGuestMode())
        }
    }

    // MARK: Building and editing

    func testBuildVMXStateFromScratch() throws {
        var v = VMCS12()
        v.guestRIP = 0x1234
        v.setGuestSegment(.ss, VMCS12Segment(selector: 0x18, base: 0x100, limit: 0xfffff, accessRights: 0xc093))
        v.guestGDTR = VMCS12DescriptorTable(base: 0x5000, limit: 0x27)
        let state = NestedState.vmx(
            flags: .guestMode,
            VMXNestedState(header: VMXNestedHeader(vmxonPA: 0x1000, vmcs12PA: 0x2000), vmcs12: v))
        XCTAssertEqual(state.size, UInt32(128 + 4096))
        let blob = state.bytes
        XCTAssertEqual(blob.count, 128 + 4096)
        XCTAssertEqual(NestedBlob.get(blob, 128, 4), UInt64(VMCS12.revision))
        XCTAssertEqual(NestedBlob.get(blob, 128 + 544, 8), 0x1234)
        XCTAssertEqual(NestedBlob.get(blob, 128 + 968, 2), 0x18) // guest_ss_selector
        XCTAssertEqual(NestedBlob.get(blob, 128 + 464, 8), 0x100) // guest_ss_base
        XCTAssertEqual(NestedBlob.get(blob, 128 + 848, 4), 0xfffff) // guest_ss_limit
        XCTAssertEqual(NestedBlob.get(blob, 128 + 888, 4), 0xc093) // guest_ss_ar_bytes
        XCTAssertEqual(NestedBlob.get(blob, 128 + 512, 8), 0x5000) // guest_gdtr_base
        XCTAssertEqual(NestedBlob.get(blob, 128 + 872, 4), 0x27) // guest_gdtr_limit
        XCTAssertEqual(try NestedState(bytes: blob), state)

        // A shadow page without vmcs12 still lands at its offset.
        let odd = NestedState.vmx(VMXNestedState(shadowVMCS12: VMCS12(shadow: true)))
        XCTAssertEqual(odd.bytes.count, 128 + 8192)
        XCTAssertEqual(try NestedState(bytes: odd.bytes).vmx?.shadowVMCS12?.isShadow, true)
    }

    func testBuildSVMStateFromScratch() throws {
        var vmcb = VMCB()
        vmcb.control.interceptMisc2 = 1
        vmcb.control.asid = 1
        vmcb.control.exitCode = UInt64.max
        vmcb.control.instructionBytes = [0x0f, 0x01, 0xd8]
        vmcb.save.setSegment(.gs, VMCBSegment(selector: 0x2b, attrib: 0xf3, limit: 0xffff, base: 0x7777))
        vmcb.save.star = 0x0023_0010_0000_0000
        let state = NestedState.svm(
            flags: [.guestMode, .gifSet], SVMNestedState(header: SVMNestedHeader(vmcbPA: 0x4000), vmcb: vmcb))
        let blob = state.bytes
        XCTAssertEqual(blob.count, 4224)
        XCTAssertEqual(NestedBlob.get(blob, 128 + 0x10, 4), 1)
        XCTAssertEqual(NestedBlob.get(blob, 128 + 0x70, 8), UInt64.max)
        XCTAssertEqual(Array(blob[(128 + 0xd1)..<(128 + 0xd4)]), [0x0f, 0x01, 0xd8])
        XCTAssertEqual(NestedBlob.get(blob, 128 + 0x400 + 0x50, 2), 0x2b) // gs.selector
        XCTAssertEqual(NestedBlob.get(blob, 128 + 0x400 + 0x58, 8), 0x7777) // gs.base
        XCTAssertEqual(NestedBlob.get(blob, 128 + 0x400 + 0x200, 8), 0x0023_0010_0000_0000) // star
        XCTAssertEqual(try NestedState(bytes: blob), state)
    }

    // MARK: Layout tables

    func testLayoutTablesAreOrderedAndInsideTheirAreas() {
        for (name, layout) in [
            ("vmcs12", VMCS12.layout), ("control", VMCBControl.layout), ("save", VMCBSaveArea.layout),
        ] {
            var lastEnd = 0
            var lastOffset = -1
            var names = Set<String>()
            for f in layout.fields {
                XCTAssertTrue(names.insert(f.name).inserted, "\(name): duplicate \(f.name)")
                XCTAssertLessThanOrEqual(f.offset + f.width, layout.size, "\(name).\(f.name) outside")
                if f.offset != lastOffset { // bit fields share their bytes
                    XCTAssertGreaterThanOrEqual(f.offset, lastEnd, "\(name).\(f.name) overlaps")
                }
                lastOffset = f.offset
                lastEnd = max(lastEnd, f.offset + f.width)
            }
        }
        XCTAssertEqual(VMCBSaveArea.layout.fields.last?.offset, 0x2e0) // spec_ctrl
        XCTAssertEqual(VMCBSaveArea.size, 744)
        XCTAssertEqual(VMCS12.layout.fields.last.map { $0.offset + $0.width }, VMCS12.structSize)
    }

    /// Spot checks against the kernel's CHECK_OFFSET() list in vmcs12.h.
    func testVMCS12OffsetsMatchKernelCheckOffsets() {
        let expected: [(String, Int)] = [
            ("abort", 4), ("launch_state", 8), ("io_bitmap_a", 40), ("msr_bitmap", 56), ("tsc_offset", 88),
            ("ept_pointer", 120), ("xss_exit_bitmap", 160), ("vmcs_link_pointer", 176), ("guest_ia32_efer", 200),
            ("guest_pdptr3", 240), ("host_ia32_efer", 264), ("pml_address", 312), ("encls_exiting_bitmap", 320),
            ("tsc_multiplier", 328), ("cr0_guest_host_mask", 344), ("cr4_read_shadow", 368),
            ("exit_qualification", 408), ("guest_cr0", 424), ("guest_es_base", 448), ("guest_idtr_base", 520),
            ("guest_dr7", 528), ("guest_rip", 544), ("guest_sysenter_eip", 576), ("host_cr0", 584),
            ("host_rip", 672), ("host_s_cet", 680), ("guest_ssp_tbl", 720), ("pin_based_vm_exec_control", 744),
            ("cpu_based_vm_exec_control", 748), ("vm_exit_controls", 768), ("vm_entry_controls", 780),
            ("secondary_vm_exec_control", 804), ("vm_instruction_error", 808), ("vm_exit_reason", 812),
            ("vm_exit_intr_info", 816), ("idt_vectoring_info_field", 824), ("vmx_instruction_info", 836),
            ("guest_es_limit", 840), ("guest_idtr_limit", 876), ("guest_es_ar_bytes", 880),
            ("guest_tr_ar_bytes", 908), ("guest_interruptibility_info", 912), ("vmx_preemption_timer_value", 928),
            ("virtual_processor_id", 960), ("posted_intr_nv", 962), ("guest_es_selector", 964),
            ("guest_tr_selector", 978), ("guest_intr_status", 980), ("host_es_selector", 982),
            ("host_tr_selector", 994), ("guest_pml_index", 996),
        ]
        for (name, offset) in expected {
            XCTAssertEqual(VMCS12.layout.field(named: name)?.offset, offset, name)
        }
    }

    func testVMCBOffsetsMatchSvmH() {
        let control: [(String, Int)] = [
            ("intercept_misc2", 0x10), ("pause_filter_thresh", 0x3c), ("iopm_base_pa", 0x40), ("asid", 0x58),
            ("tlb_ctl", 0x5c), ("int_ctl", 0x60), ("exit_code", 0x70), ("exit_int_info", 0x88),
            ("nested_ctl", 0x90), ("event_inj", 0xa8), ("nested_cr3", 0xb0), ("virt_ext", 0xb8), ("clean", 0xc0),
            ("next_rip", 0xc8), ("insn_len", 0xd0), ("avic_backing_page", 0xe0), ("vmsa_pa", 0x108),
            ("bus_lock_counter", 0x120), ("allowed_sev_features", 0x138), ("reserved_sw", 0x3e0),
        ]
        for (name, offset) in control { XCTAssertEqual(VMCBControl.layout.field(named: name)?.offset, offset, name) }
        let save: [(String, Int)] = [
            ("tr.base", 0x98), ("cpl", 0xcb), ("efer", 0xd0), ("cr4", 0x148), ("cr0", 0x158), ("rip", 0x178),
            ("rsp", 0x1d8), ("rax", 0x1f8), ("star", 0x200), ("sfmask", 0x218), ("sysenter_cs", 0x228),
            ("cr2", 0x240), ("g_pat", 0x268), ("dbgctl", 0x270), ("last_excp_to", 0x290), ("spec_ctrl", 0x2e0),
        ]
        for (name, offset) in save { XCTAssertEqual(VMCBSaveArea.layout.field(named: name)?.offset, offset, name) }
    }

    /// Each typed property reads and writes the bytes its table entry names.
    func testTypedPropertiesAgreeWithTables() {
        let v64: [(WritableKeyPath<VMCS12, UInt64>, String)] = [
            (\.ioBitmapA, "io_bitmap_a"), (\.ioBitmapB, "io_bitmap_b"), (\.msrBitmap, "msr_bitmap"),
            (\.tscOffset, "tsc_offset"), (\.tscMultiplier, "tsc_multiplier"),
            (\.virtualAPICPageAddress, "virtual_apic_page_addr"), (\.apicAccessAddress, "apic_access_addr"),
            (\.postedInterruptDescriptorAddress, "posted_intr_desc_addr"), (\.eptPointer, "ept_pointer"),
            (\.vmcsLinkPointer, "vmcs_link_pointer"), (\.vmFunctionControl, "vm_function_control"),
            (\.cr0GuestHostMask, "cr0_guest_host_mask"), (\.cr4GuestHostMask, "cr4_guest_host_mask"),
            (\.cr0ReadShadow, "cr0_read_shadow"), (\.cr4ReadShadow, "cr4_read_shadow"),
            (\.exitQualification, "exit_qualification"), (\.guestPhysicalAddress, "guest_physical_address"),
            (\.guestLinearAddress, "guest_linear_address"), (\.guestCR0, "guest_cr0"), (\.guestCR3, "guest_cr3"),
            (\.guestCR4, "guest_cr4"), (\.guestDR7, "guest_dr7"), (\.guestRSP, "guest_rsp"), (\.guestRIP, "guest_rip"),
            (\.guestRFLAGS, "guest_rflags"), (\.guestPendingDebugExceptions, "guest_pending_dbg_exceptions"),
            (\.guestSysenterESP, "guest_sysenter_esp"), (\.guestSysenterEIP, "guest_sysenter_eip"),
            (\.guestEFER, "guest_ia32_efer"), (\.guestPAT, "guest_ia32_pat"), (\.guestDebugCtl, "guest_ia32_debugctl"),
            (\.guestPerfGlobalCtrl, "guest_ia32_perf_global_ctrl"), (\.guestBNDCFGS, "guest_bndcfgs"),
            (\.hostCR0, "host_cr0"), (\.hostCR3, "host_cr3"), (\.hostCR4, "host_cr4"), (\.hostFSBase, "host_fs_base"),
            (\.hostGSBase, "host_gs_base"), (\.hostTRBase, "host_tr_base"), (\.hostGDTRBase, "host_gdtr_base"),
            (\.hostIDTRBase, "host_idtr_base"), (\.hostSysenterESP, "host_ia32_sysenter_esp"),
            (\.hostSysenterEIP, "host_ia32_sysenter_eip"), (\.hostRSP, "host_rsp"), (\.hostRIP, "host_rip"),
            (\.hostEFER, "host_ia32_efer"), (\.hostPAT, "host_ia32_pat"),
            (\.hostPerfGlobalCtrl, "host_ia32_perf_global_ctrl"),
        ]
        let v32: [(WritableKeyPath<VMCS12, UInt32>, String)] = [
            (\.abort, "abort"), (\.launchState, "launch_state"), (\.pinBasedControls, "pin_based_vm_exec_control"),
            (\.primaryProcBasedControls, "cpu_based_vm_exec_control"),
            (\.secondaryProcBasedControls, "secondary_vm_exec_control"), (\.vmExitControls, "vm_exit_controls"),
            (\.vmEntryControls, "vm_entry_controls"), (\.exceptionBitmap, "exception_bitmap"),
            (\.vmExitReason, "vm_exit_reason"), (\.vmInstructionError, "vm_instruction_error"),
            (\.vmExitInterruptionInfo, "vm_exit_intr_info"), (\.vmExitInterruptionErrorCode, "vm_exit_intr_error_code"),
            (\.idtVectoringInfo, "idt_vectoring_info_field"), (\.idtVectoringErrorCode, "idt_vectoring_error_code"),
            (\.vmExitInstructionLength, "vm_exit_instruction_len"), (\.vmxInstructionInfo, "vmx_instruction_info"),
            (\.vmEntryInterruptionInfo, "vm_entry_intr_info_field"),
            (\.vmEntryExceptionErrorCode, "vm_entry_exception_error_code"),
            (\.vmEntryInstructionLength, "vm_entry_instruction_len"), (\.guestSysenterCS, "guest_sysenter_cs"),
            (\.guestInterruptibility, "guest_interruptibility_info"), (\.guestActivityState, "guest_activity_state"),
            (\.preemptionTimerValue, "vmx_preemption_timer_value"), (\.hostSysenterCS, "host_ia32_sysenter_cs"),
        ]
        let v16: [(WritableKeyPath<VMCS12, UInt16>, String)] = [
            (\.virtualProcessorID, "virtual_processor_id"), (\.guestInterruptStatus, "guest_intr_status"),
        ]
        var page = VMCS12()
        for (i, (kp, name)) in v64.enumerated() {
            let value = 0x0102_0304_0506_0700 | UInt64(i)
            page[keyPath: kp] = value
            XCTAssertEqual(page.value(of: name)?.uint64, value, name)
        }
        for (i, (kp, name)) in v32.enumerated() {
            page[keyPath: kp] = 0xa0b0_c000 | UInt32(i)
            XCTAssertEqual(page.value(of: name)?.uint64, UInt64(0xa0b0_c000 | UInt32(i)), name)
        }
        for (i, (kp, name)) in v16.enumerated() {
            page[keyPath: kp] = 0xbe00 | UInt16(i)
            XCTAssertEqual(page.value(of: name)?.uint64, UInt64(0xbe00 | UInt16(i)), name)
        }
        for r in VMCS12SegmentRegister.allCases {
            page.setGuestSegment(r, VMCS12Segment(selector: 0x11, base: 0x22, limit: 0x33, accessRights: 0x44))
            XCTAssertEqual(page.value(of: "guest_\(r.name)_selector")?.uint64, 0x11)
            XCTAssertEqual(page.value(of: "guest_\(r.name)_base")?.uint64, 0x22)
            XCTAssertEqual(page.value(of: "guest_\(r.name)_limit")?.uint64, 0x33)
            XCTAssertEqual(page.value(of: "guest_\(r.name)_ar_bytes")?.uint64, 0x44)
        }
        page.revisionID = 0x1234
        page.isShadow = true
        XCTAssertEqual(page.value(of: "revision_id")?.uint64, 0x1234)
        XCTAssertEqual(page.value(of: "shadow_vmcs")?.uint64, 1)
        XCTAssertTrue(page.set("guest_rip", to: 0x99))
        XCTAssertEqual(page.guestRIP, 0x99)
        XCTAssertFalse(page.set("no_such_field", to: 1))

        let c64: [(WritableKeyPath<VMCBControl, UInt64>, String)] = [
            (\.iopmBasePA, "iopm_base_pa"), (\.msrpmBasePA, "msrpm_base_pa"), (\.tscOffset, "tsc_offset"),
            (\.exitCode, "exit_code"), (\.exitInfo1, "exit_info_1"), (\.exitInfo2, "exit_info_2"),
            (\.nestedControl, "nested_ctl"), (\.avicVAPICBar, "avic_vapic_bar"), (\.ghcbGPA, "ghcb_gpa"),
            (\.nestedCR3, "nested_cr3"), (\.virtExt, "virt_ext"), (\.nextRIP, "next_rip"),
        ]
        let c32: [(WritableKeyPath<VMCBControl, UInt32>, String)] = [
            (\.interceptCR, "intercept_cr"), (\.interceptDR, "intercept_dr"),
            (\.interceptExceptions, "intercept_exceptions"), (\.interceptMisc1, "intercept_misc1"),
            (\.interceptMisc2, "intercept_misc2"), (\.interceptMisc3, "intercept_misc3"), (\.asid, "asid"),
            (\.intCtl, "int_ctl"), (\.intVector, "int_vector"), (\.intState, "int_state"),
            (\.exitIntInfo, "exit_int_info"), (\.exitIntInfoError, "exit_int_info_err"),
            (\.eventInjection, "event_inj"), (\.eventInjectionError, "event_inj_err"), (\.clean, "clean"),
        ]
        var control = VMCBControl()
        for (i, (kp, name)) in c64.enumerated() {
            control[keyPath: kp] = 0x1100_0000_0000_0000 | UInt64(i)
            XCTAssertEqual(control.value(of: name)?.uint64, 0x1100_0000_0000_0000 | UInt64(i), name)
        }
        for (i, (kp, name)) in c32.enumerated() {
            control[keyPath: kp] = 0x2200_0000 | UInt32(i)
            XCTAssertEqual(control.value(of: name)?.uint64, UInt64(0x2200_0000 | UInt32(i)), name)
        }
        control.pauseFilterThreshold = 7
        control.pauseFilterCount = 9
        control.tlbControl = 3
        control.instructionLength = 2
        XCTAssertEqual(control.value(of: "pause_filter_thresh")?.uint64, 7)
        XCTAssertEqual(control.value(of: "pause_filter_count")?.uint64, 9)
        XCTAssertEqual(control.value(of: "tlb_ctl")?.uint64, 3)
        XCTAssertEqual(control.value(of: "insn_len")?.uint64, 2)

        let s64: [(WritableKeyPath<VMCBSaveArea, UInt64>, String)] = [
            (\.efer, "efer"), (\.cr4, "cr4"), (\.cr3, "cr3"), (\.cr0, "cr0"), (\.dr7, "dr7"), (\.dr6, "dr6"),
            (\.rflags, "rflags"), (\.rip, "rip"), (\.rsp, "rsp"), (\.sCET, "s_cet"), (\.ssp, "ssp"),
            (\.isstAddress, "isst_addr"), (\.rax, "rax"), (\.star, "star"), (\.lstar, "lstar"), (\.cstar, "cstar"),
            (\.sfmask, "sfmask"), (\.kernelGSBase, "kernel_gs_base"), (\.sysenterCS, "sysenter_cs"),
            (\.sysenterESP, "sysenter_esp"), (\.sysenterEIP, "sysenter_eip"), (\.cr2, "cr2"), (\.gPAT, "g_pat"),
            (\.debugCtl, "dbgctl"), (\.branchFrom, "br_from"), (\.branchTo, "br_to"),
            (\.lastExceptionFrom, "last_excp_from"), (\.lastExceptionTo, "last_excp_to"), (\.specCtrl, "spec_ctrl"),
        ]
        var save = VMCBSaveArea()
        for (i, (kp, name)) in s64.enumerated() {
            save[keyPath: kp] = 0x3300_0000_0000_0000 | UInt64(i)
            XCTAssertEqual(save.value(of: name)?.uint64, 0x3300_0000_0000_0000 | UInt64(i), name)
        }
        save.cpl = 3
        save.vmpl = 1
        XCTAssertEqual(save.value(of: "cpl")?.uint64, 3)
        XCTAssertEqual(save.value(of: "vmpl")?.uint64, 1)
        for r in VMCBSegmentRegister.allCases {
            save.setSegment(r, VMCBSegment(selector: 1, attrib: 2, limit: 3, base: 4))
            XCTAssertEqual(save.value(of: "\(r.name).attrib")?.uint64, 2)
            XCTAssertEqual(save.value(of: "\(r.name).base")?.uint64, 4)
        }
    }
}
