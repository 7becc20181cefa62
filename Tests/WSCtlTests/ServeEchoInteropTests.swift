import Foundation
import Testing

/// `wsctl serve` (echo mode) against real clients: Python `websockets` and Node's built-in
/// WebSocket, each started by the test on loopback (Tests/Interop).
@Suite("wsctl serve echo with Python websockets", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeEchoInteropTests {
    @Test func textIsEchoedAsText() throws {
        try withServer { server in
            let r = try Interop.websockets(server.url, "echo_text")
            #expect(r["received"]["type"].string == "text")
            #expect(r["received"]["text"].string == "hello, wörld ✓")
        }
    }

    @Test func binaryIsEchoedAsBinary() throws {
        try withServer { server in
            let r = try Interop.websockets(server.url, "echo_binary")
            #expect(r["received"]["type"].string == "binary")
            #expect(r["received"]["length"].int == 1024)
            #expect(r["received"]["hex"].string == r["sent_hex"].string)
        }
    }

    /// 16 MiB is the default --max-message-size: a message of exactly that size is echoed whole,
    /// whether or not the client negotiated permessage-deflate (random bytes: incompressible).
    @Test(arguments: [false, true])
    func sixteenMiBMessageIsEchoed(compression: Bool) throws {
        try withServer { server in
            let r = try Interop.websockets(server.url, "echo_large", ["size": 16 << 20, "compression": compression, "timeout": 25])
            #expect(r["extensions"].isNull == !compression)
            #expect(r["type"].string == "binary")
            #expect(r["length"].int == 16 << 20)
            #expect(r["equal"].bool == true)
            #expect(r["sha256_received"].string == r["sha256_sent"].string)
        }
    }

    @Test(arguments: [false, true])
    func fragmentedMessagesAreEchoedAsOneMessage(compression: Bool) throws {
        try withServer { server in
            let r = try Interop.websockets(server.url, "fragments", ["compression": compression])
            #expect(r["text"]["type"].string == "text")
            #expect(r["text"]["text"].string == "Fragmented wörld ✓")
            #expect(r["text"]["text"].string == r["text_sent"].string)
            #expect(r["binary"]["type"].string == "binary")
            #expect(r["binary"]["hex"].string == "0001020304ff")
        }
    }

    @Test func pingIsAnsweredWithPongCarryingItsPayload() throws {
        try withServer { server in
            // websockets completes the ping's waiter only for a pong with the same payload.
            let r = try Interop.websockets(server.url, "ping")
            #expect(r["pong"].bool == true)
            #expect(r["after"]["text"].string == "still open")
        }
    }

    @Test func compressionIsNegotiatedWhenOffered() throws {
        try withServer { server in
            let r = try Interop.websockets(server.url, "echo_text")
            let header = try #require(r["extensions"].string)
            #expect(header.hasPrefix("permessage-deflate"))
            #expect(r["received"]["text"].string == "hello, wörld ✓")
        }
    }

    @Test func noCompressionDeclinesTheOffer() throws {
        try withServer(["--no-compression"]) { server in
            let r = try Interop.websockets(server.url, "echo_text")
            #expect(r["extensions"].isNull, "Sec-WebSocket-Extensions: \(r["extensions"])")
            #expect(r["received"]["type"].string == "text")
            #expect(r["received"]["text"].string == "hello, wörld ✓")
        }
    }

    @Test(arguments: [1000, 1001, 3000, 4999])
    func clientCloseCodeIsEchoed(code: Int) throws {
        try withServer { server in
            let r = try Interop.websockets(server.url, "close", ["code": code, "reason": "bye"])
            #expect(r["received_code"].int == code)
        }
    }

    @Test func twentyConcurrentClientsEachExchangeFiftyMessages() throws {
        try withServer { server in
            let r = try Interop.websockets(server.url, "concurrent", ["clients": 20, "messages": 50])
            #expect(r["errors"].array.isEmpty, "\(r["errors"])")
            #expect(r["clients_ok"].int == 20)
            #expect(r["echoed"].int == 1000)
        }
    }
}

@Suite("wsctl serve echo with Node's WebSocket", .requiresNodeWebSocket, .timeLimit(.minutes(3)))
struct ServeNodeInteropTests {
    @Test func textIsEchoed() throws {
        try withServer { server in
            let r = try Interop.nodeClient(server.url, "echo_text")
            #expect(r["received"]["type"].string == "text")
            #expect(r["received"]["text"].string == "hello from node ✓")
        }
    }

    @Test func binaryIsEchoed() throws {
        try withServer { server in
            let r = try Interop.nodeClient(server.url, "echo_binary")
            #expect(r["received"]["type"].string == "binary")
            #expect(r["received"]["length"].int == 1024)
            #expect(r["received"]["hex"].string == r["sent_hex"].string)
        }
    }

    @Test func closeCodeIsEchoed() throws {
        try withServer { server in
            let r = try Interop.nodeClient(server.url, "close")
            #expect(r["code"].int == 4000)
            #expect(r["was_clean"].bool == true)
        }
    }
}
