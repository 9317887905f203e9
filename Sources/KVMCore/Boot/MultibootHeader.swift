// Finding the multiboot header: where and how QEMU looks for it.

extension Multiboot {
    /// True when `bytes` has a multiboot header QEMU would find (magic and checksum).
    public static func isMultiboot(_ bytes: [UInt8]) -> Bool {
        (try? findHeader(bytes)) != nil
    }

    /// The header QEMU would use, nil when there is no magic at all; throws when
    /// the only headers have a bad checksum, or the one found is cut short.
    public static func findHeader(_ bytes: [UInt8]) throws -> MultibootHeader? {
        let r = ByteReader(bytes, what: "multiboot kernel")
        var badChecksum: (offset: Int, sum: UInt32)?
        var offset = 0
        while offset < headerSearchLimit && offset + 12 <= bytes.count {
            defer { offset += 4 }
            guard try r.read(UInt32.self, at: offset) == headerMagic else { continue }
            let flags: UInt32 = try r.read(at: offset + 4)
            let checksum: UInt32 = try r.read(at: offset + 8)
            let sum = headerMagic &+ flags &+ checksum
            guard sum == 0 else {
                if badChecksum == nil { badChecksum = (offset, sum) }
                continue
            }
            var header = MultibootHeader(offset: offset, flags: flags)
            if header.hasAddressFields {
                guard offset + 32 <= bytes.count else {
                    throw GuestImageError.truncated(
                        "the multiboot header at offset \(offset) has flag 16 (address fields) but the file ends at \(bytes.count), before them"
                    )
                }
                header.addresses = MultibootHeader.Addresses(
                    header: try r.read(at: offset + 12), load: try r.read(at: offset + 16),
                    loadEnd: try r.read(at: offset + 20), bssEnd: try r.read(at: offset + 24),
                    entry: try r.read(at: offset + 28))
            }
            return header
        }
        if let bad = badChecksum {
            throw GuestImageError.malformed(
                "the multiboot header at offset \(bad.offset) has a bad checksum (magic + flags + checksum = \(hex(bad.sum)), must be 0)"
            )
        }
        return nil
    }
}

/// A multiboot header as found in a kernel file.
public struct MultibootHeader: Equatable, Sendable {
    /// Offset of the magic in the file.
    public var offset: Int
    /// The header's flags word.
    public var flags: UInt32
    /// The address fields, when flag 16 is set.
    public var addresses: Addresses?

    /// The a.out-kludge address fields (flag 16).
    public struct Addresses: Equatable, Sendable {
        /// header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr.
        public var header, load, loadEnd, bssEnd, entry: UInt32
    }

    /// A header from its fields.
    public init(offset: Int, flags: UInt32, addresses: Addresses? = nil) {
        self.offset = offset
        self.flags = flags
        self.addresses = addresses
    }

    /// Flag 0: modules must be page aligned.
    public var pageAlignsModules: Bool { flags & 0x1 != 0 }
    /// Flag 1: the kernel wants mem_lower/mem_upper and the memory map.
    public var wantsMemoryInformation: Bool { flags & 0x2 != 0 }
    /// Flag 2: the kernel wants a video mode (not given).
    public var wantsVideoMode: Bool { flags & 0x4 != 0 }
    /// Flag 16: the address fields are valid.
    public var hasAddressFields: Bool { flags & 0x1_0000 != 0 }
}
