import CKVM

/// One exit from KVM_RUN, decoded from `struct kvm_run` (kvm-ioctls' `VcpuExit`).
/// Payloads are plain values or pointers into the vCPU's kvm_run page, valid
/// until the next run: decoding allocates nothing.
public enum VMExit {
    /// KVM_EXIT_IO: a port access.
    case io(PortIO)
    /// KVM_EXIT_MMIO: an access to an address with no RAM behind it.
    case mmio(MMIOAccess)
    /// KVM_EXIT_HLT: the guest halted (no in-kernel irqchip).
    case hlt
    /// Triple fault (or INIT): the CPU reset.
    case shutdown
    /// VM entry failed; the reason is the hardware's (VMX basic exit reason / SVM exit code).
    case failEntry(hardwareReason: UInt64, cpu: UInt32)
    /// KVM_EXIT_INTERNAL_ERROR: KVM could not emulate something.
    case internalError(InternalError)
    /// KVM_EXIT_SYSTEM_EVENT: shutdown, reset or crash (`SystemEvent`).
    case systemEvent(type: UInt32, flags: UInt64)
    /// KVM_EXIT_DEBUG: a breakpoint, single step or debug-register hit.
    case debug(DebugTrap)
    /// KVM_RUN returned EINTR or KVM_EXIT_INTR: the vCPU was kicked.
    case interrupted
    /// KVM_EXIT_IRQ_WINDOW_OPEN: the guest can take an interrupt now.
    case irqWindowOpen
    /// Any other KVM_EXIT_* reason.
    case unknown(reason: UInt32)

    /// The KVM_EXIT_* name, for traces and statistics.
    public var name: String { VMExit.name(ofReason: reason) }

    /// The KVM_EXIT_* number (`interrupted` is KVM_EXIT_INTR).
    public var reason: UInt32 {
        switch self {
        case .io: UInt32(KVM_EXIT_IO)
        case .mmio: UInt32(KVM_EXIT_MMIO)
        case .hlt: UInt32(KVM_EXIT_HLT)
        case .shutdown: UInt32(KVM_EXIT_SHUTDOWN)
        case .failEntry: UInt32(KVM_EXIT_FAIL_ENTRY)
        case .internalError: UInt32(KVM_EXIT_INTERNAL_ERROR)
        case .systemEvent: UInt32(KVM_EXIT_SYSTEM_EVENT)
        case .debug: UInt32(KVM_EXIT_DEBUG)
        case .interrupted: UInt32(KVM_EXIT_INTR)
        case .irqWindowOpen: UInt32(KVM_EXIT_IRQ_WINDOW_OPEN)
        case .unknown(let reason): reason
        }
    }

    /// The KVM_EXIT_* name of `reason` without the prefix ("IO"), or "EXIT_n".
    public static func name(ofReason reason: UInt32) -> String {
        exitNames[Int(reason)] ?? "EXIT_\(reason)"
    }
}

private let exitNames: [Int: String] = [
    0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 3: "HYPERCALL", 4: "DEBUG", 5: "HLT", 6: "MMIO",
    7: "IRQ_WINDOW_OPEN", 8: "SHUTDOWN", 9: "FAIL_ENTRY", 10: "INTR", 11: "SET_TPR",
    12: "TPR_ACCESS", 17: "INTERNAL_ERROR", 24: "SYSTEM_EVENT", 29: "X86_RDMSR", 30: "X86_WRMSR",
    37: "NOTIFY", 39: "MEMORY_FAULT",
]

/// A port access. For `.out` the bytes to write are at `data`; for `.in` the
/// handler stores the bytes the guest reads there. String I/O has `count` > 1.
public struct PortIO {
    /// Whether the guest reads (`in`) or writes (`out`).
    public enum Direction: Sendable {
        /// The guest reads the port (`in`, `ins`).
        case `in`
        /// The guest writes the port (`out`, `outs`).
        case out
    }
    /// `in` or `out`.
    public let direction: Direction
    /// The port.
    public let port: UInt16
    /// Bytes per access: 1, 2 or 4.
    public let size: Int
    /// Accesses: more than 1 for string I/O (`rep ins`/`outs`).
    public let count: Int
    /// `count × size` bytes in the kvm_run page: the data written, or where the data read goes.
    public let data: UnsafeMutableRawPointer

    /// The first value written (for `.out`).
    @inline(__always)
    public var value: UInt32 { loadValue(data, size: size) }
}

/// A guest access to an address with no RAM behind it.
public struct MMIOAccess {
    /// The guest-physical address.
    public let address: UInt64
    /// Bytes accessed: 1, 2, 4 or 8.
    public let size: Int
    /// A write; otherwise a read.
    public let isWrite: Bool
    /// 8 bytes inline in kvm_run: the value written, or where to put the value read.
    public let data: UnsafeMutableRawPointer

