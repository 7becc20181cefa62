import WebSocketCodec

/// Limits of what a dissection keeps for display. Captured bytes are never modified: payloads
/// are unmasked into copies, and only `maxPayloadShown` bytes of each are kept.
public struct WebSocketDissectorConfiguration: Sendable {
    public var parser: WebSocketFrameParserConfiguration
    public var assembler: WebSocketMessageAssemblerConfiguration
    /// Payload bytes kept per frame and message for display; nil keeps all. 256 by default:
    /// a screenful of hex, enough to recognise a payload; `--full` lifts it.
    public var maxPayloadShown: Int?
    /// How RSV1 on the first frame of a message is read.
    public var deflate: DeflateMode
    /// Largest inflated message (RFC 7692 §8.1 asks implementations to limit it). 64 MiB by default.
    public var maxInflatedSize: Int
    public var clientNoContextTakeover: Bool
    public var serverNoContextTakeover: Bool
    public var clientMaxWindowBits: Int
    public var serverMaxWindowBits: Int
    /// Look for JSON envelopes in text messages.
    public var recogniseEnvelopes: Bool

    public enum DeflateMode: String, Sendable, CaseIterable {
        /// RSV1 on a message's first frame means permessage-deflate: no handshake was seen, so a
        /// set RSV1 is read as the one extension that uses it in practice.
        case auto
        /// permessage-deflate was negotiated.
        case on
        /// No extension: RSV1 is a violation (§5.2).
        case off
    }

    public init(
        parser: WebSocketFrameParserConfiguration = .init(), assembler: WebSocketMessageAssemblerConfiguration = .init(),
        maxPayloadShown: Int? = 256, deflate: DeflateMode = .auto, maxInflatedSize: Int = 64 << 20,
        clientNoContextTakeover: Bool = false, serverNoContextTakeover: Bool = false,
        clientMaxWindowBits: Int = 15, serverMaxWindowBits: Int = 15, recogniseEnvelopes: Bool = true
    ) {
        self.parser = parser
        self.assembler = assembler
        self.maxPayloadShown = maxPayloadShown
        self.deflate = deflate
        self.maxInflatedSize = maxInflatedSize
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientMaxWindowBits = clientMaxWindowBits
        self.serverMaxWindowBits = serverMaxWindowBits
        self.recogniseEnvelopes = recogniseEnvelopes
    }
}

/// One frame as dissected.
public struct FrameRecord: Sendable {
    public var index: Int
    public var header: WebSocketFrameHeader
    public var offset: Int
    /// Unmasked payload (at most `maxPayloadShown` bytes of it).
    public var payload: [UInt8]
    public var payloadTruncated: Bool
    /// For text frames: the payload as text when it is valid UTF-8 on its own.
    public var text: String?
    public var close: WebSocketClosePayload?
    public var violations: [WebSocketViolation]
}

/// A JSON envelope seen in a text message (its `type` and `correlation_id`, or why it is invalid).
public struct EnvelopeSummary: Sendable {
    public var type: String
    public var correlationID: String?
    public var messageID: String?
    public var clientID: String?
    public var error: String?
}

/// One assembled data message.
public struct MessageRecord: Sendable {
    public var index: Int
    public var opcode: WebSocketOpcode
    public var offset: Int
    public var endOffset: Int
    /// Bytes on the wire (after compression).
    public var length: Int
    public var fragmentCount: Int
    public var compressed: Bool
    /// Payload as the application sees it (inflated when compressed), at most `maxPayloadShown` bytes.
    public var data: [UInt8]
    public var dataLength: Int
    public var dataTruncated: Bool
    /// Text of a valid text message (inflated when compressed; truncated like `data`).
    public var text: String?
    public var envelope: EnvelopeSummary?
    public var violations: [WebSocketViolation]
    /// Bytes of the message were lost in a capture gap: its length and content are not what was sent.
    public var incomplete = false
}

public enum DissectionEvent: Sendable {
    case frame(FrameRecord)
    case message(MessageRecord)
}
