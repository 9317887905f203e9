// README's embedding sample: the lines between the markers appear in README.md
// verbatim (EmbeddingSampleTests runs the sample and checks the copy).
// BEGIN README SAMPLE
import KVMCore

struct UnexpectedStop: Error {
    let stop: StopReason
    let serial: String
}

/// Runs four instructions of 64-bit code on /dev/kvm and returns what they printed.
func runTinyGuest() throws -> String {
    // mov al, 'A' ; mov dx, 0x3f8 ; out dx, al ; hlt
    let code: [UInt8] = [0xB0, 0x41, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xF4]
    let machine = try Machine(memorySize: 16 << 20, serial: .buffer) // opens /dev/kvm
    try machine.load(.flat(code, mode: .long, load: 0x10_0000)) // GDT, page tables, rip
    let stop = try machine.run(timeout: .seconds(5))
    guard case .halted = stop, machine.serial.text == "A" else {
        throw UnexpectedStop(stop: stop, serial: machine.serial.text)
    }
    return machine.serial.text
}
// END README SAMPLE
