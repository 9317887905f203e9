import CKVM
import Glibc

/// Guest memory as a snapshot holds it: an image of every RAM region laid end
/// to end in a file (the snapshot file's memory section, or a memfd), pages
/// that are all zeros left as holes. Restores map it copy-on-write; resets copy
/// pages back from a read-only view of it.
final class MemoryImage {
    /// One RAM region: where the guest sees it and where it starts in the image.
    struct Region: Equatable {
        var guestPhysical: UInt64
        var size: UInt64
        var imageOffset: UInt64
        var pages: UInt64 { size / GuestMemory.pageSize }
    }

    /// A run of stored (non-zero) pages.
    struct Extent: Equatable {
        var region: Int
        var firstPage: UInt64
        var pageCount: UInt64
    }

    let fd: Int32
    /// Where the image starts in `fd` (page aligned).
    let fileOffset: UInt64
    let regions: [Region]
    let extents: [Extent]
    let size: UInt64
    /// The whole image mapped read-only and shared (made on first use).
    private var mappedView: UnsafeRawPointer?

    init(fd: Int32, fileOffset: UInt64, regions: [Region], extents: [Extent]) {
        self.fd = fd
        self.fileOffset = fileOffset
        self.regions = regions
        self.extents = extents
        self.size = regions.reduce(0) { $0 + $1.size }
    }

    deinit {
        if let mappedView { munmap(UnsafeMutableRawPointer(mutating: mappedView), Int(size)) }
        close(fd)
    }

    var storedPages: Int { Int(extents.reduce(0) { $0 + $1.pageCount }) }

    /// Per region, one bit per page: stored (else zero). Made on first use.
    private(set) lazy var storedBitmaps: [[UInt64]] = {
        var maps = regions.map { [UInt64](repeating: 0, count: Int(($0.pages + 63) / 64)) }
        for e in extents {
            for p in Int(e.firstPage)..<Int(e.firstPage + e.pageCount) { maps[e.region][p >> 6] |= 1 << UInt64(p & 63) }
        }
        return maps
    }()

    /// The layout of a machine's RAM regions in an image.
    static func layout(of memory: GuestMemory) -> [Region] {
        var offset: UInt64 = 0
        return memory.regions.map { region in
            defer { offset += region.size }
            return Region(guestPhysical: region.guestPhysical, size: region.size, imageOffset: offset)
        }
    }

    /// The image read-only; faults in only what is read.
    func view() throws -> UnsafeRawPointer {
        if let mappedView { return mappedView }
        guard let p = mmap(nil, Int(size), PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, off_t(fileOffset)),
            p != MAP_FAILED
        else {
            throw KVMError("mmap snapshot memory image (\(size) bytes)", errno: .current)
        }
        mappedView = UnsafeRawPointer(p)
        return mappedView!
    }

    /// The file offset of region `index` (for mapping it).
    func fileOffset(ofRegion index: Int) -> UInt64 { fileOffset + regions[index].imageOffset }

    /// Bytes of guest-physical memory as the image holds them.
    func bytes(at address: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0,
            let r = regions.first(where: {
                address >= $0.guestPhysical && UInt64(count) <= $0.size
                    && address - $0.guestPhysical <= $0.size - UInt64(count)
            })
        else {
            throw ConfigurationError.outsideSnapshotRAM(address: address, count: count)
        }
        let p = try view() + Int(r.imageOffset + (address - r.guestPhysical))
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }

    /// CRC-32C of each extent's bytes.
    func checksums() throws -> [UInt32] {
        let base = try view()
        let page = Int(GuestMemory.pageSize)
        return extents.map { e in
            CRC32C.checksum(
                base + Int(regions[e.region].imageOffset) + Int(e.firstPage) * page,
                count: Int(e.pageCount) * page)
        }
    }

    // MARK: Capture

    /// Copies every non-zero page of `memory` into a new memfd image. Only pages
    /// that may hold data are read: those present or swapped in this process's
    /// page tables (/proc/self/pagemap), and those stored in `backing`, the image
    /// the regions are mapped from (a restored machine's untouched file pages are
    /// in no page table). Without /proc, every page is read.
    static func capture(_ memory: GuestMemory, backing: MemoryImage?) throws -> MemoryImage {
        let layout = layout(of: memory)
        let total = layout.reduce(0) { $0 + $1.size }
        let fd = try anonymousFile("kvm-snapshot-memory")
        guard ftruncate(fd, off_t(total)) == 0 else {
            let err = Errno.current
            close(fd)
            throw KVMError("ftruncate snapshot memory to \(total) bytes", errno: err)
        }
        var extents: [Extent] = []
        do {
            let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
            defer { if pagemap >= 0 { close(pagemap) } }
            let sameLayout = backing?.regions == layout
            for (index, region) in memory.regions.enumerated() {
                let pages = Int(region.size / GuestMemory.pageSize)
                var candidates = try PageSet.present(region.host, pages: pages, pagemap: pagemap)
                if sameLayout, let backing {
                    for e in backing.extents where e.region == index {
                        candidates.insert(Int(e.firstPage)..<Int(e.firstPage + e.pageCount))
                    }
                }
                extents += try copyNonZeroPages(
                    of: region, index: index, candidates: candidates,
                    to: fd, at: layout[index].imageOffset)
            }
        } catch {
            close(fd)
            throw error
        }
        return MemoryImage(fd: fd, fileOffset: 0, regions: layout, extents: extents)
    }

