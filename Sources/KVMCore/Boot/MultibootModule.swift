/// A multiboot module: its bytes and the string the kernel sees with it.
public struct MultibootModule: Equatable, Sendable {
    /// The module's contents.
    public var bytes: [UInt8]
    /// Its string (the file name and arguments, as QEMU gives them).
    public var string: String

    /// A module from its contents and string.
    public init(bytes: [UInt8], string: String) {
        self.bytes = bytes
        self.string = string
    }

    /// One module of a QEMU `-initrd` list.
    public struct Spec: Equatable, Sendable {
        /// The file: the entry up to its first space.
        public var path: String
        /// What follows the first space, if anything.
        public var arguments: String?
        /// The module's string: the whole entry, path and arguments, as QEMU gives it.
        public var string: String
    }

    /// QEMU's `-initrd "file1 args,file2"`: entries separated by commas (",,"
    /// is a literal comma); each entry is a file name, optionally followed by a
    /// space and arguments. The module's string is the whole entry.
    public static func parseQEMUList(_ initrd: String) -> [Spec] {
        var specs: [Spec] = []
        var current: [Character] = []
        var chars = Array(initrd)[...]
        func finish() {
            let entry = String(current)
            let parts = entry.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            specs.append(
                Spec(path: String(parts[0]), arguments: parts.count > 1 ? String(parts[1]) : nil, string: entry))
            current = []
        }
        while let c = chars.popFirst() {
            if c == "," {
                if chars.first == "," {
                    chars.removeFirst()
                    current.append(",")
                    continue
                }
                finish()
                if chars.isEmpty { return specs } // a trailing comma ends the list
                continue
            }
            current.append(c)
        }
        if !current.isEmpty || specs.isEmpty && !initrd.isEmpty { finish() }
        return specs
    }

    /// Reads each module of a QEMU `-initrd` list; the error names the file.
    public static func load(qemuList initrd: String, limit: UInt64 = .max) throws -> [MultibootModule] {
        try parseQEMUList(initrd).map { spec in
            MultibootModule(bytes: try Files.read(spec.path, limit: limit), string: spec.string)
        }
    }

    /// The length of the `-initrd` string these modules came from (commas
    /// doubled, entries joined by commas), which QEMU counts when it sizes the
    /// strings area.
    static func qemuListLength(_ modules: [MultibootModule]) -> UInt64 {
        guard !modules.isEmpty else { return 0 }
        let text = modules.reduce(0) {
            $0 + $1.string.utf8.count + $1.string.utf8.filter { $0 == UInt8(ascii: ",") }.count
        }
        return UInt64(text + modules.count - 1 + 1)
    }
}
