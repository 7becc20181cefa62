import Testing
@testable import WebSocketCodec

@Suite("Message assembler (RFC 6455 §5.4, §5.5.1, §7.4, §8.1, §10.4; RFC 7692 §6.1)")
struct AssemblerTests {
    // MARK: Fragmentation order (§5.4)

    @Test("a continuation with no message in progress")
    func continuationWithoutStart() {
        // continuation "lo" with FIN, nothing before it
        let out = parseEveryWay(Wire.bytes("80 02 6c 6f"))
        #expect(out.assemblerKeys == [ViolationKey(.continuationWithoutStart, 0)])
        #expect(out.assemblerViolations.first?.closeCode.code == 1002)
        #expect(out.messages.isEmpty)
    }

    @Test("a continuation after a finished message has nothing to continue")
    func continuationAfterFinishedMessage() {
        // "Hello" complete, then continuation "lo" at offset 7
        let out = parseEveryWay(Wire.bytes("81 05 48 65 6c 6c 6f 80 02 6c 6f"))
        #expect(out.assemblerKeys == [ViolationKey(.continuationWithoutStart, 7)])
        #expect(out.messages.count == 1)
    }

    @Test("a new text or binary frame inside a fragmented message", arguments: ["81 02 6c 6f", "82 02 6c 6f", "01 02 6c 6f"])
    func newMessageInsideFragmented(second: String) {
        // "Hel" without FIN, then a frame that starts a new message at offset 5
        let out = parseEveryWay(Wire.bytes("01 03 48 65 6c") + Wire.bytes(second))
        #expect(out.assemblerKeys == [ViolationKey(.newMessageInsideFragmented, 5)])
        #expect(out.assemblerViolations.first?.closeCode.code == 1002)
        let hasHello = out.messages.contains { $0.data == Array("Hello".utf8) }
        #expect(!hasHello, "\(out.messages)")
    }

