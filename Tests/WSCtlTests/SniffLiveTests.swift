import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Live capture: `wsctl sniff -i lo` while a real client (Python `websockets`) talks to `wsctl serve`.
/// Skipped, with the reason, where capturing is not permitted or the client is missing.
@Suite("Sniff live capture on lo", .serialized, .enabled(if: SniffLive.problem == nil, Comment(rawValue: SniffLive.problem ?? "")),
       .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct SniffLiveTests {
    /// Two connections (one with permessage-deflate, one without): handshakes, every message in both
    /// directions, a ping with its pong and round-trip time, the close, and the stats after SIGINT.
    @Test func capturesAClientTalkingToServe() throws {
        try withServer { server in
            let sniff = try SniffLive.start(["-f", "tcp port \(server.port)", "--json", "--stats", "--full"])
            defer { if sniff.isRunning { sniff.stop(timeout: 3) } }

            let client = try Interop.start(Interop.python, ["-c", SniffLive.clientScript, server.url(path: "/live")])
            let report = try Interop.finish(client, "live client", timeout: 30)
            #expect(report["connections"].int == 2)

            // Both connections end with FIN; wait for sniff to report them closed, then stop it as a user would.
            let closed = ChildProcess.wait(timeout: 10) {
                sniff.stdout.components(separatedBy: "\"kind\":\"connection_closed\"").count - 1 >= 2
            }
            #expect(closed, "sniff did not report both connections closed; stdout:\n\(sniff.stdout.suffix(2000))\nstderr: \(sniff.stderr)")
            sniff.send(signal: SIGINT)
            let status = sniff.waitForExit(timeout: 10)
            #expect(status == 0, "sniff after SIGINT: \(String(describing: status)); stderr: \(sniff.stderr)")

            let out = try SniffOutput(result: CLIResult(stdout: sniff.stdout, stderr: sniff.stderr, status: status ?? -1, stdoutBytes: []))
            let handshakes = out.kind("handshake")
            try #require(handshakes.count == 2, "handshakes: \(handshakes)")
            let compressed = handshakes.map { $0["extensions"].string?.contains("permessage-deflate") == true }
            let extensions = handshakes.map { $0["extensions"] }
            #expect(Set(compressed) == [false, true], "one connection with permessage-deflate: \(extensions)")
            for h in handshakes {
                let id = try #require(h["connection"].int)
                #expect(h["upgraded"].bool == true)
                #expect(h["accept_matches"].bool == true)
                #expect(h["server"].string == "127.0.0.1:\(server.port)")
                #expect(h["request"].string?.hasPrefix("GET /live") == true)
                let deflate = h["extensions"].string != nil
                for direction in ["client", "server"] {
                    let messages = out.events("message", connection: id, direction: direction)
                    #expect(messages.count == SniffLive.expectedMessages.count, "\(direction) messages: \(messages.count)")
                    for (m, expected) in zip(messages, SniffLive.expectedMessages) {
                        #expect(m["opcode_name"].string == expected.opcode)
                        #expect(m["data_length"].int == expected.bytes.count)
                        #expect(hexBytes(m["payload_hex"].string ?? "") == expected.bytes)
                        // websockets compresses every message once permessage-deflate is negotiated; the server may not.
                        if direction == "client" || !deflate {
                            #expect(m["compressed"].bool == deflate, "RSV1 on every client message of the deflate connection only")
                        }
                        #expect(m["errors"].array.isEmpty)
                    }
                }
                let control = out.controlRecords(connection: id)
                let ping = "6c6976652d70696e67"  // "live-ping"
                #expect(control.contains("client ping \(ping)") && control.contains("server pong \(ping)"), "control: \(control)")
                let pong = out.events("frame", connection: id, direction: "server").first { $0["opcode"].int == 10 }
                #expect((pong?["ping_rtt"].double ?? -1) > 0, "pong round trip")
                let close = out.events("frame", connection: id, direction: "client").first { $0["opcode"].int == 8 }
                #expect(close?["close_code"].int == 1000)
                #expect(close?["close_reason"].string == "live done")
                #expect(out.closed(connection: id)?["reason"].string == "fin")
            }
            let stats = try #require(out.kind("stats").first, "no stats after SIGINT")
            #expect(stats["connections"].int == 2)
            #expect(stats["messages"].int == 4 * SniffLive.expectedMessages.count)
            #expect(stats["kernel_received"].int != nil)
            #expect(stats["kernel_dropped"].int == 0)
        }
    }

    /// Steady traffic (a message and its echo every 0.1 s, so the capture seldom goes quiet for its
    /// 100 ms read timeout) is shown as it comes: a line while the client still sends, not when
    /// the connection ends. (The lines used to wait in the output buffer until it filled.)
    @Test func steadyTrafficIsShownAsItComes() throws {
        try withServer { server in
            let sniff = try SniffLive.start(["-f", "tcp port \(server.port)"])
            defer { if sniff.isRunning { sniff.stop(timeout: 3) } }
            let client = try Interop.start(Interop.python, ["-c", SniffLive.steadyScript, server.url(path: "/steady")])
            // The client sends for 6 s: the first line must come well before that.
            let shown = ChildProcess.wait(timeout: 4) { sniff.stdout.contains("C→S text") }
            let stillSending = client.isRunning
            let report = try Interop.finish(client, "steady client", timeout: 30)
            #expect(report["sent"].int == 60)
            #expect(shown && stillSending, "no line within 4 s of steady traffic (client still sending: \(stillSending)); stdout: \(sniff.stdout.prefix(500))")
            sniff.send(signal: SIGINT)
            #expect(sniff.waitForExit(timeout: 10) == 0)
            #expect(sniff.stdout.components(separatedBy: "C→S text").count - 1 == 60, "\(sniff.stdout.suffix(500))")
        }
    }

    /// Live output is at most a fifth of a second behind the traffic (README): a message sent
    /// alone, with the capture quiet before and after it, is shown within that, by the median of
    /// eight (the lines waited 0.25–0.30 s for the read timeout, a review measured).
    @Test func linesComeWithinAFifthOfASecond() throws {
        try withServer { server in
            let sniff = try SniffLive.start(["-f", "tcp port \(server.port)", "--json"])
            defer { if sniff.isRunning { sniff.stop(timeout: 3) } }
            let client = try Interop.start(Interop.python, ["-c", SniffLive.ticksScript, server.url(path: "/ticks")])
            // When each tick's line is first seen on sniff's stdout, by the wall clock.
            var seen: [Int: Double] = [:]
            let deadline = Date().addingTimeInterval(20)
            while seen.count < 8 && Date() < deadline {
                let out = sniff.stdout
                let now = Date().timeIntervalSince1970
                for i in 0..<8 where seen[i] == nil && out.contains("\"direction\":\"client\"") && out.contains("\"text\":\"tick \(i)\"") {
                    seen[i] = now
                }
                Thread.sleep(forTimeInterval: 0.005)
            }
            let report = try Interop.finish(client, "ticks client", timeout: 30)
            let sent = report["sent"].array.compactMap(\.double)
            try #require(sent.count == 8 && seen.count == 8, "ticks sent \(sent.count), lines seen \(seen.count); stdout: \(sniff.stdout.suffix(500))")
            let delays = (0..<8).map { seen[$0]! - sent[$0] }.sorted()
            #expect(delays[4] < 0.2, "median delay \(delays[4]) s; all: \(delays)")
        }
    }

    /// `--duration 1s` ends a live capture after about a second even when no packet matches the filter.
    @Test func durationEndsAnIdleCapture() throws {
        let sniff = try SniffLive.start(["-f", "tcp port 9 and host 127.0.0.9", "--duration", "1s", "--json", "--stats"])
        defer { if sniff.isRunning { sniff.stop(timeout: 3) } }
        let status = sniff.waitForExit(timeout: 6)
        #expect(status == 0, "wsctl sniff -i lo --duration 1s still running 6 s after the capture began (no traffic matched the filter)")
        if status == nil {
            sniff.send(signal: SIGINT)
            _ = sniff.waitForExit(timeout: 5)
        }
        #expect(sniff.stdout.contains("\"kind\":\"stats\""), "stats at the end: \(sniff.stdout)")
    }

    /// `--count N` ends a live capture after N packets.
    @Test func countEndsTheCapture() throws {
        try withServer { server in
            let sniff = try SniffLive.start(["-f", "tcp port \(server.port)", "--count", "3", "--json", "--stats"])
            defer { if sniff.isRunning { sniff.stop(timeout: 3) } }
            let client = try Interop.start(Interop.python, ["-c", SniffLive.clientScript, server.url(path: "/count")])
            _ = try Interop.finish(client, "live client", timeout: 30)
            let status = sniff.waitForExit(timeout: 10)
            #expect(status == 0, "sniff --count 3: \(String(describing: status)); stderr: \(sniff.stderr)")
            #expect(sniff.stdout.contains("\"kind\":\"stats\",\"packets\":3,"), "stats: \(sniff.stdout.suffix(500))")
        }
    }
}

enum SniffLive {
    /// Why live capture cannot be tested here, or nil. A short capture on lo is started: an immediate
    /// exit means it is not permitted (the error says why).
    static let problem: String? = {
        guard FileManager.default.fileExists(atPath: "/proc/net/packet") else { return "no /proc/net/packet (not Linux)" }
        guard let child = try? ChildProcess(executable: CLI.binary, arguments: ["sniff", "-i", "lo", "-f", "tcp port 9", "--json"]) else {
            return "could not start \(CLI.binary.path)"
        }
        if let status = child.waitForExit(timeout: 1.5) {
            let reason = child.stderr.split(separator: "\n").first.map(String.init) ?? "exit status \(status)"
            return "live capture on lo is not permitted here: \(reason)"
        }
        child.send(signal: SIGINT)
        if child.waitForExit(timeout: 5) == nil { child.stop(timeout: 2) }
        return nil
    }()

    /// `wsctl sniff -i lo ARGS`, returned once its packet socket is open (and a moment for the filter).
    static func start(_ arguments: [String]) throws -> ChildProcess {
        let child = try ChildProcess(executable: CLI.binary, arguments: ["sniff", "-i", "lo"] + arguments)
        let ready = ChildProcess.wait(timeout: 10) { hasPacketSocket(child.pid) || !child.isRunning }
        if !child.isRunning {
            let stderr = child.stderr
            if stderr.lowercased().contains("permission") { try Test.cancel("live capture not permitted: \(stderr)") }
            throw CLIError("wsctl sniff -i lo exited at once: \(stderr)")
        }
        guard ready else {
            child.stop(timeout: 2)
            throw CLIError("wsctl sniff -i lo opened no packet socket in 10 s")
        }
        Thread.sleep(forTimeInterval: 0.3)
        return child
    }

    /// Whether process `pid` holds an AF_PACKET socket (listed in /proc/net/packet).
    static func hasPacketSocket(_ pid: Int32) -> Bool {
        guard let table = try? String(contentsOfFile: "/proc/net/packet", encoding: .utf8) else { return false }
        let inodes = Set(table.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").last.map(String.init) })
        let fdDir = "/proc/\(pid)/fd"
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: fdDir) else { return false }
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)"),
                  target.hasPrefix("socket:[") else { continue }
            if inodes.contains(String(target.dropFirst(8).dropLast())) { return true }
        }
        return false
    }

    /// What the client sends on each connection, echoed back by the server.
    static let expectedMessages: [(opcode: String, bytes: [UInt8])] =
        (0..<5).map { i in ("text", Array("live message \(i) \(String(repeating: "wörld ", count: i * 8))".utf8)) }
        + [("binary", (0..<1024).map { UInt8($0 % 256) })]

    /// One connection to argv[1]: 8 texts "tick N", each echoed, 0.4 s apart (the capture is quiet
    /// between them); prints the wall-clock time each was sent.
    static let ticksScript = """
        import asyncio, json, sys, time
        from websockets.asyncio.client import connect

        async def main(url):
            sent = []
            async with connect(url, compression=None, open_timeout=5, close_timeout=3, ping_interval=None, proxy=None) as ws:
                await asyncio.sleep(0.5)
                for i in range(8):
                    sent.append(time.time())
                    await ws.send("tick %d" % i)
                    await asyncio.wait_for(ws.recv(), 5)
                    await asyncio.sleep(0.4)
            print(json.dumps({"sent": sent}))

        asyncio.run(main(sys.argv[1]))
        """

    /// One connection to argv[1]: 60 texts, each echoed, 0.1 s apart.
    static let steadyScript = """
        import asyncio, json, sys
        from websockets.asyncio.client import connect

        async def main(url):
            async with connect(url, compression=None, open_timeout=5, close_timeout=3, ping_interval=None, proxy=None) as ws:
                for i in range(60):
                    await ws.send("steady %d" % i)
                    await asyncio.wait_for(ws.recv(), 5)
                    await asyncio.sleep(0.1)
            print(json.dumps({"sent": 60}))

        asyncio.run(main(sys.argv[1]))
        """

    /// Two connections to argv[1] (+ "-plain" / "-deflate"), without and with permessage-deflate: five
    /// texts and a binary echoed, a ping, close 1000 "live done".
    static let clientScript = """
        import asyncio, json, sys
        from websockets.asyncio.client import connect

        async def main(url):
            done = 0
            for suffix, compression in (("-plain", None), ("-deflate", "deflate")):
                async with connect(url + suffix, compression=compression, open_timeout=5, close_timeout=3,
                                   ping_interval=None, proxy=None, max_size=None) as ws:
                    for i in range(5):
                        m = "live message %d %s" % (i, "wörld " * (i * 8))
                        await ws.send(m)
                        assert await asyncio.wait_for(ws.recv(), 5) == m
                    b = bytes(i % 256 for i in range(1024))
                    await ws.send(b)
                    assert await asyncio.wait_for(ws.recv(), 5) == b
                    pong = await ws.ping(b"live-ping")
                    await asyncio.wait_for(pong, 5)
                    await ws.close(1000, "live done")
                    done += 1
            print(json.dumps({"connections": done}))

        asyncio.run(main(sys.argv[1]))
        """
}
