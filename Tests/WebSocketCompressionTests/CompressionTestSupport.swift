import Testing
import WebSocketCodec

// Helpers shared by the permessage-deflate suites. Names carry a `Deflate` prefix so they cannot
// collide with helpers other suites in this target may add.

/// Hex digits to bytes; spaces are ignored. Traps on anything else so that a typo in a fixture cannot
/// silently change what it claims.
func deflateHex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8.filter { $0 != UInt8(ascii: " ") })
    precondition(digits.count % 2 == 0, "odd number of hex digits in \(text)")
    return stride(from: 0, to: digits.count, by: 2).map { index in
        guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
            preconditionFailure("not hex: \(text)")
        }
        return byte
    }
}

/// The violation `body` throws, or nil if it returns. Any other error is recorded as a test failure.
func deflateViolation(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> WebSocketViolation? {
    do {
        try body()
        return nil
    } catch let violation as WebSocketViolation {
        return violation
    } catch {
        Issue.record("expected a WebSocketViolation, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): output depends only on the seed, so random tests repeat exactly.
struct DeflateTestRNG: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}

/// Sample messages that exercise different paths of deflate: empty, tiny, text with repeats near and
/// far, incompressible bytes, and a message much larger than any window.
func deflateSampleMessages() -> [[UInt8]] {
    var rng = DeflateTestRNG(seed: 7692)
    let sentence = Array("The quick brown fox jumps over the lazy dog. ".utf8)
    let text = Array((0..<400).flatMap { index in sentence + Array(String(index).utf8) })
    let randomBlock = rng.bytes(3000)
    var large: [UInt8] = []
    for index in 0..<120 {
        large += index % 3 == 0 ? rng.bytes(1500) : Array(text.prefix(1000 + index))
    }
    return [
        [],
        Array("Hello".utf8),
        text,
        randomBlock,
        randomBlock + randomBlock,  // a repeat 3000 bytes back: beyond small windows
        large,
        Array(repeating: 0x61, count: 70_000),
    ]
}
