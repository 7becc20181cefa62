internal import CZlib
import WebSocketCodec

/// Inflates the messages of one direction of a permessage-deflate connection (RFC 7692 §7.2.2), keeping
/// the LZ77 window from one message to the next unless the agreement says otherwise, and refusing to
/// inflate a message past a size limit.
///
/// A message may be fed whole (``inflateMessage(_:)-(UnsafeRawBufferPointer)``) or frame by frame
/// (``inflate(_:)-(UnsafeRawBufferPointer)`` for each frame's payload, then ``finishMessage()``), and
/// messages must be fed in the order they were sent. Every call returns the bytes inflated so far; the
/// message is what all the calls for it returned, in order.
///
/// Errors are ``WebSocketViolation``s: ``WebSocketViolation/Rule/inflatedTooLarge`` (close 1009) and
/// ``WebSocketViolation/Rule/invalidCompressedData`` (close 1007). Their `offset` is the number of
/// compressed bytes of the message zlib had read when it found the problem; add the payload's position
/// in the stream to report it.
/// After an error the message is abandoned and the window cleared, so the next call starts a new message
/// (and with context takeover, later messages that refer back will fail too: the connection is over).
///
/// Not `Sendable`: it owns a zlib stream that must never be used from two threads at once. Create it
/// where it is used (a channel handler, an actor, a task), or hand it over with `sending`.
public final class PerMessageDeflateDecompressor {
    /// 64 MiB. Large enough for any message a WebSocket application sends in practice, small enough that
    /// a hostile peer cannot exhaust a server's memory: deflate expands at most about 1032:1, so the limit
    /// is reached from some 64 KiB of compressed data, and no output buffer larger than the limit (plus one
    /// byte) is ever allocated. Set it to the message-size limit the rest of the connection enforces.
    public static let defaultMaxInflatedSize = 64 << 20

    /// The settings this decompressor was made for.
    public let settings: PerMessageDeflateDirection
    /// The most bytes one message may inflate to; see ``defaultMaxInflatedSize``.
    public let maxInflatedSize: Int

    private let stream: ZlibStream
    private var inflatedInMessage = 0
    private var compressedInMessage = 0
    private var atBlockBoundary = true
    /// The message's bytes so far ended exactly with a block that has BFINAL set: the DEFLATE stream
    /// is complete, and the appended tail of §7.2.2 is not DEFLATE data at all.
    private var endedWithFinalBlock = false
    /// Looks for back-references beyond the agreed window, when asked to and the window is shorter
    /// than DEFLATE's own 32 KiB (see `windowBreach`).
    /// (Used by one thread, never passed inout: no run-time exclusivity checks, which cost as much
    /// as a tenth of the check.)
    @exclusivity(unchecked) private var windowCheck: DeflateWindowCheck?
    /// After ``finishMessage()`` returned (in either form): the message's first back-reference
    /// that reaches further back than the window agreed (RFC 7692 §7.1.2), if the decompressor was
    /// made with `checkingWindow` and found one; otherwise nil. zlib inflates such a message when
    /// the bytes it refers to are in its output, so the message itself is still returned whole.
    /// The violation's offset is the compressed byte of the message where the reference starts.
    @exclusivity(unchecked) public private(set) var windowBreach: WebSocketViolation?
    /// The largest output buffer ever allocated, so tests can check that a bomb stays within the limit.
    private(set) var largestOutputCapacity = 0

