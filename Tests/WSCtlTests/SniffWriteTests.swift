import Foundation
import Testing
import WebSocketSniffer
@testable import WSCtl

/// `wsctl sniff -w FILE`: the packets of the WebSocket connections seen, saved as pcap, on a capture
/// that mixes a WebSocket connection with plain HTTP ones (basic.pcap and refused.pcap merged by
/// time, refused.pcap shifted to start 1 ms after basic.pcap so their packets interleave).
@Suite("Sniff -w saves WebSocket connections", .timeLimit(.minutes(3)))
struct SniffWriteTests {
    /// basic.pcap + refused.pcap, interleaved by timestamp.
    static func mixedCapture(in dir: SniffTempDirectory) throws -> String {
        let basic = try PcapFile(path: SniffFixtures.path("basic"))
        let refused = try PcapFile(path: SniffFixtures.path("refused"))
        #expect(basic.header == refused.header, "both fixtures: EN10MB, same snaplen")
        let shift = Int64(refused.time(refused.records[0])) - Int64(basic.time(basic.records[0])) - 1000
        let moved = refused.records.map { refused.record($0, at: UInt64(Int64(refused.time($0)) - shift)) }
        // A stable merge: each capture's own packet order is kept.
        var merged: [PcapFile.Record] = []
        var i = 0, j = 0
        while i < basic.records.count || j < moved.count {
            if j >= moved.count || (i < basic.records.count && basic.time(basic.records[i]) <= refused.time(moved[j])) {
                merged.append(basic.records[i]); i += 1
            } else {
                merged.append(moved[j]); j += 1
            }
        }
        let path = dir.path("mixed.pcap")
        try PcapFile(header: basic.header, records: merged).write(to: path)
        return path
    }

    static let basicClientPort = 37862
    static let basicServerPort = 28081

    @Test func mixedCaptureIsDissectedLikeItsParts() throws {
        let dir = try SniffTempDirectory()
        let mixed = try SniffOutput.run(["sniff", "-r", try Self.mixedCapture(in: dir), "--json", "--full"])
        let mixedStatuses = mixed.kind("handshake").map { $0["status"].int }
        #expect(mixedStatuses == [101, 403, 400, 101])
        let basic = try SniffFixtures.sniff("basic")
        let client = "127.0.0.1:\(Self.basicClientPort)"
        let a = try #require(mixed.connection(client: client)), b = try #require(basic.connection(client: client))
        for d in ["client", "server"] {
            #expect(mixed.messageRecords(connection: a, direction: d) == basic.messageRecords(connection: b, direction: d))
        }
    }

    /// The file -w wrote from the mixed capture (a WebSocket connection and refused upgrades,
    /// their packets interleaved) is dissected exactly as the capture itself: every handshake,
    /// refused ones too, every frame and message, the same connection numbers and times (the
    /// packets are saved in capture order).
    @Test func writtenFileIsDissectedLikeTheCapture() throws {
        let dir = try SniffTempDirectory()
        let input = try Self.mixedCapture(in: dir)
        let saved = dir.path("out.pcap")
        // (Exit 1: one of the refused fixture's connections answers with an Accept that does not
        // match its key, which breaks RFC 6455.)
        let first = try CLI.run(["sniff", "-r", input, "-w", saved, "--json", "--full"])
        #expect(first.status == 1 && first.stderr.hasSuffix("wsctl sniff: 1 protocol violation in 1 connection\n"), "stderr: \(first.stderr)")
        let again = try CLI.run(["sniff", "-r", saved, "--json", "--full"])
        #expect(again.status == 1 && again.stderr == first.stderr, "stderr: \(again.stderr)")
        #expect(again.stdout == first.stdout)
        let file = try PcapFile(path: saved)
        let times = file.records.map(file.time)
        #expect(times == times.sorted(), "packets saved out of capture order")
        #expect(file.records.count == (try PcapFile(path: input)).records.count, "every connection in it is one sniff shows")
    }

