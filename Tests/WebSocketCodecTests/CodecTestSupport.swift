import Testing
@testable import WebSocketCodec

// Helpers shared by the codec-core suites (FrameParserTests, FrameRuleTests, FrameStreamingTests,
// MaskingTests, EncoderTests, AssemblerTests, CloseCodeTests, OpcodeTests). Names carry a
// `Codec`/`Wire` prefix so they cannot collide with helpers of other suites in this target.

// MARK: - Seeded randomness

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
/// a tiny generator whose output depends only on the seed, so every random test repeats exactly.
struct CodecTestRNG: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes, eight at a time.
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i + 8 <= count {
            var word = next()
            for j in 0..<8 {
                out[i + j] = UInt8(truncatingIfNeeded: word)
                word >>= 8
            }
            i += 8
        }
        var word = next()
        while i < count {
            out[i] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            i += 1
        }
        return out
    }

    mutating func key() -> [UInt8] { bytes(4) }

    mutating func bool() -> Bool { next() & 1 == 1 }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

// MARK: - Bytes written by hand

/// Builds wire bytes straight from RFC 6455 §5.2 and §5.3, independently of the encoder under test,
/// so that encoder and parser are both checked against this reading of the RFC.
enum Wire {
    /// Hex digits to bytes; whitespace is ignored. Traps on anything else so a typo in a fixture
    /// cannot silently change what it claims.
    static func bytes(_ hex: String) -> [UInt8] {
        let digits = hex.filter { !$0.isWhitespace }
        precondition(digits.count % 2 == 0, "odd number of hex digits in \(hex)")
        var out: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { preconditionFailure("bad hex in \(hex)") }
            out.append(byte)
            index = next
        }
        return out
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// How the length is written: §5.2 requires the minimal form; the others build the
    /// non-minimal encodings a strict parser must reject.
    enum LengthForm: Sendable { case minimal, sevenBit, sixteenBit, sixtyFourBit }

    /// One frame. `rsv` is in wire positions (0x40 RSV1, 0x20 RSV2, 0x10 RSV3). `claimedLength`
    /// replaces the real payload length in the header.
    static func frame(
        fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, key: [UInt8]? = nil, payload: [UInt8] = [],
        length form: LengthForm = .minimal, claimedLength: UInt64? = nil
    ) -> [UInt8] {
        let length = claimedLength ?? UInt64(payload.count)
        var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv & 0x70) | (opcode & 0x0F)]
        let maskBit: UInt8 = key == nil ? 0 : 0x80
        let chosen: LengthForm
        switch form {
        case .minimal: chosen = length <= 125 ? .sevenBit : (length <= 65535 ? .sixteenBit : .sixtyFourBit)
        default: chosen = form
        }
        switch chosen {
        case .sevenBit, .minimal:
            out.append(maskBit | UInt8(length & 0x7F))
        case .sixteenBit:
            out.append(maskBit | 126)
            out += [UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        case .sixtyFourBit:
            out.append(maskBit | 127)
            for shift in [56, 48, 40, 32, 24, 16, 8, 0] as [UInt64] { out.append(UInt8(length >> shift & 0xFF)) }
        }
        if let key {
            precondition(key.count == 4)
            out += key
            out += mask(payload, key: key)
        } else {
            out += payload
        }
        return out
    }

    /// §5.3: transformed-octet-i = original-octet-i XOR masking-key-octet-((i + phase) MOD 4).
    static func mask(_ payload: [UInt8], key: [UInt8], phase: Int = 0) -> [UInt8] {
        var out = payload
        for i in out.indices { out[i] ^= key[(i + phase) % 4] }
        return out
    }

    /// A recognisable payload: byte i is i mod 251 (a prime, so it never lines up with the 4-byte key).
    static func pattern(_ count: Int, start: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8((start + $0) % 251) }
    }

    static func key(_ key: [UInt8]) -> WebSocketMaskingKey { WebSocketMaskingKey(key[0], key[1], key[2], key[3]) }
}

// MARK: - Feeding

/// How input is cut into the reads a parser sees (wslay's scripted_data_feed idea): whole, one byte
/// at a time, fixed-size reads, or random reads from a seeded generator.
enum FeedChunking: Sendable, Hashable, CustomTestStringConvertible {
    case whole
    case oneByte
    case fixed(Int)
    case random(seed: UInt64)