    /// Writes the non-zero pages among `candidates` to `fd` at `base` + their
    /// offset in the region, a run of pages per pwrite; returns the runs.
    private static func copyNonZeroPages(
        of region: MemoryRegion, index: Int, candidates: PageSet,
        to fd: Int32, at base: UInt64
    ) throws -> [Extent] {
        let page = Int(GuestMemory.pageSize)
        var extents: [Extent] = []
        var runStart = -1
        var runEnd = -1
        func flush() throws {
            guard runStart >= 0 else { return }
            try writeAll(
                fd, region.host + runStart * page, count: (runEnd - runStart) * page,
                at: base + UInt64(runStart * page))
            extents.append(Extent(region: index, firstPage: UInt64(runStart), pageCount: UInt64(runEnd - runStart)))
            runStart = -1
        }
        for p in candidates.pages {
            if isZeroPage(region.host + p * page) { continue }
            if runStart >= 0 && p == runEnd {
                runEnd += 1
            } else {
                try flush()
                runStart = p
                runEnd = p + 1
            }
        }
        try flush()
        return extents
    }
}

/// A file in memory with no name: memfd_create (glibc declares it only with
/// _GNU_SOURCE, so it is looked up), else an unlinked temporary file in /dev/shm
/// or /tmp.
func anonymousFile(_ name: String) throws -> Int32 {
    typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
    if let symbol = dlsym(nil, "memfd_create") {
        let mfdCloexec: UInt32 = 1
        let fd = unsafeBitCast(symbol, to: MemfdCreate.self)(name, mfdCloexec)
        if fd >= 0 { return fd }
    }
    for directory in ["/dev/shm", "/tmp"] {
        var template = Array("\(directory)/\(name)-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            return fd
        }
    }
    throw KVMError("memfd_create for a snapshot's memory", errno: .current)
}

/// True when the 4 KiB at `p` are all zero.
@inline(__always)
func isZeroPage(_ p: UnsafeRawPointer) -> Bool {
    let words = p.assumingMemoryBound(to: UInt64.self)
    var i = 0
    while i < 512 {
        if words[i] | words[i + 1] | words[i + 2] | words[i + 3] | words[i + 4] | words[i + 5] | words[i + 6]
            | words[i + 7] != 0
        {
            return false
        }
        i += 8
    }
    return true
}

/// pwrite of all `count` bytes, retrying short writes and EINTR.
func writeAll(_ fd: Int32, _ start: UnsafeRawPointer, count: Int, at offset: UInt64) throws {
    var done = 0
    while done < count {
        let n = pwrite(fd, start + done, count - done, off_t(offset) + off_t(done))
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw KVMError("pwrite snapshot memory", errno: n < 0 ? .current : Errno(rawValue: EIO)) }
        done += n
    }
}

/// pread of all `count` bytes; throws when the file ends first.
func readAll(_ fd: Int32, _ start: UnsafeMutableRawPointer, count: Int, at offset: UInt64) throws -> Int {
    var done = 0
    while done < count {
        let n = pread(fd, start + done, count - done, off_t(offset) + off_t(done))
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw KVMError("pread snapshot", errno: .current) }
        if n == 0 { break }
        done += n
    }
    return done
}

/// A set of page numbers of one region, as a bitmap.
struct PageSet {
    private(set) var words: [UInt64]
    let count: Int

    init(count: Int, all: Bool = false) {
        self.count = count
        words = [UInt64](repeating: all ? ~0 : 0, count: (count + 63) / 64)
        if all && count % 64 != 0 { words[words.count - 1] = (1 << UInt64(count % 64)) - 1 }
    }

    mutating func insert(_ page: Int) { words[page >> 6] |= 1 << UInt64(page & 63) }

    mutating func insert(_ range: Range<Int>) {
        for p in range where p < count { insert(p) }
    }

    /// The pages in order.
    var pages: [Int] {
        var out: [Int] = []
        for (i, word) in words.enumerated() where word != 0 {
            var w = word
            while w != 0 {
                let bit = w.trailingZeroBitCount
                out.append(i * 64 + bit)
                w &= w - 1
            }
        }
        return out
    }

    /// Pages of the `pages`-page mapping at `host` that are present or swapped
    /// (/proc/self/pagemap bits 63 and 62); all of them when `pagemap` is -1.
    static func present(_ host: UnsafeMutableRawPointer, pages: Int, pagemap: Int32) throws -> PageSet {
        guard pagemap >= 0 else { return PageSet(count: pages, all: true) }
        var set = PageSet(count: pages)
        let chunk = 65536
        let buffer = UnsafeMutablePointer<UInt64>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        let firstEntry = UInt64(UInt(bitPattern: host)) / GuestMemory.pageSize
        var page = 0
        while page < pages {
            let n = min(chunk, pages - page)
            let got = try readAll(pagemap, buffer, count: n * 8, at: (firstEntry + UInt64(page)) * 8)
            guard got == n * 8 else { return PageSet(count: pages, all: true) }
            for i in 0..<n where buffer[i] & (3 << 62) != 0 { set.insert(page + i) }
            page += n
        }
        return set
    }
}
