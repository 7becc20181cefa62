import Foundation
import Testing

/// A 101's permessage-deflate answer held to what the request offered (RFC 7692 §7.1), as a client
/// must: a response the client has to fail is shown with the rule it broke, and frames are still
/// dissected (RSV1 decides compression).
@Suite("Sniff checks the permessage-deflate answer against the offer", .timeLimit(.minutes(3)))
struct SniffNegotiationTests {
    /// An upgrade offering `offer` and answered with `answer` (nil: no extension header), then
    /// "Hello" compressed alone (RFC 7692 §7.2.3.1) from the server, with RSV1: not UTF-8 as it travels.
    static func helloCompressed(offer: String?, answer: String?) throws -> SniffOutput {
        var c = SyntheticConnection(
            request: SyntheticConnection.request(offer.map { "Sec-WebSocket-Extensions: \($0)\r\n" } ?? ""),
            response: SyntheticConnection.response(answer.map { "Sec-WebSocket-Extensions: \($0)\r\n" } ?? ""))
        let compressed: [UInt8] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, rsv1: true, length: compressed.count, compressed))
        return try SniffUpgradeTests.run(c)
    }

    static func handshake(offer: String, answer: String) throws -> JSON {
        let out = try helloCompressed(offer: offer, answer: answer)
        let h = try #require(out.kind("handshake").first)
        // Whatever the verdict, the frame is inflated: RSV1 says it is compressed.
        #expect(out.kind("message").compactMap { $0["inflated_text"].string } == ["Hello"], "\(offer) / \(answer)")
        return h
    }

    @Test(arguments: [
        ("permessage-deflate", "permessage-deflate; client_max_window_bits", "client_max_window_bits in a response needs a value"),
        ("permessage-deflate", "permessage-deflate; client_max_window_bits=10", "not offered"),
        ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=12", "exceeds the offered 10"),
        ("permessage-deflate", "permessage-deflate; server_max_window_bits=16", "server_max_window_bits"),
        ("permessage-deflate", "permessage-deflate; server_max_window_bits", "server_max_window_bits needs a value"),
        ("permessage-deflate; server_no_context_takeover", "permessage-deflate", "server_no_context_takeover was offered"),
        ("permessage-deflate", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "more than once"),
        ("permessage-deflate", "permessage-deflate; server_no_context_takeover=1", "server_no_context_takeover"),
        ("permessage-deflate", "permessage-deflate; foo", "foo"),
        ("permessage-deflate", "permessage-deflate, permessage-deflate", "accepted 2 times"),
    ])
    func answerTheClientMustFail(_ offer: String, _ answer: String, _ rule: String) throws {
        let h = try Self.handshake(offer: offer, answer: answer)
        #expect(h["upgraded"].bool == false, "\(h)")
        let error = try #require(h["response_error"].string, "\(offer) / \(answer): \(h)")
        #expect(error.contains(rule), "\(error)")
        #expect(error.contains("RFC 7692"), "\(error)")
    }

    /// Answers that keep to the rules, among them one answering the second of two offers.
    @Test(arguments: [
        ("permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=9"),
        ("permessage-deflate; server_no_context_takeover, permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; server_no_context_takeover", "PerMessage-Deflate; Server_No_Context_Takeover"),
    ])
    func answerThatKeepsToTheOffer(_ offer: String, _ answer: String) throws {
        let h = try Self.handshake(offer: offer, answer: answer)
        #expect(h["upgraded"].bool == true, "\(h)")
        #expect(h["response_error"].isNull, "\(h)")
    }
}

/// An extension sniff does not know, agreed in the handshake: its RSV bits and payloads are its own.
@Suite("Sniff leaves an unknown extension's frames unjudged", .timeLimit(.minutes(3)))
struct SniffUnknownExtensionTests {
    @Test func rsvBitsAndPayloadsOfAnUnknownExtension() throws {
        let out = try SniffNegotiationTests.helloCompressed(offer: "x-webkit-deflate-frame", answer: "x-webkit-deflate-frame")
        let h = try #require(out.kind("handshake").first)
        #expect(h["upgraded"].bool == true, "\(h)")
        let frames = out.kind("frame"), messages = out.kind("message")
        try #require(frames.count == 1 && messages.count == 1)
        #expect(frames[0]["errors"].array.isEmpty, "\(frames[0])")
        #expect(messages[0]["errors"].array.isEmpty, "\(messages[0])")
        #expect(messages[0]["payload_hex"].string == "f248cdc9c90700", "\(messages[0])")
    }