    /// The saved file holds the whole WebSocket connection: every packet of it, the closing FIN and
    /// last ACK included, so that dissecting the saved file ends the connection the same way
    /// ("fin", not "end-of-capture").
    @Test func writtenFileKeepsEveryPacketOfTheConnection() throws {
        let dir = try SniffTempDirectory()
        let saved = dir.path("basic-out.pcap")
        for input in [SniffFixtures.path("basic"), try Self.mixedCapture(in: dir)] {
            let r = try CLI.run(["sniff", "-r", input, "-w", saved, "--json"])
            #expect(r.status == (input.hasSuffix("basic.pcap") ? 0 : 1), "stderr: \(r.stderr)")  // (the refused fixture's bad Accept)
            let original = try PcapFile(path: SniffFixtures.path("basic"))
            let file = try PcapFile(path: saved)
            let ports: Set<Int> = [Self.basicClientPort, Self.basicServerPort]
            let kept = file.records.filter { r in PcapFile.tcpPorts(r).map { ports.contains($0.source) && ports.contains($0.destination) } ?? false }
            #expect(kept.count == original.records.count,
                    "\(input): \(kept.count) of the connection's \(original.records.count) packets saved")
            #expect(kept.map(\.data) == Array(original.records.prefix(kept.count)).map(\.data), "\(input): packets saved in order, unchanged")
            let again = try SniffOutput.run(["sniff", "-r", saved, "--json"])
            let closedEvents = again.kind("connection_closed")
            let basicEnd = closedEvents.first { $0["client"].string == "127.0.0.1:\(Self.basicClientPort)" }?["reason"].string
            let endReasons = closedEvents.map { $0["reason"].string ?? "?" }
            #expect(basicEnd == "fin", "\(input): the saved connection's end: \(endReasons)")
        }
    }

    /// Capture `files` merged by time, each shifted by its offset (µs); a stable merge.
    static func merged(_ files: [(PcapFile, Int64)]) -> PcapFile {
        var all: [(time: UInt64, order: Int, record: PcapFile.Record)] = []
        for (n, (file, shift)) in files.enumerated() {
            for (i, r) in file.records.enumerated() {
                let t = UInt64(Int64(file.time(r)) + shift)
                all.append((t, n << 32 | i, file.record(r, at: t)))
            }
        }
        all.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        return PcapFile(header: files[0].0.header, records: all.map(\.record))
    }

    /// Only the WebSocket connection is saved, from a capture that also holds a plain HTTP
    /// connection and one that is not HTTP at all (both interleaved with it), and plain HTTP
    /// connections on the same ports before and after it: the file is exactly the WebSocket
    /// connection's packets, in order.
    @Test func plainConnectionsAreLeftOutEvenOnTheSamePorts() throws {
        func plain(_ port: Int) -> PcapFile {
            var c = SyntheticConnection(request: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                                        response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", clientPort: port)
            c.close()
            return c.capture
        }
        var tls = SyntheticConnection(request: "", response: "", clientPort: 40_002)
        tls.send(fromClient: true, [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        tls.send(fromClient: false, [0x16, 0x03, 0x03, 0x00, 0x02, 1, 2])
        tls.close()
        var ws = SyntheticConnection()
        ws.send(fromClient: true, SniffUpgradeTests.hello)
        ws.send(fromClient: false, SniffUpgradeTests.world)
        ws.close()
        let input = Self.merged([(plain(40_000), -1_000_000), (plain(40_001), 1), (tls.capture, 2), (ws.capture, 0),
                                 (plain(40_000), 1_000_000)])
        let dir = try SniffTempDirectory()
        let path = dir.path("in.pcap"), saved = dir.path("out.pcap")
        try input.write(to: path)
        let r = try CLI.run(["sniff", "-r", path, "-w", saved])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let file = try PcapFile(path: saved)
        #expect(file.records.map(\.data) == ws.capture.records.map(\.data),
                "\(file.records.count) packets saved, ports \(file.records.compactMap(PcapFile.tcpPorts).map { "\($0.source)>\($0.destination)" })")
    }

    /// An upgrade after many ordinary requests on the same connection (80 exchanges: the upgrade is
    /// decided only after some 170 packets): every packet of the connection is saved.
    @Test func slowUpgradeIsSavedWhole() throws {
        var c = SyntheticConnection(request: "", response: "")
        for i in 0..<80 {
            c.send(fromClient: true, Array("GET /poll/\(i) HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
            c.send(fromClient: false, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
        }
        c.send(fromClient: true, Array(SyntheticConnection.request().utf8))
        c.send(fromClient: false, Array(SyntheticConnection.response().utf8))
        c.send(fromClient: true, SniffUpgradeTests.hello)
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("in.pcap"), saved = dir.path("out.pcap")
        try c.capture.write(to: path)
        let r = try CLI.run(["sniff", "-r", path, "-w", saved, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let file = try PcapFile(path: saved)
        #expect(file.records.map(\.data) == c.capture.records.map(\.data), "\(file.records.count) of \(c.capture.records.count) packets saved")
        #expect(try CLI.run(["sniff", "-r", saved, "--json"]).stdout == r.stdout)
    }
}

/// Where -w writes and what happens when it cannot: the capture is never mixed with the
/// dissection, never cut short in silence, and never written over the file being read.
@Suite("Sniff -w destinations", .timeLimit(.minutes(3)))
struct SniffWriteDestinationTests {
    /// `-w -`: standard output holds the pcap file alone, byte for byte the file -w FILE writes;
    /// the dissection and the stats go to standard error.
    @Test func standardOutputHoldsTheCaptureAlone() throws {
        let dir = try SniffTempDirectory()
        let saved = dir.path("saved.pcap")
        let toFile = try CLI.run(["sniff", "-r", SniffFixtures.path("basic"), "-w", saved, "--stats"])
        #expect(toFile.status == 0, "stderr: \(toFile.stderr)")
        let toStdout = try CLI.run(["sniff", "-r", SniffFixtures.path("basic"), "-w", "-", "--stats"])
        #expect(toStdout.status == 0, "stderr: \(toStdout.stderr)")
        #expect(toStdout.stdoutBytes == [UInt8](try Data(contentsOf: URL(fileURLWithPath: saved))), "standard output is not the saved capture alone")
        #expect(!toFile.stdout.isEmpty)
        #expect(toStdout.stderr.hasPrefix(toFile.stdout), "the dissection and stats go to standard error")
    }

    /// A full disk: the error names the file and the reason, and the status is 1 (it was 0, the
    /// last buffered packets lost at close).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full"), "needs /dev/full"))
    func aFullDiskIsAnError() throws {
        let r = try CLI.run(["sniff", "-r", SniffFixtures.path("basic"), "-w", "/dev/full"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("writing /dev/full") && r.stderr.contains("No space left on device"), "stderr: \(r.stderr)")
    }

    /// `-r F -w F` (or another name for F) is refused before F is truncated.
    @Test func theFileBeingReadIsNotWrittenOver() throws {
        let dir = try SniffTempDirectory()
        let copy = dir.path("copy.pcap")
        let original = try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path("basic")))
        try original.write(to: URL(fileURLWithPath: copy))
        let link = dir.path("link.pcap")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: copy)
        for other in [copy, link, dir.path("./copy.pcap")] {
            let r = try CLI.run(["sniff", "-r", copy, "-w", other])
            #expect(r.status == 2, "-w \(other): status \(r.status)")
            #expect(r.stderr.contains("is the file -r reads"), "stderr: \(r.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == original, "-w \(other) wrote over the input")
        }
    }
}

/// --stats totals count every connection, also past the 10,000 whose lines are kept (the totals
/// used to be summed over the kept lines only), and no lines are kept without --stats.
@Suite("Sniff stats totals")
struct SniffStatsTotalsTests {
    @Test func totalsCountConnectionsWhoseLinesWereLetGo() throws {
        var parts: [(PcapFile, Int64)] = []
        for n in 0..<5 {
            var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response(), clientPort: 41_000 + n)
            c.send(fromClient: true, SniffUpgradeTests.hello)
            c.close()
            parts.append((c.capture, Int64(n) * 1_000_000))
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("five.pcap")
        try SniffWriteTests.merged(parts).write(to: path)
        for keep in [2, 0] {
            let session = SniffSession(configuration: SniffConfiguration(maxSummaries: keep))
            let source = try PcapSource(offlinePath: path)
            while let packet = try source.next() { session.process(packet, linkType: source.packetLinkType) { _ in } }
            session.finish { _ in }
            #expect(session.totals.connections == 5 && session.totals.messages == 5 && session.totals.bytes == 5 * 11, "\(session.totals)")
            #expect(session.summaries.map(\.connection) == (keep == 2 ? [4, 5] : []))
        }
    }
}

/// A connection that ends without FIN or RST ends at its own last packet: its `last_time`,
/// `duration` and the frame it left unfinished are not stamped with the moment it was found idle or
/// the capture's last packet (another connection's, much later).
@Suite("Sniff connection times")
struct SniffConnectionTimeTests {
    @Test(arguments: [(10.0, "end-of-capture"), (1_000.0, "idle")])
    func connectionEndsAtItsOwnLastPacket(later: Double, reason: String) throws {
        var a = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response(), clientPort: 41_000)
        a.send(fromClient: true, SniffUpgradeTests.hello)
        // A frame announced as 100 bytes of which 10 arrive: left incomplete.
        a.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 2, length: 100, Array(repeating: 7, count: 10)))
        var b = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response(), clientPort: 41_001)
        b.send(fromClient: true, SniffUpgradeTests.hello)
        b.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("two.pcap")
        try SniffWriteTests.merged([(a.capture, 0), (b.capture, Int64(later * 1_000_000))]).write(to: path)
        let aLast = Double(a.capture.time(a.capture.records.last!)) / 1e6
        let aFirst = Double(a.capture.time(a.capture.records.first!)) / 1e6
        for mode in [["--json"], ["--json", "--frames"], ["--json", "--stats"]] {
            let out = try SniffOutput.run(["sniff", "-r", path, "--flow-timeout", "300s"] + mode)
            let id = try #require(out.connection(client: "127.0.0.1:41000"))
            let closed = try #require(out.events("connection_closed", connection: id).first)
            #expect(closed["reason"].string == reason)
            #expect(abs((closed["last_time"].double ?? 0) - aLast) < 1e-7, "\(mode): last_time \(closed["last_time"]) is not the connection's last packet \(aLast)")
            #expect(abs((closed["duration"].double ?? 0) - (aLast - aFirst)) < 1e-7, "\(mode): duration \(closed["duration"])")
            let times = out.events.filter { $0["connection"].int == id }.compactMap { $0["time"].double }
            #expect(!times.isEmpty && times.allSatisfy { $0 <= aLast + 1e-7 }, "\(mode): records of the connection stamped after its last packet: \(times)")
            if mode.contains("--stats") {
                let stats = try #require(out.events("connection_stats", connection: id).first)
                #expect(abs((stats["duration"].double ?? 0) - (aLast - aFirst)) < 1e-7, "stats duration \(stats["duration"])")
            }
        }
    }
}

