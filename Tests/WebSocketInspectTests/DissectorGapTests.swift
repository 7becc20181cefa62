import Testing
import WebSocketCodec
import WebSocketCompression
@testable import WebSocketInspect

/// Bytes lost in a capture gap (`skip`): what is whole is reported whole, what lost bytes is
/// reported incomplete, and what the loss explains is not called a protocol violation.
@Suite("Stream dissector after a gap")
struct DissectorGapTests {
    enum Part {
        case bytes([UInt8])
        case gap(Int)
    }

    struct Seen {
        var frames: [FrameRecord] = []
        var messages: [MessageRecord] = []
        var violations: [WebSocketViolation.Rule] {
            frames.flatMap { $0.violations.map(\.rule) } + messages.flatMap { $0.violations.map(\.rule) }
        }
        /// Each message as `text|binary length text-or-dash incomplete?`.
        var summary: [String] {
            messages.map { m in
                "\(m.opcode.name) \(m.dataLength) \(m.text ?? "-")\(m.incomplete ? " incomplete" : "")"
            }
        }
    }

    static func run(_ parts: [Part], config: WebSocketDissectorConfiguration = .init(maxPayloadShown: nil),
                    direction: WebSocketDirection = .clientToServer) -> Seen {
        var d = WebSocketStreamDissector(configuration: config, direction: direction)
        var seen = Seen()
        let collect: (DissectionEvent) -> Void = { event in
            switch event {
            case .frame(let f): seen.frames.append(f)
            case .message(let m): seen.messages.append(m)
            }
        }
        for part in parts {
            switch part {
            case .bytes(let b): d.feed(b, collect)
            case .gap(let n): d.skip(n, collect)
            }
        }
        return seen
    }

    static let key = WebSocketMaskingKey(9, 8, 7, 6)

    static func text(_ s: String) -> [UInt8] {
        WebSocketFrameEncoder.encode(.text(s, maskingKey: key))
    }

