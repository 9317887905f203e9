import CKVM
import Glibc

// The snapshot file (Docs/snapshot-format.md):
//
//   0      header (64 bytes, zero-padded to 4096)
//   4096   metadata: tagged sections, 8-byte aligned
//   M      memory image (M page aligned): the RAM regions end to end, pages
//          not stored left as holes (a sparse file)

enum SnapshotFile {
    static let magic: [UInt8] = Array("SKVMSNAP".utf8)
    static let headerSize = 64
    static let metadataOffset: UInt64 = 4096
    static let page: UInt64 = 4096

    /// Section tags: four ASCII bytes, stored in this order.
    enum Tag {
        static let configuration = tag("CONF")
        static let memory = tag("MEMX")
        static let vcpu = tag("VCPU")
        static let irqchip = tag("IRQC")
        static let pit = tag("PIT2")
        static let clock = tag("CLCK")
        static let device = tag("DEVC")
        static let note = tag("NOTE")
        static func tag(_ s: String) -> UInt32 {
            Array(s.utf8).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        }
        static func name(_ t: UInt32) -> String {
            String(decoding: (0..<4).map { UInt8(truncatingIfNeeded: t >> (8 * $0)) }, as: UTF8.self)
        }
    }
    /// Section flag: a reader that does not know the tag must refuse the file.
    static let required: UInt32 = 1

    struct Header {
        var version: UInt32
        var fileSize: UInt64
        var metadataOffset: UInt64
        var metadataLength: UInt64
        var memoryOffset: UInt64
        var memoryLength: UInt64
        var metadataChecksum: UInt32

        var bytes: [UInt8] {
            var w = SnapshotWriter()
            w.bytes = SnapshotFile.magic
            w.u32(version)
            w.u32(UInt32(SnapshotFile.headerSize))
            w.u64(fileSize)
            w.u64(metadataOffset)
            w.u64(metadataLength)
            w.u64(memoryOffset)
            w.u64(memoryLength)
            w.u32(metadataChecksum)
            w.u32(CRC32C.checksum(w.bytes))
            return w.bytes
        }
    }
}

// MARK: - Writing

extension Snapshot {
    /// Writes the snapshot to `path` atomically: a temporary file beside it,
    /// fsync, rename over `path`, fsync of the directory — a crash leaves the old
    /// file or the new one, never a mix. The memory image is written sparsely:
    /// only stored pages take disk space.
    public func write(to path: String) throws {
        let checksums = try memory.checksums()
        let metadata = encodedMetadata(checksums: checksums)
        let memoryOffset =
            (SnapshotFile.metadataOffset + UInt64(metadata.count) + SnapshotFile.page - 1)
            / SnapshotFile.page * SnapshotFile.page
        let header = SnapshotFile.Header(
            version: Snapshot.formatVersion, fileSize: memoryOffset + memory.size,
            metadataOffset: SnapshotFile.metadataOffset, metadataLength: UInt64(metadata.count),
            memoryOffset: memoryOffset, memoryLength: memory.size,
            metadataChecksum: CRC32C.checksum(metadata))
        let view = try memory.view()
        try Files.writeAtomically(to: path) { fd in
            try header.bytes.withUnsafeBytes { try writeAll(fd, $0.baseAddress!, count: $0.count, at: 0) }
            try metadata.withUnsafeBytes {
                try writeAll(fd, $0.baseAddress!, count: $0.count, at: SnapshotFile.metadataOffset)
            }
            guard ftruncate(fd, off_t(header.fileSize)) == 0 else {
                throw KVMError("ftruncate snapshot to \(header.fileSize) bytes", errno: .current)
            }
            let page = Int(GuestMemory.pageSize)
            for e in memory.extents {
                let offset = Int(memory.regions[e.region].imageOffset) + Int(e.firstPage) * page
                try writeAll(fd, view + offset, count: Int(e.pageCount) * page, at: memoryOffset + UInt64(offset))
            }
        }
    }

