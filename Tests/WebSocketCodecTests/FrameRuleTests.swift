import Testing
@testable import WebSocketCodec

/// One frame-level rule check. The frame under test is placed after a good frame and before another
/// so that offsets are checked as stream offsets and the parser is seen to carry on (or to stop).
struct FrameRuleCase: Sendable, CustomTestStringConvertible {
    var claim: String
    /// Header (and any payload written out) of the frame under test.
    var hex: String
    /// Pattern bytes appended after `hex` as payload.
    var payloadCount: Int = 0
    var direction: WebSocketDirection? = nil
    var allowedReservedBits: UInt8 = 0
    var maxFrameSize: UInt64 = 64 << 20
    /// Expected violations: rule, offset within the frame, close code.
    var expected: [(rule: WebSocketViolation.Rule, at: Int, close: UInt16)]
    /// The parser gives up at this frame.
    var stops = false

    var testDescription: String { claim }

    var frameBytes: [UInt8] { Wire.bytes(hex) + Wire.pattern(payloadCount) }

    /// A good frame for the direction: masked when the client sent it, unmasked otherwise.
    var leading: [UInt8] {
        direction == .clientToServer ? Wire.bytes("81 85 37 fa 21 3d 7f 9f 4d 51 58") : Wire.bytes("81 05 48 65 6c 6c 6f")
    }

    var trailing: [UInt8] {
        direction == .clientToServer ? Wire.bytes("8A 80 01 02 03 04") : Wire.bytes("8A 00")
    }

    var configuration: WebSocketFrameParserConfiguration {
        WebSocketFrameParserConfiguration(direction: direction, allowedReservedBits: allowedReservedBits, maxFrameSize: maxFrameSize)
    }
}

