import WebSocketCodec
import WebSocketCompression

/// Dissects one direction of a WebSocket byte stream into frame and message records, with the
/// codec's parser and assembler (the same ones the server uses), permessage-deflate inflated with
/// one context per direction, and envelopes recognised. Shared by `wsctl decode` and `wsctl sniff`.
///
/// Input bytes are copied before parsing, so what was captured is never modified; only
/// `feedViews(inPlace:)`, for callers that own a copy already, parses and unmasks where the bytes lie.
public struct WebSocketStreamDissector {
    public let configuration: WebSocketDissectorConfiguration
    /// `configuration.messageMemory`, `maxPayloadShown ?? Int.max`, and what is kept of a message
    /// or frame that does not fit in the budget (`shownWithoutRoom`), kept apart: read from
    /// `configuration` in a mutating method, each was read by copying all of it (137 bytes)
    /// first, for every segment and frame.
    private let budget: DissectionMemoryBudget?
    private let shownLimit: Int
    private let shownWithoutRoom: Int
    public let direction: WebSocketDirection?
    private var machinery: Machinery
    private var inflater: PerMessageDeflateDecompressor?
    private var inflatedPieces: InflatedPieces?
    private var scratch: [UInt8] = []
    private var frameCount = 0
    private var messageCount = 0
    /// The frame being collected (large frames arrive in pieces).
    private var current: FrameInProgress?
    /// `current != nil`, kept apart: that test, made for every whole frame, copied the optional
    /// and destroyed the copy through its type's metadata (as Swift does for an optional of a
    /// struct this size), a twentieth of `handle`'s time together with `message`'s.
    private var collecting = false
    /// The shown payload of a frame that arrived in pieces (a whole frame is shown where it lies).
    private var framePayload: [UInt8] = []
    /// The shown data of a message that is not the frame's own payload (fragmented or inflated).
    private var messageData: [UInt8] = []
    /// Opcode and compression of the message in progress, to show continuation frames properly.
    private var messageOpcode: WebSocketOpcode?
    private var messageCompressed = false
    public private(set) var violationCount = 0
    /// Bytes of the message in progress held against `budget`.
    private var charged = 0
    /// The room the assembler's buffer is charged for (`modelKept`).
    private var modelledKept = 0
    /// Bytes the parser's buffer for a frame spanning segments takes, held against the same.
    private var carryCharged = 0
    /// Bytes held after a gap while the next frame start is looked for, held against the same.
    private var huntCharged = 0
    /// The inflater's window and state, held against the same.
    private var inflaterCharged = 0
    /// The room `framePayload` takes once it holds more than `shownWithoutRoom` (`--full`), held
    /// against the same.
    private var frameCharged = 0
    /// The frame arriving in pieces did not fit: its payload is shown cut at `shownWithoutRoom`.
    private var frameCut = false
    /// The message in progress did not fit in `budget`: only its first bytes
    /// are kept (`streamed` follows it when it is compressed).
    private var notHeldWhole = false
    /// A compressed message that is not held whole, inflated piece by piece as it comes; its shown
    /// part is collected in `messageData`.
    private var streamed: StreamedInflate?

    fileprivate struct StreamedInflate {
        /// Bytes inflated so far.
        var length = 0
        var utf8 = WebSocketUTF8Validator()
        /// Message byte at which the inflated text stopped being UTF-8.
        var invalidAt: Int?
        var failure: WebSocketViolation?
        /// There was no room for an inflater: the message is not inflated.
        var noInflater = false
        /// The first compressed bytes, shown instead when the message does not inflate (as for a
        /// message held whole).
        var compressedShown: [UInt8] = []
    }

    /// What is known of the frame being read, apart from its payload.
    private struct FrameInProgress {
        var index: Int
        var header: WebSocketFrameHeader
        var offset: Int
        var payloadTruncated = false
        // (Its close payload and violations are the dissector's `frameClose` and `frameViolations`.)
    }

    /// The close payload and violations of the frame being read, from its first piece until it is
    /// shown: here and not in `FrameInProgress`, for the reason `madeViolations` gives.
    private var frameClose: WebSocketClosePayload? = nil
    private var frameViolations: [WebSocketViolation] = []

    /// Forgets `frameClose` and `frameViolations` (touching them only if there is something).
    private mutating func forgetFrameExtras() {
        if frameClose != nil { frameClose = nil }
        if !frameViolations.isEmpty { frameViolations = [] }
    }

    /// What is known of the message a frame completed, apart from its data.
    private struct MessageInProgress {
        var index: Int
        var opcode: WebSocketOpcode
        var offset: Int
        var endOffset: Int
        var length: Int
        var fragmentCount: Int
        var compressed: Bool
        var dataLength: Int
        var dataTruncated: Bool
        /// The data is the completing piece's own payload (not copied to `messageData`).
        var dataIsPiecePayload: Bool
        var isText: Bool
        /// Bytes of the shown data that make up whole characters.
        var textLength: Int
        // (Its envelope and violations are the dissector's `madeEnvelope` and `madeViolations`.)
        /// A text message not held whole (`messageMemory`): no envelope was looked for in it.
        var envelopeUnchecked = false

        /// Stands for no message where an optional would cost (see `collecting`).
        static var none: MessageInProgress {
            MessageInProgress(index: 0, opcode: .continuation, offset: 0, endOffset: 0, length: 0, fragmentCount: 0,
                              compressed: false, dataLength: 0, dataTruncated: false, dataIsPiecePayload: false,
                              isText: false, textLength: 0)
        }
    }

    /// The violations and envelope of the message `makeMessage` made last, until it is shown (and
    /// then forgotten): here and not in `MessageInProgress`, which is then plain data. Nearly every
    /// message has neither, yet holding them there made copying, assigning and destroying one a
    /// call through its type's value witnesses, with a release for each, for every message.
    private var madeViolations: [WebSocketViolation] = []
    private var madeEnvelope: EnvelopeBox? = nil

    /// Drops from `madeViolations` the rules that lost bytes make meaningless (`contentRules`).
    private mutating func dropMadeContentViolations() {
        if !madeViolations.isEmpty { madeViolations = madeViolations.filter { !Self.contentRules.contains($0.rule) } }
    }

    /// Forgets `madeViolations` and `madeEnvelope` (touching them only if there is something).
    private mutating func forgetMade() {
        if !madeViolations.isEmpty { madeViolations = [] }
        if madeEnvelope != nil { madeEnvelope = nil }
    }

    public init(configuration: WebSocketDissectorConfiguration = .init(), direction: WebSocketDirection? = nil) {
        self.configuration = configuration
        budget = configuration.messageMemory
        shownLimit = configuration.maxPayloadShown ?? Int.max
        shownWithoutRoom = min(configuration.maxPayloadShownWithoutRoom ?? Int.max, shownLimit)
        self.direction = direction
        var pc = configuration.parser
        pc.direction = direction ?? pc.direction
        if configuration.deflate != .off { pc.allowedReservedBits |= 0x40 }
        var ac = configuration.assembler
        ac.compressionNegotiated = configuration.deflate != .off
        machinery = Machinery(parser: WebSocketFrameParser(configuration: pc), assembler: WebSocketMessageAssembler(configuration: ac))
    }

    /// Stream offset just past the bytes fed so far.
    public var bytesFed: Int {
        if let hunt { return hunt.offset + hunt.bytes.count }
        return machinery.parser.bytesFed
    }

    /// The unfinished frame at the end of the input, if any: where it starts and how many bytes are missing.
    public var pendingFrame: (offset: Int, received: UInt64, missing: UInt64)? { machinery.parser.pendingFrame }

    /// Set when the parser met a length it cannot skip and stopped.
    public var failure: WebSocketViolation? { machinery.parser.failure }

    /// Feeds bytes; each frame and message is handed to `emit` borrowed, valid only during the call.
    /// This is the dissector's one code path: the owned-record `feed` copies from it.
    public mutating func feedViews(_ bytes: UnsafeRawBufferPointer, _ emit: (DissectionEventView) -> Void) {
        if startsInside && !bytes.isEmpty { startHuntAtFirstBytes() }
        if isHunting {
            huntFeed(bytes, emit)
            if budget != nil { holdCarry(emit); holdHunt() }
            return
        }
        // Room for a usual segment is kept; a dissector is one of thousands in `sniff`.
        Self.empty(&scratch)
        scratch.append(contentsOf: bytes)
        var local = scratch
        scratch = []
        let box = uniqueMachineryUnretained()
        local.withUnsafeMutableBytes { raw in
            box._withUnsafeGuaranteedRef { $0.parser.parse(raw) { piece in handle(piece, emit) } }
        }
        scratch = local
        if budget != nil { holdCarry(emit); holdHunt() }
    }

