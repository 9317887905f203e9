import Synchronization

/// A flag one thread raises and another takes down, with sequentially consistent
/// ordering; no lock.
package final class AtomicFlag: Sendable {
    private let cell = Atomic<Bool>(false)

    package init() {}

    package func raise() { cell.store(true, ordering: .sequentiallyConsistent) }

    /// Lowers the flag; true when it was raised.
    package func take() -> Bool { cell.exchange(false, ordering: .sequentiallyConsistent) }

    package var isRaised: Bool { cell.load(ordering: .sequentiallyConsistent) }
}

/// An integer several threads add to; reads see the latest total.
package final class AtomicCounter: Sendable {
    private let cell = Atomic<Int>(0)

    package init() {}

    package func add(_ delta: Int) { cell.add(delta, ordering: .sequentiallyConsistent) }
    package var value: Int { cell.load(ordering: .sequentiallyConsistent) }
}
