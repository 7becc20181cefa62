import Testing
import WebSocketCodec

// Helpers here carry a `UTF8Test` prefix so they cannot collide with those of other suites in this target.

/// One input and the index `firstInvalidIndex` must give: nil when valid, `bytes.count` when it ends
/// inside a character.
struct UTF8TestCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let firstInvalid: Int?

    init(_ name: String, _ bytes: [UInt8], _ firstInvalid: Int?) {
        self.name = name
        self.bytes = bytes
        self.firstInvalid = firstInvalid
    }

    var testDescription: String { name }
}

/// SplitMix64, so every random case repeats exactly.
struct UTF8TestRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum UTF8Test {
    static func utf8(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// A scalar reference written straight from the table of well-formed sequences in RFC 3629 §4,
    /// one byte at a time with no tricks: the index of the first byte that cannot continue, the count
    /// when the bytes stop inside a character, nil when valid.
    static func reference(_ b: [UInt8]) -> Int? {
        var i = 0
        while i < b.count {
            let lead = b[i]
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            default: return i
            }
            for k in 1..<length {
                if i + k == b.count { return b.count }
                let range = k == 1 ? secondRange : 0x80...0xBF
                if !range.contains(b[i + k]) { return i + k }
            }
            i += length
        }
        return nil
    }

    static func isValid(_ b: [UInt8]) -> Bool { String(validating: b, as: UTF8.self) != nil }

    /// Whether some bytes appended to `b` make it valid, asked of the standard library only: the
    /// longest unfinished character needs three more bytes, and only the first of them is ever
    /// narrowed below 80–BF, so trying every continuation byte there and 80 after it is enough.
    static func isValidPrefix(_ b: [UInt8]) -> Bool {
        if isValid(b) { return true }
        guard b.suffix(3).contains(where: { $0 >= 0xC0 }) else { return false }
        for first in UInt8(0x80)...0xBF {
            for more in 0...2 where isValid(b + [first] + [UInt8](repeating: 0x80, count: more)) {
                return true
            }
        }
        return false
    }

    /// Feeds `bytes` in the given chunks and gives the result as one offset over the whole input,
    /// the way `firstInvalidIndex` reports it.
    static func feed(_ bytes: [UInt8], chunks: [Int]) -> Int? {
        var validator = WebSocketUTF8Validator()
        var offset = 0
        for size in chunks {
            let chunk = Array(bytes[offset..<offset + size])
            if let bad = validator.validate(chunk) {
                #expect(validator.hasFailed)
                #expect(!validator.isAtCharacterBoundary)
                return offset + bad
            }
            offset += size
        }
        precondition(offset == bytes.count)
        return validator.isAtCharacterBoundary ? nil : bytes.count
    }

    static func randomChunks(_ count: Int, _ rng: inout UTF8TestRNG) -> [Int] {
        var chunks: [Int] = []
        var left = count
        while left > 0 {
            let size = Int.random(in: 1...min(left, Int.random(in: 1...80, using: &rng)), using: &rng)
            chunks.append(size)
            left -= size
        }
        return chunks
    }

    /// A random valid string of about `bytes` bytes, from scripts of every encoded length and the
    /// scalars at the edges of each length.
    static func randomText(_ bytes: Int, _ rng: inout UTF8TestRNG) -> [UInt8] {
        let edges: [UInt32] = [0x00, 0x7F, 0x80, 0x7FF, 0x800, 0xFFF, 0x1000, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF,
                               0x10000, 0x3FFFF, 0x40000, 0xFFFFF, 0x100000, 0x10FFFF]
        var out: [UInt8] = []
        while out.count < bytes {
            let scalar: UInt32
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<3:
                // A run of ASCII, long enough at times to cover the 64-byte strides.
                let run = Int.random(in: 1...(Bool.random(using: &rng) ? 8 : 100), using: &rng)
                out += (0..<run).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
                continue
            case 3: scalar = edges.randomElement(using: &rng)!
            case 4, 5: scalar = UInt32.random(in: 0x80...0x7FF, using: &rng)
            case 6, 7: scalar = [UInt32.random(in: 0x800...0xD7FF, using: &rng),
                                 UInt32.random(in: 0xE000...0xFFFF, using: &rng)].randomElement(using: &rng)!
            default: scalar = UInt32.random(in: 0x10000...0x10FFFF, using: &rng)
            }
            out += Array(String(Character(Unicode.Scalar(scalar)!)).utf8)
        }
        return out
    }
}

