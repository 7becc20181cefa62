import Testing
import WebSocketCodec
@testable import WebSocketCompression

@Suite("permessage-deflate compress and inflate")
struct PerMessageDeflateCompressionTests {
    private let hello = Array("Hello".utf8)

    // MARK: RFC 7692 §7.2.3 examples

    @Test("§7.2.3.1: \"Hello\" compresses to f2 48 cd c9 c9 07 00")
    func helloCompresses() {
        let compressor = PerMessageDeflateCompressor()
        #expect(compressor.compress(hello) == deflateHex("f2 48 cd c9 c9 07 00"))
    }

    @Test("§7.2.3.2: the second \"Hello\" with context takeover is f2 00 11 00 00")
    func secondHelloUsesTheWindow() {
        let compressor = PerMessageDeflateCompressor()
        _ = compressor.compress(hello)
        #expect(compressor.compress(hello) == deflateHex("f2 00 11 00 00"))
    }

    @Test("§7.2.3.2: without context takeover every \"Hello\" compresses alone")
    func noContextTakeoverCompressesAlone() {
        let compressor = PerMessageDeflateCompressor(PerMessageDeflateDirection(noContextTakeover: true))
        #expect(compressor.compress(hello) == deflateHex("f2 48 cd c9 c9 07 00"))
        #expect(compressor.compress(hello) == deflateHex("f2 48 cd c9 c9 07 00"))
    }

    @Test("§7.2.3.1, §7.2.3.2: both messages inflate in order with context takeover")
    func helloInflatesWithContextTakeover() throws {
        let decompressor = PerMessageDeflateDecompressor()
        #expect(try decompressor.inflateMessage(deflateHex("f2 48 cd c9 c9 07 00")) == hello)
        // refers back 5 bytes into the previous message
        #expect(try decompressor.inflateMessage(deflateHex("f2 00 11 00 00")) == hello)
    }

