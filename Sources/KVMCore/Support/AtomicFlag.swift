import Synchronization

/// A flag one thread raises and another takes down, with sequentially consistent
/// ordering; no lock.
public final class AtomicFlag: Sendable {
    private let cell = Atomic<Bool>(false)

    public init() {}

    public func raise() { cell.store(true, ordering: .sequentiallyConsistent) }

    /// Lowers the flag; true when it was raised.
    public func take() -> Bool { cell.exchange(false, ordering: .sequentiallyConsistent) }

    public var isRaised: Bool { cell.load(ordering: .sequentiallyConsistent) }
}

/// An integer several threads add to; reads see the latest total.
public final class AtomicCounter: Sendable {
    private let cell = Atomic<Int>(0)

    public init() {}

    public func add(_ delta: Int) { cell.add(delta, ordering: .sequentiallyConsistent) }
    public var value: Int { cell.load(ordering: .sequentiallyConsistent) }
}
