import CKVM
import Glibc

/// An errno value with its symbolic name, as swift-system's `Errno` does.
public struct Errno: Error, Hashable, CustomStringConvertible, Sendable {
    /// The errno value.
    public let rawValue: Int32
    /// An errno from its value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current errno.
    public static var current: Errno { Errno(rawValue: errno) }

    /// "EINVAL", or "errno 4242" for values glibc has no name for.
    public var name: String {
        guard let cName = ckvm_errno_name(rawValue) else { return "errno \(rawValue)" }
        return String(cString: cName)
    }

    /// The C library's message, e.g. "Invalid argument".
    public var message: String { String(cString: strerror(rawValue)) }

    /// The symbolic name ("EINVAL").
    public var description: String { name }

    /// Interrupted system call.
    public static let EINTR = Errno(rawValue: Glibc.EINTR)
    /// Invalid argument.
    public static let EINVAL = Errno(rawValue: Glibc.EINVAL)
    /// No such file or directory.
    public static let ENOENT = Errno(rawValue: Glibc.ENOENT)
    /// Permission denied.
    public static let EACCES = Errno(rawValue: Glibc.EACCES)
    /// Operation not permitted.
    public static let EPERM = Errno(rawValue: Glibc.EPERM)
    /// Out of memory.
    public static let ENOMEM = Errno(rawValue: Glibc.ENOMEM)
    /// Bad address.
    public static let EFAULT = Errno(rawValue: Glibc.EFAULT)
    /// File exists.
    public static let EEXIST = Errno(rawValue: Glibc.EEXIST)
    /// Argument list too long (KVM: a buffer too small).
    public static let E2BIG = Errno(rawValue: Glibc.E2BIG)
    /// No such device or address.
    public static let ENXIO = Errno(rawValue: Glibc.ENXIO)
    /// Inappropriate ioctl for device.
    public static let ENOTTY = Errno(rawValue: Glibc.ENOTTY)
    /// Device or resource busy.
    public static let EBUSY = Errno(rawValue: Glibc.EBUSY)
}
