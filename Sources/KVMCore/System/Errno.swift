import CKVM
import Glibc

/// An errno value with its symbolic name, as swift-system's `Errno` does.
public struct Errno: Error, Hashable, CustomStringConvertible, Sendable {
    public let rawValue: Int32
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

    public var description: String { name }

    public static let EINTR = Errno(rawValue: Glibc.EINTR)
    public static let EINVAL = Errno(rawValue: Glibc.EINVAL)
    public static let ENOENT = Errno(rawValue: Glibc.ENOENT)
    public static let EACCES = Errno(rawValue: Glibc.EACCES)
    public static let EPERM = Errno(rawValue: Glibc.EPERM)
    public static let ENOMEM = Errno(rawValue: Glibc.ENOMEM)
    public static let EFAULT = Errno(rawValue: Glibc.EFAULT)
    public static let EEXIST = Errno(rawValue: Glibc.EEXIST)
    public static let E2BIG = Errno(rawValue: Glibc.E2BIG)
    public static let ENXIO = Errno(rawValue: Glibc.ENXIO)
    public static let ENOTTY = Errno(rawValue: Glibc.ENOTTY)
    public static let EBUSY = Errno(rawValue: Glibc.EBUSY)
}