/// A capture whose clock steps back (an NTP step while capturing, or files merged with
/// `mergecap -a`) by more than --flow-timeout: a connection that opens after the step is not
/// taken for idle by the clock before it (its SYN was forgotten, and the rest picked up as a
/// connection of its own), and -w keeps every packet.
@Suite("Sniff when the capture's clock steps back")
struct SniffClockStepTests {
    @Test func aConnectionOpenedAfterTheStepKeepsItsSYN() throws {
        let ports = [42_000, 42_001, 42_002]
        var connections = ports.map {
            SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response(), clientPort: $0)
        }
        for i in connections.indices {
            connections[i].send(fromClient: true, SniffUpgradeTests.hello)
            connections[i].close()
        }
        // The first connection's SYN, then 1,000 s back: the rest of all three, taking turns.
        var records = [connections[0].capture.records[0]]
        var next = [1, 0, 0]
        while records.count < connections.map(\.capture.records.count).reduce(0, +) {
            for c in connections.indices where next[c] < connections[c].capture.records.count {
                records.append(connections[c].capture.records[next[c]])
                next[c] += 1
            }
        }
        var capture = connections[0].capture
        let start = capture.time(records[0])
        capture.records = records.enumerated().map { i, r in capture.record(r, at: i == 0 ? start : start - 1_000_000_000 + UInt64(i) * 10) }
        let dir = try SniffTempDirectory()
        let path = dir.path("step.pcap"), saved = dir.path("saved.pcap")
        try capture.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--flow-timeout", "300s", "-w", saved])
        #expect(out.result.status == 0, "\(out.result.stderr)")
        let handshakes = out.kind("handshake")
        #expect(handshakes.map { $0["connection"].int } == [1, 2, 3], "\(handshakes)")
        #expect(handshakes.allSatisfy { $0["upgraded"].bool == true })
        #expect(out.kind("connection_closed").map { $0["reason"].string } == ["fin", "fin", "fin"])
        #expect(try PcapFile(path: saved).records.count == capture.records.count)
    }
}

