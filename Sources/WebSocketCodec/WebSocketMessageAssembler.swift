/// Limits and context for assembling messages from frames (RFC 6455 §5.4, §10.4).
public struct WebSocketMessageAssemblerConfiguration: Hashable, Sendable {
    /// Largest message, summed over its fragments. 64 MiB by default: room for Autobahn's
    /// 16 MiB messages with margin, bounded so one message cannot take the machine's memory.
    public var maxMessageSize: Int
    /// Most fragments in one message. Empty continuations cost nothing in size, so size limits
    /// alone do not bound the work a peer can cause. 131,072 by default: twice the 65,536
    /// fragments of Autobahn 9.4.1 (4 MiB in 64-byte frames).
    public var maxFragments: Int
    /// Check text messages as UTF-8 (§8.1), failing at the first bad byte even across fragments.
    public var validateUTF8: Bool
    /// permessage-deflate was negotiated: RSV1 on the first frame of a data message marks it
    /// compressed (RFC 7692 §6); its UTF-8 can only be checked after inflating, by the caller.
    public var compressionNegotiated: Bool
    /// Buffer capacity kept from one fragmented message to the next, so that a connection sending
    /// them does not allocate for each. 1 MiB by default; a tool holding many connections at once
    /// (`wsctl sniff`) keeps less.
    public var retainedBufferCapacity: Int

    public init(
        maxMessageSize: Int = 64 << 20, maxFragments: Int = 1 << 17, validateUTF8: Bool = true,
        compressionNegotiated: Bool = false, retainedBufferCapacity: Int = 1 << 20
    ) {
        self.maxMessageSize = maxMessageSize
        self.maxFragments = maxFragments
        self.validateUTF8 = validateUTF8
        self.compressionNegotiated = compressionNegotiated
        self.retainedBufferCapacity = retainedBufferCapacity
    }
}

/// A complete data message, borrowed: `payload` is valid only inside the callback.
public struct WebSocketMessageView {
    /// `.text`, `.binary`, or a reserved data opcode the parser let through.
    public var opcode: WebSocketOpcode
    public var payload: UnsafeRawBufferPointer
    /// RSV1 was set on the first frame with permessage-deflate negotiated: `payload` is deflated.
    public var compressed: Bool
    public var fragmentCount: Int
    /// Stream offset of the first frame.
    public var offset: Int
    /// Stream offset just past the last frame.
    public var endOffset: Int
    /// For uncompressed text: whether it was valid UTF-8. nil for binary or compressed messages.
    public var isValidUTF8: Bool?
    /// Bytes of the message lost in a capture gap and not kept in `payload` (see
    /// `WebSocketMessageAssembler.receiveLost`).
    public var missing: Int
    /// Bytes that arrived after `payload` and were not kept (`receive(_:keeping:_:)`): they were
    /// counted and, for uncompressed text, checked as UTF-8. The message's length is
    /// `payload.count + missing + unkept`.
    public var unkept: Int

    @inlinable
    public init(
        opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, compressed: Bool, fragmentCount: Int,
        offset: Int, endOffset: Int, isValidUTF8: Bool?, missing: Int = 0, unkept: Int = 0
    ) {
        self.missing = missing
        self.unkept = unkept
        self.opcode = opcode
        self.payload = payload
        self.compressed = compressed
        self.fragmentCount = fragmentCount
        self.offset = offset
        self.endOffset = endOffset
        self.isValidUTF8 = isValidUTF8
    }

    /// An owned copy.
    public func makeMessage() -> WebSocketMessage {
        WebSocketMessage(opcode: opcode, data: Array(payload), compressed: compressed, fragmentCount: fragmentCount, offset: offset)
    }
}

/// An owned data message.
public struct WebSocketMessage: Hashable, Sendable {
    public var opcode: WebSocketOpcode
    public var data: [UInt8]
    public var compressed: Bool
    public var fragmentCount: Int
    public var offset: Int

