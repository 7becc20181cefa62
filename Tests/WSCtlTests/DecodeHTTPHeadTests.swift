import Foundation
import Testing

/// A dump of a whole connection starts with its HTTP upgrade: `decode` passes the heads over,
/// says so, and reads frames from after them (a review found the request read as 32 bogus frames).
@Suite("Decode passes over the HTTP upgrade at a stream's start")
struct DecodeHTTPHeadTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined(separator: " ") }
    static let request = Array("GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8)
    static let response = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".utf8)
    /// RFC 6455 §5.7: a masked "Hello" and an unmasked one.
    static let maskedHello: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    static let hello: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]

    static func decode(_ bytes: [UInt8]) throws -> (status: Int32, lines: [[String: Any]], stderr: String, text: String) {
        let r = try CLI.run(["decode", "--json"], stdin: Array(hex(bytes).utf8))
        let t = try CLI.run(["decode"], stdin: Array(hex(bytes).utf8))
        return (r.status, try CLI.jsonLines(r.stdout), r.stderr, t.stdout)
    }

    @Test func requestThenClientFrames() throws {
        let out = try Self.decode(Self.request + Self.maskedHello + Self.maskedHello)
        #expect(out.status == 0, "\(out.stderr)")
        let head = try #require(out.lines.first)
        #expect(head["kind"] as? String == "http_head")
        #expect(head["start_line"] as? String == "GET /chat HTTP/1.1")
        #expect(head["length"] as? Int == Self.request.count && head["offset"] as? Int == 0)
        #expect(head["frames_follow"] as? Bool == true && head["ended"] as? Bool == true)
        let frames = out.lines.filter { $0["kind"] as? String == "frame" }
        #expect(frames.map { $0["text"] as? String } == ["Hello", "Hello"])
        #expect(frames.map { $0["offset"] as? Int } == [0, 11], "offsets count from after the head, as sniff's do")
        #expect(out.text.contains("HTTP passed over (\(Self.request.count) bytes at 0): GET /chat HTTP/1.1"))
    }

    @Test func switchingProtocolsThenServerFrames() throws {
        let out = try Self.decode(Self.response + Self.hello)
        #expect(out.status == 0)
        #expect(out.lines.first?["start_line"] as? String == "HTTP/1.1 101 Switching Protocols")
        #expect(out.lines.filter { $0["kind"] as? String == "frame" }.count == 1)
    }

    /// A 401 and the client's second try on the same connection: both requests are passed over.
    @Test func twoRequestsThenFrames() throws {
        let first = Array("GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n".utf8)
        let out = try Self.decode(first + Self.request + Self.maskedHello)
        #expect(out.lines.filter { $0["kind"] as? String == "http_head" }.map { $0["offset"] as? Int } == [0, first.count])
        #expect(out.lines.filter { $0["kind"] as? String == "frame" }.map { $0["text"] as? String } == ["Hello"])
    }

    /// Ordinary exchanges with bodies (a length, chunks) before the upgrade on a kept-alive
    /// connection: bodies are passed over with their heads.
    @Test func bodiesBeforeTheUpgrade() throws {
        let post = Array("POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 7\r\n\r\n".utf8) + Self.hello
        let client = try Self.decode(post + Self.request + Self.maskedHello)
        #expect(client.status == 0, "\(client.stderr)")
        #expect(client.lines.filter { $0["kind"] as? String == "http_head" }.map { $0["length"] as? Int } == [post.count, Self.request.count])
        #expect(client.lines.filter { $0["kind"] as? String == "frame" }.map { $0["text"] as? String } == ["Hello"])
        let ok = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".utf8)
        let server = try Self.decode(ok + Self.response + Self.hello)
        #expect(server.lines.filter { $0["kind"] as? String == "http_head" }.map { $0["frames_follow"] as? Bool } == [false, true])
        #expect(server.lines.filter { $0["kind"] as? String == "frame" }.count == 1)
        // A body the input ends inside is truncated input.
        let cut = try Self.decode(Array("POST /form HTTP/1.1\r\nContent-Length: 70\r\n\r\nabc".utf8))
        #expect(cut.status == 1 && cut.lines.last?["rule"] as? String == "truncated")
    }

    /// A refusal: what follows it is HTTP (its body), not frames.
    @Test func refusalEndsTheFrames() throws {
        let refusal = Array("HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\n".utf8) + Self.hello
        let out = try Self.decode(refusal)
        #expect(out.status == 0)
        #expect(out.lines.count == 1)
        #expect(out.lines.first?["frames_follow"] as? Bool == false)
        #expect(out.text.contains("HTTP/1.1 403 Forbidden; nothing after it is read as frames"))
    }

    @Test func headWithoutItsEndIsTruncatedInput() throws {
        let out = try Self.decode(Array("GET /chat HTTP/1.1\r\nHost: exa".utf8))
        #expect(out.status == 1)
        #expect(out.lines.first?["ended"] as? Bool == false)
        #expect(out.lines.last?["rule"] as? String == "truncated")
        #expect(out.stderr.contains("truncated input"))
    }

    /// A start line with no end of head within the 64 KiB a head may have is not read as frames,
    /// and is not truncated input either.
    @Test func headThatNeverEnds() throws {
        let junk = Array("GET /x HTTP/1.1\r\n".utf8) + Array(repeating: UInt8(ascii: "a"), count: 70_000)
        let out = try Self.decode(junk)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.lines.count == 1 && out.lines.first?["ended"] as? Bool == true && out.lines.first?["frames_follow"] as? Bool == false)
    }

    /// Frames alone are read as before, whatever their bytes spell.
    @Test func framesAloneAreUntouched() throws {
        let out = try Self.decode(Self.hello + Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(out.lines.first?["kind"] as? String == "frame")
        #expect(!out.lines.contains { $0["kind"] as? String == "http_head" })
    }

    /// `tshark -x` of whole fixture captures, handshakes included: decode finds the frames sniff
    /// finds, stream by stream, with no violation.
    @Test(.enabled(if: SniffTshark.tshark != nil, "tshark is not installed (apt-get install tshark)"),
          arguments: ["basic", "fragmented", "closecodes", "envelopes", "deflate", "keepalive", "refused"])
    func tsharkDumpsOfWholeConnections(_ name: String) throws {
        let dump = try SniffTshark.run(name, ["-r", SniffFixtures.path(name), "-x"])
        let r = try CLI.run(["decode", "--json"], stdin: Array(dump.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try CLI.jsonLines(r.stdout)
        let decoded = lines.filter { $0["kind"] as? String == "frame" }.count
        let sniffed = try SniffOutput.run(["sniff", "-r", SniffFixtures.path(name), "--json"]).kind("frame").count
        #expect(decoded == sniffed && (decoded > 0 || name == "refused"), "decode \(decoded) frames, sniff \(sniffed)")
        #expect(lines.filter { $0["kind"] as? String == "http_head" }.count >= 2)
    }
}
