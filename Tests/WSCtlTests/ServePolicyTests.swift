import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every policy and limit of `wsctl serve`, triggered by a real client.
@Suite("wsctl serve policies", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServePolicyTests {
    // MARK: Authentication

    @Test func authTokenMissingClosesWith4001() throws {
        try withServer(["--auth-token", "T"]) { server in
            let r = try Interop.websockets(server.url, "expect_close")
            #expect(r["close_code"].int == 4001)
            #expect(r["messages"].array.isEmpty)
        }
    }

    @Test func authTokenWrongClosesWith4002() throws {
        try withServer(["--auth-token", "T"]) { server in
            let r = try Interop.websockets(server.url(path: "/?token=wrong"), "expect_close")
            #expect(r["close_code"].int == 4002)
        }
    }

    @Test func authTokenInQueryIsAccepted() throws {
        try withServer(["--auth-token", "T"]) { server in
            let r = try Interop.websockets(server.url(path: "/?token=T"), "expect_close", ["send_text": ["in"], "timeout": 0.5])
            let texts = r["messages"].array.map { $0["text"].string }
            #expect(texts == ["in"])
            #expect(r["closed"].bool == false, "closed with \(r["close_code"])")
        }
    }

    @Test func authTokenAsBearerHeaderIsAccepted() throws {
        try withServer(["--auth-token", "T"]) { server in
            let r = try Interop.websockets(server.url, "expect_close",
                                           ["headers": ["Authorization": "Bearer T"], "send_text": ["in"], "timeout": 0.5])
            let texts = r["messages"].array.map { $0["text"].string }
            #expect(texts == ["in"])
            #expect(r["closed"].bool == false, "closed with \(r["close_code"])")
        }
    }

    @Test func authTokensFileIsRead() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-serve-tokens-\(UUID().uuidString)")
        try "# tokens for the test\nfirst\nsecond\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try withServer(["--auth-tokens-file", file.path]) { server in
            let good = try Interop.websockets(server.url(path: "/?token=second"), "expect_close", ["send_text": ["in"], "timeout": 0.5])
            let goodTexts = good["messages"].array.map { $0["text"].string }
            #expect(goodTexts == ["in"])
            #expect(good["closed"].bool == false, "closed with \(good["close_code"])")
            let bad = try Interop.websockets(server.url(path: "/?token=third"), "expect_close")
            #expect(bad["close_code"].int == 4002)
        }
    }

    // MARK: Origin

    @Test func otherOriginClosesWith4003() throws {
        try withServer(["--allow-origin", "*.example.com"]) { server in
            let r = try Interop.websockets(server.url, "expect_close", ["origin": "https://evil.example.org"])
            #expect(r["close_code"].int == 4003)
        }
    }

    @Test func wildcardOriginIsAllowed() throws {
        try withServer(["--allow-origin", "*.example.com"]) { server in
            let r = try Interop.websockets(server.url, "expect_close",
                                           ["origin": "https://a.example.com", "send_text": ["in"], "timeout": 0.5])
            let texts = r["messages"].array.map { $0["text"].string }
            #expect(texts == ["in"])
            #expect(r["closed"].bool == false, "closed with \(r["close_code"])")
        }
    }

    // MARK: Rate and size limits

    @Test func rateLimitClosesWith4004AfterTheBurst() throws {
        try withServer(["--rate-limit", "5/s"]) { server in
            let burst = (0..<12).map { "m\($0)" }
            let r = try Interop.websockets(server.url, "expect_close", ["send_text": burst])
            #expect(r["close_code"].int == 4004)
            // The bucket holds 5; a few milliseconds refill less than one more.
            #expect((5...6).contains(r["messages"].array.count), "\(r["messages"].array.count) echoes before the close")
        }
    }

    /// Over the limit: 1009. With compression, zeros deflate to a few bytes, so only the inflated
    /// size can trip the limit.
    @Test(arguments: [(false, "send_binary_sizes"), (true, "send_zeros")])
    func messageOverMaxMessageSizeClosesWith1009(compression: Bool, content: String) throws {
        try withServer(["--max-message-size", "1KiB"]) { server in
            let r = try Interop.websockets(server.url, "expect_close", ["compression": compression, content: [1025]])
            #expect(r["close_code"].int == 1009)
            #expect(r["messages"].array.isEmpty)
        }
    }

    /// A message of exactly --max-message-size is allowed, whatever its deflated size on the wire.
    @Test(arguments: [false, true])
    func messageAtMaxMessageSizeIsEchoed(compression: Bool) throws {
        try withServer(["--max-message-size", "1KiB"]) { server in
            let r = try Interop.websockets(server.url, "expect_close",
                                           ["compression": compression, "send_binary_sizes": [1024], "timeout": 0.5])
            #expect(r["close_code"].isNull, "closed with \(r["close_code"]) \(r["close_reason"])")
            let lengths = r["messages"].array.map { $0["length"].int }
            #expect(lengths == [1024])
        }
    }

    @Test func frameOverMaxFrameSizeClosesWith1009() throws {
        try withServer(["--max-frame-size", "1KiB"]) { server in
            // websockets sends a message as one frame.
            let r = try Interop.websockets(server.url, "expect_close", ["compression": false, "send_binary_sizes": [2048]])
            #expect(r["close_code"].int == 1009)
            #expect(r["messages"].array.isEmpty)
        }
    }

    @Test func thirdConnectionOverMaxConnectionsGets503() throws {
        try withServer(["--max-connections", "2"]) { server in
            let r = try Interop.websockets(server.url, "max_connections", ["hold": 2])
            #expect(r["held"].int == 2)
            #expect(r["extra_opened"].bool == false)
            #expect(r["extra_status"].int == 503)
            #expect(r["held_echoes"].strings == ["still here", "still here"])
            #expect(r["after_leave_opened"].bool == true)
        }
    }

    // MARK: Timeouts

    @Test func silentClientIsCutAfterTheHandshakeTimeout() throws {
        try withServer(["--handshake-timeout", "1s"]) { server in
            let r = try Interop.raw(server.url, "silent", ["timeout": 5])
            #expect(r["closed"].bool == true)
            let elapsed = try #require(r["elapsed"].double)
            #expect(elapsed >= 0.9 && elapsed <= 2.5, "closed after \(elapsed) s")
        }
    }

    @Test func peerThatNeverAnswersPingsIsClosed() throws {
        try withServer(["--ping-interval", "1s", "--pong-timeout", "1s"]) { server in
            let r = try Interop.raw(server.url, "no_pong", ["timeout": 6])
            let pings = r["frames"].array.filter { $0["opcode"].int == 9 }
            #expect(!pings.isEmpty, "no ping within 6 s: \(r["frames"])")
            let firstPing = try #require(pings.first?["t"].double)
            #expect(firstPing >= 0.8 && firstPing <= 2.0, "first ping after \(firstPing) s")
            #expect(r["closed"].bool == true)
            let elapsed = try #require(r["elapsed"].double)
            #expect(elapsed >= 1.8 && elapsed <= 4.0, "closed after \(elapsed) s")
        }
    }

    @Test func peerThatAnswersPingsStaysOpen() throws {
        try withServer(["--ping-interval", "1s", "--pong-timeout", "1s"]) { server in
            // websockets answers pings by itself; 2.5 s covers two ping intervals and a pong timeout.
            let r = try Interop.websockets(server.url, "expect_close", ["timeout": 2.5])
            #expect(r["closed"].bool == false, "closed with \(r["close_code"]) \(r["close_reason"])")
        }
    }

    @Test func idleClientIsClosedWith1001() throws {
        try withServer(["--idle-timeout", "1s"]) { server in
            let r = try Interop.websockets(server.url, "expect_close", ["timeout": 5])
            #expect(r["close_code"].int == 1001)
            let elapsed = try #require(r["elapsed"].double)
            #expect(elapsed >= 0.9 && elapsed <= 2.5, "closed after \(elapsed) s")
        }
    }

    // MARK: Slow consumers

    static let slowConsumerFlags = ["--mode", "broadcast", "--max-send-queue", "64KiB"]
    /// 8 MiB in 16 KiB messages: more than loopback socket buffers (4 MiB send buffer at most
    /// here) and the 64 KiB queue can hold for a client that does not read.
    static var slowConsumerLoad: [String: Any] { ["count": 512, "size": 16 * 1024, "compression": false] }

    @Test func slowConsumerIsClosedWith1008AndOthersAreStillServed() throws {
        try withServer(Self.slowConsumerFlags) { server in
            let r = try Interop.websockets(server.url, "slow_consumer", Self.slowConsumerLoad)
            #expect(r["reader_received"].int == 512)
            #expect(r["sender_received"].int == 512)
            let afterBurst = r["after_burst"].array.map { $0["text"].string }
            #expect(afterBurst == ["after the burst", "after the burst"])
            #expect(r["slow_close"]["code"].int == 1008, "the slow client read \(r["slow_data_frames"]) frames, then \(r["slow_close"])")
            #expect(r["slow_data_frames"].int ?? 512 < 512)
            #expect(r["slow_eof"].bool == true)
            let stopped = server.stop()
            #expect(stopped.status == 0)
            #expect(stopped.stderr.contains("slow consumers dropped 1,"), "\(stopped.stderr.suffix(400))")
        }
    }

    /// The server must let go of a slow consumer without its help: a client that stopped reading
    /// for good is closed (and counted, and freed) while it still reads nothing.
    @Test func slowConsumerThatNeverReadsIsReleasedByTheServer() throws {
        try withServer(Self.slowConsumerFlags) { server in
            var load = Self.slowConsumerLoad
            load["pause"] = true
            let client = try Interop.startPython(server.url, "slow_consumer", load)
            defer { client.stop(timeout: 2) }
            #expect(client.waitForStdout(containing: "SENT", timeout: 20), "burst not sent: \(client.stdout) \(client.stderr)")
            // The slow client is the first connection (c1) and is not reading now.
            let released = server.child.waitForStderr(containing: "code=1008 conn=c1 ", timeout: 3)
            #expect(released, "3 s after the burst the server still holds the slow connection open (no close logged for c1)")
            client.writeStdin("READ\n")
            let r = try Interop.finish(client, "ws_client.py slow_consumer", timeout: 20)
            // The close frame queued behind megabytes the client never read cannot reach it once the
            // server has let go (that is the point of letting go); what it must see is the end of the
            // connection, with the 1008 frame if it happened to get out before the cut.
            let code = r["slow_close"]["code"].int
            #expect(code == nil || code == 1008, "\(r["slow_close"])")
            #expect(r["slow_eof"].bool == true, "the connection did not end for the slow client")
        }
    }

    // MARK: Metrics

    @Test func metricsAndHealthzAreServed() throws {
        try withServer(["--metrics"]) { server in
            _ = try Interop.websockets(server.url, "echo_text")
            let health = try Interop.http(server.url, "GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n")
            #expect(health["status"].int == 200)
            var metrics = JSON(nil)
            // The close of the echo client is counted when its TCP connection ends.
            let counted = ChildProcess.wait(timeout: 3) {
                metrics = (try? Interop.http(server.url, "GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n")) ?? JSON(nil)
                return metrics["body"].string?.contains("wsctl_closes_total{code=\"1000\"} 1") == true
            }
            #expect(metrics["status"].int == 200)
            #expect(metrics["headers"]["content-type"][0].string?.hasPrefix("text/plain") == true)
            let body = metrics["body"].string ?? ""
            #expect(counted, "\(body)")
            for series in ["wsctl_connections_active 0", "wsctl_connections_total 1", "wsctl_messages_in_total 1",
                           "wsctl_messages_out_total 1", "wsctl_bytes_in_total ", "wsctl_bytes_out_total ",
                           "wsctl_slow_consumer_drops_total 0", "wsctl_handshake_failures_total{reason="] {
                #expect(body.contains(series), "no \(series) in /metrics")
            }
        }
    }

    /// Handshake failures are counted under the reasons ServerMetrics documents
    /// (`ServerMetrics.HandshakeFailure`), so a dashboard can select them.
    @Test func handshakeFailuresAreCountedUnderTheDocumentedReasons() throws {
        try withServer(["--metrics", "--path", "/ws", "--auth-token", "T"]) { server in
            _ = try Interop.http(server.url(path: "/other"), ServeHandshakeTests.upgrade())
            _ = try Interop.http(server.url, ServeHandshakeTests.upgrade(key: nil))
            _ = try Interop.http(server.url, ServeHandshakeTests.upgrade(version: "8"))
            _ = try Interop.websockets(server.url, "expect_close")
            let body = try Interop.http(server.url, "GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n")["body"].string ?? ""
            let counted = body.split(separator: "\n").map(String.init)
                .filter { $0.hasPrefix("wsctl_handshake_failures_total{") && !$0.hasSuffix(" 0") }.sorted()
            for reason in ["wrong_path", "bad_request", "unsupported_version", "auth_missing"] {
                let series = "wsctl_handshake_failures_total{reason=\"\(reason)\"} 1"
                #expect(counted.contains(series), "\(reason)")
            }
        }
    }

    // MARK: TLS

    @Test(.requiresOpenSSL)
    func tlsServesWss() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-serve-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let made = Interop.probe(Interop.openssl!, [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        try #require(made?.status == 0, "openssl req failed: \(made?.output ?? "did not run")")
        try withServer(["--tls-cert", cert, "--tls-key", key]) { server in
            #expect(server.url.hasPrefix("wss://127.0.0.1:"))
            let r = try Interop.websockets(server.url, "echo_text", ["cafile": cert])
            #expect(r["received"]["text"].string == "hello, wörld ✓")
        }
    }

    // MARK: Shutdown

    @Test(arguments: ["SIGTERM", "SIGINT"])
    func signalClosesClientsWith1001AndPrintsTheSummary(signal: String) throws {
        try withServer { server in
            // The client sends the signal to this server (its pid) once it is connected.
            let r = try Interop.websockets(server.url, "sigterm", ["pid": Int(server.pid), "signal": signal])
            #expect(r["echo"]["text"].string == "before shutdown")
            #expect(r["close_code"].int == 1001)
            let status = server.child.waitForExit(timeout: 10)
            #expect(status == 0)
            let stderr = server.stderr
            #expect(stderr.contains("wsctl serve: connections 1,"), "\(stderr)")
            #expect(stderr.contains("closes 1001×1"), "\(stderr)")
        }
    }
}
