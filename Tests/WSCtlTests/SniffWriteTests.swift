import Foundation
import Testing
import WebSocketSniffer

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
        let first = try CLI.run(["sniff", "-r", input, "-w", saved, "--json", "--full"])
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let again = try CLI.run(["sniff", "-r", saved, "--json", "--full"])
        #expect(again.status == 0, "stderr: \(again.stderr)")
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
            #expect(r.status == 0, "stderr: \(r.stderr)")
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
