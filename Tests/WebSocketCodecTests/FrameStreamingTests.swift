import Testing
@testable import WebSocketCodec

@Suite("Frame streaming: frames larger than maxBufferedFrameSize arrive in pieces")
struct FrameStreamingTests {
    static let threeMiB = 3 << 20
    static let key: [UInt8] = [0x9C, 0x41, 0x07, 0xE3]

    /// A 3 MiB binary frame, masked, with a 64-bit length: 14 header bytes.
    static let bigFrame: (bytes: [UInt8], payload: [UInt8]) = {
        var rng = CodecTestRNG(seed: 0x3_000_000)
        let payload = rng.bytes(threeMiB)
        return (Wire.frame(opcode: 0x2, key: key, payload: payload), payload)
    }()

    static let config = WebSocketFrameParserConfiguration(direction: .clientToServer, maxBufferedFrameSize: 64 << 10)

    @Test("a 3 MiB masked frame arrives as pieces that add up to the payload",
          arguments: [FeedChunking.fixed(1000), .random(seed: 11), .random(seed: 12), .fixed(65536), .fixed(7)])
    func threeMiBInPieces(chunking: FeedChunking) {
        let (bytes, payload) = Self.bigFrame
        #expect(bytes.count == 14 + Self.threeMiB)
        var parser = WebSocketFrameParser(configuration: Self.config)
        var assembler = WebSocketMessageAssembler()
        var joined: [UInt8] = []
        joined.reserveCapacity(payload.count)
        var pieces: [(payloadOffset: UInt64, count: Int, isFirst: Bool, isLast: Bool, streamOffset: Int)] = []
        var violations: [WebSocketViolation] = []
        var messages: [[UInt8]] = []
        var largestPiece = 0
        var readSizes: [Int] = []
        var wrongHeaders = 0
        for range in chunking.cuts(bytes.count) {
            var read = Array(bytes[range])
            readSizes.append(read.count)
            parser.parse(&read) { piece in
                if piece.frameOffset != 0 || piece.header.headerLength != 14 || piece.header.payloadLength != UInt64(Self.threeMiB) {
                    wrongHeaders += 1
                }
                pieces.append((piece.payloadOffset, piece.payload.count, piece.isFirst, piece.isLast, piece.streamOffset))
                joined += piece.payload
                largestPiece = max(largestPiece, piece.payload.count)
                violations += piece.violations
                violations += assembler.receive(piece) { item in
                    if case .message(let m) = item { messages.append(Array(m.payload)) }
                }
            }
        }
        #expect(violations.isEmpty)
        #expect(joined.count == payload.count)
        #expect(byteDifference(joined, payload) == nil, "the pieces, unmasked with the carried phase, must equal the payload")
        #expect(pieces.count > 1)
        #expect(largestPiece <= max(readSizes.max() ?? 0, 64 << 10), "no piece is larger than what one read brought")
        #expect(pieces.first?.isFirst == true)
        let onlyFirstIsFirst = pieces.dropFirst().allSatisfy { !$0.isFirst }
        #expect(onlyFirstIsFirst, "\(pieces.map(\.isFirst))")
        #expect(pieces.last?.isLast == true)
        let onlyLastIsLast = pieces.dropLast().allSatisfy { !$0.isLast }
        #expect(onlyLastIsLast, "\(pieces.map(\.isLast))")
        #expect(wrongHeaders == 0, "pieces reporting another frame offset, header length or payload length")
        var next: UInt64 = 0
        var misplaced: [Int] = []
        for (i, p) in pieces.enumerated() {
            if p.payloadOffset != next || p.streamOffset != 14 + Int(next) { misplaced.append(i) }
            next += UInt64(p.count)
        }
        #expect(misplaced.isEmpty, "pieces with a wrong payloadOffset or streamOffset: \(misplaced.prefix(5))")
        #expect(messages.count == 1)
        #expect(byteDifference(messages.first, payload) == nil)
        #expect(parser.pendingFrame == nil)
        if case .fixed(1000) = chunking {
            // The first read holds the 14 header bytes and 986 payload bytes; each later read is one piece.
            #expect(pieces.first?.count == 986)
            #expect(pieces.count == (bytes.count + 999) / 1000)
        }
    }