@Suite("WebSocketUTF8Validator")
struct UTF8ValidatorTests {
    /// "κόσμε" as Autobahn spells it, with U+1F79 (three bytes) for the ό.
    static let kosme: [UInt8] = [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5]

    static let cases: [UTF8TestCase] = [
        // Valid, at the edges of each encoded length.
        UTF8TestCase("empty", [], nil),
        UTF8TestCase("ASCII", UTF8Test.utf8("Hello-µ@ßöäüàá-UTF-8!!"), nil),
        UTF8TestCase("κόσμε (Autobahn 6.2.x)", kosme, nil),
        UTF8TestCase("U+0000", [0x00], nil),
        UTF8TestCase("U+007F", [0x7F], nil),
        UTF8TestCase("U+0080", [0xC2, 0x80], nil),
        UTF8TestCase("U+07FF", [0xDF, 0xBF], nil),
        UTF8TestCase("U+0800", [0xE0, 0xA0, 0x80], nil),
        UTF8TestCase("U+D7FF, last before the surrogates", [0xED, 0x9F, 0xBF], nil),
        UTF8TestCase("U+E000, first after the surrogates", [0xEE, 0x80, 0x80], nil),
        UTF8TestCase("U+FFFD", [0xEF, 0xBF, 0xBD], nil),
        UTF8TestCase("U+FFFF", [0xEF, 0xBF, 0xBF], nil),
        UTF8TestCase("U+10000", [0xF0, 0x90, 0x80, 0x80], nil),
        UTF8TestCase("U+10FFFF", [0xF4, 0x8F, 0xBF, 0xBF], nil),
        UTF8TestCase("emoji with ZWJ", UTF8Test.utf8("🧑‍💻👍🏽"), nil),

        // Overlong forms: C0 and C1 can only start an overlong 2-byte form, so they fail at once;
        // E0 and F0 fail on the second byte.
        UTF8TestCase("overlong 2-byte NUL C0 80", [0xC0, 0x80], 0),
        UTF8TestCase("overlong 2-byte '/' C0 AF", [0xC0, 0xAF], 0),
        UTF8TestCase("overlong 2-byte C1 BF", [0xC1, 0xBF], 0),
        UTF8TestCase("lone C0", [0xC0], 0),
        UTF8TestCase("overlong 3-byte NUL E0 80 80", [0xE0, 0x80, 0x80], 1),
        UTF8TestCase("overlong 3-byte U+07FF E0 9F BF", [0xE0, 0x9F, 0xBF], 1),
        UTF8TestCase("overlong 3-byte, truncated E0 80", [0xE0, 0x80], 1),
        UTF8TestCase("overlong 4-byte NUL F0 80 80 80", [0xF0, 0x80, 0x80, 0x80], 1),
        UTF8TestCase("overlong 4-byte U+FFFF F0 8F BF BF", [0xF0, 0x8F, 0xBF, 0xBF], 1),
        UTF8TestCase("overlong '/' after text", UTF8Test.utf8("ab") + [0xE0, 0x80, 0xAF], 3),

        // Surrogates D800–DFFF: after ED only 80–9F may follow.
        UTF8TestCase("surrogate U+D800 ED A0 80", [0xED, 0xA0, 0x80], 1),
        UTF8TestCase("surrogate U+DB7F ED AD BF", [0xED, 0xAD, 0xBF], 1),
        UTF8TestCase("surrogate U+DFFF ED BF BF", [0xED, 0xBF, 0xBF], 1),
        UTF8TestCase("surrogate pair ED A0 80 ED B0 80", [0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80], 1),

        // Beyond U+10FFFF.
        UTF8TestCase("U+110000 F4 90 80 80", [0xF4, 0x90, 0x80, 0x80], 1),
        UTF8TestCase("F4 90, truncated", [0xF4, 0x90], 1),
        UTF8TestCase("F4 BF BF BF", [0xF4, 0xBF, 0xBF, 0xBF], 1),
        UTF8TestCase("F5 lead", [0xF5], 0),
        UTF8TestCase("F5 80 80 80", [0xF5, 0x80, 0x80, 0x80], 0),
        UTF8TestCase("F7 BF BF BF (U+1FFFFF)", [0xF7, 0xBF, 0xBF, 0xBF], 0),
        UTF8TestCase("5-byte form F8 88 80 80 80", [0xF8, 0x88, 0x80, 0x80, 0x80], 0),
        UTF8TestCase("6-byte form FC 84 80 80 80 80", [0xFC, 0x84, 0x80, 0x80, 0x80, 0x80], 0),
        UTF8TestCase("FE", [0xFE], 0),
        UTF8TestCase("FF after text", UTF8Test.utf8("abc") + [0xFF], 3),

        // Continuation bytes where none is expected, and lead bytes cut short by another byte.
        UTF8TestCase("stray 80", [0x80], 0),
        UTF8TestCase("stray BF", [0xBF], 0),
        UTF8TestCase("stray continuation after ASCII", [0x61, 0x80], 1),
        UTF8TestCase("extra continuation C2 80 80", [0xC2, 0x80, 0x80], 2),
        UTF8TestCase("extra continuation after U+10000", [0xF0, 0x90, 0x80, 0x80, 0x80], 4),
        UTF8TestCase("2-byte lead then ASCII", [0xC2, 0x41], 1),
        UTF8TestCase("3-byte lead then ASCII", [0xE1, 0x80, 0x41], 2),
        UTF8TestCase("4-byte lead then ASCII", [0xF1, 0x80, 0x80, 0x41], 3),
        UTF8TestCase("lead then lead E1 C2 80", [0xE1, 0xC2, 0x80], 1),
        UTF8TestCase("all 32 continuation bytes 80–9F alone", Array(0x80...0x9F), 0),

        // Ending inside a character: index is the count.
        UTF8TestCase("truncated C2", [0xC2], 1),
        UTF8TestCase("truncated E1 80", [0xE1, 0x80], 2),
        UTF8TestCase("truncated E0 A0", [0xE0, 0xA0], 2),
        UTF8TestCase("truncated ED 9F", [0xED, 0x9F], 2),
        UTF8TestCase("truncated F0 90 80", [0xF0, 0x90, 0x80], 3),
        UTF8TestCase("truncated F4 8F BF", [0xF4, 0x8F, 0xBF], 3),
        UTF8TestCase("text then truncated €", UTF8Test.utf8("abc") + [0xE2, 0x82], 5),

        // Autobahn 6.3.x and 6.4.x (whose fragmentations the split tests below cover): κόσμε with a
        // surrogate or a code point beyond U+10FFFF, then more text; 6.6.x: κόσμε cut short.
        UTF8TestCase("Autobahn 6.3.1: κόσμε ED A0 80 edited", kosme + [0xED, 0xA0, 0x80] + UTF8Test.utf8("edited"), 12),
        UTF8TestCase("Autobahn 6.4.x: κόσμε F4 90 80 80 edited", kosme + [0xF4, 0x90, 0x80, 0x80] + UTF8Test.utf8("edited"), 12),
        UTF8TestCase("κόσμε ED A0 80", kosme + [0xED, 0xA0, 0x80], 12),
        UTF8TestCase("Autobahn 6.6.1: κόσμε cut after its first byte", Array(kosme.prefix(1)), 1),
        UTF8TestCase("Autobahn 6.6.x: κόσμε cut inside ό", Array(kosme.prefix(4)), 4),

        // Long enough for the 64-byte ASCII strides and the 16-byte blocks, with the error at a block edge.
        UTF8TestCase("error after 64 ASCII bytes", [UInt8](repeating: 0x61, count: 64) + [0xC0, 0x80], 64),
        UTF8TestCase("error at byte 79", [UInt8](repeating: 0x61, count: 79) + [0x80], 79),
        UTF8TestCase("surrogate across a 16-byte block edge",
                     [UInt8](repeating: 0x61, count: 30) + [0xC3, 0xA9] + [0xED, 0xA0, 0x80] + [UInt8](repeating: 0x62, count: 40), 33),
        UTF8TestCase("4-byte character across a block edge, then a stray continuation",
                     [UInt8](repeating: 0x61, count: 17) + [0xF0, 0x9F, 0x98, 0x80] + [0x80] + [UInt8](repeating: 0x62, count: 30), 21),
        UTF8TestCase("long valid mixed text",
                     UTF8Test.utf8(String(repeating: "Съешь же ещё этих 我能吞下玻璃 😀 naïve ", count: 20)), nil),
        UTF8TestCase("long text truncated inside its last character",
                     Array(UTF8Test.utf8(String(repeating: "ab 我能吞下玻璃 ", count: 10) + "😀").dropLast(1)),
                     UTF8Test.utf8(String(repeating: "ab 我能吞下玻璃 ", count: 10) + "😀").count - 1),
    ]

