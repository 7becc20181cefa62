import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process whose stdout and stderr are collected as they arrive, so a test can wait for a
/// line, read a log while the process runs, and stop it. Every wait takes a timeout. A child still
/// running when its `ChildProcess` goes away is killed.
final class ChildProcess: @unchecked Sendable {
    private let process = Process()
    private let stdinPipe = Pipe()
    private let output = Output()

    /// What the reader threads collect; apart from the ChildProcess so that it can go away (and
    /// kill its child) while they still run.
    private final class Output: @unchecked Sendable {
        let lock = NSLock()
        var stdout = Data()
        var stderr = Data()
        var openStreams = 2
    }

    init(executable: URL, arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdinPipe
        try process.run()
        collect(out.fileHandleForReading, isStdout: true)
        collect(err.fileHandleForReading, isStdout: false)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// One reader thread per stream: a blocking read, never a pool thread.
    private func collect(_ handle: FileHandle, isStdout: Bool) {
        let output = self.output
        let thread = Thread {
            while true {
                let chunk = handle.availableData
                output.lock.withLock {
                    if chunk.isEmpty {
                        output.openStreams -= 1
                    } else if isStdout {
                        output.stdout.append(chunk)
                    } else {
                        output.stderr.append(chunk)
                    }
                }
                if chunk.isEmpty { return }
            }
        }
        thread.start()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdout: String { output.lock.withLock { String(decoding: output.stdout, as: UTF8.self) } }
    var stderr: String { output.lock.withLock { String(decoding: output.stderr, as: UTF8.self) } }

    /// Polls `condition` every 10 ms until it holds or `timeout` seconds pass.
    static func wait(timeout: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return true
    }

    /// The first complete stdout line, or nil when none arrives in time (or the process ends first).
    func firstStdoutLine(timeout: Double) -> String? {
        var line: String?
        _ = Self.wait(timeout: timeout) {
            output.lock.withLock {
                let data = output.stdout
                if let newline = data.firstIndex(of: UInt8(ascii: "\n")) {
                    line = String(decoding: data[data.startIndex..<newline], as: UTF8.self)
                }
            }
            return line != nil || !process.isRunning
        }
        return line
    }

    func waitForStdout(containing text: String, timeout: Double) -> Bool {
        Self.wait(timeout: timeout) { stdout.contains(text) }
    }

    func waitForStderr(containing text: String, timeout: Double) -> Bool {
        Self.wait(timeout: timeout) { stderr.contains(text) }
    }

    func writeStdin(_ text: String) {
        try? stdinPipe.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    func writeStdin(bytes: [UInt8]) {
        try? stdinPipe.fileHandleForWriting.write(contentsOf: Data(bytes))
    }

    func closeStdin() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    /// Waits for the process to end; its status, or nil when it is still running after `timeout`.
    /// Also waits (briefly) for the output streams to reach their end.
    func waitForExit(timeout: Double) -> Int32? {
        guard Self.wait(timeout: timeout, until: { !process.isRunning }) else { return nil }
        _ = Self.wait(timeout: 2) { output.lock.withLock { output.openStreams == 0 } }
        return process.terminationStatus
    }

    func send(signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// SIGTERM, then SIGKILL if it has not ended after `timeout` seconds. Returns the exit status
    /// when the process ended by itself after SIGTERM, nil when it had to be killed.
    @discardableResult
    func stop(timeout: Double = 10) -> Int32? {
        try? stdinPipe.fileHandleForWriting.close()
        send(signal: SIGTERM)
        if let status = waitForExit(timeout: timeout) { return status }
        send(signal: SIGKILL)
        _ = waitForExit(timeout: 5)
        return nil
    }
}

/// `wsctl serve --port 0 …` as a subprocess: started, its URL read from the first stdout line, and
/// stopped with SIGTERM at the end.
final class ServeProcess: @unchecked Sendable {
    let child: ChildProcess
    /// The URL the server printed, such as `ws://127.0.0.1:41234/`.
    let url: String
    let port: Int

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ flags: [String]) throws {
        var arguments = ["serve", "--port", "0"] + flags
        // Keep a stuck client from holding up the end of a test for the default 5 s.
        if !flags.contains("--shutdown-grace") { arguments += ["--shutdown-grace", "2s"] }
        child = try ChildProcess(executable: CLI.binary, arguments: arguments)
        guard let line = child.firstStdoutLine(timeout: 15),
              let components = URLComponents(string: line), let port = components.port
        else {
            child.stop(timeout: 2)
            throw StartError(description: "wsctl \(arguments.joined(separator: " ")) printed no URL; stderr:\n\(child.stderr)")
        }
        url = line
        self.port = port
    }

    var pid: Int32 { child.pid }
    var stderr: String { child.stderr }

    /// The server's URL with another path (and query), same scheme and port.
    func url(path: String) -> String {
        var c = URLComponents(string: url)!
        let parts = path.split(separator: "?", maxSplits: 1)
        c.path = String(parts[0])
        c.query = parts.count > 1 ? String(parts[1]) : nil
        return c.string!
    }

    struct Stopped {
        /// nil when the server did not exit within the timeout after SIGTERM and was killed.
        var status: Int32?
        var stderr: String
    }

    /// Sends SIGTERM and waits for the exit; SIGKILL after 10 s.
    @discardableResult
    func stop() -> Stopped {
        let status = child.stop(timeout: 10)
        return Stopped(status: status, stderr: child.stderr)
    }
}

/// Runs `body` with a server started with `flags`, and stops the server afterwards whatever happens.
func withServer<R>(_ flags: [String] = [], _ body: (ServeProcess) throws -> R) throws -> R {
    let server = try ServeProcess(flags)
    defer { if server.child.isRunning { server.stop() } }
    return try body(server)
}

/// A JSON value from a client script's report, with optional accessors for concise expectations.
struct JSON: CustomStringConvertible, @unchecked Sendable {
    let value: Any?

    init(_ value: Any?) { self.value = value is NSNull ? nil : value }

    init(parsing text: String) throws {
        self.init(try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]))
    }

    subscript(key: String) -> JSON { JSON((value as? [String: Any])?[key]) }
    subscript(index: Int) -> JSON {
        guard let a = value as? [Any], a.indices.contains(index) else { return JSON(nil) }
        return JSON(a[index])
    }

    var isNull: Bool { value == nil }
    var string: String? { value as? String }
    var int: Int? { (value as? Int) ?? (value as? NSNumber)?.intValue }
    var double: Double? { (value as? NSNumber)?.doubleValue ?? (value as? Double) }
    var bool: Bool? { value as? Bool }
    var array: [JSON] { (value as? [Any])?.map(JSON.init) ?? [] }
    var keys: [String] { (value as? [String: Any]).map { Array($0.keys).sorted() } ?? [] }
    var strings: [String] { array.compactMap(\.string) }

    var description: String {
        guard let value else { return "null" }
        if JSONSerialization.isValidJSONObject(value),
           let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }
}

/// The client scripts in Tests/Interop and the tools they need.
enum Interop {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop")

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// An executable on PATH.
    static func which(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// Runs a tool briefly; its status and output (nil when it could not run or took over 20 s).
    static func probe(_ tool: URL, _ arguments: [String]) -> (status: Int32, output: String)? {
        guard let child = try? ChildProcess(executable: tool, arguments: arguments) else { return nil }
        guard let status = child.waitForExit(timeout: 20) else {
            child.stop(timeout: 2)
            return nil
        }
        return (status, child.stdout + child.stderr)
    }

    static let python = which("python3")
    static let node = which("node")
    static let openssl = which("openssl")

    /// Why the Python `websockets` tests cannot run here, or nil when they can.
    static let pythonWebsocketsProblem: String? = {
        guard let python else { return "python3 is not on PATH" }
        let check = "import websockets, websockets.asyncio.client as c, inspect; v = websockets.version.version; "
            + "assert 'proxy' in inspect.signature(c.connect.__init__).parameters, v; print(v)"
        guard let r = probe(python, ["-c", check]) else { return "python3 did not answer" }
        if r.status != 0 {
            let last = r.output.split(separator: "\n").last.map(String.init) ?? ""
            return "Python websockets 15 or later is not importable (pip install websockets): \(last)"
        }
        return nil
    }()

    static let pythonProblem: String? = python == nil ? "python3 is not on PATH" : nil

    /// Why the Node WebSocket tests cannot run here, or nil when they can.
    static let nodeProblem: String? = {
        guard let node else { return "node is not on PATH" }
        guard let r = probe(node, ["--experimental-websocket", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 3)"])
        else { return "node did not answer" }
        if r.status != 0 {
            let version = probe(node, ["--version"])?.output.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            return "node \(version) has no built-in WebSocket client with --experimental-websocket (needs Node 20.10 or later)"
        }
        return nil
    }()

    static let opensslProblem: String? = openssl == nil ? "openssl is not on PATH (needed to make a self-signed certificate)" : nil

    /// Starts a client script; the caller waits for it with `finish`.
    static func start(_ tool: URL?, _ arguments: [String]) throws -> ChildProcess {
        guard let tool else { throw Failure(description: "tool not found") }
        return try ChildProcess(executable: tool, arguments: arguments, environment: ["PYTHONDONTWRITEBYTECODE": "1"])
    }

    /// Waits for a client script and parses the JSON object it printed last. A script that
    /// reports {"error": …}, prints no JSON or outlives `timeout` fails the test with its output.
    static func finish(_ child: ChildProcess, _ what: String, timeout: Double) throws -> JSON {
        guard let status = child.waitForExit(timeout: timeout) else {
            child.send(signal: SIGKILL)
            _ = child.waitForExit(timeout: 5)
            throw Failure(description: "\(what) still running after \(timeout) s; stdout: \(child.stdout) stderr: \(child.stderr)")
        }
        let lines = child.stdout.split(separator: "\n")
        guard status == 0, let last = lines.last, let result = try? JSON(parsing: String(last)), result.keys.count > 0 else {
            throw Failure(description: "\(what) exited \(status); stdout: \(child.stdout) stderr: \(child.stderr)")
        }
        if let error = result["error"].string {
            throw Failure(description: "\(what) failed: \(error)")
        }
        return result
    }

    private static func optionsJSON(_ options: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: options, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// `ws_client.py URL SCENARIO OPTIONS`, started (for scenarios that talk to the test on the way).
    static func startPython(_ url: String, _ scenario: String, _ options: [String: Any] = [:]) throws -> ChildProcess {
        try start(python, [directory.appendingPathComponent("ws_client.py").path, url, scenario, optionsJSON(options)])
    }

    /// Python `websockets` client: `ws_client.py URL SCENARIO OPTIONS`, run to the end.
    static func websockets(_ url: String, _ scenario: String, _ options: [String: Any] = [:], timeout: Double = 30) throws -> JSON {
        try finish(try startPython(url, scenario, options), "ws_client.py \(scenario)", timeout: timeout)
    }

    /// Plain-socket client: `raw_client.py URL SCENARIO OPTIONS`.
    static func raw(_ url: String, _ scenario: String, _ options: [String: Any] = [:], timeout: Double = 15) throws -> JSON {
        let child = try start(python, [directory.appendingPathComponent("raw_client.py").path, url, scenario, optionsJSON(options)])
        return try finish(child, "raw_client.py \(scenario)", timeout: timeout)
    }

    /// A raw HTTP/1.1 request (`{host}` and `{path}` are filled in by the script).
    static func http(_ url: String, _ request: String) throws -> JSON {
        try raw(url, "http", ["request": request])
    }

    /// Node's built-in client: `node --experimental-websocket node_client.mjs URL SCENARIO`.
    static func nodeClient(_ url: String, _ scenario: String, timeout: Double = 20) throws -> JSON {
        let child = try start(node, ["--experimental-websocket", "--no-warnings",
                                     directory.appendingPathComponent("node_client.mjs").path, url, scenario])
        return try finish(child, "node_client.mjs \(scenario)", timeout: timeout)
    }
}

extension Trait where Self == ConditionTrait {
    static var requiresPythonWebsockets: Self {
        .enabled(if: Interop.pythonWebsocketsProblem == nil, Comment(rawValue: Interop.pythonWebsocketsProblem ?? ""))
    }
    static var requiresPython: Self {
        .enabled(if: Interop.pythonProblem == nil, Comment(rawValue: Interop.pythonProblem ?? ""))
    }
    static var requiresNodeWebSocket: Self {
        .enabled(if: Interop.nodeProblem == nil, Comment(rawValue: Interop.nodeProblem ?? ""))
    }
    static var requiresOpenSSL: Self {
        .enabled(if: Interop.opensslProblem == nil, Comment(rawValue: Interop.opensslProblem ?? ""))
    }
}
