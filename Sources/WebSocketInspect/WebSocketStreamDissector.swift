import WebSocketCodec
import WebSocketCompression

/// Dissects one direction of a WebSocket byte stream into frame and message records, with the
/// codec's parser and assembler (the same ones the server uses), permessage-deflate inflated with
/// one context per direction, and envelopes recognised. Shared by `wsctl decode` and `wsctl sniff`.
///
/// Input bytes are copied before parsing: what was captured is never modified.
public struct WebSocketStreamDissector {
    public let configuration: WebSocketDissectorConfiguration
    public let direction: WebSocketDirection?
    private var parser: WebSocketFrameParser
    private var assembler: WebSocketMessageAssembler
    private var inflater: PerMessageDeflateDecompressor?
    private var scratch: [UInt8] = []
    private var frameCount = 0
    private var messageCount = 0
    /// The frame being collected (large frames arrive in pieces).
    private var current: FrameRecord?
    /// Opcode and compression of the message in progress, to show continuation frames properly.
    private var messageOpcode: WebSocketOpcode?
    private var messageCompressed = false
    public private(set) var violationCount = 0

    public init(configuration: WebSocketDissectorConfiguration = .init(), direction: WebSocketDirection? = nil) {
        self.configuration = configuration
        self.direction = direction
        var pc = configuration.parser
        pc.direction = direction ?? pc.direction
        if configuration.deflate != .off { pc.allowedReservedBits |= 0x40 }
        parser = WebSocketFrameParser(configuration: pc)
        var ac = configuration.assembler
        ac.compressionNegotiated = configuration.deflate != .off
        assembler = WebSocketMessageAssembler(configuration: ac)
    }

    /// Stream offset just past the bytes fed so far.
    public var bytesFed: Int { parser.bytesFed }

    /// The unfinished frame at the end of the input, if any: where it starts and how many bytes are missing.
    public var pendingFrame: (offset: Int, received: UInt64, missing: UInt64)? { parser.pendingFrame }

