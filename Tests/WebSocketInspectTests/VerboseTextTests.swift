import Testing
import WebSocketCodec
@testable import WebSocketInspect

/// `sniff -v` writes frame and message records from their bytes (`DissectionRenderer.writeText`)
/// and leaves some to the String renderer (`DissectionRenderer.text`). Whatever it writes must be
/// what `text` says, with its prefix on every line and its suffix on the first: random records
/// (texts of every kind of character, cut or whole, binaries, masks, flags, fragments, deflate,
/// envelopes, violations, close frames, incomplete ones) are written both ways, with and without
/// colour, and compared; the byte path must also take the usual records, not leave them all to
/// `text`.
@Suite("Verbose text from the bytes")
struct VerboseTextTests {
    static let prefix = "   1.000000 #3 C→S "

    /// Scalars of every kind the two paths treat differently: ASCII, quotes and backslashes,
    /// controls, DEL, C1, the bidirectional controls, combining marks, CJK, emoji.
    static let scalars: [UInt32] = [
        0x41, 0x7A, 0x20, 0x22, 0x5C, 0x2F, 0x0A, 0x09, 0x0D, 0x00, 0x1B, 0x7F, 0x85, 0x9F, 0xE9, 0x301, 0x61C,
        0x200E, 0x202E, 0x2066, 0x2014, 0x65E5, 0x1F642, 0xFFFD,
    ]

    static func randomText(_ random: inout Seeded, plain: Bool) -> [UInt8] {
        let count = Int.random(in: 0...40, using: &random)
        var s = ""
        for _ in 0..<count {
            // Mostly characters the byte path takes, so that it is exercised.
            let v = plain || Int.random(in: 0..<4, using: &random) > 0
                ? [0x41, 0x7A, 0x20, 0x22, 0x5C, 0x0A, 0xE9, 0x65E5, 0x1F642, 0x2014][Int.random(in: 0..<10, using: &random)]
                : scalars.randomElement(using: &random)!
            s.unicodeScalars.append(Unicode.Scalar(v)!)
        }
        return Array(s.utf8)
    }

