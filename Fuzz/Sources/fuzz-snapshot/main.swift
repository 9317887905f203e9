import FuzzSupport
import Glibc
import KVMCore

// The snapshot reader (`kvmrun restore FILE` reads any file), and a restore of
// what it accepts. An input is a snapshot's 64-byte header followed by its
// metadata; the target lays them out as the format does (header padded to
// 4096 bytes, metadata at 4096, the memory image after it as a hole of at most
// 16 MiB) in an unlinked file on /dev/shm, and — unless the input's length is a multiple of 7 — repairs what a
// mutation cannot: the offsets and lengths, the file size, the metadata
// checksum and the header checksum. So the fuzzer reaches the section parser
// and the machine description, not only the checksum checks. Most inputs are
// read with `verify: .metadata` (the hole that stands for the memory image
// would fail the stored pages' checksums).
//
// Properties: `Snapshot(contentsOf:)` throws SnapshotError or FileError, or
// gives a snapshot whose accessors work; restoring it throws SnapshotError,
// KVMError or ConfigurationError, or gives a machine that runs for a moment.
// No descriptor is left open either way.

/// The file each input is written to: on tmpfs, unlinked at once (nothing is
/// left behind), read back through /proc/self/fd.
let fd: Int32 = {
    let name = "/dev/shm/fuzz-snapshot-\(getpid())"
    let fd = open(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    unlink(name)
    return fd
}()
let path = "/proc/self/fd/\(fd)"
nonisolated(unsafe) let kvm: KVM? = try? KVM()
nonisolated(unsafe) var baselineDescriptors = -1
/// The baseline is taken again after the first restore attempt, in case
/// something is opened once per process on the first one.
nonisolated(unsafe) var restoredOnce = false
/// FUZZ_VERBOSE=1: say how far each input got (to check that seeds reach a restore).
let verbose = getenv("FUZZ_VERBOSE") != nil

/// CRC-32C (Castagnoli), as the format uses.
func crc32c(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    }
    return ~c
}

func put<T: FixedWidthInteger>(_ value: T, _ bytes: inout [UInt8], at offset: Int) {
    for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
}

func get<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
    var v: T = 0
    for i in (0..<MemoryLayout<T>.size).reversed() { v = v << 8 | T(bytes[offset + i]) }
    return v
}

/// Open descriptors that are not pipes: libFuzzer's symbolizer (NEW_FUNC lines)
/// keeps pipes to llvm-symbolizer open; KVMCore opens no pipes.
func openDescriptors() -> Int { descriptorTargets().filter { !$0.contains("pipe:") }.count }

/// What each open descriptor is (readlink of /proc/self/fd/N).
func descriptorTargets() -> [String] {
    var out: [String] = []
    guard let dir = opendir("/proc/self/fd") else { return [] }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name != ".", name != ".." else { continue }
        var buffer = [CChar](repeating: 0, count: 512)
        let n = readlink("/proc/self/fd/\(name)", &buffer, buffer.count - 1)
        out.append("\(name) → " + (n > 0 ? String(cString: buffer) : "?"))
    }
    closedir(dir)
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSnapshot(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzCheck(fd >= 0, "cannot create \(path)")
    let input = FuzzReader(data, size).bytes
    var header = [UInt8](repeating: 0, count: 64)
    header.replaceSubrange(0..<min(64, input.count), with: input.prefix(64))
    let metadata = input.count > 64 ? Array(input[64...]) : []
    let memoryOffset = (4096 + UInt64(metadata.count) + 4095) & ~4095
    var memoryLength: UInt64 = get(header, at: 48)
    if input.count % 7 != 0 {
        memoryLength = min(memoryLength & ~4095, 16 << 20)
        put(UInt64(memoryOffset + memoryLength), &header, at: 16) // file size
        put(UInt64(4096), &header, at: 24) // metadata offset
        put(UInt64(metadata.count), &header, at: 32) // metadata length
        put(memoryOffset, &header, at: 40)
        put(memoryLength, &header, at: 48)
        put(crc32c(metadata[...]), &header, at: 56)
        put(crc32c(header[0..<60]), &header, at: 60)
    }
    let fileSize = min(memoryOffset + min(memoryLength, 16 << 20), 64 << 20)
    guard ftruncate(fd, 0) == 0, ftruncate(fd, off_t(fileSize)) == 0,
        pwrite(fd, header, header.count, 0) == header.count,
        metadata.isEmpty || pwrite(fd, metadata, metadata.count, 4096) == metadata.count
    else {
        fuzzCheck(false, "cannot write \(path)")
        return 0
    }
    // `kvm` is a lazily made global: open /dev/kvm before counting descriptors.
    if baselineDescriptors < 0 {
        _ = kvm
        baselineDescriptors = openDescriptors()
    }
    var restored = false
    do {
        let snapshot: Snapshot
        do {
            // The memory image is a hole, so stored pages fail their checksums:
            // most inputs are read trusting the pages (what a restore of a file
            // this process wrote does), one in five fully.
            snapshot = try Snapshot(contentsOf: path, verify: input.count % 5 == 0 ? .full : .metadata)
        } catch {
            if verbose { fuzzLog("refused: \(error)") }
            fuzzExpectedError(error, [SnapshotError.self, FileError.self])
            return 0
        }
        let config = snapshot.configuration
        fuzzCheck(
            config.vcpuCount == snapshot.vcpus.count,
            "\(config.vcpuCount) vCPUs configured, \(snapshot.vcpus.count) saved")
        for address: UInt64 in [0, 0x1000, 0x10_0000, config.memorySize &- 8] {
            _ = try? snapshot.memoryBytes(at: address, count: 8)
        }
        for device in snapshot.devices { _ = snapshot.device(device.kind) }
        guard let kvm else { return 0 }
        restored = true
        do {
            let machine = try Machine(restoring: snapshot, serial: .buffer, kvm: kvm)
            let stop = try? machine.run(timeout: .milliseconds(5))
            if verbose {
                fuzzLog(
                    "restored \(config.memorySize >> 20) MiB, \(config.vcpuCount) vCPU(s); ran: \(stop.map { "\($0)" } ?? "error")"
                )
            }
        } catch {
            if verbose { fuzzLog("restore refused: \(error)") }
            fuzzExpectedError(
                error, [SnapshotError.self, KVMError.self, ConfigurationError.self, GuestImageError.self])
        }
    }
    let now = openDescriptors()
    if restored && !restoredOnce {
        restoredOnce = true
        baselineDescriptors = now
    }
    fuzzCheck(
        now == baselineDescriptors, "descriptors: \(baselineDescriptors) before, \(now) after: \(descriptorTargets())")
    return 0
}
