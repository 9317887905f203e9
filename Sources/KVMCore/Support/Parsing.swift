/// Parsers for command-line values. They return nil on anything malformed or
/// out of range, never trap, so the CLI can name the bad value.
package enum Parse {
    /// A memory size as QEMU's `-m` takes it: a plain number is MiB; `K`, `M`, `G`,
    /// `T` suffixes (optionally followed by `B` or `iB`, any case) are binary units.
    package static func size(_ text: String) -> UInt64? {
        var s = Substring(text.trimmingSpaces())
        guard !s.isEmpty else { return nil }
        for tail in ["ib", "b"] where s.lowercased().hasSuffix(tail) && s.count > tail.count {
            s = s.dropLast(tail.count)
            break
        }
        var shift: UInt64 = 20
        // A switch, not a dictionary literal: cheaper at start-up, where kvmrun parses -m.
        let unitShift: UInt64? =
            switch s.last?.lowercased() {
            case "k": 10
            case "m": 20
            case "g": 30
            case "t": 40
            default: nil
            }
        if let unitShift {
            shift = unitShift
            s = s.dropLast()
        }
        guard let number = UInt64(s), number > 0 else { return nil }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : value
    }

    /// An address or integer: `0x` hex, `0b` binary, or decimal; `_` allowed as a separator.
    package static func address(_ text: String) -> UInt64? {
        let s = text.trimmingSpaces().replacingUnderscores().lowercased()
        if s.hasPrefix("0x") { return UInt64(s.dropFirst(2), radix: 16) }
        if s.hasPrefix("0b") { return UInt64(s.dropFirst(2), radix: 2) }
        return UInt64(s, radix: 10)
    }

    /// A duration: seconds as a number (`1.5`), or with `ms`, `s`, `m` suffixes.
    package static func duration(_ text: String) -> Duration? {
        let s = text.trimmingSpaces().lowercased()
        let units: [(String, Double)] = [("ms", 1e-3), ("s", 1), ("m", 60)]
        var scale = 1.0
        var number = Substring(s)
        for (suffix, unit) in units where s.hasSuffix(suffix) {
            scale = unit
            number = number.dropLast(suffix.count)
            break
        }
        guard let value = Double(number), value.isFinite, value > 0, value * scale < 1e9 else { return nil }
        // Below half a nanosecond a positive duration would round to zero: refuse it.
        let nanoseconds = (value * scale * 1e9).rounded()
        guard nanoseconds >= 1 else { return nil }
        return .nanoseconds(Int64(nanoseconds))
    }
}

extension String {
    func trimmingSpaces() -> String {
        guard let first = firstIndex(where: { $0 != " " }), let last = lastIndex(where: { $0 != " " }) else {
            return ""
        }
        return String(self[first...last])
    }

    func replacingUnderscores() -> String {
        String(filter { $0 != "_" })
    }
}