    /// The metadata sections.
    func encodedMetadata(checksums: [UInt32]) -> [UInt8] {
        var out = SnapshotWriter()
        func section(_ tag: UInt32, required: Bool = true, _ body: (inout SnapshotWriter) -> Void) {
            var w = SnapshotWriter()
            body(&w)
            out.u32(tag)
            out.u32(required ? SnapshotFile.required : 0)
            out.u64(UInt64(w.bytes.count))
            out.bytes += w.bytes
            out.pad(to: 8)
        }
        section(SnapshotFile.Tag.configuration) { w in
            w.u64(configuration.memorySize)
            w.u32(UInt32(configuration.vcpuCount))
            w.bool(configuration.irqchip)
            w.string(configuration.cpuVendor)
            w.u64(GuestMemory.pageSize)
            w.u64(UInt64(memory.regions.count))
            for r in memory.regions {
                w.u64(r.guestPhysical)
                w.u64(r.size)
                w.u64(r.imageOffset)
            }
        }
        section(SnapshotFile.Tag.memory) { w in
            w.u64(UInt64(memory.extents.count))
            for (e, crc) in zip(memory.extents, checksums) {
                w.u32(UInt32(e.region))
                w.u32(crc)
                w.u64(e.firstPage)
                w.u64(e.pageCount)
            }
        }
        for (i, state) in vcpus.enumerated() {
            section(SnapshotFile.Tag.vcpu) { w in
                w.u32(UInt32(i))
                state.encode(into: &w)
            }
        }
        if let irqchip {
            section(SnapshotFile.Tag.irqchip) { w in
                w.blob(irqchip.picMaster)
                w.blob(irqchip.picSlave)
                w.blob(irqchip.ioapic)
            }
        }
        if let pit { section(SnapshotFile.Tag.pit) { $0.blob(pit.bytes) } }
        if let clock {
            section(SnapshotFile.Tag.clock) { w in
                w.u64(clock.clock)
                w.u32(clock.flags)
            }
        }
        for device in devices {
            section(SnapshotFile.Tag.device) { w in
                w.string(device.kind)
                w.u64(UInt64(device.ports.count))
                for range in device.ports {
                    w.u16(range.lowerBound)
                    w.u16(range.upperBound)
                }
                w.blob(device.bytes)
            }
        }
        for key in notes.keys.sorted() {
            section(SnapshotFile.Tag.note, required: false) { w in
                w.string(key)
                w.blob(notes[key]!)
            }
        }
        return out.bytes
    }
}

// MARK: - Reading

