import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes to a loopback port and whatever comes back until the server closes (or `timeout` passes):
/// for requests no HTTP client library would send.
enum RawExchange {
    struct Reply {
        /// Everything the server sent.
        var bytes: [UInt8]
        /// The server closed the connection (rather than the timeout passing).
        var closed: Bool
        /// Seconds from the end of the send to the close or the timeout.
        var elapsed: Double

        var text: String { String(decoding: bytes, as: UTF8.self) }
        /// The status code of the response's first line, or nil when there is none.
        var status: Int? {
            let line = text.split(separator: "\r\n", maxSplits: 1).first ?? ""
            let parts = line.split(separator: " ")
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else { return nil }
            return Int(parts[1])
        }
        /// Header names (lower-case) and values of the response head.
        var headers: [(name: String, value: String)] {
            guard let end = text.range(of: "\r\n\r\n") else { return [] }
            return text[..<end.lowerBound].split(separator: "\r\n").dropFirst().compactMap { line in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        }
        func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
        /// What follows the head.
        var body: String {
            guard let end = text.range(of: "\r\n\r\n") else { return "" }
            return String(text[end.upperBound...])
        }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    static func send(_ bytes: [UInt8], port: Int, timeout: Double = 8) throws -> Reply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to port \(port): \(String(cString: strerror(errno)))") }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // The server may answer and close before it has read everything (an oversized head).
            if n <= 0 { break }
            sent += n
        }
        let start = Date()
        var received: [UInt8] = []
        var closed = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = timeout - Date().timeIntervalSince(start)
            if left <= 0 { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(left * 1000))
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                // 0: orderly close; -1 (ECONNRESET): closed with unread bytes left behind.
                closed = true
                break
            }
            received += buffer[..<n]
        }
        return Reply(bytes: received, closed: closed, elapsed: Date().timeIntervalSince(start))
    }
}

/// Requests the HTTP parser rejects get an immediate 400 (431 for a head over the limit) naming the
/// problem, `Connection: close`, a closed connection and a log line, not silence until the
/// handshake timeout.
@Suite("wsctl serve malformed requests", .timeLimit(.minutes(3)))
struct ServeMalformedRequestTests {
    /// The start of a TLS 1.2 ClientHello record, as a TLS client sends to a plain-text port.
    static let clientHello: [UInt8] = [
        0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03,
    ] + [UInt8](repeating: 0x42, count: 32) + [0x00, 0x00, 0x02, 0x00, 0x2f, 0x01, 0x00]

    static let cases: [(name: String, bytes: [UInt8], status: Int, body: String)] = [
        ("not HTTP", Array("NOT HTTP AT ALL\r\n\r\n".utf8), 400, "malformed HTTP request"),
        ("header line without a colon", Array("GET / HTTP/1.1\r\nHost x\r\n\r\n".utf8), 400, "malformed HTTP request"),
        ("TLS ClientHello", clientHello, 400, "malformed HTTP request"),
        ("100 KB header", Array(("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + "X-Big: " + String(repeating: "a", count: 100_000) + "\r\n\r\n").utf8), 431, "too large"),
    ]

    @Test func malformedRequestsGetAnImmediateErrorResponse() async throws {
        let results = try await offThePool {
            try withServer(["--handshake-timeout", "30s", "--metrics"]) { server in
                let replies = try Self.cases.map { try RawExchange.send($0.bytes, port: server.port) }
                let metrics = try RawExchange.send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8), port: server.port)
                // Every refusal is logged before its response is written.
                _ = server.child.waitForStderr(containing: "status=431", timeout: 5)
                return (replies, metrics, server.stderr)
            }
        }
        let (replies, metrics, log) = results
        for (c, reply) in zip(Self.cases, replies) {
            #expect(reply.status == c.status, "\(c.name): \(reply.text.prefix(300)) (after \(reply.elapsed) s)")
            #expect(reply.body.contains(c.body), "\(c.name): \(reply.body)")
            #expect(reply.header("connection") == "close", "\(c.name)")
            #expect(reply.header("content-length") == String(reply.body.utf8.count), "\(c.name)")
            #expect(reply.closed && reply.elapsed < 5, "\(c.name): closed \(reply.closed) after \(reply.elapsed) s")
        }
        #expect(replies[1].body.contains("header"), "\(replies[1].body)")
        #expect(log.components(separatedBy: "handshake refused").count - 1 == Self.cases.count, "\(log)")
        #expect(log.contains("reason=malformed HTTP request: invalid character in header remote=127.0.0.1:"), "\(log)")
        #expect(metrics.body.contains("wsctl_handshake_failures_total{reason=\"bad_request\"} \(Self.cases.count)"),
                "\(metrics.body)")
    }
}