    /// `feedViews` without the copy: `bytes` are parsed where they are, and masked payloads are
    /// unmasked in place, so the caller's bytes change. For callers that own a copy already (the
    /// stream bytes `sniff -r` collects on its reading thread).
    public mutating func feedViews(inPlace bytes: UnsafeMutableRawBufferPointer, _ emit: (DissectionEventView) -> Void) {
        if startsInside && !bytes.isEmpty { startHuntAtFirstBytes() }
        if isHunting {
            huntFeed(UnsafeRawBufferPointer(bytes), emit)
            if budget != nil { holdCarry(emit); holdHunt() }
            return
        }
        let box = uniqueMachineryUnretained()
        box._withUnsafeGuaranteedRef { $0.parser.parse(bytes) { piece in handle(piece, emit) } }
        if budget != nil { holdCarry(emit); holdHunt() }
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (DissectionEvent) -> Void) {
        feedViews(bytes, { Self.own($0, emit) })
    }

    public mutating func feed(_ bytes: [UInt8], _ emit: (DissectionEvent) -> Void) {
        bytes.withUnsafeBytes { feed($0, emit) }
    }

    private static func own(_ view: DissectionEventView, _ emit: (DissectionEvent) -> Void) {
        switch view {
        case .frame(let f): emit(.frame(FrameRecord(f.pointee)))
        case .message(let m): emit(.message(MessageRecord(m.pointee)))
        case .resync(let r): emit(.resync(r))
        }
    }

    /// Bytes of the stream were lost (a capture gap). When they fall inside the payload of the
    /// frame being read, the frame boundary is still known: the gap is filled with zeros so that
    /// framing and offsets stay exact, and that frame's content (and its message's: text, UTF-8
    /// and inflate checks) is not reported. Otherwise parsing starts again after the gap with
    /// offsets and counters kept; it finds the next frame when the gap ended on a frame boundary.
    /// Then a message in progress is incomplete (its next fragments still belong to it), a
    /// message that starts after the gap is whole, and continuation frames whose start was lost
    /// are the capture's loss, not a protocol violation. With permessage-deflate and context
    /// takeover, later compressed messages of the direction may refer to history that was lost:
    /// they are inflated with an empty window from the next one on, and one that does not inflate
    /// is reported incomplete; one that does is exactly what was sent.
    /// Returns whether the frame boundary was kept.
    @discardableResult
    public mutating func skipViews(_ count: Int, _ emit: (DissectionEventView) -> Void) -> Bool {
        guard count > 0 else { return true }
        startsInside = false  // the gap's hunt below covers it
        // The parser's frame buffer is given up or handed on in pieces: its room goes back.
        defer { if budget != nil { holdCarry(emit); holdHunt() } }
        if let pending = machinery.parser.pendingFrame, machinery.parser.isInsideFramePayload, UInt64(count) <= pending.missing {
            frameDamaged = true
            let box = uniqueMachinery()
            // A frame being buffered whole goes on in pieces; the lost bytes are stepped over, not
            // filled in, however long the frame says it is (zeros stand for them only in what is
            // shown).
            box.parser.streamCarriedFrame { piece in handle(piece, emit) }
            if let piece = box.parser.skipStreamedPayload(count) { handle(piece, lost: count, emit) }
            return true
        }
        // The gap took the end of the frame in progress (and what followed): show what came of it.
        finishUnfinishedFrame(emit)
        if let h = hunt, h.offset + h.bytes.count > h.gapEnd {
            // Another gap before frames were found again: what was held is lost with it.
            emit(.resync(DissectionResync(gapEnd: h.gapEnd, offset: nil, skipped: h.offset + h.bytes.count - h.gapEnd)))
        }
        let box = uniqueMachinery()
        let resumeAt = bytesFed + count
        box.parser.reset(at: resumeAt)
        hunt = Hunt(offset: resumeAt, configuration: box.parser.configuration)  // bytes held for a hunt before this gap are lost with it
        current = nil
        collecting = false
        frameDamaged = false
        framesLost = true
        endLostOnly = box.assembler.isInsideMessage && !damaged
        damaged = box.assembler.isInsideMessage
        if configuration.deflate != .off && contextTakeover {
            inflateHistoryLost = true
            freshInflaterNeeded = true
        }
        return false
    }

    /// The stream is picked up in its middle (a connection already open when the capture began):
    /// its first byte need not start a frame. Frames are looked for as after a gap (see
    /// `skipViews`: taken at once where plausible frames from the first byte run to the end of
    /// the bytes at hand, else where `huntChain` plausible headers follow one another), the
    /// fragments of a message that began before the capture are not violations, and a compressed
    /// message that refers back to unseen ones is not judged. Call it before any bytes are fed.
    public mutating func beginsInsideStream() {
        guard bytesFed == 0, hunt == nil else { return }
        // The hunt starts with the first bytes: a direction that sends nothing is not hunting.
        startsInside = true
        framesLost = true
        if configuration.deflate != .off && contextTakeover {
            inflateHistoryLost = true
            freshInflaterNeeded = true
        }
    }

    // MARK: Finding the next frame after a gap

    /// Bytes after a gap whose end is not known to be a frame boundary, held until a frame start
    /// is found in them.
    private struct Hunt {
        /// Stream offset of `bytes[0]`.
        var offset: Int
        /// Stream offset where the gap ended (`offset` moves on as bytes are given up).
        let gapEnd: Int
        var bytes: [UInt8] = []
        /// The room `bytes` is charged for against `messageMemory`: grown as an Array grows (to
        /// the count, or twice the room before), the count when the bytes move to a new buffer.
        /// Not its capacity, which the allocator rounds up as its state allows (see `modelKept`).
        var room = 0
        /// Offsets from here on have not been judged yet.
        var scan = 0
        /// Offsets whose chain runs past the bytes so far, with how many bytes judging them needs.
        var pending: [(at: Int, until: Int)] = []
        /// Where the gap ended (`bytes[0]`) has not been judged yet.
        var atGapEnd = true
        /// First header bytes that can start a header passing `plausible`, indexed by byte: most
        /// offsets are turned down on this alone.
        let firstByteOK: [Bool]
        /// The MASK bit the direction needs (0x80 from a client, 0 from a server), nil if unknown.
        let maskBit: UInt8?

        init(offset: Int, configuration c: WebSocketFrameParserConfiguration) {
            self.offset = offset
            gapEnd = offset
            // A one-byte frame with this first byte and the MASK bit the direction needs passes
            // exactly when the first byte can start a plausible header.
            let masked = c.direction == .clientToServer
            firstByteOK = (0..<256).map { value in
                WebSocketStreamDissector.plausible(
                    WebSocketFrameHeader(firstByte: UInt8(value), secondByte: (masked ? 0x80 : 0) | 1,
                                         maskingKey: masked ? WebSocketMaskingKey(0, 0, 0, 0) : nil, payloadLength: 1,
                                         headerLength: masked ? 6 : 2),
                    c)
            }
            switch c.direction {
            case .clientToServer?: maskBit = 0x80
            case .serverToClient?: maskBit = 0
            case nil: maskBit = nil
            }
        }
    }

    private var hunt: Hunt? { didSet { isHunting = hunt != nil } }
    /// Set by `beginsInsideStream` until the first bytes come: they start a hunt.
    private var startsInside = false

    private mutating func startHuntAtFirstBytes() {
        startsInside = false
        hunt = Hunt(offset: bytesFed, configuration: machinery.parser.configuration)
    }

    /// Bytes after a gap are being held while the next frame start is looked for: frames in
    /// them come out later, when a start is found (see `skipViews`).
    ///
    /// Stored, not computed: the sniffer asks for every delivery, and a computed property of a
    /// dissector kept in a class is read by copying the whole dissector first.
    public private(set) var isHunting = false

