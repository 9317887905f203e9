import CKVM
import Glibc

/// One slot of guest RAM: a host mapping registered at a guest-physical address.
public struct MemoryRegion: Sendable {
    /// The KVM memory slot number.
    public let slot: UInt32
    /// Where the slot starts in guest-physical memory.
    public let guestPhysical: UInt64
    /// The slot's size in bytes.
    public let size: UInt64
    /// KVM_MEM_* flags (dirty logging, read-only).
    public let flags: UInt32
    /// The host mapping; valid for the life of the owning `GuestMemory`.
    // nonisolated(unsafe): guest RAM, which the guest writes anyway; who writes it when is the guest's protocol.
    public nonisolated(unsafe) let host: UnsafeMutableRawPointer

    /// The first guest-physical address past the slot.
    public var end: UInt64 { guestPhysical + size }
    /// Whether `count` bytes at `address` lie inside the slot.
    public func contains(_ address: UInt64, count: UInt64) -> Bool {
        address >= guestPhysical && count <= size && address - guestPhysical <= size - count
    }
}

/// Guest-physical memory: its slots and bounds-checked typed access to them.
/// An access must lie inside one slot; anything else throws, never traps.
// @unchecked: slots are added and removed while no vCPU runs; host writes from devices come under the bus's mutex.
public final class GuestMemory: @unchecked Sendable {
    /// The slots, in the order they were added.
    public private(set) var regions: [MemoryRegion] = []

    /// The page size slots are aligned to.
    public static let pageSize: UInt64 = 4096

    init() {}

    deinit {
        for region in regions { munmap(region.host, Int(region.size)) }
    }

