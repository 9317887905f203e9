import Glibc

/// One line on stdout, flushed at once (the lab's stdout is a serial console that
/// the host script reads; nothing may sit in a buffer when the VM powers off).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// A line on stderr (usage and argument errors), written at once.
func complain(_ text: String) {
    let line = text.hasSuffix("\n") ? text : text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// A detail line under a test (the host script keeps only PASS/FAIL lines as results).
func info(_ test: String, _ line: String) {
    say("  \(test): \(line)")
}

/// The verdict line of one test; returns whether it passed.
@discardableResult
func verdict(_ test: String, _ failure: String?) -> Bool {
    if let failure {
        say("FAIL \(test): \(failure)")
        return false
    }
    say("PASS \(test)")
    return true
}

/// Runs a test body: PASS when it returns, FAIL with the error's text when it throws.
@discardableResult
func test(_ name: String, _ body: () throws -> Void) -> Bool {
    do {
        try body()
        return verdict(name, nil)
    } catch {
        return verdict(name, "\(error)")
    }
}

/// `key=value` pairs of a line (values as text).
func keyValues(_ line: Substring) -> [String: String] {
    var out: [String: String] = [:]
    for word in line.split(separator: " ") {
        guard let eq = word.firstIndex(of: "=") else { continue }
        out[String(word[..<eq])] = String(word[word.index(after: eq)...])
    }
    return out
}

/// "0x1f", "0x001f" or "31" as a number.
func number(_ text: String?) -> UInt64? {
    guard let text else { return nil }
    if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
    return UInt64(text)
}
