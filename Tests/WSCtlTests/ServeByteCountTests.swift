import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// "bytes in / out" in the shutdown summary and `wsctl_bytes_in_total` / `wsctl_bytes_out_total`
/// at /metrics are one definition: every frame that crossed the connection after the upgrade,
/// headers included, control frames too. They used to disagree: the metric counted message
/// payloads in but frames out (and left out control frames), the summary counted wire bytes in.
@Suite("wsctl serve byte counts", .timeLimit(.minutes(2)))
struct ServeByteCountTests {
    /// A Python `websockets` client, without compression: text "x" and binary "12345" echoed, a
    /// ping "pp" answered, then a normal close (1000, no reason).
    static let client = """
        import json, sys
        from websockets.sync.client import connect
        with connect(sys.argv[1], compression=None, proxy=None, open_timeout=5, close_timeout=3) as ws:
            ws.send("x"); text = ws.recv(timeout=5)
            ws.send(b"12345"); binary = ws.recv(timeout=5)
            pong = ws.ping(b"pp").wait(5)
        print(json.dumps({"text": text, "binary": binary.hex(), "pong": pong}))
        """

    /// The frames, as the sizes RFC 6455 §5.2 gives them (client frames are masked: 2 + 4 bytes of
    /// header under 126 bytes of payload; the server's are not: 2).
    static let expectedIn = (2 + 4 + 1) + (2 + 4 + 5) + (2 + 4 + 2) + (2 + 4 + 2)  // text, binary, ping, close 1000
    static let expectedOut = (2 + 1) + (2 + 5) + (2 + 2) + (2 + 2)  // echo, echo, pong, close 1000

    static func sample(_ name: String, in body: String) -> Int? {
        for line in body.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1)).map { Int($0) }
        }
        return nil
    }

    @Test(.requiresPythonWebsockets)
    func summaryAndMetricsCountTheSameWireBytes() throws {
        let server = try ServeProcess(["--metrics"])
        defer { if server.child.isRunning { server.stop() } }
        let child = try Interop.start(Interop.python, ["-c", Self.client, server.url])
        let r = try Interop.finish(child, "python websockets client", timeout: 20)
        #expect(r["text"].string == "x")
        #expect(r["binary"].string == "3132333435")
        #expect(r["pong"].bool == true)

        // The connection is counted as closed when its TCP connection has ended.
        var body = ""
        let closed = ChildProcess.wait(timeout: 5) {
            body = (try? Interop.http(server.url, "GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n"))?["body"].string ?? ""
            return body.contains("wsctl_closes_total{code=\"1000\"} 1")
        }
        try #require(closed, "the close was not counted:\n\(body)")
        let metricIn = Self.sample("wsctl_bytes_in_total", in: body)
        let metricOut = Self.sample("wsctl_bytes_out_total", in: body)
        #expect(metricIn == Self.expectedIn, "\(body)")
        #expect(metricOut == Self.expectedOut, "\(body)")
        #expect(Self.sample("wsctl_messages_in_total", in: body) == 2)
        #expect(Self.sample("wsctl_messages_out_total", in: body) == 2)
        // One definition, stated the same way for both directions.
        #expect(body.contains("# HELP wsctl_bytes_in_total WebSocket bytes received after the upgrade: every frame (data, ping, pong, close) with its header"), "\(body)")
        #expect(body.contains("# HELP wsctl_bytes_out_total WebSocket bytes sent after the upgrade: every frame (data, ping, pong, close) with its header"), "\(body)")

        server.child.send(signal: SIGINT)
        let status = server.child.waitForExit(timeout: 10)
        #expect(status == 0, "\(server.stderr)")
        let summary = server.stderr.split(separator: "\n").last { $0.hasPrefix("wsctl serve: connections") }.map(String.init) ?? ""
        #expect(summary.contains("messages in 2 / out 2,"), "\(server.stderr)")
        #expect(summary.contains("bytes in \(Self.expectedIn) / out \(Self.expectedOut),"), "\(server.stderr)")
        #expect(summary.contains("bytes in \(metricIn ?? -1) / out \(metricOut ?? -1),"), "summary \(summary) vs /metrics in \(String(describing: metricIn)) out \(String(describing: metricOut))")
    }
}
