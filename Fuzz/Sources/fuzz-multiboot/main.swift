import FuzzSupport
import KVMCore

// The multiboot loader (`kvmrun -kernel K -append A -initrd M`): header search,
// address fields or ELF32 program headers, module placement, the information
// structure. One input is
//
//   byte 0: number of modules (mod 3)    byte 1: command line length (mod 64)
//   bytes 2-3: module 0 and 1 lengths (× 16)   byte 4: RAM in MiB (mod 16, + 2)
//   then the command line, the modules, and the kernel (the rest).
//
// Properties: only GuestImageError is thrown; an accepted kernel's image lies in
// the RAM it was given, below 4 GiB, clear of the PC's reserved memory below
// 1 MiB (EBDA, VGA, BIOS: the boot GDT is there), its entry in
// RAM, modules inside it on page boundaries of the image (QEMU aligns them
// relative to the load address, which itself need not be page aligned);
// loading it into guest memory works.

nonisolated(unsafe) let memory = FuzzMemory.shared(size: 8 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultiboot(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzReader(data, size)
    let moduleCount = Int(input.byte() % 3)
    let commandLineLength = Int(input.byte() % 64)
    let moduleLengths = [Int(input.byte()) * 16, Int(input.byte()) * 16]
    let ramMiB = UInt64(input.byte() % 16) + 2
    let commandLine = String(decoding: input.take(commandLineLength), as: UTF8.self)
    let modules = (0..<moduleCount).map { i in
        MultibootModule(bytes: input.take(moduleLengths[i]), string: "module\(i) arg,\(i)")
    }
    let kernel = input.rest
    _ = Multiboot.isMultiboot(kernel)

    // Prepared for a machine of `ramMiB` (both PC RAM layouts' first part).
    let ram = [(start: UInt64(0), size: ramMiB << 20)]
    let boot: MultibootBoot
    do {
        boot = try Multiboot.prepare(
            kernel: kernel, commandLine: commandLine, modules: modules,
            memoryMap: PCMemoryMap(ram: ram, amdHyperTransport: ramMiB % 2 == 0))
    } catch {
        fuzzExpectedError(error, [GuestImageError.self])
        return 0
    }
    let image = boot.image
    fuzzCheck(image.segments.count == 1, "\(image.segments.count) segments")
    let s = image.segments[0]
    fuzzCheck(
        s.end <= ramMiB << 20 && s.end <= 1 << 32, "image \(hex(s.guestPhysical))–\(hex(s.end)) outside \(ramMiB) MiB")
    fuzzCheck(
        s.guestPhysical >= 0x10_0000 || s.end <= 0x9_FC00,
        "image \(hex(s.guestPhysical))–\(hex(s.end)) over the PC's reserved memory")
    fuzzCheck(
        image.setupArea.map { s.end <= $0.lowerBound || s.guestPhysical >= $0.upperBound } ?? false,
        "image \(hex(s.guestPhysical))–\(hex(s.end)) over the boot GDT")
    fuzzCheck(image.entry < ramMiB << 20, "entry \(hex(image.entry)) outside RAM")
    fuzzCheck(boot.modules.count == modules.count, "\(boot.modules.count) modules placed of \(modules.count)")
    for (placed, module) in zip(boot.modules, modules) {
        fuzzCheck(
            (placed.start - s.guestPhysical) % 4096 == 0 && placed.end - placed.start == UInt64(module.bytes.count)
                && placed.start >= s.guestPhysical && placed.end <= s.end,
            "module placed at \(hex(placed.start))–\(hex(placed.end))")
    }
    fuzzCheck(boot.info.count == Multiboot.infoSize, "info of \(boot.info.count) bytes")
    guard let memory, ramMiB << 20 <= memory.totalSize else { return 0 }
    do {
        try boot.writeInfo(into: memory)
        try image.load(into: memory)
    } catch {
        fuzzCheck(false, "prepared multiboot image does not load: \(error)")
    }
    return 0
}
