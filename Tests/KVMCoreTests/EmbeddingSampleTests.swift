import Foundation
// BEGIN README SAMPLE
import KVMCore
import XCTest

// The README's embedding sample, compiled and run as a test. The lines between
// the markers are pasted into README.md verbatim; `testREADMEHasTheSample` keeps
// the two in step.

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

final class EmbeddingSampleTests: XCTestCase {
    func testSampleRuns() throws {
        try requireKVM()
        do {
            let serial = try runTinyGuest()
            XCTAssertEqual(serial, "A")
        } catch let error as UnexpectedStop {
            XCTFail("the sample stopped with \(describe(error.stop)), serial \(error.serial.debugDescription)")
        }
    }

    /// The sample's source text, between the marker lines of this file.
    static func sampleText() throws -> String {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let lines = source.components(separatedBy: "\n")
        guard let begin = lines.firstIndex(of: "// BEGIN README SAMPLE"),
            let end = lines.firstIndex(of: "// END README SAMPLE"), begin < end
        else {
            throw TestSetupError("\(#filePath) has no README SAMPLE markers")
        }
        return lines[(begin + 1)..<end].joined(separator: "\n")
    }

    func testSampleIsShort() throws {
        let lines = try Self.sampleText().components(separatedBy: "\n")
        XCTAssertGreaterThan(lines.count, 5)
        XCTAssertLessThanOrEqual(lines.count, 20, "the README sample should stay about 15 lines")
        XCTAssertTrue(lines.allSatisfy { $0.count <= 100 }, "no line wider than 100 columns")
    }

    /// README.md shows the sample verbatim once the lead has added it (marked by
    /// `<!-- sample: EmbeddingSampleTests -->`).
    func testREADMEHasTheSample() throws {
        let readme = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        guard let text = try? String(contentsOf: readme, encoding: .utf8) else {
            throw XCTSkip("\(readme.path) does not exist yet; the lead adds the sample there")
        }
        guard text.contains("<!-- sample: EmbeddingSampleTests -->") else {
            throw XCTSkip("README.md has no <!-- sample: EmbeddingSampleTests --> marker yet")
        }
        let sample = try Self.sampleText()
        XCTAssertTrue(
            text.contains(sample),
            """
            README.md has the sample marker but not the sample from EmbeddingSampleTests.swift; \
            paste this under <!-- sample: EmbeddingSampleTests -->:
            ```swift
            \(sample)
            ```
            """)
    }
}
