import Glibc
import KVMCore

/// `kvmrun host --bug-report DIR`: what Documentation/virt/kvm/x86/running-nested-guests.rst
/// asks a nested bug report to carry, gathered from this host (run it on L0 and on L1).
struct BugReport {
    let directory: String
    let report: NestingReport

    /// Writes every piece it can and a README naming what was missing. Returns the files.
    func write() throws -> [String] {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw CLIError(.unreadableFile, "cannot create \(directory): \(Errno.current.message)")
        }
        var written: [String] = []
        var missing: [String] = []
        func save(_ name: String, _ text: String?) throws {
            guard let text else {
                missing.append(name)
                return
            }
            try Files.writeAtomically(Array(text.utf8), to: "\(directory)/\(name)")
            written.append(name)
        }
        try save("nesting-report.txt", report.text + "\n")
        try save("nesting-report.json", report.json.pretty + "\n")
        try save("kernel.txt", Files.text("/proc/version").map { $0 + "\n" })
        try save("cpuinfo.txt", Files.text("/proc/cpuinfo"))
        try save(
            "module-parameters.txt",
            report.facts.modules.map { module in
                (["[\(module.name)]"] + module.parameters.map { "\($0.0)=\($0.1)" }).joined(separator: "\n")
            }.joined(separator: "\n\n") + "\n")
        for (name, argv) in [
            ("lscpu.txt", ["lscpu"]), ("dmesg.txt", ["dmesg"]),
            ("x86info.txt", ["x86info", "-a"]), ("dmidecode.txt", ["dmidecode"]),
        ] {
            try save(name, capture(argv))
        }
        try save(
            "kvmrun.txt",
            "kvmrun \(KVMRun.configuration.version)\ncommand line: \(CommandLine.arguments.joined(separator: " "))\n")
        try save(
            "README.txt",
            """
            Nested virtualization bug report gathered by kvmrun.
            Say in the bug that this is a nested setup (L0/L1/L2), and gather this on L0 and on L1.
            Missing here (tool absent or not permitted): \(missing.isEmpty ? "nothing" : missing.joined(separator: ", "))

            """)
        return written
    }
}

/// Runs `argv` (found on PATH) and returns its stdout, or nil when it cannot run or fails.
func capture(_ argv: [String]) -> String? {
    var pipeFDs: [Int32] = [0, 0]
    guard pipe(&pipeFDs) == 0 else { return nil }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
    var cArgs = argv.map { strdup($0) } + [nil]
    defer { for arg in cArgs { free(arg) } }
    var pid = pid_t()
    let spawned = posix_spawnp(&pid, argv[0], &actions, nil, &cArgs, environ)
    close(pipeFDs[1])
    guard spawned == 0 else {
        close(pipeFDs[0])
        return nil
    }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        output.append(contentsOf: buffer[0..<n])
    }
    close(pipeFDs[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = status & 0x7F == 0
    guard exited && (status >> 8) & 0xFF == 0 else { return nil }
    return String(decoding: output, as: UTF8.self)
}