/// The --stats table shows every address and count whole, however long (the columns used to be
/// cut at their width: a long IPv6 pair lost its server, a long count its last digits).
@Suite("Sniff stats table")
struct SniffStatsTableTests {
    @Test func longAddressesAndCountsAreShownWhole() throws {
        // ipv6.pcap (Ethernet, ::1 to ::1) with the client and the server given long addresses.
        let original = try PcapFile(path: SniffFixtures.path("ipv6"))
        let client: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78]
        let server: [UInt8] = [0xfd, 0x00, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xff, 0xff, 0x11, 0x11]
        let first = try #require(original.records.first?.data)
        #expect(first[12] == 0x86 && first[13] == 0xdd && first[20] == 6, "ipv6.pcap: Ethernet, IPv6, TCP")
        let clientPort = Int(first[54]) << 8 | Int(first[55])
        let records = original.records.map { r -> PcapFile.Record in
            var r = r
            let fromClient = Int(r.data[54]) << 8 | Int(r.data[55]) == clientPort
            r.data.replaceSubrange(22..<38, with: fromClient ? client : server)
            r.data.replaceSubrange(38..<54, with: fromClient ? server : client)
            return r
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("long.pcap")
        try PcapFile(header: original.header, records: records).write(to: path)
        let json = try SniffOutput.run(["sniff", "-r", path, "--json", "--stats"])
        let text = try CLI.run(["sniff", "-r", path, "--stats"])
        #expect(text.status == 0, "stderr: \(text.stderr)")
        let rows = json.kind("connection_stats")
        #expect(!rows.isEmpty)
        for row in rows {
            let id = try #require(row["connection"].int)
            let line = try #require(text.stdout.split(separator: "\n").first { $0.hasPrefix("#\(id) ") }, "no row for #\(id)")
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let pair = "\(row["client"].string ?? "?") → \(row["server"].string ?? "?")"
            #expect(line.contains(" \(pair) "), "\(line): the pair is not \(pair)")
            let bytes = "\(row["bytes_client_to_server"].int ?? -1)/\(row["bytes_server_to_client"].int ?? -1)"
            let messages = "\(row["messages_client_to_server"].int ?? -1)/\(row["messages_server_to_client"].int ?? -1)"
            #expect(fields.contains(bytes) && fields.contains(messages), "\(line): counts are not \(messages) and \(bytes)")
        }
    }
}