    /// The value written (for a write), little-endian.
    @inline(__always)
    public var value: UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: data, byteCount: min(size, 8)) }
        return UInt64(littleEndian: v)
    }
}

/// KVM_EXIT_INTERNAL_ERROR: KVM could not emulate something.
public struct InternalError: Sendable, CustomStringConvertible {
    /// KVM_INTERNAL_ERROR_*: 1 emulation, 2 simultaneous exceptions, 3 delivery, 4 unexpected exit.
    public let suberror: UInt32
    /// The data words KVM gives with it.
    public let data: [UInt64]

    /// "EMULATION", "SIMUL_EX", "DELIVERY_EV", "UNEXPECTED_EXIT_REASON", or "suberror n".
    public var suberrorName: String {
        switch suberror {
        case 1: "EMULATION"
        case 2: "SIMUL_EX"
        case 3: "DELIVERY_EV"
        case 4: "UNEXPECTED_EXIT_REASON"
        default: "suberror \(suberror)"
        }
    }

    /// "internal error NAME data=…".
    public var description: String {
        "internal error \(suberrorName)" + (data.isEmpty ? "" : " data=" + data.map { hex($0) }.joined(separator: ","))
    }
}

/// KVM_EXIT_DEBUG: a breakpoint, single step or debug-register hit.
public struct DebugTrap: Sendable {
    /// The exception vector (1: #DB, 3: #BP).
    public let exception: UInt32
    /// The guest's RIP.
    public let pc: UInt64
    /// DR6 at the exit.
    public let dr6: UInt64
    /// DR7 at the exit.
    public let dr7: UInt64
}

@inline(__always)
func loadValue(_ p: UnsafeRawPointer, size: Int) -> UInt32 {
    switch size {
    case 1: UInt32(p.load(as: UInt8.self))
    case 2: UInt32(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
    default: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))
    }
}

@inline(__always)
func storeValue(_ value: UInt32, _ p: UnsafeMutableRawPointer, size: Int) {
    switch size {
    case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
    case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian, as: UInt16.self)
    default: p.storeBytes(of: value.littleEndian, as: UInt32.self)
    }
}

extension VMExit {
    /// Decodes the exit KVM left in `run`.
    @inline(__always)
    init(_ run: UnsafeMutablePointer<kvm_run>) {
        switch Int32(run.pointee.exit_reason) {
        case KVM_EXIT_IO:
            self = .io(
                PortIO(
                    direction: run.pointee.io.direction == UInt8(KVM_EXIT_IO_OUT) ? .out : .in,
                    port: run.pointee.io.port, size: Int(run.pointee.io.size), count: Int(run.pointee.io.count),
                    data: UnsafeMutableRawPointer(ckvm_io_data(run))))
        case KVM_EXIT_MMIO:
            let data = UnsafeMutableRawPointer(ckvm_mmio_data(run)!)
            self = .mmio(
                MMIOAccess(
                    address: run.pointee.mmio.phys_addr, size: Int(run.pointee.mmio.len),
                    isWrite: run.pointee.mmio.is_write != 0, data: data))
        case KVM_EXIT_HLT: self = .hlt
        case KVM_EXIT_SHUTDOWN: self = .shutdown
        case KVM_EXIT_FAIL_ENTRY:
            self = .failEntry(
                hardwareReason: run.pointee.fail_entry.hardware_entry_failure_reason, cpu: run.pointee.fail_entry.cpu)
        case KVM_EXIT_INTERNAL_ERROR:
            let n = min(Int(run.pointee.internal.ndata), 16)
            let data = withUnsafeBytes(of: run.pointee.internal.data) { raw in
                (0..<n).map { raw.load(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
            self = .internalError(InternalError(suberror: run.pointee.internal.suberror, data: data))
        case KVM_EXIT_SYSTEM_EVENT:
            self = .systemEvent(type: run.pointee.system_event.type, flags: run.pointee.system_event.flags)
        case KVM_EXIT_DEBUG:
            self = .debug(
                DebugTrap(
                    exception: run.pointee.debug.arch.exception, pc: run.pointee.debug.arch.pc,
                    dr6: run.pointee.debug.arch.dr6, dr7: run.pointee.debug.arch.dr7))
        case KVM_EXIT_INTR: self = .interrupted
        case KVM_EXIT_IRQ_WINDOW_OPEN: self = .irqWindowOpen
        default: self = .unknown(reason: run.pointee.exit_reason)
        }
    }
}