    /// Without any extension agreed, the same frame breaks two rules.
    @Test func theSameFrameWithoutAnExtension() throws {
        let out = try SniffNegotiationTests.helloCompressed(offer: nil, answer: nil)
        let rules = (out.kind("frame") + out.kind("message")).flatMap { $0["errors"].array.compactMap { $0["rule"].string } }
        #expect(rules.contains("reserved-bits") && rules.contains("invalid-utf8"), "\(rules)")
    }
}

/// Packet headers that lie about their length.
@Suite("Sniff believes the wire over an IP header", .timeLimit(.minutes(3)))
struct SniffIPLengthTests {
    /// A frame whose payload the snapshot length cut (its boundary kept by its header's length):
    /// incomplete, as its message is; the next frame is whole.
    @Test func frameWithBytesLostInAGapIsIncomplete() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        let long = SyntheticConnection.clientFrame(opcode: 1, Array(String(repeating: "B", count: 120).utf8))
        c.send(fromClient: true, long)
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.close()
        var capture = c.capture
        let index = try #require(capture.records.firstIndex { Array($0.data.suffix(long.count)) == long })
        capture.records[index].data.removeLast(60)
        let dir = try SniffTempDirectory()
        let path = dir.path("cut.pcap")
        try capture.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--frames"])
        let frames = out.kind("frame"), messages = out.kind("message")
        try #require(frames.count == 2 && messages.count == 2)
        #expect(frames[0]["incomplete"].bool == true && messages[0]["incomplete"].bool == true, "\(frames[0])")
        #expect(frames[0]["payload_length"].int == 120)
        #expect(frames[1]["incomplete"].bool != true && frames[1]["text"].string == "hello")
    }

    /// An IPv4 total length 200 bytes beyond a packet that was captured whole: the bytes it claims
    /// never were on the wire, so they are no gap, and the next segment is not taken for a
    /// retransmission of them (tshark: "IPv4 total length exceeds packet length").
    @Test func totalLengthBeyondThePacketOnTheWire() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        let first = SyntheticConnection.clientFrame(opcode: 1, Array("first".utf8))
        c.send(fromClient: true, first)
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("second".utf8)))
        c.close()
        var capture = c.capture
        let index = try #require(capture.records.firstIndex { $0.data.count >= first.count && Array($0.data.suffix(first.count)) == first })
        var data = capture.records[index].data
        let total = Int(data[16]) << 8 | Int(data[17])  // after the 14-byte Ethernet header
        data[16] = UInt8((total + 200) >> 8)
        data[17] = UInt8((total + 200) & 0xFF)
        capture.records[index].data = data
        #expect(Int(capture.records[index].wireLength) == data.count)
        let dir = try SniffTempDirectory()
        let path = dir.path("lying.pcap")
        try capture.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json"])
        #expect(out.kind("gap").isEmpty, "\(out.kind("gap"))")
        #expect(out.kind("message").compactMap { $0["text"].string } == ["first", "second"])
    }
}

/// Handshake heads that do not arrive as written: with bare LF line ends, or cut short by the
/// snapshot length or a lost segment.
@Suite("Sniff reads handshake heads cut short or with bare line feeds", .timeLimit(.minutes(3)))
struct SniffHandshakeHeadTests {
    static func run(_ capture: PcapFile, _ extra: [String] = []) throws -> SniffOutput {
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap")
        try capture.write(to: path)
        return try SniffOutput.run(["sniff", "-r", path, "--json"] + extra)
    }

    static func texts(_ out: SniffOutput) -> [String] { out.kind("message").compactMap { $0["text"].string } }

    /// RFC 9112 §2.2: a recipient may take a lone LF for a line end (tshark does).
    @Test func headsWithBareLineFeeds() throws {
        let lf = { (s: String) in s.replacingOccurrences(of: "\r\n", with: "\n") }
        var c = SyntheticConnection(request: lf(SyntheticConnection.request()), response: lf(SyntheticConnection.response()))
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.send(fromClient: false, SniffUpgradeTests.world)
        c.close()
        let out = try Self.run(c.capture)
        let h = try #require(out.kind("handshake").first)
        #expect(h["upgraded"].bool == true && h["accept_matches"].bool == true, "\(h)")
        #expect(Self.texts(out) == ["hello", "world"])
    }