    /// A text (two in three) or binary payload, cut short one time in four (at --max-payload).
    static func randomPayload(_ random: inout Seeded, _ n: Int) -> (isText: Bool, bytes: [UInt8], cut: Bool) {
        let isText = Int.random(in: 0..<3, using: &random) > 0
        var bytes = isText ? randomText(&random, plain: n % 3 == 0)
            : (0..<Int.random(in: 0...70, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        let cut = Int.random(in: 0..<4, using: &random) == 0 && !bytes.isEmpty
        if cut { bytes.removeLast(Int.random(in: 1...bytes.count, using: &random)) }
        return (isText, bytes, cut)
    }

    /// Writes the line prefix (`writeText` takes it as a function).
    static func writePrefix(_ out: inout OutputBuffer) { out.append(contentsOf: prefix) }

    /// One record written both ways, without colour and with it: `write` after a line already in
    /// the buffer (having written nothing when it leaves the record to `text`), and `text`, with
    /// the suffix and a newline. Each rendering the byte path takes must be what `text` says. How
    /// many of the two it took (0–2).
    static func expectTheSame(_ label: String, suffix: String?,
                              write: (TerminalStyle, inout OutputBuffer) -> Bool,
                              text: (TerminalStyle) -> String) -> Int {
        var taken = 0
        for colour in [false, true] {
            let style = TerminalStyle(enabled: colour)
            var out = OutputBuffer()
            out.append("before\n")
            let written = write(style, &out)
            let result = out.makeString()
            guard written else {
                #expect(result == "before\n", "nothing written when the String path is left to (\(label))")
                continue
            }
            taken += 1
            #expect(String(result.dropFirst("before\n".count)) == appending(text(style), suffix) + "\n", "\(label)")
        }
        return taken
    }

    /// `text` with `suffix` at the end of its first line, as `sniff -v` puts a round trip there.
    static func appending(_ text: String, _ suffix: String?) -> String {
        guard let suffix else { return text }
        guard let newline = text.firstIndex(of: "\n") else { return text + suffix }
        return text[..<newline] + suffix + text[newline...]
    }

    @Test(arguments: 1...4)
    func framesAsTheStringRendererWritesThem(seed: Int) {
        var random = Seeded(state: UInt64(seed))
        var byBytes = 0
        for n in 0..<3_000 {
            let (isText, payload, cut) = Self.randomPayload(&random, n)
            let length = UInt64(payload.count + (cut ? Int.random(in: 1...100_000, using: &random) : 0))
            let fin = Bool.random(using: &random)
            let rsv = UInt8.random(in: 0...7, using: &random) & (Int.random(in: 0..<4, using: &random) == 0 ? 7 : 0)
            let opcode: UInt8 = isText ? (Bool.random(using: &random) ? 1 : 0) : 2
            let masked = Bool.random(using: &random)
            let header = WebSocketFrameHeader(
                firstByte: (fin ? 0x80 : 0) | rsv << 4 | opcode, secondByte: masked ? 0x80 : 0,
                maskingKey: masked ? WebSocketMaskingKey(packed: UInt32.random(in: 0...UInt32.max, using: &random)) : nil,
                payloadLength: length, headerLength: Int.random(in: 2...14, using: &random))
            let violations = Int.random(in: 0..<20, using: &random) == 0
                ? [WebSocketViolation(.invalidUTF8, offset: 3, "bad \u{1B}[2J byte")] : []
            let close = Int.random(in: 0..<20, using: &random) == 0 ? WebSocketClosePayload(code: .normalClosure, reason: "bye") : nil
            let incomplete = Int.random(in: 0..<20, using: &random) == 0
            let suffix: String? = Int.random(in: 0..<5, using: &random) == 0 ? " rtt 1.250 ms" : nil
            payload.withUnsafeBytes { bytes in
                violations.withUnsafeBufferPointer { v in
                    withOptionalPointer(close) { closePointer in
                        let f = FrameRecordView(
                            index: n, header: header, offset: n * 37, payload: bytes, payloadTruncated: cut,
                            text: isText ? bytes : nil, close: closePointer, violations: v, incomplete: incomplete)
                        byBytes += Self.expectTheSame("seed \(seed) frame \(n)", suffix: suffix,
                            write: { DissectionRenderer.writeText(f, style: $0, suffix: suffix, to: &$1, prefix: Self.writePrefix) },
                            text: { DissectionRenderer.text(f, style: $0, prefix: Self.prefix) })
                    }
                }
            }
        }
        #expect(byBytes > 3_000)
    }

    @Test(arguments: 1...4)
    func messagesAsTheStringRendererWritesThem(seed: Int) {
        var random = Seeded(state: UInt64(seed))
        var byBytes = 0
        for n in 0..<3_000 {
            var (isText, data, cut) = Self.randomPayload(&random, n)
            // A cut inside a character leaves the text without it (the view's promise).
            var endsInside = false
            if isText, cut {
                while String(validating: data, as: UTF8.self) == nil {
                    data.removeLast()
                    endsInside = true
                }
            }
            let dataLength = data.count + (cut ? Int.random(in: 1...100_000, using: &random) : 0)
            let compressed = Bool.random(using: &random)
            var envelope: EnvelopeSummary? = nil
            switch Int.random(in: 0..<7, using: &random) {
            case 0: envelope = EnvelopeSummary(type: "tick", correlationID: nil)
            case 1: envelope = EnvelopeSummary(type: "quote\"d", correlationID: "r-\(n)")
            case 2: envelope = EnvelopeSummary(type: "esc\u{1B}", correlationID: "r-\(n)")
            case 3: envelope = EnvelopeSummary(type: "", correlationID: nil, error: "missing \"type\"")
            case 4: envelope = EnvelopeSummary(type: "tick", correlationID: "id\u{202E}x")
            default: break
            }
            let violations = Int.random(in: 0..<20, using: &random) == 0
                ? [WebSocketViolation(.invalidUTF8, offset: 3, "bad byte")] : []
            let suffix: String? = Int.random(in: 0..<5, using: &random) == 0 ? ", reply 0.500 ms" : nil
            let fragments = Int.random(in: 0..<4, using: &random) == 0 ? Int.random(in: 2...9, using: &random) : 1
            let incomplete = Int.random(in: 0..<20, using: &random) == 0
            let unchecked = Int.random(in: 0..<10, using: &random) == 0
            data.withUnsafeBytes { bytes in
                violations.withUnsafeBufferPointer { v in
                    withOptionalPointer(envelope) { e in
                        let m = MessageRecordView(
                            index: n, opcode: isText ? .text : .binary, offset: n * 41, endOffset: n * 41 + 99,
                            length: compressed ? dataLength / 2 + 1 : dataLength, fragmentCount: fragments,
                            compressed: compressed, data: bytes, dataLength: dataLength, dataTruncated: cut,
                            text: isText ? bytes : nil, textEndsInsideCharacter: endsInside, envelope: e, violations: v,
                            incomplete: incomplete, envelopeUnchecked: unchecked)
                        byBytes += Self.expectTheSame("seed \(seed) message \(n)", suffix: suffix,
                            write: { DissectionRenderer.writeText(m, style: $0, suffix: suffix, to: &$1, prefix: Self.writePrefix) },
                            text: { DissectionRenderer.text(m, style: $0, prefix: Self.prefix) })
                    }
                }
            }
        }
        // (Fewer than for frames: a third of the envelopes, and texts cut inside a character,
        // are left to `text`.)
        #expect(byBytes > 2_000)
    }
}

/// `body` with a pointer to a copy of `value`, or nil.
func withOptionalPointer<T, R>(_ value: T?, _ body: (UnsafePointer<T>?) -> R) -> R {
    guard var value else { return body(nil) }
    return withUnsafePointer(to: &value) { body($0) }
}
