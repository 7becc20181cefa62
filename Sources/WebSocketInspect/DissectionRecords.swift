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
    /// Decode each compressed message's DEFLATE codes to flag a back-reference beyond the window
    /// agreed for its direction (`window-exceeded`, RFC 7692 §7.1.2), where that window is under
    /// 15 bits: zlib lets such a reference through when the bytes it names are still in its
    /// output. Reading the codes costs about as much again as inflating does (`sniff
    /// --check-window`; `decode` always checks).
    public var checksWindow = false
    /// Memory shared by every dissector made with this configuration for the messages they
    /// collect; nil for no limit but each message's own (64 MiB).
    public var messageMemory: DissectionMemoryBudget?
    /// With `messageMemory`: how much is kept (and shown) of a message, or of a frame arriving in
    /// pieces, that does not fit in it, when that is less than `maxPayloadShown`. For showing whole
    /// payloads (`wsctl sniff --full`) under a memory limit: what does not fit is shown cut here,
    /// as without `--full`. Nil: `maxPayloadShown`.
    public var maxPayloadShownWithoutRoom: Int?

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
    /// The stream ended inside this frame (the capture stopped, or the connection ended, before
    /// its last byte): `payload` is what arrived.
    public var incomplete = false
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
    /// Bytes of the message were lost in a capture gap: its length and content are not what was
    /// sent. Also set on a compressed message that could not be inflated because, with context
    /// takeover, it refers back to history a gap took, or because there was no memory for an
    /// inflater (`messageMemory`).
    public var incomplete = false
    /// A text message that did not fit in `WebSocketDissectorConfiguration.messageMemory`: only
    /// its first bytes were kept, so no envelope was looked for in it.
    public var envelopeUnchecked = false
}

public enum DissectionEvent: Sendable {
    case frame(FrameRecord)
    case message(MessageRecord)
    case resync(DissectionResync)
}

/// After a gap that did not end on a frame boundary: where frames were found to start again, and
/// how many bytes after the gap were passed over as the rest of a frame whose start was lost.
/// Reported before the first frame it lets out (not when the gap's end was itself a frame start).
public struct DissectionResync: Sendable, Equatable {
    /// Stream offset where the gap ended.
    public var gapEnd: Int
    /// Stream offset of the first frame found after it; nil when the stream ended, or another gap
    /// came, first (then every byte after the gap up to there was passed over).
    public var offset: Int?
    /// Bytes from the gap's end to `offset` (or to the end of the stream), not read as frames.
    public var skipped: Int

    public init(gapEnd: Int, offset: Int?, skipped: Int) {
        self.gapEnd = gapEnd
        self.offset = offset
        self.skipped = skipped
    }
}

/// A `FrameRecord` borrowed for the callback that receives it: the payload, the close payload and
/// the violations point into the dissector's storage, so nothing is copied, allocated or
/// reference-counted per frame (the view is plain data, copied as such when it is passed on).
/// `FrameRecord(view)` keeps one.
public struct FrameRecordView {
    public var index: Int
    public var header: WebSocketFrameHeader
    public var offset: Int
    /// Unmasked payload (at most `maxPayloadShown` bytes of it).
    public var payload: UnsafeRawBufferPointer
    public var payloadTruncated: Bool
    /// For text frames whose payload (as shown) is valid UTF-8 on its own: those bytes, to show as text.
    public var text: UnsafeRawBufferPointer?
    /// The close frame's code and reason, borrowed (see `close`).
    public var borrowedClose: UnsafePointer<WebSocketClosePayload>?
    public var violations: UnsafeBufferPointer<WebSocketViolation>
    /// The stream ended inside this frame: `payload` is what arrived.
    public var incomplete: Bool

    public init(index: Int, header: WebSocketFrameHeader, offset: Int, payload: UnsafeRawBufferPointer, payloadTruncated: Bool,
                text: UnsafeRawBufferPointer?, close: UnsafePointer<WebSocketClosePayload>?,
                violations: UnsafeBufferPointer<WebSocketViolation>, incomplete: Bool = false) {
        self.incomplete = incomplete
        self.index = index
        self.header = header
        self.offset = offset
        self.payload = payload
        self.payloadTruncated = payloadTruncated
        self.text = text
        self.borrowedClose = close
        self.violations = violations
    }

    /// A close frame's code and reason (a copy).
    public var close: WebSocketClosePayload? { borrowedClose?.pointee }

    /// The text as a String (allocates).
    public var textString: String? { text.map { String(decoding: $0, as: UTF8.self) } }
}

/// A `MessageRecord` borrowed for the callback that receives it (see `FrameRecordView`).
public struct MessageRecordView {
    public var index: Int
    public var opcode: WebSocketOpcode
    public var offset: Int
    public var endOffset: Int
    /// Bytes on the wire (after compression).
    public var length: Int
    public var fragmentCount: Int
    public var compressed: Bool
    /// Payload as the application sees it (inflated when compressed), at most `maxPayloadShown` bytes.
    public var data: UnsafeRawBufferPointer
    public var dataLength: Int
    public var dataTruncated: Bool
    /// For a valid text message: the text shown, valid UTF-8 (`data`, or `data` without the start of
    /// a character that the cut at `maxPayloadShown` split).
    public var text: UnsafeRawBufferPointer?
    /// The cut at `maxPayloadShown` split a character: it shows as U+FFFD after `text`, as
    /// `String(decoding:as:)` shows an unfinished sequence.
    public var textEndsInsideCharacter: Bool
    /// The envelope, borrowed (see `envelope`).
    public var borrowedEnvelope: UnsafePointer<EnvelopeSummary>?
    /// The envelope's type and ids (a copy).
    public var envelope: EnvelopeSummary? { borrowedEnvelope?.pointee }
    public var violations: UnsafeBufferPointer<WebSocketViolation>
    /// Bytes of the message were lost in a capture gap, or its end never came (a gap took it, or
    /// the capture or the connection ended first): its length and content are not what was sent.
    /// Also set on a compressed message that could not be inflated for want of its history or of
    /// memory (see `MessageRecord.incomplete`).
    public var incomplete: Bool
    /// See `MessageRecord.envelopeUnchecked`.
    public var envelopeUnchecked: Bool