    @Test("control frames between fragments are fine (§5.4)")
    func interleavedControlFrames() {
        // "Hel" (0), ping "x" (5), pong (8), close 1000 would end the stream so it is left out, "lo" FIN (10)
        let bytes = Wire.bytes("01 03 48 65 6c") + Wire.bytes("89 01 78") + Wire.bytes("8A 00") + Wire.bytes("80 02 6c 6f")
        let out = parseEveryWay(bytes)
        #expect(out.violations.isEmpty)
        #expect(out.controls == [ControlRecord(opcode: .ping, payload: [0x78], offset: 5, close: nil),
                                 ControlRecord(opcode: .pong, payload: [], offset: 8, close: nil)])
        #expect(out.messages == [MessageRecord(opcode: .text, data: Array("Hello".utf8), compressed: false, fragmentCount: 2,
                                               offset: 0, endOffset: 14, isValidUTF8: true)])
    }

    @Test("a masked fragmented message with a ping in the middle, as a client sends it")
    func interleavedMasked() {
        let k1: [UInt8] = [1, 2, 3, 4], k2: [UInt8] = [5, 6, 7, 8], k3: [UInt8] = [9, 10, 11, 12]
        let bytes = Wire.frame(fin: false, opcode: 0x2, key: k1, payload: [1, 2, 3])
            + Wire.frame(opcode: 0x9, key: k2, payload: [7])
            + Wire.frame(opcode: 0x0, key: k3, payload: [4, 5])
        let out = parseEveryWay(bytes, parser: .init(direction: .clientToServer))
        #expect(out.violations.isEmpty)
        #expect(out.controls.map(\.offset) == [9])
        #expect(out.messages.first?.data == [1, 2, 3, 4, 5])
        #expect(out.messages.first?.offset == 0)
        #expect(out.messages.first?.endOffset == bytes.count)
        #expect(out.messages.first?.isValidUTF8 == nil)
    }

    // MARK: UTF-8 (§5.6, §8.1)

    struct UTF8Case: Sendable, CustomTestStringConvertible {
        var claim: String
        var frames: [String]
        /// Stream offset of the first byte that cannot be valid UTF-8; the offset just past the
        /// message when it ends inside a sequence; nil when valid.
        var badAt: Int?
        var testDescription: String { claim }
    }

    static let utf8Cases: [UTF8Case] = [
        // "a", 0xFF, "b": FF never appears in UTF-8; payload starts at 2
        UTF8Case(claim: "FF in one frame", frames: ["81 03 61 FF 62"], badAt: 3),
        // C0 80 is an overlong NUL: C0 is never valid
        UTF8Case(claim: "overlong C0 80", frames: ["81 02 C0 80"], badAt: 2),
        // ED A0 80 would be U+D800, a surrogate: after ED only 80-9F may follow
        UTF8Case(claim: "surrogate ED A0 80", frames: ["81 03 ED A0 80"], badAt: 3),
        // F4 90 80 80 would be U+110000, past U+10FFFF: after F4 only 80-8F may follow
        UTF8Case(claim: "above U+10FFFF", frames: ["81 04 F4 90 80 80"], badAt: 3),
        // E2 82 AC is the euro sign; "€" then "a"
        UTF8Case(claim: "valid three-byte sequence", frames: ["81 04 E2 82 AC 61"], badAt: nil),
        // ends in the middle of the euro sign: the message ends at 4
        UTF8Case(claim: "text ending mid-sequence", frames: ["81 02 E2 82"], badAt: 4),
        // Autobahn 6.4.1 style: "κόσμε" (11 bytes) at 2..12, then a fragment "F4 90 80 80" whose second byte is bad
        UTF8Case(claim: "bad byte inside the second fragment",
                 frames: ["01 0B CE BA E1 BD B9 CF 83 CE BC CE B5", "00 04 F4 90 80 80", "80 02 65 64"], badAt: 16),
        // Autobahn 6.4.2 style: the first fragment ends with F4, a valid start; the next fragment's first byte 90 breaks it
        UTF8Case(claim: "fragment ends mid-sequence, next fragment's first byte breaks it",
                 frames: ["01 0C CE BA E1 BD B9 CF 83 CE BC CE B5 F4", "00 01 90", "80 03 80 80 65"], badAt: 16),
        // the euro sign split over three fragments is fine
        UTF8Case(claim: "a sequence split over three fragments", frames: ["01 01 E2", "00 01 82", "80 01 AC"], badAt: nil),
        // E2 82 then "(" in the next fragment: 28 cannot continue the sequence; it is at 6
        UTF8Case(claim: "second fragment's first byte ends a sequence too early", frames: ["01 02 E2 82", "80 01 28"], badAt: 6),
        // fragments "E2" and "82", then the message ends: the end is at 6
        UTF8Case(claim: "fragmented text ending mid-sequence", frames: ["01 01 E2", "80 01 82"], badAt: 6),
        // E2, an empty continuation, an empty final continuation: the message ends at 7
        UTF8Case(claim: "empty last fragment after a cut sequence", frames: ["01 01 E2", "00 00", "80 00"], badAt: 7),
        // a 4-byte sequence (U+1D11E) split 1 + 3
        UTF8Case(claim: "four-byte sequence split 1 + 3", frames: ["01 01 F0", "80 03 9D 84 9E"], badAt: nil),
    ]

    @Test("invalid UTF-8 fails at the exact first bad byte, across fragments", arguments: utf8Cases)
    func utf8(_ c: UTF8Case) {
        let bytes = c.frames.flatMap(Wire.bytes)
        let out = parseEveryWay(bytes)
        #expect(out.messages.count == 1)
        if let at = c.badAt {
            #expect(out.assemblerKeys == [ViolationKey(.invalidUTF8, at)])
            #expect(out.assemblerViolations.first?.closeCode.code == 1007)
            #expect(out.messages.first?.isValidUTF8 == false)
        } else {
            #expect(out.violations.isEmpty)
            #expect(out.messages.first?.isValidUTF8 == true)
        }
    }

    @Test("the same UTF-8 cases masked, as a client sends them", arguments: utf8Cases)
    func utf8Masked(_ c: UTF8Case) {
        var rng = CodecTestRNG(seed: 31)
        var bytes: [UInt8] = []
        // Each masked header is 4 bytes longer, so a bad byte in frame j moves by 4 * (j + 1);
        // the end of the message belongs to the last frame.
        var moved: Int? = nil
        var plainStart = 0
        for (index, hex) in c.frames.enumerated() {
            let plain = Wire.bytes(hex)
            let payload = Array(plain.dropFirst(2))
            bytes += Wire.frame(fin: plain[0] & 0x80 != 0, opcode: plain[0] & 0x0F, key: rng.key(), payload: payload)
            let plainEnd = plainStart + plain.count
            if let at = c.badAt, moved == nil, at < plainEnd || index == c.frames.count - 1 {
                moved = at + 4 * (index + 1)
            }
            plainStart = plainEnd
        }
        let out = parseEveryWay(bytes, parser: .init(direction: .clientToServer))
        if let moved {
            #expect(out.assemblerKeys == [ViolationKey(.invalidUTF8, moved)])
        } else {
            #expect(out.violations.isEmpty)
        }
    }

    @Test("only the first bad byte of a message is reported")
    func utf8ReportedOnce() {
        // FF, FE in the first fragment and FD in the second: one violation, at 2
        let out = parseEveryWay(Wire.bytes("01 02 FF FE 80 01 FD"))
        #expect(out.assemblerKeys == [ViolationKey(.invalidUTF8, 2)])
        // the next message starts clean
        let next = parseEveryWay(Wire.bytes("01 02 FF FE 80 01 FD 81 02 68 69"))
        #expect(next.messages.last?.isValidUTF8 == true)
        #expect(next.assemblerKeys == [ViolationKey(.invalidUTF8, 2)])
    }

    @Test("the UTF-8 state starts over with each fragmented message",
          arguments: ["01 02 FF FE 80 01 FD", "01 01 E2 80 00", "01 01 E2 82 00"])
    func utf8StateResets(first: String) {
        // a fragmented text message that failed (or ended inside a sequence), then a valid fragmented one
        let firstBytes = Wire.bytes(first)
        let out = parseEveryWay(firstBytes + Wire.bytes("01 01 68 80 01 69"))
        #expect(out.messages.count == 2)
        #expect(out.messages.last?.text == "hi")
        #expect(out.messages.last?.isValidUTF8 == true)
        let allInFirst = out.assemblerKeys.allSatisfy { $0.offset <= firstBytes.count }
        #expect(allInFirst, "\(out.assemblerKeys)")
    }

    @Test("binary messages and validateUTF8 = false are not checked")
    func utf8NotChecked() {
        let binary = parseEveryWay(Wire.bytes("82 02 FF FE"))
        #expect(binary.violations.isEmpty)
        #expect(binary.messages.first?.isValidUTF8 == nil)
        let off = parseEveryWay(Wire.bytes("81 02 FF FE 01 01 E2 80 00"), assembler: .init(validateUTF8: false))
        #expect(off.violations.isEmpty)
        #expect(off.messages.map(\.isValidUTF8) == [nil, nil])
    }

    @Test("the violation text names the message byte that is bad")
    func utf8MessageByteInText() {
        // A fragmented 4-byte binary message first, so no count from it may leak into the next message;
        // then text "ab", FF: the bad byte is message byte 2.
        let out = parseAll(Wire.bytes("02 02 00 00 80 02 00 00") + Wire.bytes("81 03 61 62 FF"))
        #expect(out.assemblerKeys == [ViolationKey(.invalidUTF8, 12)])
        #expect(out.assemblerViolations.first?.message.contains("message byte 2)") == true,
                "\(out.assemblerViolations.first?.message ?? "")")
        // text "ab" without FIN, then continuation "c", FF: the bad byte is message byte 3
        let fragmented = parseAll(Wire.bytes("01 02 61 62 80 02 63 FF"))
        #expect(fragmented.assemblerKeys == [ViolationKey(.invalidUTF8, 7)])
        #expect(fragmented.assemblerViolations.first?.message.contains("message byte 3)") == true,
                "\(fragmented.assemblerViolations.first?.message ?? "")")
    }

    // MARK: Close frames (§5.5.1, §7.4)

    @Test("a close payload of 1 byte")
    func closeOneByte() {
        let out = parseEveryWay(Wire.bytes("88 01 03"))
        #expect(out.assemblerKeys == [ViolationKey(.closePayloadTooShort, 2)])
        #expect(out.assemblerViolations.first?.closeCode.code == 1002)
        #expect(out.controls.count == 1)
        #expect(out.controls.first?.close?.code == nil)
    }

    @Test("an empty close payload is fine and has no code")
    func closeEmpty() {
        let out = parseEveryWay(Wire.bytes("88 00"))
        #expect(out.violations.isEmpty)
        #expect(out.controls == [ControlRecord(opcode: .close, payload: [], offset: 0, close: WebSocketClosePayload(code: nil))])
        #expect(out.closeReceived)
    }

    static let rejectedCloseCodes: [UInt16] = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    static let acceptedCloseCodes: [UInt16] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                               3000, 3999, 4000, 4999]

    @Test("close codes that may not be sent are rejected", arguments: rejectedCloseCodes)
    func closeCodeRejected(code: UInt16) {
        // a server's close frame, behind a ping so its payload starts at 4
        let out = parseEveryWay(Wire.bytes("89 00 88 02") + [UInt8(code >> 8), UInt8(code & 0xFF)])
        #expect(out.assemblerKeys == [ViolationKey(.invalidCloseCode, 4)])
        #expect(out.assemblerViolations.first?.closeCode.code == 1002)
        #expect(out.controls.last?.close?.code?.code == code)
    }

    @Test("close codes that may be sent are accepted", arguments: acceptedCloseCodes)
    func closeCodeAccepted(code: UInt16) {
        let out = parseEveryWay(Wire.bytes("88 02") + [UInt8(code >> 8), UInt8(code & 0xFF)])
        #expect(out.violations.isEmpty)
        #expect(out.controls.first?.close == WebSocketClosePayload(code: WebSocketCloseCode(code: code), reason: ""))
    }

    @Test("a masked close with code and reason")
    func closeMaskedWithReason() {
        let payload: [UInt8] = [0x03, 0xE8] + Array("bye".utf8)
        let bytes = Wire.frame(opcode: 0x8, key: [0xde, 0xad, 0xbe, 0xef], payload: payload)
        let out = parseEveryWay(bytes, parser: .init(direction: .clientToServer))
        #expect(out.violations.isEmpty)
        #expect(out.controls.first?.close == WebSocketClosePayload(code: .normalClosure, reason: "bye"))
        #expect(out.controls.first?.payload == payload)
    }

    @Test("a masked close frame's violations point into its payload, past the key")
    func closeMaskedInvalid() {
        // a client's close frame with code 1005 and reason "a" FF: header 6 bytes, code at 6, FF at 9
        let bytes = Wire.frame(opcode: 0x8, key: [0x11, 0x22, 0x33, 0x44], payload: [0x03, 0xED, 0x61, 0xFF])
        let out = parseEveryWay(bytes, parser: .init(direction: .clientToServer))
        #expect(out.assemblerKeys.sorted() == [ViolationKey(.invalidCloseCode, 6), ViolationKey(.invalidCloseReason, 9)])
        #expect(out.controls.first?.offset == 0)
    }

    @Test("a close reason that is not UTF-8 fails at its first bad byte")
    func closeReasonInvalid() {
        // code 1000, reason "a" FF "b": the reason starts at 4, FF is at 5
        let out = parseEveryWay(Wire.bytes("88 05 03 E8 61 FF 62"))
        #expect(out.assemblerKeys == [ViolationKey(.invalidCloseReason, 5)])
        #expect(out.assemblerViolations.first?.closeCode.code == 1007)
        // code 1000, reason cut inside the euro sign: the reason ends at 6
        let cut = parseEveryWay(Wire.bytes("88 04 03 E8 E2 82"))
        #expect(cut.assemblerKeys == [ViolationKey(.invalidCloseReason, 6)])
        // an invalid code and an invalid reason are both reported
        let both = parseEveryWay(Wire.bytes("88 03 03 ED C0"))
        #expect(both.assemblerKeys.sorted() == [ViolationKey(.invalidCloseCode, 2), ViolationKey(.invalidCloseReason, 4)])
    }

    @Test("WebSocketClosePayload parses and encodes on its own")
    func closePayloadDirect() {
        func parse(_ bytes: [UInt8], offset: Int = 100) -> (WebSocketClosePayload, [ViolationKey]) {
            let r = bytes.withUnsafeBytes { WebSocketClosePayload.parse($0, offset: offset) }
            return (r.payload, r.violations.map(ViolationKey.init))
        }
        #expect(parse([]) == (WebSocketClosePayload(code: nil), []))
        #expect(parse([0x03]).1 == [ViolationKey(.closePayloadTooShort, 100)])
        #expect(parse([0x0F, 0xA1, 0x68, 0x69]) == (WebSocketClosePayload(code: .unknown(4001), reason: "hi"), []))
        #expect(parse([0x03, 0xED]).1 == [ViolationKey(.invalidCloseCode, 100)])
        #expect(WebSocketClosePayload.encode(code: .goingAway, reason: "é") == [0x03, 0xE9, 0xC3, 0xA9])
        #expect(WebSocketClosePayload.encode(code: nil, reason: "ignored") == [])
    }

    @Test("a close frame over 125 bytes keeps its code and the start of its reason (as tshark shows them)")
    func oversizedClose() {
        let r = UInt8(ascii: "r")
        // Code 1000 and a 200-byte reason: 202 bytes, the first 125 kept, so 123 of the reason.
        let long = parseEveryWay(Wire.frame(opcode: 0x8, payload: [0x03, 0xE8] + Array(repeating: r, count: 200)))
        #expect(long.parserKeys == [ViolationKey(.controlFrameTooLong, 1)])
        #expect(long.assemblerKeys.isEmpty)
        #expect(long.controls.map(\.close) == [WebSocketClosePayload(code: .normalClosure, reason: String(repeating: "r", count: 123))])
        // The 125th byte is the first of an "é": the cut leaves it out, and calls nothing invalid.
        let inside = parseEveryWay(Wire.frame(opcode: 0x8, payload: [0x03, 0xE8] + Array(repeating: r, count: 122) + [0xC3, 0xA9, r]))
        #expect(inside.assemblerKeys.isEmpty)
        #expect(inside.controls.map(\.close) == [WebSocketClosePayload(code: .normalClosure, reason: String(repeating: "r", count: 122))])
        // "€" (3 bytes) cut after two, and a 4-byte character cut after three.
        for (character, kept) in [([UInt8]([0xE2, 0x82, 0xAC]), 121), ([0xF0, 0x9F, 0x99, 0x82], 120)] {
            let bytes = [0x03, 0xE8] + Array(repeating: r, count: kept) + character + [r, r]
            let out = parseEveryWay(Wire.frame(opcode: 0x8, payload: bytes))
            #expect(out.assemblerKeys.isEmpty, "\(character)")
            #expect(out.controls.first?.close?.reason == String(repeating: "r", count: kept))
        }
        // A byte that starts no character, as the 125th, is invalid, not cut.
        let lastInvalid = parseEveryWay(Wire.frame(opcode: 0x8, payload: [0x03, 0xE8] + Array(repeating: r, count: 122) + [0xFF, r, r]))
        #expect(lastInvalid.assemblerKeys == [ViolationKey(.invalidCloseReason, 4 + 2 + 122)])
        // Invalid UTF-8 before the cut, and a code that may not be sent, are still reported.
        let bad = parseEveryWay(Wire.frame(opcode: 0x8, payload: [0x03, 0xED, r, 0xFF] + Array(repeating: r, count: 150)))
        #expect(bad.assemblerKeys.sorted() == [ViolationKey(.invalidCloseCode, 4), ViolationKey(.invalidCloseReason, 7)])
        #expect(bad.controls.first?.close?.code == .noStatusReceived)
        // A ping over 125 bytes: its first 125.
        let ping = parseEveryWay(Wire.frame(opcode: 0x9, payload: Wire.pattern(300)))
        #expect(ping.controls.map(\.payload) == [Array(Wire.pattern(300).prefix(125))])
    }

    // MARK: Limits (§10.4)

    @Test("a message over maxMessageSize is dropped with 1009")
    func messageTooLarge() {
        let config = WebSocketMessageAssemblerConfiguration(maxMessageSize: 10)
        let atLimit = parseEveryWay(Wire.frame(opcode: 0x2, payload: Wire.pattern(10)), assembler: config)
        #expect(atLimit.violations.isEmpty)
        #expect(atLimit.messages.count == 1)

        // 11 bytes in one frame: message byte 10, at stream offset 2 + 10, is the first over the limit
        let over = parseEveryWay(Wire.frame(opcode: 0x2, payload: Wire.pattern(11)) + Wire.bytes("81 02 68 69"), assembler: config)
        #expect(over.assemblerKeys == [ViolationKey(.messageTooLarge, 12)])
        #expect(over.assemblerViolations.first?.closeCode.code == 1009)
        #expect(over.messages.map(\.data) == [Array("hi".utf8)], "the next message is unaffected")
    }

    @Test("a fragmented message crossing maxMessageSize fails at the first byte over the limit")
    func fragmentedMessageTooLarge() {
        let config = WebSocketMessageAssemblerConfiguration(maxMessageSize: 10)
        // 4 + 4 + 4 bytes: the third fragment (offset 12, payload at 14) carries message bytes 8-11; byte 10 is at 16
        let bytes = Wire.frame(fin: false, opcode: 0x2, payload: Wire.pattern(4))
            + Wire.frame(fin: false, opcode: 0x0, payload: Wire.pattern(4))
            + Wire.frame(opcode: 0x0, payload: Wire.pattern(4))
        let out = parseEveryWay(bytes, assembler: config)
        #expect(out.assemblerKeys == [ViolationKey(.messageTooLarge, 16)])
        #expect(out.messages.isEmpty)
        #expect(!out.insideMessage)

        // 5 + 5 bytes is exactly the limit and fine
        let atLimit = parseEveryWay(Wire.frame(fin: false, opcode: 0x2, payload: Wire.pattern(5))
                                    + Wire.frame(opcode: 0x0, payload: Wire.pattern(5, start: 5)), assembler: config)
        #expect(atLimit.violations.isEmpty)
        #expect(atLimit.messages.map(\.data) == [Wire.pattern(10)])
    }

    @Test("more fragments than maxFragments fail with 1009 at the first fragment too many")
    func tooManyFragments() {
        let config = WebSocketMessageAssemblerConfiguration(maxFragments: 3)
        // text "a", then continuations "b", "c" (3 fragments: fine)
        let three = parseEveryWay(Wire.bytes("01 01 61 00 01 62 80 01 63"), assembler: config)
        #expect(three.violations.isEmpty)
        #expect(three.messages.first?.text == "abc")
        #expect(three.messages.first?.fragmentCount == 3)
        // five fragments of one byte, 3 bytes each: the fourth starts at 9; then "hi" at 15
        let five = parseEveryWay(Wire.bytes("01 01 61 00 01 62 00 01 63 00 01 64 80 01 65 81 02 68 69"), assembler: config)
        #expect(five.assemblerKeys == [ViolationKey(.tooManyFragments, 9)])
        #expect(five.assemblerViolations.first?.closeCode.code == 1009)
        #expect(five.messages.map(\.data) == [Array("hi".utf8)])
    }

    // MARK: Compression (RFC 7692 §6.1)

    static let deflate = (parser: WebSocketFrameParserConfiguration(allowedReservedBits: 0x40),
                          assembler: WebSocketMessageAssemblerConfiguration(compressionNegotiated: true))

    @Test("a compressed first frame passes through with compressed == true and no UTF-8 check")
    func compressedPassesThrough() {
        // text with RSV1, payload that is not UTF-8 (deflated data need not be)
        let out = parseEveryWay(Wire.bytes("C1 03 FF FE FD"), parser: Self.deflate.parser, assembler: Self.deflate.assembler)
        #expect(out.violations.isEmpty)
        #expect(out.messages == [MessageRecord(opcode: .text, data: [0xFF, 0xFE, 0xFD], compressed: true, fragmentCount: 1,
                                               offset: 0, endOffset: 5, isValidUTF8: nil)])
        // fragmented: RSV1 on the first only
        let fragmented = parseEveryWay(Wire.bytes("41 02 FF FE 80 01 FD"), parser: Self.deflate.parser, assembler: Self.deflate.assembler)
        #expect(fragmented.violations.isEmpty)
        #expect(fragmented.messages.first?.compressed == true)
        #expect(fragmented.messages.first?.fragmentCount == 2)
        #expect(fragmented.messages.first?.data == [0xFF, 0xFE, 0xFD])
        // without RSV1 the same negotiated connection checks UTF-8
        let plain = parseEveryWay(Wire.bytes("81 03 FF FE FD"), parser: Self.deflate.parser, assembler: Self.deflate.assembler)
        #expect(plain.assemblerKeys == [ViolationKey(.invalidUTF8, 2)])
        #expect(plain.messages.first?.compressed == false)
    }

    @Test("RSV1 on a continuation frame with compression negotiated")
    func rsv1OnContinuation() {
        // "ab" starts a message; the continuation at 4 has RSV1
        let out = parseEveryWay(Wire.bytes("01 02 61 62 C0 01 63"), parser: Self.deflate.parser, assembler: Self.deflate.assembler)
        #expect(out.assemblerKeys == [ViolationKey(.compressedBitMisplaced, 4)])
        #expect(out.assemblerViolations.first?.closeCode.code == 1002)
    }

    @Test("RSV1 on a control frame with compression negotiated", arguments: ["C9 00", "CA 01 78", "C8 02 03 E8"])
    func rsv1OnControl(hex: String) {
        // behind a good text frame "hi" so the control frame is at 4
        let out = parseEveryWay(Wire.bytes("81 02 68 69") + Wire.bytes(hex), parser: Self.deflate.parser, assembler: Self.deflate.assembler)
        #expect(out.assemblerKeys == [ViolationKey(.compressedBitMisplaced, 4)])
        #expect(out.parserViolations.isEmpty)
    }

    @Test("RSV1 without negotiation is the parser's reserved-bits violation, not a compressed message")
    func rsv1NotNegotiated() {
        let out = parseEveryWay(Wire.bytes("C1 02 68 69"))
        #expect(out.parserKeys == [ViolationKey(.reservedBits, 0)])
        #expect(out.messages.first?.compressed != true)
    }

    // MARK: After close (§5.5.1)

    @Test("frames after a close frame")
    func framesAfterClose() {
        // close 1000 (0-3), then text "hi" at 4, then ping at 8
        let out = parseEveryWay(Wire.bytes("88 02 03 E8 81 02 68 69 89 00"))
        #expect(out.assemblerKeys.first == ViolationKey(.frameAfterClose, 4))
        #expect(out.assemblerViolations.first?.closeCode.code == 1002)
        #expect(out.closeReceived)
        // a close after a close is a frame after close too
        let twice = parseEveryWay(Wire.bytes("88 00 88 00"))
        #expect(twice.assemblerKeys.first == ViolationKey(.frameAfterClose, 2))
    }

    // MARK: Offsets

    @Test("messages report the offset of their first frame and the end of their last")
    func messageOffsets() {
        // binary "ab" (0-3), text "Hel"+"lo" with a ping between (4-8, 9-10, 11-14), binary empty (15-16)
        let bytes = Wire.bytes("82 02 61 62 01 03 48 65 6c 89 00 80 02 6c 6f 82 00")
        let out = parseEveryWay(bytes)
        #expect(out.violations.isEmpty)
        #expect(out.messages.map(\.offset) == [0, 4, 15])
        #expect(out.messages.map(\.endOffset) == [4, 15, 17])
        #expect(out.messages.map(\.fragmentCount) == [1, 2, 1])
        #expect(out.controls.map(\.offset) == [9])
    }
}

