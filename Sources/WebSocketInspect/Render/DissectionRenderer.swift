import WebSocketCodec

/// ANSI styling that is on only when asked (a terminal without `NO_COLOR`).
public struct TerminalStyle: Sendable {
    public var enabled: Bool
    public init(enabled: Bool) { self.enabled = enabled }
    func wrap(_ s: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
    public func bold(_ s: String) -> String { wrap(s, "1") }
    public func dim(_ s: String) -> String { wrap(s, "2") }
    public func red(_ s: String) -> String { wrap(s, "31") }
    public func green(_ s: String) -> String { wrap(s, "32") }
    public func yellow(_ s: String) -> String { wrap(s, "33") }
    public func cyan(_ s: String) -> String { wrap(s, "36") }
}

/// Renders dissection records as human-readable text and as JSON Lines (the schema is in the README).
public enum DissectionRenderer {
    // MARK: JSON Lines

    /// The frame keys shared by `decode --json` and `sniff --json`; `extra` writes keys that come first
    /// (connection id, direction, time).
    public static func json(_ f: FrameRecord, extra: (inout JSONLineWriter) -> Void = { _ in }) -> String {
        var w = JSONLineWriter()
        w.string("kind", "frame")
        extra(&w)
        w.int("index", f.index)
        w.int("offset", f.offset)
        w.bool("fin", f.header.fin)
        w.bool("rsv1", f.header.rsv1)
        w.bool("rsv2", f.header.rsv2)
        w.bool("rsv3", f.header.rsv3)
        w.int("opcode", Int(f.header.opcode.rawValue))
        w.string("opcode_name", f.header.opcode.name)
        w.bool("masked", f.header.masked)
        w.string("masking_key", f.header.maskingKey?.hex)
        w.uint("payload_length", f.header.payloadLength)
        w.int("header_length", f.header.headerLength)
        w.string("text", f.text)
        w.string("payload_hex", hexString(f.payload))
        w.bool("payload_truncated", f.payloadTruncated)
        w.int("close_code", f.close?.code.map { Int($0.code) })
        w.string("close_code_name", f.close?.code?.name)
        w.string("close_reason", f.close?.code == nil ? nil : f.close?.reason)
        w.array("errors", f.violations.map(json))
        return w.finish()
    }

    public static func json(_ m: MessageRecord, extra: (inout JSONLineWriter) -> Void = { _ in }) -> String {
        var w = JSONLineWriter()
        w.string("kind", "message")
        extra(&w)
        w.int("index", m.index)
        w.int("offset", m.offset)
        w.int("end_offset", m.endOffset)
        w.int("opcode", Int(m.opcode.rawValue))
        w.string("opcode_name", m.opcode.name)
        w.int("fragments", m.fragmentCount)
        w.bool("compressed", m.compressed)
        w.int("payload_length", m.length)
        w.int("data_length", m.dataLength)
        w.string("text", m.compressed ? nil : m.text)
        w.string("inflated_text", m.compressed ? m.text : nil)
        w.string("payload_hex", hexString(m.data))
        w.bool("payload_truncated", m.dataTruncated)
        w.bool("incomplete", m.incomplete)
        if let e = m.envelope {
            var ew = JSONLineWriter()
            ew.string("type", e.error == nil ? e.type : nil)
            ew.string("correlation_id", e.correlationID)
            ew.string("message_id", e.messageID)
            ew.string("client_id", e.clientID)
            ew.string("error", e.error)
            w.raw("envelope", ew.finish())
        } else {
            w.raw("envelope", "null")
        }
        w.array("errors", m.violations.map(json))
        return w.finish()
    }

    public static func json(_ v: WebSocketViolation) -> String {
        var w = JSONLineWriter()
        w.string("rule", v.rule.rawValue)
        w.string("message", v.message)
        w.int("offset", v.offset)
        w.int("close_code", Int(v.closeCode.code))
        w.string("section", v.rule.section)
        return w.finish()
    }

    /// A stream-level error line (truncated input, a parser that had to stop).
    public static func jsonError(rule: String, message: String, offset: Int, closeCode: Int?, extra: (inout JSONLineWriter) -> Void = { _ in }) -> String {
        var w = JSONLineWriter()
        w.string("kind", "error")
        extra(&w)
        w.string("rule", rule)
        w.string("message", message)
        w.int("offset", offset)
        w.int("close_code", closeCode)
        return w.finish()
    }

