import Foundation
import Testing

/// Upgrades and pairings no real peer in the fixtures sends, on made-up connections
/// (`SyntheticConnection`): interim responses, an empty line before the request, folded and
/// repeated header lines, a request that broke a rule, and the bounds of ping/pong and
/// correlation_id pairing.
@Suite("Sniff follows unusual upgrades and pairs within bounds", .timeLimit(.minutes(3)))
struct SniffUpgradeTests {
    static let hello = SyntheticConnection.clientFrame(opcode: 1, Array("hello".utf8))
    static let world = SyntheticConnection.serverFrame(opcode: 1, length: 5, Array("world".utf8))

    static func run(_ connection: SyntheticConnection, _ extra: [String] = [], full: Bool = true) throws -> SniffOutput {
        var c = connection
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap")
        try c.capture.write(to: path)
        return try SniffOutput.run(["sniff", "-r", path, "--json"] + (full ? ["--full"] : []) + extra)
    }

    static func texts(_ out: SniffOutput) -> [String] { out.kind("message").compactMap { $0["text"].string } }

    /// `100 Continue` and `103 Early Hints` before the 101 (RFC 9110 §15.2): passed over.
    @Test(arguments: ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"])
    func interimResponsesBeforeThe101(_ interim: String) throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: interim + SyntheticConnection.response())
        c.send(fromClient: true, Self.hello)
        c.send(fromClient: false, Self.world)
        let out = try Self.run(c)
        let h = try #require(out.kind("handshake").first)
        #expect(h["status"].int == 101 && h["upgraded"].bool == true, "\(h)")
        #expect(Self.texts(out) == ["hello", "world"])
    }

    /// An interim response split across segments, the 101 in the same segment as its end.
    @Test func interimResponseInPieces() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: "")
        let bytes = Array(("HTTP/1.1 100 Continue\r\n\r\n" + SyntheticConnection.response()).utf8) + Self.world
        for chunk in stride(from: 0, to: bytes.count, by: 7) { c.send(fromClient: false, Array(bytes[chunk..<min(chunk + 7, bytes.count)])) }
        let out = try Self.run(c)
        #expect(out.kind("handshake").first?["status"].int == 101)
        #expect(Self.texts(out) == ["world"])
    }

    /// An empty line before the request line (RFC 9112 §2.2: a client may send one after a body).
    @Test func emptyLineBeforeTheRequest() throws {
        var c = SyntheticConnection(request: "\r\n" + SyntheticConnection.request(), response: SyntheticConnection.response())
        c.send(fromClient: true, Self.hello)
        let out = try Self.run(c)
        #expect(out.kind("handshake").first?["upgraded"].bool == true)
        #expect(Self.texts(out) == ["hello"])
    }

    /// The request a byte per segment: the head is found (its end is searched for from where the
    /// last search stopped).
    @Test func requestOneBytePerSegment() throws {
        var c = SyntheticConnection(request: "", response: "")
        for byte in Array(SyntheticConnection.request("X-Padding: " + String(repeating: "p", count: 300) + "\r\n").utf8) {
            c.send(fromClient: true, [byte])
        }
        c.send(fromClient: false, Array(SyntheticConnection.response().utf8))
        c.send(fromClient: true, Self.hello)
        let out = try Self.run(c)
        #expect(out.kind("handshake").first?["upgraded"].bool == true)
        #expect(Self.texts(out) == ["hello"])
    }

    /// A header folded onto a second line (obs-fold, RFC 9112 §5.2) and extensions over two
    /// lines: joined, and permessage-deflate applies.
    @Test(arguments: [
        "Sec-WebSocket-Extensions: permessage-deflate;\r\n server_no_context_takeover\r\n",
        "Sec-WebSocket-Extensions: x-other\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
    ])
    func foldedAndRepeatedExtensionLines(_ lines: String) throws {
        var c = SyntheticConnection(
            request: SyntheticConnection.request("Sec-WebSocket-Extensions: x-other, permessage-deflate\r\n"),
            response: SyntheticConnection.response(lines))
        // "Hello" compressed alone (RFC 7692 §7.2.3.1), twice: no context takeover.
        let compressed: [UInt8] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, rsv1: true, length: compressed.count, compressed))
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, rsv1: true, length: compressed.count, compressed))
        let out = try Self.run(c)
        let h = try #require(out.kind("handshake").first)
        #expect(h["extensions"].string?.contains("permessage-deflate") == true, "\(h)")
        #expect(h["extensions"].string?.contains("server_no_context_takeover") == true, "\(h)")
        if lines.contains("x-other") { #expect(h["extensions"].string == "x-other, permessage-deflate; server_no_context_takeover") }
        #expect(out.kind("message").compactMap { $0["inflated_text"].string ?? $0["text"].string } == ["Hello", "Hello"])
    }

    /// A request that broke a rule (no Sec-WebSocket-Version) still offered `chat`: the response
    /// that picks it is not blamed for picking something never offered.
    @Test func responseJudgedAgainstWhatAFaultyRequestOffered() throws {
        let c = SyntheticConnection(request: SyntheticConnection.request("Sec-WebSocket-Protocol: chat\r\n", version: false),
                                    response: SyntheticConnection.response("Sec-WebSocket-Protocol: chat\r\n"))
        let out = try Self.run(c)
        let h = try #require(out.kind("handshake").first)
        #expect(h["request_error"].string?.contains("Version") == true, "\(h)")
        #expect(h["response_error"].isNull, "\(h)")
    }

    /// Pings are paired with pongs by their whole payload: cut by --max-payload, two pings that
    /// begin alike are not paired at all rather than with the wrong pong.
    @Test func pingsCutByMaxPayloadAreNotMisPaired() throws {
        var c = SyntheticConnection()
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 9, length: 4, Array("ts-1".utf8)))
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 9, length: 4, Array("ts-2".utf8)))
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 10, Array("ts-1".utf8)))
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 10, Array("ts-2".utf8)))
        func rtts(_ out: SniffOutput) -> [Double?] { out.kind("frame").filter { $0["opcode"].int == 10 }.map { $0["ping_rtt"].double } }
        // Packets are 10 µs apart: each pong comes 20 µs after its ping.
        let whole = rtts(try Self.run(c))
        #expect(whole.count == 2 && whole.allSatisfy { $0.map { abs($0 - 0.00002) < 1e-9 } == true }, "\(whole)")
        let cut = rtts(try Self.run(c, ["--max-payload", "2"], full: false))
        #expect(cut == [nil, nil], "\(cut)")
    }

    /// More unanswered pings than are kept (1,024): the map is forgotten and pairing goes on.
    @Test func pairingGoesOnAfterManyUnansweredPings() throws {
        var c = SyntheticConnection()
        var pings: [UInt8] = []
        for i in 0..<1_100 { pings += SyntheticConnection.serverFrame(opcode: 9, length: 4, Array(String(format: "%04d", i).utf8)) }
        c.send(fromClient: false, pings)
        for i in 0..<3 {
            c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 9, length: 3, Array("x-\(i)".utf8)))
            c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 10, Array("x-\(i)".utf8)))
        }
        let out = try Self.run(c)
        let rtts = out.kind("frame").filter { $0["opcode"].int == 10 }.map { $0["ping_rtt"].double }
        #expect(rtts.count == 3 && rtts.allSatisfy { $0 != nil }, "\(rtts)")
    }

    /// A correlation_id longer than 256 bytes is not kept for pairing (each kept one takes
    /// memory); a short one is paired.
    @Test func longCorrelationIDsAreNotKept() throws {
        var c = SyntheticConnection()
        func envelope(_ type: String, _ id: String) -> [UInt8] {
            Array("{\"type\":\"\(type)\",\"payload\":{},\"metadata\":{\"correlation_id\":\"\(id)\"}}".utf8)
        }
        for id in [String(repeating: "L", count: 300), "short"] {
            c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, envelope("q", id)))
            let reply = envelope("r", id)
            c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: reply.count, reply))
        }
        let out = try Self.run(c)
        let replies = out.kind("message").filter { $0["direction"].string == "server" }
        #expect(replies.count == 2)
        #expect(replies.first?["reply_latency"].double == nil, "\(replies.first.map { "\($0)" } ?? "")")
        #expect(replies.last?["reply_latency"].double != nil, "\(replies.last.map { "\($0)" } ?? "")")
    }

    /// The same correlation_id sent twice before its replies: paired first in, first out. A
    /// subscription's events that carry its id after its ack are not requests: the unsubscribe's
    /// ack pairs with the unsubscribe.
    @Test func repeatedCorrelationIDsPairInOrder() throws {
        var c = SyntheticConnection()
        func envelope(_ type: String, _ id: String) -> [UInt8] {
            Array("{\"type\":\"\(type)\",\"payload\":{},\"metadata\":{\"correlation_id\":\"\(id)\"}}".utf8)
        }
        // A millisecond apart, so that each pairing gives a different latency.
        func server(_ bytes: [UInt8]) {
            c.pause(seconds: 0.001)
            c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: bytes.count, bytes))
        }
        func client(_ bytes: [UInt8]) {
            c.pause(seconds: 0.001)
            c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, bytes))
        }
        client(envelope("q", "d"))       // 0
        client(envelope("q", "d"))       // 1
        server(envelope("r", "d"))       // 2: replies to 0
        server(envelope("r", "d"))       // 3: replies to 1
        client(envelope("subscribe", "s"))    // 4
        server(envelope("subscribed", "s"))   // 5: replies to 4
        server(envelope("event", "s"))        // 6
        server(envelope("event", "s"))        // 7
        client(envelope("unsubscribe", "s"))  // 8
        server(envelope("unsubscribed", "s")) // 9: replies to 8
        let out = try Self.run(c)
        let messages = out.kind("message")
        try #require(messages.count == 10)
        // Times are printed to the microsecond.
        let t = messages.map { $0["time_relative"].double ?? .nan }
        func latency(_ i: Int) -> Double? { messages[i]["reply_latency"].double }
        for i in [0, 1, 4, 6, 7, 8] { #expect(latency(i) == nil, "message \(i): \(messages[i])") }
        for (reply, request) in [(2, 0), (3, 1), (5, 4), (9, 8)] {
            #expect(abs((latency(reply) ?? -1) - (t[reply] - t[request])) < 2e-6, "message \(reply) replies to \(request): \(messages[reply])")
        }
    }

    /// An envelope that breaks one rule (a timestamp that is not ISO 8601, a payload member its
    /// type requires missing) still shows the type and ids it has, and its reply is paired by
    /// them; an envelope whose metadata is not an object has no ids to give.
    @Test func anInvalidEnvelopeKeepsWhatCouldBeRead() throws {
        var c = SyntheticConnection()
        func client(_ text: String) { c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array(text.utf8))) }
        func server(_ text: String) {
            c.pause(seconds: 0.002)
            c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: text.utf8.count, Array(text.utf8)))
        }
        client(#"{"type":"get","payload":{},"metadata":{"correlation_id":"c1","message_id":"m1","timestamp":"yesterday"}}"#)
        server(#"{"type":"got","payload":{},"metadata":{"correlation_id":"c1"}}"#)
        client(#"{"type":"join_room","payload":{},"metadata":{"correlation_id":"c2","client_id":"k"}}"#)  // no payload.room
        server(#"{"type":"joined","payload":{},"metadata":{"correlation_id":"c2","timestamp":17}}"#)
        client(#"{"type":"odd","metadata":"c3"}"#)
        let out = try Self.run(c)
        let messages = out.kind("message")
        try #require(messages.count == 5)
        let envelopes = messages.map { $0["envelope"] }
        #expect(envelopes.map { $0["type"].string } == ["get", "got", "join_room", "joined", "odd"])
        #expect(envelopes.map { $0["correlation_id"].string } == ["c1", "c1", "c2", "c2", nil])
        #expect(envelopes[0]["message_id"].string == "m1" && envelopes[2]["client_id"].string == "k")
        #expect(envelopes.map { $0["error"].string != nil } == [true, false, true, true, true], "\(envelopes)")
        #expect(envelopes[0]["error"].string?.contains("metadata.timestamp") == true)
        // Both replies are paired, even where one side was invalid. (Times are printed to the microsecond.)
        let t = messages.map { $0["time_relative"].double ?? .nan }
        for i in [1, 3] { #expect(abs((messages[i]["reply_latency"].double ?? -1) - (t[i] - t[i - 1])) < 2e-6, "\(messages[i])") }
        // -v says what could be read beside the error.
        var closed = c
        closed.close()
        let dir = try SniffTempDirectory()
        try closed.capture.write(to: dir.path("c.pcap"))
        let verbose = try CLI.run(["sniff", "-r", dir.path("c.pcap"), "-v"]).stdout.split(separator: "\n").filter { $0.contains("envelope invalid") }
        #expect(verbose.count == 4 && verbose[0].contains("type=get correlation_id=c1"), "\(verbose)")
    }

    /// A 401 that keeps the connection open, with a body, and the client's second try with
    /// credentials on the same connection (RFC 9110 §11.6.1): both handshakes are shown, the
    /// second upgrade is followed.
    @Test(arguments: [
        "Content-Length: 12\r\n\r\nUnauthorized",
        "Transfer-Encoding: chunked\r\n\r\n5\r\nUnaut\r\n7\r\nhorized\r\n0\r\n\r\n",
        "Content-Length: 0\r\n\r\n",
    ])
    func upgradeRetriedAfterA401(_ refusalTail: String) throws {
        let refusal = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ws\"\r\n" + refusalTail
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: "")
        // The refusal's body in pieces, its last byte in the segment before the next one.
        let bytes = Array(refusal.utf8)
        for chunk in stride(from: 0, to: bytes.count, by: 9) { c.send(fromClient: false, Array(bytes[chunk..<min(chunk + 9, bytes.count)])) }
        c.send(fromClient: true, Array(SyntheticConnection.request("Authorization: Basic d3M6d3M=\r\n").utf8))
        c.send(fromClient: false, Array(SyntheticConnection.response().utf8))
        c.send(fromClient: true, Self.hello)
        c.send(fromClient: false, Self.world)
        let out = try Self.run(c)
        let hs = out.kind("handshake")
        #expect(hs.map { $0["status"].int } == [401, 101], "\(hs)")
        #expect(hs.map { $0["upgraded"].bool } == [false, true], "\(hs)")
        #expect(hs.last?["accept_matches"].bool == true, "\(hs)")
        #expect(Self.texts(out) == ["hello", "world"])
        let closed = try #require(out.kind("connection_closed").first)
        #expect(closed["reason"].string?.contains("refused") == false, "\(closed)")
    }

    /// The client sends its second request right behind the first, before the refusal (held with
    /// the bytes that wait for the response, then read again as HTTP).
    /// And the server answers both at once: the refusal and the 101 in one segment (the retry
    /// must be read before the 101, or the 101 is taken for one whose request was not captured).
    @Test(arguments: [("no!", false), ("no!", true), ("", true)])
    func retryPipelinedBehindTheRefusedRequest(_ body: String, _ oneSegment: Bool) throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: "")
        c.send(fromClient: true, Array(SyntheticConnection.request("Authorization: Basic d3M6d3M=\r\n").utf8))
        let refusal = Array("HTTP/1.1 401 Unauthorized\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        let granted = Array(SyntheticConnection.response().utf8) + Self.world
        if oneSegment {
            c.send(fromClient: false, refusal + granted)
        } else {
            c.send(fromClient: false, refusal)
            c.send(fromClient: false, granted)
        }
        c.send(fromClient: true, Self.hello)
        let out = try Self.run(c)
        let hs = out.kind("handshake")
        #expect(hs.map { $0["status"].int } == [401, 101], "\(out.result.stdout)")
        #expect(hs.last?["request"].string?.hasPrefix("GET /chat") == true && hs.last?["accept_matches"].bool == true, "\(hs)")
        #expect(Self.texts(out) == ["world", "hello"])
        #expect(out.events.allSatisfy { $0["errors"].array.isEmpty }, "\(out.result.stdout)")
        #expect(out.kind("connection_closed").first?["reason"].string == "fin")
    }

    /// A refusal that closes the connection, or whose body runs to the close, or that answers a
    /// request which closes it: nothing can follow, and bytes after it are not read as frames.
    @Test(arguments: [
        ("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", ""),
        ("HTTP/1.1 403 Forbidden\r\n\r\n", ""),
        ("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "Connection: close\r\n"),
    ])
    func refusalThatEndsTheConnection(_ refusal: String, _ requestExtra: String) throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(requestExtra), response: refusal)
        c.send(fromClient: true, Array(SyntheticConnection.request().utf8))
        c.send(fromClient: false, Array(SyntheticConnection.response().utf8) + Self.world)
        let out = try Self.run(c)
        #expect(out.kind("handshake").map { $0["status"].int } == [403])
        #expect(Self.texts(out).isEmpty)
        #expect(out.kind("connection_closed").first?["reason"].string == "upgrade refused (403)")
    }

    /// A request with no response and no frames after it (the connection ends first): the
    /// handshake says the response is missing, as when the client's frames follow.
    @Test func requestWithoutResponseOrFrames() throws {
        let out = try Self.run(SyntheticConnection(request: SyntheticConnection.request(), response: ""))
        let h = try #require(out.kind("handshake").first)
        #expect(h["status"].isNull && h["upgraded"].bool == false, "\(h)")
        #expect(h["response_error"].string?.hasPrefix("no response in the capture") == true, "\(h)")
    }

    /// Anyone on a watched network writes the request line, headers, envelopes and close reasons
    /// that the text modes print: their control characters (ESC, BEL, DEL, C1's CSI) come out
    /// escaped, never raw, so a capture cannot drive the viewer's terminal.
    @Test(arguments: [[String](), ["--frames"], ["-v"]])
    func textModesEscapeControlCharactersFromTheWire(_ mode: [String]) throws {
        let esc = "\u{1b}[2J\u{7}\u{7f}\u{9b}"
        // Bidirectional overrides (UTR 9): they would reorder what the terminal shows after them.
        let bidi = "\u{202e}\u{2066}\u{200f}"
        var c = SyntheticConnection(
            request: "GET /chat\(esc) HTTP/1.1\r\nHost: h\(bidi)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: p\(esc)\r\n\r\n",
            response: "HTTP/1.1 101 Switching \(esc)Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: p\(esc)\r\n\r\n")
        // In JSON the controls are written as escapes: the envelope's type and id hold them once parsed.
        let jsonEsc = "\\u001b[2J\\u0007\\u007f\\u009b"
        let envelope = Array("{\"type\":\"t\(jsonEsc)\",\"payload\":{},\"metadata\":{\"correlation_id\":\"c\(jsonEsc)\"}}".utf8)
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, envelope))
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("x\(esc)\(bidi)gnp.exe".utf8)))
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 8, [0x03, 0xe8] + Array("r\(esc)".utf8)))
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap")
        try c.capture.write(to: path)
        let result = try CLI.run(["sniff", "-r", path] + mode)
        let raw = result.stdout.unicodeScalars.filter {
            $0.value < 0x20 && $0 != "\n" || (0x7f..<0xa0).contains($0.value) || bidi.unicodeScalars.contains($0)
        }
        #expect(raw.isEmpty, "raw control characters \(raw.map { String($0.value, radix: 16) }) in:\n\(result.stdout)")
        // The escaped forms are there: the fields were printed, not dropped.
        #expect(result.stdout.contains("\\u001b[2J"), "\(result.stdout)")
        #expect(result.stdout.contains("\\u009b"), "\(result.stdout)")
        #expect(result.stdout.contains("\\u202e\\u2066\\u200fgnp.exe"), "\(result.stdout)")
        // The envelope's type and correlation_id, parsed (so holding ESC itself), are escaped too.
        #expect(result.stdout.contains("t\\u001b[2J\\u0007\\u007f\\u009b"), "\(result.stdout)")
    }

    /// A connection quiet for longer than --flow-timeout that speaks again: its own next packet
    /// must not be what makes it forgotten (the rest was then lost without a word).
    @Test func connectionQuietPastTheFlowTimeoutGoesOn() throws {
        var c = SyntheticConnection()
        c.send(fromClient: true, Self.hello)
        c.pause(seconds: 301)
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("again".utf8)))
        c.send(fromClient: false, Self.world)
        let out = try Self.run(c)
        #expect(Self.texts(out) == ["hello", "again", "world"])
        #expect(out.kind("connection_closed").map { $0["reason"].string } == ["fin"])
    }

    /// Connections already open when the capture began (`--port`): the capture starts inside a
    /// long frame, so its first bytes are that frame's payload, not a header. Frames are looked for
    /// as after a gap; the rest of the long frame is reported passed over; every later message is
    /// shown, none is a violation, and the server's packet coming first does not swap the ends.
    @Test func pickedUpInsideAFrameOnAPort() throws {
        var c = SyntheticConnection()
        c.send(fromClient: false, Self.world)
        let long = SyntheticConnection.clientFrame(opcode: 1, Array(repeating: UInt8(ascii: "x"), count: 3_000))
        c.send(fromClient: true, long)
        let later = (0..<6).map { "msg\($0)" }
        for text in later { c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array(text.utf8))) }
        c.send(fromClient: false, Self.world)
        c.close()
        var file = c.capture
        // The TCP handshake, request, response and the long frame's first segment are not in the
        // capture: it starts with the server's message, then the long frame's second segment.
        file.records = [file.records[5]] + file.records[7...]
        let dir = try SniffTempDirectory()
        let path = dir.path("mid.pcap")
        try file.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--port", "8080"])
        #expect(Self.texts(out) == ["world"] + later + ["world"], "\(out.result.stdout)")
        let resync = try #require(out.kind("resync").first, "\(out.result.stdout)")
        #expect(resync["gap_end"].int == 0 && resync["offset"].int == long.count - 1448, "\(resync)")
        #expect(out.events.allSatisfy { $0["errors"].array.isEmpty }, "\(out.result.stdout)")
        let closed = try #require(out.kind("connection_closed").first)
        #expect(closed["client"].string?.hasSuffix(":40000") == true && closed["server"].string?.hasSuffix(":8080") == true, "\(closed)")
        // Without --port nothing is shown (no handshake to go by).
        #expect(try SniffOutput.run(["sniff", "-r", path, "--json"]).kind("message").isEmpty)
    }

    /// The connection's opening was captured, but it starts with frames, not HTTP: on a --port it
    /// is dissected from its first byte, whichever side speaks first.
    @Test(arguments: [true, false])
    func framesRightAfterTheTCPHandshakeOnAPort(_ clientFirst: Bool) throws {
        var c = SyntheticConnection(request: "", response: "")
        if clientFirst { c.send(fromClient: true, Self.hello) }
        c.send(fromClient: false, Self.world)
        if !clientFirst { c.send(fromClient: true, Self.hello) }
        let out = try Self.run(c, ["--port", "8080"])
        #expect(Self.texts(out) == (clientFirst ? ["hello", "world"] : ["world", "hello"]), "\(out.result.stdout)")
        #expect(out.events.allSatisfy { $0["errors"].array.isEmpty }, "\(out.result.stdout)")
        #expect(try Self.run(c).kind("message").isEmpty)
    }

    /// A capture whose clock steps back (the first packet 2.5 s ahead of the rest): the
    /// connection's span runs from its earliest time to its latest, never negative.
    /// A real connection (basic.pcap), then the same ports used again by a second copy of it with
    /// other sequence numbers and its SYNs left out (the capture missed them), 5 s or 500 s later:
    /// both connections are shown whole. The first one's ended flow swallowed the second.
    @Test(arguments: [5, 500])
    func portsReusedWithoutACapturedSYN(_ later: UInt32) throws {
        var file = try PcapFile(path: SniffFixtures.path("basic"))
        let first = file.records
        for var r in first {
            let d = r.data
            guard d.count >= 54, d[12] == 0x08, d[13] == 0x00, d[23] == 6 else { continue }
            let t = 14 + Int(d[14] & 0x0f) * 4
            if d[t + 13] & 0x02 != 0 { continue }  // the SYN and the SYN-ACK
            for field in [t + 4, t + 8] {
                let v = (UInt32(d[field]) << 24 | UInt32(d[field + 1]) << 16 | UInt32(d[field + 2]) << 8 | UInt32(d[field + 3])) &+ 0x1234_5678
                for i in 0..<4 { r.data[field + i] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(i))) }
            }
            r.seconds += later
            file.records.append(r)
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("reused.pcap")
        try file.write(to: path)
        // (With a flow timeout shorter than the pause too: the first connection, let go, is
        // remembered as ended, and the second is still told apart from its late copies.)
        for timeout in [[], ["--flow-timeout", "2s"]] {
            let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full"] + timeout)
            let alone = try SniffFixtures.sniff("basic")
            #expect(out.connectionIDs.count == 2, "\(out.result.stdout.prefix(1500))")
            for id in out.connectionIDs {
                for d in ["client", "server"] {
                    #expect(out.messageRecords(connection: id, direction: d) == alone.messageRecords(connection: alone.connectionIDs[0], direction: d),
                            "connection \(id) \(d)")
                }
            }
            #expect(out.kind("handshake").count == 2)
        }
    }

    /// With --flow-timeout shorter than TIME_WAIT, an ended connection's flow is let go before its
    /// late copies stop coming: a FIN sent again 10 s later, and a copy of a data segment, opened a
    /// connection of their own (shown with --port, and left out of -w's file). They are passed over
    /// as while the flow is kept; a connection that reuses the ports is still its own.
    @Test func lateCopiesAfterAShortFlowTimeoutOpenNothing() throws {
        var file = try PcapFile(path: SniffFixtures.path("basic"))
        let original = file.records
        func flags(_ r: PcapFile.Record) -> UInt8? {
            let d = r.data
            guard d.count >= 54, d[12] == 0x08, d[13] == 0x00, d[23] == 6 else { return nil }
            return d[14 + Int(d[14] & 0x0f) * 4 + 13]
        }
        let fins = original.filter { (flags($0) ?? 0) & 0x01 != 0 }
        let data = original.filter { $0.data.count > 200 && (flags($0) ?? 0) & 0x02 == 0 }
        #expect(fins.count == 2 && !data.isEmpty)
        for var r in fins + [data[data.count / 2]] {
            r.seconds += 10
            file.records.append(r)
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("late.pcap")
        try file.write(to: path)
        for extra in [[], ["--port", "28081"]] {
            let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--flow-timeout", "5s"] + extra)
            #expect(out.result.status == 0, "\(out.result.stderr)")
            #expect(out.kind("connection_closed").count == 1, "\(extra): \(out.result.stdout.suffix(1500))")
        }
        let saved = dir.path("saved.pcap")
        let w = try CLI.run(["sniff", "-r", path, "--flow-timeout", "5s", "-w", saved])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(try PcapFile(path: saved).records.map(\.data) == file.records.map(\.data))
    }

    @Test func clockSteppingBackGivesNoNegativeDuration() throws {
        var c = SyntheticConnection()
        c.send(fromClient: true, Self.hello)
        c.close()
        var file = c.capture
        file.records[0] = file.record(file.records[0], at: file.time(file.records[0]) + 2_500_000)
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap")
        try file.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json"])
        let closed = try #require(out.kind("connection_closed").first)
        let first = try #require(closed["first_time"].double), last = try #require(closed["last_time"].double)
        #expect(first <= last && (closed["duration"].double ?? -1) >= 0, "\(closed)")
        // The earliest time the dissector saw: the request's (the SYN-ACK before it carries no data).
        #expect(abs(first - 1_790_000_000.00004) < 1e-6, "\(closed)")
    }

    /// --port, the connection's opening captured, and the server's first segment lost: the bytes
    /// after the gap are searched for frame starts (the rest of a long frame passed over), as on
    /// a connection already open.
    @Test func lossBeforeTheFirstBytesOnAPort() throws {
        var c = SyntheticConnection(request: "", response: "")
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 2, length: 2_000, [UInt8](repeating: 0x81, count: 2_000)))
        let later = (0..<6).map { "msg\($0)" }
        for text in later { c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: text.utf8.count, Array(text.utf8))) }
        c.close()
        var file = c.capture
        file.records.remove(at: 3)  // after the SYN, SYN-ACK and ACK: the long frame's first segment
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap")
        try file.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--port", "8080"])
        #expect(Self.texts(out) == later, "\(out.result.stdout)")
        #expect(out.kind("resync").first?["offset"].int == 2_004, "\(out.result.stdout)")
        #expect(out.events.allSatisfy { $0["errors"].array.isEmpty }, "\(out.result.stdout)")
    }

    /// --port, and the client opens with a TLS record (wss, or a probe, on the port): neither
    /// HTTP nor a frame, left alone instead of dissected as frames full of violations.
    @Test func tlsOnAPortIsLeftAlone() throws {
        var c = SyntheticConnection(request: "", response: "")
        c.send(fromClient: true, [0x16, 0x03, 0x01, 0x00, 0x40] + [UInt8](repeating: 0xAB, count: 64))
        c.send(fromClient: false, [0x16, 0x03, 0x03, 0x00, 0x20] + [UInt8](repeating: 0xCD, count: 32))
        let out = try Self.run(c, ["--port", "8080"])
        #expect(out.kind("frame").isEmpty && out.kind("connection_closed").isEmpty, "\(out.result.stdout)")
    }

    /// A retry whose response was not captured (the client's frames come long after it): the
    /// frames are shown and the connection does not end as "upgrade refused".
    @Test func retryWithoutItsResponseIsNotCalledRefused() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        c.send(fromClient: true, Array(SyntheticConnection.request("Authorization: Basic d3M6d3M=\r\n").utf8))
        c.pause(seconds: 2)
        c.send(fromClient: true, Self.hello)
        let out = try Self.run(c)
        #expect(Self.texts(out) == ["hello"])
        #expect(out.kind("connection_closed").first?["reason"].string == "fin", "\(out.result.stdout)")
    }

    /// A gap in a plain HTTP connection (no upgrade asked): not shown, as nothing else of it is.
    @Test func gapInAPlainConnectionIsNotShown() throws {
        var c = SyntheticConnection(request: "GET / HTTP/1.1\r\nHost: h\r\n\r\n", response: "")
        c.send(fromClient: false, Array("HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n".utf8) + [UInt8](repeating: 0x61, count: 4_000))
        c.close()
        var file = c.capture
        file.records.remove(at: 5)  // a segment of the response's body
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap")
        try file.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json"])
        #expect(out.events.isEmpty, "\(out.result.stdout)")
    }
}