    /// §7.2.3.4 lets a message end with a BFINAL block (plus one 0x00); the next message may still
    /// refer back to it with context takeover (§7.2.2). zlib clears its window when a DEFLATE stream
    /// ends, so the decompressor puts it back. (Made with Python's zlib: Z_FINISH, then 0x00; the
    /// second compressed with the first as its dictionary.)
    @Test("§7.2.3.4, §7.2.2: a message after one that ended with BFINAL still refers back to it")
    func windowSurvivesABFINALBlock() throws {
        let first = Array(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 3).utf8)
        let second = Array("The quick brown fox jumps over the lazy dog. again".utf8)
        let decompressor = PerMessageDeflateDecompressor()
        #expect(try decompressor.inflateMessage(deflateHex(
            "0bc94855282ccd4cce56482aca2fcf5348cbaf50c82acd2d2856c82f4b2d5228014ae72456552aa4e4a7eb2984d04c310000")) == first)
        #expect(try decompressor.inflateMessage(deflateHex("234971627a62661e0000")) == second)
        // Without the first message's window it cannot inflate.
        let fresh = PerMessageDeflateDecompressor()
        let error = deflateViolation { _ = try fresh.inflateMessage(deflateHex("234971627a62661e0000")) }
        #expect(error?.rule == .invalidCompressedData)
    }

    @Test("§7.2.3.2: the second message cannot inflate without the first one's window")
    func secondHelloNeedsTheWindow() {
        let fresh = PerMessageDeflateDecompressor()
        let error = deflateViolation { _ = try fresh.inflateMessage(deflateHex("f2 00 11 00 00")) }
        #expect(error?.rule == .invalidCompressedData)

        // The same when the sender promised no context takeover: the decompressor must have reset.
        let reset = PerMessageDeflateDecompressor(PerMessageDeflateDirection(noContextTakeover: true))
        #expect((try? reset.inflateMessage(deflateHex("f2 48 cd c9 c9 07 00"))) == hello)
        let afterReset = deflateViolation { _ = try reset.inflateMessage(deflateHex("f2 00 11 00 00")) }
        #expect(afterReset?.rule == .invalidCompressedData)
    }

    @Test("§7.2.3.1: the fragmented \"Hello\" (f2 48 cd | c9 c9 07 00) inflates frame by frame")
    func fragmentedHello() throws {
        let decompressor = PerMessageDeflateDecompressor()
        var message = try decompressor.inflate(deflateHex("f2 48 cd"))
        message += try decompressor.inflate(deflateHex("c9 c9 07 00"))
        message += try decompressor.finishMessage()
        #expect(message == hello)
    }

    @Test("§7.2.3.3: a block with no compression, 00 05 00 fa ff 48 65 6c 6c 6f 00")
    func storedBlock() throws {
        #expect(try PerMessageDeflateDecompressor.inflateStandalone(deflateHex("00 05 00 fa ff 48 65 6c 6c 6f 00")) == hello)
    }

    @Test("§7.2.3.4: a block with BFINAL set, then the next message still inflates")
    func finalBlock() throws {
        let decompressor = PerMessageDeflateDecompressor()
        // "Hello" in a final fixed-Huffman block, then the empty stored block of §7.2.1 minus its tail
        #expect(try decompressor.inflateMessage(deflateHex("f3 48 cd c9 c9 07 00 00")) == hello)
        #expect(try decompressor.inflateMessage(deflateHex("f2 48 cd c9 c9 07 00")) == hello)
    }

    /// zlib's Z_FINISH ends a message with the BFINAL block alone, without §7.2.3.4's extra 0x00:
    /// the DEFLATE stream is complete, so the message inflates (the appended tail is never read),
    /// and the next message, fed whole or frame by frame, still refers back to it.
    @Test("§7.2.3.4: a message that ends with its BFINAL block, without the extra 0x00")
    func finalBlockWithoutTheExtraByte() throws {
        let decompressor = PerMessageDeflateDecompressor()
        #expect(try decompressor.inflateMessage(deflateHex("f3 48 cd c9 c9 07 00")) == hello)
        #expect(try decompressor.inflateMessage(deflateHex("f2 00 11 00 00")) == hello)  // refers back 5 bytes
        var pieces = try decompressor.inflate(deflateHex("f3 48 cd"))
        pieces += try decompressor.inflate(deflateHex("c9 c9 07 00"))
        pieces += try decompressor.finishMessage()
        #expect(pieces == hello)
        // 4,101 × "a" (zlib level 6, Z_FINISH): 21 bytes that inflate past the first output
        // buffer, so the final block ends on a call that reads no input (its last bits are in
        // zlib's bit buffer already).
        let long = deflateHex("edc18100000000c320d6f94b1ce455010000001706")
        #expect(try decompressor.inflateMessage(long) == Array(repeating: UInt8(ascii: "a"), count: 4_101))
        var split = try decompressor.inflate(Array(long[..<11]))
        split += try decompressor.inflate(Array(long[11...]))
        split += try decompressor.finishMessage()
        #expect(split == Array(repeating: UInt8(ascii: "a"), count: 4_101))
        // Bytes after the final block are a new stream, which must itself end on a block boundary.
        let cut = deflateViolation { _ = try decompressor.inflateMessage(deflateHex("f3 48 cd c9 c9 07 00 f2 48")) }
        #expect(cut?.rule == .invalidCompressedData)
    }

    @Test("§7.2.3.5: two DEFLATE blocks in one message")
    func twoBlocks() throws {
        // "He" flushed with an empty stored block, then "llo"
        let payload = deflateHex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00")
        #expect(try PerMessageDeflateDecompressor.inflateStandalone(payload) == hello)
    }

    @Test("an empty message compresses to 00, and 00 or nothing inflates to an empty message")
    func emptyMessage() throws {
        #expect(PerMessageDeflateCompressor().compress([]) == [0x00])
        // also after another message, when zlib has nothing left to flush
        let compressor = PerMessageDeflateCompressor()
        let decompressor = PerMessageDeflateDecompressor()
        for message in [hello, [], [], hello] {
            #expect(try decompressor.inflateMessage(compressor.compress(message)) == message)
        }
        #expect(compressor.compress([]) == [0x00])
        #expect(try PerMessageDeflateDecompressor.inflateStandalone([0x00]) == [])
        #expect(try PerMessageDeflateDecompressor.inflateStandalone([]) == [])
    }

    // MARK: Round trips

    @Test("round trip, every window size, with and without context takeover", arguments: 8...15, [false, true])
    func roundTrip(windowBits: Int, noContextTakeover: Bool) throws {
        let settings = PerMessageDeflateDirection(windowBits: windowBits, noContextTakeover: noContextTakeover)
        let compressor = PerMessageDeflateCompressor(settings)
        let decompressor = PerMessageDeflateDecompressor(settings)
        // Inflating with exactly the agreed window shows the sender kept to it where zlib can tell, in
        // references to earlier messages (for 8: the 9-bit deflate never reaches back more than 256 bytes).
        let strict = PerMessageDeflateDecompressor(settings, maxInflatedSize: 1 << 30, zlibWindowBits: windowBits)
        for message in deflateSampleMessages() + deflateSampleMessages() {
            let compressed = compressor.compress(message)
            #expect(try decompressor.inflateMessage(compressed) == message)
            #expect(try strict.inflateMessage(compressed) == message)
        }
    }

    @Test("the window size is honoured: a repeat 3000 bytes back, in the previous message, needs more than 9 bits")
    func windowSizeMatters() throws {
        // zlib checks distances against its window only where the history is not in the current output
        // buffer, so the repeat is put in the next message: then only the window can hold it.
        var rng = DeflateTestRNG(seed: 1)
        let block = rng.bytes(3000)
        let compressor = PerMessageDeflateCompressor()
        let first = compressor.compress(block)
        let second = compressor.compress(block)
        #expect(second.count < 100, "the repeat should have been found")

        let wide = PerMessageDeflateDecompressor()
        #expect(try wide.inflateMessage(first) == block)
        #expect(try wide.inflateMessage(second) == block)

        let narrow = PerMessageDeflateDecompressor(
            PerMessageDeflateDirection(windowBits: 9), maxInflatedSize: 1 << 20, zlibWindowBits: 9)
        #expect(try narrow.inflateMessage(first) == block)
        let error = deflateViolation { _ = try narrow.inflateMessage(second) }
        #expect(error?.rule == .invalidCompressedData)
        #expect(error?.message.contains("too far back") == true)
    }

    @Test("context takeover makes a repeated message smaller; its absence does not", arguments: [false, true])
    func contextTakeoverShrinksRepeats(noContextTakeover: Bool) {
        let message = deflateSampleMessages()[2]
        let compressor = PerMessageDeflateCompressor(PerMessageDeflateDirection(noContextTakeover: noContextTakeover))
        let first = compressor.compress(message)
        let second = compressor.compress(message)
        if noContextTakeover {
            #expect(second == first)
        } else {
            // deflate matches at most 258 bytes, so a repeat still costs about 3 bytes per 258
            #expect(second.count * 3 < first.count)
        }
    }

    @Test("a 1 MiB incompressible message round-trips", arguments: [1, 9])
    func largeIncompressible(level: Int) throws {
        var rng = DeflateTestRNG(seed: 99)
        let message = rng.bytes(1 << 20)
        let compressed = PerMessageDeflateCompressor(compressionLevel: level).compress(message)
        #expect(try PerMessageDeflateDecompressor.inflateStandalone(compressed) == message)
    }

    @Test("a message fed in pieces, down to one byte, inflates to the same bytes", arguments: [1, 7, 1000, 65_536])
    func multiChunkInflate(pieceSize: Int) throws {
        let compressor = PerMessageDeflateCompressor()
        let decompressor = PerMessageDeflateDecompressor()
        for message in deflateSampleMessages() {
            let compressed = compressor.compress(message)
            var inflated: [UInt8] = []
            var start = 0
            while start < compressed.count {
                let end = min(start + pieceSize, compressed.count)
                inflated += try decompressor.inflate(Array(compressed[start..<end]))
                inflated += try decompressor.inflate([])  // an empty continuation frame changes nothing
                start = end
            }
            inflated += try decompressor.finishMessage()
            #expect(inflated == message)
        }
    }

    @Test("a message split into random pieces inflates to the same bytes")
    func randomPieces() throws {
        var rng = DeflateTestRNG(seed: 42)
        let compressor = PerMessageDeflateCompressor()
        let decompressor = PerMessageDeflateDecompressor()
        for _ in 0..<5 {
            for message in deflateSampleMessages() {
                let compressed = compressor.compress(message)
                var inflated: [UInt8] = []
                var start = 0
                while start < compressed.count {
                    let end = min(start + Int(rng.next() % 300), compressed.count)
                    inflated += try decompressor.inflate(Array(compressed[start..<end]))
                    start = end
                }
                inflated += try decompressor.finishMessage()
                #expect(inflated == message)
            }
        }
    }

    // MARK: Limits

    @Test("an inflate bomb (10 MiB of zeros) stops at a 1 MiB limit without allocating more", arguments: [0, 1024])
    func inflateBomb(pieceSize: Int) throws {
        let zeros = [UInt8](repeating: 0, count: 10 << 20)
        let bomb = PerMessageDeflateCompressor(compressionLevel: 9).compress(zeros)
        #expect(bomb.count < 16 << 10, "10 MiB of zeros should compress to a few KB, got \(bomb.count)")

        let limit = 1 << 20
        let decompressor = PerMessageDeflateDecompressor(maxInflatedSize: limit)
        let error = deflateViolation {
            if pieceSize == 0 {
                _ = try decompressor.inflateMessage(bomb)
            } else {
                var start = 0
                while start < bomb.count {
                    _ = try decompressor.inflate(Array(bomb[start..<min(start + pieceSize, bomb.count)]))
                    start += pieceSize
                }
                _ = try decompressor.finishMessage()
            }
        }
        #expect(error?.rule == .inflatedTooLarge)
        #expect(error?.closeCode == .messageTooBig)
        #expect(decompressor.largestOutputCapacity > 0)
        #expect(decompressor.largestOutputCapacity <= limit + (64 << 10))
    }

    @Test("a decompressor reuses its output buffer: messages of changing sizes inflate exactly, chunked or whole, and the limit still counts")
    func outputBufferReuse() throws {
        // Sizes around the kept buffer's limit (4 KiB) and the first buffer's (256 bytes), in an
        // order that reuses a larger buffer for a smaller message and grows a kept one.
        var rng = DeflateTestRNG(seed: 6455)
        let sizes = [0, 300, 5, 4096, 10, 4097, 255, 70_000, 257, 1, 3000, 0, 9000, 40]
        let messages = sizes.map { n in (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() % 7 &+ 97) } }
        let compressor = PerMessageDeflateCompressor()
        let compressed = messages.map { compressor.compress($0) }
        // One decompressor for every way of calling it, taking turns message by message: a buffer
        // kept from a whole message is then reused for one handed on in chunks of 100 bytes.
        let chunkSizes = [0, 100, 1 << 16]
        for start in 0..<chunkSizes.count {
            let decompressor = PerMessageDeflateDecompressor()
            for (index, (message, payload)) in zip(messages, compressed).enumerated() {
                let chunkSize = chunkSizes[(start + index) % chunkSizes.count]
                var out: [UInt8] = []
                if chunkSize == 0 {
                    out = try decompressor.inflateMessage(payload)
                } else {
                    var pieces: [Int] = []
                    try inflateChunked(decompressor, payload, chunkSize: chunkSize) { piece in
                        pieces.append(piece.count)
                        out.append(contentsOf: piece)
                    }
                    try decompressor.finishMessage(chunkSize: chunkSize) { piece in
                        pieces.append(piece.count)
                        out.append(contentsOf: piece)
                    }
                    #expect(pieces.allSatisfy { $0 <= chunkSize }, "pieces \(pieces) for chunks of \(chunkSize)")
                }
                #expect(out == message, "chunk size \(chunkSize), message of \(message.count) bytes")
            }
        }
        // A limit below the kept buffer's size: the buffer's spare room does not let more through.
        let limit = 100
        let small = PerMessageDeflateDecompressor(maxInflatedSize: limit)
        let fits = Array(messages[1].prefix(limit))
        #expect(try small.inflateMessage(PerMessageDeflateCompressor.compressStandalone(fits)) == fits)
        var handedOn = 0
        let error = deflateViolation {
            try inflateChunked(small, PerMessageDeflateCompressor.compressStandalone(messages[1]), chunkSize: 64) { handedOn += $0.count }
            try small.finishMessage(chunkSize: 64) { handedOn += $0.count }
        }
        #expect(error?.rule == .inflatedTooLarge)
        #expect(handedOn <= limit)
    }

    /// `inflate(_:chunkSize:_:)` on a copy of `payload` (written inside `payload.withUnsafeBytes`
    /// with typed throws, the test module crashed the compiler, signal 11).
    private func inflateChunked(_ d: PerMessageDeflateDecompressor, _ payload: [UInt8], chunkSize: Int,
                                _ sink: (UnsafeRawBufferPointer) -> Void) throws {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: payload.count, alignment: 1)
        defer { bytes.deallocate() }
        bytes.copyMemory(from: UnsafeRawBufferPointer(start: payload, count: payload.count))
        try d.inflate(UnsafeRawBufferPointer(bytes), chunkSize: chunkSize, sink)
    }

    @Test("the limit counts the whole message: exactly the limit passes, one byte more fails")
    func limitBoundary() throws {
        let message = deflateSampleMessages()[2]
        let compressed = PerMessageDeflateCompressor.compressStandalone(message)
        let exact = PerMessageDeflateDecompressor(maxInflatedSize: message.count)
        #expect(try exact.inflateMessage(compressed) == message)
        #expect(try exact.inflateMessage(PerMessageDeflateCompressor.compressStandalone(message)) == message)

        let tooSmall = PerMessageDeflateDecompressor(maxInflatedSize: message.count - 1)
        let error = deflateViolation {
            // fed in two frames, each under the limit on its own
            let half = compressed.count / 2
            _ = try tooSmall.inflate(Array(compressed[..<half]))
            _ = try tooSmall.inflate(Array(compressed[half...]))
            _ = try tooSmall.finishMessage()
        }
        #expect(error?.rule == .inflatedTooLarge)
        // after the error the decompressor starts afresh
        #expect(try tooSmall.inflateMessage(deflateHex("f2 48 cd c9 c9 07 00")) == hello)
    }

    // MARK: Broken input

    @Test(
        "broken compressed data is invalidCompressedData (close 1007)",
        arguments: [
            "07",  // BFINAL 1, BTYPE 11: a reserved block type
            "ff ff ff ff",
            "00 05 00 00 00 48 65 6c 6c 6f 00",  // stored block whose NLEN is not the complement of LEN
            "f2 48 cd",  // cut short inside a block
            "f2 00 11 00 00",  // refers to history that does not exist
        ])
    func garbage(hex: String) {
        let decompressor = PerMessageDeflateDecompressor()
        let error = deflateViolation { _ = try decompressor.inflateMessage(deflateHex(hex)) }
        #expect(error?.rule == .invalidCompressedData)
        #expect(error?.closeCode == .invalidFramePayloadData)
        #expect((try? decompressor.inflateMessage(deflateHex("f2 48 cd c9 c9 07 00"))) == hello)
    }

    @Test("random bytes never crash and fail as invalidCompressedData or inflate")
    func randomGarbage() {
        var rng = DeflateTestRNG(seed: 5)
        var failures = 0
        for _ in 0..<200 {
            let payload = rng.bytes(Int(rng.next() % 64) + 1)
            let error = deflateViolation { _ = try PerMessageDeflateDecompressor.inflateStandalone(payload, maxInflatedSize: 1 << 20) }
            if let error {
                #expect(error.rule == .invalidCompressedData || error.rule == .inflatedTooLarge)
                failures += 1
            }
        }
        #expect(failures > 150)
    }

    @Test("the offset of a violation counts compressed bytes into the message")
    func violationOffset() {
        let decompressor = PerMessageDeflateDecompressor()
        let error = deflateViolation {
            _ = try decompressor.inflate(deflateHex("00 05 00 fa ff 48"))
            _ = try decompressor.inflate(deflateHex("65 6c 6c 6f 07"))  // stored "Hello", then a reserved block type
            _ = try decompressor.finishMessage()
        }
        #expect(error?.rule == .invalidCompressedData)
        #expect(error?.offset == 11)
    }
}
