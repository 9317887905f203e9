import FuzzSupport
import KVMCore

// ELF loader: `ELFImage.parse` on any bytes, then `BootImage.load` of what it
// accepts into 8 MiB of guest RAM of a KVM VM (made once). Properties: only
// GuestImageError is thrown; an accepted image has segments, its entry inside
// one, each segment's file bytes within its memory size and its end without
// wrap-around, the mode its class says; a load either throws GuestImageError or
// leaves exactly the segment bytes (and zeros after them) in guest memory.

nonisolated(unsafe) let memory = FuzzMemory.shared()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzELF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = FuzzReader(data, size).bytes
    let image: BootImage
    do {
        image = try ELFImage.parse(bytes)
    } catch {
        fuzzExpectedError(error, [GuestImageError.self])
        return 0
    }
    fuzzCheck(ELFImage.isELF(bytes), "accepted a file without the ELF magic")
    fuzzCheck(!image.segments.isEmpty, "accepted an image without segments")
    fuzzCheck(image.mode == (bytes[4] == 2 ? .long : .protected), "mode \(image.mode) for ELF class \(bytes[4])")
    fuzzCheck(
        image.segments.contains { image.entry >= $0.guestPhysical && image.entry < $0.end },
        "entry \(hex(image.entry)) outside every segment")
    for s in image.segments {
        fuzzCheck(s.memorySize > 0, "empty segment kept")
        fuzzCheck(UInt64(s.bytes.count) <= s.memorySize, "segment file bytes exceed its memory size")
        fuzzCheck(s.guestPhysical <= UInt64.max - s.memorySize, "segment wraps around")
    }
    guard let memory else { return 0 }
    do {
        try image.load(into: memory)
    } catch {
        fuzzExpectedError(error, [GuestImageError.self])
        return 0
    }
    for s in image.segments {
        let head = try? memory.bytes(at: s.guestPhysical, count: s.bytes.count)
        fuzzCheck(head.map { $0[...] == s.bytes } ?? false, "segment at \(hex(s.guestPhysical)) not loaded as given")
        let tail = Int(min(s.memorySize - UInt64(s.bytes.count), 4096))
        if tail > 0 {
            let zeros = try? memory.bytes(at: s.guestPhysical + UInt64(s.bytes.count), count: tail)
            fuzzCheck(
                zeros.map { $0.allSatisfy { $0 == 0 } } ?? false, "segment tail at \(hex(s.guestPhysical)) not zeroed")
        }
    }
    return 0
}
