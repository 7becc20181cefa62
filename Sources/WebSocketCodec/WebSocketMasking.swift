/// XOR masking of payload bytes (RFC 6455 §5.3).
///
/// Masking is its own inverse, so `apply` both masks and unmasks. `phase` is the position in the
/// key of the first byte (payload offset mod 4); the returned phase continues a payload that
/// arrives in pieces.
public enum WebSocketMasking {
    /// The fast path: 64 bytes per iteration with 16-byte vectors, then 8-byte words, then bytes.
    @inlinable
    @discardableResult
    public static func apply(
        _ key: WebSocketMaskingKey, to buffer: UnsafeMutableRawBufferPointer, phase: Int = 0
    ) -> Int {
        let count = buffer.count
        guard count > 0, let base = buffer.baseAddress else { return phase & 3 }
        // Rotate the key so that byte 0 of the word lines up with the first byte of the buffer.
        let shift = UInt32((phase & 3) * 8)
        let rotated = shift == 0 ? key.packed : (key.packed >> shift) | (key.packed << (32 - shift))
        let word = UInt64(rotated) | UInt64(rotated) << 32
        var i = 0
        if count >= 64 {
            let vector = SIMD2<UInt64>(repeating: word.littleEndian)._bytes16
            while i &+ 64 <= count {
                let p = base + i
                let a = p.loadUnaligned(as: SIMD16<UInt8>.self) ^ vector
                let b = p.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self) ^ vector
                let c = p.loadUnaligned(fromByteOffset: 32, as: SIMD16<UInt8>.self) ^ vector
                let d = p.loadUnaligned(fromByteOffset: 48, as: SIMD16<UInt8>.self) ^ vector
                p.storeBytes(of: a, as: SIMD16<UInt8>.self)
                p.storeBytes(of: b, toByteOffset: 16, as: SIMD16<UInt8>.self)
                p.storeBytes(of: c, toByteOffset: 32, as: SIMD16<UInt8>.self)
                p.storeBytes(of: d, toByteOffset: 48, as: SIMD16<UInt8>.self)
                i &+= 64
            }
        }
        let le = word.littleEndian
        while i &+ 8 <= count {
            let v = (base + i).loadUnaligned(as: UInt64.self) ^ le
            (base + i).storeBytes(of: v, as: UInt64.self)
            i &+= 8
        }
        var k = rotated
        while i < count {
            let b = base.load(fromByteOffset: i, as: UInt8.self) ^ UInt8(truncatingIfNeeded: k)
            base.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
            k = (k >> 8) | (k << 24)
            i &+= 1
        }
        return (phase &+ count) & 3
    }

    /// Masks `source` into `destination` (same length), leaving the source untouched: for
    /// showing captured bytes unmasked without modifying them.
    @inlinable
    @discardableResult
    public static func apply(
        _ key: WebSocketMaskingKey, from source: UnsafeRawBufferPointer,
        to destination: UnsafeMutableRawBufferPointer, phase: Int = 0
    ) -> Int {
        precondition(destination.count >= source.count)
        if source.count > 0 { destination.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count) }
        return apply(key, to: UnsafeMutableRawBufferPointer(rebasing: destination[0..<source.count]), phase: phase)
    }

    /// Convenience for arrays.
    @discardableResult
    public static func apply(_ key: WebSocketMaskingKey, to bytes: inout [UInt8], phase: Int = 0) -> Int {
        bytes.withUnsafeMutableBytes { apply(key, to: $0, phase: phase) }
    }

    /// The reference implementation, one byte at a time exactly as §5.3 writes it
    /// (`transformed-octet-i = original-octet-i XOR masking-key-octet-(i MOD 4)`); tests check the fast path against it.
    @discardableResult
    public static func applyScalar(
        _ key: WebSocketMaskingKey, to buffer: UnsafeMutableRawBufferPointer, phase: Int = 0
    ) -> Int {
        for i in 0..<buffer.count {
            buffer[i] ^= key[(phase + i) & 3]
        }
        return (phase + buffer.count) & 3
    }
}

extension SIMD2 where Scalar == UInt64 {
    /// The 16 bytes of the two words in memory order.
    @inlinable
    var _bytes16: SIMD16<UInt8> {
        unsafeBitCast(self, to: SIMD16<UInt8>.self)
    }
}
