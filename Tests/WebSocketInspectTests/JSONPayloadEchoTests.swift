import Testing
import WebSocketCodec
import WebSocketCompression
@testable import WebSocketInspect

/// `JSONPayloadEcho`: a message line that copies its frame line's `text` and `payload_hex` is the
/// line written without the copy, byte for byte, whatever the stream, the limit on what is shown
/// and where the output buffer is emptied.
@Suite("JSON payload echo")
struct JSONPayloadEchoTests {
    /// Text that needs every kind of escape, multi-byte characters to cut, and plain ASCII.
    static let alphabet: [String] = ["a", "b", " ", "\"", "\\", "\n", "\t", "\u{01}", "é", "日", "🙂", "—", "{", "}"]

    /// A stream of messages a sniffer meets: whole text and binary frames (often repeating an
    /// earlier payload), fragmented ones, control frames in between, invalid UTF-8 and
    /// compressed messages.
    static func stream(_ g: inout Seeded) -> [UInt8] {
        var out: [UInt8] = []
        var earlier: [[UInt8]] = [[]]
        let compressor = PerMessageDeflateCompressor()
        for _ in 0..<120 {
            let key: WebSocketMaskingKey? = Bool.random(using: &g) ? WebSocketMaskingKey(UInt8.random(in: 0...255, using: &g), 2, 3, 4) : nil
            var payload: [UInt8]
            let kind = Int.random(in: 0..<10, using: &g)
            if kind < 2, let again = earlier.randomElement(using: &g) {
                payload = again
            } else if kind < 6 {
                let n = Int.random(in: 0...40, using: &g)
                payload = Array((0..<n).map { _ in alphabet.randomElement(using: &g)! }.joined().utf8)
            } else {
                payload = (0..<Int.random(in: 0...300, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            }
            earlier.append(payload)
            let isText = kind < 6 || Bool.random(using: &g)  // random bytes sent as text: invalid UTF-8, mostly
            let opcode: WebSocketOpcode = isText ? .text : .binary
            switch Int.random(in: 0..<8, using: &g) {
            case 0:
                out += WebSocketFrameEncoder.fragment(opcode: opcode, payload: payload, fragmentSize: max(1, payload.count / 3),
                                                      nextKey: key.map { k in { k } }).flatMap { WebSocketFrameEncoder.encode($0) }
            case 1:
                out += WebSocketFrameEncoder.encode(WebSocketFrame(rsv1: true, opcode: opcode, maskingKey: key,
                                                                   payload: compressor.compress(payload)))
            case 2:
                out += WebSocketFrameEncoder.encode(.ping(Array(payload.prefix(125)), maskingKey: key))
                out += WebSocketFrameEncoder.encode(WebSocketFrame(opcode: opcode, maskingKey: key, payload: payload))
            default:
                out += WebSocketFrameEncoder.encode(WebSocketFrame(opcode: opcode, maskingKey: key, payload: payload))
            }
        }
        return out
    }

    /// The JSON lines of every event, written into one buffer (emptied now and then, as the
    /// command's output is when it is flushed), with or without an echo.
    static func lines(_ bytes: [UInt8], limit: Int?, echo: JSONPayloadEcho?, clearEvery: Int, cuts: [Int]) -> [String] {
        var d = WebSocketStreamDissector(configuration: .init(maxPayloadShown: limit, deflate: .on), direction: nil)
        var out = OutputBuffer()
        var lines: [String] = []
        var written = 0
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            Array(bytes[start..<end]).withUnsafeBytes { raw in
                d.feedViews(raw) { event in
                    let before = out.count
                    switch event {
                    case .frame(let lent):
                        let f = lent.pointee
                        DissectionRenderer.writeJSON(f, to: &out, echo: echo)
                    case .message(let lent):
                        let m = lent.pointee
                        DissectionRenderer.writeJSON(m, to: &out, echo: echo)
                    case .resync: Issue.record("resync without a gap")
                    }
                    lines.append(out.withBytes { String(decoding: $0[before...], as: UTF8.self) })
                    written += 1
                    if clearEvery > 0 && written % clearEvery == 0 { out.removeAll() }
                }
            }
            start = end
        }
        return lines
    }

    @Test func echoedLinesAreTheLinesWrittenWithout() {
        var g = Seeded(state: 2026)
        var echoedMessages = 0
        for round in 0..<6 {
            let bytes = Self.stream(&g)
            var cuts: [Int] = []
            var at = 0
            while round.isMultiple(of: 2) && at < bytes.count {
                at += Int.random(in: 1...200, using: &g)
                if at < bytes.count { cuts.append(at) }
            }
            for limit in [nil, 0, 1, 5, 16, 256] as [Int?] {
                for clearEvery in [0, 1, 2, 3, 7] {
                    let plain = Self.lines(bytes, limit: limit, echo: nil, clearEvery: clearEvery, cuts: cuts)
                    let echo = JSONPayloadEcho()
                    let echoed = Self.lines(bytes, limit: limit, echo: echo, clearEvery: clearEvery, cuts: cuts)
                    #expect(echoed.count == plain.count)
                    for (i, (a, b)) in zip(echoed, plain).enumerated() where a != b {
                        Issue.record("round \(round), limit \(limit.map(String.init) ?? "none"), cleared every \(clearEvery): line \(i)\n\(a)\n\(b)")
                        break
                    }
                    echoedMessages += plain.count
                }
            }
        }
        #expect(echoedMessages > 10_000)
    }

    /// The copy is taken only for the very bytes remembered, while the buffer still holds them.
    @Test func matchesOnlyTheSameBytesInTheSameBuffer() {
        let payload = Array("say \"hi\" — 日本".utf8)
        let frame = WebSocketFrameEncoder.encode(.text(String(decoding: payload, as: UTF8.self)))
        var d = WebSocketStreamDissector()
        var out = OutputBuffer()
        let echo = JSONPayloadEcho()
        var sawMessage = false
        frame.withUnsafeBytes { raw in
            d.feedViews(raw) { event in
                switch event {
                case .frame(let lent):
                    let f = lent.pointee
                    DissectionRenderer.writeJSON(f, to: &out, echo: echo)
                    #expect(echo.textRange != nil)
                case .message(let lent):
                    let m = lent.pointee
                    sawMessage = true
                    let same = echo.matches(m.data, in: out)
                    #expect(same)
                    var other = payload
                    other[0] ^= 1
                    let changed = other.withUnsafeBytes { echo.matches($0, in: out) }
                    #expect(!changed)
                    let shorter = payload.dropLast().withUnsafeBytes { echo.matches(UnsafeRawBufferPointer($0), in: out) }
                    #expect(!shorter)
                    // The line written with the copy is the line written without it.
                    var plain = OutputBuffer()
                    DissectionRenderer.writeJSON(m, to: &plain)
                    let start = out.count
                    DissectionRenderer.writeJSON(m, to: &out, echo: echo)
                    #expect(out.withBytes { String(decoding: $0[start...], as: UTF8.self) } == plain.makeString())
                    out.removeAll()
                    let afterClear = echo.matches(m.data, in: out)
                    #expect(!afterClear)
                case .resync:
                    Issue.record("resync without a gap")
                }
            }
        }
        #expect(sawMessage)
    }

    /// A binary frame is remembered without text; a control frame or a compressed one is not
    /// remembered at all.
    @Test func remembersOnlyFramesThatCanBeAMessageOnTheirOwn() {
        let cases: [(frame: WebSocketFrame, remembered: Bool, text: Bool)] = [
            (.text("abc"), true, true),
            (.binary([1, 2, 3]), true, false),
            (.ping([1, 2, 3]), false, false),
            (.text("abc", fin: false), false, false),
            (WebSocketFrame(rsv1: true, opcode: .text, payload: PerMessageDeflateCompressor().compress(Array("abc".utf8))), false, false),
        ]
        for c in cases {
            var d = WebSocketStreamDissector(configuration: .init(deflate: .on))
            var out = OutputBuffer()
            let echo = JSONPayloadEcho()
            WebSocketFrameEncoder.encode(c.frame).withUnsafeBytes { raw in
                d.feedViews(raw) { event in
                    guard case .frame(let lent) = event else { return }
                    let f = lent.pointee
                    DissectionRenderer.writeJSON(f, to: &out, echo: echo)
                    let remembered = echo.matches(f.payload, in: out)
                    #expect(remembered == c.remembered, "\(c.frame.opcode) fin \(c.frame.fin) rsv1 \(c.frame.rsv1)")
                    if c.remembered { #expect((echo.textRange != nil) == c.text) }
                }
            }
        }
    }
}
