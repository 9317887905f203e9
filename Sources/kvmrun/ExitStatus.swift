/// kvmrun's exit statuses. Odd statuses belong to the guest (isa-debug-exit gives
/// `(v << 1) | 1`, as QEMU does), so kvmrun's own are even and never collide.
enum ExitStatus: Int32, CaseIterable {
    case success = 0
    case usage = 2
    case unreadableFile = 4
    case badImage = 6
    case kvmUnavailable = 8
    case kvmFailure = 10
    case tripleFault = 12
    case entryFailure = 14
    case timeout = 16
    case guestFailure = 18
    case nestingUnavailable = 20
    case protocolError = 22
    case badStateFile = 24
    case suspended = 26
    case interrupted = 130
    case terminated = 143

    var meaning: String {
        switch self {
        case .success: "the guest halted with interrupts off, powered off (ACPI S5), or reported HC_DONE 0"
        case .usage: "bad command line: unknown option, bad size, address or duration"
        case .unreadableFile: "the guest file is missing or unreadable"
        case .badImage: "the guest image is invalid or does not fit guest memory"
        case .kvmUnavailable: "/dev/kvm is missing, not permitted, or has the wrong API version"
        case .kvmFailure: "a KVM ioctl failed while setting up or running the VM"
        case .tripleFault: "the guest triple-faulted (KVM_EXIT_SHUTDOWN); registers are printed"
        case .entryFailure: "VM entry failed, KVM reported an internal error, or an exit kvmrun cannot handle"
        case .timeout: "the guest ran past --timeout; its RIP is printed"
        case .guestFailure: "the guest reported HC_FAIL, or HC_DONE with a non-zero status"
        case .nestingUnavailable: "--nested was asked for but the host cannot nest (the reason is printed)"
        case .protocolError: "the guest broke the hostcall protocol (Docs/PROTOCOL.md)"
        case .badStateFile:
            "a saved state file is corrupt, truncated, or of the wrong kind; a snapshot of another format version or for another host"
        case .suspended:
            "the guest entered ACPI S3 (suspend to RAM); with no wake-up source the run ends (QEMU would stay suspended)"
        case .interrupted: "kvmrun was stopped by SIGINT (the vCPUs stopped cleanly, the terminal restored)"
        case .terminated: "kvmrun was stopped by SIGTERM or SIGHUP"
        }
    }
}

/// An error kvmrun reports as one line on stderr and a distinct exit status.
struct CLIError: Error {
    let status: ExitStatus
    let message: String
    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}