extension Snapshot {
    /// Reads the snapshot file at `path`, refusing it whole — with a
    /// `SnapshotError` naming the path and the first problem — when it is not a
    /// snapshot, is truncated, fails a checksum, has a version or a required
    /// section this library does not know, or describes an impossible machine.
    /// The file stays open: restores map its memory section copy-on-write.
    public init(contentsOf path: String, verify: Verification = .full) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, operation: "open", errno: .current) }
        do {
            self = try Snapshot.read(fd: fd, verify: verify)
        } catch let error as SnapshotError {
            close(fd)
            throw error.prefixed(path)
        } catch let error as KVMError {
            close(fd)
            throw FileError(path: path, operation: "read", errno: error.errno)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Reads from `fd`, which the snapshot owns from then on.
    private static func read(fd: Int32, verify: Verification) throws -> Snapshot {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw KVMError("fstat", errno: .current) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw SnapshotError(.notSnapshot, "not a regular file")
        }
        let fileSize = UInt64(info.st_size)
        var head = [UInt8](repeating: 0, count: Int(SnapshotFile.metadataOffset))
        let got = try head.withUnsafeMutableBytes { try readAll(fd, $0.baseAddress!, count: $0.count, at: 0) }
        guard got >= SnapshotFile.magic.count, Array(head[0..<8]) == SnapshotFile.magic else {
            throw SnapshotError(.notSnapshot, "not a swift-kvm snapshot (no \"SKVMSNAP\" magic at its start)")
        }
        guard got >= SnapshotFile.headerSize else {
            throw SnapshotError(
                .truncated, "truncated: \(fileSize) bytes, shorter than the \(SnapshotFile.headerSize)-byte header")
        }
        var r = SnapshotReader(Array(head[0..<SnapshotFile.headerSize]), what: "header")
        _ = try r.take(8)
        let version = try r.u32()
        let headerSize = try r.u32()
        let header = SnapshotFile.Header(
            version: version, fileSize: try r.u64(), metadataOffset: try r.u64(), metadataLength: try r.u64(),
            memoryOffset: try r.u64(), memoryLength: try r.u64(), metadataChecksum: try r.u32())
        let headerChecksum = try r.u32()
        guard CRC32C.checksum(Array(head[0..<60])) == headerChecksum else {
            throw SnapshotError(.corrupt, "corrupt: the header fails its checksum")
        }
        guard version == Snapshot.formatVersion else {
            throw SnapshotError(
                .unsupportedVersion,
                "snapshot format version \(version); this library reads version \(Snapshot.formatVersion)")
        }
        guard headerSize == UInt32(SnapshotFile.headerSize), header.metadataOffset == SnapshotFile.metadataOffset,
            header.memoryOffset % SnapshotFile.page == 0,
            header.memoryOffset >= header.metadataOffset + header.metadataLength,
            header.memoryOffset - header.metadataOffset - header.metadataLength < SnapshotFile.page,
            header.memoryLength <= UInt64.max - header.memoryOffset,
            header.fileSize == header.memoryOffset + header.memoryLength
        else {
            throw SnapshotError(.corrupt, "corrupt: the header's offsets and lengths do not fit together")
        }
        guard fileSize >= header.fileSize else {
            throw SnapshotError(.truncated, "truncated: \(fileSize) bytes, the header says \(header.fileSize)")
        }
        guard fileSize == header.fileSize else {
            throw SnapshotError(.corrupt, "corrupt: \(fileSize - header.fileSize) bytes after the end the header gives")
        }
        guard head[SnapshotFile.headerSize...].allSatisfy({ $0 == 0 }) else {
            throw SnapshotError(.corrupt, "corrupt: non-zero bytes after the header")
        }
        // Metadata and its padding up to the memory image.
        let metaEnd = Int(header.memoryOffset - header.metadataOffset)
        var meta = [UInt8](repeating: 0, count: metaEnd)
        guard
            try meta.withUnsafeMutableBytes({
                try readAll(fd, $0.baseAddress!, count: metaEnd, at: header.metadataOffset)
            }) == metaEnd
        else {
            throw SnapshotError(.truncated, "truncated inside its metadata")
        }
        let metadata = Array(meta[0..<Int(header.metadataLength)])
        guard CRC32C.checksum(metadata) == header.metadataChecksum else {
            throw SnapshotError(.corrupt, "corrupt: the metadata fails its checksum")
        }
        guard meta[Int(header.metadataLength)...].allSatisfy({ $0 == 0 }) else {
            throw SnapshotError(.corrupt, "corrupt: non-zero bytes between the metadata and the memory image")
        }
        let parsed = try Metadata.parse(metadata)
        let image = try parsed.memoryImage(fd: fd, offset: header.memoryOffset, length: header.memoryLength)
        let snapshot = Snapshot(
            configuration: parsed.configuration, vcpus: parsed.vcpus, irqchip: parsed.irqchip,
            pit: parsed.pit, clock: parsed.clock, devices: parsed.devices,
            notes: parsed.notes, memory: image)
        if verify == .full { try snapshot.verifyMemory(checksums: parsed.checksums) }
        return snapshot
    }

    /// Checks every stored extent against its checksum, and that every other
    /// byte of the memory section is zero (the file's data ranges outside the
    /// extents: holes need no reading).
    private func verifyMemory(checksums: [UInt32]) throws {
        let actual = try memory.checksums()
        let page = GuestMemory.pageSize
        for (i, e) in memory.extents.enumerated() where actual[i] != checksums[i] {
            let start = memory.regions[e.region].guestPhysical + e.firstPage * page
            throw SnapshotError(
                .corrupt, "corrupt: guest memory \(hex(start))–\(hex(start + e.pageCount * page)) fails its checksum")
        }
        // Byte ranges of the image that are stored, in order.
        let stored = memory.extents.map { e -> Range<UInt64> in
            let start = memory.regions[e.region].imageOffset + e.firstPage * page
            return start..<start + e.pageCount * page
        }.sorted { $0.lowerBound < $1.lowerBound }
        let view = try memory.view()
        var position: UInt64 = 0
        var next = 0
        while position < memory.size {
            // The next range of the file that holds data; a file system that cannot
            // say (EINVAL) is all data from here.
            let data = lseek(memory.fd, off_t(memory.fileOffset + position), seekData)
            if data < 0 && errno == ENXIO { break }
            let dataStart = data < 0 ? position : UInt64(data) - memory.fileOffset
            let hole = data < 0 ? -1 : lseek(memory.fd, off_t(data), seekHole)
            let dataEnd = hole < 0 ? memory.size : min(UInt64(hole) - memory.fileOffset, memory.size)
            // Zero check of [dataStart, dataEnd) minus the stored ranges.
            var cursor = dataStart
            while cursor < dataEnd {
                while next < stored.count && stored[next].upperBound <= cursor { next += 1 }
                let gapEnd = next < stored.count ? min(max(stored[next].lowerBound, cursor), dataEnd) : dataEnd
                if cursor < gapEnd {
                    let p = view + Int(cursor)
                    let n = Int(gapEnd - cursor)
                    if !UnsafeRawBufferPointer(start: p, count: n).allSatisfy({ $0 == 0 }) {
                        throw SnapshotError(
                            .corrupt,
                            "corrupt: non-zero bytes in guest memory the snapshot does not store (image offset \(hex(cursor)))"
                        )
                    }
                }
                cursor = next < stored.count ? max(gapEnd, min(stored[next].upperBound, dataEnd)) : dataEnd
            }
            position = dataEnd
        }
    }
}