/// Short texts take a fast path in the default output: it escapes what the general one does, the
/// bidirectional formatting characters too (a right-to-left override, raw, reorders the rest of
/// the line on a terminal: the line would not show what was sent).
@Suite("Sniff text escaping")
struct SniffTextEscapingTests {
    @Test(arguments: ["\u{202E}", "\u{2066}", "\u{2069}", "\u{200E}", "\u{200F}", "\u{061C}", "\u{202A}"])
    func bidirectionalControlsAreEscaped(control: String) throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("abc\(control)def".utf8)))
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("bidi.pcap")
        try c.capture.write(to: path)
        for mode in [[], ["--frames"], ["-v"]] {
            let r = try CLI.run(["sniff", "-r", path] + mode)
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.stdout.contains("abc"), "\(mode): \(r.stdout)")
            #expect(!r.stdout.unicodeScalars.contains(control.unicodeScalars.first!), "\(mode): U+\(String(control.unicodeScalars.first!.value, radix: 16)) printed raw: \(r.stdout)")
        }
        // Curly quotes and arrows (E2 80 9C, E2 86 92) are not controls: printed as they are.
        var plain = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        plain.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 1, Array("“a” → b".utf8)))
        plain.close()
        try plain.capture.write(to: path)
        #expect(try CLI.run(["sniff", "-r", path]).stdout.contains("“a” → b"))
    }
}