    static func frame(_ opcode: WebSocketOpcode, _ s: String, fin: Bool, rsv1: Bool = false) -> [UInt8] {
        WebSocketFrameEncoder.encode(WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskingKey: key, payload: Array(s.utf8)))
    }

    /// A whole message lost between two others (the usual loss: a segment held whole frames): the
    /// one after it is whole, with its text.
    @Test func messageAfterABoundaryGapIsWhole() {
        let lost = Self.text("two")
        let seen = Self.run([.bytes(Self.text("one")), .gap(lost.count), .bytes(Self.text("three"))])
        #expect(seen.summary == ["text 3 one", "text 5 three"])
        #expect(seen.violations.isEmpty)
    }

    /// The gap took the end of a fragmented message (its last fragment) and the start of the next:
    /// the message after it is whole and there is no "new message inside a fragmented one".
    @Test func gapThatTookAMessagesEnd() {
        let first = Self.frame(.text, "abc", fin: false)
        let lost = Self.frame(.continuation, "def", fin: true) + Self.text("lost")
        let seen = Self.run([.bytes(first), .gap(lost.count), .bytes(Self.text("after"))])
        #expect(seen.summary == ["text 5 after"])
        #expect(seen.violations.isEmpty, "\(seen.violations)")
    }

    /// The gap took a middle fragment: the message is reported incomplete (its content is short),
    /// the one after it is whole.
    @Test func gapInsideAFragmentedMessage() {
        let parts = [Self.frame(.text, "abc", fin: false), Self.frame(.continuation, "def", fin: false),
                     Self.frame(.continuation, "ghi", fin: true)]
        let seen = Self.run([.bytes(parts[0]), .gap(parts[1].count), .bytes(parts[2] + Self.text("after"))])
        #expect(seen.summary == ["text 6 - incomplete", "text 5 after"])
        #expect(seen.violations.isEmpty, "\(seen.violations)")
    }

    /// The gap took a message's first fragment: its continuations are the capture's loss, not a
    /// peer's violation, and the message after them is whole.
    @Test func gapThatTookAFirstFragment() {
        let parts = [Self.frame(.text, "abc", fin: false), Self.frame(.continuation, "def", fin: false),
                     Self.frame(.continuation, "ghi", fin: true)]
        let seen = Self.run([.bytes(Self.text("before")), .gap(parts[0].count), .bytes(parts[1] + parts[2] + Self.text("after"))])
        #expect(seen.summary == ["text 6 before", "text 5 after"])
        #expect(seen.violations.isEmpty, "\(seen.violations)")
        #expect(seen.frames.count == 4)
    }

    /// A continuation without a start with no gap before it is still a violation.
    @Test func continuationWithoutAGapIsStillAViolation() {
        let seen = Self.run([.bytes(Self.text("before") + Self.frame(.continuation, "def", fin: true) + Self.text("after"))])
        #expect(seen.violations == [.continuationWithoutStart])
    }

    /// Bytes lost inside a ping's payload (filled with zeros, the frame boundary kept): the ping is
    /// damaged, the text message after it is not.
    @Test func gapInsideAControlFrame() {
        let ping = WebSocketFrameEncoder.encode(.ping(Array("0123456789".utf8), maskingKey: Self.key))
        let header = ping.count - 10
        let seen = Self.run([.bytes(Array(ping[..<(header + 3)])), .gap(4), .bytes(Array(ping[(header + 7)...]) + Self.text("after"))])
        #expect(seen.frames.count == 2)
        #expect(seen.frames.first?.header.opcode == .ping)
        #expect(seen.summary == ["text 5 after"])
    }

    /// Bytes lost inside a text frame's payload: that message is incomplete, the next is whole.
    @Test func gapInsideAFramePayload() {
        let frame = Self.text("0123456789")
        let header = frame.count - 10
        let seen = Self.run([.bytes(Array(frame[..<(header + 3)])), .gap(4), .bytes(Array(frame[(header + 7)...]) + Self.text("after"))])
        #expect(seen.summary == ["text 10 - incomplete", "text 5 after"])
        #expect(seen.violations.isEmpty, "\(seen.violations)")
    }

    static func compressed(_ compressor: PerMessageDeflateCompressor, _ s: String) -> [UInt8] {
        WebSocketFrameEncoder.encode(WebSocketFrame(rsv1: true, opcode: .text, maskingKey: key, payload: compressor.compress(Array(s.utf8))))
    }

    /// permessage-deflate with context takeover: a lost compressed message takes part of the
    /// window with it, so every later compressed message is inflated without its full history and
    /// is reported incomplete; an uncompressed message after the gap is whole.
    @Test func compressedMessagesAfterAGapWithContextTakeover() {
        let compressor = PerMessageDeflateCompressor()
        let sentence = "the quick brown fox jumps over the lazy dog, "
        let one = Self.compressed(compressor, sentence + "one")
        let lost = Self.compressed(compressor, sentence + "two")
        let three = Self.compressed(compressor, sentence + "three")
        let four = Self.compressed(compressor, sentence + "four")
        let config = WebSocketDissectorConfiguration(maxPayloadShown: nil, deflate: .on)
        let seen = Self.run([.bytes(one), .gap(lost.count), .bytes(three + Self.text("plain") + four)], config: config)
        #expect(seen.messages.map(\.incomplete) == [false, true, false, true])
        #expect(seen.messages.first?.text == sentence + "one")
        #expect(seen.messages[2].text == "plain")
        #expect(seen.violations.isEmpty, "\(seen.violations)")
    }

    /// Without context takeover each compressed message stands alone: the ones after a gap are whole.
    @Test func compressedMessagesAfterAGapWithoutContextTakeover() {
        let compressor = PerMessageDeflateCompressor(PerMessageDeflateDirection(noContextTakeover: true))
        let one = Self.compressed(compressor, "one one one")
        let lost = Self.compressed(compressor, "two two two")
        let three = Self.compressed(compressor, "three three three")
        let config = WebSocketDissectorConfiguration(maxPayloadShown: nil, deflate: .on, clientNoContextTakeover: true)
        let seen = Self.run([.bytes(one), .gap(lost.count), .bytes(three)], config: config)
        #expect(seen.summary == ["text 11 one one one", "text 17 three three three"])
        // The other direction's agreement does not apply to this one.
        let server = Self.run([.bytes(one), .gap(lost.count), .bytes(three)], config: config, direction: .serverToClient)
        #expect(server.messages.map(\.incomplete) == [false, true])
    }
}
