import Testing
import WebSocketCodec
@testable import WebSocketCompression

/// `DeflateWindowCheck` reads DEFLATE itself to find back-references beyond an agreed window
/// (RFC 7692 §7.1.2). It is held to zlib: on everything zlib compresses it must count the same
/// inflated length, and never see a breach where zlib kept to the window.
@Suite struct DeflateWindowCheckTests {
    /// Messages with repeats near and far (up to 40,000 bytes back, beyond any window), some of
    /// them random bytes (stored blocks), short ones (fixed codes) and long ones (dynamic codes).
    static func messages(seed: UInt64, count: Int, farthest: Int = 40_000) -> [[UInt8]] {
        var rng = DeflateTestRNG(seed: seed)
        var history: [UInt8] = []
        var out: [[UInt8]] = []
        let words = ["alpha ", "beta ", "gamma ", "{\"type\":\"chat\",", "\"id\":", "0123456789", "\u{65e5}\u{672c} "]
        for _ in 0..<count {
            let length = [0, 1, 5, 40, 300, 2_000, 9_000, 30_000].randomElement(using: &rng)!
            var m: [UInt8] = []
            while m.count < length {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:
                    m += Array(words.randomElement(using: &rng)!.utf8)
                case 1:
                    let n = Int.random(in: 1...64, using: &rng)
                    m += (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                default:
                    let all = history + m
                    guard all.count > 10 else { continue }
                    let back = Int.random(in: 3...min(all.count, farthest), using: &rng)
                    let n = Int.random(in: 3...min(back, 300), using: &rng)
                    m += all[(all.count - back)..<(all.count - back + n)]
                }
            }
            m = Array(m.prefix(length))
            out.append(m)
            history += m
            if history.count > 80_000 { history.removeFirst(history.count - 80_000) }
        }
        return out
    }

    /// zlib never refers beyond the window it deflates with: with that window agreed, no breach,
    /// and the check counts every byte zlib inflates, with context taken over from message to
    /// message (references into earlier messages) and at every level (0 stores).
    @Test(arguments: [9, 10, 11, 12, 13, 14])
    func noBreachWhereZlibKeptToTheWindow(windowBits: Int) {
        for level in [0, 1, 6, 9] {
            let settings = PerMessageDeflateDirection(windowBits: windowBits)
            let compressor = PerMessageDeflateCompressor(settings, compressionLevel: level)
            let decompressor = PerMessageDeflateDecompressor(settings, checkingWindow: true)
            var check = DeflateWindowCheck(windowBits: windowBits)
            for (i, message) in Self.messages(seed: UInt64(windowBits * 10 + level), count: 40).enumerated() {
                let payload = compressor.compress(message)
                payload.withUnsafeBytes { check.feed($0) }
                let (breach, inflated) = check.endMessage()
                #expect(breach == nil, "window \(windowBits) level \(level) message \(i): \(String(describing: breach))")
                #expect(inflated == message.count, "window \(windowBits) level \(level) message \(i)")
                #expect((try? decompressor.inflateMessage(payload)) == message)
                #expect(decompressor.windowBreach == nil)
            }
        }
    }

    /// `count` bytes in which no three in a row occur twice: nothing in them to refer back to.
    static func unrepeated(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = DeflateTestRNG(seed: seed)
        var seen = Set<Int>()
        var out: [UInt8] = [UInt8.random(in: 0...255, using: &rng), UInt8.random(in: 0...255, using: &rng)]
        while out.count < count {
            let b = UInt8.random(in: 0...255, using: &rng)
            let trigram = Int(out[out.count - 2]) << 16 | Int(out[out.count - 1]) << 8 | Int(b)
            if seen.insert(trigram).inserted { out.append(b) }
        }
        return out
    }

    /// A message deflated with a 32 KiB window that repeats 3,000 bytes: the copy refers 3,000
    /// bytes back. Agreed 10 bits (1,024 bytes), that is a breach at inflated byte 3,001, which
    /// zlib, inflating with 10 bits, lets through (the bytes are in its output); agreed 12 bits
    /// (4,096 bytes), it is not.
    @Test func findsAReferenceBeyondTheWindow() throws {
        let part = Self.unrepeated(3_000, seed: 7)
        let payload = PerMessageDeflateCompressor().compress(part + part)
        var check = DeflateWindowCheck(windowBits: 10)
        payload.withUnsafeBytes { check.feed($0) }
        let (breach, _) = check.endMessage()
        // (zlib never refers back to the first byte of its stream, which its hash chains use as
        // their end: the copy starts with the second byte, 3,001 bytes in.)
        #expect(breach?.distance == 3_000)
        #expect(breach?.at == 3_001)
        #expect(breach.map { $0.offset > 0 && $0.offset < payload.count } == true)

        let agreed10 = PerMessageDeflateDirection(windowBits: 10)
        let d = PerMessageDeflateDecompressor(agreed10, checkingWindow: true)
        #expect(try d.inflateMessage(payload) == part + part)
        let v = try #require(d.windowBreach)
        #expect(v.rule == .windowExceeded)
        #expect(v.closeCode.code == 1002)
        #expect(v.message.contains("3000 bytes back") && v.message.contains("1024-byte window"), "\(v.message)")
        // The next message, within the window, clears it.
        #expect(try d.inflateMessage(PerMessageDeflateCompressor(agreed10).compress(Array("short".utf8))) == Array("short".utf8))
        #expect(d.windowBreach == nil)

        // Not asked to check, or a window long enough: nothing.
        let unchecked = PerMessageDeflateDecompressor(agreed10)
        #expect(try unchecked.inflateMessage(payload) == part + part)
        #expect(unchecked.windowBreach == nil)
        var wide = DeflateWindowCheck(windowBits: 12)
        payload.withUnsafeBytes { wide.feed($0) }
        #expect(wide.endMessage().breach == nil)
    }