    public init(opcode: WebSocketOpcode, data: [UInt8], compressed: Bool = false, fragmentCount: Int = 1, offset: Int = 0) {
        self.opcode = opcode
        self.data = data
        self.compressed = compressed
        self.fragmentCount = fragmentCount
        self.offset = offset
    }

    /// The text of a text message that is valid UTF-8.
    public var text: String? {
        guard opcode == .text, !compressed else { return nil }
        return String(validating: data, as: UTF8.self)
    }
}

/// A whole control frame (close, ping, pong), borrowed for the callback.
public struct WebSocketControlFrameView {
    public var opcode: WebSocketOpcode
    public var payload: UnsafeRawBufferPointer
    public var offset: Int
    /// For close frames: the code and reason (as far as they could be read).
    public var close: WebSocketClosePayload?
}

/// What the assembler hands out.
public enum WebSocketAssembledItem {
    case message(WebSocketMessageView)
    case control(WebSocketControlFrameView)
}

/// Turns frames (as the parser delivers them, whole or in pieces) into messages, enforcing the
/// message-level rules: fragmentation order (§5.4), UTF-8 (§8.1, fail-fast across fragments),
/// close payloads (§5.5.1, §7.4), RSV1 placement (RFC 7692 §6.1) and the size and fragment limits.
///
/// Violations are returned, not thrown, so a decoder can keep going; a server closes with
/// `violations[0].closeCode`. An unfragmented message in one piece is handed out without copying.
public struct WebSocketMessageAssembler: Sendable {
    public var configuration: WebSocketMessageAssemblerConfiguration

    @usableFromInline var inMessage = false
    @usableFromInline var opcode = WebSocketOpcode.text
    @usableFromInline var compressed = false
    @usableFromInline var fragments = 0
    @usableFromInline var size = 0
    @usableFromInline var messageOffset = 0
    /// Stream offset just past the last payload byte of the message in progress.
    @usableFromInline var messageEnd = 0
    /// Bytes of the message in progress lost in a capture gap and not kept (`receiveLost`).
    @usableFromInline var missing = 0
    /// Bytes of the message in progress that arrived but were not kept (`receive(_:keeping:_:)`).
    @usableFromInline var unkept = 0
    /// Set once the message broke a limit: the rest of it is consumed without being kept.
    @usableFromInline var discarding = false
    @usableFromInline var utf8 = WebSocketUTF8Validator()
    @usableFromInline var utf8Failed = false
    @usableFromInline var buffer: [UInt8] = []
    @usableFromInline var controlBuffer: [UInt8] = []
    /// A close frame was seen: §5.5.1 makes it the last frame of this direction.
    public internal(set) var closeReceived = false
    @usableFromInline var reportedAfterClose = false

    public init(configuration: WebSocketMessageAssemblerConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Forgets the message in progress (after lost bytes); limits and the close state stay.
    public mutating func reset() {
        inMessage = false
        discarding = false
        fragments = 0
        size = 0
        missing = 0
        unkept = 0
        utf8.reset()
        utf8Failed = false
        buffer = []
    }

    /// The memory the bytes kept of the message in progress take: what their buffer has room for.
    /// (Rounded up by the allocator as its state allows: not the same from run to run.)
    @inlinable public var keptCapacity: Int { buffer.capacity }

    /// How many bytes of the message in progress are kept.
    @inlinable public var keptCount: Int { buffer.count }

    /// Lends `body` the bytes kept of the message in progress, then forgets all but the first
    /// `keepFirst` of them (they count as unkept from then on, as if `receive(_:keeping:_:)` had
    /// been told so from the start). For a caller that finds it cannot hold a message whole after
    /// all and goes on with what it needs (a prefix to show, inflating as bytes come).
    public mutating func releaseKept(keepingFirst keepFirst: Int, _ body: (UnsafeRawBufferPointer) -> Void = { _ in }) {
        guard inMessage, !discarding else { return }
        buffer.withUnsafeBytes { body($0) }
        let letGo = max(0, buffer.count - max(0, keepFirst))
        guard letGo > 0 else { return }
        unkept += letGo
        // A new buffer just large enough (trimming would keep the old one's room).
        buffer = keepFirst <= 0 ? [] : Array(buffer[..<keepFirst])
    }

    /// True while a fragmented message is unfinished.
    @inlinable public var isInsideMessage: Bool { inMessage }

    /// A message whose end will not come (the stream ended, or lost bytes took its last fragment):
    /// lends `body` what arrived of it, as far as it was kept (nil when no message is in progress or
    /// it broke a limit), and forgets it. For uncompressed text, `isValidUTF8` says whether what
    /// arrived is valid as far as it goes: it may end inside a character.
    public mutating func finishUnfinishedMessage<R>(_ body: (WebSocketMessageView) throws -> R) rethrows -> R? {
        guard inMessage else { return nil }
        defer { reset() }
        if discarding { return nil }
        let valid: Bool? = opcode == .text && !compressed && configuration.validateUTF8 ? !utf8Failed : nil
        let view = (opcode, compressed, fragments, messageOffset, messageEnd, valid, missing, unkept)
        return try buffer.withUnsafeBytes { raw in
            try body(WebSocketMessageView(opcode: view.0, payload: raw, compressed: view.1, fragmentCount: view.2,
                                          offset: view.3, endOffset: view.4, isValidUTF8: view.5, missing: view.6,
                                          unkept: view.7))
        }
    }

    /// Feeds one frame or piece. Calls `body` for each message or control frame it completes and
    /// returns the violations this piece revealed (usually none, and then nothing is allocated).
    @inlinable
    public mutating func receive(
        _ piece: WebSocketFramePiece, _ body: (WebSocketAssembledItem) throws -> Void
    ) rethrows -> [WebSocketViolation] {
        try receive(piece, keeping: Int.max, body)
    }

    /// `receive(_:_:)`, keeping at most the first `keep` bytes of a data message that has to be
    /// collected (fragmented, compressed, or arriving in pieces): the rest is counted, checked as
    /// UTF-8 where that applies, and let go (`WebSocketMessageView.unkept`). An unfragmented
    /// message in one piece is lent where it lies, whatever `keep` says.
    @inlinable
    public mutating func receive(
        _ piece: WebSocketFramePiece, keeping keep: Int, _ body: (WebSocketAssembledItem) throws -> Void
    ) rethrows -> [WebSocketViolation] {
        let h = piece.header
        let op = h.opcode
        // Fast path: a whole, unfragmented, uncompressed data frame with nothing in progress.
        if piece.isWholeFrame, h.fin, !inMessage, !closeReceived, op.isDataStart, piece.violations.isEmpty,
            !(configuration.compressionNegotiated && h.rsv1), piece.payload.count <= configuration.maxMessageSize
        {
            var valid: Bool? = nil
            if op == .text && configuration.validateUTF8 {
                if let bad = WebSocketUTF8Validator.firstInvalidIndex(piece.payload) {
                    let v = invalidUTF8(piece: piece, index: bad, messageBytesBefore: 0)
                    try body(.message(WebSocketMessageView(
                        opcode: op, payload: piece.payload, compressed: false, fragmentCount: 1, offset: piece.frameOffset,
                        endOffset: piece.streamOffset + piece.payload.count, isValidUTF8: false)))
                    return [v]
                }
                valid = true
            }
            try body(.message(WebSocketMessageView(
                opcode: op, payload: piece.payload, compressed: false, fragmentCount: 1, offset: piece.frameOffset,
                endOffset: piece.streamOffset + piece.payload.count, isValidUTF8: valid)))
            return []
        }
        return try receiveSlow(piece, keeping: keep, body)
    }

    /// Counts `lost` payload bytes of a frame which were never seen (a capture gap:
    /// `WebSocketFrameParser.skipStreamedPayload`), before `piece`, the empty piece that stands for
    /// them, is fed to `receive` (which completes the frame, and maybe the message, if it is last).
    /// They count toward the message's size, so its limit, length and offsets stay exact; they are
    /// kept as zeros only while the message holds fewer than `keep` bytes (what a caller shows of
    /// it), and otherwise only counted (`WebSocketMessageView.missing`), so a gap costs no memory
    /// however large the frame says it is. The message's text can no longer be judged, so it is
    /// reported not valid UTF-8, without a violation.
    public mutating func receiveLost(_ lost: Int, keeping keep: Int, before piece: WebSocketFramePiece) -> [WebSocketViolation] {
        precondition(piece.payload.isEmpty && !piece.isFirst && lost >= 0, "a piece standing for lost bytes has no payload of its own")
        var violations: [WebSocketViolation] = []
        if !piece.header.opcode.isControl && inMessage && !discarding {
            if lost > configuration.maxMessageSize - size {
                violations.append(.init(.messageTooLarge, offset: piece.streamOffset - lost + max(0, configuration.maxMessageSize - size),
                                        "message exceeds the limit of \(configuration.maxMessageSize) bytes"))
                discarding = true
                buffer = []
            } else {
                let zeros = max(0, min(lost, keep - buffer.count))
                if missing == 0 && unkept == 0 && zeros > 0 { buffer.append(contentsOf: repeatElement(0, count: zeros)) }
                missing += missing == 0 ? lost - zeros : lost
                size += lost
                utf8Failed = true
            }
        }
        // Control frames keep at most 125 bytes (longer ones were reported by the parser); a
        // message being discarded only counts; a piece out of place is passed over: as in `receive`.
        return violations
    }

    @usableFromInline
    func invalidUTF8(piece: WebSocketFramePiece, index: Int, messageBytesBefore: Int) -> WebSocketViolation {
        if index >= piece.payload.count {
            return WebSocketViolation(.invalidUTF8, offset: piece.streamOffset + piece.payload.count,
                                      "text message ends inside a UTF-8 sequence")
        }
        let byte = piece.payload[index]
        return WebSocketViolation(.invalidUTF8, offset: piece.streamOffset + index,
                                  "byte 0x\(byte < 16 ? "0" : "")\(String(byte, radix: 16)) is not valid UTF-8 here (message byte \(messageBytesBefore + index))")
    }

    @usableFromInline
    mutating func receiveSlow(
        _ piece: WebSocketFramePiece, keeping keep: Int, _ body: (WebSocketAssembledItem) throws -> Void
    ) rethrows -> [WebSocketViolation] {
        let h = piece.header
        let op = h.opcode
        var violations: [WebSocketViolation] = []
        if piece.isFirst && closeReceived && !reportedAfterClose {
            reportedAfterClose = true
            violations.append(.init(.frameAfterClose, offset: piece.frameOffset, "\(op.name) frame after a close frame"))
        }
        if op.isControl {
            if piece.isFirst && h.rsv1 && configuration.compressionNegotiated {
                violations.append(.init(.compressedBitMisplaced, offset: piece.frameOffset, "RSV1 set on a \(op.name) frame: only the first frame of a data message may be compressed"))
            }
            // Control frames over 125 bytes were reported by the parser. Of one, its first 125
            // bytes are kept, so that a close frame's code and the start of its reason are still
            // shown (as tshark shows them), however long the frame says it is.
            if piece.isFirst { controlBuffer.removeAll(keepingCapacity: true) }
            let room = 125 - controlBuffer.count
            if room > 0 { controlBuffer.append(contentsOf: piece.payload.prefix(room)) }
            guard piece.isLast else { return violations }
            let controlOffset = piece.frameOffset
            let payloadOffset = piece.frameOffset + h.headerLength
            try controlBuffer.withUnsafeBytes { raw in
                var close: WebSocketClosePayload? = nil
                if op == .close {
                    let parsed = WebSocketClosePayload.parse(raw, offset: payloadOffset, cutShort: h.payloadLength > 125)
                    close = parsed.payload
                    violations += parsed.violations
                    closeReceived = true
                }
                try body(.control(WebSocketControlFrameView(opcode: op, payload: raw, offset: controlOffset, close: close)))
            }
            return violations
        }
        if piece.isFirst {
            if op == .continuation {
                if !inMessage {
                    violations.append(.init(.continuationWithoutStart, offset: piece.frameOffset, "continuation frame with no message in progress"))
                    return violations
                }
                if h.rsv1 && configuration.compressionNegotiated {
                    violations.append(.init(.compressedBitMisplaced, offset: piece.frameOffset, "RSV1 set on a continuation frame: only the first frame of a message carries it"))
                }
                fragments += 1
                if fragments > configuration.maxFragments && !discarding {
                    violations.append(.init(.tooManyFragments, offset: piece.frameOffset, "message has more than \(configuration.maxFragments) fragments"))
                    discarding = true
                    buffer = []
                }
            } else {
                if inMessage {
                    violations.append(.init(.newMessageInsideFragmented, offset: piece.frameOffset,
                                            "\(op.name) frame while the message begun at byte \(messageOffset) is unfinished"))
                }
                inMessage = true
                opcode = op
                compressed = configuration.compressionNegotiated && h.rsv1
                fragments = 1
                size = 0
                missing = 0
                unkept = 0
                messageOffset = piece.frameOffset
                discarding = false
                utf8.reset()
                utf8Failed = false
                buffer.removeAll(keepingCapacity: buffer.capacity <= configuration.retainedBufferCapacity)
            }
        } else if !inMessage {
            return violations  // the rest of a frame already reported as out of place
        }
        if !discarding {
            if size + piece.payload.count > configuration.maxMessageSize {
                // Reported at the first byte past the limit.
                violations.append(.init(.messageTooLarge, offset: piece.streamOffset + max(0, configuration.maxMessageSize - size),
                                        "message exceeds the limit of \(configuration.maxMessageSize) bytes"))
                discarding = true
                buffer = []
            } else {
                if opcode == .text && !compressed && configuration.validateUTF8 && !utf8Failed,
                    let bad = utf8.validate(piece.payload)
                {
                    utf8Failed = true
                    violations.append(invalidUTF8(piece: piece, index: bad, messageBytesBefore: size))
                }
                let room = unkept > 0 ? 0 : max(0, keep - buffer.count)
                if room >= piece.payload.count {
                    buffer.append(contentsOf: piece.payload)
                } else {
                    if room > 0 { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece.payload[..<room])) }
                    unkept += piece.payload.count - room
                }
            }
        }
        size += piece.payload.count
        messageEnd = piece.streamOffset + piece.payload.count
        guard piece.isLast && h.fin else { return violations }
        inMessage = false
        if discarding { return violations }
        var valid: Bool? = nil
        if opcode == .text && !compressed && configuration.validateUTF8 {
            if !utf8Failed && !utf8.isAtCharacterBoundary {
                utf8Failed = true
                violations.append(.init(.invalidUTF8, offset: piece.streamOffset + piece.payload.count, "text message ends inside a UTF-8 sequence"))
            }
            valid = !utf8Failed
        }
        let end = piece.streamOffset + piece.payload.count
        let view = (opcode, compressed, fragments, messageOffset, valid, missing, unkept)
        try buffer.withUnsafeBytes { raw in
            try body(.message(WebSocketMessageView(opcode: view.0, payload: raw, compressed: view.1, fragmentCount: view.2,
                                                   offset: view.3, endOffset: end, isValidUTF8: view.4, missing: view.5,
                                                   unkept: view.6)))
        }
        if buffer.capacity > configuration.retainedBufferCapacity { buffer = [] }
        return violations
    }
}
