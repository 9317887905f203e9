import KVMGuestImage

extension GuestImage {
    /// The guest as KVMCore loads it: `.flat` for raw binaries (in the manifest's
    /// mode, at its load and entry addresses), `ELFImage.parse` for ELF images
    /// (ELF64 in long mode, ELF32 multiboot kernels in protected mode).
    public func bootImage() throws -> BootImage {
        switch format {
        case .elf:
            return try ELFImage.parse(bytes)
        case .flat(let mode, let load, let entry):
            guard let cpuMode = CPUMode(rawValue: mode.rawValue) else {
                throw ConfigurationError.invalidRequest("guest \(name): mode \(mode.rawValue) has no CPUMode")
            }
            return try .flat(bytes, mode: cpuMode, load: load, entry: entry)
        }
    }
}
