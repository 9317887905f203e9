import KVMCore
import XCTest

/// `Parse`: the command-line value parsers. They must return nil, never trap,
/// on anything malformed or out of range.
final class ParseTests: XCTestCase {
    func testSizeUnits() {
        XCTAssertEqual(Parse.size("64M"), 64 << 20)
        XCTAssertEqual(Parse.size("64"), 64 << 20, "a plain number is MiB, as QEMU's -m")
        XCTAssertEqual(Parse.size("1G"), 1 << 30)
        XCTAssertEqual(Parse.size("512K"), 512 << 10)
        XCTAssertEqual(Parse.size("2GiB"), 2 << 30)
        XCTAssertEqual(Parse.size("1T"), 1 << 40)
        XCTAssertEqual(Parse.size("16MB"), 16 << 20)
        XCTAssertEqual(Parse.size("8mib"), 8 << 20, "units are case-insensitive")
        XCTAssertEqual(Parse.size("4k"), 4 << 10)
        XCTAssertEqual(Parse.size(" 32M "), 32 << 20, "surrounding spaces are ignored")
    }

    func testSizeRefusals() {
        for bad in [
            "", " ", "12Q", "-1", "0", "0M", "99999999999T", "M", "iB", "B", "1.5G", "0x10M", "64 M", "G64",
            "18446744073709551616",
        ] {
            XCTAssertNil(Parse.size(bad), "Parse.size(\"\(bad)\") should be nil")
        }
        // The largest value that does not overflow, and the first that does.
        XCTAssertEqual(Parse.size("16777215T"), 16_777_215 << 40)
        XCTAssertNil(Parse.size("16777216T"), "2^64 bytes overflows UInt64")
    }

    func testAddress() {
        XCTAssertEqual(Parse.address("0x100000"), 0x10_0000)
        XCTAssertEqual(Parse.address("0X1F"), 0x1F)
        XCTAssertEqual(Parse.address("0x10_0000"), 0x10_0000, "underscores separate digits")
        XCTAssertEqual(Parse.address("1048576"), 1_048_576)
        XCTAssertEqual(Parse.address("0b101"), 5)
        XCTAssertEqual(Parse.address("0"), 0)
        XCTAssertEqual(Parse.address("0xffffffffffffffff"), UInt64.max)
        for bad in ["", "zz", "0x", "0xg", "0b2", "-1", "0x1_0000_0000_0000_0000", "18446744073709551616", "1.5"] {
            XCTAssertNil(Parse.address(bad), "Parse.address(\"\(bad)\") should be nil")
        }
    }

    func testDuration() {
        XCTAssertEqual(Parse.duration("1.5"), .milliseconds(1500), "a plain number is seconds")
        XCTAssertEqual(Parse.duration("2"), .seconds(2))
        XCTAssertEqual(Parse.duration("500ms"), .milliseconds(500))
        XCTAssertEqual(Parse.duration("300ms"), .milliseconds(300))
        XCTAssertEqual(Parse.duration("2s"), .seconds(2))
        XCTAssertEqual(Parse.duration("1m"), .seconds(60))
        XCTAssertEqual(Parse.duration("0.25s"), .milliseconds(250))
        for bad in [
            "", "-1", "0", "0ms", "abc", "ms", "s", "inf", "nan", "1e10", "5h", "1..5", "-500ms",
            "1e-10", "0.0000000004", "0.0000004ms",
        ] { // positive, but zero once rounded to nanoseconds
            XCTAssertNil(Parse.duration(bad), "Parse.duration(\"\(bad)\") should be nil")
        }
    }

    /// Decimal durations are exact to the nanosecond: "1025ms" is 1,025,000,000 ns,
    /// not one nanosecond less from binary floating-point truncation.
    func testDurationIsExactToTheNanosecond() {
        for ms in [1025, 1027, 2049, 4097, 9999] {
            XCTAssertEqual(Parse.duration("\(ms)ms"), .milliseconds(ms), "\(ms)ms")
        }
        XCTAssertEqual(Parse.duration("1.001"), .milliseconds(1001))
        XCTAssertEqual(Parse.duration("2.3s"), .milliseconds(2300))
    }
}