    /// Total RAM in all slots.
    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// Checks a new slot's size, alignment and overlap, maps it (MAP_NORESERVE:
    /// untouched guest pages cost nothing) and records it: anonymous zeroed memory,
    /// or with `file` that file's bytes from `offset`, copy-on-write (MAP_PRIVATE:
    /// the guest's writes never reach the file). `register` tells KVM; when it
    /// fails the mapping is undone.
    func addRegion(
        at guestPhysical: UInt64, size: UInt64, flags: UInt32,
        file: (fd: Int32, offset: UInt64)? = nil,
        register: (MemoryRegion) throws -> Void
    ) throws -> MemoryRegion {
        let page = GuestMemory.pageSize
        guard size > 0 else { throw ConfigurationError.memoryLayout("guest memory slot of size 0") }
        guard size % page == 0, guestPhysical % page == 0 else {
            throw ConfigurationError.memoryLayout(
                "guest memory slot at \(hex(guestPhysical)) of \(size) bytes is not page aligned")
        }
        guard guestPhysical <= UInt64.max - size else {
            throw ConfigurationError.memoryLayout(
                "guest memory slot at \(hex(guestPhysical)) of \(size) bytes wraps around")
        }
        if let other = regions.first(where: { guestPhysical < $0.end && $0.guestPhysical < guestPhysical + size }) {
            throw ConfigurationError.memoryLayout(
                "guest memory slot \(hex(guestPhysical))–\(hex(guestPhysical + size)) overlaps slot \(other.slot) at \(hex(other.guestPhysical))–\(hex(other.end))"
            )
        }
        if let file, file.offset % page != 0 {
            throw ConfigurationError.memoryLayout(
                "guest memory slot mapped from file offset \(file.offset): not page aligned")
        }
        guard
            let mapping = mmap(
                nil, Int(size), PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_NORESERVE | (file == nil ? MAP_ANONYMOUS : 0),
                file?.fd ?? -1, off_t(file?.offset ?? 0)),
            mapping != MAP_FAILED
        else {
            throw KVMError(
                "mmap guest memory (\(size) bytes)", errno: .current,
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
        let logged = flags & UInt32(KVM_MEM_LOG_DIRTY_PAGES) != 0
        hostDirty.append(logged ? DirtyBitmap(pages: Int(size / page)) : nil)
        tracksHostWrites = tracksHostWrites || logged
        return region
    }

    /// Maps `size` bytes of `fd` from `offset` copy-on-write over region `index`,
    /// in place (MAP_FIXED: the host address, and so KVM's slot, stays the same;
    /// KVM drops its old translations through its MMU notifier). The region's
    /// contents become the file's.
    func remap(region index: Int, fd: Int32, offset: UInt64) throws {
        let region = regions[index]
        guard
            let mapping = mmap(
                region.host, Int(region.size), PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd, off_t(offset)),
            mapping == region.host
        else {
            throw KVMError("mmap guest memory over slot \(region.slot)", errno: .current)
        }
    }

    // MARK: Host writes, for dirty-page tracking

    /// Pages the host wrote through this object (`write`, `fill`, `markDirty`) since
    /// they were last taken, for each region made with dirty-page logging (nil for
    /// the others): KVM's dirty log sees only the guest's writes.
    private var hostDirty: [DirtyBitmap?] = []

    /// Records that the host changed `count` bytes at `address` behind KVM's back,
    /// e.g. through `pointer(_:count:)` or `region.host`: a machine reset to a
    /// snapshot copies them back. `write` and `fill` record their own writes.
    public func markDirty(_ address: UInt64, count: Int) {
        guard count > 0 else { return }
        for (i, region) in regions.enumerated() {
            guard let bitmap = hostDirty[i] else { continue }
            let start = max(address, region.guestPhysical)
            let end = min(address &+ UInt64(count), region.end)
            guard start < end else { continue }
            bitmap.set(
                pages: Int(
                    (start - region.guestPhysical) / GuestMemory.pageSize)...Int(
                        (end - 1 - region.guestPhysical) / GuestMemory.pageSize))
        }
    }

    /// Region `index`'s host-dirty bitmap (one bit per page, as KVM_GET_DIRTY_LOG's),
    /// cleared; nil when the host wrote nothing there (or the region has no logging).
    func takeHostDirtyPages(region index: Int) -> [UInt64]? {
        hostDirty[index]?.take()
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
            throw ConfigurationError.outsideGuestRAM(address: address, count: count)
        }
        return p
    }

    /// `checkedPointer` for a write: the pages are marked dirty where that is tracked.
    private func writablePointer(_ address: UInt64, count: Int) throws -> UnsafeMutableRawPointer {
        let p = try checkedPointer(address, count: count)
        if tracksHostWrites { markDirty(address, count: count) }
        return p
    }

    /// Some region has dirty-page logging.
    private var tracksHostWrites = false

    /// The little-endian integer at `address`; throws `ConfigurationError.outsideGuestRAM` outside one slot.
    public func read<T: FixedWidthInteger>(_ type: T.Type = T.self, at address: UInt64) throws -> T {
        T(littleEndian: try checkedPointer(address, count: MemoryLayout<T>.size).loadUnaligned(as: T.self))
    }

    /// Writes `value` little-endian at `address`; throws `ConfigurationError.outsideGuestRAM` outside one slot.
    public func write<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws {
        try writablePointer(address, count: MemoryLayout<T>.size).storeBytes(of: value.littleEndian, as: T.self)
    }

    /// Copies `bytes` to `address`; throws `ConfigurationError.outsideGuestRAM` outside one slot.
    public func write(_ bytes: UnsafeRawBufferPointer, at address: UInt64) throws {
        guard bytes.count > 0 else { return }
        try writablePointer(address, count: bytes.count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    /// Copies `bytes` to `address`; throws `ConfigurationError.outsideGuestRAM` outside one slot.
    public func write(_ bytes: [UInt8], at address: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: address) }
    }

    /// Sets `count` bytes at `address` to `byte`; throws `ConfigurationError.outsideGuestRAM` outside one slot.
    public func fill(_ byte: UInt8, count: Int, at address: UInt64) throws {
        guard count > 0 else { return }
        try writablePointer(address, count: count).initializeMemory(as: UInt8.self, repeating: byte, count: count)
    }

    /// A copy of `count` bytes at `address`; throws `ConfigurationError.outsideGuestRAM` outside one slot.
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
package func hex<T: BinaryInteger>(_ value: T) -> String {
    "0x" + String(value, radix: 16)
}

/// One bit per page, set by host writes and taken by a reset.
final class DirtyBitmap {
    private var words: [UInt64]
    private var empty = true

    init(pages: Int) { words = [UInt64](repeating: 0, count: (pages + 63) / 64) }

    func set(pages: ClosedRange<Int>) {
        empty = false
        for page in pages { words[page >> 6] |= 1 << UInt64(page & 63) }
    }

    /// The bits, cleared; nil when none was set.
    func take() -> [UInt64]? {
        guard !empty else { return nil }
        let taken = words
        for i in words.indices { words[i] = 0 }
        empty = true
        return taken
    }
}
