import Testing
@testable import WebSocketCodec

@Suite("Frame encoder (RFC 6455 §5.2)")
struct EncoderTests {
    // MARK: Round trips

    /// A payload length biased to the boundaries of the three length forms.
    static func randomLength(_ rng: inout CodecTestRNG) -> Int {
        switch rng.next() % 10 {
        case 0, 1, 2, 3: return rng.int(0...20)
        case 4, 5: return rng.int(0...400)
        case 6: return [0, 1, 124, 125, 126, 127, 128][rng.int(0...6)]
        case 7: return [65534, 65535, 65536, 65537][rng.int(0...3)]
        case 8: return rng.int(100...140)
        default: return rng.int(0...70000)
        }
    }

    static func randomFrame(_ rng: inout CodecTestRNG) -> WebSocketFrame {
        let opcode = WebSocketOpcode.raw(UInt8(rng.next() % 16))
        let key: WebSocketMaskingKey? = rng.bool() ? .random(using: &rng) : nil
        return WebSocketFrame(fin: rng.bool(), rsv1: rng.bool(), rsv2: rng.next() % 4 == 0, rsv3: rng.next() % 4 == 0,
                              opcode: opcode, maskingKey: key, payload: rng.bytes(randomLength(&rng)))
    }

    /// The same frame written by hand from §5.2 (see `Wire.frame`), independently of the encoder.
    static func handWritten(_ f: WebSocketFrame) -> [UInt8] {
        let rsv: UInt8 = (f.rsv1 ? 0x40 : 0) | (f.rsv2 ? 0x20 : 0) | (f.rsv3 ? 0x10 : 0)
        return Wire.frame(fin: f.fin, rsv: rsv, opcode: f.opcode.rawValue, key: f.maskingKey?.bytes, payload: f.payload)
    }

    @Test("random frames encode as §5.2 says and parse back under random chunking",
          arguments: Array(UInt64(1)...UInt64(40)))
    func roundTrip(seed: UInt64) {
        var rng = CodecTestRNG(seed: seed &* 0x1000_0001)
        // 40 seeds x 60 frames = 2,400 frames; every other batch streams large frames in pieces.
        let frames = (0..<60).map { _ in Self.randomFrame(&rng) }
        var stream: [UInt8] = []
        var offsets: [Int] = []
        for frame in frames {
            let encoded = WebSocketFrameEncoder.encode(frame)
            let expectedHeader = WebSocketFrameEncoder.headerLength(payloadLength: UInt64(frame.payload.count), masked: frame.maskingKey != nil)
            #expect(encoded.count == expectedHeader + frame.payload.count)
            #expect(byteDifference(encoded, Self.handWritten(frame)) == nil, "opcode \(frame.opcode) length \(frame.payload.count) masked \(frame.maskingKey != nil)")

            var fast = [UInt8](repeating: 0, count: expectedHeader + frame.payload.count)
            let written = frame.payload.withUnsafeBytes { payload in
                fast.withUnsafeMutableBytes { dst in
                    WebSocketFrameEncoder.encode(
                        fin: frame.fin,
                        reservedBits: (frame.rsv1 ? 0x40 : 0) | (frame.rsv2 ? 0x20 : 0) | (frame.rsv3 ? 0x10 : 0),
                        opcode: frame.opcode, maskingKey: frame.maskingKey, payload: payload, into: dst)
                }
            }
            #expect(written == encoded.count)
            #expect(byteDifference(fast, encoded) == nil, "the pointer encoder differs from the array encoder")

            offsets.append(stream.count)
            stream += encoded
        }
        let config = WebSocketFrameParserConfiguration(maxBufferedFrameSize: seed % 2 == 0 ? 1000 : 1 << 20)
        for chunking in [FeedChunking.random(seed: seed), .random(seed: seed + 1000)] {
            let out = parseAll(stream, chunking: chunking, parser: config, keepPieces: false)
            #expect(frameDifference(out.frames.map(\.frame), frames) == nil, "\(chunking.testDescription)")
            #expect(out.frames.map(\.offset) == offsets)
            let allComplete = out.frames.allSatisfy { $0.complete }
            let incompleteAt = out.frames.filter { !$0.complete }.map(\.offset)
            #expect(allComplete, "\(chunking.testDescription): incomplete frames at \(incompleteAt)")
            #expect(out.failure == nil)
            #expect(out.pending == nil)
            // Minimal lengths and a clean header never break the length rules.
            let breaksLengthRule = out.parserViolations.contains { $0.rule == .nonMinimalLength || $0.rule == .lengthTopBitSet }
            #expect(!breaksLengthRule, "\(out.parserViolations)")
        }
    }

