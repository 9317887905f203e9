import Foundation
import KVMCore
import XCTest

// The README's embedding sample (EmbeddingSample.swift, between its markers,
// pasted into README.md verbatim) compiled and run; `testREADMEHasTheSample`
// keeps the two in step.

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
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("EmbeddingSample.swift").path
        let source = try String(contentsOfFile: file, encoding: .utf8)
        let lines = source.components(separatedBy: "\n")
        guard let begin = lines.firstIndex(of: "// BEGIN README SAMPLE"),
            let end = lines.firstIndex(of: "// END README SAMPLE"), begin < end
        else {
            throw TestSetupError("\(file) has no README SAMPLE markers")
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
            README.md has the sample marker but not the sample from EmbeddingSample.swift; \
            paste this under <!-- sample: EmbeddingSampleTests -->:
            ```swift
            \(sample)
            ```
            """)
    }
}