    /// Every decode check runs under all of these.
    static let standard: [FeedChunking] = [.whole, .oneByte, .fixed(3), .random(seed: 0x5EED_0001), .random(seed: 0x5EED_0002)]
    /// For large inputs, where one byte at a time costs too much.
    static let coarse: [FeedChunking] = [.whole, .fixed(1000), .random(seed: 0x5EED_0003), .random(seed: 0x5EED_0004)]

    var testDescription: String {
        switch self {
        case .whole: return "whole"
        case .oneByte: return "one byte at a time"
        case .fixed(let n): return "\(n)-byte reads"
        case .random(let seed): return "random reads (seed \(seed))"
        }
    }

    func cuts(_ count: Int) -> [Range<Int>] {
        switch self {
        case .whole:
            return count == 0 ? [] : [0..<count]
        case .oneByte:
            return (0..<count).map { $0..<($0 + 1) }
        case .fixed(let n):
            return stride(from: 0, to: count, by: n).map { $0..<min(count, $0 + n) }
        case .random(let seed):
            var rng = CodecTestRNG(seed: seed)
            var out: [Range<Int>] = []
            var start = 0
            while start < count {
                let size: Int
                switch rng.next() % 4 {
                case 0: size = rng.int(1...3)
                case 1: size = rng.int(1...17)
                case 2: size = rng.int(1...300)
                default: size = rng.int(1...max(1, count / 3))
                }
                let end = min(count, start + size)
                out.append(start..<end)
                start = end
            }
            return out
        }
    }
}

// MARK: - Records of what came out

/// A violation reduced to what must not depend on chunking: the rule and where.
struct ViolationKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    var rule: WebSocketViolation.Rule
    var offset: Int

    init(_ rule: WebSocketViolation.Rule, _ offset: Int) {
        self.rule = rule
        self.offset = offset
    }

    init(_ v: WebSocketViolation) { self.init(v.rule, v.offset) }

    static func < (a: ViolationKey, b: ViolationKey) -> Bool {
        (a.offset, a.rule.rawValue) < (b.offset, b.rule.rawValue)
    }

    var description: String { "\(rule.rawValue)@\(offset)" }
}

struct PieceRecord: Hashable {
    var header: WebSocketFrameHeader
    var frameOffset: Int
    var payloadOffset: UInt64
    var streamOffset: Int
    var count: Int
    var isFirst: Bool
    var isLast: Bool
    var violations: [ViolationKey]
}

/// A frame put back together from its pieces.
struct FrameRecord: Hashable {
    var header: WebSocketFrameHeader
    var offset: Int
    var payload: [UInt8]
    var violations: [ViolationKey]
    /// The last piece arrived.
    var complete: Bool

    /// The frame as the encoder takes it.
    var frame: WebSocketFrame {
        WebSocketFrame(fin: header.fin, rsv1: header.rsv1, rsv2: header.rsv2, rsv3: header.rsv3, opcode: header.opcode,
                       maskingKey: header.maskingKey, payload: payload)
    }
}

struct MessageRecord: Hashable {
    var opcode: WebSocketOpcode
    var data: [UInt8]
    var compressed: Bool
    var fragmentCount: Int
    var offset: Int
    var endOffset: Int
    var isValidUTF8: Bool?

    var text: String? { String(validating: data, as: UTF8.self) }
}

struct ControlRecord: Hashable {
    var opcode: WebSocketOpcode
    var payload: [UInt8]
    var offset: Int
    var close: WebSocketClosePayload?
}

struct PendingRecord: Hashable, CustomStringConvertible {
    var offset: Int
    var received: UInt64
    var missing: UInt64

    var description: String { "(offset \(offset), received \(received), missing \(missing))" }
}

/// Everything a parser plus assembler produced for one input.
struct CodecOutcome {
    var pieces: [PieceRecord] = []
    var frames: [FrameRecord] = []
    var messages: [MessageRecord] = []
    var controls: [ControlRecord] = []
    /// Violations the parser attached to frames, in stream order.
    var parserViolations: [WebSocketViolation] = []
    /// Violations the assembler returned, in stream order.
    var assemblerViolations: [WebSocketViolation] = []
    /// Both, in the order they were reported.
    var violations: [WebSocketViolation] = []
    var failure: WebSocketViolation?
    var pending: PendingRecord?
    var bytesFed = 0
    var insideMessage = false
    var closeReceived = false

    var violationKeys: [ViolationKey] { violations.map(ViolationKey.init) }
    var parserKeys: [ViolationKey] { parserViolations.map(ViolationKey.init) }
    var assemblerKeys: [ViolationKey] { assemblerViolations.map(ViolationKey.init) }