@Suite("Frame rules (RFC 6455 §5.1–§5.5, §10.4)")
struct FrameRuleTests {
    static let cases: [FrameRuleCase] = [
        // text, FIN, RSV1 set, no extension negotiated
        .init(claim: "RSV1 without an extension", hex: "C1 00", expected: [(.reservedBits, 0, 1002)]),
        // text, FIN, RSV2 set
        .init(claim: "RSV2 without an extension", hex: "A1 00", expected: [(.reservedBits, 0, 1002)]),
        // text, FIN, RSV3 set
        .init(claim: "RSV3 without an extension", hex: "91 00", expected: [(.reservedBits, 0, 1002)]),
        // binary, FIN, all three RSV bits: one violation naming them all
        .init(claim: "RSV1-3 together", hex: "F2 00", expected: [(.reservedBits, 0, 1002)]),
        // text, FIN, RSV1 set, permessage-deflate claimed RSV1
        .init(claim: "RSV1 claimed by an extension", hex: "C1 00", allowedReservedBits: 0x40, expected: []),
        // RSV1 claimed, but RSV2 also set
        .init(claim: "RSV2 while only RSV1 is claimed", hex: "E1 00", allowedReservedBits: 0x40, expected: [(.reservedBits, 0, 1002)]),
        // RSV3 while only RSV1 is claimed
        .init(claim: "RSV3 while only RSV1 is claimed", hex: "D1 00", allowedReservedBits: 0x40, expected: [(.reservedBits, 0, 1002)]),

        // reserved non-control opcodes 0x3-0x7 (§5.2)
        .init(claim: "reserved opcode 0x3", hex: "83 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0x4", hex: "84 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0x5", hex: "85 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0x6", hex: "86 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0x7", hex: "87 02 68 69", expected: [(.reservedOpcode, 0, 1002)]),
        // reserved control opcodes 0xB-0xF (§5.2)
        .init(claim: "reserved opcode 0xB", hex: "8B 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0xC", hex: "8C 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0xD", hex: "8D 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0xE", hex: "8E 00", expected: [(.reservedOpcode, 0, 1002)]),
        .init(claim: "reserved opcode 0xF", hex: "8F 02 68 69", expected: [(.reservedOpcode, 0, 1002)]),

        // control frames without FIN (§5.5)
        .init(claim: "fragmented ping", hex: "09 00", expected: [(.fragmentedControlFrame, 0, 1002)]),
        .init(claim: "fragmented pong", hex: "0A 02 68 69", expected: [(.fragmentedControlFrame, 0, 1002)]),
        .init(claim: "fragmented close", hex: "08 02 03 E8", expected: [(.fragmentedControlFrame, 0, 1002)]),

        // claims a 16-bit length of 126 on a ping: control payloads are at most 125 (§5.5)
        .init(claim: "ping with 126 payload bytes", hex: "89 7E 00 7E", payloadCount: 126, expected: [(.controlFrameTooLong, 1, 1002)]),
        // claims a 16-bit length of 126 on a pong
        .init(claim: "pong with 126 payload bytes", hex: "8A 7E 00 7E", payloadCount: 126, expected: [(.controlFrameTooLong, 1, 1002)]),
        // ping with exactly 125 bytes is the limit and fine
        .init(claim: "ping with 125 payload bytes", hex: "89 7D", payloadCount: 125, expected: []),

        // claims a 16-bit length of 125: must have used the 7-bit form (§5.2)
        .init(claim: "16-bit length 125", hex: "82 7E 00 7D", payloadCount: 125, expected: [(.nonMinimalLength, 2, 1002)]),
        // claims a 16-bit length of 0
        .init(claim: "16-bit length 0", hex: "82 7E 00 00", expected: [(.nonMinimalLength, 2, 1002)]),
        // claims a 16-bit length of 126: the smallest that needs the 16-bit form
        .init(claim: "16-bit length 126", hex: "82 7E 00 7E", payloadCount: 126, expected: []),
        // claims a 64-bit length of 65535: must have used the 16-bit form
        .init(claim: "64-bit length 65535", hex: "82 7F 00000000 0000FFFF", payloadCount: 65535, expected: [(.nonMinimalLength, 2, 1002)]),
        // claims a 64-bit length of 5: must have used the 7-bit form
        .init(claim: "64-bit length 5", hex: "82 7F 00000000 00000005", payloadCount: 5, expected: [(.nonMinimalLength, 2, 1002)]),
        // claims a 64-bit length of 65536: the smallest that needs the 64-bit form
        .init(claim: "64-bit length 65536", hex: "82 7F 00000000 00010000", payloadCount: 65536, expected: []),
        // claims a 64-bit length of 2^63 + 5: the top bit must be 0 (§5.2); the parser cannot skip it
        .init(claim: "64-bit length with the top bit set", hex: "82 7F 80000000 00000005",
              expected: [(.lengthTopBitSet, 2, 1002)], stops: true),
        // claims a 64-bit length of 2^64 - 1
        .init(claim: "64-bit length of all ones", hex: "82 FF FFFFFFFF FFFFFFFF 01020304",
              expected: [(.lengthTopBitSet, 2, 1002)], stops: true),

        // a client frame without a mask (§5.1)
        .init(claim: "unmasked client frame", hex: "81 05 48 65 6c 6c 6f", direction: .clientToServer,
              expected: [(.unmaskedClientFrame, 1, 1002)]),
        // a server frame with a mask (§5.1)
        .init(claim: "masked server frame", hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58", direction: .serverToClient,
              expected: [(.maskedServerFrame, 1, 1002)]),
        // the same frames in the right direction
        .init(claim: "masked client frame", hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58", direction: .clientToServer, expected: []),
        .init(claim: "unmasked server frame", hex: "81 05 48 65 6c 6c 6f", direction: .serverToClient, expected: []),
        // without a direction masking is not checked either way
        .init(claim: "masked frame, direction unknown", hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58", expected: []),
        .init(claim: "unmasked frame, direction unknown", hex: "81 05 48 65 6c 6c 6f", expected: []),

        // 101 payload bytes where the limit is 100 (§10.4)
        .init(claim: "frame over maxFrameSize", hex: "82 65", payloadCount: 101, maxFrameSize: 100,
              expected: [(.frameTooLarge, 1, 1009)]),
        // exactly at the limit
        .init(claim: "frame at maxFrameSize", hex: "82 64", payloadCount: 100, maxFrameSize: 100, expected: []),
        // claims a 16-bit length of 1001 where the limit is 1000
        .init(claim: "16-bit frame over maxFrameSize", hex: "82 7E 03 E9", payloadCount: 1001, maxFrameSize: 1000,
              expected: [(.frameTooLarge, 1, 1009)]),

        // ping without FIN, RSV1-3 set, claiming a 16-bit length of 125: three rules at once
        .init(claim: "several violations in one header", hex: "79 7E 00 7D", payloadCount: 125,
              expected: [(.reservedBits, 0, 1002), (.fragmentedControlFrame, 0, 1002), (.nonMinimalLength, 2, 1002)]),
        // reserved control opcode 0xB with 200 bytes, unmasked from a client
        .init(claim: "reserved control opcode, too long, unmasked client", hex: "8B 7E 00 C8", payloadCount: 200,
              direction: .clientToServer,
              expected: [(.reservedOpcode, 0, 1002), (.controlFrameTooLong, 1, 1002), (.unmaskedClientFrame, 1, 1002)]),
    ]

    @Test("each frame-level rule is reported with its rule, stream offset and close code", arguments: cases)
    func frameRule(_ c: FrameRuleCase) {
        let frameOffset = c.leading.count
        let input = c.leading + c.frameBytes + c.trailing
        let chunkings: [FeedChunking] = input.count > 10_000 ? FeedChunking.coarse : FeedChunking.standard
        let out = parseEveryWay(input, parser: c.configuration, chunkings: chunkings)

        let expected = c.expected.map { ViolationKey($0.rule, frameOffset + $0.at) }.sorted()
        #expect(out.parserKeys.sorted() == expected)
        for v in out.parserViolations {
            let want = c.expected.first { $0.rule == v.rule }?.close
            #expect(v.closeCode.code == want, "close code of \(v.rule)")
            #expect(v.closeCode.code == expectedCloseCode(for: v.rule))
        }
        // Violations travel with the frame they belong to, not with its neighbours.
        #expect(out.frames.first?.violations == [])
        #expect(out.frames.count >= 2)
        if out.frames.count >= 2 {
            #expect(out.frames[1].offset == frameOffset)
            #expect(out.frames[1].violations.sorted() == expected)
        }
        if c.stops {
            let expectedFailure = expected.first { $0.rule == .lengthTopBitSet }
            #expect(out.failure.map(ViolationKey.init) == expectedFailure)
            #expect(out.frames.count == 2, "nothing after the unskippable length")
            #expect(out.frames.last?.complete == false)
        } else {
            #expect(out.failure == nil)
            #expect(out.frames.count == 3)
            #expect(out.frames.last?.offset == frameOffset + c.frameBytes.count)
            #expect(out.frames.last?.violations == [])
            #expect(out.frames.dropLast().last?.payload.count == c.frameBytes.count - (out.frames.dropLast().last?.header.headerLength ?? 0))
        }

        // The static check gives the same answer as the parser.
        let header = c.frameBytes.withUnsafeBytes { WebSocketFrameHeader.parse($0) }
        if case .header(let h) = header {
            let direct = WebSocketFrameParser.violations(of: h, at: frameOffset, configuration: c.configuration)
            #expect(direct.map(ViolationKey.init).sorted() == expected)
        } else {
            Issue.record("fixture header did not parse")
        }
    }

    @Test("every reserved opcode is rejected and no other", arguments: 0...15)
    func reservedOpcodes(value: Int) {
        let reserved = (0x3...0x7).contains(value) || (0xB...0xF).contains(value)
        let frame = [0x80 | UInt8(value), 0x00]
        let out = parseEveryWay(frame)
        #expect(out.parserKeys == (reserved ? [ViolationKey(.reservedOpcode, 0)] : []))
    }

    @Test("every combination of RSV bits against every allowed set", arguments: 0...7, 0...7)
    func reservedBitCombinations(set: Int, allowed: Int) {
        let bits = UInt8(set) << 4
        let allowedBits = UInt8(allowed) << 4
        let out = parseAll([0x82 | bits, 0x00], parser: .init(allowedReservedBits: allowedBits))
        let violates = bits & ~allowedBits != 0
        #expect(out.parserKeys == (violates ? [ViolationKey(.reservedBits, 0)] : []))
    }

    @Test("every violation rule maps to the close code of §7.4.1", arguments: WebSocketViolation.Rule.allCases)
    func ruleCloseCodes(rule: WebSocketViolation.Rule) {
        #expect(rule.closeCode.code == expectedCloseCode(for: rule))
        let v = WebSocketViolation(rule, offset: 42, "why")
        #expect(v.closeCode.code == expectedCloseCode(for: rule))
        #expect(v.description.contains("at byte 42"))
        #expect(rule.section.hasPrefix("RFC "))
    }
}