/// lseek's SEEK_DATA and SEEK_HOLE (Linux values; glibc defines them only with _GNU_SOURCE).
private let seekData: Int32 = 3
private let seekHole: Int32 = 4

/// The parsed metadata sections.
struct Metadata {
    var configuration = Snapshot.Configuration(memorySize: 0, vcpuCount: 0, irqchip: false, cpuVendor: "")
    var regions: [MemoryImage.Region] = []
    var extents: [MemoryImage.Extent] = []
    var checksums: [UInt32] = []
    var vcpus: [VCPUState] = []
    var irqchip: Snapshot.IRQChipState?
    var pit: Snapshot.PITState?
    var clock: Snapshot.ClockState?
    var devices: [Snapshot.DeviceState] = []
    var notes: [String: [UInt8]] = [:]

    static func parse(_ bytes: [UInt8]) throws -> Metadata {
        var m = Metadata()
        var r = SnapshotReader(bytes, what: "metadata")
        var seen: Set<UInt32> = []
        while !r.isAtEnd {
            let tag = try r.u32()
            let flags = try r.u32()
            let length = try r.u64()
            guard length <= UInt64(r.remaining) else {
                throw SnapshotError(
                    .corrupt, "corrupt: section \(SnapshotFile.Tag.name(tag)) of \(length) bytes runs past the metadata"
                )
            }
            var s = SnapshotReader(Array(try r.take(Int(length))), what: "section \(SnapshotFile.Tag.name(tag))")
            _ = try r.take((8 - Int(length) % 8) % 8)
            seen.insert(tag)
            switch tag {
            case SnapshotFile.Tag.configuration: try m.parseConfiguration(&s)
            case SnapshotFile.Tag.memory:
                for _ in 0..<(try s.count(unit: 24)) {
                    let region = Int(try s.u32())
                    m.checksums.append(try s.u32())
                    m.extents.append(MemoryImage.Extent(region: region, firstPage: try s.u64(), pageCount: try s.u64()))
                }
            case SnapshotFile.Tag.vcpu:
                let index = try s.u32()
                guard index == UInt32(m.vcpus.count) else {
                    throw SnapshotError(
                        .corrupt,
                        "corrupt: vCPU sections out of order (vCPU \(index) where \(m.vcpus.count) was expected)")
                }
                m.vcpus.append(try VCPUState(decoding: &s))
            case SnapshotFile.Tag.irqchip:
                m.irqchip = Snapshot.IRQChipState(picMaster: try s.blob(), picSlave: try s.blob(), ioapic: try s.blob())
            case SnapshotFile.Tag.pit: m.pit = Snapshot.PITState(bytes: try s.blob())
            case SnapshotFile.Tag.clock: m.clock = Snapshot.ClockState(clock: try s.u64(), flags: try s.u32())
            case SnapshotFile.Tag.device:
                let kind = try s.string()
                var ports: [ClosedRange<UInt16>] = []
                for _ in 0..<(try s.count(unit: 4)) {
                    let first = try s.u16()
                    let last = try s.u16()
                    guard first <= last else {
                        throw SnapshotError(.corrupt, "corrupt: device \(kind) has ports \(hex(first))–\(hex(last))")
                    }
                    ports.append(first...last)
                }
                m.devices.append(Snapshot.DeviceState(kind: kind, ports: ports, bytes: try s.blob()))
            case SnapshotFile.Tag.note:
                m.notes[try s.string()] = try s.blob()
            default:
                if flags & SnapshotFile.required != 0 {
                    throw SnapshotError(
                        .unsupportedVersion,
                        "has a required section \(SnapshotFile.Tag.name(tag)) this library does not know (written by a newer version)"
                    )
                }
                continue
            }
            try s.expectEnd()
        }
        for tag in [SnapshotFile.Tag.configuration, SnapshotFile.Tag.memory] where !seen.contains(tag) {
            throw SnapshotError(.corrupt, "corrupt: no \(SnapshotFile.Tag.name(tag)) section")
        }
        try m.check()
        return m
    }

