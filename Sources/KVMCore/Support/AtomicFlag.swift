import CKVM

/// A flag one thread raises and another takes down, with sequentially consistent
/// ordering; no lock.
package final class AtomicFlag: @unchecked Sendable {
    private let cell = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    package init() { cell.initialize(to: 0) }
    deinit { cell.deallocate() }

    package func raise() { ckvm_atomic_store(cell, 1) }

    /// Lowers the flag; true when it was raised.
    package func take() -> Bool { ckvm_atomic_exchange(cell, 0) != 0 }

    package var isRaised: Bool { ckvm_atomic_load(cell) != 0 }
}

/// An integer several threads add to; reads see the latest total.
package final class AtomicCounter: @unchecked Sendable {
    private let cell = UnsafeMutablePointer<Int>.allocate(capacity: 1)

    package init() { cell.initialize(to: 0) }
    deinit { cell.deallocate() }

    package func add(_ delta: Int) { ckvm_atomic_add_long(cell, delta) }
    package var value: Int { ckvm_atomic_load_long(cell) }
}