    @Test("one-shot index", arguments: cases)
    func oneShot(_ c: UTF8TestCase) {
        #expect(WebSocketUTF8Validator.firstInvalidIndex(c.bytes) == c.firstInvalid)
        #expect(UTF8Test.reference(c.bytes) == c.firstInvalid, "the reference disagrees with the table")
        #expect((c.firstInvalid == nil) == UTF8Test.isValid(c.bytes), "the standard library disagrees with the table")
    }

    @Test("the same index for every split in two, three pieces, and one byte at a time", arguments: cases)
    func fedInPieces(_ c: UTF8TestCase) {
        let n = c.bytes.count
        for k in 0...n {
            #expect(UTF8Test.feed(c.bytes, chunks: [k, n - k]) == c.firstInvalid, "split at \(k)")
        }
        if n <= 24 {
            for a in 0...n {
                for b in a...n {
                    #expect(UTF8Test.feed(c.bytes, chunks: [a, b - a, n - b]) == c.firstInvalid, "split at \(a), \(b)")
                }
            }
        }
        #expect(UTF8Test.feed(c.bytes, chunks: Array(repeating: 1, count: n)) == c.firstInvalid, "byte by byte")
    }

    @Test("the index within the failing chunk, for a character begun in an earlier fragment")
    func indexWithinChunk() {
        // Autobahn 6.4.3-style: the frame that completes κόσμε ends in F4, the next brings 90.
        var v = WebSocketUTF8Validator()
        #expect(v.validate(Self.kosme + [0xF4]) == nil)
        #expect(!v.isAtCharacterBoundary)
        #expect(v.validate([0x90, 0x80, 0x80]) == 0)

        v.reset()
        #expect(v.validate([0xED]) == nil)
        #expect(v.validate([]) == nil)
        #expect(v.validate([0xA0, 0x80]) == 0)

        v.reset()
        #expect(v.validate(UTF8Test.utf8("abc") + [0xF0, 0x90]) == nil)
        #expect(v.validate([0x80]) == nil)
        #expect(v.validate(UTF8Test.utf8("xyz")) == 0)
    }

