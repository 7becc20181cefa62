import Testing
import WebSocketCodec
import WebSocketInspect
import WebSocketSniffer

/// Frames that a connection's dissector holds after a gap (while it looks for where frames start
/// again) carry the time of the delivery that completed them, as they would without the gap.
@Suite struct ConnectionGapTimeTests {
    static let client = Build.client4
    static let server = Build.server4
    static let key = WebSocketMaskingKey(9, 8, 7, 6)

    /// (text or opcode name, time) of every frame of the client's direction.
    static func frameTimes(_ deliveries: [(bytes: [UInt8]?, gap: Int, time: Double)]) -> [String] {
        let c = WebSocketConnectionDissector(id: 1, first: client, second: server, clientIsFirst: nil, time: 0,
                                             configuration: .init(maxPayloadShown: nil), webSocketPorts: [Int(Build.server4.port)])
        var out: [String] = []
        let collect: (SniffEvent) -> Void = { event in
            if case .frame(_, .clientToServer, let time, let f, _) = event {
                out.append("\(f.text.map { String(decoding: $0, as: UTF8.self) } ?? f.header.opcode.name)@\(time)")
            }
        }
        for d in deliveries {
            if let bytes = d.bytes {
                bytes.withUnsafeBytes { c.data(from: client, $0, time: d.time, emit: collect) }
            } else {
                c.gap(from: client, missing: d.gap, time: d.time, emit: collect)
            }
        }
        c.close(reason: "fin", time: 99, emit: collect)
        return out
    }

    func text(_ s: String) -> [UInt8] { WebSocketFrameEncoder.encode(.text(s, maskingKey: Self.key)) }

    /// A gap ends inside a 300-byte frame; the six messages after it come one delivery each, a
    /// second apart. Five chained headers are needed before any is let out (at second 7, when the
    /// fifth arrives), but each keeps its own delivery's time (without the mapping, four of them
    /// would say 7).
    @Test func framesLetOutAfterAGapKeepTheirDeliveryTime() {
        let interrupted = text(String(repeating: "payload of the frame the gap ends in. ", count: 8))
        let cut = interrupted.count - 200
        var deliveries: [(bytes: [UInt8]?, gap: Int, time: Double)] = [(text("one"), 0, 1), (nil, cut, 2),
                                                                         (Array(interrupted[cut...]), 0, 2)]
        for (i, word) in ["three", "four", "five", "six", "seven", "eight"].enumerated() {
            deliveries.append((text(word), 0, Double(3 + i)))
        }
        #expect(Self.frameTimes(deliveries) == ["one@1.0", "three@3.0", "four@4.0", "five@5.0", "six@6.0", "seven@7.0", "eight@8.0"])
    }

    /// Without a gap, times are as delivered (the mapping is not in the way).
    @Test func framesWithoutAGapKeepTheirDeliveryTime() {
        let deliveries: [(bytes: [UInt8]?, gap: Int, time: Double)] = [(text("a"), 0, 1), (text("b") + text("c"), 0, 2)]
        #expect(Self.frameTimes(deliveries) == ["a@1.0", "b@2.0", "c@2.0"])
    }
}

