import Foundation
import Testing
@testable import WebSocketSniffer

/// A loopback TCP exchange between a Python server and client: the client sends `up` bytes, the server
/// answers with `down` bytes and half-closes, the client closes. Waits for `go()` after binding, so a capture
/// can be started on the port first.
final class LoopbackExchange {
    static let script = """
        import signal, socket, sys, threading
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        signal.alarm(30)  # never outlive a stuck test
        family = socket.AF_INET6 if sys.argv[1] == '6' else socket.AF_INET
        host = '::1' if sys.argv[1] == '6' else '127.0.0.1'
        up, down = int(sys.argv[2]), int(sys.argv[3])
        def pattern(n, k): return bytes((i * k + 3) % 251 for i in range(n))
        try:
            server = socket.socket(family)
            server.bind((host, 0))
        except OSError as e:
            print('unavailable', e, flush=True); sys.exit(0)
        server.listen(1)
        port = server.getsockname()[1]
        print(port, flush=True)
        sys.stdin.readline()
        def serve():
            conn, _ = server.accept()
            got = b''
            while len(got) < up:
                chunk = conn.recv(65536)
                if not chunk: break
                got += chunk
            conn.sendall(pattern(down, 7))
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)
            conn.close()
            if got != pattern(up, 5): print('server got wrong bytes', flush=True)
        thread = threading.Thread(target=serve)
        thread.start()
        client = socket.create_connection((host, port))
        client.sendall(pattern(up, 5))
        got = b''
        while True:
            chunk = client.recv(65536)
            if not chunk: break
            got += chunk
        client.close()
        thread.join()
        print('ok' if got == pattern(down, 7) else 'client got wrong bytes', flush=True)
        """

    let process = Process()
    let input = Pipe()
    let output = Pipe()
    /// The server's port, or nil if the address family is unavailable.
    private(set) var port: UInt16?
    let up: Int
    let down: Int

    init(ipVersion: Int = 4, up: Int, down: Int) throws {
        self.up = up
        self.down = down
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, String(ipVersion), String(up), String(down)]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        port = UInt16(readLine().trimmingCharacters(in: .whitespaces))
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    func readLine() -> String {
        var bytes: [UInt8] = []
        while !bytes.contains(0x0A) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)
    }

    func go() {
        input.fileHandleForWriting.write(Data("go\n".utf8))
    }

    /// Waits for the exchange to end and returns its verdict ("ok").
    func finish() -> String {
        let verdict = readLine()
        process.waitUntilExit()
        return verdict
    }

    var clientToServer: [UInt8] { Build.pattern(up, 5) }
    var serverToClient: [UInt8] { Build.pattern(down, 7) }
}

enum LiveCapture {
    /// Why live capture on `lo` cannot be tested here, or nil if it can.
    static func unavailableReason() -> String? {
        do {
            _ = try PcapSource(liveInterface: "lo")
            return nil
        } catch {
            return "capture on lo is not possible here: \(error)"
        }
    }

    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH", default: ""] + ":/usr/sbin:/sbin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Checks that `events` hold one clean flow carrying the exchange.
    static func verify(_ events: [Recorded], _ exchange: LoopbackExchange, sourceLocation: SourceLocation = #_sourceLocation) {
        let opened = events.compactMap { if case .opened(let info) = $0 { info } else { nil } }
        #expect(opened.count == 1, "\(opened)", sourceLocation: sourceLocation)
        guard let info = opened.first else { return }
        #expect(info.handshakeSeen, sourceLocation: sourceLocation)
        #expect(info.server?.port == exchange.port, sourceLocation: sourceLocation)
        #expect(Capture.stream(events, .initiatorToResponder) == exchange.clientToServer, sourceLocation: sourceLocation)
        #expect(Capture.stream(events, .responderToInitiator) == exchange.serverToClient, sourceLocation: sourceLocation)
        let sawGap = events.contains { if case .gap = $0 { true } else { false } }
        #expect(!sawGap, "a gap among \(events.count) events", sourceLocation: sourceLocation)
        #expect(events.last == .closed(1, .fin), sourceLocation: sourceLocation)
    }
}

@Suite("Live capture", .serialized)
struct CaptureLiveTests {
    /// The permission error says how to get permission.
    @Test func permissionErrorExplainsTheFix() {
        let error = PcapSource.activationError(status: -8, interface: "eth0", detail: "eth0: You don't have permission to perform this capture on that device")
        #expect(error.kind == .permissionDenied)
        #expect(error.description.contains("You don't have permission"))
        #expect(error.description.contains("as root"))
        #expect(error.description.contains("setcap cap_net_raw,cap_net_admin=eip $(which wsctl)"))
        let generic = PcapSource.activationError(status: -1, interface: "any", detail: "socket: Operation not permitted")
        #expect(generic.kind == .permissionDenied)
        #expect(generic.description.contains("setcap"))
        let other = PcapSource.activationError(status: -9, interface: "eth1", detail: "")
        #expect(other.kind == .interfaceDown)
        #expect(!other.description.contains("setcap"))
    }

