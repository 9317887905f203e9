import Glibc

/// The C baseline as a C program ships: Sources/kvm-baseline/main.c built with
/// `cc -O2 -static` into kvm-bench's scratch folder, at every start (a fraction
/// of a second). Not the SwiftPM target of the same name: SwiftPM links C
/// executables with swiftc, which adds the Swift runtime's start-up and pages to
/// the baseline and flatters every kvmrun/C ratio.
enum PlainCBaseline {
    /// The package root, from this file's path at build time.
    static let packageRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        return path
    }()
    static let source = packageRoot + "/Sources/kvm-baseline/main.c"
    static let flags = ["-O2", "-static"]

    /// The command that built the baseline, for the output.
    static func command(output: String) -> String { (["cc"] + flags + ["-o", output, source]).joined(separator: " ") }

    /// Compiles main.c into `directory`/kvm-baseline and returns that path.
    static func build(into directory: String) throws -> String {
        guard access(source, R_OK) == 0 else {
            throw BenchError(
                "\(source) is not readable: kvm-bench builds its C baseline from the package's source; pass --baseline PATH to use another"
            )
        }
        mkdir(directory, 0o755)
        let output = directory + "/kvm-baseline"
        // Built under another name and renamed, so a concurrent kvm-bench never runs a half-written file.
        let partial = output + ".\(getpid())"
        let argv = CArgv(["cc"] + flags + ["-o", partial, source])
        let result: ChildResult
        do {
            result = try spawnAndWait(argv, captureStderr: true, searchPath: true)
        } catch let error as SpawnError where error.code == ENOENT {
            throw BenchError(
                "cc not found in PATH: kvm-bench builds its C baseline with `cc -O2 -static` (Debian: apt-get install gcc libc6-dev), or pass --baseline PATH"
            )
        }
        guard result.exitedCleanly else {
            unlink(partial)
            let hint = result.stderr.contains("-lc") ? " (static linking needs libc.a: apt-get install libc6-dev)" : ""
            throw BenchError("\(command(output: output)): \(result.describeStatus)\(hint): \(result.stderr)")
        }
        guard rename(partial, output) == 0 else {
            throw BenchError("rename \(partial) to \(output): \(String(cString: strerror(errno)))")
        }
        return output
    }
}

/// What an ELF executable needs at start: a PT_INTERP program header means the
/// dynamic loader maps shared libraries first; none means a static executable.
func isStaticExecutable(_ path: String) -> Bool? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var header = [UInt8](repeating: 0, count: 64)
    guard pread(fd, &header, 64, 0) == 64, header[0..<4] == [0x7f, 0x45, 0x4c, 0x46], header[4] == 2 else { return nil }
    func u64(_ b: [UInt8], _ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
    func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    let phoff = u64(header, 32)
    let phentsize = u16(header, 54)
    let phnum = u16(header, 56)
    var entry = [UInt8](repeating: 0, count: max(phentsize, 4))
    for i in 0..<phnum {
        guard pread(fd, &entry, phentsize, off_t(phoff + i * phentsize)) == phentsize else { return nil }
        if entry[0] == 3 && entry[1] == 0 && entry[2] == 0 && entry[3] == 0 { return false } // PT_INTERP
    }
    return true
}
