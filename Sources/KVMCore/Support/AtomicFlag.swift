import CKVM

/// A flag one thread raises and another takes down, with sequentially consistent
/// ordering; no lock.
public final class AtomicFlag: @unchecked Sendable {
    private let cell = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    public init() { cell.initialize(to: 0) }
    deinit { cell.deallocate() }

    public func raise() { ckvm_atomic_store(cell, 1) }

    /// Lowers the flag; true when it was raised.
    public func take() -> Bool { ckvm_atomic_exchange(cell, 0) != 0 }

    public var isRaised: Bool { ckvm_atomic_load(cell) != 0 }
}

/// An integer several threads add to; reads see the latest total.
public final class AtomicCounter: @unchecked Sendable {
    private let cell = UnsafeMutablePointer<Int>.allocate(capacity: 1)

    public init() { cell.initialize(to: 0) }
    deinit { cell.deallocate() }

    public func add(_ delta: Int) { ckvm_atomic_add_long(cell, delta) }
    public var value: Int { ckvm_atomic_load_long(cell) }
}
