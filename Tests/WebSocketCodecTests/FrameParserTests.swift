import Testing
@testable import WebSocketCodec

/// One of the examples of RFC 6455 §5.7, with what it must decode to.
struct RFCExample: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var frames: [WebSocketFrame]
    var headerLengths: [Int]
    /// The data message the frames make, if any.
    var message: (opcode: WebSocketOpcode, data: [UInt8], fragments: Int)?
    /// The control frame, if the example is one.
    var control: WebSocketOpcode?

    var testDescription: String { name }

    static let hello = Array("Hello".utf8)
    static let key = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)
    static let binary256 = Wire.pattern(256)
    static let binary64K = Wire.pattern(65536)

    static let all: [RFCExample] = [
        RFCExample(name: "single-frame unmasked text",
                   bytes: Wire.bytes("81 05 48 65 6c 6c 6f"),
                   frames: [WebSocketFrame(opcode: .text, payload: hello)], headerLengths: [2],
                   message: (.text, hello, 1)),
        RFCExample(name: "single-frame masked text",
                   bytes: Wire.bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
                   frames: [WebSocketFrame(opcode: .text, maskingKey: key, payload: hello)], headerLengths: [6],
                   message: (.text, hello, 1)),
        RFCExample(name: "fragmented unmasked text",
                   bytes: Wire.bytes("01 03 48 65 6c") + Wire.bytes("80 02 6c 6f"),
                   frames: [WebSocketFrame(fin: false, opcode: .text, payload: Array("Hel".utf8)),
                            WebSocketFrame(opcode: .continuation, payload: Array("lo".utf8))],
                   headerLengths: [2, 2], message: (.text, hello, 2)),
        RFCExample(name: "unmasked ping",
                   bytes: Wire.bytes("89 05 48 65 6c 6c 6f"),
                   frames: [WebSocketFrame(opcode: .ping, payload: hello)], headerLengths: [2], control: .ping),
        RFCExample(name: "masked pong",
                   bytes: Wire.bytes("8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
                   frames: [WebSocketFrame(opcode: .pong, maskingKey: key, payload: hello)], headerLengths: [6], control: .pong),
        RFCExample(name: "256 bytes binary, 16-bit length",
                   bytes: Wire.bytes("82 7E 0100") + binary256,
                   frames: [WebSocketFrame(opcode: .binary, payload: binary256)], headerLengths: [4],
                   message: (.binary, binary256, 1)),
        RFCExample(name: "64 KiB binary, 64-bit length",
                   bytes: Wire.bytes("82 7F 0000000000010000") + binary64K,
                   frames: [WebSocketFrame(opcode: .binary, payload: binary64K)], headerLengths: [10],
                   message: (.binary, binary64K, 1)),
    ]
}

@Suite("Frame parser: RFC 6455 §5.7 examples, offsets, truncation")
struct FrameParserTests {
    @Test("decodes the §5.7 example under every chunking", arguments: RFCExample.all)
    func decodesRFCExample(_ example: RFCExample) {
        let out = parseEveryWay(example.bytes)
        #expect(out.violations.isEmpty)
        #expect(out.failure == nil)
        #expect(out.pending == nil)
        #expect(out.bytesFed == example.bytes.count)
        #expect(frameDifference(out.frames.map(\.frame), example.frames) == nil)
        #expect(out.frames.map(\.header.headerLength) == example.headerLengths)
        let allComplete = out.frames.allSatisfy { $0.complete }
        #expect(allComplete, "\(out.frames.map(\.complete))")
        var offset = 0
        for (record, headerLength) in zip(out.frames, example.headerLengths) {
            #expect(record.offset == offset)
            offset += headerLength + record.payload.count
        }
        #expect(offset == example.bytes.count)
        if let message = example.message {
            #expect(out.messages.count == 1)
            #expect(out.messages.first?.opcode == message.opcode)
            #expect(byteDifference(out.messages.first?.data, message.data) == nil)
            #expect(out.messages.first?.fragmentCount == message.fragments)
            #expect(out.messages.first?.offset == 0)
            #expect(out.messages.first?.endOffset == example.bytes.count)
            #expect(out.messages.first?.isValidUTF8 == (message.opcode == .text ? true : nil))
        } else {
            #expect(out.messages.isEmpty)
        }
        if let control = example.control {
            #expect(out.controls == [ControlRecord(opcode: control, payload: RFCExample.hello, offset: 0, close: nil)])
        } else {
            #expect(out.controls.isEmpty)
        }
    }