    @Test("pendingFrame follows a streamed frame read by read")
    func pendingWhileStreaming() {
        let (bytes, _) = Self.bigFrame
        var parser = WebSocketFrameParser(configuration: Self.config)
        var fed = 0
        for range in FeedChunking.fixed(100_000).cuts(200_014) {
            var read = Array(bytes[range])
            parser.parse(&read) { _ in }
            fed += read.count
            let pending = parser.pendingFrame
            #expect(pending?.offset == 0)
            #expect(pending?.received == UInt64(fed))
            #expect(pending?.missing == UInt64(bytes.count - fed))
        }
    }

    @Test("a streamed frame followed by small frames in the same read")
    func streamedThenSmall() {
        let payload = Wire.pattern(200_000)
        let bytes = Wire.frame(opcode: 0x2, key: Self.key, payload: payload) + Wire.bytes("89 80 01 02 03 04")
            + Wire.frame(opcode: 0x1, key: Self.key, payload: Array("done".utf8))
        let out = parseEveryWay(bytes, parser: Self.config, chunkings: FeedChunking.coarse + [.fixed(99_999)])
        #expect(out.violations.isEmpty)
        #expect(out.frames.map(\.offset) == [0, 200_014, 200_020])
        #expect(byteDifference(out.frames.first?.payload, payload) == nil)
        #expect(out.messages.map(\.data.count) == [200_000, 4])
        #expect(out.controls.map(\.offset) == [200_014])
    }

    @Test("invalid UTF-8 deep in a streamed text frame fails at its exact offset, however it was read")
    func utf8InStreamedFrame() {
        var payload = [UInt8](repeating: 0x61, count: 300_000)
        payload[100_000] = 0xFF
        let bytes = Wire.frame(opcode: 0x1, key: Self.key, payload: payload)
        let out = parseEveryWay(bytes, parser: Self.config, chunkings: FeedChunking.coarse)
        #expect(out.assemblerKeys == [ViolationKey(.invalidUTF8, 14 + 100_000)])
        #expect(out.messages.first?.isValidUTF8 == false)
    }

    @Test("the UTF-8 violation text names the right message byte in a streamed frame",
          arguments: [FeedChunking.whole, .fixed(1000), .fixed(65536)])
    func utf8MessageByteInStreamedFrame(chunking: FeedChunking) {
        var payload = [UInt8](repeating: 0x61, count: 300_000)
        payload[100_000] = 0xFF
        let bytes = Wire.frame(opcode: 0x1, key: Self.key, payload: payload)
        let out = parseAll(bytes, chunking: chunking, parser: Self.config)
        let message = out.assemblerViolations.first?.message ?? ""
        #expect(message.contains("message byte 100000)"), "\(message)")
    }

    @Test("a message-size violation in a streamed frame does not depend on how the frame was read")
    func messageLimitInStreamedFrame() {
        // 200,000 bytes where 150,000 are allowed: message byte 150,000 (stream offset 10 + 150,000) is the first too many
        let bytes = Wire.frame(opcode: 0x2, payload: Wire.pattern(200_000))
        let out = parseEveryWay(bytes, parser: .init(maxBufferedFrameSize: 64 << 10),
                                assembler: .init(maxMessageSize: 150_000), chunkings: FeedChunking.coarse)
        #expect(out.assemblerKeys == [ViolationKey(.messageTooLarge, 10 + 150_000)])
        #expect(out.messages.isEmpty)
    }

    @Test("a streamed frame whose header was split across reads")
    func headerSplitThenStreamed() {
        let payload = Wire.pattern(70_000)
        let bytes = Wire.frame(opcode: 0x2, key: Self.key, payload: payload)
        // 5 header bytes, then 9 more (header complete, no payload), then the payload in 3 reads
        let cuts = [0..<5, 5..<14, 14..<30_000, 30_000..<60_000, 60_000..<bytes.count]
        var parser = WebSocketFrameParser(configuration: Self.config)
        var joined: [UInt8] = []
        var offsets: [UInt64] = []
        var firsts = 0, lasts = 0
        for range in cuts {
            var read = Array(bytes[range])
            parser.parse(&read) { piece in
                #expect(piece.frameOffset == 0)
                offsets.append(piece.payloadOffset)
                joined += piece.payload
                if piece.isFirst { firsts += 1 }
                if piece.isLast { lasts += 1 }
            }
        }
        #expect(byteDifference(joined, payload) == nil)
        #expect(firsts == 1)
        #expect(lasts == 1)
        #expect(offsets.last == 60_000 - 14)
        #expect(parser.pendingFrame == nil)
    }

