/// Limits and context for parsing one direction of a connection.
public struct WebSocketFrameParserConfiguration: Hashable, Sendable {
    /// Who sent the bytes. Known: the masking rule of §5.1 is applied. nil: masking is not checked
    /// (a pasted dump often does not say which side it came from).
    public var direction: WebSocketDirection?
    /// RSV bits an extension has claimed, in wire positions (0x40 = RSV1 for permessage-deflate).
    /// Any other RSV bit set is a violation (§5.2).
    public var allowedReservedBits: UInt8
    /// Largest payload accepted in one frame. 64 MiB by default: four times the 16 MiB frames
    /// Autobahn's 9.x cases send, and still small enough that a hostile length cannot take the
    /// machine's memory (large frames are streamed, never buffered whole, in any case).
    public var maxFrameSize: UInt64
    /// Frames with payloads up to this many bytes are delivered whole (one piece, copied together
    /// when they span reads); larger ones are handed out in pieces as bytes arrive, with the mask
    /// phase carried across. 1 MiB by default: big enough that ordinary messages arrive whole,
    /// small enough that buffering one costs little.
    public var maxBufferedFrameSize: Int
    /// Room kept in the buffer that collects a frame spanning reads, once the frame is out: all of
    /// it by default (no allocation for the next one); a tool following many connections at once
    /// (`wsctl sniff`) keeps less.
    public var retainedCarryCapacity: Int

    public init(
        direction: WebSocketDirection? = nil, allowedReservedBits: UInt8 = 0,
        maxFrameSize: UInt64 = 64 << 20, maxBufferedFrameSize: Int = 1 << 20, retainedCarryCapacity: Int = Int.max
    ) {
        self.direction = direction
        self.allowedReservedBits = allowedReservedBits & 0x70
        self.maxFrameSize = maxFrameSize
        self.maxBufferedFrameSize = max(125, maxBufferedFrameSize)
        self.retainedCarryCapacity = retainedCarryCapacity
    }
}

/// A frame, or one piece of a large frame, as the parser hands it out.
///
/// `payload` is already unmasked and points into the parser's input (or its carry buffer): it is
/// valid only inside the callback that received it.
public struct WebSocketFramePiece {
    public var header: WebSocketFrameHeader
    /// Stream offset of the frame's first header byte.
    public var frameOffset: Int
    /// Offset of this piece within the frame's payload (0 for the first piece).
    public var payloadOffset: UInt64
    /// Unmasked payload bytes of this piece.
    public var payload: UnsafeRawBufferPointer
    public var isFirst: Bool
    public var isLast: Bool
    /// Frame-level rule violations, reported on the first piece.
    public var violations: [WebSocketViolation]

    @inlinable
    public init(
        header: WebSocketFrameHeader, frameOffset: Int, payloadOffset: UInt64, payload: UnsafeRawBufferPointer,
        isFirst: Bool, isLast: Bool, violations: [WebSocketViolation]
    ) {
        self.header = header
        self.frameOffset = frameOffset
        self.payloadOffset = payloadOffset
        self.payload = payload
        self.isFirst = isFirst
        self.isLast = isLast
        self.violations = violations
    }

    /// Stream offset of the first payload byte of this piece.
    public var streamOffset: Int { frameOffset + header.headerLength + Int(truncatingIfNeeded: payloadOffset) }
    /// The whole frame in one piece (the usual case).
    public var isWholeFrame: Bool { isFirst && isLast }
}

