/// One frame with its payload unmasked: what the encoder takes and the collecting decoder returns.
public struct WebSocketFrame: Hashable, Sendable {
    public var fin: Bool
    public var rsv1: Bool
    public var rsv2: Bool
    public var rsv3: Bool
    public var opcode: WebSocketOpcode
    /// The key the frame is (to be) masked with; nil for an unmasked frame.
    public var maskingKey: WebSocketMaskingKey?
    /// Application data, never masked.
    public var payload: [UInt8]

    public init(
        fin: Bool = true, rsv1: Bool = false, rsv2: Bool = false, rsv3: Bool = false,
        opcode: WebSocketOpcode, maskingKey: WebSocketMaskingKey? = nil, payload: [UInt8] = []
    ) {
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.maskingKey = maskingKey
        self.payload = payload
    }

    public static func text(_ string: String, fin: Bool = true, maskingKey: WebSocketMaskingKey? = nil) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: .text, maskingKey: maskingKey, payload: Array(string.utf8))
    }

    public static func binary(_ bytes: [UInt8], fin: Bool = true, maskingKey: WebSocketMaskingKey? = nil) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: .binary, maskingKey: maskingKey, payload: bytes)
    }

    public static func close(
        code: WebSocketCloseCode? = .normalClosure, reason: String = "", maskingKey: WebSocketMaskingKey? = nil
    ) -> WebSocketFrame {
        WebSocketFrame(opcode: .close, maskingKey: maskingKey, payload: WebSocketClosePayload.encode(code: code, reason: reason))
    }

    public static func ping(_ payload: [UInt8] = [], maskingKey: WebSocketMaskingKey? = nil) -> WebSocketFrame {
        WebSocketFrame(opcode: .ping, maskingKey: maskingKey, payload: payload)
    }

    public static func pong(_ payload: [UInt8] = [], maskingKey: WebSocketMaskingKey? = nil) -> WebSocketFrame {
        WebSocketFrame(opcode: .pong, maskingKey: maskingKey, payload: payload)
    }
}

/// Which endpoint sent the bytes; decides the masking rule (RFC 6455 §5.1).
public enum WebSocketDirection: String, Sendable, Hashable, CaseIterable {
    /// Sent by the client: every frame must be masked.
    case clientToServer = "client"
    /// Sent by the server: no frame may be masked.
    case serverToClient = "server"
}