    /// Set when the parser met a length it cannot skip and stopped.
    public var failure: WebSocketViolation? { parser.failure }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (DissectionEvent) -> Void) {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: bytes)
        var local = scratch
        scratch = []
        var p = parser
        local.withUnsafeMutableBytes { raw in
            p.parse(raw) { piece in handle(piece, emit) }
        }
        parser = p
        scratch = local
    }

    public mutating func feed(_ bytes: [UInt8], _ emit: (DissectionEvent) -> Void) {
        bytes.withUnsafeBytes { feed($0, emit) }
    }

    /// Bytes of the stream were lost (a capture gap). When they fall inside the payload of the
    /// frame being read, the frame boundary is still known: the gap is filled with zeros so that
    /// framing and offsets stay exact, and that frame's and message's content (text, UTF-8 and
    /// inflate checks) is not reported. Otherwise parsing starts again after the gap with offsets
    /// and counters kept; it finds the next frame when the gap ended on a frame boundary.
    /// Returns whether the frame boundary was kept.
    @discardableResult
    public mutating func skip(_ count: Int, _ emit: (DissectionEvent) -> Void) -> Bool {
        guard count > 0 else { return true }
        if let pending = parser.pendingFrame, parser.isInsideFramePayload, UInt64(count) <= pending.missing {
            damaged = true
            feed([UInt8](repeating: 0, count: count), emit)
            return true
        }
        // The message in progress (if any) is kept: when the gap ended on a frame boundary its
        // next fragments still belong to it. It is incomplete, so its content is not judged.
        parser.reset(at: parser.bytesFed + count)
        current = nil
        damaged = true
        return false
    }

    /// Set from a gap inside a frame until the message it belongs to ends.
    private var damaged = false

    private mutating func handle(_ piece: WebSocketFramePiece, _ emit: (DissectionEvent) -> Void) {
        let h = piece.header
        if piece.isFirst {
            frameCount += 1
            current = FrameRecord(index: frameCount, header: h, offset: piece.frameOffset, payload: [], payloadTruncated: false,
                                  text: nil, close: nil, violations: piece.violations)
            if h.opcode.isDataStart {
                messageOpcode = h.opcode
                messageCompressed = h.rsv1 && configuration.deflate != .off
            }
        }
        guard var record = current else { return }
        let room = (configuration.maxPayloadShown ?? Int.max) - record.payload.count
        if room >= piece.payload.count {
            record.payload.append(contentsOf: piece.payload)
        } else {
            if room > 0 { record.payload.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece.payload[0..<room])) }
            record.payloadTruncated = true
        }
        var message: MessageRecord? = nil
        var a = assembler
        defer { assembler = a }
        let violations = a.receive(piece) { item in
            switch item {
            case .control(let control):
                record.close = control.close
            case .message(let view):
                message = makeMessageRecord(view)
            }
        }
        record.violations += damaged ? violations.filter { !Self.contentRules.contains($0.rule) } : violations
        current = record
        // A length with its top bit set ends the parse: show the frame as far as it goes.
        let stopped = piece.violations.contains { $0.rule == .lengthTopBitSet }
        guard piece.isLast || stopped else { return }
        let op = h.opcode
        let isText = op == .text || (op == .continuation && messageOpcode == .text)
        if isText && !messageCompressed && !damaged {
            record.text = String(validating: record.payload, as: UTF8.self)
        }
        violationCount += record.violations.count
        current = nil
        emit(.frame(record))
        if var m = message {
            if damaged {
                m.violations = m.violations.filter { !Self.contentRules.contains($0.rule) }
                m.text = nil
                m.incomplete = true
            }
            violationCount += m.violations.count
            m.index = messageCount
            emit(.message(m))
        }
        if h.fin && !op.isControl {
            messageOpcode = nil
            damaged = false
        }
    }

    /// Rules that bytes lost in a gap make meaningless: a payload's content, and where a message
    /// starts (its first fragment may be what was lost).
    static let contentRules: Set<WebSocketViolation.Rule> = [
        .invalidUTF8, .invalidCompressedData, .inflatedTooLarge, .invalidCloseReason, .invalidCloseCode,
        .closePayloadTooShort, .continuationWithoutStart, .newMessageInsideFragmented,
    ]

    private mutating func makeMessageRecord(_ view: WebSocketMessageView) -> MessageRecord {
        messageCount += 1
        var violations: [WebSocketViolation] = []
        var data: [UInt8]
        var dataLength = view.payload.count
        var isValidText = view.isValidUTF8 ?? false
        if view.compressed {
            do {
                let inflated = try inflate(view.payload)
                data = inflated
                dataLength = inflated.count
                if view.opcode == .text {
                    if let bad = WebSocketUTF8Validator.firstInvalidIndex(inflated) {
                        violations.append(WebSocketViolation(.invalidUTF8, offset: view.offset,
                            bad < inflated.count ? "inflated text is not valid UTF-8 at message byte \(bad)" : "inflated text ends inside a UTF-8 sequence"))
                    } else {
                        isValidText = true
                    }
                }
            } catch {
                var v = error
                v.offset = view.offset
                violations.append(v)
                data = Array(view.payload)
            }
        } else {
            data = Array(view.payload)
        }
        let fullText = isValidText && view.opcode == .text ? String(decoding: data, as: UTF8.self) : nil
        var envelope: EnvelopeSummary? = nil
        if configuration.recogniseEnvelopes, let fullText {
            envelope = Self.summariseEnvelope(fullText)
        }
        var truncated = false
        if let limit = configuration.maxPayloadShown, data.count > limit {
            data = Array(data[0..<limit])
            truncated = true
        }
        let text = fullText.map { truncated ? String(decoding: data, as: UTF8.self) : $0 }
        return MessageRecord(index: messageCount, opcode: view.opcode, offset: view.offset, endOffset: view.endOffset,
                             length: view.payload.count, fragmentCount: view.fragmentCount, compressed: view.compressed,
                             data: data, dataLength: dataLength, dataTruncated: truncated, text: text, envelope: envelope,
                             violations: violations)
    }

    private mutating func inflate(_ payload: UnsafeRawBufferPointer) throws(WebSocketViolation) -> [UInt8] {
        if inflater == nil {
            let server = direction == .serverToClient
            inflater = PerMessageDeflateDecompressor(
                PerMessageDeflateDirection(
                    windowBits: server ? configuration.serverMaxWindowBits : configuration.clientMaxWindowBits,
                    noContextTakeover: server ? configuration.serverNoContextTakeover : configuration.clientNoContextTakeover),
                maxInflatedSize: configuration.maxInflatedSize)
        }
        return try inflater!.inflateMessage(payload)
    }

    /// The envelope's `type` and ids, or why an object with a `type` is not a valid envelope;
    /// nil for text that is not an envelope at all.
    static func summariseEnvelope(_ text: String) -> EnvelopeSummary? {
        guard WebSocketEnvelope.looksLikeEnvelope(text) else { return nil }
        do {
            guard let e = try WebSocketEnvelope.parseIfEnvelope(text) else { return nil }
            return EnvelopeSummary(type: e.type, correlationID: e.correlationID, messageID: e.messageID,
                                   clientID: e.clientID, error: nil)
        } catch {
            return EnvelopeSummary(type: "", correlationID: nil, messageID: nil, clientID: nil, error: "\(error)")
        }
    }
}