/// -v shows what the shorter outputs show: a pong's round trip, a reply's latency, and of a frame
/// the capture ends inside, that its announced length did not all arrive (it said "N bytes in all;
/// --full shows all", which --full cannot).
@Suite("Sniff -v timings and cut frames")
struct SniffVerboseTests {
    @Test func pongRoundTripAndCutFrame() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        c.send(fromClient: true, SyntheticConnection.clientFrame(opcode: 9, Array("p1".utf8)))
        c.pause(seconds: 0.25)
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 10, length: 2, Array("p1".utf8)))
        // 1000 bytes announced, 297 captured.
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: 1000, Array(repeating: 0x61, count: 297)))
        let dir = try SniffTempDirectory()
        let path = dir.path("ping.pcap")
        try c.capture.write(to: path)
        let json = try SniffOutput.run(["sniff", "-r", path, "--json", "--frames"])
        let rtt = try #require(json.kind("frame").compactMap { $0["ping_rtt"].double }.first, "no pong with ping_rtt")
        let shown = FixedPointText.format(rtt * 1000, digits: 3, width: 0)
        let verbose = try CLI.run(["sniff", "-r", path, "-v"])
        #expect(verbose.status == 0, "stderr: \(verbose.stderr)")
        #expect(verbose.stdout.contains(" rtt \(shown) ms"), "-v leaves out the round trip \(shown) ms:\n\(verbose.stdout)")
        #expect(!verbose.stdout.contains("1000 bytes in all"), "-v says the cut frame is whole:\n\(verbose.stdout)")
        #expect(verbose.stdout.contains("1000 bytes announced, not all captured"), "\(verbose.stdout)")
    }

    @Test func replyLatency() throws {
        let json = try SniffFixtures.sniff("envelopes")
        let latencies = json.kind("message").compactMap { $0["reply_latency"].double }
        #expect(!latencies.isEmpty)
        let verbose = try CLI.run(["sniff", "-r", SniffFixtures.path("envelopes"), "-v"])
        for l in latencies {
            let shown = ", reply \(FixedPointText.format(l * 1000, digits: 3, width: 0)) ms"
            #expect(verbose.stdout.contains(shown), "-v leaves out \(shown)")
        }
        #expect(verbose.stdout.components(separatedBy: ", reply ").count - 1 == latencies.count)
    }
}

/// A packet longer than any pcap reader takes (libpcap: 262,144 bytes; a pcapng file may hold
/// one) is written cut to the file's snapshot length, its wire length kept, and counted: a longer
/// record made the rest of the file unreadable.
@Suite("PcapWriter and packets longer than the snapshot length")
struct PcapWriterLongPacketTests {
    @Test func longPacketIsWrittenCutAndTheFileStaysReadable() throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("long.pcap")
        let writer = try PcapWriter(path: path, linkType: 1, snaplen: 262_144)
        try writer.write([UInt8](repeating: 0xAB, count: 300_000), seconds: 1, nanoseconds: 0)
        try writer.write([UInt8](repeating: 0xCD, count: 60), seconds: 2, nanoseconds: 0)
        try writer.close()
        #expect(writer.packetsCut == 1)
        let file = try PcapFile(path: path)
        #expect(file.records.map(\.data.count) == [262_144, 60])
        #expect(file.records.map(\.wireLength) == [300_000, 60])
        let source = try PcapSource(offlinePath: path)
        var read: [Int] = []
        while let packet = try source.next() { read.append(packet.data.count) }
        #expect(read == [262_144, 60])
    }
}