/// `receive(_:keeping:_:)` and `releaseKept`: a caller that cannot hold a message whole keeps its
/// first bytes; the rest is counted and still checked.
@Suite("Message assembler keeping only a message's first bytes")
struct AssemblerKeepingTests {
    struct Seen {
        var payload: [UInt8] = []
        var unkept = 0
        var valid: Bool?
        var violations: [WebSocketViolation] = []
        var messages = 0
    }

    /// Feeds `bytes` (whole frames) keeping `keep` bytes of each message; `release` lets go of all
    /// but the first `release.keep` bytes after `release.after` frames.
    static func run(_ bytes: [UInt8], keep: Int, release: (after: Int, keep: Int)? = nil) -> (Seen, WebSocketMessageAssembler) {
        var parser = WebSocketFrameParser(configuration: .init(direction: .serverToClient))
        var assembler = WebSocketMessageAssembler()
        var seen = Seen()
        var frames = 0
        var copy = bytes
        copy.withUnsafeMutableBytes { raw in
            parser.parse(raw) { piece in
                if let release, frames == release.after { assembler.releaseKept(keepingFirst: release.keep) }
                seen.violations += assembler.receive(piece, keeping: keep) { item in
                    if case .message(let m) = item {
                        seen.payload = Array(m.payload)
                        seen.unkept = m.unkept
                        seen.valid = m.isValidUTF8
                        seen.messages += 1
                    }
                }
                frames += 1
            }
        }
        return (seen, assembler)
    }

