import Foundation
import Testing

/// The HTTP side of `wsctl serve`, driven with raw requests (Tests/Interop/raw_client.py) and
/// Python `websockets`.
@Suite("wsctl serve handshake", .requiresPython, .timeLimit(.minutes(3)))
struct ServeHandshakeTests {
    static func upgrade(path: String = "{path}", key: String? = "dGhlIHNhbXBsZSBub25jZQ==", version: String? = "13") -> String {
        var lines = ["GET \(path) HTTP/1.1", "Host: {host}", "Upgrade: websocket", "Connection: Upgrade"]
        if let key { lines.append("Sec-WebSocket-Key: \(key)") }
        if let version { lines.append("Sec-WebSocket-Version: \(version)") }
        return lines.joined(separator: "\r\n") + "\r\n\r\n"
    }

    @Test func plainGetGetsATextPage() throws {
        try withServer { server in
            let r = try Interop.http(server.url, "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")
            #expect(r["status"].int == 200)
            #expect(r["headers"]["content-type"][0].string?.hasPrefix("text/plain") == true)
            #expect(r["body"].string?.contains("WebSocket") == true, "\(r["body"])")
        }
    }

    @Test func upgradeWithoutKeyGets400NamingTheProblem() throws {
        try withServer { server in
            let r = try Interop.http(server.url, Self.upgrade(key: nil))
            #expect(r["status"].int == 400)
            #expect(r["body"].string?.contains("Sec-WebSocket-Key") == true, "\(r["body"])")
            #expect(r["closed"].bool == true)
        }
    }

    @Test func wrongVersionGets426WithVersion13() throws {
        try withServer { server in
            let r = try Interop.http(server.url, Self.upgrade(version: "8"))
            #expect(r["status"].int == 426)
            #expect(r["headers"]["sec-websocket-version"].strings == ["13"])
        }
    }

    @Test func pathFlagGives404ForOtherPaths() throws {
        try withServer(["--path", "/ws"]) { server in
            #expect(server.url.hasSuffix("/ws"))
            let r = try Interop.http(server.url(path: "/other"), Self.upgrade())
            #expect(r["status"].int == 404)
            #expect(r["body"].string?.contains("/ws") == true, "\(r["body"])")
        }
    }

    @Test(.requiresPythonWebsockets)
    func pathFlagUpgradesThatPath() throws {
        try withServer(["--path", "/ws"]) { server in
            let r = try Interop.websockets(server.url, "echo_text")
            #expect(r["received"]["text"].string == "hello, wörld ✓")
        }
    }

    @Test(.requiresPythonWebsockets)
    func subprotocolIsNegotiatedWhenOffered() throws {
        try withServer(["--subprotocol", "chat"]) { server in
            let offered = try Interop.websockets(server.url, "echo_text", ["subprotocols": ["superchat", "chat"]])
            #expect(offered["subprotocol"].string == "chat")
            let notOffered = try Interop.websockets(server.url, "echo_text")
            #expect(notOffered["subprotocol"].isNull)
        }
    }
}
