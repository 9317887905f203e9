import KVMCore

/// The facts a guest reported (`report(key, value)`, HC_REPORT), read as typed values.
///
///     run.facts["sum"]                      // UInt64?, the last value under "sum"
///     run.facts["delta", as: Int32.self]    // the low 32 bits, as signed
///     run.facts.bool("vmx")                 // nil, or value != 0
///     run.facts.all("round")                // every value under "round", in order
public struct GuestFacts: Sendable, CustomStringConvertible {
    /// Every fact, in the order reported.
    public let list: [HostCall.Fact]

    public init(_ list: [HostCall.Fact]) { self.list = list }

    /// The last value reported under `key`.
    public subscript(key: String) -> UInt64? { list.last { $0.key == key }?.value }

    /// The last value under `key` as `T`: the low bits, two's complement for
    /// signed types (a guest reporting `(uint64_t)-1` reads as -1 in `Int32`).
    public subscript<T: FixedWidthInteger>(key: String, as type: T.Type) -> T? {
        self[key].map { T(truncatingIfNeeded: $0) }
    }

    /// The last value under `key` as a truth value (non-zero is true).
    public func bool(_ key: String) -> Bool? { self[key].map { $0 != 0 } }

    /// Every value reported under `key`, in order.
    public func all(_ key: String) -> [UInt64] { list.filter { $0.key == key }.map(\.value) }

    /// The keys, first report first, each once.
    public var keys: [String] {
        var seen = Set<String>()
        return list.compactMap { seen.insert($0.key).inserted ? $0.key : nil }
    }

    public var description: String {
        list.map { "\($0.key)=\(hex($0.value))" }.joined(separator: " ")
    }
}
