import KVMCore

/// How a guest test runs.
public struct GuestOptions: Sendable {
    /// Guest RAM (the guest library's images load at 1 MiB).
    public var memorySize: UInt64 = 64 << 20
    /// The limit of one run, checkpoints included (a run past it fails the test
    /// with the guest's RIP and registers).
    public var timeout: Duration = .seconds(10)
    /// Offer the vCPU VMX or SVM (the host's vendor) so the guest may run an L2.
    /// Where the host cannot nest, making the machine throws `NestingUnavailable`
    /// with the nesting report's reason, and the XCTest and Swift Testing entry
    /// points skip the test with it.
    public var nested: Bool = false
    /// An `exception` fact (the guest library's IDT reports one, then HC_DONE 0)
    /// fails the test. Set false for guests that expect exceptions and read them
    /// as facts.
    public var exceptionsFail: Bool = true
    /// A write of this value to isa-debug-exit (port 0xf4) passes; any other fails.
    public var passingDebugExit: UInt32? = nil
    /// A halt with interrupts off passes (the end of assembly guests); when false it fails.
    public var haltPasses: Bool = true

    public init(
        memorySize: UInt64 = 64 << 20, timeout: Duration = .seconds(10), nested: Bool = false,
        exceptionsFail: Bool = true, passingDebugExit: UInt32? = nil, haltPasses: Bool = true
    ) {
        self.memorySize = memorySize
        self.timeout = timeout
        self.nested = nested
        self.exceptionsFail = exceptionsFail
        self.passingDebugExit = passingDebugExit
        self.haltPasses = haltPasses
    }
}
