/// A parsed frame header (RFC 6455 §5.2), kept as the two leading bytes plus the decoded
/// length and key, with the flags behind computed properties.
public struct WebSocketFrameHeader: Hashable, Sendable {
    /// FIN, RSV1–3 and the opcode, as on the wire.
    public var firstByte: UInt8
    /// MASK and the 7-bit length, as on the wire.
    public var secondByte: UInt8
    public var maskingKey: WebSocketMaskingKey?
    public var payloadLength: UInt64
    /// 2 to 14 bytes.
    public var headerLength: Int

    @inlinable public var fin: Bool { firstByte & 0x80 != 0 }
    @inlinable public var rsv1: Bool { firstByte & 0x40 != 0 }
    @inlinable public var rsv2: Bool { firstByte & 0x20 != 0 }
    @inlinable public var rsv3: Bool { firstByte & 0x10 != 0 }
    /// The three RSV bits in their wire positions (0x40, 0x20, 0x10).
    @inlinable public var reservedBits: UInt8 { firstByte & 0x70 }
    @inlinable public var opcode: WebSocketOpcode { WebSocketOpcode(uncheckedRawValue: firstByte & 0x0F) }
    @inlinable public var masked: Bool { secondByte & 0x80 != 0 }
    /// The 7-bit length field: 0–125 is the length, 126 and 127 announce 16- and 64-bit lengths.
    @inlinable public var lengthField: UInt8 { secondByte & 0x7F }
    /// Header plus payload, or nil when that does not fit in an `Int`.
    public var frameLength: Int? {
        guard payloadLength <= UInt64(Int.max - headerLength) else { return nil }
        return headerLength + Int(payloadLength)
    }

    public init(firstByte: UInt8, secondByte: UInt8, maskingKey: WebSocketMaskingKey?, payloadLength: UInt64, headerLength: Int) {
        self.firstByte = firstByte
        self.secondByte = secondByte
        self.maskingKey = maskingKey
        self.payloadLength = payloadLength
        self.headerLength = headerLength
    }

    /// How many header bytes the first two bytes announce (2, 4 or 10, plus 4 for a mask).
    @inlinable
    public static func headerLength(secondByte: UInt8) -> Int {
        let field = secondByte & 0x7F
        let base = field < 126 ? 2 : (field == 126 ? 4 : 10)
        return secondByte & 0x80 != 0 ? base + 4 : base
    }

    public enum ParseResult: Hashable, Sendable {
        /// Not enough bytes for the header: at least this many are needed in all.
        case needMore(Int)
        case header(WebSocketFrameHeader)
    }

    /// The pure "how long is the frame at this offset" step (Wireshark's `get_pdu_len`): reads a
    /// header from the start of `bytes` without validating it.
    @inlinable
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
        guard bytes.count >= 2 else { return .needMore(2) }
        let b0 = bytes[0], b1 = bytes[1]
        let headerLength = Self.headerLength(secondByte: b1)
        guard bytes.count >= headerLength else { return .needMore(headerLength) }
        let field = b1 & 0x7F
        var length: UInt64
        var cursor: Int
        if field < 126 {
            length = UInt64(field)
            cursor = 2
        } else if field == 126 {
            length = UInt64(bytes[2]) << 8 | UInt64(bytes[3])
            cursor = 4
        } else {
            length = 0
            for i in 2..<10 { length = length << 8 | UInt64(bytes[i]) }
            cursor = 10
        }
        var key: WebSocketMaskingKey? = nil
        if b1 & 0x80 != 0 {
            key = WebSocketMaskingKey(bytes[cursor], bytes[cursor + 1], bytes[cursor + 2], bytes[cursor + 3])
        }
        return .header(WebSocketFrameHeader(firstByte: b0, secondByte: b1, maskingKey: key, payloadLength: length, headerLength: headerLength))
    }
}
