/// The 4-byte masking key of a client frame (RFC 6455 §5.3).
///
/// Stored as the four bytes in wire order packed into a `UInt32` (first byte in the low bits),
/// so that it can be broadcast into wider words for masking without shuffling.
public struct WebSocketMaskingKey: Hashable, Sendable, CustomStringConvertible {
    /// Wire bytes packed little-endian: byte 0 of the key is `packed & 0xFF`.
    public let packed: UInt32

    @inlinable
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) {
        packed = UInt32(b0) | UInt32(b1) << 8 | UInt32(b2) << 16 | UInt32(b3) << 24
    }

    @inlinable
    public init(packed: UInt32) { self.packed = packed }

    /// Reads 4 bytes from the start of `bytes` (which must hold at least 4).
    @inlinable
    public init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= 4)
        self.init(bytes[0], bytes[1], bytes[2], bytes[3])
    }

    /// Parses 8 hex digits (`37fa213d`, `0x37fa213d` or `37 fa 21 3d`).
    public init?(hex: String) {
        var digits = hex.lowercased().filter { !$0.isWhitespace && $0 != ":" }
        if digits.hasPrefix("0x") { digits.removeFirst(2) }
        guard digits.count == 8, let value = UInt32(digits, radix: 16) else { return nil }
        self.init(UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF))
    }

    /// A key from `generator`; RFC 6455 §5.3 wants it unpredictable, so the default is the system generator.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> WebSocketMaskingKey {
        WebSocketMaskingKey(packed: UInt32.random(in: .min ... .max, using: &generator))
    }

    public static func random() -> WebSocketMaskingKey {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    @inlinable
    public subscript(index: Int) -> UInt8 { UInt8(truncatingIfNeeded: packed >> (UInt32(index & 3) * 8)) }

    public var bytes: [UInt8] { [self[0], self[1], self[2], self[3]] }

    /// Lower-case hex in wire order, as tshark prints `websocket.masking_key`.
    public var hex: String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    public var description: String { hex }
}
