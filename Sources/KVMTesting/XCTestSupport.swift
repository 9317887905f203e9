// Compiled where the toolchain has XCTest for this build: not in a static
// build (--static-swift-stdlib, Scripts/release), whose resource folder has no
// test frameworks; there KVMTesting is KVMTestingCore re-exported.
#if canImport(XCTest)
    import KVMCore
    import XCTest

    extension XCTestCase {
        /// Runs `image` on a fresh machine to its end, with `onCheckpoint` at each
        /// HC_SYNC / HC_DUMP_NESTED / HC_SNAPSHOT, and records a failed run as a test
        /// failure: a GUEST_ASSERT at the guest's C file and line with its values,
        /// anything else (exception, triple fault, timeout with registers…) at the
        /// caller's line. Returns the run either way. Skips the test (XCTSkip) with
        /// the reason where /dev/kvm is unusable, or where `options.nested` is set
        /// and the host cannot nest (the nesting report's words).
        @discardableResult
        public func runGuest(
            _ image: GuestImage, options: GuestOptions = GuestOptions(),
            file: StaticString = #filePath, line: UInt = #line,
            onCheckpoint: ((Checkpoint) throws -> Void)? = nil
        ) throws -> GuestRun {
            let guest = try makeGuestMachine(image, options: options, file: file, line: line)
            let run = guest.run(onCheckpoint: onCheckpoint)
            record(run, file: file, line: line)
            return run
        }

        /// A `GuestMachine` for `image`, or XCTSkip with the reason /dev/kvm or
        /// nesting is unavailable.
        public func makeGuestMachine(
            _ image: GuestImage, options: GuestOptions = GuestOptions(),
            file: StaticString = #filePath, line: UInt = #line
        ) throws -> GuestMachine {
            do {
                return try GuestMachine(image, options: options)
            } catch let error as KVMError where error.operation.hasPrefix("open") {
                throw XCTSkip("KVM unavailable: \(error)", file: file, line: line)
            } catch let error as NestingUnavailable {
                throw XCTSkip(error.report.summary, file: file, line: line)
            }
        }

        /// Records `run.failure`, if any, as a test failure: at the guest's file and
        /// line when the failure has them (a GUEST_ASSERT), else at `file`:`line`.
        public func record(_ run: GuestRun, file: StaticString = #filePath, line: UInt = #line) {
            guard let failure = run.failure else { return }
            record(failure, guest: run.image.name, file: file, line: line)
        }

        /// Records `failure` (see `record(_:file:line:)`).
        public func record(
            _ failure: GuestTestFailure, guest: String, file: StaticString = #filePath, line: UInt = #line
        ) {
            let text = "guest \(guest): \(failure.description)"
            if let path = failure.filePath, let guestLine = failure.line {
                recordFailure(withDescription: text, inFile: path, atLine: guestLine, expected: true)
            } else {
                recordFailure(withDescription: text, inFile: "\(file)", atLine: Int(line), expected: true)
            }
        }
    }
#endif // canImport(XCTest)