/// An upgrade whose response is not in the capture: the client's frames are dissected without
/// it, as they come once it is clearly missing, and a response that turns up late is passed over.
@Suite struct MissingResponseTests {
    static let client = Build.client4
    static let server = Build.server4
    static let key = WebSocketMaskingKey(1, 2, 3, 4)
    static let request = Array("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8)
    static let response = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".utf8)

    /// Events as `kind@time` (messages as `direction:text@time`), with `|` where the connection ends.
    static func events(_ deliveries: [(fromClient: Bool, bytes: [UInt8], time: Double)], closeAt: Double,
                       memory: DissectionMemoryBudget? = nil) -> [String] {
        var configuration = WebSocketDissectorConfiguration(maxPayloadShown: nil)
        configuration.messageMemory = memory
        let c = WebSocketConnectionDissector(id: 1, first: client, second: server, clientIsFirst: true, time: 0,
                                             configuration: configuration, webSocketPorts: [])
        var out: [String] = []
        let collect: (SniffEvent) -> Void = { event in
            switch event {
            case .handshake(let h): out.append("handshake \(h.status.map(String.init) ?? "-") \(h.responseError == nil ? "ok" : "no-response")")
            case .message(_, let d, let t, let m, _): out.append("\(d == .clientToServer ? "C" : "S"):\(m.textString ?? "?")@\(t)")
            case .closed: out.append("closed")
            default: break
            }
        }
        for d in deliveries {
            d.bytes.withUnsafeBytes { c.data(from: d.fromClient ? client : server, $0, time: d.time, emit: collect) }
        }
        out.append("|")  // what comes after this, the connection's end let out
        c.close(reason: "fin", time: closeAt, emit: collect)
        return out
    }

    static func text(_ s: String, masked: Bool = true) -> [UInt8] {
        WebSocketFrameEncoder.encode(.text(s, maskingKey: masked ? key : nil))
    }

    /// Frames a second after the request: the response is taken to be missing and they are shown
    /// then, at their own times, not held until the connection ends.
    @Test func framesLongAfterTheRequestAreShownAsTheyCome() {
        let seen = Self.events([(true, Self.request, 0), (true, Self.text("a"), 0.2), (true, Self.text("b"), 1.5), (true, Self.text("c"), 2)],
                               closeAt: 9)
        #expect(seen == ["handshake - no-response", "C:a@0.2", "C:b@1.5", "C:c@2.0", "|", "closed"])
    }

    /// A response that comes after frames were taken without it is passed over; the server's
    /// frames behind it are dissected.
    @Test func aLateResponseIsPassedOver() {
        let seen = Self.events([(true, Self.request, 0), (true, Self.text("a"), 1.5),
                                (false, Self.response + Self.text("A", masked: false), 1.6), (false, Self.text("B", masked: false), 1.7)],
                               closeAt: 9)
        #expect(seen == ["handshake - no-response", "C:a@1.5", "S:A@1.6", "S:B@1.7", "|", "closed"])
    }

    /// Frames right behind the request and then the response (a client that does not wait): the
    /// usual handshake, the frames at their own times.
    /// Client bytes held for the response take room in the memory budget: with none left, the
    /// response is taken to be missing at once rather than held for; the room is given back.
    @Test func heldFramesShareTheMemoryBudget() {
        let budget = DissectionMemoryBudget(limit: 10)
        let seen = Self.events([(true, Self.request, 0), (true, Self.text("held"), 0.2), (true, Self.text("and this"), 0.3)],
                               closeAt: 9, memory: budget)
        #expect(seen == ["handshake - no-response", "C:held@0.2", "C:and this@0.3", "|", "closed"])
        #expect(budget.held == 0)
        let ample = DissectionMemoryBudget(limit: 1 << 20)
        let waited = Self.events([(true, Self.request, 0), (true, Self.text("held"), 0.2), (false, Self.response, 0.3)],
                                 closeAt: 9, memory: ample)
        #expect(waited == ["handshake 101 ok", "C:held@0.2", "|", "closed"])
        #expect(ample.held == 0)
        #expect(ample.peak > 0)
    }

    @Test func pipelinedFramesWaitForTheResponse() {
        let seen = Self.events([(true, Self.request + Self.text("a"), 0), (true, Self.text("b"), 0.1), (false, Self.response, 0.2)],
                               closeAt: 9)
        #expect(seen == ["handshake 101 ok", "C:a@0.0", "C:b@0.1", "|", "closed"])
    }
}

extension MissingResponseTests {
    /// A request and a few frames, all within a second, then the end: the frames come out at the
    /// end, at their own times, after the handshake that says the response is missing.
    @Test func framesHeldUntilTheEndKeepTheirTimes() {
        let seen = Self.events([(true, Self.request, 0), (true, Self.text("a"), 0.2), (true, Self.text("b"), 0.3)], closeAt: 5)
        #expect(seen == ["|", "handshake - no-response", "C:a@0.2", "C:b@0.3", "closed"])
    }
}

/// Ordinary HTTP requests before the upgrade on a kept-alive connection (RFC 9112 §9.3): their
/// bodies, and their responses' bodies (by Content-Length, chunked, or none), are passed over and
/// the upgrade that follows is found and dissected.
@Suite struct KeepAliveBeforeUpgradeTests {
    typealias M = MissingResponseTests

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func upgradeAfterOrdinaryExchanges() {
        let seen = M.events([
            (true, Self.bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0.0),
            (false, Self.bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"), 0.1),
            (false, Self.bytes("lo"), 0.1),
            (true, Self.bytes("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nGET / HTTP"), 0.2),
            (true, Self.bytes("/1"), 0.2),
            (false, Self.bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nHTTP\r\n1"), 0.3),
            (false, Self.bytes("0;ext=1\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n"), 0.3),
            (true, Self.bytes("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n"), 0.4),
            (false, Self.bytes("HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n"), 0.4),
            (true, M.request, 0.5),
            (false, M.response + M.text("A", masked: false), 0.6),
            (true, M.text("a"), 0.7),
        ], closeAt: 9)
        #expect(seen == ["handshake 101 ok", "S:A@0.6", "C:a@0.7", "|", "closed"])
    }

    /// A connection whose client opens with bytes no request starts with (TLS, a binary
    /// protocol) is left alone at once, not after 64 KiB of them; a method, even a lowercase or
    /// unusual token, or an empty line is read on.
    @Test func notHTTPIsKnownFromTheFirstByte() {
        func ignored(_ first: [UInt8]) -> Bool {
            let c = WebSocketConnectionDissector(id: 1, first: ConnectionGapTimeTests.client, second: ConnectionGapTimeTests.server,
                                                 clientIsFirst: true, time: 0, configuration: .init(), webSocketPorts: [])
            first.withUnsafeBytes { c.data(from: ConnectionGapTimeTests.client, $0, time: 0, emit: { _ in }) }
            return c.isIgnored
        }
        #expect(ignored([0x16, 0x03, 0x01, 0x02, 0x00]))  // a TLS ClientHello record
        #expect(ignored([0x00, 0x00, 0x00, 0x2c, 0x0a]))
        #expect(!ignored(Self.bytes("GE")))
        #expect(!ignored(Self.bytes("m-search * HTTP/1.1\r\n")))
        #expect(!ignored(Self.bytes("\r\n")))
    }

    /// Pipelined: the upgrade request right behind an ordinary one, both responses in one segment.
    @Test func pipelinedUpgrade() {
        let seen = M.events([
            (true, Self.bytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\n") + M.request, 0.0),
            (false, Self.bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") + M.response + M.text("A", masked: false), 0.1),
        ], closeAt: 9)
        #expect(seen == ["handshake 101 ok", "S:A@0.1", "|", "closed"])
    }

    /// A request or response that closes the connection, or a response whose body runs to the
    /// close, ends the search: nothing after it is taken for an upgrade.
    @Test(arguments: ["Connection: close\r\n", "HTTP/1.0"])
    func closingExchangeEndsTheSearch(_ how: String) {
        let request = how == "HTTP/1.0" ? "GET / HTTP/1.0\r\nHost: x\r\n\r\n" : "GET / HTTP/1.1\r\nHost: x\r\n\(how)\r\n"
        let seen = M.events([
            (true, Self.bytes(request), 0.0),
            (false, Self.bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0.1),
            (true, M.request, 0.2),
            (false, M.response, 0.3),
        ], closeAt: 9)
        #expect(seen == ["|", "closed"], "no handshake")
        let untilClose = M.events([
            (true, Self.bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0.0),
            (false, Self.bytes("HTTP/1.1 200 OK\r\n\r\nbody until the end"), 0.1),
            (true, M.request, 0.2),
        ], closeAt: 9)
        #expect(untilClose == ["|", "closed"], "no handshake")
    }

    @Test func bodySkipperFollowsChunkedBodiesByteByByte() {
        let body = Self.bytes("5\r\nhello\r\n1A;name=value\r\n") + [UInt8](repeating: 120, count: 26) + Self.bytes("\r\n0\r\nA: b\r\nC: d\r\n\r\nNEXT")
        var skipper = HTTPBodySkipper(.chunked)
        var used = 0
        for b in body {
            guard !skipper.isDone else { break }
            used += [b].withUnsafeBytes { skipper.consume($0) }
        }
        #expect(skipper.isDone && skipper.failure == nil)
        #expect(used == body.count - 4, "stops right before the next message")
        var bad = HTTPBodySkipper(.chunked)
        _ = Self.bytes("zz\r\n").withUnsafeBytes { bad.consume($0) }
        #expect(bad.failure != nil && !bad.isDone)
    }
}

extension ConnectionGapTimeTests {
    /// A live capture: after a gap that ended inside a frame, two frames come and then nothing.
    /// A second after the last, the quiet connection lets them out (at their own times) instead of
    /// holding them for three more frames or the connection's end.
    @Test func aQuietConnectionLetsOutHeldFrames() {
        let c = WebSocketConnectionDissector(id: 1, first: Self.client, second: Self.server, clientIsFirst: nil, time: 0,
                                             configuration: .init(maxPayloadShown: nil), webSocketPorts: [Int(Build.server4.port)])
        var out: [String] = []
        let collect: (SniffEvent) -> Void = { event in
            switch event {
            case .frame(_, .clientToServer, let time, let f, _):
                out.append("\(f.text.map { String(decoding: $0, as: UTF8.self) } ?? f.header.opcode.name)@\(time)")
            case .resync(_, _, _, let r): out.append("resync +\(r.skipped)")
            default: break
            }
        }
        let interrupted = text(String(repeating: "payload of the frame the gap ends in. ", count: 8))
        let cut = interrupted.count - 200
        text("one").withUnsafeBytes { c.data(from: Self.client, $0, time: 1, emit: collect) }
        c.gap(from: Self.client, missing: cut, time: 2, emit: collect)
        (Array(interrupted[cut...]) + text("two")).withUnsafeBytes { c.data(from: Self.client, $0, time: 2, emit: collect) }
        text("three").withUnsafeBytes { c.data(from: Self.client, $0, time: 3, emit: collect) }
        #expect(c.isHunting)
        c.settleQuietHunts(now: 3.5, emit: collect)
        #expect(out == ["one@1.0"], "not yet: the connection has been quiet for half a second")
        c.settleQuietHunts(now: 4.0, emit: collect)
        #expect(out == ["one@1.0", "resync +200", "two@2.0", "three@3.0"])
        #expect(!c.isHunting)
        text("four").withUnsafeBytes { c.data(from: Self.client, $0, time: 5, emit: collect) }
        #expect(out.last == "four@5.0", "frames after it come as usual")
    }
}

extension KeepAliveBeforeUpgradeTests {
    /// The HTTP phase on damaged input: the kept-alive exchange of `upgradeAfterOrdinaryExchanges`
    /// with bytes changed, cut anywhere and fed in any chunking, 400 seeded rounds. Every round
    /// ends, and what is held for a direction stays bounded (the connection holds at most 1 MiB of
    /// client bytes and 64 KiB of heads; here all input is a few hundred bytes).
    @Test func damagedExchangesEnd() {
        let client = Self.bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nGET / HTTP/1")
            + Self.bytes("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n") + M.request + M.text("a")
        let server = Self.bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            + Self.bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nHTTP\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n")
            + Self.bytes("HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n") + M.response + M.text("A", masked: false)
        var random = SplitMix64(seed: 0xC0FFEE)
        var upgraded = 0
        for _ in 0..<400 {
            var c = client, s = server
            for _ in 0..<Int(random.next() % 4) {
                if random.next() % 2 == 0 { c[Int(random.next() % UInt64(c.count))] = UInt8(truncatingIfNeeded: random.next()) }
                else { s[Int(random.next() % UInt64(s.count))] = UInt8(truncatingIfNeeded: random.next()) }
            }
            var deliveries: [(fromClient: Bool, bytes: [UInt8], time: Double)] = []
            var ci = 0, si = 0, t = 0.0
            while ci < c.count || si < s.count {
                let fromClient = si >= s.count || (ci < c.count && random.next() % 2 == 0)
                let left = fromClient ? c.count - ci : s.count - si
                let n = 1 + Int(random.next() % UInt64(min(left, 60)))
                if fromClient { deliveries.append((true, Array(c[ci..<(ci + n)]), t)); ci += n }
                else { deliveries.append((false, Array(s[si..<(si + n)]), t)); si += n }
                t += 0.001
            }
            let seen = M.events(deliveries, closeAt: 9)
            if seen.contains("handshake 101 ok") { upgraded += 1 }
        }
        // Most rounds change nothing that matters, or are answered in order; not all upgrade.
        #expect(upgraded > 0 && upgraded < 400, "\(upgraded) of 400 rounds upgraded")
    }
}
