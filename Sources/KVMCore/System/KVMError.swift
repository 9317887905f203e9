/// A failed system call or KVM ioctl: which one, the errno, and where known the
/// likely cause, e.g.
/// `KVM_SET_NESTED_STATE: EINVAL — host KVM has no nested state support (KVM_CAP_NESTED_STATE = 0)`.
public struct KVMError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The ioctl ("KVM_SET_REGS") or system call ("open /dev/kvm").
    public let operation: String
    public let errno: Errno
    /// The likely cause, when the library can tell.
    public let hint: String?

    public init(_ operation: String, errno: Errno, hint: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.hint = hint
    }

    public var description: String {
        var text = "\(operation): \(errno.name)"
        if let hint { text += " — \(hint)" } else { text += " (\(errno.message))" }
        return text
    }
}

/// A request the library refuses before asking the kernel: bad sizes, overlapping
/// memory, an address outside guest RAM, an unsupported configuration.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
