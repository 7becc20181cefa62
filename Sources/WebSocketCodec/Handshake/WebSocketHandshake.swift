internal import Crypto

/// The key arithmetic of the opening handshake (RFC 6455 §1.3, §4.1, §4.2.2).
///
/// A client sends a random `Sec-WebSocket-Key`; the server proves it understood the WebSocket
/// handshake (rather than being an HTTP server that echoes headers) by answering with
/// `Sec-WebSocket-Accept`, derived from the key and a fixed GUID. None of this is secret: SHA-1 is
/// used only because the RFC says so.
public enum WebSocketHandshake {
    /// The GUID that RFC 6455 §1.3 appends to every key; no other endpoint could know it by accident.
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The only protocol version this toolkit speaks, and the one every browser sends (RFC 6455 §4.1, item 9).
    public static let version = "13"

    /// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2, item 5.4):
    /// base64 of SHA-1 of the key, exactly as sent, followed by ``guid``.
    ///
    /// The key is not validated or trimmed, so this also answers "what would a server reply to this
    /// (possibly broken) key"; use ``isValidKey(_:)`` to check it.
    ///
    /// `acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==")` is `"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="` (§1.3).
    public static func acceptValue(forKey key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + guid).utf8))
        return HandshakeBase64.encode(Array(digest))
    }

    /// A new `Sec-WebSocket-Key`: 16 bytes from `generator`, base64-encoded (RFC 6455 §4.1, item 7).
    ///
    /// The generator is a parameter so that tests and `wsctl key --seed` can produce exact keys; real
    /// clients should use ``randomKey()``, since the RFC asks for a nonce chosen randomly for each
    /// connection.
    public static func randomKey<G: RandomNumberGenerator>(using generator: inout G) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            let word = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return HandshakeBase64.encode(bytes)
    }

    /// A new `Sec-WebSocket-Key` from the system's cryptographically secure generator.
    public static func randomKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return randomKey(using: &generator)
    }

    /// Whether `key` is a valid `Sec-WebSocket-Key`: padded base64 that decodes to exactly 16 bytes
    /// (RFC 6455 §4.1, item 7; §4.2.1, item 5). Surrounding whitespace is not allowed here; header
    /// parsing trims it first.
    public static func isValidKey(_ key: String) -> Bool {
        decodedKeyLength(key) == 16
    }

    /// The number of bytes `key` decodes to, or nil if it is not base64.
    static func decodedKeyLength(_ key: String) -> Int? {
        HandshakeBase64.decode(key)?.count
    }
}
