import KVMCore

/// Why a guest test failed, and where: a GUEST_ASSERT names its C file and line
/// (`filePath`, `line`), which the XCTest and Swift Testing entry points report
/// the issue at; the other kinds have no guest location and are reported at the
/// test's call.
public struct GuestTestFailure: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// HC_FAIL: GUEST_ASSERT, GUEST_ASSERT_EQ, GUEST_FAIL, fail().
        case assertion
        /// The guest library's IDT caught an exception (the `exception` fact).
        case exception
        /// KVM_EXIT_SHUTDOWN: a triple fault (no IDT, or a fault in the handler).
        case tripleFault
        /// The run passed `GuestOptions.timeout`.
        case timedOut
        /// HC_DONE with a non-zero status, or `main` returning non-zero.
        case status
        /// isa-debug-exit with a value other than `GuestOptions.passingDebugExit`.
        case debugExit
        /// The guest broke the hostcall protocol.
        case protocolError
        /// A checkpoint handler threw, or KVM failed.
        case hostError
        /// Any other stop (failed entry, internal error, halt when halts do not pass…).
        case unexpectedStop
    }

    public let kind: Kind
    /// One line: what happened.
    public let message: String
    /// Registers, the last serial lines, the facts: what a reader needs next.
    public let details: [String]
    /// The guest source file (absolute, as the plugin compiled it), when known.
    public let filePath: String?
    /// The line in `filePath`, when known.
    public let line: Int?

    public init(kind: Kind, message: String, details: [String] = [], filePath: String? = nil, line: Int? = nil) {
        self.kind = kind
        self.message = message
        self.details = details
        self.filePath = filePath
        self.line = line
    }

    /// `file.c:12: message`, then the details, one per line.
    public var description: String {
        var head = message
        if let filePath, let line {
            head = "\(filePath.split(separator: "/").last.map(String.init) ?? filePath):\(line): \(message)"
        }
        return ([head] + details).joined(separator: "\n")
    }

    /// The failure a run that ended with `stop` means, or nil when it passed.
    /// The lower-level piece of every entry point: pure, so it can be tested
    /// without running a guest. `registers` is read only for failures that show them.
    public init?(
        stop: StopReason, facts: GuestFacts, serial: String, options: GuestOptions = GuestOptions(),
        registers: () -> Registers? = { nil }
    ) {
        var details: [String] = []
        func regs(_ r: Registers?) {
            guard let r else { return }
            details.append("rip=\(hex(r.rip)) rsp=\(hex(r.rsp)) rflags=\(hex(r.rflags))")
            details.append("rax=\(hex(r.rax)) rbx=\(hex(r.rbx)) rcx=\(hex(r.rcx)) rdx=\(hex(r.rdx))")
            details.append("rsi=\(hex(r.rsi)) rdi=\(hex(r.rdi)) rbp=\(hex(r.rbp)) r8=\(hex(r.r8))")
        }
        func context() {
            let lines = serial.split(separator: "\n", omittingEmptySubsequences: false)
            let tail = lines.suffix(8).joined(separator: "\n")
            if !tail.isEmpty { details.append("serial (last lines):\n" + tail) }
            if !facts.list.isEmpty { details.append("facts: \(facts)") }
        }
        var endedWell = false
        if case .done(status: 0) = stop { endedWell = true }
        if case .halted = stop, options.haltPasses { endedWell = true }
        switch stop {
        case _ where endedWell:
            guard options.exceptionsFail, let vector = facts["exception"] else { return nil }
            let name = GuestTestFailure.exceptionName(vector)
            var text = "guest exception \(name) (vector \(vector))"
            if let rip = facts["exception_rip"] { text += " at rip=\(hex(rip))" }
            if let error = facts["exception_error"] { text += ", error code \(hex(error))" }
            if let step = facts["exception_step"], step != 0 { text += ", step \(step)" }
            if let level = facts["exception_level"] { text += level == 2 ? ", in L2" : ", in L1" }
            context()
            self.init(kind: .exception, message: text, details: details)
        case .debugExit(let code) where options.passingDebugExit == code:
            return nil
        case .failed(let failure):
            var text = failure.message
            if failure.values != (0, 0) { text += " (\(hex(failure.values.0)) vs \(hex(failure.values.1)))" }
            context()
            self.init(
                kind: .assertion, message: text, details: details, filePath: failure.file,
                line: failure.file == nil ? nil : Int(failure.line))
            if failure.file == nil {
                self = GuestTestFailure(
                    kind: .assertion, message: "guest line \(failure.line): " + text, details: details)
            }
        case .done(let status):
            context()
            self.init(kind: .status, message: "guest ended with HC_DONE \(status) (\(hex(status)))", details: details)
        case .debugExit(let code):
            context()
            self.init(
                kind: .debugExit,
                message: "guest wrote \(hex(code)) to isa-debug-exit (status \(DebugExit.exitStatus(for: code)))",
                details: details)
        case .shutdown(let r, let s):
            regs(r)
            details.append("cr0=\(hex(s.cr0)) cr3=\(hex(s.cr3)) cr4=\(hex(s.cr4)) efer=\(hex(s.efer))")
            context()
            self.init(
                kind: .tripleFault, message: "guest triple-faulted (KVM_EXIT_SHUTDOWN) at rip=\(hex(r.rip))",
                details: details)
        case .timedOut(let rip):
            regs(registers())
            context()
            self.init(
                kind: .timedOut, message: "guest ran past \(options.timeout) at rip=\(hex(rip))", details: details)
        case .protocolError(let text):
            context()
            self.init(kind: .protocolError, message: "guest broke the hostcall protocol: \(text)", details: details)
        default:
            regs(registers())
            context()
            self.init(kind: .unexpectedStop, message: "guest stopped with \(stop)", details: details)
        }
    }

    /// "#GP" for 13, and so on.
    public static func exceptionName(_ vector: UInt64) -> String {
        let names = [
            "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
            "#GP", "#PF", "", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
        ]
        return vector < names.count && !names[Int(vector)].isEmpty ? names[Int(vector)] : "vector \(vector)"
    }
}