    private mutating func parseConfiguration(_ s: inout SnapshotReader) throws {
        configuration.memorySize = try s.u64()
        configuration.vcpuCount = Int(try s.u32())
        configuration.irqchip = try s.bool()
        configuration.cpuVendor = try s.string()
        let pageSize = try s.u64()
        guard pageSize == GuestMemory.pageSize else {
            throw SnapshotError(.corrupt, "corrupt: page size \(pageSize), not \(GuestMemory.pageSize)")
        }
        for _ in 0..<(try s.count(unit: 24)) {
            regions.append(MemoryImage.Region(guestPhysical: try s.u64(), size: try s.u64(), imageOffset: try s.u64()))
        }
    }

    /// The machine the sections describe is one this library builds.
    private func check() throws {
        let c = configuration
        do {
            try Machine.checkMemorySize(c.memorySize)
        } catch {
            throw SnapshotError(.corrupt, "corrupt: memory size: \(error)")
        }
        guard c.vcpuCount >= 1, vcpus.count == c.vcpuCount else {
            throw SnapshotError(.corrupt, "corrupt: \(c.vcpuCount) vCPUs configured, \(vcpus.count) vCPU sections")
        }
        guard (irqchip != nil) == c.irqchip, (pit != nil) == c.irqchip else {
            throw SnapshotError(
                .corrupt,
                "corrupt: irqchip \(c.irqchip ? "on" : "off") but IRQC/PIT2 sections \(irqchip == nil ? "absent" : "present")"
            )
        }
        var offset: UInt64 = 0
        let expected = PCLayout.ram(size: c.memorySize).map { part -> MemoryImage.Region in
            defer { offset += part.size }
            return MemoryImage.Region(guestPhysical: part.guestPhysical, size: part.size, imageOffset: offset)
        }
        guard regions == expected else {
            throw SnapshotError(.corrupt, "corrupt: the RAM regions are not the layout of \(c.memorySize >> 20) MiB")
        }
        var previous: (region: Int, end: UInt64)?
        for e in extents {
            guard e.region < regions.count, e.pageCount > 0, e.firstPage <= regions[e.region].pages,
                e.pageCount <= regions[e.region].pages - e.firstPage
            else {
                throw SnapshotError(.corrupt, "corrupt: a stored page run lies outside guest memory")
            }
            if let p = previous, e.region < p.region || (e.region == p.region && e.firstPage < p.end) {
                throw SnapshotError(.corrupt, "corrupt: stored page runs overlap or are out of order")
            }
            previous = (e.region, e.firstPage + e.pageCount)
        }
        if let chip = irqchip {
            for bytes in [chip.picMaster, chip.picSlave, chip.ioapic] where bytes.count != 512 {
                throw SnapshotError(.corrupt, "corrupt: an irqchip state of \(bytes.count) bytes, not 512")
            }
        }
        if let pit, pit.bytes.count != MemoryLayout<kvm_pit_state2>.size {
            throw SnapshotError(
                .corrupt, "corrupt: PIT state of \(pit.bytes.count) bytes, not \(MemoryLayout<kvm_pit_state2>.size)")
        }
    }

    func memoryImage(fd: Int32, offset: UInt64, length: UInt64) throws -> MemoryImage {
        let total = regions.reduce(0) { $0 + $1.size }
        guard total == length else {
            throw SnapshotError(.corrupt, "corrupt: the memory image is \(length) bytes, the regions need \(total)")
        }
        return MemoryImage(fd: fd, fileOffset: offset, regions: regions, extents: extents)
    }
}