    @Test func unknownInterfaceListsTheRealOnes() throws {
        if let reason = LiveCapture.unavailableReason() { try Test.cancel(Comment(rawValue: reason)) }
        let thrown = thrownError { try PcapSource(liveInterface: "wsctl-nosuch0") }
        #expect(thrown is PcapError, "threw \(String(describing: thrown))")
        let error = thrown as? PcapError
        #expect(error?.kind == .noSuchDevice)
        #expect(error?.description.contains("lo") == true)
        #expect(PcapSource.interfaceNames()?.contains("lo") == true)
    }

    /// A real exchange on loopback, captured by tcpdump and read back from its file.
    @Test func tcpdumpCaptureOfALoopbackExchange() throws {
        guard let tcpdump = LiveCapture.executable("tcpdump") else { try Test.cancel("tcpdump is not installed") }
        if let reason = LiveCapture.unavailableReason() { try Test.cancel(Comment(rawValue: reason)) }
        let exchange = try LoopbackExchange(up: 100_000, down: 3000)
        let port = try #require(exchange.port)
        let file = TemporaryFile()
        let capture = Process()
        // Processes spawned from the test runner inherit its blocked signal mask, which would make tcpdump
        // deaf to SIGINT; a small exec wrapper unblocks signals first.
        capture.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        capture.arguments = [
            "python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])",
            tcpdump, "-i", "lo", "--immediate-mode", "-U", "-w", file.path, "-c", "500", "tcp port \(port)",
        ]
        let errors = Pipe()
        capture.standardError = errors
        capture.standardOutput = FileHandle.nullDevice
        try capture.run()
        defer { if capture.isRunning { kill(capture.processIdentifier, SIGKILL) } }
        var said = ""
        while !said.contains("listening on") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said += String(decoding: chunk, as: UTF8.self)
        }
        try #require(said.contains("listening on"), "tcpdump: \(said)")
        exchange.go()
        #expect(exchange.finish() == "ok")
        Thread.sleep(forTimeInterval: 0.3)
        capture.interrupt()
        let stopDeadline = Date().addingTimeInterval(10)
        while capture.isRunning, Date() < stopDeadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!capture.isRunning, "tcpdump ignored SIGINT")
        if capture.isRunning { kill(capture.processIdentifier, SIGKILL) }
        capture.waitUntilExit()

        said += String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let source = try PcapSource(offlinePath: file.path)
        #expect(file.bytes.count > 24, "tcpdump wrote no packets: \(said)")
        #expect(source.linkType == PcapLinkType.ethernet, "Linux captures lo as Ethernet")
        let (events, skipped) = try Capture.reassemble(source)
        #expect(skipped.isEmpty)
        LiveCapture.verify(events, exchange)
    }

    /// The same exchange captured with PcapSource itself, read as it happens.
    @Test(arguments: [4, 6])
    func liveCaptureOfALoopbackExchange(ipVersion: Int) throws {
        if let reason = LiveCapture.unavailableReason() { try Test.cancel(Comment(rawValue: reason)) }
        let exchange = try LoopbackExchange(ipVersion: ipVersion, up: 200_000, down: 70_000)
        guard let port = exchange.port else { try Test.cancel("IPv\(ipVersion) loopback is unavailable") }
        let source = try PcapSource(liveInterface: "lo", timeoutMs: 100)
        #expect(source.isLive)
        try source.setFilter("tcp port \(port)")
        exchange.go()
        var reassembler = TCPReassembler()
        var events: [Recorded] = []
        let deadline = Date().addingTimeInterval(20)
        reading: while Date() < deadline {
            switch try source.read() {
            case .packet(let packet):
                guard case .tcp(let decoded) = PacketDecoder.decode(linkType: source.linkType, data: packet.data) else {
                    Issue.record("undecodable packet \(packet.number)")
                    continue
                }
                #expect(decoded.ipVersion.rawValue == ipVersion)
                reassembler.process(decoded, packetData: packet.data, time: packet.time, packetNumber: packet.number) {
                    events.append(Harness.record($0))
                }
                if case .closed = events.last { break reading }
            case .timeout:
                continue
            case .interrupted, .endOfCapture:
                break reading
            }
        }
        #expect(exchange.finish() == "ok")
        LiveCapture.verify(events, exchange)
        let stats = try #require(source.stats)
        #expect(stats.received > 0)
        #expect(stats.dropped == 0)
    }

    /// A quiet live capture reports timeouts, and breakLoop from another thread ends a blocked `next()`.
    @Test func timeoutsAndBreakLoop() throws {
        if let reason = LiveCapture.unavailableReason() { try Test.cancel(Comment(rawValue: reason)) }
        let source = try PcapSource(liveInterface: "lo", timeoutMs: 50)
        try source.setFilter("tcp port 9 and host 192.0.2.99")
        let started = Date()
        #expect(try source.read().isTimeout)
        #expect(Date().timeIntervalSince(started) < 5)
        let breaker = source.loopBreaker
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { breaker.breakLoop() }
        let blocked = Date()
        #expect(try source.next() == nil)
        let waited = Date().timeIntervalSince(blocked)
        #expect(waited >= 0.25 && waited < 5, "next() waited \(waited) s")
        #expect(try source.read().isTimeout, "reading again resumes the capture")
    }
}
