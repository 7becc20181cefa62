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

    /// Both renderings of one record: what `write` put into a buffer after a line already there
    /// (nil when it left the record to `text`, having written nothing), and what `text` says,
    /// with the suffix and a newline.
    static func both(_ write: (inout OutputBuffer, (inout OutputBuffer) -> Void) -> Bool, text: String,
                     suffix: String?) -> (bytes: String?, text: String) {
        var out = OutputBuffer()
        out.append("before\n")
        let written = write(&out) { $0.append(contentsOf: prefix) }
        let result = out.makeString()
        if !written { #expect(result == "before\n", "nothing written when the String path is left to") }
        return (written ? String(result.dropFirst("before\n".count)) : nil, appending(text, suffix) + "\n")
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
            for colour in [false, true] {
                payload.withUnsafeBytes { bytes in
                    violations.withUnsafeBufferPointer { v in
                        withOptionalPointer(close) { closePointer in
                            let f = FrameRecordView(
                                index: n, header: header, offset: n * 37, payload: bytes, payloadTruncated: cut,
                                text: isText ? bytes : nil, close: closePointer, violations: v, incomplete: incomplete)
                            let style = TerminalStyle(enabled: colour)
                            let (written, expected) = Self.both(
                                { DissectionRenderer.writeText(f, style: style, suffix: suffix, to: &$0, prefix: $1) },
                                text: DissectionRenderer.text(f, style: style, prefix: Self.prefix), suffix: suffix)
                            if let written {
                                byBytes += 1
                                #expect(written == expected, "seed \(seed) frame \(n)")
                            }
                        }
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
            for colour in [false, true] {
                data.withUnsafeBytes { bytes in
                    violations.withUnsafeBufferPointer { v in
                        withOptionalPointer(envelope) { e in
                            let m = MessageRecordView(
                                index: n, opcode: isText ? .text : .binary, offset: n * 41, endOffset: n * 41 + 99,
                                length: compressed ? dataLength / 2 + 1 : dataLength, fragmentCount: fragments,
                                compressed: compressed, data: bytes, dataLength: dataLength, dataTruncated: cut,
                                text: isText ? bytes : nil, textEndsInsideCharacter: endsInside, envelope: e, violations: v,
                                incomplete: incomplete, envelopeUnchecked: unchecked)
                            let style = TerminalStyle(enabled: colour)
                            let (written, expected) = Self.both(
                                { DissectionRenderer.writeText(m, style: style, suffix: suffix, to: &$0, prefix: $1) },
                                text: DissectionRenderer.text(m, style: style, prefix: Self.prefix), suffix: suffix)
                            if let written {
                                byBytes += 1
                                #expect(written == expected, "seed \(seed) message \(n)")
                            }
                        }
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
