/// The body of a Close frame (RFC 6455 §5.5.1): an optional 2-byte code and a UTF-8 reason.
public struct WebSocketClosePayload: Hashable, Sendable {
    /// nil when the payload was empty (reported as 1005 No Status Received, §7.1.5).
    public var code: WebSocketCloseCode?
    public var reason: String

    public init(code: WebSocketCloseCode?, reason: String = "") {
        self.code = code
        self.reason = reason
    }

    /// Bytes for a close frame. A nil code gives an empty payload (and drops the reason, which
    /// §5.5.1 only allows after a code).
    public static func encode(code: WebSocketCloseCode?, reason: String = "") -> [UInt8] {
        guard let code else { return [] }
        return [UInt8(code.code >> 8), UInt8(code.code & 0xFF)] + Array(reason.utf8)
    }

    /// Reads and checks a close payload. `offset` is the stream offset of its first byte, used in
    /// the violations. Returns the payload as far as it could be read, plus what was wrong with it.
    /// `cutShort`: `bytes` are the first bytes of a longer payload (a close frame over the 125
    /// bytes a control frame may have), so a character the cut left unfinished at the end is
    /// dropped from the reason rather than called invalid UTF-8.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, offset: Int = 0, cutShort: Bool = false
    ) -> (payload: WebSocketClosePayload, violations: [WebSocketViolation]) {
        if bytes.isEmpty { return (WebSocketClosePayload(code: nil), []) }
        if bytes.count == 1 {
            return (WebSocketClosePayload(code: nil),
                    [.init(.closePayloadTooShort, offset: offset, "close payload is 1 byte: a code takes 2")])
        }
        let code = WebSocketCloseCode(code: UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
        var violations: [WebSocketViolation] = []
        if !code.isSendable {
            violations.append(.init(.invalidCloseCode, offset: offset, "close code \(code.code) (\(code.name)) may not be sent"))
        }
        var reasonBytes = UnsafeRawBufferPointer(rebasing: bytes[2...])
        if cutShort, let whole = WebSocketUTF8Validator.validLengthBeforeCut(reasonBytes) {
            reasonBytes = UnsafeRawBufferPointer(rebasing: reasonBytes[..<whole])
        }
        if let bad = WebSocketUTF8Validator.firstInvalidIndex(reasonBytes) {
            violations.append(.init(.invalidCloseReason, offset: offset + 2 + bad, "close reason is not valid UTF-8 at reason byte \(bad)"))
            return (WebSocketClosePayload(code: code, reason: String(decoding: reasonBytes, as: UTF8.self)), violations)
        }
        return (WebSocketClosePayload(code: code, reason: String(decoding: reasonBytes, as: UTF8.self)), violations)
    }
}

