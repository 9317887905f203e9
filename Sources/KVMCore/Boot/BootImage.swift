/// A guest image, parsed and checked, ready to be copied into guest memory.
public struct BootImage: Sendable {
    /// One piece of the image: `bytes` at `guestPhysical`, zero-filled up to `memorySize`.
    public struct Segment: Sendable {
        /// Where the segment loads.
        public var guestPhysical: UInt64
        /// The bytes the file gives it.
        public var bytes: ArraySlice<UInt8>
        /// Its size in memory (at least `bytes.count`; the rest is zeros).
        public var memorySize: UInt64
        /// The first address past the segment.
        public var end: UInt64 { guestPhysical + memorySize }

        /// A segment from its parts.
        public init(guestPhysical: UInt64, bytes: ArraySlice<UInt8>, memorySize: UInt64) {
            self.guestPhysical = guestPhysical
            self.bytes = bytes
            self.memorySize = memorySize
        }
    }

    /// The pieces to load.
    public var segments: [Segment]
    /// The guest-physical entry point.
    public var entry: UInt64
    /// The CPU mode the guest starts in.
    public var mode: CPUMode
    /// Register values a boot protocol hands the kernel (multiboot: EAX, EBX).
    public var arguments: EntryArguments
    /// Where the mode set-up writes its GDT (outside real mode) ...
    public var gdt: UInt64
    /// ... and which GDT.
    public var selectors: GDT

    /// An image from its parts; the GDT defaults to the standard one at `BootLayout.gdt`.
    public init(
        segments: [Segment], entry: UInt64, mode: CPUMode, arguments: EntryArguments = EntryArguments(),
        gdt: UInt64 = BootLayout.gdt, selectors: GDT = .standard
    ) {
        self.segments = segments
        self.entry = entry
        self.mode = mode
        self.arguments = arguments
        self.gdt = gdt
        self.selectors = selectors
    }

    /// The guest memory the mode set-up owns, which no segment may overlap: none
    /// in real mode; `BootLayout`'s GDT, IDT and page tables (0x500–0x10000)
    /// where the GDT is at its usual place; else the GDT alone (a multiboot
    /// boot, which needs no page tables).
    public var setupArea: Range<UInt64>? {
        guard mode != .real else { return nil }
        return gdt == BootLayout.gdt ? BootLayout.gdt..<BootLayout.systemEnd : gdt..<gdt + selectors.size
    }

    /// A raw binary loaded at `load`.
    public static func flat(_ bytes: [UInt8], mode: CPUMode, load: UInt64, entry: UInt64? = nil) throws -> BootImage {
        guard !bytes.isEmpty else { throw GuestImageError.malformed("the guest image is empty") }
        guard UInt64(bytes.count) <= UInt64.max - load else {
            throw GuestImageError.doesNotFit(
                "\(bytes.count) bytes at \(hex(load)) run past the end of the address space")
        }
        let entry = entry ?? load
        guard entry >= load, entry - load < UInt64(bytes.count) else {
            throw GuestImageError.malformed(
                "entry \(hex(entry)) is not inside the image loaded at \(hex(load))–\(hex(load + UInt64(bytes.count)))")
        }
        if mode == .real {
            guard load + UInt64(bytes.count) <= 0x10_0000 else {
                throw GuestImageError.doesNotFit(
                    "a real-mode image must end below 1 MiB; \(bytes.count) bytes at \(hex(load)) end at \(hex(load + UInt64(bytes.count)))"
                )
            }
        }
        return BootImage(
            segments: [Segment(guestPhysical: load, bytes: bytes[...], memorySize: UInt64(bytes.count))],
            entry: entry, mode: mode)
    }

    /// Copies the segments into `memory`, zeroing their tails, after checking that
    /// each lies in RAM, that none overlap, and that none overlaps what the mode
    /// set-up writes (`setupArea`).
    public func load(into memory: GuestMemory) throws {
        if let s = segments.first(where: { $0.memorySize > UInt64.max - $0.guestPhysical }) {
            throw GuestImageError.doesNotFit(
                "a segment of \(s.memorySize) bytes at \(hex(s.guestPhysical)) runs past the end of the address space")
        }
        let sorted = segments.sorted { $0.guestPhysical < $1.guestPhysical }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.end > b.guestPhysical {
            throw GuestImageError.malformed(
                "segments at \(hex(a.guestPhysical))–\(hex(a.end)) and \(hex(b.guestPhysical))–\(hex(b.end)) overlap")
        }
        for s in segments {
            guard memory.region(containing: s.guestPhysical, count: max(s.memorySize, 1)) != nil else {
                throw GuestImageError.doesNotFit(
                    "the image needs \(hex(s.guestPhysical))–\(hex(s.end)), outside guest RAM (\(memory.totalSize >> 20) MiB)"
                )
            }
            if let area = setupArea, s.guestPhysical < area.upperBound && s.end > area.lowerBound {
                throw GuestImageError.doesNotFit(
                    "the image at \(hex(s.guestPhysical))–\(hex(s.end)) overlaps the boot structures at \(hex(area.lowerBound))–\(hex(area.upperBound)); load it at or above \(hex(area.upperBound))"
                )
            }
        }
        for s in segments {
            try s.bytes.withUnsafeBytes { try memory.write($0, at: s.guestPhysical) }
            try memory.fill(0, count: Int(s.memorySize) - s.bytes.count, at: s.guestPhysical + UInt64(s.bytes.count))
        }
    }
}

/// General registers a boot protocol sets at entry; the rest start at zero.
public struct EntryArguments: Equatable, Sendable {
    /// RAX at entry.
    public var rax: UInt64
    /// RBX at entry.
    public var rbx: UInt64
    /// RSI at entry.
    public var rsi: UInt64

    /// Arguments from their values (zero by default).
    public init(rax: UInt64 = 0, rbx: UInt64 = 0, rsi: UInt64 = 0) {
        self.rax = rax
        self.rbx = rbx
        self.rsi = rsi
    }
}

/// A guest image that cannot be loaded. The case says what is wrong with it;
/// `description` is the one line users see, naming the problem.
public enum GuestImageError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Not a format the library loads, or a variant of one it does not (an ELF
    /// for another machine or dynamically linked, a zImage, a kernel without a
    /// multiboot header, a boot protocol too old).
    case unsupportedFormat(String)
    /// The file ends before what its headers describe.
    case truncated(String)
    /// Headers that contradict themselves: overlapping or wrapping segments, an
    /// entry point outside the image, a bad checksum, impossible sizes.
    case malformed(String)
    /// A well-formed image that does not fit this machine: outside guest RAM,
    /// past 4 GiB, over reserved memory or the boot structures, a command line,
    /// memory map or initrd too large.
    case doesNotFit(String)

    /// The one-line message.
    public var description: String {
        switch self {
        case .unsupportedFormat(let message), .truncated(let message), .malformed(let message),
            .doesNotFit(let message):
            return message
        }
    }
}
