import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `wsctl serve --exec`: real processes started by a real server, driven by Python `websockets`
/// (Tests/Interop/steps_client.py).
@Suite("wsctl serve --exec", .requiresPythonWebsockets, .timeLimit(.minutes(3)))
struct ServeExecTests {
    static let echoScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/scripts/echo.sh").path

    /// steps_client.py on one connection.
    static func steps(_ url: String, _ steps: [[String: Any]], _ extra: [String: Any] = [:], timeout: Double = 30) throws -> JSON {
        try Interop.finish(try startSteps(url, steps, extra), "steps_client.py", timeout: timeout)
    }

    static func startSteps(_ url: String, _ steps: [[String: Any]], _ extra: [String: Any] = [:]) throws -> ChildProcess {
        var options = extra
        options["steps"] = steps
        let data = try JSONSerialization.data(withJSONObject: options, options: [.sortedKeys])
        return try Interop.start(Interop.python, [Interop.directory.appendingPathComponent("steps_client.py").path, url,
                                                  String(decoding: data, as: UTF8.self)])
    }

    static func texts(_ r: JSON) -> [String] { r["messages"].array.compactMap { $0["text"].string } }

    static func processGone(_ pid: Int32, within seconds: Double) -> Bool {
        ChildProcess.wait(timeout: seconds) { kill(pid, 0) != 0 && errno == ESRCH }
    }

    @Test func exampleScriptAnswersLinesAndEndsWithTheProcess() throws {
        try withServer(["--exec", "sh \(Self.echoScript)"]) { server in
            let r = try Self.steps(server.url(path: "/sub/path?x=1&y=two"), [
                ["recv": 1], ["send": "hello there"], ["recv": 1], ["send": "bye"], ["recv": 1], ["wait_close": 5],
            ])
            #expect(Self.texts(r) == ["hello 127.0.0.1, you asked for /sub/path?x=1&y=two", "HELLO THERE", "goodbye"])
            #expect(r["close"]["code"].int == 1000)
            #expect(r["close"]["reason"].string == "process exited")
            #expect(r["close"]["by"].string == "server")
        }
    }