    /// The appended tail of §7.2.2, an empty stored block's length fields.
    private static let trailer: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]
    /// The smallest output buffer a call starts with.
    private static let initialOutputChunk = 256
    /// An output buffer kept from the last call for the next, if no larger than
    /// `keptOutputLimit`: most messages inflate to a few hundred bytes, and allocating and freeing
    /// a buffer twice a message (the message, then the appended tail) cost half as much as
    /// inflating them (sniff's benchmark capture). Larger buffers go at once: a decompressor is
    /// one of thousands, one per connection direction.
    private var keptOutput: ZlibOutput?
    /// The most bytes a decompressor keeps between calls besides zlib's window and state (its
    /// output buffer), for callers that budget the memory of many decompressors.
    public static let keptOutputLimit = 4096

    /// - Parameters:
    ///   - settings: the receiving direction of the agreement: ``PerMessageDeflateParameters/clientToServer``
    ///     for a server, ``PerMessageDeflateParameters/serverToClient`` for a client. The default is the
    ///     RFC's unnegotiated case, a 32 KiB window with context takeover, which also inflates anything
    ///     compressed with a smaller window.
    ///   - maxInflatedSize: the most bytes one message may inflate to, default ``defaultMaxInflatedSize``.
    ///   - checkingWindow: also decode each message's DEFLATE codes to find a back-reference beyond
    ///     the agreed window (``windowBreach``); only where the window is shorter than 15 bits. It
    ///     decodes the compressed bytes a second time, at about what inflating them costs: for a
    ///     dissector, which reports the breach, more than for a server. Default false.
    /// - Precondition: `maxInflatedSize` is not negative.
    public convenience init(
        _ settings: PerMessageDeflateDirection = PerMessageDeflateDirection(),
        maxInflatedSize: Int = PerMessageDeflateDecompressor.defaultMaxInflatedSize,
        checkingWindow: Bool = false
    ) {
        // Inflate with at least a 9-bit window even where 8 was agreed: senders built on zlib deflate with
        // 9 in that case (zlib cannot deflate raw with 8), and a larger inflate window accepts every
        // stream a smaller one does.
        self.init(settings, maxInflatedSize: maxInflatedSize, zlibWindowBits: max(settings.windowBits, 9),
                  checkingWindow: checkingWindow)
    }

    init(_ settings: PerMessageDeflateDirection, maxInflatedSize: Int, zlibWindowBits: Int, checkingWindow: Bool = false) {
        precondition(maxInflatedSize >= 0, "maxInflatedSize must not be negative")
        self.settings = settings
        self.maxInflatedSize = maxInflatedSize
        self.stream = ZlibStream(inflateWindowBits: zlibWindowBits)
        // (A 15-bit window is DEFLATE's longest: no distance can exceed it.)
        if checkingWindow && settings.windowBits < 15 { windowCheck = DeflateWindowCheck(windowBits: settings.windowBits) }
    }

    /// Inflates the compressed payload of one frame of the current message and returns what it inflated
    /// to so far. Call ``finishMessage()`` after the message's last frame.
    public func inflate(_ fragment: UnsafeRawBufferPointer) throws(WebSocketViolation) -> [UInt8] {
        try run(fragment, isTrailer: false)
    }

    /// Inflates the compressed payload of one frame; see ``inflate(_:)-(UnsafeRawBufferPointer)``.
    public func inflate(_ fragment: [UInt8]) throws(WebSocketViolation) -> [UInt8] {
        try fragment.withUnsafeBytes { bytes in
            Result { () throws(WebSocketViolation) in try run(bytes, isTrailer: false) }
        }.get()
    }

    /// Ends the current message: appends `00 00 ff ff` (RFC 7692 §7.2.2), returns the last inflated
    /// bytes, and clears the window when the sender does not take over context.
    ///
    /// Throws ``WebSocketViolation/Rule/invalidCompressedData`` when the message does not end on a
    /// DEFLATE block boundary, that is when it was cut short. A message with an empty payload inflates to
    /// nothing, as an empty compressed payload leaves nothing to decode. A message that ends with a
    /// BFINAL block and nothing after it (§7.2.3.4 asks for one more 0x00, which zlib's `Z_FINISH`
    /// leaves out) is complete: its DEFLATE stream ended, so the appended tail is trailing bytes a
    /// DEFLATE decoder never reads (RFC 1951 §3.2.3), not a block cut short.
    public func finishMessage() throws(WebSocketViolation) -> [UInt8] {
        try finish(chunkSize: 0, sink: { _ in })
    }

    /// Inflates one whole message: ``inflate(_:)-(UnsafeRawBufferPointer)`` then ``finishMessage()``.
    public func inflateMessage(_ payload: UnsafeRawBufferPointer) throws(WebSocketViolation) -> [UInt8] {
        var output = try inflate(payload)
        output += try finishMessage()
        return output
    }

    /// Inflates one whole message; see ``inflateMessage(_:)-(UnsafeRawBufferPointer)``.
    public func inflateMessage(_ payload: [UInt8]) throws(WebSocketViolation) -> [UInt8] {
        var output = try inflate(payload)
        output += try finishMessage()
        return output
    }

    /// Inflates a single message with a fresh window, as the first message of a connection or any
    /// message sent without context takeover; for `wsctl decode` and other one-off uses.
    ///
    /// Uses a 32 KiB window, which inflates data compressed with any window size.
    public static func inflateStandalone(
        _ payload: [UInt8], maxInflatedSize: Int = PerMessageDeflateDecompressor.defaultMaxInflatedSize
    ) throws(WebSocketViolation) -> [UInt8] {
        try PerMessageDeflateDecompressor(maxInflatedSize: maxInflatedSize).inflateMessage(payload)
    }

    /// Forgets the window and any partial message, as if nothing had been inflated yet.
    public func reset() {
        abandonMessage()
    }

    private func endMessage() {
        inflatedInMessage = 0
        compressedInMessage = 0
        atBlockBoundary = true
        endedWithFinalBlock = false
        if settings.noContextTakeover { stream.reset() }
    }

    private func abandonMessage() {
        windowCheck?.endMessage()
        inflatedInMessage = 0
        compressedInMessage = 0
        atBlockBoundary = true
        endedWithFinalBlock = false
        stream.reset()
    }

    private func windowMessage(_ breach: DeflateWindowCheck.Breach) -> String {
        "a back-reference \(breach.distance) bytes back, at inflated byte \(breach.at), reaches beyond the \(1 << settings.windowBits)-byte window agreed (\(settings.windowBits) bits)"
    }

    private func fail(_ rule: WebSocketViolation.Rule, _ message: String) -> WebSocketViolation {
        let offset = compressedInMessage
        abandonMessage()
        return WebSocketViolation(rule, offset: offset, message)
    }

    /// Inflates the compressed payload of one frame of the current message, handing what it
    /// inflates to `sink` in pieces of at most `chunkSize` bytes (each valid only during the call),
    /// so that however far it inflates no more than `chunkSize` bytes are held here. Call
    /// ``finishMessage(chunkSize:_:)`` after the message's last frame.
    public func inflate(
        _ fragment: UnsafeRawBufferPointer, chunkSize: Int, _ sink: (UnsafeRawBufferPointer) -> Void
    ) throws(WebSocketViolation) {
        precondition(chunkSize > 0, "chunkSize must be positive")
        _ = try run(fragment, isTrailer: false, chunkSize: chunkSize, sink: sink)
    }

    /// ``finishMessage()``, its last bytes handed to `sink` in pieces of at most `chunkSize` bytes.
    public func finishMessage(chunkSize: Int, _ sink: (UnsafeRawBufferPointer) -> Void) throws(WebSocketViolation) {
        precondition(chunkSize > 0, "chunkSize must be positive")
        _ = try finish(chunkSize: chunkSize, sink: sink)
    }

    /// `finishMessage`, its output returned whole (`chunkSize` 0) or handed to `sink` in pieces.
    private func finish(chunkSize: Int, sink: (UnsafeRawBufferPointer) -> Void) throws(WebSocketViolation) -> [UInt8] {
        if windowCheck != nil {
            windowBreach = windowCheck?.endMessage().breach.map {
                WebSocketViolation(.windowExceeded, offset: $0.offset, windowMessage($0))
            }
        }
        guard compressedInMessage > 0, !endedWithFinalBlock else {
            // The next message is a new DEFLATE stream, which may refer back to this one.
            if endedWithFinalBlock { stream.restartKeepingWindow() }
            endMessage()
            return []
        }
        let tail = Self.trailer.withUnsafeBytes { bytes in
            Result { () throws(WebSocketViolation) in try run(bytes, isTrailer: true, chunkSize: chunkSize, sink: sink) }
        }
        let output = try tail.get()
        guard atBlockBoundary else {
            let offset = compressedInMessage
            abandonMessage()
            throw WebSocketViolation(
                .invalidCompressedData, offset: offset,
                "compressed message ends inside a DEFLATE block after \(offset) bytes (RFC 7692 §7.2.1: it must end with a flushed block)")
        }
        endMessage()
        return output
    }

    /// With `chunkSize` > 0, what inflates goes to `sink` in pieces of at most that size and nothing
    /// is returned; otherwise it is returned whole.
    private func run(
        _ input: UnsafeRawBufferPointer, isTrailer: Bool, chunkSize: Int = 0, sink: (UnsafeRawBufferPointer) -> Void = { _ in }
    ) throws(WebSocketViolation) -> [UInt8] {
        if !isTrailer { windowCheck?.feed(input) }
        let chunked = chunkSize > 0
        let stream = self.stream.pointer
        // What this call may produce: the rest of the message's allowance plus one byte. Inflating into
        // that byte is how we learn the limit was passed, without ever producing (or allocating) more.
        let remaining = maxInflatedSize - inflatedInMessage
        let allowance = remaining == Int.max ? remaining : remaining + 1
        // Start near the size the input suggests and grow geometrically, so that small messages and
        // frames fed a byte at a time stay cheap. With a sink, it grows to one chunk, then is reused.
        let initialCapacity = min(allowance, chunked ? chunkSize : Int.max, max(Self.initialOutputChunk, input.count * 4))
        let output: ZlibOutput
        if let kept = keptOutput.take() {
            kept.start(capacity: initialCapacity)
            output = kept
        } else {
            output = ZlibOutput(capacity: initialCapacity)
        }
        defer { if output.allocatedBytes <= Self.keptOutputLimit { keptOutput = output } }
        largestOutputCapacity = max(largestOutputCapacity, output.allocatedBytes)
        var offset = 0
        defer {
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
        }
        repeat {
            // avail_in is 32 bits wide: feed larger payloads in slices.
            let sliceLength = min(input.count - offset, 1 << 30)
            stream.pointee.next_in =
                sliceLength == 0
                ? nil : UnsafeMutablePointer(mutating: input.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(sliceLength)
            offset += sliceLength

            while true {
                if output.free == 0, chunked, output.capacity >= min(chunkSize, allowance) {
                    // The chunk is full: handed on, and reused.
                    sink(UnsafeRawBufferPointer(start: output.base, count: output.count))
                    inflatedInMessage += output.count
                    output.count = 0
                } else if output.free == 0 {
                    output.grow(to: min(output.capacity * 2, allowance, chunked ? chunkSize : Int.max))
                    largestOutputCapacity = max(largestOutputCapacity, output.allocatedBytes)
                }
                let inputBefore = Int(stream.pointee.avail_in)
                let space = min(output.free, 1 << 30)
                stream.pointee.next_out = output.end
                stream.pointee.avail_out = uInt(space)
                // Z_BLOCK rather than Z_SYNC_FLUSH: inflate then stops at each block boundary and reports it
                // in data_type, which is how finishMessage() knows the message ended on one.
                let result = CZlib.inflate(stream, Z_BLOCK)
                let produced = space - Int(stream.pointee.avail_out)
                output.count += produced
                let consumed = inputBefore - Int(stream.pointee.avail_in)
                if !isTrailer { compressedInMessage += consumed }
                let progressed = consumed > 0 || produced > 0
                if progressed {
                    // zlib.h: data_type has 128 added when inflate returned right after the end of a block.
                    atBlockBoundary = stream.pointee.data_type & 128 != 0
                    // With Z_BLOCK zlib stops right after the final block's end (data_type: 64 for
                    // the last block, 128 for its end) and reports the stream's end only on the next call.
                    // (Also when no input was read: the final block's end may lie in bits zlib
                    // already holds, reached once a full output buffer has been grown.)
                    if !isTrailer {
                        endedWithFinalBlock = result == Z_STREAM_END || stream.pointee.data_type & 192 == 192
                    }
                }
                if inflatedInMessage + output.count > maxInflatedSize {
                    throw fail(
                        .inflatedTooLarge,
                        "compressed message inflates to more than the limit of \(maxInflatedSize) bytes")
                }

                switch result {
                case Z_OK, Z_BUF_ERROR:
                    break
                case Z_STREAM_END:
                    // A block with BFINAL set ends the deflate stream (RFC 7692 §7.2.3.4). Whatever follows,
                    // such as the empty stored block of §7.2.1, starts a new one, which may still refer
                    // to the bytes before it (§7.2.2; without context takeover the window goes at the
                    // message's end anyway).
                    self.stream.restartKeepingWindow()
                    atBlockBoundary = true
                default:
                    let reason = self.stream.lastErrorMessage ?? "zlib error \(result)"
                    // A reference beyond the window, which zlib finds only when the bytes it names
                    // have left its output for its window: the window check knows the cause.
                    if reason.contains("too far back"), let breach = windowCheck?.breach {
                        throw fail(.windowExceeded, windowMessage(breach))
                    }
                    throw fail(.invalidCompressedData, "compressed message does not inflate: \(reason)")
                }

                let inputLeft = stream.pointee.avail_in > 0
                let outputFull = stream.pointee.avail_out == 0
                if !inputLeft && !outputFull { break }
                if !progressed && result != Z_STREAM_END && !outputFull {
                    throw fail(.invalidCompressedData, "compressed message does not inflate: zlib made no progress")
                }
            }
        } while offset < input.count

        inflatedInMessage += output.count
        if chunked {
            if output.count > 0 { sink(UnsafeRawBufferPointer(start: output.base, count: output.count)) }
            return []
        }
        return output.bytes()
    }
}

@available(*, unavailable)
extension PerMessageDeflateDecompressor: Sendable {}