    /// The most bytes held while looking for a frame start; past it the earliest offsets still
    /// waiting are given up and their bytes dropped.
    static let huntLimit = 1 << 20

    /// Plausible headers in a row that make a frame start, inside a gap's frame. About 2% of
    /// random (masked) bytes look like a plausible header, so five in a row, each where the one
    /// before ends, happen by chance about once in a billion offsets.
    static let huntChain = 5

    private enum HuntVerdict: Equatable {
        case start, notAStart
        /// The chain goes on past the bytes so far; judging it needs this many.
        case needMore(Int)
    }

    /// Finds where frames start again in the bytes after a gap and dissects from there.
    ///
    /// Where the gap ended is taken at once if plausible frames from there end exactly where the
    /// bytes at hand end (a loss of whole segments, the usual case: nothing is delayed), or once
    /// `huntChain` plausible headers follow one another from it. Otherwise the gap ended inside a
    /// frame, whose payload must not be read as frames: each later offset is tried until
    /// `huntChain` plausible headers follow one another from it. An offset whose chain runs
    /// past the bytes so far waits without holding up later ones: a later chain complete within
    /// the bytes lies inside the frame the waiting one announces, so one of the two is chance,
    /// and a whole chain is the likelier. Bytes before the start found are skipped; the frames'
    /// offsets after it show how many.
    private mutating func huntFeed(_ bytes: UnsafeRawBufferPointer, _ emit: (DissectionEventView) -> Void) {
        guard var h = hunt else { return }
        hunt = nil  // put back below unless a start is found
        h.bytes.append(contentsOf: bytes)
        if h.bytes.count > h.room { h.room = max(h.bytes.count, 2 * h.room) }
        var found: Int? = nil
        h.bytes.withUnsafeBytes { raw in
            if h.atGapEnd {
                switch judge(raw, at: 0, chain: Self.huntChain, exactEnd: true) {
                case .start:
                    found = 0
                    return
                case .needMore:
                    return
                case .notAStart:
                    h.atGapEnd = false
                    h.scan = 1
                }
            }
            var stillPending: [(at: Int, until: Int)] = []
            for p in h.pending {
                guard p.until <= raw.count else {
                    stillPending.append(p)
                    continue
                }
                switch judge(raw, at: p.at, chain: Self.huntChain) {
                case .start:
                    found = p.at
                    return
                case .notAStart: break
                case .needMore(let until): stillPending.append((p.at, until))
                }
            }
            h.pending = stillPending
            while h.scan < raw.count {
                let p = h.scan
                h.scan += 1
                guard h.firstByteOK[Int(raw[p])] else { continue }
                if let mask = h.maskBit, p + 1 < raw.count, raw[p + 1] & 0x80 != mask { continue }
                switch judge(raw, at: p, chain: Self.huntChain) {
                case .start:
                    found = p
                    return
                case .notAStart: break
                case .needMore(let until): h.pending.append((p, until))
                }
            }
        }
        if var start = found {
            // A frame that swallowed real ones: a chance header whose length ends on a later real
            // frame holds whole real frames in its payload, which a real frame's payload (random
            // as far as headers go) almost never does.
            h.bytes.withUnsafeBytes { raw in
                while case .header(let first) = WebSocketFrameHeader.parse(UnsafeRawBufferPointer(rebasing: raw[start...])),
                      let length = first.frameLength,
                      let inner = (start + 1..<min(start + length, raw.count)).first(where: {
                          judge(raw, at: $0, chain: Self.huntChain) == .start
                      })
                {
                    start = inner
                }
            }
            found = start
        }
        guard let start = found else {
            // Bytes before every offset still to be judged need no keeping; past the limit, the
            // earliest waiting offsets are given up.
            if !h.atGapEnd { Self.trim(&h, to: Self.huntLimit) }
            hunt = h
            return
        }
        resume(&h, at: start, emit)
    }

    /// Drops the bytes before every offset still to be judged, and past `limit` held bytes gives up
    /// the earliest waiting offsets.
    private static func trim(_ h: inout Hunt, to limit: Int, newBuffer: Bool = false) {
        if h.bytes.count > limit {
            let floor = h.bytes.count - limit
            h.pending.removeAll { $0.at < floor }
        }
        let keepFrom = min(h.pending.first?.at ?? h.scan, h.scan, h.bytes.count)
        if keepFrom >= keptCapacity || keepFrom == h.bytes.count || newBuffer {
            if newBuffer || (keepFrom == h.bytes.count && h.room > keptCapacity) {
                h.bytes = Array(h.bytes[keepFrom...])
                h.room = h.bytes.count
            } else {
                h.bytes.removeFirst(keepFrom)
            }
            h.offset += keepFrom
            h.scan -= keepFrom
            h.pending = h.pending.map { ($0.at - keepFrom, $0.until - keepFrom) }
        }
    }

    /// Takes room in the budget for the bytes held after a gap while the next frame start is
    /// looked for (up to `huntLimit`), or gives it back. Without room, only the last 64 KiB are
    /// held (offsets before them are given up, as past `huntLimit`).
    private mutating func holdHunt() {
        guard let budget, isHunting || huntCharged != 0 else { return }
        let small = Self.keptCapacity
        let room = hunt?.room ?? 0
        guard !budget.adjust(&huntCharged, to: room > small ? room : 0), var h = hunt else { return }
        hunt = nil
        // Offsets before the last 64 KiB are given up, judged or not (the gap's end too).
        if h.atGapEnd {
            h.atGapEnd = false
            h.scan = max(h.scan, 1)
        }
        h.scan = max(h.scan, h.bytes.count - small)
        Self.trim(&h, to: small, newBuffer: true)
        hunt = h
        budget.give(huntCharged)
        huntCharged = 0
    }

    /// The end of the stream while looking for a frame start after a gap: the earliest offset
    /// from which plausible headers lead exactly to the end of the bytes is taken (the last few
    /// frames of a connection cannot show a longer chain); with none, the bytes held are dropped.
    ///
    /// Then the frame and the data message the stream ended inside, if any, are shown as far as
    /// they arrived and marked incomplete.
    public mutating func finishViews(_ emit: (DissectionEventView) -> Void) {
        settleHunt(atEnd: true, emit)
        finishUnfinishedFrame(emit)
        emitUnfinishedMessage(emit)
        if budget != nil {
            holdCarry(emit)
            holdHunt()
            // The stream is over: its inflate window is no longer needed.
            dropInflater()
        }
    }

    /// The stream has gone quiet while bytes after a gap are held (a live capture waits for more
    /// chained headers that may not come soon): frames are let out as at the stream's end, from the
    /// earliest offset whose plausible headers lead exactly to the end of what is held; with none,
    /// the bytes stay held.
    public mutating func settleHuntWhileQuiet(_ emit: (DissectionEventView) -> Void) {
        settleHunt(atEnd: false, emit)
        if budget != nil { holdCarry(emit); holdHunt() }
    }

    private mutating func settleHunt(atEnd: Bool, _ emit: (DissectionEventView) -> Void) {
        guard var h = hunt else { return }
        var found: Int? = nil
        h.bytes.withUnsafeBytes { raw in
            let from = h.atGapEnd ? 0 : min(h.pending.first?.at ?? h.scan, h.scan)
            for p in from..<raw.count where judge(raw, at: p, chain: Int.max, exactEnd: true) == .start {
                found = p
                return
            }
        }
        if let found {
            hunt = nil
            resume(&h, at: found, emit)
        } else if atEnd {
            hunt = nil
            let end = h.offset + h.bytes.count
            if end > h.gapEnd { emit(.resync(DissectionResync(gapEnd: h.gapEnd, offset: nil, skipped: end - h.gapEnd))) }
        }
    }

    /// Shows the frame the stream stopped inside (at its end, or where a gap took the frame's end),
    /// as far as it arrived, marked incomplete; the parser is then on a frame boundary.
    private mutating func finishUnfinishedFrame(_ emit: (DissectionEventView) -> Void) {
        let box = uniqueMachinery()
        box.parser.finishUnfinishedFrame { piece in handle(piece, emit) }
        guard collecting, let r = current else { return }
        current = nil
        collecting = false
        let op = r.header.opcode
        violationCount += frameViolations.count
        framePayload.withUnsafeBytes { payload in
            emitFrame(r, payload, isText: op == .text || (op == .continuation && messageOpcode == .text), validText: nil,
                      incomplete: true, emit)
        }
        forgetFrameExtras()
        endFrameHold()
        frameDamaged = false
    }

