import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failed TLS handshakes are counted under `wsctl_handshake_failures_total{reason="tls"}` and in the
/// summary's "handshake failures" (nothing counted them: the reason existed with no caller), and
/// /metrics is served with the content type `ServerMetrics.contentType` names, charset included.
@Suite("wsctl serve TLS handshake failures and /metrics", .timeLimit(.minutes(2)))
struct ServeTLSHandshakeFailureTests {
    /// `python3 -c CLIENT PORT MODE`: what a plain or TLS client on 127.0.0.1:PORT saw, as JSON.
    ///   http, garbage  plain TCP: send a plain HTTP request / bytes that are not TLS, read to EOF
    ///   nothing        connect and close without sending a byte
    ///   metrics        GET /metrics over TLS (certificate not checked)
    static let client = """
        import json, socket, ssl, sys
        port, mode = int(sys.argv[1]), sys.argv[2]
        def read_all(s):
            got = b""
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        return got, True
                    got += d
            except (ssl.SSLError, ConnectionResetError):
                return got, True
            except socket.timeout:
                return got, False
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if mode in ("http", "garbage"):
            s.sendall(b"GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n" if mode == "http" else bytes(range(256)) * 4)
            got, closed = read_all(s)
            r = {"closed": closed, "http": got.startswith(b"HTTP/")}
        elif mode == "nothing":
            s.close()
            r = {"closed": True}
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            t = ctx.wrap_socket(s, server_hostname="localhost")
            t.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n")
            got, closed = read_all(t)
            head, _, body = got.partition(b"\\r\\n\\r\\n")
            lines = head.decode("latin-1").split("\\r\\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
            r = {"status": lines[0], "content_type": headers.get("content-type"), "body": body.decode()}
        print(json.dumps(r))
        """

    static func run(port: Int, _ mode: String) throws -> JSON {
        try Interop.finish(try Interop.start(Interop.python, ["-c", client, String(port), mode]), "client \(mode)", timeout: 15)
    }

    static func tlsFailures(_ body: String) -> String? {
        body.split(separator: "\n").first { $0.hasPrefix(#"wsctl_handshake_failures_total{reason="tls"} "#) }.map(String.init)
    }

    /// What a TLS server with --metrics saw of a port check, a plain HTTP request and bytes that
    /// are not TLS: the clients' views, /metrics over TLS afterwards, and the log and exit status.
    struct Observed {
        var http = JSON(nil), garbage = JSON(nil), metrics = JSON(nil)
        var counted = false
        var status: Int32?
        var stderr = ""
    }

    static func observeFailures(cert: String, key: String) throws -> Observed {
        let server = try ServeProcess(["--tls-cert", cert, "--tls-key", key, "--metrics"])
        defer { if server.child.isRunning { server.stop() } }
        var o = Observed()
        // A port check (connect, close, no byte) is not a failed handshake.
        _ = try run(port: server.port, "nothing")
        o.http = try run(port: server.port, "http")
        o.garbage = try run(port: server.port, "garbage")
        o.counted = ChildProcess.wait(timeout: 5) {
            o.metrics = (try? run(port: server.port, "metrics")) ?? JSON(nil)
            return (tlsFailures(o.metrics["body"].string ?? "") ?? " 0").hasSuffix(" 0") == false
        }
        server.child.send(signal: SIGINT)
        o.status = server.child.waitForExit(timeout: 10)
        o.stderr = server.stderr
        return o
    }

    @Test(.requiresOpenSSL, .requiresPython)
    func failedTLSHandshakesAreCountedUnderTLS() async throws {
        let files = try ServeTLSFilesTests.Files()
        defer { try? FileManager.default.removeItem(at: files.directory) }
        let o = try await offThePool { try Self.observeFailures(cert: files.cert, key: files.key) }
        #expect(o.http["closed"].bool == true, "a plain HTTP request to the TLS port was left open: \(o.http)")
        #expect(o.http["http"].bool == false)
        #expect(o.garbage["closed"].bool == true, "\(o.garbage)")
        let body = o.metrics["body"].string ?? ""
        #expect(o.counted, "no failed TLS handshake counted in /metrics: \(o.metrics)")
        #expect(o.metrics["status"].string?.hasPrefix("HTTP/1.1 200") == true, "\(o.metrics)")
        #expect(o.metrics["content_type"].string == "text/plain; version=0.0.4; charset=utf-8")
        #expect(Self.tlsFailures(body) == #"wsctl_handshake_failures_total{reason="tls"} 2"#, "\(body)")
        #expect(o.stderr.contains("TLS handshake failed reason=HTTP_REQUEST "), "\(o.stderr)")
        #expect(o.status == 0, "\(o.stderr)")
        #expect(o.stderr.contains(", handshake failures 2,"), "\(o.stderr)")
    }

    /// The Prometheus text format's content type, as `ServerMetrics.contentType` says; it lacked
    /// `; charset=utf-8`.
    @Test(.requiresPython)
    func metricsContentTypeCarriesTheCharset() throws {
        try withServer(["--metrics"]) { server in
            for method in ["GET", "HEAD"] {
                let r = try Interop.http(server.url, "\(method) /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n")
                #expect(r["status"].int == 200)
                #expect(r["headers"]["content-type"].strings == ["text/plain; version=0.0.4; charset=utf-8"], "\(method): \(r["headers"])")
            }
        }
    }
}