    fileprivate mutating func record(_ piece: WebSocketFramePiece, keepPieces: Bool) {
        let keys = piece.violations.map(ViolationKey.init)
        if keepPieces {
            pieces.append(PieceRecord(header: piece.header, frameOffset: piece.frameOffset, payloadOffset: piece.payloadOffset,
                                      streamOffset: piece.streamOffset, count: piece.payload.count, isFirst: piece.isFirst,
                                      isLast: piece.isLast, violations: keys))
        }
        parserViolations += piece.violations
        violations += piece.violations
        if piece.isFirst || frames.isEmpty || frames[frames.count - 1].offset != piece.frameOffset {
            frames.append(FrameRecord(header: piece.header, offset: piece.frameOffset, payload: Array(piece.payload),
                                      violations: keys, complete: piece.isLast))
        } else {
            frames[frames.count - 1].payload += piece.payload
            frames[frames.count - 1].complete = piece.isLast
        }
    }

    fileprivate mutating func record(_ item: WebSocketAssembledItem) {
        switch item {
        case .message(let m):
            messages.append(MessageRecord(opcode: m.opcode, data: Array(m.payload), compressed: m.compressed,
                                          fragmentCount: m.fragmentCount, offset: m.offset, endOffset: m.endOffset,
                                          isValidUTF8: m.isValidUTF8))
        case .control(let c):
            controls.append(ControlRecord(opcode: c.opcode, payload: Array(c.payload), offset: c.offset, close: c.close))
        }
    }

    /// What must be the same however the input was cut.
    var signature: CodecSignature {
        CodecSignature(frames: frames, messages: messages, controls: controls, violations: violationKeys,
                       failure: failure.map(ViolationKey.init), pending: pending, bytesFed: bytesFed)
    }
}

struct CodecSignature: Equatable {
    var frames: [FrameRecord]
    var messages: [MessageRecord]
    var controls: [ControlRecord]
    var violations: [ViolationKey]
    var failure: ViolationKey?
    var pending: PendingRecord?
    var bytesFed: Int

    /// A short account of the first difference (payloads can be megabytes, so never print them whole).
    func firstDifference(from other: CodecSignature) -> String? {
        if frames.count != other.frames.count { return "\(frames.count) frames vs \(other.frames.count)" }
        for (i, (a, b)) in zip(frames, other.frames).enumerated() where a != b {
            if a.payload != b.payload {
                let at = zip(a.payload, b.payload).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                return "frame \(i) at \(a.offset): payload differs (\(a.payload.count) vs \(b.payload.count) bytes, first difference at \(at.map(String.init) ?? "the end"))"
            }
            return "frame \(i): offset \(a.offset) vs \(b.offset), violations \(a.violations) vs \(b.violations), complete \(a.complete) vs \(b.complete), header \(a.header) vs \(b.header)"
        }
        if messages.count != other.messages.count { return "\(messages.count) messages vs \(other.messages.count)" }
        for (i, (a, b)) in zip(messages, other.messages).enumerated() where a != b {
            return "message \(i): offset \(a.offset)/\(b.offset) end \(a.endOffset)/\(b.endOffset) bytes \(a.data.count)/\(b.data.count) fragments \(a.fragmentCount)/\(b.fragmentCount) utf8 \(String(describing: a.isValidUTF8))/\(String(describing: b.isValidUTF8)) compressed \(a.compressed)/\(b.compressed)"
        }
        if controls != other.controls { return "controls \(controls) vs \(other.controls)" }
        if violations != other.violations { return "violations \(violations) vs \(other.violations)" }
        if failure != other.failure { return "failure \(String(describing: failure)) vs \(String(describing: other.failure))" }
        if pending != other.pending { return "pending \(String(describing: pending)) vs \(String(describing: other.pending))" }
        if bytesFed != other.bytesFed { return "bytesFed \(bytesFed) vs \(other.bytesFed)" }
        return nil
    }
}