/// The incremental frame parser (RFC 6455 §5.2).
///
/// Feed it bytes in any chunking, down to one byte at a time; it calls back with each frame (or
/// each piece of a frame larger than `maxBufferedFrameSize`), its byte offset, header length and
/// unmasked payload. Running out of bytes is not an error: the parser keeps what it has and waits.
/// Frame-level rule violations travel with the frame rather than stopping the parser, so a decoder
/// can show everything that is wrong; a server stops at the first one. Only a length with its top
/// bit set (which cannot be skipped) stops the parser for good (`failure`).
///
/// Payloads are unmasked in place in the buffer passed to `parse`: pass a copy when the original
/// bytes must stay as they were.
public struct WebSocketFrameParser: Sendable {
    public var configuration: WebSocketFrameParserConfiguration
    /// Bytes fed so far: the stream offset just past the input.
    @usableFromInline var _bytesFed: Int = 0
    @inlinable public var bytesFed: Int { _bytesFed }
    /// Set when the parser met a length it cannot skip; it then ignores further input.
    public internal(set) var failure: WebSocketViolation?

    /// Bytes of a frame that did not all arrive yet (header, or header plus buffered payload).
    @usableFromInline var carry: [UInt8] = []
    /// Memory the buffer for a frame spanning reads takes now.
    @inlinable public var carryCapacity: Int { carry.capacity }
    /// The room the buffer for a frame spanning reads was given for the frame it holds (the whole
    /// frame, up to `maxBufferedFrameSize`), or what it holds if more; 0 when it holds nothing.
    /// Unlike `carryCapacity`, which the allocator rounds up as its state allows, the same on
    /// every run: what a memory budget charges (`wsctl sniff`).
    @inlinable public var carryRoom: Int { carry.isEmpty ? 0 : max(carryReserved, carry.count) }
    /// The size of the frame being collected in `carry`, when it is known.
    @usableFromInline var carryReserved = 0
    @usableFromInline var carryOffset: Int = 0
    @usableFromInline var streaming: Streaming?

    @usableFromInline
    struct Streaming: Sendable {
        @usableFromInline var header: WebSocketFrameHeader
        @usableFromInline var frameOffset: Int
        @usableFromInline var delivered: UInt64
        @usableFromInline var phase: Int

        @usableFromInline
        init(header: WebSocketFrameHeader, frameOffset: Int, delivered: UInt64, phase: Int) {
            self.header = header
            self.frameOffset = frameOffset
            self.delivered = delivered
            self.phase = phase
        }
    }