    // MARK: Text

    public static func text(_ f: FrameRecord, style: TerminalStyle, prefix: String = "") -> String {
        let h = f.header
        var flags: [String] = []
        if h.fin { flags.append("FIN") }
        if h.rsv1 { flags.append("RSV1") }
        if h.rsv2 { flags.append("RSV2") }
        if h.rsv3 { flags.append("RSV3") }
        var line = "\(prefix)\(style.bold("frame \(f.index)")) @\(f.offset) \(style.cyan(h.opcode.name)) \(flags.joined(separator: " "))"
        if let key = h.maskingKey { line += " mask=\(key.hex)" }
        line += " len=\(h.payloadLength) hdr=\(h.headerLength)"
        var lines = [line]
        let indent = prefix + "  "
        if let close = f.close {
            if let code = close.code {
                lines.append("\(indent)close \(code.code) \(code.name)" + (close.reason.isEmpty ? "" : " reason \(JSONLineWriter.quoted(close.reason))"))
            } else {
                lines.append("\(indent)close with no status (1005)")
            }
        } else if let t = f.text {
            lines.append(indent + JSONLineWriter.quoted(t) + (f.payloadTruncated ? style.dim(" … (\(h.payloadLength) bytes in all; --full shows all)") : ""))
        } else if !f.payload.isEmpty {
            lines += hexLines(f.payload, indent: indent)
            if f.payloadTruncated { lines.append(indent + style.dim("… \(h.payloadLength) bytes in all; --full shows all")) }
        }
        for v in f.violations { lines.append(indent + violationText(v, style: style)) }
        return lines.joined(separator: "\n")
    }

    public static func text(_ m: MessageRecord, style: TerminalStyle, prefix: String = "") -> String {
        var head = "\(prefix)\(style.bold("message \(m.index)")) @\(m.offset) \(style.green(m.opcode.name)) \(m.dataLength) bytes"
        head += m.fragmentCount == 1 ? ", 1 fragment" : ", \(m.fragmentCount) fragments"
        if m.compressed { head += ", deflated \(m.length) → \(m.dataLength)" }
        if m.incomplete { head += style.yellow(", incomplete (bytes lost in a capture gap)") }
        var lines = [head]
        let indent = prefix + "  "
        if let e = m.envelope {
            if let err = e.error {
                lines.append(indent + style.yellow("envelope invalid: \(err)"))
            } else {
                lines.append(indent + "envelope type=\(e.type)" + (e.correlationID.map { " correlation_id=\($0)" } ?? ""))
            }
        }
        if let t = m.text {
            lines.append(indent + JSONLineWriter.quoted(t) + (m.dataTruncated ? style.dim(" … (\(m.dataLength) bytes in all; --full shows all)") : ""))
        } else if !m.data.isEmpty {
            lines += hexLines(m.data, indent: indent)
            if m.dataTruncated { lines.append(indent + style.dim("… \(m.dataLength) bytes in all; --full shows all")) }
        }
        for v in m.violations { lines.append(indent + violationText(v, style: style)) }
        return lines.joined(separator: "\n")
    }

    public static func violationText(_ v: WebSocketViolation, style: TerminalStyle) -> String {
        style.red("error: \(v.rule.rawValue) at byte \(v.offset): \(v.message) (\(v.rule.section); a peer closes with \(v.closeCode.code))")
    }

    /// `hexdump -C`-style lines: offset, 16 bytes of hex, printable ASCII.
    public static func hexLines(_ bytes: [UInt8], indent: String) -> [String] {
        var lines: [String] = []
        var i = 0
        while i < bytes.count {
            let row = bytes[i..<min(i + 16, bytes.count)]
            var hex = ""
            for (j, b) in row.enumerated() {
                if j == 8 { hex += " " }
                hex += (b < 16 ? "0" : "") + String(b, radix: 16) + " "
            }
            let pad = String(repeating: " ", count: max(0, 49 - hex.count))
            let ascii = String(row.map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "." })
            let off = String(i, radix: 16)
            lines.append("\(indent)\(String(repeating: "0", count: max(0, 4 - off.count)))\(off)  \(hex)\(pad)|\(ascii)|")
            i += 16
        }
        return lines
    }
}