    /// Shows the data message in progress, whose end will not come (the stream ended, or a gap
    /// took its end and another message began), as far as it arrived, marked incomplete.
    private mutating func emitUnfinishedMessage(_ emit: (DissectionEventView) -> Void) {
        let box = machinery
        var made: MessageInProgress? = nil
        box.assembler.finishUnfinishedMessage { view in
            made = makeMessage(view, piecePayload: UnsafeRawBufferPointer(start: nil, count: 0))
        }
        endHold()
        guard var m = made else { return }
        // Its end is missing: what needs all of it (UTF-8 to the last character, inflating to the
        // end, an envelope's JSON) cannot be judged.
        dropMadeContentViolations()
        madeEnvelope = nil
        m.envelopeUnchecked = false  // no unfinished message is looked at
        m.index = messageCount
        violationCount += madeViolations.count
        let data = m.dataIsPiecePayload ? [] : messageData
        let intact = !damaged || endLostOnly
        endLostOnly = false
        data.withUnsafeBytes { data in
            if m.isText {
                if !intact {
                    m.isText = false
                } else if let n = Self.validTextPrefix(data.leading(m.textLength)) {
                    m.textLength = n
                } else {
                    m.isText = false
                }
            }
            emitMessage(m, data, incomplete: true, emit)
        }
        forgetMade()
    }

    /// See `WebSocketUTF8Validator.validLengthBeforeCut`.
    static func validTextPrefix(_ bytes: UnsafeRawBufferPointer) -> Int? {
        WebSocketUTF8Validator.validLengthBeforeCut(bytes)
    }

    public mutating func finish(_ emit: (DissectionEvent) -> Void) {
        finishViews({ Self.own($0, emit) })
    }

    private mutating func resume(_ h: inout Hunt, at start: Int, _ emit: (DissectionEventView) -> Void) {
        let resumeAt = h.offset + start
        if resumeAt > h.gapEnd { emit(.resync(DissectionResync(gapEnd: h.gapEnd, offset: resumeAt, skipped: resumeAt - h.gapEnd))) }
        let box = uniqueMachinery()
        box.parser.reset(at: h.offset + start)
        h.bytes.withUnsafeMutableBytes { raw in
            feedViews(inPlace: UnsafeMutableRawBufferPointer(rebasing: raw[start...]), emit)
        }
    }

    /// Whether a frame starts at `p`: `chain` plausible headers one after another (the last one's
    /// payload need not have arrived), or, with `exactEnd`, fewer whose frames end exactly where
    /// the bytes end. The frames must make sense in sequence (a continuation only inside a message,
    /// a new message only outside one) and a whole uncompressed text frame must hold UTF-8. A plausible 64-bit length (at most the frame size
    /// limit: over 38 zero bits, which random bytes almost never give) is taken on its own.
    private func judge(_ bytes: UnsafeRawBufferPointer, at p: Int, chain: Int, exactEnd: Bool = false) -> HuntVerdict {
        var at = p
        var seen = 0
        var inMessage: Bool? = nil  // unknown before the first data frame
        while seen < chain {
            if at == bytes.count { return seen > 0 && exactEnd ? .start : .needMore(at + 2) }
            switch WebSocketFrameHeader.parse(UnsafeRawBufferPointer(rebasing: bytes[at...])) {
            case .needMore(let n):
                return .needMore(at + n)
            case .header(let h):
                guard Self.plausible(h, machinery.parser.configuration) else { return .notAStart }
                if h.opcode == .text && h.fin && !h.rsv1, let end = h.frameLength.map({ at + $0 }), end <= bytes.count,
                   !Self.isUTF8(UnsafeRawBufferPointer(rebasing: bytes[(at + h.headerLength)..<end]), key: h.maskingKey)
                {
                    return .notAStart
                }
                if !h.opcode.isControl {
                    if h.opcode == .continuation ? inMessage == false : inMessage == true { return .notAStart }
                    inMessage = !h.fin
                }
                if h.lengthField == 127 { return .start }
                seen += 1
                if seen == chain { return .start }
                at += h.headerLength + Int(h.payloadLength)
                if at > bytes.count { return .needMore(at + 2) }
            }
        }
        return .start
    }

    /// Whether a payload, unmasked with `key`, is valid UTF-8 (a whole text message's must be).
    private static func isUTF8(_ payload: UnsafeRawBufferPointer, key: WebSocketMaskingKey?) -> Bool {
        guard let key else { return WebSocketUTF8Validator.firstInvalidIndex(payload) == nil }
        var copy = [UInt8](payload)
        WebSocketMasking.apply(key, to: &copy)
        return WebSocketUTF8Validator.firstInvalidIndex(copy) == nil
    }

    /// A header with nothing wrong under this direction's rules (RSV bits, opcode, mask, length
    /// encoding, control frame limits), RSV1 only on a message's first frame, and not an empty
    /// fragment that does not end its message (which a run of zero bytes would look like).
    private static func plausible(_ h: WebSocketFrameHeader, _ c: WebSocketFrameParserConfiguration) -> Bool {
        WebSocketFrameParser.breaksNoRule(h, configuration: c)
            && (h.payloadLength > 0 || h.fin)
            && !(h.rsv1 && !h.opcode.isDataStart)
    }

    /// Whether this direction's compressed messages share one inflate window (RFC 7692 §7.1.1).
    private var contextTakeover: Bool {
        direction == .serverToClient ? !configuration.serverNoContextTakeover : !configuration.clientNoContextTakeover
    }

    @discardableResult
    public mutating func skip(_ count: Int, _ emit: (DissectionEvent) -> Void) -> Bool {
        skipViews(count, { Self.own($0, emit) })
    }

    /// The parser and the assembler, boxed: they call back into `handle`, which needs `self`, so
    /// they cannot work in place as stored properties of `self`; moving these large values out and
    /// back for every segment and frame cost a tenth of `sniff`'s time. A box lends them instead
    /// (to one caller at a time: the parser to `feedViews`, the assembler to `handle`), and is
    /// copied on write, so copies of a dissector do not share a parser or an assembler (they do
    /// share the inflater, a class, once deflate has started). Their buffers stay uniquely
    /// referenced, so a frame carried across segments grows in place.
    private final class Machinery {
        // Unchecked at run time (they are lent for every segment and every frame): the parser
        // only to `feedViews`, `skipViews` and the read-only accessors, the assembler only to
        // `handle`, which runs inside the parser's callback and never touches the parser.
        @exclusivity(unchecked) var parser: WebSocketFrameParser
        @exclusivity(unchecked) var assembler: WebSocketMessageAssembler

        init(parser: WebSocketFrameParser, assembler: WebSocketMessageAssembler) {
            self.parser = parser
            self.assembler = assembler
        }
    }

    /// The box, copied first if another dissector (a copy of this one) shares it. Called on entry
    /// only (feedViews, skipViews): inside them the box is also held by the caller's local.
    private mutating func uniqueMachinery() -> Machinery {
        uniqueMachineryUnretained().takeUnretainedValue()
    }

    /// The box made unique, unretained: for the calls made for every segment, where a retain and a
    /// release of it showed in the profile. `machinery` keeps it alive, and is not replaced while
    /// the segment is parsed (see handle).
    private mutating func uniqueMachineryUnretained() -> Unmanaged<Machinery> {
        if !isKnownUniquelyReferenced(&machinery) {
            machinery = Machinery(parser: machinery.parser, assembler: machinery.assembler)
        }
        return Unmanaged.passUnretained(machinery)
    }

