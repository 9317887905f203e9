/// A time limit for a whole run that is resumed several times (after HC_SYNC,
/// dumps, snapshots): each `Machine.run` gets only what is left, so a guest that
/// keeps asking for something cannot outrun its limit.
package struct RunDeadline: Sendable {
    private let end: UInt64?

    /// From now, `timeout` long; nil: no limit.
    package init(_ timeout: Duration?) {
        end = timeout.map { monotonicNanoseconds() &+ $0.nanoseconds }
    }

    /// What is left for the next `run(timeout:)`: nil without a limit, at least
    /// 1 ns (the run then stops at once with `.timedOut`) once it has passed.
    package var remaining: Duration? {
        guard let end else { return nil }
        let now = monotonicNanoseconds()
        return .nanoseconds(Int64(clamping: end > now ? end - now : 1))
    }
}
