internal import CZlib

/// Compresses whole messages for one direction of a permessage-deflate connection (RFC 7692 §7.2.1),
/// keeping the LZ77 window from one message to the next unless the agreement says otherwise.
///
/// One instance per connection and direction, fed messages in the order they are sent: with context
/// takeover each message may refer back to the ones before it, so the peer must inflate them in the same
/// order.
///
/// Not `Sendable`: it owns a zlib stream that must never be used from two threads at once. Create it
/// where it is used (a channel handler, an actor, a task), or hand it over with `sending`.
public final class PerMessageDeflateCompressor {
    /// zlib's own default level (`Z_DEFAULT_COMPRESSION`, level 6): its compromise between speed and
    /// size, and what most WebSocket libraries built on zlib use.
    public static let defaultCompressionLevel = 6
    /// zlib's default memory level: 128 KiB of match state on top of the window, the usual trade
    /// between memory and speed.
    public static let defaultMemoryLevel = 8

    /// The settings this compressor was made for.
    public let settings: PerMessageDeflateDirection
    private let stream: ZlibStream

    /// - Parameters:
    ///   - settings: the sending direction of the agreement: ``PerMessageDeflateParameters/serverToClient``
    ///     for a server, ``PerMessageDeflateParameters/clientToServer`` for a client. The default is the
    ///     RFC's unnegotiated case, a 32 KiB window with context takeover.
    ///   - compressionLevel: 0 (store only) to 9 (smallest), default ``defaultCompressionLevel``.
    ///   - memoryLevel: 1 to 9, default ``defaultMemoryLevel``.
    /// - Precondition: the levels are in range.
    public init(
        _ settings: PerMessageDeflateDirection = PerMessageDeflateDirection(),
        compressionLevel: Int = PerMessageDeflateCompressor.defaultCompressionLevel,
        memoryLevel: Int = PerMessageDeflateCompressor.defaultMemoryLevel
    ) {
        precondition((0...9).contains(compressionLevel), "compression level must be 0-9, got \(compressionLevel)")
        precondition((1...9).contains(memoryLevel), "memory level must be 1-9, got \(memoryLevel)")
        self.settings = settings
        // zlib cannot produce a raw deflate stream with an 8-bit window: deflateInit2 rejects -8 (zlib
        // 1.2.9 and later). Where 8 was agreed we deflate with 9, as zlib-based servers do. The peer can
        // still inflate it with 256 bytes of history, because zlib never emits a match distance beyond the
        // window size minus 262 bytes (MAX_DIST in deflate.h), which for 9 bits is 250.
        let windowBits = max(settings.windowBits, 9)
        self.stream = ZlibStream(deflateWindowBits: windowBits, level: compressionLevel, memoryLevel: memoryLevel)
    }

    /// Compresses one whole message and returns the payload to send with RSV1 set.
    ///
    /// The data is deflated and flushed to a byte boundary with an empty stored block, whose
    /// `00 00 ff ff` tail is then removed (RFC 7692 §7.2.1). An empty message becomes the single byte
    /// `00`. With `noContextTakeover` the window is cleared afterwards, so the next message stands alone.
    public func compress(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        var output = stream.deflateSyncFlush(message)
        if output.isEmpty {
            // zlib emits nothing for a second flush without new input, as for an empty message after
            // another one: write the empty stored block (00 00 00 ff ff) it would have produced.
            output = [0x00, 0x00, 0x00, 0xFF, 0xFF]
        }
        // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
        precondition(output.count >= 4 && output.suffix(4).elementsEqual([0x00, 0x00, 0xFF, 0xFF]), "zlib sync flush without marker")
        output.removeLast(4)
        if settings.noContextTakeover { stream.reset() }
        return output
    }

    /// Compresses one whole message; see ``compress(_:)-(UnsafeRawBufferPointer)``.
    public func compress(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { compress($0) }
    }

    /// Compresses a single message with a fresh window, as the first message of a connection or any
    /// message sent without context takeover; for `wsctl encode` and other one-off uses.
    public static func compressStandalone(
        _ message: [UInt8], windowBits: Int = 15,
        compressionLevel: Int = PerMessageDeflateCompressor.defaultCompressionLevel
    ) -> [UInt8] {
        PerMessageDeflateCompressor(PerMessageDeflateDirection(windowBits: windowBits), compressionLevel: compressionLevel)
            .compress(message)
    }

    /// Forgets the window, as if no message had been compressed yet. Needed only after giving up on a
    /// message the peer never saw; ``PerMessageDeflateDirection/noContextTakeover`` resets by itself.
    public func reset() {
        stream.reset()
    }
}

@available(*, unavailable)
extension PerMessageDeflateCompressor: Sendable {}
