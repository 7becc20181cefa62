import Testing
import WebSocketCodec
import WebSocketCompression
@testable import WebSocketInspect

/// The dissector must give the same records however the stream is cut: whole, in random pieces,
/// one byte at a time.
@Suite("Stream dissector")
struct DissectorTests {

    /// A rendering of every record that captures what a user sees.
    static func transcript(_ bytes: [UInt8], cuts: [Int], config: WebSocketDissectorConfiguration = .init(maxPayloadShown: nil),
                           direction: WebSocketDirection? = nil) -> [String] {
        var d = WebSocketStreamDissector(configuration: config, direction: direction)
        var out: [String] = []
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            d.feed(Array(bytes[start..<end])) { event in
                switch event {
                case .frame(let f): out.append(DissectionRenderer.json(f))
                case .message(let m): out.append(DissectionRenderer.json(m))
                case .resync(let r): Issue.record("resync without a gap: \(r)")
                }
            }
            start = end
        }
        if let p = d.pendingFrame { out.append("pending \(p.offset) \(p.received) \(p.missing)") }
        return out
    }

    static func stream() -> [UInt8] {
        var g = Seeded(state: 7)
        var out: [UInt8] = []
        let key = WebSocketMaskingKey(1, 2, 3, 4)
        out += WebSocketFrameEncoder.encode(.text("Hello", maskingKey: key))
        out += WebSocketFrameEncoder.fragment(opcode: .text, payload: Array("κόσμε, fragmented".utf8), fragmentSize: 3, nextKey: { key })
            .flatMap { WebSocketFrameEncoder.encode($0) }
        out += WebSocketFrameEncoder.encode(.ping(Array("p".utf8), maskingKey: key))
        out += WebSocketFrameEncoder.encode(.binary((0..<70_000).map { _ in UInt8.random(in: 0...255, using: &g) }, maskingKey: key))
        let compressor = PerMessageDeflateCompressor()
        out += WebSocketFrameEncoder.encode(WebSocketFrame(rsv1: true, opcode: .text, maskingKey: key, payload: compressor.compress(Array("squeeze me squeeze me".utf8))))
        out += WebSocketFrameEncoder.encode(WebSocketFrame(rsv1: true, opcode: .text, maskingKey: key, payload: compressor.compress(Array("squeeze me squeeze me".utf8))))
        out += WebSocketFrameEncoder.encode(.text(#"{"type":"ping","metadata":{"correlation_id":"c1"}}"#, maskingKey: key))
        out += [0x81, 0x82] + key.bytes + [0xED ^ 1, 0xA0 ^ 2]  // invalid UTF-8 (a surrogate)
        out += WebSocketFrameEncoder.encode(.close(code: .normalClosure, reason: "bye", maskingKey: key))
        out += [0x81, 0x85, 1, 2]  // cut inside the masking key of a last frame
        return out
    }

    @Test func sameRecordsUnderEveryChunking() {
        let bytes = Self.stream()
        let whole = Self.transcript(bytes, cuts: [])
        #expect(whole.count > 10)
        #expect(whole.last == "pending \(bytes.count - 4) 4 \(2 + 5)")
        #expect(Self.transcript(bytes, cuts: Array(1..<bytes.count)) == whole)
        var g = Seeded(state: 99)
        for _ in 0..<20 {
            var cuts: [Int] = []
            var at = 0
            while at < bytes.count {
                at += Int.random(in: 1...2000, using: &g)
                if at < bytes.count { cuts.append(at) }
            }
            #expect(Self.transcript(bytes, cuts: cuts) == whole)
        }
    }

    @Test func recordsCarryWhatWasSent() {
        var messages: [MessageRecord] = []
        var frames: [FrameRecord] = []
        var d = WebSocketStreamDissector(configuration: .init(maxPayloadShown: nil), direction: .clientToServer)
        d.feed(Self.stream()) { event in
            switch event {
            case .frame(let f): frames.append(f)
            case .message(let m): messages.append(m)
            case .resync(let r): Issue.record("resync without a gap: \(r)")
            }
        }
        #expect(messages.map(\.text) == ["Hello", "κόσμε, fragmented", nil, "squeeze me squeeze me", "squeeze me squeeze me",
                                         #"{"type":"ping","metadata":{"correlation_id":"c1"}}"#, nil])
        #expect(messages[1].fragmentCount == 8)  // 22 UTF-8 bytes in 3-byte fragments
        #expect(messages[2].dataLength == 70_000)
        #expect(messages[3].compressed && messages[4].compressed)
        #expect(messages[5].envelope?.type == "ping")
        #expect(messages[5].envelope?.correlationID == "c1")
        let bad = frames.first { !$0.violations.isEmpty }
        #expect(bad?.violations.first?.rule == .invalidUTF8)
        #expect(frames.last?.close?.code == .normalClosure)
        #expect(frames.last?.close?.reason == "bye")
        let allMasked = frames.allSatisfy { $0.header.masked }
        #expect(allMasked, "\(frames.map(\.header.masked))")
    }

    @Test func capturedBytesAreNotModified() {
        let bytes = Self.stream()
        let copy = bytes
        var d = WebSocketStreamDissector()
        bytes.withUnsafeBytes { raw in d.feed(raw) { _ in } }
        #expect(bytes == copy)
    }

    @Test func payloadShownIsBounded() {
        var d = WebSocketStreamDissector(configuration: .init(maxPayloadShown: 16))
        var frames: [FrameRecord] = []
        d.feed(WebSocketFrameEncoder.encode(.binary([UInt8](repeating: 7, count: 5 << 20)))) { if case .frame(let f) = $0 { frames.append(f) } }
        #expect(frames.count == 1)
        #expect(frames[0].payload.count == 16)
        #expect(frames[0].payloadTruncated)
        #expect(frames[0].header.payloadLength == 5 << 20)
    }

    @Test func inflateBombIsStoppedAtTheLimit() {
        // 8 MiB of zeros deflates to a few KiB; with a 1 MiB limit the message must be refused.
        let compressed = PerMessageDeflateCompressor().compress([UInt8](repeating: 0, count: 8 << 20))
        #expect(compressed.count < 64 << 10)
        var d = WebSocketStreamDissector(configuration: .init(maxInflatedSize: 1 << 20))
        var messages: [MessageRecord] = []
        d.feed(WebSocketFrameEncoder.encode(WebSocketFrame(rsv1: true, opcode: .binary, payload: compressed))) {
            if case .message(let m) = $0 { messages.append(m) }
        }
        #expect(messages.first?.violations.first?.rule == .inflatedTooLarge)
        #expect(messages.first?.violations.first?.closeCode == .messageTooBig)
    }

    /// Hostile input: random bytes and random mutations of a valid stream, every chunking. The
    /// dissector must end every run (no crash, no hang) with memory bounded by its limits.
    @Test func randomAndMutatedInputNeverCrashes() {
        var g = Seeded(state: 2024)
        let valid = Self.stream()
        for round in 0..<300 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...4096, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            } else {
                bytes = Array(valid.prefix(Int.random(in: 0...valid.count, using: &g)))
                for _ in 0..<Int.random(in: 1...20, using: &g) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
                }
            }
            let config = WebSocketDissectorConfiguration(
                parser: .init(maxFrameSize: 1 << 20), assembler: .init(maxMessageSize: 1 << 20), maxPayloadShown: 64,
                maxInflatedSize: 1 << 20)
            var d = WebSocketStreamDissector(configuration: config, direction: round % 3 == 0 ? .clientToServer : nil)
            var events = 0
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...512, using: &g))
                d.feed(Array(bytes[start..<end])) { _ in events += 1 }
                start = end
            }
            #expect(d.bytesFed == bytes.count)
            #expect(events <= bytes.count)  // each record needs at least the 2 header bytes of a frame
        }
    }
}