    // MARK: Forced length encodings

    @Test("a forced 16-bit length for 5 bytes writes 7E 0005")
    func forcedSixteenBit() throws {
        var out: [UInt8] = []
        try WebSocketFrameEncoder.encode(.binary([1, 2, 3, 4, 5]), lengthEncoding: .sixteenBit, into: &out)
        #expect(Wire.hex(out) == "827e00050102030405")
        let parsed = parseEveryWay(out)
        #expect(parsed.parserKeys == [ViolationKey(.nonMinimalLength, 2)])
        #expect(parsed.frames.first?.payload == [1, 2, 3, 4, 5])
    }

    @Test("a forced 64-bit length for 5 bytes writes 7F 0000000000000005")
    func forcedSixtyFourBit() throws {
        var out: [UInt8] = []
        try WebSocketFrameEncoder.encode(.text("hello"), lengthEncoding: .sixtyFourBit, into: &out)
        #expect(Wire.hex(out) == "817f0000000000000005" + Wire.hex(Array("hello".utf8)))
        #expect(parseEveryWay(out).parserKeys == [ViolationKey(.nonMinimalLength, 2)])
    }

    @Test("a forced 64-bit length for 300 bytes, masked")
    func forcedSixtyFourBitMasked() throws {
        let key = WebSocketMaskingKey(1, 2, 3, 4)
        let payload = Wire.pattern(300)
        var out: [UInt8] = []
        try WebSocketFrameEncoder.encode(WebSocketFrame(opcode: .binary, maskingKey: key, payload: payload),
                                         lengthEncoding: .sixtyFourBit, into: &out)
        #expect(Wire.hex(out.prefix(14)) == "82ff000000000000012c01020304")
        #expect(Array(out.dropFirst(14)) == Wire.mask(payload, key: [1, 2, 3, 4]))
    }

    @Test("a forced 7-bit length over 127 throws", arguments: [128, 200, 65536])
    func sevenBitTooLong(length: Int) {
        var out: [UInt8] = []
        let thrown = thrownError {
            try WebSocketFrameEncoder.encode(.binary(Wire.pattern(length)), lengthEncoding: .sevenBit, into: &out)
        }
        #expect(thrown is WebSocketEncodingError, "threw \(String(describing: thrown))")
    }

    @Test("a forced 16-bit length over 65535 throws")
    func sixteenBitTooLong() {
        var out: [UInt8] = []
        let thrown = thrownError {
            try WebSocketFrameEncoder.encode(.binary(Wire.pattern(65536)), lengthEncoding: .sixteenBit, into: &out)
        }
        #expect(thrown is WebSocketEncodingError, "threw \(String(describing: thrown))")
    }

    @Test("the 7-bit form can write 126 or 127 in the length field without the extended length")
    func sevenBitClaimsLongerForm() throws {
        var out: [UInt8] = []
        try WebSocketFrameEncoder.encode(.binary([]), lengthEncoding: .sevenBit, claimedLength: 126, into: &out)
        #expect(Wire.hex(out) == "827e")
        out = []
        try WebSocketFrameEncoder.encode(.binary([]), lengthEncoding: .sevenBit, claimedLength: 127, into: &out)
        #expect(Wire.hex(out) == "827f")
    }

    // MARK: Claimed lengths

