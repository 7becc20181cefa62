import Foundation
import Testing

/// A HEAD request gets the status and headers the same GET would get, Content-Length included,
/// and no body (RFC 9110 §9.3.2), on every plain-HTTP response of `wsctl serve`.
@Suite("wsctl serve HEAD requests", .timeLimit(.minutes(2)))
struct ServeHeadRequestTests {
    static func request(_ method: String, _ path: String, upgrade version: String? = nil) -> [UInt8] {
        var lines = ["\(method) \(path) HTTP/1.1", "Host: 127.0.0.1"]
        if let version {
            lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                      "Sec-WebSocket-Version: \(version)"]
        }
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }

    /// Requests whose HEAD form must answer as their GET form does, without the body.
    static let pages: [(name: String, path: String, upgrade: String?, status: Int)] = [
        ("metrics", "/metrics", nil, 200),  // first: the refusals below change the numbers
        ("health", "/healthz", nil, 200),
        ("text page", "/", nil, 200),
        ("upgrade on another path", "/other", "13", 404),
    ]

    @Test func headGetsTheHeadersOfGetWithoutTheBody() async throws {
        let (heads, gets, upgradeHead, post) = try await offThePool {
            try withServer(["--metrics", "--path", "/ws"]) { server in
                var heads: [RawExchange.Reply] = [], gets: [RawExchange.Reply] = []
                for p in Self.pages {
                    heads.append(try RawExchange.send(Self.request("HEAD", p.path, upgrade: p.upgrade), port: server.port))
                    gets.append(try RawExchange.send(Self.request("GET", p.path, upgrade: p.upgrade), port: server.port))
                }
                // An upgrade cannot be a HEAD: refused (the GET form, version 8, would get 426), still without a body.
                let upgradeHead = try RawExchange.send(Self.request("HEAD", "/ws", upgrade: "8"), port: server.port)
                let post = try RawExchange.send(Self.request("POST", "/"), port: server.port)
                return (heads, gets, upgradeHead, post)
            }
        }
        for (p, (head, get)) in zip(Self.pages, zip(heads, gets)) {
            #expect(get.status == p.status, "\(p.name): \(get.text.prefix(300))")
            #expect(head.status == p.status, "\(p.name): \(head.text.prefix(300))")
            #expect(!get.body.isEmpty, "\(p.name)")
            #expect(head.closed, "\(p.name)")
            #expect(head.text.hasSuffix("\r\n\r\n") && head.body.isEmpty, "\(p.name): a body after the head: \(head.body.prefix(200))")
            #expect(head.header("content-length") != nil, "\(p.name)")
            #expect(head.header("content-length") == get.header("content-length"), "\(p.name)")
            #expect(head.header("content-type") == get.header("content-type"), "\(p.name)")
        }
        #expect(upgradeHead.status.map { (400..<500).contains($0) } == true, "\(upgradeHead.text)")
        #expect(upgradeHead.closed && upgradeHead.body.isEmpty, "\(upgradeHead.text)")
        #expect(post.status == 405, "\(post.text)")
        #expect(post.header("allow") == "GET, HEAD", "\(post.text)")
        #expect(!post.body.isEmpty, "\(post.text)")
    }
}