    public init(configuration: WebSocketFrameParserConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Where an unfinished frame stands: its offset, how many of its bytes have arrived and how
    /// many are still missing: the whole frame's remainder once the length field is readable,
    /// else the header bytes still needed. nil when the input ended on a frame boundary.
    public var pendingFrame: (offset: Int, received: UInt64, missing: UInt64)? {
        if let s = streaming {
            let received = UInt64(s.header.headerLength) + s.delivered
            return (s.frameOffset, received, s.header.payloadLength - s.delivered)
        }
        guard !carry.isEmpty else { return nil }
        switch carry.withUnsafeBytes({ WebSocketFrameHeader.parse($0) }) {
        case .needMore(let k):
            // The length may already be readable even though the mask key is not all here.
            if let total = Self.announcedFrameLength(carry) {
                return (carryOffset, UInt64(carry.count), total - UInt64(carry.count))
            }
            return (carryOffset, UInt64(carry.count), UInt64(k - carry.count))
        case .header(let h):
            let total = UInt64(h.headerLength) + h.payloadLength
            return (carryOffset, UInt64(carry.count), total - UInt64(carry.count))
        }
    }

    /// True when the input ended inside a frame whose header has been read completely: the frame's
    /// boundary is known, so lost bytes inside its payload can be stepped over (a capture gap).
    public var isInsideFramePayload: Bool {
        if streaming != nil { return true }
        guard !carry.isEmpty else { return false }
        if case .header = carry.withUnsafeBytes({ WebSocketFrameHeader.parse($0) }) { return true }
        return false
    }

    /// Payload bytes still to come of a frame handed out in pieces (one over
    /// `maxBufferedFrameSize`), or nil when no such frame is in progress.
    public var streamedPayloadRemaining: UInt64? {
        streaming.map { $0.header.payloadLength - $0.delivered }
    }

    /// Steps over `count` bytes of the payload of the frame being handed out in pieces, bytes that
    /// were lost (a capture gap): the frame's end and the mask phase of what follows stay exact,
    /// and nothing is allocated however large the frame says it is. Returns the piece that stands
    /// for them, with an empty payload at their place (last if they end the frame), or nil (and
    /// does nothing) when no frame is streamed or `count` is not in 1...`streamedPayloadRemaining`.
    public mutating func skipStreamedPayload(_ count: Int) -> WebSocketFramePiece? {
        guard var s = streaming, count > 0, UInt64(count) <= s.header.payloadLength - s.delivered else { return nil }
        let piece = WebSocketFramePiece(
            header: s.header, frameOffset: s.frameOffset, payloadOffset: s.delivered + UInt64(count),
            payload: UnsafeRawBufferPointer(start: nil, count: 0), isFirst: false,
            isLast: UInt64(count) == s.header.payloadLength - s.delivered, violations: [])
        s.delivered += UInt64(count)
        s.phase = (s.phase + (count & 3)) & 3
        streaming = piece.isLast ? nil : s
        _bytesFed += count
        return piece
    }

    /// The end of the stream inside a frame (a capture that stopped, a connection cut off): hands a
    /// frame carried whole so far (header complete, payload not) to `body` as a first piece that is
    /// not last, unmasked, and forgets it. A frame handed out in pieces was given as it came and is
    /// only forgotten. Returns whether the stream ended inside a frame whose header was read; the
    /// bytes of an unfinished header are dropped. The parser is then on a frame boundary.
    @discardableResult
    public mutating func finishUnfinishedFrame(_ body: (WebSocketFramePiece) throws -> Void) rethrows -> Bool {
        if streaming == nil {
            guard try streamCarriedFrame(body) else {
                carry = []
                carryReserved = 0
                return false
            }
        }
        streaming = nil
        return true
    }

    /// Turns a frame carried whole so far (header complete, payload not) into one handed out in
    /// pieces: what arrived of its payload goes to `body` as a first piece that is not last,
    /// unmasked, and the rest will come as pieces (or be stepped over: `skipStreamedPayload`).
    /// Returns false, doing nothing, when no such frame is carried.
    @discardableResult
    public mutating func streamCarriedFrame(_ body: (WebSocketFramePiece) throws -> Void) rethrows -> Bool {
        guard streaming == nil, failure == nil, !carry.isEmpty,
              case .header(let h) = carry.withUnsafeBytes({ WebSocketFrameHeader.parse($0) }) else { return false }
        var local = carry
        carry = []
        carryReserved = 0
        let frameOffset = carryOffset
        let carried = local.count - h.headerLength
        streaming = Streaming(header: h, frameOffset: frameOffset, delivered: UInt64(carried), phase: carried & 3)
        let violations = Self.violations(of: h, at: frameOffset, configuration: configuration)
        try local.withUnsafeMutableBytes { raw in
            let payload = UnsafeMutableRawBufferPointer(rebasing: raw[h.headerLength...])
            if let key = h.maskingKey { WebSocketMasking.apply(key, to: payload) }
            try body(WebSocketFramePiece(header: h, frameOffset: frameOffset, payloadOffset: 0, payload: UnsafeRawBufferPointer(payload),
                                         isFirst: true, isLast: false, violations: violations))
        }
        return true
    }

    /// Forgets any partial frame and continues as if the stream started at `offset` (after bytes
    /// were lost and the frame boundary is unknown).
    public mutating func reset(at offset: Int) {
        carry = []
        carryReserved = 0
        streaming = nil
        failure = nil
        _bytesFed = offset
    }

    /// Header plus payload length, when the bytes present are enough to read the length field.
    static func announcedFrameLength(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count >= 2 else { return nil }
        let headerLength = UInt64(WebSocketFrameHeader.headerLength(secondByte: bytes[1]))
        let field = bytes[1] & 0x7F
        if field < 126 { return headerLength + UInt64(field) }
        let width = field == 126 ? 2 : 8
        guard bytes.count >= 2 + width else { return nil }
        var length: UInt64 = 0
        for i in 2..<(2 + width) { length = length << 8 | UInt64(bytes[i]) }
        guard length <= UInt64.max - headerLength else { return nil }
        return headerLength + length
    }

    /// Checks the frame-level rules of §5.2, §5.5 and §10.4 for a header at `offset`.
    @inlinable
    public static func violations(
        of h: WebSocketFrameHeader, at offset: Int, configuration c: WebSocketFrameParserConfiguration
    ) -> [WebSocketViolation] {
        // The common case costs one branch.
        if breaksNoRule(h, configuration: c) { return [] }
        return slowViolations(of: h, at: offset, configuration: c)
    }

    /// Whether `violations(of:at:configuration:)` is empty, without building it: for callers
    /// that only need the answer, many times over (looking for a frame start after lost bytes).
    @inlinable
    public static func breaksNoRule(_ h: WebSocketFrameHeader, configuration c: WebSocketFrameParserConfiguration) -> Bool {
        let op = h.opcode
        let field = h.lengthField
        let maskOK: Bool
        switch c.direction {
        case .none: maskOK = true
        case .clientToServer?: maskOK = h.masked
        case .serverToClient?: maskOK = !h.masked
        }
        return h.reservedBits & ~c.allowedReservedBits == 0 && !op.isReserved && maskOK && h.payloadLength <= c.maxFrameSize
            && (field < 126 || (field == 126 && h.payloadLength >= 126) || (field == 127 && h.payloadLength >= 65536 && h.payloadLength >> 63 == 0))
            && (!op.isControl || (h.fin && h.payloadLength <= 125))
    }

    @usableFromInline
    static func slowViolations(
        of h: WebSocketFrameHeader, at offset: Int, configuration c: WebSocketFrameParserConfiguration
    ) -> [WebSocketViolation] {
        var v: [WebSocketViolation] = []
        let extra = h.reservedBits & ~c.allowedReservedBits
        if extra != 0 {
            let names = [(0x40, "RSV1"), (0x20, "RSV2"), (0x10, "RSV3")].filter { extra & UInt8($0.0) != 0 }.map(\.1)
            v.append(.init(.reservedBits, offset: offset,
                           "\(names.joined(separator: ", ")) set but no negotiated extension defines \(names.count == 1 ? "it" : "them")"))
        }
        if h.opcode.isReserved {
            v.append(.init(.reservedOpcode, offset: offset, "opcode 0x\(String(h.opcode.rawValue, radix: 16)) is reserved"))
        }
        if h.opcode.isControl && !h.fin {
            v.append(.init(.fragmentedControlFrame, offset: offset, "\(h.opcode.name) frame without FIN: control frames must not be fragmented"))
        }
        if h.opcode.isControl && h.payloadLength > 125 {
            v.append(.init(.controlFrameTooLong, offset: offset + 1, "\(h.opcode.name) frame payload is \(h.payloadLength) bytes, the limit is 125"))
        }
        let field = h.lengthField
        if field == 126 && h.payloadLength < 126 {
            v.append(.init(.nonMinimalLength, offset: offset + 2, "16-bit length \(h.payloadLength) should have used the 7-bit form"))
        } else if field == 127 && h.payloadLength >> 63 != 0 {
            v.append(.init(.lengthTopBitSet, offset: offset + 2, "64-bit length has its most significant bit set (0x\(String(h.payloadLength, radix: 16)))"))
        } else if field == 127 && h.payloadLength < 65536 {
            v.append(.init(.nonMinimalLength, offset: offset + 2, "64-bit length \(h.payloadLength) should have used the \(h.payloadLength < 126 ? "7" : "16")-bit form"))
        }
        switch c.direction {
        case .clientToServer? where !h.masked:
            v.append(.init(.unmaskedClientFrame, offset: offset + 1, "client frame is not masked"))
        case .serverToClient? where h.masked:
            v.append(.init(.maskedServerFrame, offset: offset + 1, "server frame is masked"))
        default: break
        }
        if h.payloadLength > c.maxFrameSize && h.payloadLength >> 63 == 0 {
            v.append(.init(.frameTooLarge, offset: offset + 1, "frame payload of \(h.payloadLength) bytes exceeds the limit of \(c.maxFrameSize)"))
        }
        return v
    }

    /// Parses as many frames as `input` completes, calling `body` with each frame or piece.
    /// Payloads are unmasked in place in `input`.
    @inlinable
    public mutating func parse(
        _ input: UnsafeMutableRawBufferPointer, _ body: (WebSocketFramePiece) throws -> Void
    ) rethrows {
        let start = _bytesFed
        _bytesFed += input.count
        guard failure == nil, input.count > 0, let base = input.baseAddress else { return }
        let n = input.count
        var i = 0
        if streaming != nil || !carry.isEmpty {
            i = try resume(input, start: start, body)
            if i < 0 { return }
        }
        while i < n {
            let avail = n &- i
            if avail < 2 || avail < WebSocketFrameHeader.headerLength(secondByte: base.load(fromByteOffset: i &+ 1, as: UInt8.self)) {
                carryOffset = start &+ i
                carryReserved = 0  // a header not all here yet
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<n]))
                return
            }
            guard case .header(let h) = WebSocketFrameHeader.parse(UnsafeRawBufferPointer(rebasing: input[i..<n])) else {
                preconditionFailure("header length was checked")
            }
            let frameOffset = start &+ i
            let violations = Self.violations(of: h, at: frameOffset, configuration: configuration)
            if h.payloadLength >> 63 != 0 {
                fail(violations.first { $0.rule == .lengthTopBitSet }!)
                try body(WebSocketFramePiece(header: h, frameOffset: frameOffset, payloadOffset: 0,
                                             payload: UnsafeRawBufferPointer(start: nil, count: 0), isFirst: true, isLast: false, violations: violations))
                return
            }
            let payloadStart = i &+ h.headerLength
            let availPayload = n &- payloadStart
            if h.payloadLength <= UInt64(availPayload) {
                let len = Int(h.payloadLength)
                let payload = UnsafeMutableRawBufferPointer(start: base + payloadStart, count: len)
                if let key = h.maskingKey { WebSocketMasking.apply(key, to: payload) }
                try body(WebSocketFramePiece(header: h, frameOffset: frameOffset, payloadOffset: 0, payload: UnsafeRawBufferPointer(payload),
                                             isFirst: true, isLast: true, violations: violations))
                i = payloadStart &+ len
            } else if h.payloadLength <= UInt64(configuration.maxBufferedFrameSize) {
                carryOffset = frameOffset
                // Room for the whole frame at once (at most the buffered-frame limit), not grown step by step.
                carryReserved = h.headerLength + Int(h.payloadLength)
                carry.reserveCapacity(carryReserved)
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<n]))
                return
            } else {
                // Stream it: hand out what is here now, keep the mask phase for the rest.
                let payload = UnsafeMutableRawBufferPointer(start: base + payloadStart, count: availPayload)
                var phase = 0
                if let key = h.maskingKey { phase = WebSocketMasking.apply(key, to: payload) }
                streaming = Streaming(header: h, frameOffset: frameOffset, delivered: UInt64(availPayload), phase: phase)
                try body(WebSocketFramePiece(header: h, frameOffset: frameOffset, payloadOffset: 0, payload: UnsafeRawBufferPointer(payload),
                                             isFirst: true, isLast: false, violations: violations))
                return
            }
        }
    }

    /// Convenience for arrays; the array's payload bytes are unmasked in place.
    @inlinable
    public mutating func parse(_ bytes: inout [UInt8], _ body: (WebSocketFramePiece) throws -> Void) rethrows {
        try bytes.withUnsafeMutableBytes { try parse($0, body) }
    }

    @usableFromInline
    mutating func fail(_ violation: WebSocketViolation) {
        failure = violation
        carry = []
        carryReserved = 0
        streaming = nil
    }

    /// Continues a frame begun in an earlier input: a streamed payload or a carried partial frame.
    /// Returns how many bytes of `input` it used, or -1 when it used them all (or the parser failed).
    @usableFromInline
    mutating func resume(
        _ input: UnsafeMutableRawBufferPointer, start: Int, _ body: (WebSocketFramePiece) throws -> Void
    ) rethrows -> Int {
        let n = input.count
        var i = 0
        while true {
            if var s = streaming {
                let remaining = s.header.payloadLength - s.delivered
                let take = Int(min(remaining, UInt64(n - i)))
                let payload = UnsafeMutableRawBufferPointer(rebasing: input[i..<(i + take)])
                if let key = s.header.maskingKey { s.phase = WebSocketMasking.apply(key, to: payload, phase: s.phase) }
                let piece = WebSocketFramePiece(header: s.header, frameOffset: s.frameOffset, payloadOffset: s.delivered,
                                                payload: UnsafeRawBufferPointer(payload), isFirst: false, isLast: take == remaining, violations: [])
                s.delivered += UInt64(take)
                streaming = take == remaining ? nil : s
                i += take
                try body(piece)
                return streaming == nil && i < n ? i : -1
            }
            guard !carry.isEmpty else { return i }
            switch carry.withUnsafeBytes({ WebSocketFrameHeader.parse($0) }) {
            case .needMore(let k):
                let add = min(k - carry.count, n - i)
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<(i + add)]))
                i += add
                if carry.count < k { return -1 }
            case .header(let h):
                let violations = Self.violations(of: h, at: carryOffset, configuration: configuration)
                if h.payloadLength >> 63 != 0 {
                    let offset = carryOffset
                    fail(violations.first { $0.rule == .lengthTopBitSet }!)
                    try body(WebSocketFramePiece(header: h, frameOffset: offset, payloadOffset: 0,
                                                 payload: UnsafeRawBufferPointer(start: nil, count: 0), isFirst: true, isLast: false, violations: violations))
                    return -1
                }
                if h.payloadLength > UInt64(configuration.maxBufferedFrameSize) {
                    // Too large to buffer: hand out the payload bytes carried so far and stream the rest.
                    let carried = carry.count - h.headerLength
                    var phase = 0
                    let frameOffset = carryOffset
                    var local = carry
                    carry = []
                    carryReserved = 0
                    try local.withUnsafeMutableBytes { raw in
                        let payload = UnsafeMutableRawBufferPointer(rebasing: raw[h.headerLength...])
                        if let key = h.maskingKey { phase = WebSocketMasking.apply(key, to: payload) }
                        streaming = Streaming(header: h, frameOffset: frameOffset, delivered: UInt64(carried), phase: phase)
                        try body(WebSocketFramePiece(header: h, frameOffset: frameOffset, payloadOffset: 0, payload: UnsafeRawBufferPointer(payload),
                                                     isFirst: true, isLast: false, violations: violations))
                    }
                    if i == n { return -1 }
                    continue
                }
                let total = h.headerLength + Int(h.payloadLength)
                carryReserved = total
                if carry.capacity < total { carry.reserveCapacity(total) }
                let add = min(total - carry.count, n - i)
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<(i + add)]))
                i += add
                if carry.count < total { return -1 }
                let frameOffset = carryOffset
                try carry.withUnsafeMutableBytes { raw in
                    let payload = UnsafeMutableRawBufferPointer(rebasing: raw[h.headerLength...])
                    if let key = h.maskingKey { WebSocketMasking.apply(key, to: payload) }
                    try body(WebSocketFramePiece(header: h, frameOffset: frameOffset, payloadOffset: 0, payload: UnsafeRawBufferPointer(payload),
                                                 isFirst: true, isLast: true, violations: violations))
                }
                carry.removeAll(keepingCapacity: carry.capacity <= configuration.retainedCarryCapacity)
                carryReserved = 0
                return i < n ? i : -1
            }
        }
    }
}
