/// Where QEMU's `-M pc` (PIIX4 power management, as SeaBIOS programs it) puts
/// the ACPI hardware, and so where kvmrun's tables point and its devices sit.
/// The tables (`ACPITables`) and the devices (`ACPIPowerManagement`) read these
/// and nothing else.
public enum ACPILayout {
    /// PIIX4 PM I/O base (QEMU's PM_IO_BASE after SeaBIOS): PM1a event block.
    public static let pm1aEvent: UInt16 = 0x600
    /// The PM1a event block's length in bytes.
    public static let pm1aEventLength: UInt8 = 4
    /// PM1a control block.
    public static let pm1aControl: UInt16 = 0x604
    /// The PM1a control block's length in bytes.
    public static let pm1aControlLength: UInt8 = 2
    /// The PM timer: 24 bits at 3.579545 MHz.
    public static let pmTimer: UInt16 = 0x608
    /// The PM timer block's length in bytes.
    public static let pmTimerLength: UInt8 = 4
    /// The PM timer's rate in Hz.
    public static let pmTimerFrequency: UInt64 = 3_579_545
    /// General-purpose event block 0 (QEMU's piix4 GPE at 0xafe0, 4 bytes).
    public static let gpe0: UInt16 = 0xAFE0
    /// GPE0's length in bytes.
    public static let gpe0Length: UInt8 = 4
    /// The SCI's ISA IRQ (level, active high in the MADT's override).
    public static let sciIRQ: UInt8 = 9
    /// FADT RESET_REG: a write of `resetValue` to port 0xcf9 (PIIX3's reset control).
    public static let resetPort: UInt16 = 0xCF9
    /// RESET_VALUE.
    public static let resetValue: UInt8 = 0x06
    /// SLP_TYP values of the DSDT's \_S3 and \_S5 packages (QEMU piix's).
    public static let sleepTypeS3: UInt8 = 1
    /// SLP_TYP of \_S5 (soft off).
    public static let sleepTypeS5: UInt8 = 0
    /// Where the RSDP sits: the BIOS area, which Linux and other OSes scan
    /// (0xe0000–0xfffff, 16-byte aligned) and SeaBIOS's map reserves.
    public static let rsdpAddress: UInt64 = 0xF_0000
    /// Room for the other tables: SeaBIOS's reserved high-table area at the top
    /// of RAM below 4 GiB (`SeaBIOSMemoryMap.highTableSize`).
    public static let tablesMaxSize: UInt64 = 0x2_0000
}