    /// Bytes lost in a capture gap inside a streamed frame are stepped over: what follows is
    /// unmasked with the right phase, and the frame ends where its header said.
    @Test("skipping lost bytes of a streamed frame keeps its end and the mask phase", arguments: [1, 2, 3, 4, 65_537])
    func skipLostBytesOfAStreamedFrame(lost: Int) {
        let payload = Wire.pattern(200_000)
        let next = Wire.frame(opcode: 0x1, key: Self.key, payload: Array("after".utf8))
        let bytes = Wire.frame(opcode: 0x2, key: Self.key, payload: payload) + next
        let before = 14 + 70_000
        var parser = WebSocketFrameParser(configuration: Self.config)
        var assembler = WebSocketMessageAssembler()
        var joined: [UInt8] = []
        var messages: [(opcode: WebSocketOpcode, payload: [UInt8], end: Int, valid: Bool?)] = []
        var violations: [WebSocketViolation] = []
        func take(_ item: WebSocketAssembledItem) {
            if case .message(let m) = item { messages.append((m.opcode, Array(m.payload), m.endOffset, m.isValidUTF8)) }
        }
        var head = Array(bytes[0..<before])
        parser.parse(&head) { piece in
            joined += piece.payload
            violations += assembler.receive(piece, take)
        }
        #expect(parser.skipStreamedPayload(0) == nil)
        #expect(parser.skipStreamedPayload(200_000 - 70_000 + 1) == nil, "more than the frame has left")
        guard let piece = parser.skipStreamedPayload(lost) else {
            Issue.record("no piece for the lost bytes")
            return
        }
        #expect(piece.payload.isEmpty && !piece.isFirst && !piece.isLast)
        #expect(piece.streamOffset == before + lost, "the empty piece sits after the lost bytes")
        #expect(parser.bytesFed == before + lost)
        #expect(parser.streamedPayloadRemaining == UInt64(200_000 - 70_000 - lost))
        violations += assembler.receiveLost(lost, keeping: .max, before: piece)
        violations += assembler.receive(piece, take)
        joined += [UInt8](repeating: 0, count: lost)
        var rest = Array(bytes[(before + lost)...])
        parser.parse(&rest) { piece in
            if piece.frameOffset == 0 { joined += piece.payload }
            violations += assembler.receive(piece, take)
        }
        var expected = payload
        for i in 70_000..<(70_000 + lost) { expected[i] = 0 }
        #expect(byteDifference(joined, expected) == nil, "the bytes after the lost ones are unmasked with the carried phase")
        #expect(violations.isEmpty)
        #expect(messages.count == 2)
        if messages.count == 2 {
            #expect(byteDifference(messages[0].payload, expected) == nil, "the message keeps zeros for the lost bytes")
            #expect(messages[0].end == 14 + 200_000)
            #expect(messages[1].opcode == .text && messages[1].payload == Array("after".utf8))
            #expect(messages[1].valid == true)
        }
        #expect(parser.pendingFrame == nil)
    }

    /// Lost bytes count toward the message's limit without being allocated past it, however large
    /// the frame says it is.
    @Test("lost bytes of a frame of 2^40 bytes count toward the message limit")
    func lostBytesOfAHugeFrame() {
        let length: UInt64 = 1 << 40
        var head = Wire.frame(opcode: 0x1, payload: Array("abc".utf8), claimedLength: length)  // 10 header bytes, 3 payload bytes
        var parser = WebSocketFrameParser(configuration: .init(direction: .serverToClient))
        var assembler = WebSocketMessageAssembler()
        var violations: [WebSocketViolation] = []
        var messages = 0
        parser.parse(&head) { piece in violations += piece.violations + assembler.receive(piece) { _ in messages += 1 } }
        let lost = Int(length) - 3 - 2
        guard let piece = parser.skipStreamedPayload(lost) else {
            Issue.record("no piece for the lost bytes")
            return
        }
        violations += assembler.receiveLost(lost, keeping: .max, before: piece)
        violations += assembler.receive(piece) { _ in messages += 1 }
        var tail = Array("yz".utf8) + Wire.frame(opcode: 0x1, payload: Array("next".utf8))
        var nextOffset: Int?
        parser.parse(&tail) { piece in
            if piece.isFirst { nextOffset = piece.frameOffset }
            violations += assembler.receive(piece) { _ in messages += 1 }
        }
        #expect(nextOffset == 10 + Int(length))
        #expect(violations.map(\.rule) == [.frameTooLarge, .messageTooLarge])
        #expect(violations.last?.offset == 10 + (64 << 20), "the first byte past the limit, inside the lost bytes")
        #expect(messages == 1, "only the frame after it is a message")
    }
}
