import Foundation
import Testing
@testable import WebSocketServer

/// The helpers of `--exec` that need no process. Processes are in WSCtlTests/ServeExecTests.
@Suite("Exec helpers")
struct ExecHelperTests {
    @Test(arguments: [
        ("127.0.0.1:5000", "127.0.0.1", "5000"),
        ("[::1]:443", "::1", "443"),
        ("[fe80::1]", "fe80::1", ""),
        ("example.com", "example.com", ""),
        ("example.com:8080", "example.com", "8080"),
    ])
    func hostAndPortAreSplit(input: String, host: String, port: String) {
        let (h, p) = ExecSupervisor.split(hostPort: input)
        #expect(h == host)
        #expect(p == port)
    }

    @Test func execEnvironmentFollowsCGI() {
        var c = ServerConfiguration()
        c.execCommand = "true"
        let supervisor = ExecSupervisor(configuration: c, logger: .init(label: "test"))
        let request = ScriptRequest(path: "/p", query: "x=1",
                                    headers: [("Host", "h.example:81"), ("X-Two", "a"), ("x-two", "b"), ("User-Agent", "t")],
                                    remote: "[::1]:4444", subprotocol: "chat")
        let env = supervisor.environment(request: request, connectionID: "c7", tls: true)
        #expect(env["PATH_INFO"] == "/p")
        #expect(env["QUERY_STRING"] == "x=1")
        #expect(env["REQUEST_URI"] == "/p?x=1")
        #expect(env["REMOTE_ADDR"] == "::1")
        #expect(env["REMOTE_PORT"] == "4444")
        #expect(env["HTTP_X_TWO"] == "a, b")
        #expect(env["HTTP_USER_AGENT"] == "t")
        #expect(env["SERVER_NAME"] == "h.example")
        #expect(env["SERVER_PORT"] == "81")
        #expect(env["HTTPS"] == "on")
        #expect(env["WSCTL_CONNECTION_ID"] == "c7")
        #expect(env["WSCTL_SUBPROTOCOL"] == "chat")
        #expect(env["PYTHONUNBUFFERED"] == "1")
        if ExecSupervisor.stdbufLibrary != nil {
            #expect(env["_STDBUF_O"] == "L")
            #expect(env["LD_PRELOAD"]?.contains("libstdbuf") == true)
        }
        c.execLineBuffered = false
        let plain = ExecSupervisor(configuration: c, logger: .init(label: "test")).environment(request: nil, connectionID: nil, tls: false)
        #expect(plain["_STDBUF_O"] == nil)
        #expect(plain["PATH_INFO"] == nil)
        #expect(plain["GATEWAY_INTERFACE"] == "CGI/1.1")
    }
}
