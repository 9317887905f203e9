import CKVM

// The register files are KVM's own structs, as rust-vmm's kvm-bindings exposes them.
/// The general-purpose registers, RIP and RFLAGS (`struct kvm_regs`).
public typealias Registers = kvm_regs
/// Segment, control and descriptor-table registers, EFER and APIC base (`struct kvm_sregs`).
public typealias SpecialRegisters = kvm_sregs
/// One segment register with its hidden part (`struct kvm_segment`).
public typealias Segment = kvm_segment
/// GDTR or IDTR (`struct kvm_dtable`).
public typealias DescriptorTable = kvm_dtable
/// The x87 and SSE state (`struct kvm_fpu`).
public typealias FPUState = kvm_fpu
/// Pending exceptions, interrupts, NMIs and SMM state (`struct kvm_vcpu_events`).
public typealias VCPUEvents = kvm_vcpu_events
/// DR0–DR3, DR6, DR7 (`struct kvm_debugregs`).
public typealias DebugRegisters = kvm_debugregs
/// The extended control registers, XCR0 (`struct kvm_xcrs`).
public typealias XCRs = kvm_xcrs
/// The in-kernel local APIC's register page (`struct kvm_lapic_state`).
public typealias LAPICState = kvm_lapic_state

/// The XSAVE area, sized by KVM_CAP_XSAVE2 (larger than 4 KiB with AMX).
public struct XSAVEState: Equatable, Sendable {
    /// The area as KVM_GET_XSAVE/KVM_GET_XSAVE2 gives it.
    public var bytes: [UInt8]
    /// An area from its bytes.
    public init(bytes: [UInt8]) { self.bytes = bytes }
}

/// KVM_GET/SET_MP_STATE values.
public enum MPState: UInt32, Sendable {
    /// KVM_MP_STATE_RUNNABLE.
    case runnable = 0
    /// KVM_MP_STATE_UNINITIALIZED: an AP waiting for INIT.
    case uninitialized = 1
    /// KVM_MP_STATE_INIT_RECEIVED: an AP waiting for SIPI.
    case initReceived = 2
    /// KVM_MP_STATE_HALTED.
    case halted = 3
    /// KVM_MP_STATE_SIPI_RECEIVED.
    case sipiReceived = 4
    /// KVM_MP_STATE_STOPPED (s390).
    case stopped = 5
    /// KVM_MP_STATE_CHECK_STOP (s390).
    case checkStop = 6
    /// KVM_MP_STATE_OPERATING (s390).
    case operating = 7
    /// KVM_MP_STATE_LOAD (s390).
    case load = 8
    /// KVM_MP_STATE_AP_RESET_HOLD (SEV-ES).
    case aprResetHold = 9
    /// KVM_MP_STATE_SUSPENDED.
    case suspended = 10
}

extension Registers {
    /// A QEMU-style dump, four registers a line.
    public var dump: String {
        let pairs: [(String, UInt64)] = [
            ("rax", rax), ("rbx", rbx), ("rcx", rcx), ("rdx", rdx),
            ("rsi", rsi), ("rdi", rdi), ("rbp", rbp), ("rsp", rsp),
            ("r8", r8), ("r9", r9), ("r10", r10), ("r11", r11),
            ("r12", r12), ("r13", r13), ("r14", r14), ("r15", r15),
            ("rip", rip), ("rflags", rflags),
        ]
        return stride(from: 0, to: pairs.count, by: 4).map { start in
            pairs[start..<min(start + 4, pairs.count)]
                .map { pad($0.0, 6) + "=" + hex16($0.1) }
                .joined(separator: " ")
        }.joined(separator: "\n")
    }
}

extension SpecialRegisters {
    /// Control registers, EFER and segments, one line each.
    public var summary: String {
        func seg(_ name: String, _ s: Segment) -> String {
            "\(pad(name, 4))sel=\(hex(s.selector)) base=\(hex16(s.base)) limit=\(hex(s.limit)) type=\(s.type) l=\(s.l) db=\(s.db)"
        }
        return [
            "cr0=\(hex16(cr0)) cr2=\(hex16(cr2)) cr3=\(hex16(cr3)) cr4=\(hex16(cr4)) efer=\(hex16(efer))",
            seg("cs", cs), seg("ds", ds), seg("ss", ss), seg("tr", tr),
            "gdt base=\(hex16(gdt.base)) limit=\(hex(gdt.limit))  idt base=\(hex16(idt.base)) limit=\(hex(idt.limit))",
        ].joined(separator: "\n")
    }
}

/// 16 hex digits, zero padded.
func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

func pad(_ s: String, _ width: Int) -> String {
    s + String(repeating: " ", count: max(0, width - s.count))
}