/// pcapng from PcapWriter: an interface described for each link type as its first packet comes,
/// timestamps to the nanosecond, wire lengths kept, and long packets cut as in pcap; read back by
/// wsctl's own reader with each packet's link type (raw IP in and out as DLT 12).
@Suite("PcapWriter pcapng")
struct PcapWriterPcapngTests {
    @Test func packetsOfSeveralLinkTypesReadBackExactly() throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("several.pcapng")
        let writer = try PcapWriter(path: path, linkType: 1, format: .pcapng)
        #expect(writer.canWrite(linkType: 276) && writer.canWrite(linkType: PcapLinkType.raw))
        let packets: [(linkType: Int32, data: [UInt8], seconds: Int64, nanoseconds: Int32, wire: Int)] = [
            (1, [UInt8](repeating: 0x11, count: 61), 1_790_000_000, 123_456_789, 61),
            (276, [UInt8](repeating: 0x22, count: 80), 1_790_000_001, 1, 1_500),
            (PcapLinkType.raw, [0x45] + [UInt8](repeating: 0x33, count: 39), 1_790_000_001, 999_999_999, 40),
            (1, [UInt8](repeating: 0x44, count: 300_000), 1_790_000_002, 0, 300_000),
            (276, [], 1_790_000_003, 5, 0),
        ]
        for p in packets {
            try writer.write(p.data, seconds: p.seconds, nanoseconds: p.nanoseconds, wireLength: p.wire, linkType: p.linkType)
        }
        try writer.close()
        #expect(writer.packetsCut == 1)
        let source = try PcapSource(offlinePath: path)
        #expect(source.isPcapng && Set(source.linkTypes) == [1, 276, PcapLinkType.raw])
        var read: [(Int32, [UInt8], Int64, Int32, Int)] = []
        while let packet = try source.next() {
            read.append((source.packetLinkType, Array(packet.data), packet.seconds, packet.nanoseconds, packet.wireLength))
        }
        #expect(read.count == packets.count)
        for (r, p) in zip(read, packets) {
            #expect(r.0 == p.linkType)
            #expect(r.1 == Array(p.data.prefix(262_144)))
            #expect(r.2 == p.seconds && r.3 == p.nanoseconds, "time \(r.2).\(r.3)")
            #expect(r.4 == p.wire)
        }
        // The file as written: a section header, then an interface before each link type's first
        // packet, interface numbers in order of first use.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // (In this machine's byte order, which the writer uses.)
        func u32(_ at: Int) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) } }
        var at = 0
        var kinds: [UInt32] = []
        var interfaceLinkTypes: [UInt32] = []
        while at < bytes.count {
            kinds.append(u32(at))
            if u32(at) == 1 { interfaceLinkTypes.append(u32(at + 8) & 0xFFFF) }
            at += Int(u32(at + 4))
        }
        #expect(at == bytes.count)
        #expect(kinds == [0x0A0D_0D0A, 1, 6, 1, 6, 1, 6, 6, 6])
        #expect(interfaceLinkTypes == [1, 276, 101])
    }

    /// Times pcapng's 64 bits of nanoseconds since 1970 do not hold (before 1970, after 2554: a
    /// pcapng capture's if_tsoffset can give them) are kept, through an interface whose
    /// if_tsoffset they count from; billions of years away, they are clamped and counted.
    @Test func timesBefore1970AndAfter2554AreKept() throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("times.pcapng")
        let writer = try PcapWriter(path: path, linkType: 1, format: .pcapng)
        let times: [(Int64, Int32)] = [(1_790_000_000, 5), (-5, 7), (-3_000_000_000, 999_999_999), (20_000_000_000, 1),
                                       (18_446_744_073, 709_551_616), (-5, 8), (Int64.min, 0), (Int64.max, 3)]
        for (s, ns) in times { try writer.write([0x42], seconds: s, nanoseconds: ns) }
        try writer.close()
        #expect(writer.timesClamped == 1)
        let source = try PcapSource(offlinePath: path)
        var read: [(Int64, Int32)] = []
        while let packet = try source.next() { read.append((packet.seconds, packet.nanoseconds)) }
        // (Int64.max seconds fit, counted from an offset 854,775,807 s below them; Int64.min does not.)
        let expected: [(Int64, Int32)] = Array(times.prefix(6)) + [(0, 0), (Int64.max, 3)]
        #expect(read.map(\.0) == expected.map(\.0) && read.map(\.1) == expected.map(\.1), "\(read)")
        // tshark reads the same times (it shows a negative one as whole seconds and nanoseconds,
        // each with the sign: -5 s + 7 ns as -5.000000007).
        if let tshark = Interop.which("tshark") {
            let r = try CLI.run(["-r", path, "-T", "fields", "-e", "frame.time_epoch"], executable: tshark)
            #expect(r.stdout.split(separator: "\n").prefix(5) == ["1790000000.000000005", "-5.000000007", "-3000000000.999999999",
                                                                  "20000000000.000000001", "18446744073.709551616"], "\(r.stdout)")
        }
    }

    /// A file no packet was saved to still has an interface: readers refuse a section without one.
    @Test func aFileWithNoPacketIsReadable() throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("empty.pcapng")
        try PcapWriter(path: path, linkType: 276, format: .pcapng).close()
        let source = try PcapSource(offlinePath: path)
        #expect(source.linkTypes == [276])
        #expect(try source.next() == nil)
        // As -w leaves it for a pcapng capture with no WebSocket connection in it.
        let file = try PcapFile(path: SniffFixtures.path("nohandshake"))
        var pcapng = PcapngBuilder()
        pcapng.section()
        pcapng.interface(linkType: 1)
        for r in file.records { pcapng.packet(interface: 0, time: file.time(r), r) }
        let input = dir.path("nohandshake.pcapng"), saved = dir.path("saved.pcapng")
        try Data(pcapng.bytes).write(to: URL(fileURLWithPath: input))
        #expect(try CLI.run(["sniff", "-r", input, "-w", saved]).status == 0)
        let again = try CLI.run(["sniff", "-r", saved])
        #expect(again.status == 0 && again.stdout.isEmpty, "\(again.stderr)")
        // -w - with standard output closed says so (its descriptor may be the capture's).
        let closed = try CLI.run(["-c", "\"$0\" sniff -r \"$1\" -w - >&-", CLI.binary.path, input],
                                 executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(closed.status == 1 && closed.stderr.contains("standard output is closed"), "\(closed.stderr)")
    }

    @Test func aFileThatCannotBeCreatedSaysWhy() {
        #expect(throws: PcapError.self) { try PcapWriter(path: "/nonexistent-dir/x.pcapng", linkType: 1, format: .pcapng) }
    }
}