    @Test("masked examples pass as client frames, unmasked ones as server frames", arguments: RFCExample.all)
    func exampleMaskingMatchesItsDirection(_ example: RFCExample) {
        let masked = example.frames.allSatisfy { $0.maskingKey != nil }
        let right = WebSocketFrameParserConfiguration(direction: masked ? .clientToServer : .serverToClient)
        let wrong = WebSocketFrameParserConfiguration(direction: masked ? .serverToClient : .clientToServer)
        #expect(parseAll(example.bytes, parser: right).violations.isEmpty)
        let rule: WebSocketViolation.Rule = masked ? .maskedServerFrame : .unmaskedClientFrame
        let expected = zip(example.frames, example.headerLengths).reduce(into: (keys: [ViolationKey](), offset: 0)) { acc, pair in
            acc.keys.append(ViolationKey(rule, acc.offset + 1))
            acc.offset += pair.1 + pair.0.payload.count
        }.keys
        #expect(parseAll(example.bytes, parser: wrong).parserKeys == expected)
    }

    @Test("encodes the §5.7 example back to the same bytes", arguments: RFCExample.all)
    func encodesRFCExample(_ example: RFCExample) {
        let encoded = example.frames.flatMap { WebSocketFrameEncoder.encode($0) }
        #expect(Wire.hex(encoded) == Wire.hex(example.bytes))
    }