    @Test func processSeesTheCGIEnvironment() throws {
        let command = "env | grep -E '^(REMOTE_ADDR|PATH_INFO|QUERY_STRING|REQUEST_URI|REQUEST_METHOD|HTTP_X_TEST|HTTP_HOST|SERVER_PORT|WSCTL_CONNECTION_ID|GATEWAY_INTERFACE)=' | sort"
        try withServer(["--exec", command]) { server in
            let r = try Self.steps(server.url(path: "/env?a=1&b=two"), [["wait_close": 5]], ["headers": ["X-Test": "yes please"]])
            #expect(Self.texts(r) == [
                "GATEWAY_INTERFACE=CGI/1.1",
                "HTTP_HOST=127.0.0.1:\(server.port)",
                "HTTP_X_TEST=yes please",
                "PATH_INFO=/env",
                "QUERY_STRING=a=1&b=two",
                "REMOTE_ADDR=127.0.0.1",
                "REQUEST_METHOD=GET",
                "REQUEST_URI=/env?a=1&b=two",
                "SERVER_PORT=\(server.port)",
                "WSCTL_CONNECTION_ID=c1",
            ])
            #expect(r["close"]["code"].int == 1000)
        }
    }

    /// `tr` writes through C stdio: to a pipe it would hold "ABC" in its buffer until exit. The
    /// default line buffering makes it answer at once; --no-line-buffering shows the surprise.
    @Test(arguments: ["tr a-z A-Z", "sed -e s/b/B/", "python3 -c 'import sys\nfor l in sys.stdin: print(l.strip().upper())'"])
    func outputArrivesLineByLine(command: String) throws {
        try withServer(["--exec", command]) { server in
            let r = try Self.steps(server.url, [["send": "abc"], ["recv": 1, "timeout": 5], ["send": "xbz"], ["recv": 1, "timeout": 5]])
            let expected = command.hasPrefix("sed") ? ["aBc", "xBz"] : ["ABC", "XBZ"]
            #expect(Self.texts(r) == expected)
        }
    }

    @Test func withoutLineBufferingCStdioHoldsItsOutput() throws {
        try withServer(["--exec", "tr a-z A-Z", "--no-line-buffering"]) { server in
            let r = try Self.steps(server.url, [["send": "abc"], ["sleep": 1.5], ["close": 1000]])
            #expect(r["messages"].array.isEmpty)
        }
    }

    @Test func binaryMessageClosesWith1003() throws {
        try withServer(["--exec", "cat"]) { server in
            let r = try Self.steps(server.url, [["send": "text first"], ["recv": 1], ["send_hex": "0001ff"], ["wait_close": 5]])
            #expect(Self.texts(r) == ["text first"])
            #expect(r["close"]["code"].int == 1003)
        }
    }

    @Test func outputThatIsNotUTF8IsSentAsBinary() throws {
        try withServer(["--exec", "printf 'ok\\n\\377\\376\\n'"]) { server in
            let r = try Self.steps(server.url, [["wait_close": 5]])
            #expect(r["messages"][0]["text"].string == "ok")
            #expect(r["messages"][1]["type"].string == "binary")
            #expect(r["messages"][1]["hex"].string == "fffe")
            #expect(r["close"]["code"].int == 1000)
        }
    }

    /// A long burst of output (more than the socket and pipe buffers hold) arrives whole and in order.
    @Test func floodOfOutputArrivesCompleteAndInOrder() throws {
        try withServer(["--exec", "seq 1 50000"]) { server in
            let r = try Self.steps(server.url, [["count": 50000, "timeout": 20], ["wait_close": 5]])
            #expect(r["counted"].int == 50000)
            #expect(r["last"]["text"].string == "50000")
            #expect(r["close"]["code"].int == 1000)
        }
    }

    @Test func clientClosingEndsTheProcess() throws {
        try withServer(["--exec", "echo $$; exec sleep 30"]) { server in
            let r = try Self.steps(server.url, [["recv": 1], ["close": 1000]])
            let received = Self.texts(r)
            let echoedPid = received.first.flatMap { Int32($0) }
            let pid = try #require(echoedPid, "received: \(received)")
            #expect(Self.processGone(pid, within: 5), "process \(pid) still running after its client closed")
            #expect(server.child.waitForStderr(containing: "pid=\(pid) status=signal 15", timeout: 5))
        }
    }

    @Test func stderrLinesGoToTheLog() throws {
        try withServer(["--exec", "echo 'something went wrong' >&2; cat"]) { server in
            let r = try Self.steps(server.url, [["send": "x"], ["recv": 1]])
            #expect(Self.texts(r) == ["x"])
            #expect(server.child.waitForStderr(containing: "line=something went wrong", timeout: 5), "\(server.stderr)")
        }
    }

    @Test func maxProcessesRefusesFurtherClientsWith503() throws {
        try withServer(["--exec", "cat", "--max-processes", "1"]) { server in
            let holder = try Self.startSteps(server.url, [["send": "x"], ["recv": 1], ["sleep": 3], ["close": 1000]])
            #expect(server.child.waitForStderr(containing: "process started", timeout: 10))
            let second = try Self.steps(server.url, [["send": "y"]])
            #expect(second["status"].int == 503)
            let first = try Interop.finish(holder, "holder", timeout: 15)
            #expect(Self.texts(first) == ["x"])
        }
    }

    /// --mode broadcast: one process; its lines reach every client, every client's lines reach it.
    @Test func broadcastModeSharesOneProcess() throws {
        let counter = "i=0; while IFS= read -r l; do i=$((i+1)); echo \"$i $l\"; done"
        try withServer(["--mode", "broadcast", "--exec", counter]) { server in
            let a = try Self.startSteps(server.url, [["sleep": 1.0], ["send": "from a"], ["recv": 1], ["sleep": 0.6], ["recv": 1]])
            let b = try Self.startSteps(server.url, [["sleep": 1.5], ["send": "from b"], ["recv": 2]])
            let ra = try Interop.finish(a, "client a", timeout: 20)
            let rb = try Interop.finish(b, "client b", timeout: 20)
            #expect(Self.texts(ra) == ["1 from a", "2 from b"])
            #expect(Self.texts(rb) == ["1 from a", "2 from b"])
            let stopped = server.stop()
            #expect(stopped.status == 0)
            #expect(stopped.stderr.components(separatedBy: "process started").count - 1 == 1)
        }
    }

    @Test func shutdownEndsRunningProcesses() throws {
        try withServer(["--exec", "echo $$; exec sleep 60"]) { server in
            let client = try Self.startSteps(server.url, [["recv": 1], ["wait_close": 20]])
            #expect(server.child.waitForStderr(containing: "process started", timeout: 10))
            // The pid is in the log line; the client prints it too, but only at its end.
            let line = server.stderr.split(separator: "\n").first { $0.contains("process started") } ?? ""
            let loggedPid = line.split(separator: " ").first { $0.hasPrefix("pid=") }.flatMap { Int32($0.dropFirst(4)) }
            let pid = try #require(loggedPid, "no pid in the log line: \(line)")
            let stopped = server.stop()
            #expect(stopped.status == 0)
            #expect(Self.processGone(pid, within: 5))
            let r = try Interop.finish(client, "client", timeout: 15)
            #expect(r["close"]["code"].int == 1001)
        }
    }

    @Test(arguments: [
        (["--exec", "cat", "--script", "x.lua"], "--script and --exec do not go together"),
        (["--exec", "cat", "--mode", "rooms"], "not rooms"),
        (["--exec", " "], "--exec needs a command"),
        (["--exec", "cat", "--max-processes", "0"], "--max-processes must be at least 1"),
    ])
    func badCombinationsAreUsageErrors(arguments: [String], message: String) throws {
        let r = try CLI.run(["serve", "--port", "0"] + arguments)
        #expect(r.status == 2)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
