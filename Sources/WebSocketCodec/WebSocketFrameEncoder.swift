/// How the payload length is written. `.minimal` is what RFC 6455 §5.2 requires; the others
/// exist so that a test tool can produce the non-minimal encodings a strict peer must reject.
public enum WebSocketLengthEncoding: String, Hashable, Sendable, CaseIterable {
    case minimal
    /// The 7-bit field alone (lengths 0–125; 126 and 127 can be written to claim a longer form).
    case sevenBit = "7"
    /// 126 followed by a 16-bit length.
    case sixteenBit = "16"
    /// 127 followed by a 64-bit length.
    case sixtyFourBit = "64"
}

/// Errors in a request to the encoder (not protocol violations: the encoder writes those on purpose).
public struct WebSocketEncodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Writes frames (RFC 6455 §5.2). It writes whatever header it is asked for, invalid ones
/// included; `WebSocketFrameParser.violations(of:at:configuration:)` says what is wrong with one.
public enum WebSocketFrameEncoder {
    /// Header bytes needed for a payload of `payloadLength` with the minimal length encoding.
    @inlinable
    public static func headerLength(payloadLength: UInt64, masked: Bool) -> Int {
        let base = payloadLength < 126 ? 2 : (payloadLength <= 0xFFFF ? 4 : 10)
        return masked ? base + 4 : base
    }

    /// Writes a header at `destination` (which must hold 14 bytes) and returns its length.
    /// `claimedLength` is written as the payload length; the encoding must be able to hold it.
    @inlinable
    public static func writeHeader(
        fin: Bool, reservedBits: UInt8 = 0, opcode: WebSocketOpcode, maskingKey: WebSocketMaskingKey?,
        payloadLength: UInt64, into destination: UnsafeMutableRawPointer
    ) -> Int {
        let b0 = (fin ? 0x80 : 0) | (reservedBits & 0x70) | opcode.rawValue
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        destination.storeBytes(of: b0, as: UInt8.self)
        var n: Int
        if payloadLength < 126 {
            destination.storeBytes(of: maskBit | UInt8(payloadLength), toByteOffset: 1, as: UInt8.self)
            n = 2
        } else if payloadLength <= 0xFFFF {
            destination.storeBytes(of: maskBit | 126, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: UInt16(payloadLength).bigEndian, toByteOffset: 2, as: UInt16.self)
            n = 4
        } else {
            destination.storeBytes(of: maskBit | 127, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: payloadLength.bigEndian, toByteOffset: 2, as: UInt64.self)
            n = 10
        }
        if let key = maskingKey {
            destination.storeBytes(of: key.packed.littleEndian, toByteOffset: n, as: UInt32.self)
            n += 4
        }
        return n
    }

    /// Writes header and payload (masked when a key is given) into `destination`, which must hold
    /// `headerLength(…) + payload.count` bytes; returns the bytes written. The hot path for servers.
    @inlinable
    public static func encode(
        fin: Bool = true, reservedBits: UInt8 = 0, opcode: WebSocketOpcode, maskingKey: WebSocketMaskingKey? = nil,
        payload: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Int {
        let h = writeHeader(fin: fin, reservedBits: reservedBits, opcode: opcode, maskingKey: maskingKey,
                            payloadLength: UInt64(payload.count), into: destination.baseAddress!)
        if payload.count > 0 {
            let body = UnsafeMutableRawBufferPointer(rebasing: destination[h..<(h + payload.count)])
            body.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
            if let key = maskingKey { WebSocketMasking.apply(key, to: body) }
        }
        return h + payload.count
    }

    /// Appends one frame to `output`. `lengthEncoding` may force a non-minimal form and
    /// `claimedLength` may write a length other than the payload's (to build truncated or
    /// overlong frames on purpose).
    public static func encode(
        _ frame: WebSocketFrame, lengthEncoding: WebSocketLengthEncoding = .minimal, claimedLength: UInt64? = nil,
        into output: inout [UInt8]
    ) throws(WebSocketEncodingError) {
        let length = claimedLength ?? UInt64(frame.payload.count)
        let encoding: WebSocketLengthEncoding
        if lengthEncoding == .minimal {
            encoding = length < 126 ? .sevenBit : (length <= 0xFFFF ? .sixteenBit : .sixtyFourBit)
        } else {
            encoding = lengthEncoding
        }
        var b0: UInt8 = frame.opcode.rawValue
        if frame.fin { b0 |= 0x80 }
        if frame.rsv1 { b0 |= 0x40 }
        if frame.rsv2 { b0 |= 0x20 }
        if frame.rsv3 { b0 |= 0x10 }
        let maskBit: UInt8 = frame.maskingKey == nil ? 0 : 0x80
        output.append(b0)
        switch encoding {
        case .sevenBit, .minimal:
            guard length <= 127 else { throw WebSocketEncodingError("length \(length) does not fit the 7-bit length field (0-125)") }
            output.append(maskBit | UInt8(length))
        case .sixteenBit:
            guard length <= 0xFFFF else { throw WebSocketEncodingError("length \(length) does not fit a 16-bit length") }
            output.append(maskBit | 126)
            output.append(UInt8(length >> 8))
            output.append(UInt8(length & 0xFF))
        case .sixtyFourBit:
            output.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { output.append(UInt8((length >> UInt64(shift)) & 0xFF)) }
        }
        if let key = frame.maskingKey { output.append(contentsOf: key.bytes) }
        let start = output.count
        output.append(contentsOf: frame.payload)
        if let key = frame.maskingKey {
            output.withUnsafeMutableBytes { raw in
                _ = WebSocketMasking.apply(key, to: UnsafeMutableRawBufferPointer(rebasing: raw[start...]))
            }
        }
    }

    /// One frame as bytes, minimal encoding.
    public static func encode(_ frame: WebSocketFrame) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerLength(payloadLength: UInt64(frame.payload.count), masked: frame.maskingKey != nil) + frame.payload.count)
        try! encode(frame, into: &out)  // minimal encoding with the real length always fits
        return out
    }

    /// Splits a message into frames of at most `fragmentSize` payload bytes (§5.4): the first
    /// carries the opcode (and RSV1 when compressed, RFC 7692 §6.1), the rest are continuations,
    /// the last has FIN. Each frame gets its own key from `nextKey` when masking.
    public static func fragment(
        opcode: WebSocketOpcode, payload: [UInt8], fragmentSize: Int, compressed: Bool = false,
        nextKey: (() -> WebSocketMaskingKey)? = nil
    ) -> [WebSocketFrame] {
        let size = max(1, fragmentSize)
        var frames: [WebSocketFrame] = []
        var start = 0
        repeat {
            let end = min(payload.count, start + size)
            frames.append(WebSocketFrame(
                fin: end == payload.count, rsv1: compressed && start == 0, opcode: start == 0 ? opcode : .continuation,
                maskingKey: nextKey?(), payload: Array(payload[start..<end])))
            start = end
        } while start < payload.count
        return frames
    }
}