/// A one-line preview stays a line however the text is made: 80 characters, and at most 320
/// Unicode scalars (a letter under 100,000 combining marks is one character of 200,001 bytes, and
/// --full showed all of it on the message's line).
@Suite("Sniff previews of combining-mark text")
struct SniffPreviewTests {
    @Test func previewIsBoundedInScalars() throws {
        var c = SyntheticConnection(request: SyntheticConnection.request(), response: SyntheticConnection.response())
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: 200_001, Array(("a" + String(repeating: "\u{0301}", count: 100_000)).utf8)))
        let zalgo = String(repeating: "b" + String(repeating: "\u{0301}", count: 1_000), count: 81)
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: zalgo.utf8.count, Array(zalgo.utf8)))
        c.close()
        let dir = try SniffTempDirectory()
        let path = dir.path("marks.pcap")
        try c.capture.write(to: path)
        for mode in [["--full"], ["--full", "--frames"]] {
            let r = try CLI.run(["sniff", "-r", path] + mode)
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let lines = r.stdout.split(separator: "\n").filter { $0.contains("S→C text") }
            #expect(lines.count == 2, "\(mode): \(lines.count) text lines")
            for line in lines {
                #expect(line.unicodeScalars.count < 500, "\(mode): a line of \(line.unicodeScalars.count) scalars")
                #expect(line.hasSuffix("…\""), "\(mode): the preview does not say it was cut")
            }
        }
    }
}
