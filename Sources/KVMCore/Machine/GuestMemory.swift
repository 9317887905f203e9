import Glibc

/// One slot of guest RAM: a host mapping registered at a guest-physical address.
public struct MemoryRegion: Sendable {
    public let slot: UInt32
    public let guestPhysical: UInt64
    public let size: UInt64
    public let flags: UInt32
    /// The host mapping; valid for the life of the owning `GuestMemory`.
    public nonisolated(unsafe) let host: UnsafeMutableRawPointer

    public var end: UInt64 { guestPhysical + size }
    public func contains(_ address: UInt64, count: UInt64) -> Bool {
        address >= guestPhysical && count <= size && address - guestPhysical <= size - count
    }
}

/// Guest-physical memory: its slots and bounds-checked typed access to them.
/// An access must lie inside one slot; anything else throws, never traps.
public final class GuestMemory {
    public private(set) var regions: [MemoryRegion] = []

    public static let pageSize: UInt64 = 4096

    init() {}

    deinit {
        for region in regions { munmap(region.host, Int(region.size)) }
    }

    /// Total RAM in all slots.
    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// Checks a new slot's size, alignment and overlap, maps it anonymously
    /// (MAP_NORESERVE: untouched guest pages cost nothing) and records it. `register`
    /// tells KVM; when it fails the mapping is undone.
    func addRegion(at guestPhysical: UInt64, size: UInt64, flags: UInt32,
                   register: (MemoryRegion) throws -> Void) throws -> MemoryRegion {
        let page = GuestMemory.pageSize
        guard size > 0 else { throw ConfigurationError("guest memory slot of size 0") }
        guard size % page == 0, guestPhysical % page == 0 else {
            throw ConfigurationError("guest memory slot at \(hex(guestPhysical)) of \(size) bytes is not page aligned")
        }
        guard guestPhysical <= UInt64.max - size else {
            throw ConfigurationError("guest memory slot at \(hex(guestPhysical)) of \(size) bytes wraps around")
        }
        if let other = regions.first(where: { guestPhysical < $0.end && $0.guestPhysical < guestPhysical + size }) {
            throw ConfigurationError("guest memory slot \(hex(guestPhysical))–\(hex(guestPhysical + size)) overlaps slot \(other.slot) at \(hex(other.guestPhysical))–\(hex(other.end))")
        }
        guard let mapping = mmap(nil, Int(size), PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              mapping != MAP_FAILED else {
            throw KVMError("mmap guest memory (\(size) bytes)", errno: .current,
                           hint: "cannot reserve \(size >> 20) MiB of address space for the guest")
        }
        let slot = UInt32((regions.map(\.slot).max() ?? UInt32.max) &+ 1)
        let region = MemoryRegion(slot: slot, guestPhysical: guestPhysical, size: size, flags: flags, host: mapping)
        do {
            try register(region)
        } catch {
            munmap(mapping, Int(size))
            throw error
        }
        regions.append(region)
        return region
    }

    /// The region holding `count` bytes at `address`, if one does.
    @inline(__always)
    public func region(containing address: UInt64, count: UInt64 = 1) -> MemoryRegion? {
        for region in regions where region.contains(address, count: count) { return region }
        return nil
    }

    /// Host pointer for `count` bytes at `address`, or nil when they are not all in one slot.
    @inline(__always)
    public func pointer(_ address: UInt64, count: Int) -> UnsafeMutableRawPointer? {
        guard count >= 0, let region = region(containing: address, count: UInt64(count)) else { return nil }
        return region.host + Int(address - region.guestPhysical)
    }

    private func checkedPointer(_ address: UInt64, count: Int) throws -> UnsafeMutableRawPointer {
        guard let p = pointer(address, count: count) else {
            throw ConfigurationError("guest-physical \(hex(address))+\(count) is outside guest RAM")
        }
        return p
    }

    public func read<T: FixedWidthInteger>(_ type: T.Type = T.self, at address: UInt64) throws -> T {
        T(littleEndian: try checkedPointer(address, count: MemoryLayout<T>.size).loadUnaligned(as: T.self))
    }

    public func write<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws {
        try checkedPointer(address, count: MemoryLayout<T>.size).storeBytes(of: value.littleEndian, as: T.self)
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at address: UInt64) throws {
        guard bytes.count > 0 else { return }
        try checkedPointer(address, count: bytes.count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    public func write(_ bytes: [UInt8], at address: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: address) }
    }

    public func fill(_ byte: UInt8, count: Int, at address: UInt64) throws {
        guard count > 0 else { return }
        try checkedPointer(address, count: count).initializeMemory(as: UInt8.self, repeating: byte, count: count)
    }

    public func bytes(at address: UInt64, count: Int) throws -> [UInt8] {
        let p = try checkedPointer(address, count: count)
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }

    /// A NUL-terminated string of at most `maxLength` bytes (a longer one is cut there).
    public func cString(at address: UInt64, maxLength: Int = 256) throws -> String {
        var bytes: [UInt8] = []
        var a = address
        while bytes.count < maxLength {
            let b: UInt8 = try read(at: a)
            if b == 0 { break }
            bytes.append(b)
            a += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// "0x1f" — the one spelling of hex numbers in messages.
public func hex<T: BinaryInteger>(_ value: T) -> String {
    "0x" + String(value, radix: 16)
}
