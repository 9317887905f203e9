/// A failed system call or KVM ioctl: which one, the errno, and where known the
/// likely cause, e.g.
/// `KVM_SET_NESTED_STATE: EINVAL — host KVM has no nested state support (KVM_CAP_NESTED_STATE = 0)`.
public struct KVMError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The ioctl ("KVM_SET_REGS") or system call ("open /dev/kvm").
    public let operation: String
    /// The errno the call set.
    public let errno: Errno
    /// The likely cause, when the library can tell.
    public let hint: String?

    /// An error for `operation` with `errno` and, where known, the likely cause.
    public init(_ operation: String, errno: Errno, hint: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.hint = hint
    }

    /// "OPERATION: ENAME — hint", or "OPERATION: ENAME (message)" without one.
    public var description: String {
        var text = "\(operation): \(errno.name)"
        if let hint { text += " — \(hint)" } else { text += " (\(errno.message))" }
        return text
    }
}

/// A request the library refuses before asking the kernel. The case says what
/// part of the request is wrong; `description` is the one line users see.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Guest RAM the machine cannot have or lay out: a size, an unaligned,
    /// overlapping or wrapping slot, tables or page tables that do not fit.
    case memoryLayout(String)
    /// An access of `count` bytes at guest-physical `address` outside guest RAM.
    case outsideGuestRAM(address: UInt64, count: Int)
    /// An access of `count` bytes at guest-physical `address` outside the RAM a snapshot holds.
    case outsideSnapshotRAM(address: UInt64, count: Int)
    /// A vCPU count outside what KVM or the machine's tables allow.
    case vcpuCount(String)
    /// A device that cannot be attached: its ports, MMIO range or PCI slot is
    /// taken, or the bus is full.
    case deviceConflict(String)
    /// vCPU state the library cannot set: an entry point, a GDT, an XSAVE area.
    case vcpuState(String)
    /// A call the current state does not allow (a reset before any snapshot), or a
    /// guest that did not follow the protocol the call relies on.
    case invalidRequest(String)

    /// The one line users see.
    public var description: String {
        switch self {
        case .memoryLayout(let message), .vcpuCount(let message), .deviceConflict(let message),
            .vcpuState(let message), .invalidRequest(let message):
            return message
        case .outsideGuestRAM(let address, let count):
            return "guest-physical \(hex(address))+\(count) is outside guest RAM"
        case .outsideSnapshotRAM(let address, let count):
            return "guest-physical \(hex(address))+\(count) is outside the snapshot's RAM"
        }
    }
}