/// Feeds `input` to a fresh parser and assembler in the reads `chunking` describes. Each read is a
/// fresh array, so nothing can lean on an earlier read's memory (the parser unmasks in place).
func parseAll(
    _ input: [UInt8], chunking: FeedChunking = .whole,
    parser: WebSocketFrameParserConfiguration = .init(),
    assembler: WebSocketMessageAssemblerConfiguration = .init(),
    keepPieces: Bool = true
) -> CodecOutcome {
    var frameParser = WebSocketFrameParser(configuration: parser)
    var messageAssembler = WebSocketMessageAssembler(configuration: assembler)
    var out = CodecOutcome()
    for range in chunking.cuts(input.count) {
        var read = Array(input[range])
        frameParser.parse(&read) { piece in
            out.record(piece, keepPieces: keepPieces)
            let found = messageAssembler.receive(piece) { item in out.record(item) }
            out.assemblerViolations += found
            out.violations += found
        }
    }
    out.failure = frameParser.failure
    out.pending = frameParser.pendingFrame.map { PendingRecord(offset: $0.offset, received: $0.received, missing: $0.missing) }
    out.bytesFed = frameParser.bytesFed
    out.insideMessage = messageAssembler.isInsideMessage
    out.closeReceived = messageAssembler.closeReceived
    return out
}

/// Runs `parseAll` under every chunking in `chunkings`, expects each to agree with the whole
/// input, and returns the outcome for the whole input.
@discardableResult
func parseEveryWay(
    _ input: [UInt8],
    parser: WebSocketFrameParserConfiguration = .init(),
    assembler: WebSocketMessageAssemblerConfiguration = .init(),
    chunkings: [FeedChunking] = FeedChunking.standard,
    sourceLocation: SourceLocation = #_sourceLocation
) -> CodecOutcome {
    let whole = parseAll(input, chunking: .whole, parser: parser, assembler: assembler, keepPieces: false)
    let reference = whole.signature
    for chunking in chunkings where chunking != .whole {
        let other = parseAll(input, chunking: chunking, parser: parser, assembler: assembler, keepPieces: false)
        let difference = other.signature.firstDifference(from: reference)
        #expect(difference == nil, "fed as \(chunking.testDescription), differs from whole input", sourceLocation: sourceLocation)
    }
    return whole
}

// MARK: - Small conveniences

extension WebSocketOpcode {
    /// For fixtures: every value 0–15 is valid.
    static func raw(_ value: UInt8) -> WebSocketOpcode { WebSocketOpcode(rawValue: value)! }
}

/// The close codes RFC 6455 §7.4.1 assigns to violation kinds, written out here independently of
/// `Rule.closeCode`: 1007 for data inconsistent with the message type, 1009 for too big, 1002 for
/// every other protocol error.
func expectedCloseCode(for rule: WebSocketViolation.Rule) -> UInt16 {
    switch rule {
    case .invalidUTF8, .invalidCloseReason, .invalidCompressedData: return 1007
    case .frameTooLarge, .messageTooLarge, .tooManyFragments, .inflatedTooLarge: return 1009
    case .reservedBits, .reservedOpcode, .fragmentedControlFrame, .controlFrameTooLong, .nonMinimalLength,
         .lengthTopBitSet, .unmaskedClientFrame, .maskedServerFrame, .continuationWithoutStart,
         .newMessageInsideFragmented, .closePayloadTooShort, .invalidCloseCode, .compressedBitMisplaced,
         .frameAfterClose, .windowExceeded:
        return 1002
    }
}

// MARK: - Compact comparisons

/// nil when equal, otherwise where two byte arrays first differ. Used instead of `==` inside
/// `#expect` wherever payloads can be large, so a failure prints a line, not megabytes.
func byteDifference(_ a: [UInt8]?, _ b: [UInt8]?) -> String? {
    guard let a, let b else { return a == nil && b == nil ? nil : "one side is nil" }
    if a == b { return nil }
    if let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
        return "\(a.count) vs \(b.count) bytes, first difference at \(i): \(a[i]) vs \(b[i])"
    }
    return "\(a.count) vs \(b.count) bytes, equal up to the shorter"
}

/// nil when equal, otherwise the first frame that differs and how.
func frameDifference(_ a: [WebSocketFrame], _ b: [WebSocketFrame]) -> String? {
    if a.count != b.count { return "\(a.count) vs \(b.count) frames" }
    for (i, (x, y)) in zip(a, b).enumerated() where x != y {
        var header = x
        header.payload = y.payload
        if header == y { return "frame \(i) payload: \(byteDifference(x.payload, y.payload) ?? "")" }
        return "frame \(i): fin \(x.fin)/\(y.fin) rsv \(x.rsv1)\(x.rsv2)\(x.rsv3)/\(y.rsv1)\(y.rsv2)\(y.rsv3) opcode \(x.opcode)/\(y.opcode) key \(String(describing: x.maskingKey))/\(String(describing: y.maskingKey)) length \(x.payload.count)/\(y.payload.count)"
    }
    return nil
}
