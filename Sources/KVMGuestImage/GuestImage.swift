// GuestImage: a guest program embedded as bytes. The GuestBuilder plugin
// generates one static per guest of a guests.list (`extension GuestImage`).

/// A guest program, embedded as bytes.
public struct GuestImage: Sendable {
    /// The CPU mode the host sets up before the guest's first instruction
    /// (Docs/PROTOCOL.md).
    public enum Mode: String, Sendable {
        case real, protected, paged, long
    }

    public enum Format: Sendable, Equatable {
        /// A raw binary: `bytes` go to guest-physical `load`, execution starts at
        /// guest-physical `entry`. Real mode: load = entry = 0x10000, which is
        /// cs:ip = 0x1000:0000 (kvmtool's convention).
        case flat(mode: Mode, load: UInt64, entry: UInt64)
        /// A static ELF32/ELF64 image; load addresses and entry come from its
        /// headers. ELF64 guests start in long mode.
        case elf
    }

    /// The name in guests.list, e.g. "hello-real".
    public let name: String
    public let format: Format
    public let bytes: [UInt8]
    /// One line: what the guest does and what it expects.
    public let summary: String

    public init(name: String, format: Format, bytes: [UInt8], summary: String) {
        self.name = name
        self.format = format
        self.bytes = bytes
        self.summary = summary
    }
}
