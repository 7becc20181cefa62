/// Text from the wire made safe to print on a terminal: control characters (C0, DEL and C1, the
/// bytes a terminal takes as commands: ESC starts a sequence that can move the cursor, retitle the
/// window or clear the screen) are written as `\u001b` escapes, as JSON writes them. Anyone on a
/// watched network chooses the request lines, headers and payloads sniff shows, so every string
/// from a capture goes through here (or `quoted`) before a text line is printed.
///
/// Unicode's bidirectional formatting characters are escaped too (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069: Unicode Technical Report 9 §2): a right-to-left override in a
/// payload or a header would reorder what the terminal shows after it, so that a line reads as
/// something it is not (the "Trojan Source" trick, CVE-2021-42574).
public enum TerminalText {
    @inline(__always)
    static func isControl(_ v: UInt32) -> Bool {
        v < 0x20 || (v >= 0x7F && v < 0xA0) || (v >= 0x061C && isBidiControl(v))
    }

    static func isBidiControl(_ v: UInt32) -> Bool {
        v == 0x061C || v == 0x200E || v == 0x200F || (v >= 0x202A && v <= 0x202E) || (v >= 0x2066 && v <= 0x2069)
    }

    /// Whether the UTF-8 `bytes` hold a character `quoted` escapes that JSON's own escaping lets
    /// through (DEL, C1, the bidirectional controls): a printer that writes JSON-escaped bytes
    /// itself must leave such text to `quoted`. A character cut at the end is not looked at.
    public static func needsEscapeBeyondJSON(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < bytes.count {
            let lead = UInt32(bytes[i])
            if lead < 0x80 {
                if lead == 0x7F { return true }
                i += 1
                continue
            }
            let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
            guard i + length <= bytes.count else { return false }
            var v = lead & (0xFF >> (length + 1))
            for k in 1..<length { v = v << 6 | UInt32(bytes[i + k] & 0x3F) }
            if isControl(v) { return true }
            i += length
        }
        return false
    }

    /// Where the first `limit` characters (grapheme clusters, as Swift counts them) of the valid
    /// UTF-8 `text` end, read from its bytes, and whether more follow; nil when that cannot be
    /// told that way (the caller then counts Characters).
    ///
    /// Told only when every scalar up to there, and the one after it (which could otherwise
    /// extend the last character), is one Unicode's grapheme rules always break around (UAX #29:
    /// its Grapheme_Cluster_Break is Other, Control or LF, so that only rule GB999, or GB4 and
    /// GB5, apply between two of them): then each scalar is a character. That is printable ASCII,
    /// the C0 controls but CR (CR LF is one character, GB3), Latin-1 and the Latin extensions to
    /// U+02FF but the soft hyphen, general punctuation (U+2010–U+2027, U+2030–U+205E), CJK
    /// punctuation to U+3029, kana, the CJK unified ideographs and the emoticons
    /// (U+1F600–U+1F64F, which join others only through ZWJ, GB11). Combining marks, ZWJ,
    /// variation selectors, emoji modifiers, Hangul jamo and regional indicators are not; nor
    /// are DEL, C1 or the bidirectional controls, so what it tells needs no escape beyond JSON's.
    public static func characterPrefix(_ text: UnsafeRawBufferPointer, limit: Int) -> (length: Int, more: Bool)? {
        let n = text.count
        var i = 0
        var count = 0
        while i < n {
            let lead = UInt32(text[i])
            let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
            guard i + length <= n else { return nil }
            var v = length == 1 ? lead : lead & (0xFF >> (length + 1))
            for k in 1..<max(length, 1) { v = v << 6 | UInt32(text[i + k] & 0x3F) }
            guard alwaysBreaksAround(v) else { return nil }
            // A scalar after `limit` characters begins another: the prefix ends before it.
            if count == limit { return (i, true) }
            count += 1
            i += length
        }
        return (n, false)
    }

    /// See `characterPrefix`.
    @inline(__always)
    static func alwaysBreaksAround(_ v: UInt32) -> Bool {
        switch v {
        case 0x20...0x7E, 0x2010...0x2027, 0x2030...0x205E, 0x3000...0x3029, 0x3041...0x3096, 0x30A1...0x30FA,
             0x4E00...0x9FFF, 0x1F600...0x1F64F:
            return true
        case 0x00...0x1F: return v != 0x0D
        case 0xA0...0x2FF: return v != 0xAD
        default: return false
        }
    }

    /// `s` with its control characters escaped; `s` itself when it has none (the usual case).
    public static func safe(_ s: String) -> String {
        guard needsEscape(s) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for scalar in s.unicodeScalars {
            if isControl(scalar.value) { out += escape(scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// Whether `safe` changes `s`.
    public static func needsEscape(_ s: String) -> Bool {
        s.unicodeScalars.contains(where: { isControl($0.value) })
    }

    /// `s` in double quotes, escaped as a JSON string (RFC 8259 §7), and DEL and C1 escaped too
    /// (JSON lets them through raw; a terminal does not).
    public static func quoted(_ s: String) -> String {
        safe(JSONLineWriter.quoted(s))
    }

    private static func escape(_ v: UInt32) -> String {
        let hex = Array("0123456789abcdef")
        return "\\u" + String(hex[Int(v >> 12 & 0xF)]) + String(hex[Int(v >> 8 & 0xF)]) + String(hex[Int(v >> 4 & 0xF)])
            + String(hex[Int(v & 0xF)])
    }
}