    @Test("the masked example unmasks to Hello with key 37fa213d")
    func maskedExampleKey() throws {
        let out = parseAll(Wire.bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58"))
        let header = try #require(out.frames.first?.header)
        #expect(header.maskingKey?.bytes == [0x37, 0xFA, 0x21, 0x3D])
        #expect(header.masked)
        #expect(header.lengthField == 5)
        #expect(header.payloadLength == 5)
        #expect(out.messages.first?.text == "Hello")
    }

    // MARK: Offsets

    struct MixedFrame {
        var opcode: UInt8
        var fin: Bool
        var key: [UInt8]?
        var payload: [UInt8]
        var headerLength: Int
    }

    /// Frames with 7-, 16- and 64-bit lengths, masked and not, interleaved with control frames,
    /// built by hand from §5.2; header lengths are 2, 4 or 10 bytes, plus 4 for a key.
    static func mixedStream() -> (bytes: [UInt8], frames: [MixedFrame]) {
        var rng = CodecTestRNG(seed: 0xF00D)
        let plan: [(opcode: UInt8, fin: Bool, masked: Bool, length: Int)] = [
            (0x1, true, false, 0), (0x2, true, true, 0), (0x1, true, true, 5), (0x2, true, false, 125),
            (0x9, true, true, 125), (0x2, true, false, 126), (0x2, true, true, 127), (0x2, false, false, 300),
            (0xA, true, false, 3), (0x0, false, true, 65535), (0x8, true, true, 2), (0x0, true, false, 65536),
            (0x2, true, true, 65536), (0x2, true, false, 70001), (0x9, true, false, 0), (0x1, true, true, 1),
        ]
        var bytes: [UInt8] = []
        var frames: [MixedFrame] = []
        for p in plan {
            let key = p.masked ? rng.key() : nil
            let payload = p.opcode == 0x8 ? [0x03, 0xE8] : (p.opcode == 0x1 ? [UInt8](repeating: 0x61, count: p.length) : rng.bytes(p.length))
            let base = p.length <= 125 ? 2 : (p.length <= 65535 ? 4 : 10)
            frames.append(MixedFrame(opcode: p.opcode, fin: p.fin, key: key, payload: payload, headerLength: base + (p.masked ? 4 : 0)))
            bytes += Wire.frame(fin: p.fin, opcode: p.opcode, key: key, payload: payload)
        }
        return (bytes, frames)
    }

    @Test("every frame of a mixed stream reports its offset and header length",
          arguments: [1 << 20, 1000, 125])
    func mixedStreamOffsets(maxBuffered: Int) {
        let (bytes, expected) = Self.mixedStream()
        // The close frame ends the stream for the assembler; only the parser's view matters here.
        let config = WebSocketFrameParserConfiguration(maxBufferedFrameSize: maxBuffered)
        var chunkings = FeedChunking.coarse
        if maxBuffered == 125 { chunkings.append(.fixed(7)) }
        let out = parseEveryWay(bytes, parser: config, chunkings: chunkings)
        #expect(out.parserViolations.isEmpty)
        #expect(out.frames.count == expected.count)
        var offset = 0
        for (got, want) in zip(out.frames, expected) {
            #expect(got.offset == offset)
            #expect(got.header.headerLength == want.headerLength)
            #expect(got.header.opcode.rawValue == want.opcode)
            #expect(got.header.fin == want.fin)
            #expect(got.header.maskingKey?.bytes == want.key)
            #expect(got.header.payloadLength == UInt64(want.payload.count))
            #expect(byteDifference(got.payload, want.payload) == nil, "payload of the frame at \(offset)")
            #expect(got.complete)
            offset += want.headerLength + want.payload.count
        }
        #expect(offset == bytes.count)
    }

    @Test("pieces of streamed frames in a mixed stream carry consistent offsets",
          arguments: [FeedChunking.fixed(1000), .random(seed: 77), .fixed(7)])
    func mixedStreamPieceOffsets(chunking: FeedChunking) {
        let (bytes, expected) = Self.mixedStream()
        let out = parseAll(bytes, chunking: chunking, parser: .init(maxBufferedFrameSize: 125))
        var frameStarts: [Int] = []
        var offset = 0
        for f in expected {
            frameStarts.append(offset)
            offset += f.headerLength + f.payload.count
        }
        var next: UInt64 = 0
        var index = -1
        var wrong: [String] = []
        for (n, piece) in out.pieces.enumerated() {
            if piece.isFirst {
                index += 1
                next = 0
            }
            guard index >= 0, index < expected.count else {
                wrong.append("piece \(n) belongs to no frame")
                break
            }
            let streamOffset = frameStarts[index] + expected[index].headerLength + Int(next)
            let isLast = piece.payloadOffset + UInt64(piece.count) == UInt64(expected[index].payload.count)
            if piece.frameOffset != frameStarts[index] || piece.payloadOffset != next || piece.streamOffset != streamOffset
                || piece.isLast != isLast
            {
                wrong.append("piece \(n) of the frame at \(frameStarts[index]): frameOffset \(piece.frameOffset), payloadOffset \(piece.payloadOffset) (want \(next)), streamOffset \(piece.streamOffset) (want \(streamOffset)), isLast \(piece.isLast)")
            }
            next += UInt64(piece.count)
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(3))")
        #expect(index == expected.count - 1)
    }

    // MARK: Truncated input

    struct TruncationCase: Sendable, CustomTestStringConvertible {
        var claim: String
        var bytes: [UInt8]
        var pending: PendingRecord
        var testDescription: String { claim }
    }

    /// "missing" is what the frame still needs once its length is known (header + payload − received);
    /// while the length field itself is incomplete it is the header bytes still needed to learn it.
    static let truncations: [TruncationCase] = [
        // the first byte of a header only: at least the second byte is needed
        TruncationCase(claim: "header cut after 1 byte", bytes: Wire.bytes("81"),
                       pending: PendingRecord(offset: 0, received: 1, missing: 1)),
        // claims a 16-bit length, one of its two bytes present
        TruncationCase(claim: "cut in a 16-bit length", bytes: Wire.bytes("82 7E 01"),
                       pending: PendingRecord(offset: 0, received: 3, missing: 1)),
        // claims a 64-bit length, three of its eight bytes present
        TruncationCase(claim: "cut in a 64-bit length", bytes: Wire.bytes("82 7F 00 00 00"),
                       pending: PendingRecord(offset: 0, received: 5, missing: 5)),
        // masked, 7-bit length 5: the frame is 2 + 4 + 5 = 11 bytes, 4 are here
        TruncationCase(claim: "cut in the mask, length 5 known", bytes: Wire.bytes("81 85 37 fa"),
                       pending: PendingRecord(offset: 0, received: 4, missing: 7)),
        // masked, 16-bit length 200: the frame is 4 + 4 + 200 = 208 bytes, 5 are here
        TruncationCase(claim: "cut in the mask, 16-bit length 200 known", bytes: Wire.bytes("82 FE 00 C8 37"),
                       pending: PendingRecord(offset: 0, received: 5, missing: 203)),
        // masked, 64-bit length 65536: the frame is 10 + 4 + 65536 = 65550 bytes, 12 are here
        TruncationCase(claim: "cut in the mask, 64-bit length 65536 known", bytes: Wire.bytes("82 FF 0000000000010000 37 fa"),
                       pending: PendingRecord(offset: 0, received: 12, missing: 65538)),
        // claims 5 payload bytes, 2 present: 3 missing
        TruncationCase(claim: "cut in the payload", bytes: Wire.bytes("81 05 48 65"),
                       pending: PendingRecord(offset: 0, received: 4, missing: 3)),
        // masked Hello with 3 of its 5 payload bytes
        TruncationCase(claim: "cut in a masked payload", bytes: Wire.bytes("81 85 37 fa 21 3d 7f 9f 4d"),
                       pending: PendingRecord(offset: 0, received: 9, missing: 2)),
        // a whole ping, then a text frame claiming 5 bytes with none present
        TruncationCase(claim: "a whole frame, then a header without payload", bytes: Wire.bytes("89 00 81 05"),
                       pending: PendingRecord(offset: 2, received: 2, missing: 5)),
        // claims a 16-bit length of 300, 10 payload bytes present
        TruncationCase(claim: "cut in a 16-bit-length payload", bytes: Wire.bytes("82 7E 01 2C") + Wire.pattern(10),
                       pending: PendingRecord(offset: 0, received: 14, missing: 290)),
    ]

    @Test("pendingFrame reports what a truncated frame still needs", arguments: truncations)
    func truncated(_ c: TruncationCase) {
        let out = parseEveryWay(c.bytes)
        #expect(out.pending == c.pending)
        #expect(out.failure == nil)
        #expect(out.violations.isEmpty)
    }

    @Test("pendingFrame of a streamed frame counts delivered payload", arguments: [FeedChunking.whole, .fixed(100), .oneByte])
    func truncatedStreamedFrame(chunking: FeedChunking) {
        // claims a 64-bit length of 65536; 1000 payload bytes present
        let bytes = Wire.bytes("82 7F 0000000000010000") + Wire.pattern(1000)
        let out = parseAll(bytes, chunking: chunking, parser: .init(maxBufferedFrameSize: 500))
        #expect(out.pending == PendingRecord(offset: 0, received: 1010, missing: 64536))
        #expect(out.frames.count == 1)
        #expect(out.frames.first?.payload == Wire.pattern(1000))
        #expect(out.frames.first?.complete == false)
    }

    @Test("pendingFrame is nil on a frame boundary")
    func noPendingOnBoundary() {
        #expect(parseEveryWay(Wire.bytes("81 05 48 65 6c 6c 6f 89 00")).pending == nil)
        #expect(WebSocketFrameParser().pendingFrame == nil)
    }

    @Test("finishing a truncated frame later delivers it whole at its offset")
    func truncatedThenCompleted() {
        var parser = WebSocketFrameParser()
        var first = Wire.bytes("89 00 81 85 37 fa")
        var seen: [(Int, [UInt8])] = []
        parser.parse(&first) { seen.append(($0.frameOffset, Array($0.payload))) }
        #expect(seen.count == 1)
        var rest = Wire.bytes("21 3d 7f 9f 4d 51 58")
        parser.parse(&rest) {
            #expect($0.isWholeFrame)
            seen.append(($0.frameOffset, Array($0.payload)))
        }
        #expect(seen.map(\.0) == [0, 2])
        #expect(seen.last?.1 == Array("Hello".utf8))
        #expect(parser.pendingFrame == nil)
        #expect(parser.bytesFed == 13)
    }

    // MARK: Failure

    @Test("a 64-bit length with its top bit set stops the parser for good")
    func topBitStops() {
        // a good ping, then a binary frame claiming 2^63 + 5 bytes, then a good frame that must be ignored
        let bytes = Wire.bytes("89 00") + Wire.bytes("82 7F 8000000000000005") + Wire.bytes("81 02 68 69")
        let out = parseEveryWay(bytes)
        #expect(out.failure.map(ViolationKey.init) == ViolationKey(.lengthTopBitSet, 4))
        #expect(out.failure?.closeCode.code == 1002)
        #expect(out.frames.count == 2)
        #expect(out.frames.last?.offset == 2)
        #expect(out.frames.last?.complete == false)
        #expect(out.messages.isEmpty)
        #expect(out.pending == nil)
        #expect(out.bytesFed == bytes.count)

        var parser = WebSocketFrameParser()
        var bad = Wire.bytes("82 7F FFFFFFFFFFFFFFFF")
        var calls = 0
        parser.parse(&bad) { _ in calls += 1 }
        #expect(calls == 1)
        var good = Wire.bytes("81 02 68 69")
        parser.parse(&good) { _ in calls += 1 }
        #expect(calls == 1)
        #expect(parser.bytesFed == 14)
        #expect(parser.failure?.rule == .lengthTopBitSet)
    }

    @Test("payloads are unmasked in place in the caller's buffer")
    func unmasksInPlace() {
        var bytes = Wire.bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58")
        var parser = WebSocketFrameParser()
        parser.parse(&bytes) { _ in }
        #expect(Array(bytes[6...]) == Array("Hello".utf8))
        #expect(Array(bytes[..<6]) == Wire.bytes("81 85 37 fa 21 3d"))
    }

    @Test("empty frames, masked and not, parse with the right header lengths")
    func emptyFrames() {
        let bytes = Wire.bytes("82 00 81 80 01 02 03 04 8A 00 88 80 0a 0b 0c 0d")
        let out = parseEveryWay(bytes)
        #expect(out.frames.map(\.offset) == [0, 2, 8, 10])
        #expect(out.frames.map(\.header.headerLength) == [2, 6, 2, 6])
        let allEmptyAndComplete = out.frames.allSatisfy { $0.payload.isEmpty && $0.complete }
        #expect(allEmptyAndComplete, "\(out.frames)")
        #expect(out.violations.isEmpty)
        #expect(out.messages.map(\.opcode) == [.binary, .text])
    }

    @Test("WebSocketFrameHeader.parse reads lengths and keys without validating")
    func headerParse() {
        func parse(_ hex: String) -> WebSocketFrameHeader.ParseResult {
            Wire.bytes(hex).withUnsafeBytes { WebSocketFrameHeader.parse($0) }
        }
        #expect(parse("") == .needMore(2))
        #expect(parse("81") == .needMore(2))
        #expect(parse("82 7E 01") == .needMore(4))
        #expect(parse("82 FF 00") == .needMore(14))
        guard case .header(let h) = parse("F3 FE 01 02 0a 0b 0c 0d") else {
            Issue.record("a complete header did not parse")
            return
        }
        #expect(h.fin && h.rsv1 && h.rsv2 && h.rsv3)
        #expect(h.reservedBits == 0x70)
        #expect(h.opcode.rawValue == 3)
        #expect(h.masked)
        #expect(h.lengthField == 126)
        #expect(h.payloadLength == 0x0102)
        #expect(h.headerLength == 8)
        #expect(h.maskingKey?.bytes == [0x0a, 0x0b, 0x0c, 0x0d])
        #expect(h.frameLength == 8 + 0x0102)
        guard case .header(let big) = parse("82 7F 7FFFFFFFFFFFFFFF") else {
            Issue.record("a complete header did not parse")
            return
        }
        #expect(big.payloadLength == UInt64(Int64.max))
        #expect(big.frameLength == nil)
    }
}