    /// The data message in progress lost bytes in a capture gap, or is compressed against inflate
    /// history that was lost: its content is not judged and it is reported incomplete. Until it ends.
    private var damaged = false
    /// The frame being read lost bytes of its payload in a gap (filled with zeros): its content is
    /// not judged. Until it ends.
    private var frameDamaged = false
    /// Parsing started again after a gap, so whole frames may have been lost: until a data message
    /// ends or starts, a continuation frame without a start is the gap's doing.
    private var framesLost = false
    /// Compressed bytes of this direction may have been lost and its messages share one inflate
    /// window: every later compressed message is inflated without part of its history.
    private var inflateHistoryLost = false
    /// The next compressed message starts with an empty window: zlib then refuses any reference
    /// to what came before it ("invalid distance too far back") instead of copying stale bytes,
    /// so a message that inflates is exactly what was sent.
    private var freshInflaterNeeded = false
    /// The message in progress is compressed and its history was lost: if it does not inflate, it
    /// is reported incomplete (a reference into the lost history), not as a violation.
    private var historyDependent = false
    /// The message in progress was cut by a gap, and all it holds arrived before the gap: if its
    /// end never comes, what it holds can be shown as it is (its text too).
    private var endLostOnly = false

    /// - Parameter lost: payload bytes of this frame lost in a gap that `piece` (then with an empty
    ///   payload) stands for; they are shown as zeros.
    private mutating func handle(_ piece: WebSocketFramePiece, lost: Int = 0, _ emit: (DissectionEventView) -> Void) {
        let h = piece.header
        let limit = shownLimit
        let whole = piece.isWholeFrame
        if piece.isFirst {
            frameCount += 1
            if h.opcode.isDataStart {
                if framesLost {
                    // A message that starts after lost frames is whole; the one in progress, if
                    // any, lost its end in the gap: it is shown as far as it came, incomplete.
                    emitUnfinishedMessage(emit)
                    damaged = false
                    framesLost = false
                }
                messageOpcode = h.opcode
                messageCompressed = h.rsv1 && configuration.deflate != .off
                historyDependent = messageCompressed && inflateHistoryLost
                if messageCompressed && freshInflaterNeeded {
                    dropInflater()
                    freshInflaterNeeded = false
                }
            }
        }
        if frameDamaged && !h.opcode.isControl {
            damaged = true
            if messageCompressed && contextTakeover {
                inflateHistoryLost = true
                freshInflaterNeeded = true
            }
        }
        // More of the message in progress after a gap: what it holds is no longer one stretch.
        if endLostOnly && !h.opcode.isControl { endLostOnly = false }
        let keep = budget == nil || h.opcode.isControl ? Int.max : holdingRoom(for: piece, limit: shownWithoutRoom)
        // A whole frame (the usual case) is kept in locals and shown from where it lies; one in
        // pieces is kept in `current` and collects its shown part in `framePayload`.
        var record: FrameInProgress
        if whole {
            // (The piece's violations, nearly always none, are taken only when there are some: read
            // as an argument, the whole piece was copied for them, for every frame.)
            record = FrameInProgress(index: frameCount, header: h, offset: piece.frameOffset)
            forgetFrameExtras()
            if !piece.violations.isEmpty { frameViolations = piece.violations }
            record.payloadTruncated = piece.payload.count > limit
            if collecting {
                current = nil
                collecting = false
            }
        } else {
            if piece.isFirst {
                current = FrameInProgress(index: frameCount, header: h, offset: piece.frameOffset)
                forgetFrameExtras()
                if !piece.violations.isEmpty { frameViolations = piece.violations }
                collecting = true
                endFrameHold()
            }
            guard collecting, let r = current else { return }
            record = r
            let room = frameRoom(for: lost > 0 ? lost : piece.payload.count, limit: limit, &record)
            if lost > 0 {
                framePayload.append(contentsOf: repeatElement(0, count: min(room, lost)))
                if lost > room { record.payloadTruncated = true }
            } else if room >= piece.payload.count {
                framePayload.append(contentsOf: piece.payload)
            } else {
                if room > 0 { framePayload.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece.payload[0..<room])) }
                record.payloadTruncated = true
            }
        }
        // Not an optional, for the reason `collecting` gives.
        var message = MessageInProgress.none
        var hasMessage = false
        // Unretained: `machinery` holds it, and is not replaced while a frame is handled (only on
        // entry to feedViews, skipViews and a hunt's resume). A retain and a release here and in
        // holdingRoom, for every frame, were a twentieth of the dissecting thread's time
        // (`unowned(unsafe)` still retained it around each call; a guaranteed reference does not).
        let box = Unmanaged.passUnretained(machinery)
        // (A closure written here, not a local function: one that captures `record` and `message`
        // boxes them on the heap, with run-time exclusivity checks, for every frame.)
        // (Zeros standing for lost bytes are kept only within what is shown without room.)
        // (Nil, not an empty array, for the usual frame with nothing lost: an empty array is
        // retained and released like any other.)
        let lostViolations = lost > 0 ? box._withUnsafeGuaranteedRef { $0.assembler.receiveLost(lost, keeping: shownWithoutRoom, before: piece) } : nil
        // Inflated before the assembler sees the piece: the message's last piece completes it there.
        if streamed != nil && !h.opcode.isControl && (!piece.isFirst || h.opcode == .continuation) { inflateStreamed(piece.payload) }
        // A length with its top bit set ends the parse (RFC 6455 §5.2: the connection is failed):
        // the frame is shown, but starts no message and ends none, so the message in progress, if
        // any, stays unfinished and nothing stands for the frame's payload, which never came.
        let stopped = !piece.violations.isEmpty && piece.violations.contains { $0.rule == .lengthTopBitSet }
        // The piece is lent by pointer: captured by these closures, it was copied (and the copy
        // destroyed) for every frame, through its type's value witnesses.
        let payload = piece.payload
        var violations = stopped ? [] : withUnsafePointer(to: piece) { lent in
            box._withUnsafeGuaranteedRef {
                $0.assembler.receive(lent.pointee, keeping: keep) { item in
                    switch item {
                    case .control(let control):
                        frameClose = control.close
                    case .message(let view):
                        message = makeMessage(view, piecePayload: payload)
                        hasMessage = true
                    }
                }
            }
        }
        if let lostViolations, !lostViolations.isEmpty { violations = lostViolations + violations }
        if charged > 0, let budget {
            // What the assembler's buffer takes, which grows ahead of what it holds.
            let room = modelKept(box._withUnsafeGuaranteedRef { $0.assembler.keptCount })
            if room > charged {
                budget.takeInUse(room - charged)
                charged = room
            }
        }
        if !violations.isEmpty {
            if frameDamaged || (damaged && !h.opcode.isControl) {
                frameViolations += violations.filter { !Self.contentRules.contains($0.rule) }
            } else if framesLost {
                frameViolations += violations.filter { $0.rule != .continuationWithoutStart }
            } else {
                frameViolations += violations
            }
        }
        if !whole {
            current = record
            // A length with its top bit set ends the parse: show the frame as far as it goes.
            guard piece.isLast || stopped else { return }
            current = nil
            collecting = false
        }
        let op = h.opcode
        let isText = op == .text || (op == .continuation && messageOpcode == .text)
        violationCount += frameViolations.count
        if whole {
            let shown = piece.payload.leading(limit)
            // The message is this very frame, and the assembler found it valid text: the shown part
            // is valid unless the cut split a character, which the message's text length tells.
            var validText: Bool? = nil
            if hasMessage, message.dataIsPiecePayload, message.isText { validText = message.textLength == shown.count }
            emitFrame(record, shown, isText: isText, validText: validText, emit)
        } else {
            framePayload.withUnsafeBytes { emitFrame(record, $0, isText: isText, validText: nil, emit) }
            endFrameHold()
        }
        forgetFrameExtras()
        if hasMessage {
            if damaged {
                dropMadeContentViolations()
                message.isText = false
            }
            violationCount += madeViolations.count
            message.index = messageCount
            if message.dataIsPiecePayload {
                emitMessage(message, piece.payload.leading(limit), emit)
            } else {
                messageData.withUnsafeBytes { emitMessage(message, $0, emit) }
                // A whole payload shown (`--full`) is not kept after it is shown.
                if messageData.capacity > Self.keptCapacity { messageData = [] }
            }
            forgetMade()
        }
        if h.fin && !op.isControl {
            messageOpcode = nil
            damaged = false
            framesLost = false
            endHold()
        }
        frameDamaged = false
    }

    // MARK: Holding messages within the shared memory budget

    /// How many bytes of the message `piece` belongs to the assembler may keep: all of them while
    /// `budget` has room (a message the assembler lends where it lies takes
    /// none), else the shown part, or none of a compressed message, which is then inflated as it
    /// comes. Called for data frames only, with a budget.
    private mutating func holdingRoom(for piece: WebSocketFramePiece, limit: Int) -> Int {
        let h = piece.header
        let box = Unmanaged.passUnretained(machinery)  // (see handle)
        if piece.isFirst && h.opcode.isDataStart {
            // A new message: the assembler forgets the one before, if it was left unfinished.
            endHold()
            if piece.isWholeFrame && h.fin && !messageCompressed && !box._withUnsafeGuaranteedRef({ $0.assembler.isInsideMessage }) {
                return Int.max
            }
        }
        if notHeldWhole || (h.opcode == .continuation && !box._withUnsafeGuaranteedRef({ $0.assembler.isInsideMessage })) {
            return messageCompressed ? 0 : limit
        }
        guard let budget else { return Int.max }
        // The assembler may have let the message go (it broke a limit): so much less is held.
        let held = modelKept(box._withUnsafeGuaranteedRef { $0.assembler.keptCount })
        if charged > held { _ = budget.adjust(&charged, to: held) }
        let count = piece.payload.count
        if budget.take(count) {
            charged += count
            return Int.max
        }
        // No room left: the message goes on with only what is needed to show it. (It is counted
        // as not held whole when it is made, if it did lose bytes: one that fits in the part
        // shown is whole after all.)
        notHeldWhole = true
        budget.give(charged)
        charged = 0
        // (On a message's first piece the assembler still holds the message before, if any.)
        let startsMessage = piece.isFirst && h.opcode.isDataStart
        if messageCompressed {
            Self.empty(&messageData)
            streamed = StreamedInflate()
            if startsMessage {
                // Inflated here; the message's later pieces in `handle`.
                inflateStreamed(piece.payload)
            } else {
                box._withUnsafeGuaranteedRef { $0.assembler.releaseKept(keepingFirst: 0) { kept in inflateStreamed(kept) } }
            }
            return 0
        }
        if !startsMessage { box._withUnsafeGuaranteedRef { $0.assembler.releaseKept(keepingFirst: limit) } }
        return limit
    }

    /// Takes room in the budget for the parser's buffer of a frame spanning segments (a frame of up
    /// to `maxBufferedFrameSize` is collected whole there), or gives it back once the frame is out.
    /// Without room, the frame goes on in pieces to the assembler, which keeps what it can.
    private mutating func holdCarry(_ emit: (DissectionEventView) -> Void) {
        guard let budget else { return }
        let box = Unmanaged.passUnretained(machinery)  // (see handle)
        let room = box._withUnsafeGuaranteedRef { $0.parser.carryRoom }
        let wanted = room > configuration.parser.retainedCarryCapacity ? room : 0
        guard wanted != carryCharged, !budget.adjust(&carryCharged, to: wanted) else { return }
        box._withUnsafeGuaranteedRef { $0.parser.streamCarriedFrame { piece in handle(piece, emit) } }
        budget.give(carryCharged)
        carryCharged = 0
    }

    /// Gives back everything this dissector holds against `budget`, for an
    /// owner that drops it without finishing it (the buffers go with it).
    public mutating func releaseMemory() {
        guard let budget else { return }
        budget.give(charged + carryCharged + huntCharged + inflaterCharged + frameCharged)
        charged = 0
        carryCharged = 0
        huntCharged = 0
        inflaterCharged = 0
        frameCharged = 0
    }

    /// How many more payload bytes of the frame arriving in pieces to keep for showing, `count`
    /// coming: up to `limit`, but past `shownWithoutRoom` only while `budget`
    /// has room for the buffer (`--full`). Without room, the frame is shown cut at
    /// `shownWithoutRoom` from then on (`record` marked truncated, the budget told).
    private mutating func frameRoom(for count: Int, limit: Int, _ record: inout FrameInProgress) -> Int {
        let room = limit - framePayload.count
        let floor = shownWithoutRoom
        guard let budget, limit > floor else { return room }
        if frameCut { return floor - framePayload.count }
        let wanted = framePayload.count + min(count, max(0, room))
        // Decided by what was charged (the room asked for), not by the buffer's capacity, which
        // the allocator rounds up as its state allows: the same capture gave different cuts on
        // one thread and on three.
        guard wanted > floor, wanted > frameCharged else { return room }
        // The buffer's new room, taken before it grows (doubling, as an Array would).
        let capacity = max(wanted, min(limit, 2 * frameCharged))
        if budget.adjust(&frameCharged, to: capacity) {
            framePayload.reserveCapacity(capacity)
            return room
        }
        frameCut = true
        budget.noteFrameNotHeldWhole()
        budget.give(frameCharged)
        frameCharged = 0
        if framePayload.count > floor {
            framePayload = Array(framePayload.prefix(floor))
            record.payloadTruncated = true
        }
        return floor - framePayload.count
    }

    /// The frame arriving in pieces was shown (or a new one begins): its buffer goes back to the
    /// budget, and is let go when a whole payload made it large.
    private mutating func endFrameHold() {
        if frameCharged > 0 { budget?.give(frameCharged) }
        frameCharged = 0
        frameCut = false
        Self.empty(&framePayload)
    }

    /// Forgets the inflater (its window goes with it) and gives back its room.
    private mutating func dropInflater() {
        inflater = nil
        if inflaterCharged > 0 { budget?.give(inflaterCharged) }
        inflaterCharged = 0
    }

    /// A compressed message left uninflated for want of memory for an inflater: shown as
    /// compressed and incomplete; with context takeover the messages after it miss its history.
    private mutating func leftUninflated() {
        budget?.noteMessageNotInflated()
        damaged = true
        if contextTakeover {
            inflateHistoryLost = true
            freshInflaterNeeded = true
        }
    }

    /// The message in progress ended or was given up: its bytes go back to the budget.
    private mutating func endHold() {
        if charged > 0 { budget?.give(charged) }
        charged = 0
        modelledKept = 0
        notHeldWhole = false
        if streamed != nil {
            // A message the assembler gave up (past its limits) without completing: end it in the
            // inflater as well, so the next one starts clean.
            streamed = nil
            _ = try? inflater?.finishMessage()
        }
    }

    /// Inflates the next compressed bytes of a message that is not held whole: keeps the shown part,
    /// counts the rest and checks it as UTF-8.
    private mutating func inflateStreamed(_ bytes: UnsafeRawBufferPointer) {
        guard var s = streamed, !bytes.isEmpty else { return }
        streamed = nil
        let room = shownWithoutRoom - s.compressedShown.count
        if room > 0 { s.compressedShown.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes.prefix(room))) }
        if s.failure == nil && !s.noInflater {
            if let d = decompressor() {
                do {
                    try d.inflate(bytes, chunkSize: Self.inflateChunk) { absorbInflated($0, into: &s) }
                } catch {
                    s.failure = error
                }
            } else {
                s.noInflater = true
            }
        }
        streamed = s
    }

    private mutating func absorbInflated(_ raw: UnsafeRawBufferPointer, into s: inout StreamedInflate) {
        Self.absorb(raw, shown: &messageData, limit: shownWithoutRoom, into: &s)
    }

    /// Keeps what of `raw` falls within the first `limit` bytes shown, checks it as UTF-8 and counts it.
    fileprivate static func absorb(_ raw: UnsafeRawBufferPointer, shown: inout [UInt8], limit: Int, into s: inout StreamedInflate) {
        let room = limit - shown.count
        if room > 0 { shown.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw.prefix(room))) }
        if s.invalidAt == nil, let bad = s.utf8.validate(raw) { s.invalidAt = s.length + bad }
        s.length += raw.count
    }

    /// What a compressed message held whole inflates to, taken piece by piece (`makeMessage`): as
    /// far as the budget has room, then (`partly`) only its first `shownLimit` bytes, the rest
    /// counted and checked. One per direction, its buffer reused from message to message.
    fileprivate struct InflatedPieces {
        let budget: DissectionMemoryBudget
        var data: [UInt8] = []
        /// Budget taken for `data`.
        var taken = 0
        var partly: StreamedInflate?
        var shown: [UInt8] = []
        var shownLimit = 0

        init(budget: DissectionMemoryBudget) {
            self.budget = budget
        }

        /// Starts a message.
        mutating func begin(shownLimit: Int) {
            self.shownLimit = shownLimit
            partly = nil
            data.removeAll(keepingCapacity: true)
        }

        mutating func take(_ piece: UnsafeRawBufferPointer) {
            if partly == nil {
                if budget.take(piece.count) {
                    taken += piece.count
                    data.append(contentsOf: piece)
                    return
                }
                budget.noteMessageNotHeldWhole()
                var s = StreamedInflate()
                WebSocketStreamDissector.empty(&shown)
                data.withUnsafeBytes { WebSocketStreamDissector.absorb($0, shown: &shown, limit: shownLimit, into: &s) }
                release()
                data = []
                partly = s
            }
            WebSocketStreamDissector.absorb(piece, shown: &shown, limit: shownLimit, into: &partly!)
        }

        /// Gives back the budget taken for `data`.
        mutating func release() {
            budget.give(taken)
            taken = 0
        }
    }

    /// Inflated bytes are taken in pieces of this size: a message is held whole only as far as
    /// `budget` has room for it, however far it inflates.
    static let inflateChunk = 1 << 16

    /// - Parameter validText: whether `payload` is valid UTF-8, when that is already known.
    /// - Parameter incomplete: the stream ended inside the frame; a character cut off at the end of
    ///   what arrived is left out of its text.
    // (Inlined, as emitMessage is: called out of line, they were given a copy of the whole
    // dissector, a memcpy for every frame or message.)
    @inline(__always)
    private func emitFrame(_ r: FrameInProgress, _ payload: UnsafeRawBufferPointer, isText: Bool, validText: Bool?,
                           incomplete: Bool = false, _ emit: (DissectionEventView) -> Void) {
        let judged = isText && !messageCompressed && !damaged && !frameDamaged
        let textLength: Int? = !judged ? nil
            : incomplete ? Self.validTextPrefix(payload)
            : (validText ?? (WebSocketUTF8Validator.firstInvalidIndex(payload) == nil)) ? payload.count : nil
        let text = textLength.map { payload.leading($0) }
        // Bytes of it lost in a gap (shown as zeros) make it incomplete too, as they do its message.
        let lostBytes = frameDamaged && !incomplete
        withBorrowed(frameClose, frameViolations) { close, violations in
            let record = FrameRecordView(index: r.index, header: r.header, offset: r.offset, payload: payload, payloadTruncated: r.payloadTruncated,
                                         text: text, close: close, violations: violations, incomplete: incomplete || lostBytes)
            withUnsafePointer(to: record) { emit(.frame($0)) }
        }
    }

    /// - Parameter incomplete: nil for the usual rule (the message lost bytes or history in a gap).
    @inline(__always)
    private func emitMessage(_ m: MessageInProgress, _ data: UnsafeRawBufferPointer, incomplete: Bool? = nil,
                             _ emit: (DissectionEventView) -> Void) {
        withBorrowed(madeEnvelope, madeViolations) { envelope, violations in
            let record = MessageRecordView(
                index: m.index, opcode: m.opcode, offset: m.offset, endOffset: m.endOffset, length: m.length,
                fragmentCount: m.fragmentCount, compressed: m.compressed, data: data, dataLength: m.dataLength,
                dataTruncated: m.dataTruncated, text: m.isText ? data.leading(m.textLength) : nil,
                textEndsInsideCharacter: m.isText && m.textLength < data.count, envelope: envelope, violations: violations,
                incomplete: incomplete ?? damaged, envelopeUnchecked: m.isText && m.envelopeUnchecked)
            withUnsafePointer(to: record) { emit(.message($0)) }
        }
    }

    /// Rules that bytes lost in a gap make meaningless: a payload's content, and where a message
    /// starts (its first fragment may be what was lost).
    static let contentRules: Set<WebSocketViolation.Rule> = [
        .invalidUTF8, .invalidCompressedData, .inflatedTooLarge, .windowExceeded, .invalidCloseReason,
        .invalidCloseCode, .closePayloadTooShort, .continuationWithoutStart, .newMessageInsideFragmented,
    ]

    /// Everything about a completed message that needs its whole data (inflating, text, envelope),
    /// worked out while the assembler lends it. The shown data is kept in `messageData`, unless it
    /// is `piecePayload` itself (an unfragmented, uncompressed message: the common case).
    private mutating func makeMessage(_ view: WebSocketMessageView, piecePayload: UnsafeRawBufferPointer) -> MessageInProgress {
        forgetMade()
        messageCount += 1
        // Its violations go to `madeViolations` as they are found (a local array, nearly always
        // empty, was retained and released for every message).
        var isValidText = view.isValidUTF8 ?? false
        var inflated: [UInt8]? = nil
        if view.compressed, var s = streamed {
            streamed = nil
            return makeStreamedMessage(view, &s)
        }
        if view.compressed, let d = decompressor() {
            var failure: WebSocketViolation? = nil
            if let budget {
                // Held as it inflates while the budget has room; past it, only the shown part is
                // kept and the rest counted and checked, as for a message not held whole.
                // Taken out of self while inflating: the closures then capture a local, checked
                // statically, not a stored property.
                var pieces = inflatedPieces.take() ?? InflatedPieces(budget: budget)
                pieces.begin(shownLimit: shownWithoutRoom)
                do {
                    try d.inflate(view.payload, chunkSize: Self.inflateChunk) { piece in pieces.take(piece) }
                    try d.finishMessage(chunkSize: Self.inflateChunk) { piece in pieces.take(piece) }
                } catch {
                    failure = error
                }
                if failure == nil { noteWindowBreach(d, view) }
                pieces.release()
                defer {
                    // Kept for the next message only if small: a dissector is one of thousands.
                    if pieces.data.capacity > 4096 { pieces.data = [] }
                    inflatedPieces = pieces
                }
                if var s = pieces.partly {
                    s.failure = failure
                    swap(&messageData, &pieces.shown)
                    pieces.shown = []
                    // Shown as compressed if it does not inflate, as a message held whole is.
                    if failure != nil { s.compressedShown = Array(view.payload.prefix(shownWithoutRoom)) }
                    return makeStreamedMessage(view, &s, finished: true)
                }
                if failure == nil { inflated = pieces.data }
            } else {
                do { inflated = try d.inflateMessage(view.payload) } catch { failure = error }
                if failure == nil { noteWindowBreach(d, view) }
            }
            if var v = failure {
                v.offset = view.offset
                madeViolations.append(v)
                // It may refer to the history a gap took: incomplete, not a violation.
                if historyDependent { damaged = true }
            } else if let out = inflated, view.opcode == .text {
                if let bad = WebSocketUTF8Validator.firstInvalidIndex(out) {
                    madeViolations.append(WebSocketViolation(.invalidUTF8, offset: view.offset,
                        bad < out.count ? "inflated text is not valid UTF-8 at message byte \(bad)" : "inflated text ends inside a UTF-8 sequence"))
                } else {
                    isValidText = true
                }
            }
        } else if view.compressed {
            leftUninflated()
        }
        let limit = shownLimit
        let isText = isValidText && view.opcode == .text
        func summarise(_ data: UnsafeRawBufferPointer, isPiecePayload: Bool, missing: Int = 0) -> MessageInProgress {
            // Bytes lost in a gap or let go (`missing`) lie past what is shown.
            let truncated = data.count > limit || missing > 0
            let shown = min(limit, data.count)
            var textLength = shown
            if isText && data.count > limit {
                // Valid text cut inside a character: the character's start is left out of the text.
                while textLength > 0 && data[textLength] & 0xC0 == 0x80 { textLength -= 1 }
            } else if isText && view.unkept > 0 {
                // Only the first bytes were kept: a character cut at their end is left out.
                textLength = Self.validTextPrefix(data) ?? 0
            }
            if notHeldWhole && view.unkept > 0 { budget?.noteMessageNotHeldWhole() }
            var envelope: EnvelopeBox? = nil
            if isText && configuration.recogniseEnvelopes && view.unkept == 0 {
                envelope = Self.summariseEnvelope(data)
            }
            if envelope != nil { madeEnvelope = envelope }
            return MessageInProgress(
                index: messageCount, opcode: view.opcode, offset: view.offset, endOffset: view.endOffset,
                length: view.payload.count + view.missing + view.unkept, fragmentCount: view.fragmentCount, compressed: view.compressed,
                dataLength: data.count + missing, dataTruncated: truncated,
                dataIsPiecePayload: isPiecePayload, isText: isText, textLength: textLength,
                envelopeUnchecked: isText && configuration.recogniseEnvelopes && view.unkept > 0)
        }
        if let inflated {
            return inflated.withUnsafeBytes { data in
                keepShown(data, limit)
                return summarise(data, isPiecePayload: false)
            }
        }
        let isPiecePayload = view.payload.baseAddress == piecePayload.baseAddress && view.payload.count == piecePayload.count
        if !isPiecePayload { keepShown(view.payload, limit) }
        return summarise(view.payload, isPiecePayload: isPiecePayload, missing: view.missing + view.unkept)
    }

    /// `makeMessage` for a compressed message that was inflated as it came (`streamed`): its shown
    /// part is in `messageData`; no envelope is looked for, as its whole text was not kept.
    /// - Parameter finished: the inflater already ended the message.
    private mutating func makeStreamedMessage(_ view: WebSocketMessageView, _ s: inout StreamedInflate,
                                              finished: Bool = false) -> MessageInProgress {
        if notHeldWhole { budget?.noteMessageNotHeldWhole() }
        if !finished, s.failure == nil && !s.noInflater, let d = inflater {
            do {
                try d.finishMessage(chunkSize: Self.inflateChunk) { absorbInflated($0, into: &s) }
                noteWindowBreach(d, view)
            } catch {
                s.failure = error
            }
        }
        let length = view.payload.count + view.missing + view.unkept
        var isText = false
        if s.failure != nil || s.noInflater {
            if var failure = s.failure {
                failure.offset = view.offset
                madeViolations.append(failure)
                if historyDependent { damaged = true }
            } else {
                leftUninflated()
            }
            // Shown as compressed, as a message held whole is when it does not inflate.
            messageData = s.compressedShown
            return MessageInProgress(
                index: messageCount, opcode: view.opcode, offset: view.offset, endOffset: view.endOffset,
                length: length, fragmentCount: view.fragmentCount, compressed: true,
                dataLength: length, dataTruncated: length > messageData.count,
                dataIsPiecePayload: false, isText: false, textLength: messageData.count)
        } else if view.opcode == .text {
            if let bad = s.invalidAt {
                madeViolations.append(WebSocketViolation(.invalidUTF8, offset: view.offset, "inflated text is not valid UTF-8 at message byte \(bad)"))
            } else if !s.utf8.isAtCharacterBoundary {
                madeViolations.append(WebSocketViolation(.invalidUTF8, offset: view.offset, "inflated text ends inside a UTF-8 sequence"))
            } else {
                isText = true
            }
        }
        let textLength = isText ? messageData.withUnsafeBytes { Self.validTextPrefix($0) ?? 0 } : 0
        return MessageInProgress(
            index: messageCount, opcode: view.opcode, offset: view.offset, endOffset: view.endOffset,
            length: length, fragmentCount: view.fragmentCount, compressed: true,
            dataLength: s.length, dataTruncated: s.length > messageData.count,
            dataIsPiecePayload: false, isText: isText, textLength: textLength,
            envelopeUnchecked: isText && configuration.recogniseEnvelopes)
    }

    /// The capacity a buffer reused from one segment, frame or message to the next keeps, and the
    /// bytes held after a gap without room in the budget: a dissector is one of thousands in
    /// `sniff`, so a larger buffer (a `--full` payload, a big segment) is let go once used.
    static let keptCapacity = 1 << 16

    /// The room the assembler's buffer is charged for, now that it holds `count` bytes: grown as
    /// an Array grows (to the count, or twice the room before), and nothing once it holds nothing.
    /// Not its capacity, which the allocator rounds up as its state allows, so that what fits in
    /// --max-message-memory is the same on one thread and on three, and from run to run.
    private mutating func modelKept(_ count: Int) -> Int {
        if count == 0 {
            modelledKept = 0
        } else if count > modelledKept {
            modelledKept = max(count, 2 * modelledKept)
        }
        return modelledKept
    }

    /// Empties a reused buffer, keeping its memory unless it grew past `keptCapacity`.
    fileprivate static func empty(_ buffer: inout [UInt8]) {
        if buffer.capacity > keptCapacity { buffer = [] } else { buffer.removeAll(keepingCapacity: true) }
    }

    private mutating func keepShown(_ data: UnsafeRawBufferPointer, _ limit: Int) {
        Self.empty(&messageData)
        messageData.append(contentsOf: UnsafeRawBufferPointer(rebasing: data.prefix(limit)))
    }

    /// The message `d` just inflated whole referred back beyond the agreed window: flagged, though
    /// it inflated (zlib finds such a reference only when the bytes it names are not in its output).
    private mutating func noteWindowBreach(_ d: PerMessageDeflateDecompressor, _ view: WebSocketMessageView) {
        // (`checksWindow` first: without it there is never a breach, and reading the class's
        // property for every compressed message is what it would cost.)
        guard configuration.checksWindow, var breach = d.windowBreach else { return }
        breach.offset = view.offset
        madeViolations.append(breach)
    }

    /// This direction's inflater, made when its first compressed message comes; nil when
    /// `budget` has no room for its window and state.
    private mutating func decompressor() -> PerMessageDeflateDecompressor? {
        if let inflater { return inflater }
        let server = direction == .serverToClient
        let bits = server ? configuration.serverMaxWindowBits : configuration.clientMaxWindowBits
        if let budget {
            // zlib's window (at least 9 bits are used), its inflate state (about 7 KiB) and the
            // output buffer the decompressor keeps from one message to the next.
            let cost = (1 << max(9, bits)) + (8 << 10) + PerMessageDeflateDecompressor.keptOutputLimit
            guard budget.take(cost) else { return nil }
            inflaterCharged = cost
        }
        let made = PerMessageDeflateDecompressor(
            PerMessageDeflateDirection(
                windowBits: bits,
                noContextTakeover: server ? configuration.serverNoContextTakeover : configuration.clientNoContextTakeover),
            maxInflatedSize: configuration.maxInflatedSize, checkingWindow: configuration.checksWindow)
        inflater = made
        return made
    }

    /// The envelope's `type` and ids, or why an object with a `type` is not a valid envelope;
    /// nil for text that is not an envelope at all. `text` is valid UTF-8. Boxed here: an
    /// optional summary, even a nil one, was destroyed through its type's metadata for every
    /// text message.
    static func summariseEnvelope(_ text: UnsafeRawBufferPointer) -> EnvelopeBox? {
        guard WebSocketEnvelope.looksLikeEnvelope(text) else { return nil }
        do {
            guard let e = try WebSocketEnvelope.parseIfEnvelope(text) else { return nil }
            return EnvelopeBox(EnvelopeSummary(type: e.type, correlationID: e.correlationID, messageID: e.messageID,
                                               clientID: e.clientID, error: nil))
        } catch {
            // What could be read still names the message and pairs its reply.
            return EnvelopeBox(EnvelopeSummary(type: error.type ?? "", correlationID: error.correlationID,
                                               messageID: error.messageID, clientID: error.clientID, error: "\(error)"))
        }
    }
}

/// A message's envelope summary, boxed (`madeEnvelope`): the envelope is rare and large.
final class EnvelopeBox: Sendable {
    let value: EnvelopeSummary
    init(_ value: EnvelopeSummary) { self.value = value }
}

/// `withBorrowed` for a boxed envelope: `box?.value` made an optional summary for every message,
/// which (even nil) was destroyed through its type's metadata, a twentieth of `handle`'s time.
func withBorrowed<R>(_ box: EnvelopeBox?, _ violations: [WebSocketViolation],
                     _ body: (UnsafePointer<EnvelopeSummary>?, UnsafeBufferPointer<WebSocketViolation>) -> R) -> R {
    violations.withUnsafeBufferPointer { violations in
        guard let box else { return body(nil, violations) }
        return withUnsafePointer(to: box.value) { body($0, violations) }
    }
}

extension UnsafeRawBufferPointer {
    /// The first `n` bytes, or all if there are fewer: `prefix` made a generic call (and a copy of
    /// the frame piece around it) for every frame and message shown.
    @inline(__always)
    func leading(_ n: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: baseAddress, count: Swift.min(count, n))
    }
}
