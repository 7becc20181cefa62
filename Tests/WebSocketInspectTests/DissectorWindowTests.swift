import Testing
import WebSocketCodec
import WebSocketCompression
import WebSocketInspect

/// A compressed message that refers further back than the window agreed for its direction
/// (RFC 7692 §7.1.2) is flagged `window-exceeded`, and still shown inflated where zlib inflated it:
/// held whole, in fragments, and within a memory budget (20,000 bytes: room for the inflater,
/// 13,312 bytes with a 10-bit window, and the compressed message, but not for it inflated too).
@Suite struct DissectorWindowTests {
    /// 3,000 bytes in which no three in a row occur twice, then the same again: deflated with a
    /// 32 KiB window, the copy refers 3,000 bytes back.
    static let repeated: [UInt8] = {
        var state: UInt64 = 11
        var seen = Set<Int>()
        var out: [UInt8] = [1, 2]
        while out.count < 3_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let b = UInt8(truncatingIfNeeded: state >> 33)
            let trigram = Int(out[out.count - 2]) << 16 | Int(out[out.count - 1]) << 8 | Int(b)
            if seen.insert(trigram).inserted { out.append(b) }
        }
        return out + out
    }()

    static let key = WebSocketMaskingKey(0x11, 0x22, 0x33, 0x44)

    /// The payload deflated with 15 bits, sent in `fragments` frames, then a short message.
    static func frames(fragments: Int, masked: Bool) -> [UInt8] {
        let compressor = PerMessageDeflateCompressor()
        let payload = compressor.compress(repeated)
        let size = (payload.count + fragments - 1) / fragments
        var out: [UInt8] = []
        var start = 0
        for i in 0..<fragments {
            let piece = Array(payload[start..<min(start + size, payload.count)])
            start += size
            out += WebSocketFrameEncoder.encode(WebSocketFrame(
                fin: i == fragments - 1, rsv1: i == 0, opcode: i == 0 ? .binary : .continuation,
                maskingKey: masked ? key : nil, payload: piece))
        }
        out += WebSocketFrameEncoder.encode(WebSocketFrame(
            rsv1: true, opcode: .text, maskingKey: masked ? key : nil, payload: compressor.compress(Array("next".utf8))))
        return out
    }

    static func messages(_ bytes: [UInt8], _ c: WebSocketDissectorConfiguration, _ direction: WebSocketDirection) -> [MessageRecord] {
        var d = WebSocketStreamDissector(configuration: c, direction: direction)
        var out: [MessageRecord] = []
        d.feed(bytes) { if case .message(let m) = $0 { out.append(m) } }
        d.finish { if case .message(let m) = $0 { out.append(m) } }
        return out
    }

    @Test(arguments: [1, 3, 40])
    func clientMessageBeyondItsWindow(fragments: Int) throws {
        let bytes = Self.frames(fragments: fragments, masked: true)
        for budget in [nil, DissectionMemoryBudget(limit: 20_000)] as [DissectionMemoryBudget?] {
            var c = WebSocketDissectorConfiguration(maxPayloadShown: nil, deflate: .on, clientMaxWindowBits: 10)
            c.messageMemory = budget
            c.checksWindow = true
            let seen = Self.messages(bytes, c, .clientToServer)
            try #require(seen.count == 2)
            let rules = seen[0].violations.map(\.rule)
            #expect(rules == [.windowExceeded], "fragments \(fragments) budget \(budget != nil): \(seen[0].violations)")
            #expect(seen[0].violations.first?.message.contains("3000 bytes back") == true)
            #expect(seen[0].data == Self.repeated && !seen[0].incomplete)
            #expect(seen[1].violations.isEmpty && seen[1].text == "next")
        }
    }

    static func checking(_ c: WebSocketDissectorConfiguration) -> WebSocketDissectorConfiguration {
        var c = c
        c.checksWindow = true
        return c
    }

    /// The same bytes where 15 bits, or 12 (4,096 bytes, enough for the copy), were agreed: no
    /// violation. The client's window is not the server's. And without `checksWindow` (sniff's
    /// default) the codes are not read: nothing is flagged.
    @Test func withinTheWindowOrTheOtherDirectionOrNotChecked() throws {
        for bits in [15, 12] {
            let seen = Self.messages(Self.frames(fragments: 1, masked: true),
                                     Self.checking(.init(maxPayloadShown: nil, deflate: .on, clientMaxWindowBits: bits)), .clientToServer)
            #expect(seen.count == 2 && seen.allSatisfy { $0.violations.isEmpty }, "\(bits): \(seen.map(\.violations))")
            #expect(seen.first?.data == Self.repeated)
        }
        let server = Self.messages(Self.frames(fragments: 1, masked: false),
                                   Self.checking(.init(maxPayloadShown: nil, deflate: .on, clientMaxWindowBits: 10)), .serverToClient)
        #expect(server.count == 2 && server.allSatisfy { $0.violations.isEmpty })
        let narrowServer = Self.messages(Self.frames(fragments: 1, masked: false),
                                         Self.checking(.init(maxPayloadShown: nil, deflate: .on, serverMaxWindowBits: 10)), .serverToClient)
        #expect(narrowServer.first?.violations.map(\.rule) == [.windowExceeded])
        let unchecked = Self.messages(Self.frames(fragments: 1, masked: true),
                                      .init(maxPayloadShown: nil, deflate: .on, clientMaxWindowBits: 10), .clientToServer)
        #expect(unchecked.count == 2 && unchecked.allSatisfy { $0.violations.isEmpty })
        #expect(unchecked.first?.data == Self.repeated)
    }
}
