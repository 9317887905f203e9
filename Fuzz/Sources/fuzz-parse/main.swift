import FuzzSupport
import KVMCore

// The command line's value parsers (`Parse.size`, `.address`, `.duration`) on
// any text. Properties: they return nil or a value, never trap; a size is a
// positive multiple of 1 KiB; an address survives a round trip through its
// decimal, hex and binary spellings; a duration is positive and below 1e9 s.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParse(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: FuzzReader(data, size).bytes, as: UTF8.self)
    if let bytes = Parse.size(text) {
        fuzzCheck(bytes > 0 && bytes % 1024 == 0, "size \(bytes) from \(text.debugDescription)")
    }
    if let value = Parse.address(text) {
        fuzzCheck(Parse.address(String(value)) == value, "decimal round trip of \(value)")
        fuzzCheck(Parse.address("0x" + String(value, radix: 16)) == value, "hex round trip of \(value)")
        fuzzCheck(Parse.address("0b" + String(value, radix: 2)) == value, "binary round trip of \(value)")
    }
    if let duration = Parse.duration(text) {
        fuzzCheck(
            duration > .zero && duration < .seconds(1_000_000_000), "duration \(duration) from \(text.debugDescription)"
        )
    }
    return 0
}