    @Test("claimedLength longer than the payload builds a truncated frame")
    func claimedLonger() throws {
        var out: [UInt8] = []
        try WebSocketFrameEncoder.encode(.text("hello"), claimedLength: 10, into: &out)
        #expect(Wire.hex(out) == "810a68656c6c6f")
        let parsed = parseEveryWay(out)
        #expect(parsed.frames.isEmpty)
        #expect(parsed.pending == PendingRecord(offset: 0, received: 7, missing: 5))
    }

    @Test("claimedLength shorter than the payload leaves the rest as the next frame's bytes")
    func claimedShorter() throws {
        var out: [UInt8] = []
        // claims 2 bytes; the remaining "89 00" reads as an empty ping
        try WebSocketFrameEncoder.encode(.binary([0x61, 0x62, 0x89, 0x00]), claimedLength: 2, into: &out)
        #expect(Wire.hex(out) == "820261628900")
        let parsed = parseEveryWay(out)
        #expect(parsed.frames.map(\.header.opcode) == [.binary, .ping])
        #expect(parsed.frames.first?.payload == [0x61, 0x62])
    }

    @Test("claimedLength picks the minimal form for the claimed length, not the real one")
    func claimedLengthForm() throws {
        var out: [UInt8] = []
        try WebSocketFrameEncoder.encode(.binary([1]), claimedLength: 70000, into: &out)
        #expect(Wire.hex(out) == "827f000000000001117001")
        out = []
        try WebSocketFrameEncoder.encode(.binary(Wire.pattern(200)), claimedLength: 3, into: &out)
        #expect(Wire.hex(out.prefix(2)) == "8203")
        #expect(out.count == 202)
    }

    // MARK: Headers