    @Test("stays failed until reset")
    func staysFailed() {
        var v = WebSocketUTF8Validator()
        #expect(v.isAtCharacterBoundary)
        #expect(!v.hasFailed)
        #expect(v.validate([0x61, 0xC0]) == 1)
        #expect(v.hasFailed)
        #expect(!v.isAtCharacterBoundary)
        #expect(v.validate(UTF8Test.utf8("perfectly fine")) == 0)
        #expect(v.validate([]) == 0)
        v.reset()
        #expect(!v.hasFailed)
        #expect(v.validate(UTF8Test.utf8("perfectly fine")) == nil)
        #expect(v.isAtCharacterBoundary)
    }

    @Test("the UnsafeRawBufferPointer and [UInt8] entry points agree, empty buffers included")
    func rawBuffers() {
        let bytes = Self.kosme + [0xED, 0xA0, 0x80]
        bytes.withUnsafeBytes { raw in
            #expect(WebSocketUTF8Validator.firstInvalidIndex(raw) == 12)
            #expect(WebSocketUTF8Validator.firstInvalidIndex(UnsafeRawBufferPointer(rebasing: raw[0..<11])) == nil)
            #expect(WebSocketUTF8Validator.firstInvalidIndex(UnsafeRawBufferPointer(rebasing: raw[0..<10])) == 10)
            #expect(WebSocketUTF8Validator.firstInvalidIndex(UnsafeRawBufferPointer(rebasing: raw[0..<12])) == 12)
        }
        #expect(WebSocketUTF8Validator.firstInvalidIndex(UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        var v = WebSocketUTF8Validator()
        #expect(v.validate(UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        #expect(v.isAtCharacterBoundary)
    }