    static func fragments(_ payload: [UInt8], size: Int, opcode: WebSocketOpcode = .text) -> [UInt8] {
        WebSocketFrameEncoder.fragment(opcode: opcode, payload: payload, fragmentSize: size).flatMap { WebSocketFrameEncoder.encode($0) }
    }

    @Test func theFirstBytesAreKeptAndTheRestCounted() {
        let text = Array("κόσμε and some more text after it".utf8)
        for keep in [0, 1, 5, 12, text.count, 1 << 20] {
            let (seen, _) = Self.run(Self.fragments(text, size: 4), keep: keep)
            #expect(seen.messages == 1)
            #expect(seen.payload == Array(text.prefix(keep)), "keep \(keep)")
            #expect(seen.payload.count + seen.unkept == text.count, "keep \(keep)")
            #expect(seen.valid == true, "keep \(keep)")
            #expect(seen.violations.isEmpty)
        }
    }

    @Test func textIsCheckedPastWhatIsKept() {
        var text = Array(String(repeating: "abc", count: 100).utf8)
        text[250] = 0xC0
        let (seen, _) = Self.run(Self.fragments(text, size: 16), keep: 10)
        #expect(seen.valid == false)
        #expect(seen.payload == Array(text.prefix(10)))
        // Frames of 16 bytes have 2-byte headers: byte 250 of the message is in frame 15 at payload byte 10.
        #expect(seen.violations.map(\.rule) == [.invalidUTF8])
        #expect(seen.violations.first?.offset == 15 * 18 + 2 + 10)
        // A character cut by the end of the message is found too.
        let cut = Array("abcdef".utf8) + [0xE2, 0x82]
        let (ending, _) = Self.run(Self.fragments(cut, size: 3), keep: 2)
        #expect(ending.valid == false)
        #expect(ending.violations.map(\.rule) == [.invalidUTF8])
    }

