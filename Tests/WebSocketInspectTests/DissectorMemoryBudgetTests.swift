import Foundation
import Testing
import WebSocketCodec
import WebSocketCompression
@testable import WebSocketInspect

/// Dissectors sharing one `DissectionMemoryBudget`: a message that does not fit is shown exactly as
/// it is without one, from its first bytes, except for its envelope; memory stays within the
/// budget however many dissectors collect messages at once.
@Suite("Stream dissectors sharing a memory budget")
struct DissectorMemoryBudgetTests {
    /// A JSON envelope of about `size` bytes whose data mixes one- to four-byte characters.
    static func envelope(_ id: Int, size: Int, _ g: inout Seeded) -> [UInt8] {
        let pieces = ["a", "ç", "€", "日本", "😀", "κόσμε"]
        var body = ""
        while body.utf8.count < size { body += pieces[Int(g.next() % UInt64(pieces.count))] }
        return Array(#"{"type":"upload","correlation_id":"c\#(id)","data":"\#(body)"}"#.utf8)
    }

    /// Frames of the stream: fragmented envelopes (some over the parser's buffered-frame size),
    /// plain and compressed (one compressor: context takeover), with whole messages between them,
    /// control frames inside fragmented messages, one invalid byte deep inside a large text, and
    /// one compressed message whose inflated text is not UTF-8.
    static func stream(masked: Bool, seed: UInt64) -> [UInt8] {
        var g = Seeded(state: seed)
        let key: (() -> WebSocketMaskingKey)? = masked ? { WebSocketMaskingKey(9, 8, 7, 6) } : nil
        let compressor = PerMessageDeflateCompressor()
        var out: [UInt8] = []
        func add(_ frames: [WebSocketFrame]) { for f in frames { out += WebSocketFrameEncoder.encode(f) } }
        for i in 0..<6 {
            let text = envelope(i, size: 20_000 + Int(g.next() % 300_000), &g)
            var frames = WebSocketFrameEncoder.fragment(opcode: .text, payload: text, fragmentSize: 1_000 + Int(g.next() % 90_000), nextKey: key)
            frames.insert(WebSocketFrame(opcode: .ping, maskingKey: key?(), payload: Array("mid".utf8)), at: frames.count / 2)
            add(frames)
            add([WebSocketFrame(opcode: .text, maskingKey: key?(), payload: envelope(100 + i, size: 40, &g))])
            let squeezed = compressor.compress(envelope(200 + i, size: 30_000 + Int(g.next() % 200_000), &g))
            add(WebSocketFrameEncoder.fragment(opcode: .text, payload: squeezed, fragmentSize: 500 + Int(g.next() % 20_000),
                                               compressed: true, nextKey: key))
            add([WebSocketFrame(rsv1: true, opcode: .text, maskingKey: key?(), payload: compressor.compress(envelope(300 + i, size: 60, &g)))])
        }
        var bad = envelope(400, size: 150_000, &g)
        bad[120_000] = 0xFF
        add(WebSocketFrameEncoder.fragment(opcode: .text, payload: bad, fragmentSize: 7_000, nextKey: key))
        add(WebSocketFrameEncoder.fragment(opcode: .text, payload: compressor.compress([UInt8](repeating: 0x41, count: 90_000) + [0xC3]),
                                           fragmentSize: 50, compressed: true, nextKey: key))
        add(WebSocketFrameEncoder.fragment(opcode: .binary, payload: (0..<200_000).map { _ in UInt8(truncatingIfNeeded: g.next()) },
                                           fragmentSize: 70_000, nextKey: key))
        add([WebSocketFrame(rsv1: true, opcode: .text, maskingKey: key?(), payload: compressor.compress(Array("after all that".utf8)))])
        return out
    }

    /// Records of `bytes` fed in pieces of random size, through a dissector of `direction`.
    static func records(_ bytes: [UInt8], budget: DissectionMemoryBudget?, direction: WebSocketDirection, seed: UInt64) -> [DissectionEvent] {
        var c = WebSocketDissectorConfiguration(maxPayloadShown: 300, deflate: .on)
        c.parser.maxBufferedFrameSize = 64 << 10
        c.assembler.retainedBufferCapacity = 64 << 10
        c.messageMemory = budget
        return records(bytes, c, direction: direction, seed: seed)
    }

    /// Records of `bytes` fed in pieces of random size, through a dissector made with `c`.
    static func records(_ bytes: [UInt8], _ c: WebSocketDissectorConfiguration, direction: WebSocketDirection, seed: UInt64) -> [DissectionEvent] {
        var d = WebSocketStreamDissector(configuration: c, direction: direction)
        var g = Seeded(state: seed)
        var events: [DissectionEvent] = []
        var at = 0
        while at < bytes.count {
            let n = min(bytes.count - at, 1 + Int(g.next() % 40_000))
            d.feed(Array(bytes[at..<(at + n)])) { events.append($0) }
            at += n
        }
        d.finish { events.append($0) }
        return events
    }

    /// Feeds `bytes` in 64 KiB pieces, as segments of a stream would come, ignoring the events.
    static func feedInSegments(_ d: inout WebSocketStreamDissector, _ bytes: ArraySlice<UInt8>) {
        var at = bytes.startIndex
        while at < bytes.endIndex {
            let n = min(64 << 10, bytes.endIndex - at)
            d.feed(Array(bytes[at..<(at + n)])) { _ in }
            at += n
        }
    }

    static func render(_ e: DissectionEvent, withoutEnvelope: Bool = false) -> String {
        switch e {
        case .frame(let f): return DissectionRenderer.json(f)
        case .message(var m):
            if withoutEnvelope {
                m.envelope = nil
                m.envelopeUnchecked = false
            }
            return DissectionRenderer.json(m)
        case .resync(let r): return "resync \(r)"
        }
    }

    @Test(arguments: [(true, WebSocketDirection.clientToServer), (false, WebSocketDirection.serverToClient)])
    func messagesThatDoNotFitAreShownTheSameButForTheirEnvelope(masked: Bool, direction: WebSocketDirection) {
        let bytes = Self.stream(masked: masked, seed: masked ? 11 : 12)
        let unlimited = Self.records(bytes, budget: nil, direction: direction, seed: 5)
        let messages = unlimited.filter { if case .message = $0 { true } else { false } }
        #expect(messages.count == 28)
        // The stream holds what the test is about: envelopes, and both kinds of broken text.
        #expect(messages.filter { if case .message(let m) = $0 { m.envelope != nil } else { false } }.count == 24)
        #expect(unlimited.contains { if case .frame(let f) = $0 { f.violations.contains { $0.rule == .invalidUTF8 } } else { false } })
        #expect(messages.contains { if case .message(let m) = $0 { m.violations.contains { $0.rule == .invalidUTF8 && m.compressed } } else { false } })
        // Envelopes that have to be collected: in fragmented or compressed messages.
        let collected = messages.filter { if case .message(let m) = $0 { m.envelope != nil && (m.fragmentCount > 1 || m.compressed) } else { false } }.count
        #expect(collected > 12)
        let collectedPlain = messages.filter { if case .message(let m) = $0 { m.envelope != nil && m.fragmentCount > 1 && !m.compressed } else { false } }.count
        for limit in [0, 100_000, 400_000, 1 << 20, 1 << 30] {
            let budget = DissectionMemoryBudget(limit: limit)
            let limited = Self.records(bytes, budget: budget, direction: direction, seed: 5)
            #expect(limited.count == unlimited.count)
            var envelopesLost = 0
            var uninflated = 0
            for (l, u) in zip(limited, unlimited) {
                // With no room even for an inflater, compressed messages are shown compressed,
                // incomplete, with nothing called a violation; the rest as usual.
                if limit == 0, case .message(let lm) = l, case .message(let um) = u, um.compressed {
                    #expect(lm.incomplete && lm.text == nil && lm.violations.isEmpty && lm.length == um.length)
                    uninflated += 1
                    continue
                }
                if case .message(let lm) = l, case .message(let um) = u, lm.envelope == nil, um.envelope != nil {
                    envelopesLost += 1
                    // Said on the message: it is not that it holds no envelope.
                    #expect(lm.envelopeUnchecked, "limit \(limit)")
                }
                if case .message(let lm) = l, case .message(let um) = u, lm.envelopeUnchecked {
                    #expect(um.text != nil && !um.envelopeUnchecked)
                }
                #expect(Self.render(l, withoutEnvelope: true) == Self.render(u, withoutEnvelope: true), "limit \(limit)")
                if case .message(let lm) = l, case .message(let um) = u, let e = lm.envelope {
                    #expect(um.envelope?.correlationID == e.correlationID)
                }
            }
            // Every large message not held whole loses its envelope, and only those do.
            #expect(envelopesLost <= budget.messagesNotHeldWhole, "limit \(limit)")
            switch limit {
            case 0:
                #expect(envelopesLost == collectedPlain, "with no room, every collected envelope is lost")
                #expect(uninflated > 12 && uninflated == budget.messagesNotInflated)
            case 1 << 30: #expect(budget.messagesNotHeldWhole == 0)
            case 100_000: #expect(budget.messagesNotHeldWhole > 0)
            default: break
            }
            if limit > 0 { #expect(budget.messagesNotInflated == 0, "limit \(limit): room for the one inflater") }
            #expect(budget.held == 0, "limit \(limit): \(budget.held) bytes still held after the last message")
            #expect(budget.peak <= max(limit * 2, 0), "limit \(limit): peak \(budget.peak)")
        }
    }

    /// Damaged streams (bytes changed, bytes lost in gaps, cut short) through dissectors with
    /// little or no room: every round ends, everything taken is given back, and the budget is
    /// never over its limit by more than buffers' growth.
    @Test func damagedStreamsGiveBackWhatTheyTake() {
        var g = Seeded(state: 77)
        let clean = Self.stream(masked: false, seed: 21)
        for round in 0..<60 {
            var bytes = clean
            for _ in 0..<Int(g.next() % 6) { bytes[Int(g.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: g.next()) }
            bytes.removeLast(Int(g.next() % 5_000))
            let limit = [0, 4_096, 100_000, 1 << 20][round % 4]
            let budget = DissectionMemoryBudget(limit: limit)
            var c = WebSocketDissectorConfiguration(maxPayloadShown: 200, deflate: .on)
            c.assembler.retainedBufferCapacity = 64 << 10
            c.parser.retainedCarryCapacity = 64 << 10
            c.messageMemory = budget
            var d = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
            var at = 0
            var events = 0
            while at < bytes.count {
                let n = min(bytes.count - at, 1 + Int(g.next() % 30_000))
                if g.next() % 8 == 0 {
                    d.skip(n) { _ in events += 1 }
                } else {
                    d.feed(Array(bytes[at..<(at + n)])) { _ in events += 1 }
                }
                at += n
                #expect(budget.held <= limit + (2 << 20), "round \(round): \(budget.held) held, limit \(limit)")
            }
            d.finish { _ in events += 1 }
            #expect(events > 0)
            #expect(budget.held == 0, "round \(round): \(budget.held) bytes still held")
        }
    }

    /// A message cut off by the end of the stream while it was not held whole: shown as far as it
    /// came, incomplete, as without a budget.
    @Test func anUnfinishedMessageThatDidNotFit() {
        var g = Seeded(state: 3)
        let compressor = PerMessageDeflateCompressor()
        for compressed in [false, true] {
            let text = Self.envelope(1, size: 200_000, &g)
            let payload = compressed ? compressor.compress(text) : text
            var bytes: [UInt8] = []
            for f in WebSocketFrameEncoder.fragment(opcode: .text, payload: payload, fragmentSize: 9_000, compressed: compressed) {
                bytes += WebSocketFrameEncoder.encode(f)
            }
            bytes.removeLast(bytes.count / 3)
            let budget = DissectionMemoryBudget(limit: 10_000)
            let limited = Self.records(bytes, budget: budget, direction: .serverToClient, seed: 8)
            let unlimited = Self.records(bytes, budget: nil, direction: .serverToClient, seed: 8)
            #expect(limited.map { Self.render($0) } == unlimited.map { Self.render($0) })
            #expect(budget.messagesNotHeldWhole == 1)
            #expect(budget.held == 0)
            guard case .message(let m) = limited.last else { Issue.record("no unfinished message"); continue }
            #expect(m.incomplete)
        }
    }

    /// Small fragmented envelopes with no room at all: the part kept to show them (256 bytes) holds
    /// them whole, so their envelopes are checked and they are not counted as not held whole (they
    /// were, while the warning said they were shown without envelopes). A longer one is counted.
    @Test func aMessageTheShownPartHoldsIsWhole() {
        var bytes: [UInt8] = []
        let short = Array(#"{"type":"a","metadata":{"correlation_id":"q1"}}"#.utf8)
        for f in WebSocketFrameEncoder.fragment(opcode: .text, payload: short, fragmentSize: 20) { bytes += WebSocketFrameEncoder.encode(f) }
        let budget = DissectionMemoryBudget(limit: 0)
        let records = Self.records(bytes, budget: budget, direction: .serverToClient, seed: 5)
        guard case .message(let m) = records.last else { Issue.record("no message"); return }
        #expect(m.envelope?.type == "a" && !m.envelopeUnchecked)
        #expect(budget.messagesNotHeldWhole == 0)
        var g = Seeded(state: 9)
        let long = Self.envelope(2, size: 2_000, &g)
        var more: [UInt8] = []
        for f in WebSocketFrameEncoder.fragment(opcode: .text, payload: long, fragmentSize: 500) { more += WebSocketFrameEncoder.encode(f) }
        let counted = DissectionMemoryBudget(limit: 0)
        let longRecords = Self.records(more, budget: counted, direction: .serverToClient, seed: 5)
        guard case .message(let l) = longRecords.last else { Issue.record("no long message"); return }
        #expect(l.envelope == nil && l.envelopeUnchecked)
        #expect(counted.messagesNotHeldWhole == 1)
    }

    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * 4096
    }

    /// 200 dissectors each in the middle of a 900 KiB frame, which the parser collects whole (it
    /// is under `maxBufferedFrameSize`), sharing a 16 MiB budget: the frames that do not fit go on
    /// in pieces, and resident memory grows by far less than the 176 MiB of holding them all. The
    /// frames are shown the same either way.
    @Test func framesCollectedWholeShareTheBudget() throws {
        let budget = DissectionMemoryBudget(limit: 16 << 20)
        var c = WebSocketDissectorConfiguration(maxPayloadShown: 256)
        c.parser.retainedCarryCapacity = 64 << 10
        c.messageMemory = budget
        var g = Seeded(state: 4)
        let payload = (0..<(900 << 10)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let frame = WebSocketFrameEncoder.encode(WebSocketFrame(opcode: .binary, maskingKey: WebSocketMaskingKey(1, 2, 3, 4), payload: payload))
        let before = Self.residentBytes()
        var dissectors: [WebSocketStreamDissector] = []
        for _ in 0..<200 {
            var d = WebSocketStreamDissector(configuration: c, direction: .clientToServer)
            Self.feedInSegments(&d, frame[..<(frame.count - 1000)])
            dissectors.append(d)
        }
        let grown = Self.residentBytes() - before
        #expect(grown < 80 << 20, "resident memory grew by \(grown >> 20) MiB for 200 dissectors")
        #expect(budget.held <= 17 << 20)
        var unlimited = WebSocketStreamDissector(configuration: .init(maxPayloadShown: 256), direction: .clientToServer)
        var expected: [String] = []
        unlimited.feed(frame) { expected.append(Self.render($0)) }
        for i in dissectors.indices {
            var got: [String] = []
            dissectors[i].feed(Array(frame[(frame.count - 1000)...])) { got.append(Self.render($0)) }
            #expect(got == expected, "dissector \(i)")
        }
        dissectors.removeAll()
        #expect(budget.held == 0)
    }

    /// Bytes held after a gap while the next frame start is looked for take room in the budget:
    /// here four chained plausible headers of 64 KiB frames right at the gap's end keep the hunt
    /// holding everything until the fifth header turns out not to be one. With room the bytes are
    /// counted and given back; with none only the last 64 KiB are held. Either way the frames
    /// after the junk are found as without a budget.
    @Test func huntsAfterGapsShareTheBudget() {
        var junk: [UInt8] = []
        for _ in 0..<4 { junk += [0x82, 0x7E, 0xFF, 0xFF] + [UInt8](repeating: 0x7F, count: 65_535) }
        junk += [UInt8](repeating: 0x7F, count: 100_000)
        var after: [UInt8] = []
        for i in 0..<6 { after += WebSocketFrameEncoder.encode(.text("after the gap \(i)")) }
        func run(_ budget: DissectionMemoryBudget?) -> (texts: [String], heldWhileHunting: Int) {
            var c = WebSocketDissectorConfiguration(maxPayloadShown: 256)
            c.messageMemory = budget
            var d = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
            d.feed(WebSocketFrameEncoder.encode(.text("before"))) { _ in }
            d.skip(1000) { _ in }
            var held = 0
            let cut = 4 * 65_539 - 100  // not where a frame ends: the chain from the gap is still open
            for start in stride(from: 0, to: cut, by: 16 << 10) {
                d.feed(Array(junk[start..<min(start + (16 << 10), cut)])) { _ in }
                held = max(held, budget?.held ?? 0)
            }
            #expect(d.isHunting)
            var texts: [String] = []
            d.feed(Array(junk[cut...]) + after) { e in if case .message(let m) = e, let t = m.text { texts.append(t) } }
            d.finish { e in if case .message(let m) = e, let t = m.text { texts.append(t) } }
            return (texts, held)
        }
        let expected = (0..<6).map { "after the gap \($0)" }
        #expect(run(nil).texts == expected)
        let ample = DissectionMemoryBudget(limit: 16 << 20)
        let withRoom = run(ample)
        #expect(withRoom.texts == expected)
        #expect(withRoom.heldWhileHunting > 3 * 65_539, "the held bytes were counted (\(withRoom.heldWhileHunting))")
        #expect(ample.held == 0)
        let none = DissectionMemoryBudget(limit: 0)
        let withoutRoom = run(none)
        #expect(withoutRoom.texts == expected)
        #expect(none.peak == 0)
    }

    /// 2,000 directions each with one compressed message, sharing 4 MiB: each inflater (a 32 KiB
    /// window and its state) takes room, the directions that find none show their message
    /// compressed and incomplete (counted), and the room comes back when the streams end.
    @Test func inflatersShareTheBudget() {
        let budget = DissectionMemoryBudget(limit: 4 << 20)
        var c = WebSocketDissectorConfiguration(maxPayloadShown: 256, deflate: .on)
        c.messageMemory = budget
        let text = "squeeze me, squeeze me, squeeze me"
        let payload = PerMessageDeflateCompressor().compress(Array(text.utf8))
        let frame = WebSocketFrameEncoder.encode(WebSocketFrame(rsv1: true, opcode: .text, payload: payload))
        var dissectors: [WebSocketStreamDissector] = []
        var whole = 0, uninflated = 0
        for _ in 0..<2_000 {
            var d = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
            d.feed(frame) { e in
                guard case .message(let m) = e else { return }
                if m.text == text && !m.incomplete { whole += 1 }
                if m.incomplete && m.text == nil && m.data == payload && m.violations.isEmpty { uninflated += 1 }
            }
            dissectors.append(d)
        }
        #expect(whole + uninflated == 2_000)
        #expect(whole > 50 && whole <= (4 << 20) / (32 << 10), "\(whole) inflaters")
        #expect(uninflated == budget.messagesNotInflated)
        #expect(budget.held <= 4 << 20)
        for i in dissectors.indices { dissectors[i].finish { _ in } }
        #expect(budget.held == 0)
    }

    /// A direction that found no room for its inflater gets one when room comes back: with context
    /// takeover it starts with an empty window, so a message that refers to nothing before it is
    /// whole and one that refers back to the uninflated message is incomplete.
    @Test func anInflaterMadeLateStartsWithAnEmptyWindow() {
        // Room for one inflater (a 32 KiB window, its state and its kept output buffer: 45,056
        // bytes), not two.
        let budget = DissectionMemoryBudget(limit: 50_000)
        var c = WebSocketDissectorConfiguration(maxPayloadShown: nil, deflate: .on)
        c.messageMemory = budget
        func messages(_ d: inout WebSocketStreamDissector, _ frames: [UInt8]) -> [String] {
            var out: [String] = []
            d.feed(frames) { e in if case .message(let m) = e { out.append(m.incomplete ? "incomplete" : (m.text ?? "?")) } }
            return out
        }
        func compressed(_ compressor: PerMessageDeflateCompressor, _ text: String) -> [UInt8] {
            WebSocketFrameEncoder.encode(WebSocketFrame(rsv1: true, opcode: .text, payload: compressor.compress(Array(text.utf8))))
        }
        let first = PerMessageDeflateCompressor(), second = PerMessageDeflateCompressor()
        var a = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
        var b = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
        #expect(messages(&a, compressed(first, "the first direction takes the room")) == ["the first direction takes the room"])
        #expect(messages(&b, compressed(second, "the quick brown fox jumps")) == ["incomplete"])
        a.finish { _ in }
        let fresh = "%0123456789@#&*+=<>[]^_{}~%"
        #expect(messages(&b, compressed(second, fresh)) == [fresh])
        #expect(messages(&b, compressed(second, "the quick brown fox jumps again")) == ["incomplete"])
        #expect(budget.messagesNotInflated == 1)
        b.finish { _ in }
        #expect(budget.held == 0)
    }

    /// 200 dissectors each in the middle of a 4 MiB message, sharing a 16 MiB budget: resident
    /// memory grows by far less than the 800 MiB they would hold whole.
    @Test func manyDissectorsHoldLittle() throws {
        let budget = DissectionMemoryBudget(limit: 16 << 20)
        var c = WebSocketDissectorConfiguration(maxPayloadShown: 256)
        c.parser.maxBufferedFrameSize = 64 << 10
        c.assembler.retainedBufferCapacity = 64 << 10
        c.messageMemory = budget
        let chunk = [UInt8](repeating: 0x5A, count: 256 << 10)
        let first = WebSocketFrameEncoder.encode(WebSocketFrame(fin: false, opcode: .binary, payload: chunk))
        let next = WebSocketFrameEncoder.encode(WebSocketFrame(fin: false, opcode: .continuation, payload: chunk))
        let before = Self.residentBytes()
        var dissectors: [WebSocketStreamDissector] = []
        for _ in 0..<200 {
            var d = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
            d.feed(first) { _ in }
            for _ in 1..<16 { d.feed(next) { _ in } }
            dissectors.append(d)
        }
        let grown = Self.residentBytes() - before
        #expect(grown < 160 << 20, "resident memory grew by \(grown >> 20) MiB for 200 dissectors")
        #expect(budget.held <= 32 << 20)
        var lengths: [Int] = []
        let last = WebSocketFrameEncoder.encode(WebSocketFrame(fin: true, opcode: .continuation, payload: [1, 2, 3]))
        for i in dissectors.indices {
            dissectors[i].feed(last) { e in if case .message(let m) = e { lengths.append(m.length) } }
        }
        #expect(lengths == Array(repeating: 16 * (256 << 10) + 3, count: 200))
        // (Counted when each message is made, having lost bytes.)
        #expect(budget.messagesNotHeldWhole >= 195)
        #expect(budget.held == 0)
    }
    /// A frame collected whole across segments is charged its size, exactly: not the capacity of
    /// the buffer, which the allocator rounds up as its state allows (a page more or less past
    /// glibc's mmap threshold, which moves as memory is freed), so that what fits under a small
    /// --max-message-memory was decided differently on one thread and on three.
    @Test(arguments: [70_000, 200_000, 1_000_000])
    func aFrameSpanningSegmentsIsChargedItsSize(_ size: Int) {
        let budget = DissectionMemoryBudget(limit: 4 << 20)
        var c = WebSocketDissectorConfiguration(maxPayloadShown: 300)
        c.parser.retainedCarryCapacity = 64 << 10
        c.messageMemory = budget
        var d = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
        let frame = WebSocketFrameEncoder.encode(WebSocketFrame(opcode: .binary, payload: [UInt8](repeating: 7, count: size)))
        let header = frame.count - size
        var frames = 0
        d.feed(Array(frame[..<1_000])) { if case .frame = $0 { frames += 1 } }
        #expect(budget.held == size + header, "held \(budget.held) for a frame of \(size + header) bytes")
        d.feed(Array(frame[1_000..<(frame.count - 1)])) { if case .frame = $0 { frames += 1 } }
        #expect(budget.held == size + header)
        d.feed(Array(frame[(frame.count - 1)...])) { if case .frame = $0 { frames += 1 } }
        #expect(frames == 1)
        #expect(budget.held == 0, "the frame is out: its room goes back")
    }
}
