import Foundation
import Testing

/// `sniff` exits 1 when the traffic broke a protocol rule, as `decode` does (README: "Exit status
/// everywhere"), and says how many violations it flagged in how many connections; traffic that
/// broke none exits 0 and says nothing of it.
@Suite("Sniff's exit status follows the violations", .timeLimit(.minutes(2)))
struct SniffExitStatusTests {
    static func connection(badFrames: Int) -> SyntheticConnection {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("hello".utf8)))
        for _ in 0..<badFrames {
            // Opcode 3 is reserved (RFC 6455 §5.2).
            c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 3, length: 2, [0x68, 0x69]))
        }
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: 5, Array("world".utf8)))
        return c
    }

    @Test(arguments: [[], ["--one-thread"], ["--stats"], ["--frames"]])
    func brokenRulesExitOne(_ extra: [String]) throws {
        let one = try SniffUpgradeTests.run(Self.connection(badFrames: 1), extra)
        #expect(one.result.status == 1, "\(one.result.stderr)")
        #expect(one.result.stderr.contains("wsctl sniff: 1 protocol violation in 1 connection\n"), "\(one.result.stderr)")
        #expect(one.events.contains { $0["errors"].array.contains { $0["rule"].string == "reserved-opcode" } })
        let three = try SniffUpgradeTests.run(Self.connection(badFrames: 3), extra)
        #expect(three.result.status == 1)
        #expect(three.result.stderr.contains("wsctl sniff: 3 protocol violations in 1 connection\n"), "\(three.result.stderr)")
        if extra == ["--stats"] {
            #expect(three.kind("stats").first?["violations"].int == 3)
            #expect(one.kind("stats").first?["violations"].int == 1)
        }
    }

    /// Bad option values are usage errors (exit 2) with sniff's usage: a filter that does not
    /// compile (it exited 1), a duration of 0 (it read nothing and exited 0; --count 0 was refused).
    @Test(arguments: [
        (["-f", "tcp port"], "-f: filter \"tcp port\""),
        (["--duration", "0"], "--duration must be more than 0"),
        (["--duration", "0s"], "--duration must be more than 0"),
        (["--count", "0"], "--count must be at least 1"),
        // A negative number is a value, not an option (it was "Missing value for '--count'"), and a
        // negative --max-payload (given as --max-payload=-5) crashed the dissector.
        (["--count", "-1"], "--count must be at least 1"),
        (["--max-payload", "-5"], "--max-payload must be 0 or more, got -5"),
        (["--max-payload=-5"], "--max-payload must be 0 or more, got -5"),
        (["--port", "-80"], "--port takes 1-65535"),
        // A flow timeout of 0 forgot every connection between two of its packets (30 of the 40
        // messages of concurrent.pcap vanished, exit 0); a negative size was 'Missing value'.
        (["--flow-timeout", "0"], "--flow-timeout must be more than 0, got 0"),
        (["--flow-timeout", "0s"], "--flow-timeout must be more than 0, got 0s"),
        (["--max-flow-buffer", "-1"], "--max-flow-buffer: invalid value \"-1\""),
        (["--max-message-memory", "-1"], "--max-message-memory: invalid value \"-1\""),
        (["--flow-timeout", "soon"], "--flow-timeout: "),
    ])
    func badValuesAreUsageErrors(_ extra: [String], _ message: String) throws {
        let r = try CLI.run(["sniff", "-r", SniffFixtures.path("basic")] + extra)
        #expect(r.status == 2 && r.stdout.isEmpty, "\(r.stdout.prefix(300))")
        #expect(r.stderr.contains(message) && r.stderr.contains("Usage: wsctl sniff"), "\(r.stderr)")
    }

    /// Bytes the capture lost (a gap) are not the traffic's fault: the exit status stays 0, but
    /// the last stderr line counts them, as it counts violations, so that a script checking a
    /// capture with `>/dev/null` learns that part of it could not be dissected; `--stats` has the
    /// counts per connection and in all.
    @Test(arguments: [[], ["--json"], ["--one-thread"]])
    func gapsAreCountedOnStderr(_ extra: [String]) throws {
        let truth = try SniffFixtures.truth("gap")
        let lost = try #require(truth["perturbation"]["gap_bytes"].int)
        let r = try CLI.run(["sniff", "-r", SniffFixtures.path("gap")] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.hasSuffix("wsctl sniff: \(lost) bytes not captured (1 gap in 1 connection): the messages they touched are incomplete or missing\n"),
                "\(r.stderr)")
        let stats = try SniffOutput.run(["sniff", "-r", SniffFixtures.path("gap"), "--json", "--stats"])
        let total = try #require(stats.kind("stats").first)
        #expect(total["gaps"].int == 1 && total["gap_bytes"].int == lost && total["connections_with_gaps"].int == 1)
        let perConnection = stats.kind("connection_stats")
        #expect(perConnection.map { $0["gap_bytes"].int } == [lost, 0])
        #expect(perConnection.map { $0["gaps"].int } == [1, 0])
        let text = try CLI.run(["sniff", "-r", SniffFixtures.path("gap"), "--stats"])
        #expect(text.stdout.contains("gaps 1 (\(lost) bytes not captured)"), "\(text.stdout)")
        #expect(text.stdout.contains(", 1 gap (\(lost) bytes not captured)"), "\(text.stdout)")
        // A capture without gaps says nothing of them.
        let clean = try CLI.run(["sniff", "-r", SniffFixtures.path("fragmented")])
        #expect(!clean.stderr.contains("not captured"), "\(clean.stderr)")
    }

    /// A handshake that broke RFC 6455 counts as a violation too: a wrong Sec-WebSocket-Accept,
    /// a request without its key. (Only the handshake line said so; the exit status was 0.)
    @Test func handshakeRulesCount() throws {
        let badAccept = SyntheticConnection(request: SyntheticConnection.request(),
                                            response: SyntheticConnection.response().replacingOccurrences(of: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", with: "AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
        let accept = try SniffUpgradeTests.run(badAccept, ["--stats"])
        #expect(accept.result.status == 1, "\(accept.result.stderr)")
        #expect(accept.result.stderr.contains("wsctl sniff: 1 protocol violation in 1 connection\n"), "\(accept.result.stderr)")
        #expect(accept.kind("handshake").first?["response_error"].string?.contains("Sec-WebSocket-Accept") == true)
        #expect(accept.kind("stats").first?["violations"].int == 1)
        let noKey = SyntheticConnection(request: SyntheticConnection.request().replacingOccurrences(of: "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", with: ""),
                                        response: "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        let key = try SniffUpgradeTests.run(noKey)
        #expect(key.result.status == 1, "\(key.result.stderr)")
        #expect(key.kind("handshake").first?["request_error"].string != nil)
        // The real capture's third connection: an Accept that does not match.
        let refused = try CLI.run(["sniff", "-r", SniffFixtures.path("refused")])
        #expect(refused.status == 1 && refused.stderr.contains("protocol violation"), "\(refused.stderr)")
    }

    @Test func cleanTrafficExitsZero() throws {
        let clean = try SniffUpgradeTests.run(Self.connection(badFrames: 0))
        #expect(clean.result.status == 0, "\(clean.result.stderr)")
        #expect(!clean.result.stderr.contains("protocol violation"))
        #expect(clean.kind("message").count == 2)
        let stats = try SniffUpgradeTests.run(Self.connection(badFrames: 0), ["--stats"])
        #expect(stats.kind("stats").first?["violations"].int == 0)
        // The real peers' captures broke no rule.
        for name in ["basic", "deflate", "fragmented", "closecodes", "concurrent"] {
            let r = try CLI.run(["sniff", "-r", SniffFixtures.path(name)])
            #expect(r.status == 0, "\(name): \(r.stderr)")
        }
    }
}
