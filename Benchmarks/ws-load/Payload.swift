import Foundation

/// SplitMix64: a small, fast generator for masking keys and payload bytes. Seeded from the system
/// generator, so keys differ between runs and connections; it need not be cryptographic here.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The payload of every message one sender sends: random printable ASCII (valid UTF-8, so the
/// same payload serves text and binary messages) whose first 16 bytes are overwritten with the
/// message's sequence number in hex. A receiver checks the number and every other byte.
struct Payload {
    static let sequenceDigits = 16
    private(set) var bytes: [UInt8]

    init(size: Int, generator: inout SplitMix64) {
        precondition(size >= Self.sequenceDigits)
        bytes = (0..<size).map { _ in UInt8(0x21 + generator.next() % 94) }
    }

    @inline(__always)
    static func hexDigit(_ v: UInt64) -> UInt8 {
        let d = UInt8(truncatingIfNeeded: v & 0xF)
        return d < 10 ? 0x30 + d : 0x57 + d
    }

    mutating func stamp(_ sequence: UInt64) {
        bytes.withUnsafeMutableBufferPointer { b in
            for i in 0..<Self.sequenceDigits {
                b[i] = Self.hexDigit(sequence >> UInt64(60 - 4 * i))
            }
        }
    }

    /// Whether `received` is this payload stamped with `sequence`.
    func matches(_ received: UnsafeRawBufferPointer, sequence: UInt64) -> Bool {
        guard received.count == bytes.count else { return false }
        for i in 0..<Self.sequenceDigits where received[i] != Self.hexDigit(sequence >> UInt64(60 - 4 * i)) {
            return false
        }
        let tail = bytes.count - Self.sequenceDigits
        guard tail > 0 else { return true }
        return bytes.withUnsafeBytes { mine in
            memcmp(mine.baseAddress! + Self.sequenceDigits, received.baseAddress! + Self.sequenceDigits, tail) == 0
        }
    }
}