    /// A capture taken with a snapshot length of 94 bytes (40 of TCP payload): every head is cut,
    /// the short frames come whole. The handshake is shown with what came, and the frames after it.
    @Test func headsCutByASmallSnapshotLength() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.send(fromClient: false, SniffUpgradeTests.world)
        c.close()
        var capture = c.capture
        for i in capture.records.indices where capture.records[i].data.count > 94 {
            capture.records[i].data = Array(capture.records[i].data.prefix(94))
        }
        let out = try Self.run(capture)
        let h = try #require(out.kind("handshake").first)
        #expect(h["status"].int == 101, "\(h)")
        #expect(h["request_error"].string?.contains("not captured") == true, "\(h)")
        #expect(h["response_error"].string?.contains("not captured") == true, "\(h)")
        #expect(Self.texts(out) == ["hello", "world"])
        #expect(out.kind("frame").allSatisfy { $0["errors"].array.isEmpty })
    }

    /// The response's middle segment lost (its status line cut inside the reason): the handshake
    /// is read from what came, the rest of the head after the gap is passed over, and the frames
    /// after it are dissected, none of them from header bytes.
    @Test func responseHeadWithASegmentLost() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: "")
        let pieces = ["HTTP/1.1 101 Switching Protoc", "ols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
                      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"]
        for p in pieces { c.send(fromClient: false, Array(p.utf8)) }
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.send(fromClient: false, SniffUpgradeTests.world)
        c.close()
        var capture = c.capture
        let middle = Array(pieces[1].utf8)
        let lost = try #require(capture.records.firstIndex { Array($0.data.suffix(middle.count)) == middle })
        capture.records.remove(at: lost)
        let out = try Self.run(capture, ["--frames"])
        let h = try #require(out.kind("handshake").first)
        #expect(h["status"].int == 101, "\(h)")
        #expect(h["response_error"].string?.contains("not captured") == true, "\(h)")
        #expect(Self.texts(out) == ["hello", "world"])
        #expect(out.kind("frame").count == 2)
        #expect(out.kind("frame").allSatisfy { $0["errors"].array.isEmpty }, "\(out.kind("frame"))")
    }

    /// An upgrade request with a body (Content-Length, or chunked): the message ends after its body
    /// (RFC 9112 §6.3), so the body is not read as frames, whether it comes with the head or after it.
    @Test(arguments: [
        ("Content-Length: 3\r\n", "abc", true), ("Content-Length: 3\r\n", "abc", false),
        ("Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n", true),
        ("Transfer-Encoding: chunked\r\n", "3\nabc\n0\n\n", true),
    ])
    func upgradeRequestWithABody(_ header: String, _ body: String, _ withTheHead: Bool) throws {
        var c = SyntheticConnection(request: withTheHead ? SyntheticConnection.request(header) + body : SyntheticConnection.request(header),
                                    response: "")
        if !withTheHead { c.send(fromClient: true, Array(body.utf8)) }
        c.send(fromClient: false, Array(SyntheticConnection.response().utf8))
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.send(fromClient: false, SniffUpgradeTests.world)
        c.close()
        let out = try Self.run(c.capture, ["--frames"])
        #expect(Self.texts(out) == ["hello", "world"])
        #expect(out.kind("frame").count == 2, "\(out.kind("frame"))")
        #expect(out.kind("frame").allSatisfy { $0["errors"].array.isEmpty }, "\(out.kind("frame"))")
    }

    /// A 101 captured before its request (a capture from two vantage points): the request, when
    /// it comes, is passed over, not read as frames.
    @Test func responseCapturedBeforeItsRequest() throws {
        var c = SyntheticConnection(request: "", response: SyntheticConnection.response())
        c.send(fromClient: true, Array(SyntheticConnection.request().utf8))
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.send(fromClient: false, SniffUpgradeTests.world)
        c.close()
        let out = try Self.run(c.capture, ["--frames"])
        #expect(out.kind("handshake").count == 1)
        #expect(Self.texts(out) == ["hello", "world"])
        #expect(out.kind("frame").allSatisfy { $0["errors"].array.isEmpty }, "\(out.kind("frame"))")
    }

    /// The request's last segment lost and the 101 right after it: the request is shown as far as
    /// it came, its key cut off (so the Accept is not judged).
    @Test func requestEndLostBeforeTheResponse() throws {
        var c = SyntheticConnection(request: "", response: "")
        let request = SyntheticConnection.request()
        let cut = request.range(of: "Sec-WebSocket-Key")!.lowerBound
        let first = String(request[..<cut]), last = String(request[cut...])
        c.send(fromClient: true, Array(first.utf8))
        c.send(fromClient: true, Array(last.utf8))
        c.send(fromClient: false, Array(SyntheticConnection.response().utf8))
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.close()
        var capture = c.capture
        let lost = Array(last.utf8)
        let index = try #require(capture.records.firstIndex { Array($0.data.suffix(lost.count)) == lost })
        capture.records.remove(at: index)
        let out = try Self.run(capture)
        let h = try #require(out.kind("handshake").first)
        #expect(h["request"].string == "GET /chat HTTP/1.1", "\(h)")
        #expect(h["request_error"].string?.contains("not captured") == true, "\(h)")
        #expect(h["response_error"].isNull && h["status"].int == 101, "\(h)")
        #expect(Self.texts(out) == ["hello"])
    }

    /// The request cut after its key, before its extension offer: the Accept is still judged, and
    /// the answer's permessage-deflate is not called unoffered (the offer may be what was lost).
    @Test func requestCutAfterItsKey() throws {
        var c = SyntheticConnection(request: "", response: "")
        let request = SyntheticConnection.request("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        let cut = request.range(of: "Sec-WebSocket-Extensions")!.lowerBound
        let first = String(request[..<cut]), last = String(request[cut...])
        c.send(fromClient: true, Array(first.utf8))
        c.send(fromClient: true, Array(last.utf8))
        c.send(fromClient: false, Array(SyntheticConnection.response("Sec-WebSocket-Extensions: permessage-deflate\r\n").utf8))
        c.close()
        var capture = c.capture
        let lost = Array(last.utf8)
        capture.records.remove(at: try #require(capture.records.firstIndex { Array($0.data.suffix(lost.count)) == lost }))
        let out = try Self.run(capture)
        let h = try #require(out.kind("handshake").first)
        #expect(h["accept_matches"].bool == true && h["response_error"].isNull, "\(h)")
        #expect(h["request_error"].string?.contains("not captured") == true, "\(h)")
    }

    /// A plain request cut short and answered 200 on a kept-alive connection, then an upgrade: the
    /// first exchange is passed over as an ordinary one, the upgrade followed.
    @Test func cutPlainRequestThenAnUpgrade() throws {
        var c = SyntheticConnection(request: "", response: "")
        let plain = "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: a-long-user-agent/1.0 (with comments)\r\n\r\n"
        c.send(fromClient: true, Array(plain.utf8))
        c.send(fromClient: false, Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".utf8))
        c.send(fromClient: true, Array(SyntheticConnection.request().utf8))
        c.send(fromClient: false, Array(SyntheticConnection.response().utf8))
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.close()
        var capture = c.capture
        let index = try #require(capture.records.firstIndex { Array($0.data.suffix(plain.utf8.count)) == Array(plain.utf8) })
        capture.records[index].data.removeLast(40)  // the snapshot length cut its end
        let out = try Self.run(capture)
        let h = try #require(out.kind("handshake").first)
        #expect(h["upgraded"].bool == true, "\(h)")
        #expect(Self.texts(out) == ["hello"])
    }

    /// A plain request cut before any Upgrade header, answered 200: not an upgrade, not shown.
    @Test func plainRequestCutShortIsNotShown() throws {
        var c = SyntheticConnection(
            request: "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: a-long-user-agent/1.0 (with comments)\r\n\r\n",
            response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
        c.close()
        var capture = c.capture
        for i in capture.records.indices where capture.records[i].data.count > 94 {
            capture.records[i].data = Array(capture.records[i].data.prefix(94))
        }
        let out = try Self.run(capture)
        #expect(out.kind("handshake").isEmpty, "\(out.kind("handshake"))")
        #expect(out.kind("gap").isEmpty)
    }

    /// The same cut request never answered: not counted as a WebSocket connection, not saved by -w.
    @Test func unansweredCutPlainRequestIsNeitherShownNorSaved() throws {
        var c = SyntheticConnection(
            request: "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: a-long-user-agent/1.0 (with comments)\r\n\r\n",
            response: "")
        c.close()
        var capture = c.capture
        for i in capture.records.indices where capture.records[i].data.count > 94 {
            capture.records[i].data = Array(capture.records[i].data.prefix(94))
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("c.pcap"), saved = dir.path("saved.pcap")
        try capture.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--stats", "-w", saved])
        #expect(out.kind("handshake").isEmpty && out.kind("connection_closed").isEmpty, "\(out.result.stdout)")
        #expect(try PcapFile(path: saved).records.isEmpty)
    }
}
