/// Text from the wire made safe to print on a terminal: control characters (C0, DEL and C1, the
/// bytes a terminal takes as commands: ESC starts a sequence that can move the cursor, retitle the
/// window or clear the screen) are written as `\u001b` escapes, as JSON writes them. Anyone on a
/// watched network chooses the request lines, headers and payloads sniff shows, so every string
/// from a capture goes through here (or `quoted`) before a text line is printed.
public enum TerminalText {
    @inline(__always)
    static func isControl(_ v: UInt32) -> Bool { v < 0x20 || (v >= 0x7F && v < 0xA0) }

    /// `s` with its control characters escaped; `s` itself when it has none (the usual case).
    public static func safe(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { isControl($0.value) }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for scalar in s.unicodeScalars {
            if isControl(scalar.value) { out += escape(scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// `s` in double quotes, escaped as a JSON string (RFC 8259 §7), and DEL and C1 escaped too
    /// (JSON lets them through raw; a terminal does not).
    public static func quoted(_ s: String) -> String {
        safe(JSONLineWriter.quoted(s))
    }

    private static func escape(_ v: UInt32) -> String {
        let hex = Array("0123456789abcdef")
        return "\\u00" + String(hex[Int(v >> 4)]) + String(hex[Int(v & 0xF)])
    }
}