    @Test func releasingWhatWasKept() {
        let data = (0..<200).map { UInt8($0) }
        // After 5 frames of 20 bytes, all but the first 30 bytes are let go, and nothing more is kept.
        let (seen, assembler) = Self.run(Self.fragments(data, size: 20, opcode: .binary), keep: Int.max, release: (5, 30))
        // What is kept stays the message's first bytes: nothing after what was let go.
        #expect(seen.payload == Array(data.prefix(30)))
        #expect(seen.unkept == 170)
        #expect(assembler.keptCapacity < 64)
        let (kept, _) = Self.run(Self.fragments(data, size: 20, opcode: .binary), keep: 30, release: (5, 30))
        #expect(kept.payload == Array(data.prefix(30)))
        #expect(kept.unkept == 170)
    }

    @Test func aLargeBufferIsNotKeptAfterItsMessage() {
        let data = [UInt8](repeating: 7, count: 300_000)
        var parser = WebSocketFrameParser(configuration: .init(direction: .serverToClient))
        var assembler = WebSocketMessageAssembler(configuration: .init(retainedBufferCapacity: 64 << 10))
        var copy = Self.fragments(data, size: 50_000, opcode: .binary)
        var lengths: [Int] = []
        copy.withUnsafeMutableBytes { raw in
            parser.parse(raw) { piece in
                _ = assembler.receive(piece) { if case .message(let m) = $0 { lengths.append(m.payload.count) } }
            }
        }
        #expect(lengths == [300_000])
        #expect(assembler.keptCapacity <= 64 << 10)
    }
}
