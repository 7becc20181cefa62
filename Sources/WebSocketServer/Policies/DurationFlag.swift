/// Durations for flags such as `--ping-interval`, `--idle-timeout` and the handshake timeout.
///
/// A bare number is seconds (`10`, `2.5`), the unit every timeout in `ServerConfiguration` uses.
/// Otherwise one or more number–unit pairs, as Go's `time.ParseDuration` writes them: `500ms`, `30s`,
/// `2m`, `1h`, `1m30s`, `1.5h`. Units: `us` (or `µs`), `ms`, `s`, `m`, `h`; lower case only, so that
/// `M` (a byte-size suffix elsewhere) is never read as minutes by mistake. Negative durations and
/// signs are refused; zero is allowed (a caller that gives zero a meaning, such as "off", decides).
public enum DurationFlag {
    /// The number of seconds `text` names.
    public static func parseSeconds(_ text: String) throws(FlagValueError) -> Double {
        let trimmed = Substring(text).trimmingBlanks
        let usage = "expected a duration such as 30s, 500ms, 2m, 1m30s or 10 (seconds)"
        guard !trimmed.isEmpty else { throw FlagValueError(value: text, reason: usage) }
        if let bare = DecimalPrefix(trimmed), bare.rest.isEmpty { return bare.value }
        var rest = trimmed
        var total = 0.0
        while !rest.isEmpty {
            guard let number = DecimalPrefix(rest) else {
                throw FlagValueError(value: text, reason: "expected a number at \"\(rest)\"; \(usage)")
            }
            var unitEnd = number.rest.startIndex
            while unitEnd < number.rest.endIndex, !(number.rest[unitEnd].isASCII && (number.rest[unitEnd].isNumber || number.rest[unitEnd] == ".")) {
                unitEnd = number.rest.index(after: unitEnd)
            }
            let unit = number.rest[number.rest.startIndex..<unitEnd]
            guard !unit.isEmpty else {
                throw FlagValueError(value: text, reason: "a number without a unit after \"\(trimmed[..<rest.startIndex])\"; give every part a unit (1m30s)")
            }
            guard let factor = factors[String(unit)] else {
                throw FlagValueError(value: text, reason: "unknown unit \"\(unit)\"; use us, ms, s, m or h")
            }
            total += number.value * factor
            rest = number.rest[unitEnd...]
        }
        guard total.isFinite else { throw FlagValueError(value: text, reason: "too large") }
        return total
    }

    static let factors: [String: Double] = ["us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600]
}