    /// Fed in pieces of 1 to 9 bytes, or of up to 3,000 (an item cut at the end of one piece is
    /// completed from the next, whose rest is read where it lies), the verdict and the count are
    /// those of the whole message.
    /// (Checked against 11 bits most messages breach early, which ends their check; against 14,
    /// with repeats at most 12,000 bytes back, most are read to their end.)
    @Test(arguments: [(9, 11), (3_000, 11), (3_000, 14)])
    func piecesGiveTheWholeVerdict(largest: Int, windowBits: Int) {
        var rng = DeflateTestRNG(seed: 44)
        let compressor = PerMessageDeflateCompressor()
        var whole = DeflateWindowCheck(windowBits: windowBits)
        var pieces = DeflateWindowCheck(windowBits: windowBits)
        var breaches = 0
        for message in Self.messages(seed: 45, count: 60, farthest: windowBits == 11 ? 40_000 : 12_000) {
            let payload = compressor.compress(message)
            payload.withUnsafeBytes { whole.feed($0) }
            var at = 0
            while at < payload.count {
                let n = min(payload.count - at, Int.random(in: 1...largest, using: &rng))
                payload[at..<(at + n)].withUnsafeBytes { pieces.feed($0) }
                at += n
            }
            let a = whole.endMessage(), b = pieces.endMessage()
            // (The check stops at a breach: the count is then where it stopped.)
            #expect(a.inflated == b.inflated)
            if a.breach == nil { #expect(a.inflated == message.count) }
            #expect(a.breach?.distance == b.breach?.distance && a.breach?.at == b.breach?.at && a.breach?.offset == b.breach?.offset)
            if a.breach != nil { breaches += 1 }
        }
        // Deflated with 15 bits, repeats up to 40,000 bytes back breach.
        if windowBits == 11 { #expect(breaches > 10) }
    }

    /// Inflated frame by frame in small pieces, zlib's output for each call is small, so the copy
    /// 3,000 bytes back must come from its 1,024-byte window, and zlib refuses it ("invalid
    /// distance too far back"). Whether zlib notices thus depends on how the message was cut:
    /// the violation is the window's either way.
    @Test func zlibRefusingTheReferenceIsReportedAsTheWindowBreach() throws {
        let part = Self.unrepeated(3_000, seed: 7)
        let payload = PerMessageDeflateCompressor().compress(part + part)
        let d = PerMessageDeflateDecompressor(PerMessageDeflateDirection(windowBits: 10), checkingWindow: true)
        let v = deflateViolation {
            for start in stride(from: 0, to: payload.count, by: 16) {
                _ = try d.inflate(Array(payload[start..<min(start + 16, payload.count)]))
            }
            _ = try d.finishMessage()
        }
        #expect(v?.rule == .windowExceeded, "\(String(describing: v))")
        // Without the check, the same failure is zlib's.
        let plain = PerMessageDeflateDecompressor(PerMessageDeflateDirection(windowBits: 10))
        let w = deflateViolation {
            for start in stride(from: 0, to: payload.count, by: 16) {
                _ = try plain.inflate(Array(payload[start..<min(start + 16, payload.count)]))
            }
            _ = try plain.finishMessage()
        }
        #expect(w?.rule == .invalidCompressedData && w?.message.contains("too far back") == true, "\(String(describing: w))")
    }

    /// Bytes that are not DEFLATE (a reserved block type, a stored length without its
    /// complement, codes that are no codes, random bytes, real streams with bits flipped) stop
    /// the check or mislead it, but never trap it; the next message is read afresh.
    @Test func notDeflateStopsTheCheck() {
        var check = DeflateWindowCheck(windowBits: 9)
        for bad in [[0x07], [0x00, 0x05, 0x00, 0x05, 0x00], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]] as [[UInt8]] {
            bad.withUnsafeBytes { check.feed($0) }
            #expect(check.endMessage().breach == nil)
        }
        var rng = DeflateTestRNG(seed: 3)
        for _ in 0..<3_000 {
            let junk = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            junk.withUnsafeBytes { check.feed($0) }
            let (breach, _) = check.endMessage()
            if let breach { #expect(breach.distance > 512 && breach.distance <= 32_768) }
        }
        // Real streams with bits flipped, fed in pieces: wherever the damage falls (block headers,
        // code tables, codes), nothing traps.
        let compressor = PerMessageDeflateCompressor()
        for (i, message) in Self.messages(seed: 8, count: 400).enumerated() {
            var payload = compressor.compress(message)
            guard !payload.isEmpty else { continue }
            for _ in 0...(i % 4) { payload[Int.random(in: 0..<payload.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng) }
            var at = 0
            while at < payload.count {
                let n = min(payload.count - at, Int.random(in: 1...300, using: &rng))
                payload[at..<(at + n)].withUnsafeBytes { check.feed($0) }
                at += n
            }
            check.endMessage()
        }
        let payload = PerMessageDeflateCompressor(PerMessageDeflateDirection(windowBits: 9)).compress(Array("after the junk".utf8))
        payload.withUnsafeBytes { check.feed($0) }
        let after = check.endMessage()
        #expect(after.breach == nil && after.inflated == 14)
    }
}