    public init(index: Int, opcode: WebSocketOpcode, offset: Int, endOffset: Int, length: Int, fragmentCount: Int,
                compressed: Bool, data: UnsafeRawBufferPointer, dataLength: Int, dataTruncated: Bool,
                text: UnsafeRawBufferPointer?, textEndsInsideCharacter: Bool, envelope: UnsafePointer<EnvelopeSummary>?,
                violations: UnsafeBufferPointer<WebSocketViolation>, incomplete: Bool, envelopeUnchecked: Bool = false) {
        self.envelopeUnchecked = envelopeUnchecked
        self.index = index
        self.opcode = opcode
        self.offset = offset
        self.endOffset = endOffset
        self.length = length
        self.fragmentCount = fragmentCount
        self.compressed = compressed
        self.data = data
        self.dataLength = dataLength
        self.dataTruncated = dataTruncated
        self.text = text
        self.textEndsInsideCharacter = textEndsInsideCharacter
        self.borrowedEnvelope = envelope
        self.violations = violations
        self.incomplete = incomplete
    }

    /// The text as a String (allocates).
    public var textString: String? {
        text.map { String(decoding: $0, as: UTF8.self) + (textEndsInsideCharacter ? "\u{FFFD}" : "") }
    }
}

/// A `DissectionEvent` borrowed for the callback that receives it: a frame or message record is
/// lent where the dissector built it (`pointee`), valid only during the call.
///
/// Pointers, not the records themselves: a record in the enum was copied in, its case written,
/// and then read back and copied out by the receiver, for every frame and message (store-to-load
/// stalls that took about 2% of `sniff`'s cycles).
public enum DissectionEventView {
    case frame(UnsafePointer<FrameRecordView>)
    case message(UnsafePointer<MessageRecordView>)
    case resync(DissectionResync)
}

extension FrameRecord {
    /// An owned copy of a borrowed record.
    public init(_ v: FrameRecordView) {
        self.init(index: v.index, header: v.header, offset: v.offset, payload: Array(v.payload), payloadTruncated: v.payloadTruncated,
                  text: v.textString, close: v.close, violations: Array(v.violations), incomplete: v.incomplete)
    }

    /// The record borrowed as a view (for the renderers, which work on views).
    public func withView<R>(_ body: (FrameRecordView) throws -> R) rethrows -> R {
        try payload.withUnsafeBytes { payload in
            try withUTF8(of: text) { text in
                try withBorrowed(close, violations) { close, violations in
                    try body(FrameRecordView(index: index, header: header, offset: offset, payload: payload, payloadTruncated: payloadTruncated,
                                             text: text, close: close, violations: violations, incomplete: incomplete))
                }
            }
        }
    }
}

extension MessageRecord {
    /// An owned copy of a borrowed record.
    public init(_ v: MessageRecordView) {
        self.init(index: v.index, opcode: v.opcode, offset: v.offset, endOffset: v.endOffset, length: v.length,
                  fragmentCount: v.fragmentCount, compressed: v.compressed, data: Array(v.data), dataLength: v.dataLength,
                  dataTruncated: v.dataTruncated, text: v.textString, envelope: v.envelope, violations: Array(v.violations),
                  incomplete: v.incomplete, envelopeUnchecked: v.envelopeUnchecked)
    }

    /// The record borrowed as a view (for the renderers, which work on views).
    public func withView<R>(_ body: (MessageRecordView) throws -> R) rethrows -> R {
        try data.withUnsafeBytes { data in
            try withUTF8(of: text) { text in
                try withBorrowed(envelope, violations) { envelope, violations in
                    try body(MessageRecordView(index: index, opcode: opcode, offset: offset, endOffset: endOffset, length: length,
                                               fragmentCount: fragmentCount, compressed: compressed, data: data, dataLength: dataLength,
                                               dataTruncated: dataTruncated, text: text, textEndsInsideCharacter: false,
                                               envelope: envelope, violations: violations, incomplete: incomplete,
                                               envelopeUnchecked: envelopeUnchecked))
                }
            }
        }
    }
}

/// An optional value and an array, borrowed as pointers for the call (what a view holds).
func withBorrowed<T, R>(_ value: T?, _ violations: [WebSocketViolation],
                        _ body: (UnsafePointer<T>?, UnsafeBufferPointer<WebSocketViolation>) throws -> R) rethrows -> R {
    try violations.withUnsafeBufferPointer { violations in
        guard let value else { return try body(nil, violations) }
        return try withUnsafePointer(to: value) { try body($0, violations) }
    }
}

/// The UTF-8 of an optional string, borrowed.
private func withUTF8<R>(of s: String?, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
    guard var s else { return try body(nil) }
    return try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
}
