// Compiled where the toolchain has Testing for this build: not in a static
// build (--static-swift-stdlib, Scripts/release), whose resource folder has no
// test frameworks; there KVMTesting is KVMTestingCore re-exported.
#if canImport(Testing)
    import Glibc
    import KVMCore
    import Testing

    /// Swift Testing: runs `image` on a fresh machine to its end (see
    /// `GuestMachine.run`) and records a failed run as an issue — a GUEST_ASSERT at
    /// the guest's C file and line with its values, anything else at the caller.
    /// Returns the run either way. Cancels the test (`Test.cancel`, reported as
    /// skipped) with the reason where /dev/kvm is unusable or `options.nested` is
    /// set and the host cannot nest (the nesting report's words).
    @discardableResult
    public func runGuest(
        _ image: GuestImage, options: GuestOptions = GuestOptions(),
        sourceLocation: SourceLocation = #_sourceLocation,
        onCheckpoint: ((Checkpoint) throws -> Void)? = nil
    ) throws -> GuestRun {
        let guest = try guestMachine(image, options: options, sourceLocation: sourceLocation)
        let run = guest.run(onCheckpoint: onCheckpoint)
        run.recordIssue(sourceLocation: sourceLocation)
        return run
    }

    /// Swift Testing: a `GuestMachine` for `image`, or the test cancelled with the
    /// reason /dev/kvm or nesting is unavailable.
    public func guestMachine(
        _ image: GuestImage, options: GuestOptions = GuestOptions(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> GuestMachine {
        do {
            return try GuestMachine(image, options: options)
        } catch let error as KVMError where error.operation.hasPrefix("open") {
            try Test.cancel("KVM unavailable: \(error)", sourceLocation: sourceLocation)
        } catch let error as NestingUnavailable {
            try Test.cancel("\(error.report.summary)", sourceLocation: sourceLocation)
        }
    }

    extension GuestRun {
        /// Records `failure`, if any, as a Swift Testing issue at the guest's file and
        /// line when it has them (a GUEST_ASSERT), else at `sourceLocation`.
        public func recordIssue(sourceLocation: SourceLocation = #_sourceLocation) {
            guard let failure else { return }
            Issue.record(
                "guest \(image.name): \(failure.description)",
                sourceLocation: failure.sourceLocation ?? sourceLocation)
        }
    }

    extension GuestTestFailure {
        /// The guest's file and line as a Swift Testing source location, when known.
        public var sourceLocation: SourceLocation? {
            guard let filePath, let line, line > 0 else { return nil }
            let name = filePath.split(separator: "/").last.map(String.init) ?? filePath
            return SourceLocation(fileID: "guest/\(name)", filePath: filePath, line: line, column: 1)
        }
    }

    /// One `GuestMachine` shared by many test cases — the arguments of a
    /// parameterized `@Test`, which Swift Testing runs in parallel: made (and
    /// snapshotted at `snapshotStage`) on first use, then each `run` resets it and
    /// runs under a lock. Keep it in a `static let`.
    ///
    ///     static let square = SharedGuestMachine(.square, snapshotAtStage: 1)
    ///
    ///     @Test(arguments: 0..<100 as Range<UInt64>)
    ///     func square(x: UInt64) throws {
    ///         let run = try Self.square.run { if $0.stage == 1 { try $0.reply(x) } }
    ///         #expect(run.facts["square"] == x * x)
    ///     }
    ///
    /// The returned run's `machine` is shared: read what you need from `facts`,
    /// `serial` and `stop`, or inside `onCheckpoint`.
    public final class SharedGuestMachine: @unchecked Sendable { // all state behind `lock`
        public let image: GuestImage
        public let options: GuestOptions
        public let snapshotStage: UInt64?
        private let lock = Lock()
        private var guest: GuestMachine?

        public init(_ image: GuestImage, options: GuestOptions = GuestOptions(), snapshotAtStage stage: UInt64? = nil) {
            self.image = image
            self.options = options
            snapshotStage = stage
        }

        /// Runs one case from the snapshot (see `GuestMachine.run`) and records a
        /// failed run as an issue (see `runGuest`). Cancels the test where /dev/kvm or
        /// nesting is unavailable.
        @discardableResult
        public func run(
            sourceLocation: SourceLocation = #_sourceLocation,
            onCheckpoint: ((Checkpoint) throws -> Void)? = nil
        ) throws -> GuestRun {
            let run = try lock.withLock {
                let guest =
                    try self.guest
                    ?? {
                        let made = try guestMachine(image, options: options, sourceLocation: sourceLocation)
                        try made.snapshot(atStage: snapshotStage)
                        self.guest = made
                        return made
                    }()
                return guest.run(onCheckpoint: onCheckpoint)
            }
            run.recordIssue(sourceLocation: sourceLocation)
            return run
        }
    }

    /// A pthread mutex (KVMTesting stays off Foundation too).
    // @unchecked: the pthread mutex is the synchronization; its memory never moves.
    final class Lock: @unchecked Sendable {
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        init() { pthread_mutex_init(mutex, nil) }
        deinit {
            pthread_mutex_destroy(mutex)
            mutex.deallocate()
        }
        func withLock<T>(_ body: () throws -> T) rethrows -> T {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body()
        }
    }
#endif // canImport(Testing)