    @Test("every 1-, 2- and 3-byte input agrees with the reference")
    func exhaustiveShort() {
        // All 2-byte inputs and the 3-byte inputs that start with a lead byte: the whole second-byte
        // table of RFC 3629 §4, and every way a third byte can go wrong.
        var mismatches = 0
        for a in 0...255 {
            for b in 0...255 {
                let two = [UInt8(a), UInt8(b)]
                if WebSocketUTF8Validator.firstInvalidIndex(two) != UTF8Test.reference(two) { mismatches += 1 }
                if UTF8Test.feed(two, chunks: [1, 1]) != UTF8Test.reference(two) { mismatches += 1 }
                guard a >= 0xE0 && a <= 0xF4 else { continue }
                for c in [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xF4, 0xF5, 0xFF] {
                    let three = two + [UInt8(c)]
                    if WebSocketUTF8Validator.firstInvalidIndex(three) != UTF8Test.reference(three) { mismatches += 1 }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("random bytes and mutated valid text: exact agreement with the standard library")
    func differential() {
        var rng = UTF8TestRNG(seed: 0x5EED_CAFE)
        // Byte values weighted towards the ones that matter to UTF-8.
        let palette: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF]
        var invalidSeen = 0
        var validSeen = 0
        for round in 0..<4000 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0:
                bytes = (0..<Int.random(in: 0...12, using: &rng)).map { _ in
                    Bool.random(using: &rng) ? palette.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
                }
            case 1:
                bytes = UTF8Test.randomText(Int.random(in: 0...300, using: &rng), &rng)
            default:
                bytes = UTF8Test.randomText(Int.random(in: 1...300, using: &rng), &rng)
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] = palette.randomElement(using: &rng)!
                case 1: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 2: bytes.insert(palette.randomElement(using: &rng)!, at: at)
                default: bytes.removeSubrange(at...)
                }
            }
            let ours = WebSocketUTF8Validator.firstInvalidIndex(bytes)
            #expect((ours == nil) == UTF8Test.isValid(bytes), "valid/invalid disagree for \(bytes)")
            #expect(ours == UTF8Test.reference(bytes), "reference disagrees for \(bytes)")
            #expect(UTF8Test.feed(bytes, chunks: UTF8Test.randomChunks(bytes.count, &rng)) == ours, "pieces for \(bytes)")
            guard let index = ours else {
                validSeen += 1
                continue
            }
            invalidSeen += 1
            // The index is exactly where a prefix stops being the start of valid UTF-8.
            #expect(UTF8Test.isValidPrefix(Array(bytes[..<index])), "prefix before \(index) of \(bytes)")
            if index < bytes.count {
                #expect(!UTF8Test.isValidPrefix(Array(bytes[...index])), "prefix through \(index) of \(bytes)")
            } else {
                #expect(!UTF8Test.isValid(bytes))
            }
        }
        #expect(invalidSeen > 1000)
        #expect(validSeen > 1000)
    }

    /// A character cut short by an ASCII byte, placed so that the cut falls at every offset of a
    /// long run of ASCII, block boundaries included: a block that is all ASCII is valid only when
    /// no character before it reaches into it (the AVX2 kernel's shortcut checks the three bytes
    /// before the block).
    @Test("a character cut short by ASCII at every offset, block boundaries included")
    func cutShortByASCII() {
        var rng = UTF8TestRNG(seed: 7)
        let ascii = [UInt8](repeating: 0x61, count: 300)
        let text = UTF8Test.randomText(300, &rng)
        let cuts: [[UInt8]] = [[0xC2], [0xE2], [0xE2, 0x82], [0xF0], [0xF0, 0x9F], [0xF0, 0x9F, 0x98]]
        for base in [ascii, text + ascii] {
            for cut in cuts {
                for offset in (base.count - 200)..<(base.count - 100) {
                    let bytes = Array(base[..<offset]) + cut + Array(ascii[..<150])
                    let expected = UTF8Test.reference(bytes)
                    #expect(expected == offset + cut.count)
                    #expect(WebSocketUTF8Validator.firstInvalidIndex(bytes) == expected, "\(cut) at \(offset)")
                    #expect(UTF8Test.feed(bytes, chunks: UTF8Test.randomChunks(bytes.count, &rng)) == expected)
                }
            }
        }
    }

    @Test("long text with each error class planted at every offset of a 64-byte window")
    func plantedErrors() {
        var rng = UTF8TestRNG(seed: 42)
        let text = UTF8Test.randomText(400, &rng)
        let ascii = [UInt8](repeating: 0x2E, count: 200)
        let errors: [[UInt8]] = [[0xC0, 0x80], [0xE0, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xED, 0xA0, 0x80],
                                 [0xF4, 0x90, 0x80, 0x80], [0x80], [0xC2, 0x41], [0xF5], [0xFF]]
        for base in [text, ascii, ascii + text] {
            for error in errors {
                for offset in 100..<164 {
                    var bytes = Array(base[..<offset]) + error + Array(base[offset...])
                    let expected = UTF8Test.reference(bytes)
                    #expect(WebSocketUTF8Validator.firstInvalidIndex(bytes) == expected)
                    #expect(UTF8Test.feed(bytes, chunks: UTF8Test.randomChunks(bytes.count, &rng)) == expected)
                    bytes = Array(bytes[..<min(bytes.count, offset + 2)])
                    #expect(WebSocketUTF8Validator.firstInvalidIndex(bytes) == UTF8Test.reference(bytes))
                }
            }
        }
    }
}