    @Test("headerLength for the length boundaries")
    func headerLengths() {
        let cases: [(UInt64, Int)] = [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 40, 10)]
        for (length, header) in cases {
            #expect(WebSocketFrameEncoder.headerLength(payloadLength: length, masked: false) == header)
            #expect(WebSocketFrameEncoder.headerLength(payloadLength: length, masked: true) == header + 4)
        }
    }

    @Test("writeHeader writes flags, lengths and key as §5.2 lays them out")
    func writeHeader() {
        func header(fin: Bool, rsv: UInt8, opcode: WebSocketOpcode, key: WebSocketMaskingKey?, length: UInt64) -> String {
            var bytes = [UInt8](repeating: 0xAA, count: 14)
            let n = bytes.withUnsafeMutableBytes {
                WebSocketFrameEncoder.writeHeader(fin: fin, reservedBits: rsv, opcode: opcode, maskingKey: key,
                                                  payloadLength: length, into: $0.baseAddress!)
            }
            return Wire.hex(bytes.prefix(n))
        }
        let key = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)
        #expect(header(fin: true, rsv: 0, opcode: .text, key: nil, length: 5) == "8105")
        #expect(header(fin: false, rsv: 0x40, opcode: .text, key: nil, length: 5) == "4105")
        #expect(header(fin: true, rsv: 0x70, opcode: .binary, key: key, length: 125) == "f2fd37fa213d")
        #expect(header(fin: true, rsv: 0, opcode: .binary, key: nil, length: 126) == "827e007e")
        #expect(header(fin: true, rsv: 0, opcode: .binary, key: key, length: 65535) == "82feffff37fa213d")
        #expect(header(fin: true, rsv: 0, opcode: .binary, key: nil, length: 65536) == "827f0000000000010000")
        #expect(header(fin: false, rsv: 0x10, opcode: .continuation, key: key, length: 0x0102030405) == "10ff000000010203040537fa213d")
    }

    @Test("close frames carry the code big-endian, then the reason")
    func closeFrames() {
        #expect(Wire.hex(WebSocketFrameEncoder.encode(.close(code: .normalClosure, reason: "bye"))) == "880503e8627965")
        #expect(Wire.hex(WebSocketFrameEncoder.encode(.close(code: .unknown(4001)))) == "88020fa1")
        #expect(Wire.hex(WebSocketFrameEncoder.encode(.close(code: nil, reason: "dropped"))) == "8800")
    }

    // MARK: Fragmentation

    @Test("fragment splits into first opcode, continuations and FIN on the last")
    func fragmentLayout() {
        let payload = Wire.pattern(10)
        let frames = WebSocketFrameEncoder.fragment(opcode: .binary, payload: payload, fragmentSize: 3)
        #expect(frames.map(\.opcode) == [.binary, .continuation, .continuation, .continuation])
        #expect(frames.map(\.fin) == [false, false, false, true])
        #expect(frames.map(\.rsv1) == [false, false, false, false])
        #expect(frames.map(\.payload.count) == [3, 3, 3, 1])
        #expect(frames.flatMap(\.payload) == payload)
        let noneMasked = frames.allSatisfy { $0.maskingKey == nil }
        #expect(noneMasked, "\(frames.map(\.maskingKey))")
    }

    @Test("a compressed message sets RSV1 on the first fragment only (RFC 7692 §6.1)")
    func fragmentCompressed() {
        let frames = WebSocketFrameEncoder.fragment(opcode: .text, payload: Wire.pattern(7), fragmentSize: 3, compressed: true)
        #expect(frames.map(\.rsv1) == [true, false, false])
        #expect(frames.map(\.opcode) == [.text, .continuation, .continuation])
        #expect(frames.map(\.fin) == [false, false, true])
        let wire = frames.flatMap { WebSocketFrameEncoder.encode($0) }
        let out = parseEveryWay(wire, parser: .init(allowedReservedBits: 0x40),
                                assembler: .init(compressionNegotiated: true))
        #expect(out.violations.isEmpty)
        #expect(out.messages.count == 1)
        #expect(out.messages.first?.compressed == true)
        #expect(out.messages.first?.fragmentCount == 3)
        #expect(out.messages.first?.data == Wire.pattern(7))
    }

    @Test("fragments of exactly fragmentSize, of an empty message, and of size 0")
    func fragmentEdges() {
        let exact = WebSocketFrameEncoder.fragment(opcode: .text, payload: Wire.pattern(6), fragmentSize: 3)
        #expect(exact.map(\.payload.count) == [3, 3])
        #expect(exact.map(\.fin) == [false, true])
        let empty = WebSocketFrameEncoder.fragment(opcode: .binary, payload: [], fragmentSize: 3)
        #expect(empty == [WebSocketFrame(fin: true, opcode: .binary, payload: [])])
        let single = WebSocketFrameEncoder.fragment(opcode: .binary, payload: Wire.pattern(3), fragmentSize: 100)
        #expect(single == [WebSocketFrame(fin: true, opcode: .binary, payload: Wire.pattern(3))])
        let zero = WebSocketFrameEncoder.fragment(opcode: .binary, payload: Wire.pattern(3), fragmentSize: 0)
        #expect(zero.map(\.payload.count) == [1, 1, 1])
    }

    @Test("masked fragments each get their own key and reassemble into the message",
          arguments: [1, 2, 7, 125, 126, 1000])
    func fragmentMaskedReassembles(size: Int) {
        var rng = CodecTestRNG(seed: UInt64(size))
        let text = String(repeating: "κόσμε €𝄞 ", count: 40)
        let payload = Array(text.utf8)
        var keys: [WebSocketMaskingKey] = []
        let frames = WebSocketFrameEncoder.fragment(opcode: .text, payload: payload, fragmentSize: size) {
            let key = WebSocketMaskingKey.random(using: &rng)
            keys.append(key)
            return key
        }
        let drawnKeys = keys.map { Optional($0) }
        #expect(frames.map(\.maskingKey) == drawnKeys)
        #expect(frames.count == (payload.count + size - 1) / size)
        let wire = frames.flatMap { WebSocketFrameEncoder.encode($0) }
        let chunkings: [FeedChunking] = size < 10 ? [.whole, .random(seed: 9)] : FeedChunking.standard
        let out = parseEveryWay(wire, parser: .init(direction: .clientToServer), chunkings: chunkings)
        #expect(out.violations.isEmpty)
        #expect(out.messages.count == 1)
        #expect(out.messages.first?.text == text)
        #expect(out.messages.first?.isValidUTF8 == true)
        #expect(out.messages.first?.fragmentCount == frames.count)
    }
}
