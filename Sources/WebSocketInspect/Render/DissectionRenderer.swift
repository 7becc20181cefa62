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

    /// The frame keys shared by `decode --json` and `sniff --json`, as one JSON line (newline
    /// included) appended to `out`; `extra` writes keys that come first (connection id, direction, time).
    /// With an `echo`, the payload of a final text or binary frame is remembered for the message
    /// line that usually follows (see `JSONPayloadEcho`).
    public static func writeJSON(_ f: FrameRecordView, to out: inout OutputBuffer, echo: JSONPayloadEcho? = nil,
                                 extra: (inout OutputBuffer) -> Void = { _ in }) {
        let h = f.header
        out.separate()
        out.reserve(20)
        out.put("{\"kind\":\"frame\"")
        out.valueWritten()
        extra(&out)
        // The keys up to the text, pieces of known length written into room reserved once for
        // each run of them (the longest pieces, digits at their most: 150 and 122 bytes).
        beginRun(index: f.index, offset: f.offset, to: &out)
        out.put(flagRuns[Int(h.firstByte >> 4)])  // fin, rsv1, rsv2, rsv3 in one piece
        putOpcode(h.opcode, to: &out)
        out.reserve(160)
        if let key = h.maskingKey {
            out.put(",\"masked\":true,\"masking_key\":\"")
            out.appendHex(packed: key.packed)
            out.append(UInt8(ascii: "\""))
        } else {
            out.put(",\"masked\":false,\"masking_key\":null")
        }
        out.put(",\"payload_length\":")
        out.put(decimal: h.payloadLength)
        out.put(",\"header_length\":")
        out.put(decimal: h.headerLength)
        out.put(",\"text\":")
        out.keyWritten()
        let textStart = out.count
        if let t = f.text { out.jsonString(t) } else { out.jsonNull() }
        let textEnd = out.count
        out.jsonKey("payload_hex")
        let hexStart = out.count
        out.jsonHexString(f.payload)
        // (Optional chaining, not `if let`: binding the echo retained it for every line.)
        if echo != nil, h.fin, !h.rsv1, h.opcode == .text || h.opcode == .binary {
            let wholeText = f.text.map { $0.count == f.payload.count } ?? false
            echo?.remember(f.payload, text: wholeText ? textStart..<textEnd : nil, hex: hexStart..<out.count, in: out)
        }
        if !f.incomplete && f.borrowedClose == nil && f.violations.isEmpty {
            // The usual end of a line, in one piece.
            out.append(f.payloadTruncated ? ",\"payload_truncated\":true" : ",\"payload_truncated\":false")
            out.append(noClose)
            out.append(",\"errors\":[]}\n")
            out.needsComma = false
            return
        }
        out.jsonBool("payload_truncated", f.payloadTruncated)
        if f.incomplete { out.jsonBool("incomplete", true) }  // only on the frame a stream ended inside
        if let close = f.close {
            out.jsonInt("close_code", close.code.map { Int($0.code) })
            out.jsonString("close_code_name", close.code?.name)
            out.jsonString("close_reason", close.code == nil ? nil : close.reason)
        } else {
            out.append(noClose)
        }
        writeErrors(f.violations, to: &out)
        out.endJSONLine()
    }

    /// With an `echo`, the text and hex of a payload the frame line before showed are copied from
    /// that line (see `JSONPayloadEcho`).
    public static func writeJSON(_ m: MessageRecordView, to out: inout OutputBuffer, echo: JSONPayloadEcho? = nil,
                                 extra: (inout OutputBuffer) -> Void = { _ in }) {
        out.separate()
        out.reserve(20)
        out.put("{\"kind\":\"message\"")
        out.valueWritten()
        extra(&out)
        // As for a frame: runs of pieces of known length (at most 133 and 125 bytes).
        beginRun(index: m.index, offset: m.offset, to: &out)
        out.put(",\"end_offset\":")
        out.put(decimal: m.endOffset)
        putOpcode(m.opcode, to: &out)
        out.reserve(160)
        out.put(",\"fragments\":")
        out.put(decimal: m.fragmentCount)
        out.put(m.compressed ? ",\"compressed\":true" : ",\"compressed\":false")
        out.put(",\"payload_length\":")
        out.put(decimal: m.length)
        out.put(",\"data_length\":")
        out.put(decimal: m.dataLength)
        // The frame line just before showed these very bytes: copy what it wrote.
        // (Optional chaining, not a bound copy of the echo, which retained it for every line.)
        let echoed = !m.compressed && echo?.matches(m.data, in: out) == true
        out.jsonKey("text")
        if m.compressed {
            out.jsonNull()
        } else if echoed, let t = m.text, t.count == m.data.count, !m.textEndsInsideCharacter, let range = echo?.textRange {
            out.appendCopy(of: range)
            out.needsComma = true
        } else {
            writeText(m, to: &out)
        }
        out.jsonKey("inflated_text")
        if m.compressed { writeText(m, to: &out) } else { out.jsonNull() }
        out.jsonKey("payload_hex")
        if echoed, let range = echo?.hexRange {
            out.appendCopy(of: range)
            out.needsComma = true
        } else {
            out.jsonHexString(m.data)
        }
        if m.borrowedEnvelope == nil && !m.envelopeUnchecked && m.violations.isEmpty {
            // The usual end of a line, in one piece.
            out.append(m.dataTruncated ? ",\"payload_truncated\":true" : ",\"payload_truncated\":false")
            out.append(m.incomplete ? ",\"incomplete\":true,\"envelope\":null,\"errors\":[]}\n"
                                    : ",\"incomplete\":false,\"envelope\":null,\"errors\":[]}\n")
            out.needsComma = false
            return
        }
        out.jsonBool("payload_truncated", m.dataTruncated)
        out.jsonBool("incomplete", m.incomplete)
        out.jsonKey("envelope")
        if let e = m.envelope {
            out.beginJSONObject()
            // With an error: the type, if it could be read (as the ids below).
            out.jsonString("type", e.type.isEmpty ? nil : e.type)
            out.jsonString("correlation_id", e.correlationID)
            out.jsonString("message_id", e.messageID)
            out.jsonString("client_id", e.clientID)
            out.jsonString("error", e.error)
            out.endJSONObject()
        } else {
            out.jsonNull()
        }
        // Only when true: a text message not held whole (--max-message-memory) was not looked at.
        if m.envelopeUnchecked { out.jsonBool("envelope_unchecked", true) }
        writeErrors(m.violations, to: &out)
        out.endJSONLine()
    }

    private static func writeText(_ m: MessageRecordView, to out: inout OutputBuffer) {
        guard let t = m.text else { return out.jsonNull() }
        out.separate()
        out.append(UInt8(ascii: "\""))
        out.appendJSONEscaped(t)
        if m.textEndsInsideCharacter { out.append("\u{FFFD}") }
        out.append(UInt8(ascii: "\""))
        out.needsComma = true
    }

    /// The close keys of a frame that is not a close frame.
    private static let noClose: StaticString = ",\"close_code\":null,\"close_code_name\":null,\"close_reason\":null"

    /// `,"fin":…,"rsv1":…,"rsv2":…,"rsv3":…` for each value of a first byte's top four bits.
    private static let flagRuns: [StaticString] = [
        #","fin":false,"rsv1":false,"rsv2":false,"rsv3":false"#, #","fin":false,"rsv1":false,"rsv2":false,"rsv3":true"#,
        #","fin":false,"rsv1":false,"rsv2":true,"rsv3":false"#, #","fin":false,"rsv1":false,"rsv2":true,"rsv3":true"#,
        #","fin":false,"rsv1":true,"rsv2":false,"rsv3":false"#, #","fin":false,"rsv1":true,"rsv2":false,"rsv3":true"#,
        #","fin":false,"rsv1":true,"rsv2":true,"rsv3":false"#, #","fin":false,"rsv1":true,"rsv2":true,"rsv3":true"#,
        #","fin":true,"rsv1":false,"rsv2":false,"rsv3":false"#, #","fin":true,"rsv1":false,"rsv2":false,"rsv3":true"#,
        #","fin":true,"rsv1":false,"rsv2":true,"rsv3":false"#, #","fin":true,"rsv1":false,"rsv2":true,"rsv3":true"#,
        #","fin":true,"rsv1":true,"rsv2":false,"rsv3":false"#, #","fin":true,"rsv1":true,"rsv2":false,"rsv3":true"#,
        #","fin":true,"rsv1":true,"rsv2":true,"rsv3":false"#, #","fin":true,"rsv1":true,"rsv2":true,"rsv3":true"#,
    ]

    /// `"index":…,"offset":…` after the keys before them, opening a run of pieces with room
    /// reserved for it all (160 bytes).
    @inline(__always)
    private static func beginRun(index: Int, offset: Int, to out: inout OutputBuffer) {
        out.reserve(160)
        out.separate()
        out.put("\"index\":")
        out.put(decimal: index)
        out.put(",\"offset\":")
        out.put(decimal: offset)
    }

    /// `,"opcode":…,"opcode_name":…`, in one piece for the six opcodes RFC 6455 defines (into room
    /// reserved: 41 bytes at most); a reserved opcode's keys are written with their own checks.
    @inline(__always)
    private static func putOpcode(_ op: WebSocketOpcode, to out: inout OutputBuffer) {
        switch op {
        case .continuation: out.put(#","opcode":0,"opcode_name":"continuation""#)
        case .text: out.put(#","opcode":1,"opcode_name":"text""#)
        case .binary: out.put(#","opcode":2,"opcode_name":"binary""#)
        case .close: out.put(#","opcode":8,"opcode_name":"close""#)
        case .ping: out.put(#","opcode":9,"opcode_name":"ping""#)
        case .pong: out.put(#","opcode":10,"opcode_name":"pong""#)
        default:
            out.needsComma = true
            out.jsonInt("opcode", Int(op.rawValue))
            out.jsonString("opcode_name", op.name)
        }
    }

    private static func writeErrors(_ violations: UnsafeBufferPointer<WebSocketViolation>, to out: inout OutputBuffer) {
        out.jsonKey("errors")
        out.beginJSONArray()
        for v in violations { writeJSON(v, to: &out) }
        out.endJSONArray()
    }

    /// A violation as a JSON object (an element of `errors`).
    public static func writeJSON(_ v: WebSocketViolation, to out: inout OutputBuffer) {
        out.beginJSONObject()
        out.jsonString("rule", v.rule.rawValue)
        out.jsonString("message", v.message)
        out.jsonInt("offset", v.offset)
        out.jsonInt("close_code", Int(v.closeCode.code))
        out.jsonString("section", v.rule.section)
        out.endJSONObject()
    }

    /// The frame as a JSON line (without the newline).
    public static func json(_ f: FrameRecord, extra: (inout OutputBuffer) -> Void = { _ in }) -> String {
        f.withView { json($0, extra: extra) }
    }

    public static func json(_ f: FrameRecordView, extra: (inout OutputBuffer) -> Void = { _ in }) -> String {
        var out = OutputBuffer(capacity: 512)
        writeJSON(f, to: &out, extra: extra)
        return out.makeLine()
    }

    public static func json(_ m: MessageRecord, extra: (inout OutputBuffer) -> Void = { _ in }) -> String {
        m.withView { json($0, extra: extra) }
    }

    public static func json(_ m: MessageRecordView, extra: (inout OutputBuffer) -> Void = { _ in }) -> String {
        var out = OutputBuffer(capacity: 512)
        writeJSON(m, to: &out, extra: extra)
        return out.makeLine()
    }

    public static func json(_ v: WebSocketViolation) -> String {
        var out = OutputBuffer(capacity: 256)
        writeJSON(v, to: &out)
        return out.makeString()
    }

    /// A stream-level error line (truncated input, a parser that had to stop).
    public static func jsonError(rule: String, message: String, offset: Int, closeCode: Int?, extra: (inout OutputBuffer) -> Void = { _ in }) -> String {
        var out = OutputBuffer(capacity: 256)
        out.beginJSONObject()
        out.jsonString("kind", "error")
        extra(&out)
        out.jsonString("rule", rule)
        out.jsonString("message", message)
        out.jsonInt("offset", offset)
        out.jsonInt("close_code", closeCode)
        out.endJSONLine()
        return out.makeLine()
    }

    // MARK: Text

    public static func text(_ f: FrameRecord, style: TerminalStyle, prefix: String = "") -> String {
        f.withView { text($0, style: style, prefix: prefix) }
    }

    public static func text(_ m: MessageRecord, style: TerminalStyle, prefix: String = "") -> String {
        m.withView { text($0, style: style, prefix: prefix) }
    }

    public static func text(_ f: FrameRecordView, style: TerminalStyle, prefix: String = "") -> String {
        let h = f.header
        var flags: [String] = []
        if h.fin { flags.append("FIN") }
        if h.rsv1 { flags.append("RSV1") }
        if h.rsv2 { flags.append("RSV2") }
        if h.rsv3 { flags.append("RSV3") }
        var line = "\(prefix)\(style.bold("frame \(f.index)")) @\(f.offset) \(style.cyan(h.opcode.name)) \(flags.joined(separator: " "))"
        if let key = h.maskingKey { line += " mask=\(key.hex)" }
        line += " len=\(h.payloadLength) hdr=\(h.headerLength)"
        if f.incomplete { line += style.yellow(" incomplete (the capture holds \(f.payloadTruncated ? "more than " : "")\(f.payload.count) bytes of it)") }
        var lines = [line]
        let indent = prefix + "  "
        if let close = f.close {
            if let code = close.code {
                lines.append("\(indent)close \(code.code) \(code.name)" + (close.reason.isEmpty ? "" : " reason \(TerminalText.quoted(close.reason))"))
            } else {
                lines.append("\(indent)close with no status (1005)")
            }
        } else if let t = f.textString {
            lines.append(indent + TerminalText.quoted(t) + (f.payloadTruncated ? style.dim(" … (\(cutNote(f)))") : ""))
        } else if !f.payload.isEmpty {
            lines += hexLines(f.payload, indent: indent)
            if f.payloadTruncated { lines.append(indent + style.dim("… \(cutNote(f))")) }
        }
        for v in f.violations { lines.append(indent + violationText(v, style: style)) }
        return lines.joined(separator: "\n")
    }

    /// What follows a payload shown cut: how much there is, and what --full shows. Of a frame the
    /// capture ends inside, the announced length did not all arrive: --full shows what did.
    private static func cutNote(_ f: FrameRecordView) -> String {
        f.incomplete ? "\(f.header.payloadLength) bytes announced, not all captured; --full shows what was"
            : "\(f.header.payloadLength) bytes in all; --full shows all"
    }

    public static func text(_ m: MessageRecordView, style: TerminalStyle, prefix: String = "") -> String {
        var head = "\(prefix)\(style.bold("message \(m.index)")) @\(m.offset) \(style.green(m.opcode.name)) \(m.dataLength) bytes"
        head += m.fragmentCount == 1 ? ", 1 fragment" : ", \(m.fragmentCount) fragments"
        if m.compressed { head += ", deflated \(m.length) → \(m.dataLength)" }
        if m.incomplete { head += style.yellow(", incomplete (bytes lost in a capture gap, or its end not captured)") }
        if m.envelopeUnchecked { head += style.dim(", not held whole (--max-message-memory): envelope not checked") }
        var lines = [head]
        let indent = prefix + "  "
        if let e = m.envelope {
            if let err = e.error {
                let known = (e.type.isEmpty ? "" : " type=\(TerminalText.safe(e.type))") + (e.correlationID.map { " correlation_id=\(TerminalText.safe($0))" } ?? "")
                lines.append(indent + style.yellow("envelope invalid: \(TerminalText.safe(err))") + known)
            } else {
                lines.append(indent + "envelope type=\(TerminalText.safe(e.type))" + (e.correlationID.map { " correlation_id=\(TerminalText.safe($0))" } ?? "")
                             + (e.messageID.map { " message_id=\(TerminalText.safe($0))" } ?? "") + (e.clientID.map { " client_id=\(TerminalText.safe($0))" } ?? ""))
            }
        }
        if let t = m.textString {
            lines.append(indent + TerminalText.quoted(t) + (m.dataTruncated ? style.dim(" … (\(cutNote(m)))") : ""))
        } else if !m.data.isEmpty {
            lines += hexLines(m.data, indent: indent)
            if m.dataTruncated { lines.append(indent + style.dim("… \(cutNote(m))")) }
        }
        for v in m.violations { lines.append(indent + violationText(v, style: style)) }
        return lines.joined(separator: "\n")
    }

    /// As for frames: an incomplete message's length counts what was captured of it.
    private static func cutNote(_ m: MessageRecordView) -> String {
        m.incomplete ? "\(m.dataLength) bytes captured of it; --full shows them"
            : "\(m.dataLength) bytes in all; --full shows all"
    }

    /// What a resync says (sniff's and decode's text lines): where frames start again after a
    /// gap, or in a stream picked up in its middle (`gapEnd` 0), or that none was found.
    public static func resyncText(_ r: DissectionResync) -> String {
        switch (r.offset, r.gapEnd == 0) {
        case (let at?, true):
            "frames start at byte \(at): the \(r.skipped) bytes before it passed over (the end of a frame sent before the capture began, or of a handshake head cut short)"
        case (nil, true):
            "no frame start found in the \(r.skipped) bytes captured (the connection was already open, or its handshake head was cut short); passed over"
        case (let at?, false):
            "resynchronised: frames start again at byte \(at), \(r.skipped) bytes after the gap passed over (the rest of a frame whose start was lost)"
        case (nil, false):
            "no frame start found in the \(r.skipped) bytes after the gap at byte \(r.gapEnd); passed over"
        }
    }

    public static func violationText(_ v: WebSocketViolation, style: TerminalStyle) -> String {
        style.red("error: \(v.rule.rawValue) at byte \(v.offset): \(TerminalText.safe(v.message)) (\(v.rule.section); a peer closes with \(v.closeCode.code))")
    }

    /// `hexdump -C`-style lines: offset, 16 bytes of hex, printable ASCII.
    public static func hexLines(_ bytes: [UInt8], indent: String) -> [String] {
        bytes.withUnsafeBytes { hexLines($0, indent: indent) }
    }

    public static func hexLines(_ bytes: UnsafeRawBufferPointer, indent: String) -> [String] {
        var lines: [String] = []
        lines.reserveCapacity((bytes.count + 15) / 16)
        var line = OutputBuffer(capacity: indent.utf8.count + 96)
        var i = 0
        while i < bytes.count {
            line.removeAll()
            line.append(contentsOf: indent)
            writeHexRow(bytes, at: i, to: &line)
            lines.append(line.makeString())
            i += 16
        }
        return lines
    }

    /// The `hexLines` line for the 16 bytes (or fewer, at the end) of `bytes` from `i`, without its
    /// indent or a newline.
    static func writeHexRow(_ bytes: UnsafeRawBufferPointer, at i: Int, to line: inout OutputBuffer) {
        let row = UnsafeRawBufferPointer(rebasing: bytes[i..<min(i + 16, bytes.count)])
        // The offset in lower-case hex, at least 4 digits.
        var digits = 4
        while digits < 16 && i >> (4 * digits) != 0 { digits += 1 }
        for d in stride(from: digits - 1, through: 0, by: -1) {
            line.append(OutputBuffer.hexDigit(UInt8(truncatingIfNeeded: i >> (4 * d)) & 0xF))
        }
        line.append("  ")
        // 16 columns of "xx " with one more space after the eighth, then the printable bytes.
        for (j, b) in row.enumerated() {
            if j == 8 { line.append(UInt8(ascii: " ")) }
            line.append(OutputBuffer.hexDigit(b >> 4))
            line.append(OutputBuffer.hexDigit(b & 0xF))
            line.append(UInt8(ascii: " "))
        }
        let hexWidth = 3 * row.count + (row.count > 8 ? 1 : 0)
        for _ in hexWidth..<49 { line.append(UInt8(ascii: " ")) }
        line.append(UInt8(ascii: "|"))
        for b in row { line.append(b >= 0x20 && b < 0x7F ? b : UInt8(ascii: ".")) }
        line.append(UInt8(ascii: "|"))
    }

    // MARK: Text from the bytes

    /// `text(f, style:, prefix:)` and a newline, written into `out` from the record's bytes, with
    /// `suffix` at the end of its first line. `prefix` writes what starts the first line; the
    /// others start with a copy of it. False, with nothing written, for a frame left to `text`:
    /// one with violations, a close frame, one the capture ended in, or one whose text is not
    /// whole UTF-8 free of what a terminal needs escaped beyond JSON (see `TerminalText.quoted`).
    public static func writeText(_ f: FrameRecordView, style: TerminalStyle, suffix: String?, to out: inout OutputBuffer,
                                 prefix: (inout OutputBuffer) -> Void) -> Bool {
        guard f.violations.isEmpty, f.borrowedClose == nil, !f.incomplete else { return false }
        if let text = f.text, !isPlainText(text) { return false }
        let h = f.header
        let lineStart = writeHead(&out, style, prefix, "frame ", f.index, f.offset, opcode: h.opcode, colour: "36")
        out.append(" ")
        // The flags there are, one space between them.
        var flags = 0
        for (on, name) in [(h.fin, "FIN" as StaticString), (h.rsv1, "RSV1"), (h.rsv2, "RSV2"), (h.rsv3, "RSV3")] where on {
            if flags > 0 { out.append(" ") }
            out.append(name)
            flags += 1
        }
        if let key = h.maskingKey {
            out.append(" mask=")
            out.appendHex(packed: key.packed)
        }
        out.append(" len=")
        out.append(decimal: h.payloadLength)
        out.append(" hdr=")
        out.append(decimal: h.headerLength)
        finishFirstLine(&out, suffix)
        let cut = f.payloadTruncated ? "\(h.payloadLength) bytes in all; --full shows all" : nil
        writePayloadLines(text: f.text, bytes: f.payload, cut: cut, style: style, lineStart: lineStart, to: &out)
        return true
    }

    /// `text(m, style:, prefix:)` written as `writeText` writes a frame's. False, with nothing
    /// written, for a message left to `text`: one with violations, an incomplete one, one whose
    /// text was cut inside a character or holds one a terminal needs escaped beyond JSON, or whose
    /// envelope is invalid or has a type or correlation id with a character to escape.
    public static func writeText(_ m: MessageRecordView, style: TerminalStyle, suffix: String?, to out: inout OutputBuffer,
                                 prefix: (inout OutputBuffer) -> Void) -> Bool {
        guard m.violations.isEmpty, !m.incomplete, !m.textEndsInsideCharacter else { return false }
        // (A message's text is valid UTF-8 ending with a whole character, the view promises: only
        // the escapes beyond JSON are looked for.)
        if let text = m.text, TerminalText.needsEscapeBeyondJSON(text) { return false }
        let envelope = m.borrowedEnvelope
        if let e = envelope?.pointee {
            guard e.error == nil, !TerminalText.needsEscape(e.type), !(e.correlationID.map(TerminalText.needsEscape) ?? false),
                  !(e.messageID.map(TerminalText.needsEscape) ?? false), !(e.clientID.map(TerminalText.needsEscape) ?? false)
            else { return false }
        }
        let lineStart = writeHead(&out, style, prefix, "message ", m.index, m.offset, opcode: m.opcode, colour: "32")
        out.append(" ")
        out.append(decimal: m.dataLength)
        out.append(" bytes")
        if m.fragmentCount == 1 {
            out.append(", 1 fragment")
        } else {
            out.append(", ")
            out.append(decimal: m.fragmentCount)
            out.append(" fragments")
        }
        if m.compressed {
            out.append(", deflated ")
            out.append(decimal: m.length)
            out.append(" → ")
            out.append(decimal: m.dataLength)
        }
        if m.envelopeUnchecked {
            styled(&out, style, "2") { $0.append(", not held whole (--max-message-memory): envelope not checked") }
        }
        finishFirstLine(&out, suffix)
        if let e = envelope?.pointee {
            out.appendCopy(of: lineStart)
            out.append("  envelope type=")
            out.append(contentsOf: e.type)
            if let id = e.correlationID {
                out.append(" correlation_id=")
                out.append(contentsOf: id)
            }
            if let id = e.messageID {
                out.append(" message_id=")
                out.append(contentsOf: id)
            }
            if let id = e.clientID {
                out.append(" client_id=")
                out.append(contentsOf: id)
            }
            out.append(0x0A)
        }
        let cut = m.dataTruncated ? "\(m.dataLength) bytes in all; --full shows all" : nil
        writePayloadLines(text: m.text, bytes: m.data, cut: cut, style: style, lineStart: lineStart, to: &out)
        return true
    }

    /// A record's first line up to its opcode's name: the prefix, `kind` and `index` in bold, `@`
    /// and `offset`, the name in `colour`. Returns where the prefix lies, for the other lines.
    private static func writeHead(_ out: inout OutputBuffer, _ style: TerminalStyle, _ prefix: (inout OutputBuffer) -> Void,
                                  _ kind: StaticString, _ index: Int, _ offset: Int, opcode: WebSocketOpcode,
                                  colour: StaticString) -> Range<Int> {
        let start = out.count
        prefix(&out)
        let lineStart = start..<out.count
        styled(&out, style, "1") {
            $0.append(kind)
            $0.append(decimal: index)
        }
        out.append(" @")
        out.append(decimal: offset)
        out.append(" ")
        styled(&out, style, colour) { $0.append(contentsOf: opcode.name) }
        return lineStart
    }

    /// Valid UTF-8 that ends with a whole character and has none that `TerminalText.quoted`
    /// escapes beyond JSON's escaping: quoted, it is its bytes JSON-escaped in quotes. (A frame's
    /// text is checked whole: cut at --max-payload, it may end inside a character.)
    private static func isPlainText(_ text: UnsafeRawBufferPointer) -> Bool {
        WebSocketUTF8Validator.firstInvalidIndex(text) == nil && !TerminalText.needsEscapeBeyondJSON(text)
    }

    /// `body`'s bytes, in `style`'s colour `code`.
    private static func styled(_ out: inout OutputBuffer, _ style: TerminalStyle, _ code: StaticString,
                               _ body: (inout OutputBuffer) -> Void) {
        if style.enabled {
            out.append("\u{1B}[")
            out.append(code)
            out.append("m")
        }
        body(&out)
        if style.enabled { out.append("\u{1B}[0m") }
    }

    private static func finishFirstLine(_ out: inout OutputBuffer, _ suffix: String?) {
        if let suffix { out.append(contentsOf: suffix) }
        out.append(0x0A)
    }

    /// A record's payload lines: its text quoted, or its bytes in hex rows, then what `cut` says
    /// when it was shown cut. Each line starts with a copy of the first line's start, indented.
    private static func writePayloadLines(text: UnsafeRawBufferPointer?, bytes: UnsafeRawBufferPointer, cut: String?,
                                          style: TerminalStyle, lineStart: Range<Int>, to out: inout OutputBuffer) {
        if let text {
            out.appendCopy(of: lineStart)
            out.append("  \"")
            out.appendJSONEscaped(text)
            out.append("\"")
            if let cut { styled(&out, style, "2") { $0.append(contentsOf: " … (\(cut))") } }
            out.append(0x0A)
        } else if !bytes.isEmpty {
            var i = 0
            while i < bytes.count {
                out.appendCopy(of: lineStart)
                out.append("  ")
                writeHexRow(bytes, at: i, to: &out)
                out.append(0x0A)
                i += 16
            }
            if let cut {
                out.appendCopy(of: lineStart)
                out.append("  ")
                styled(&out, style, "2") { $0.append(contentsOf: "… \(cut)") }
                out.append(0x0A)
            }
        }
    }
}
