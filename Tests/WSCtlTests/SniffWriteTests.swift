import Foundation
import Testing

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

    /// Every WebSocket message (and control frame, handshake and close) of the mixed capture is in
    /// the file -w wrote, and the plain HTTP connections are not.
    @Test func writtenFileKeepsEveryWebSocketMessage() throws {
        let dir = try SniffTempDirectory()
        let input = try Self.mixedCapture(in: dir)
        let saved = dir.path("out.pcap")
        let first = try CLI.run(["sniff", "-r", input, "-w", saved, "--json"])
        #expect(first.status == 0, "stderr: \(first.stderr)")
        let again = try SniffOutput.run(["sniff", "-r", saved, "--json", "--full"])
        #expect(again.result.status == 0, "stderr: \(again.result.stderr)")
        let basic = try SniffFixtures.sniff("basic")
        let client = "127.0.0.1:\(Self.basicClientPort)"
        let a = try #require(again.connection(client: client), "the WebSocket connection is missing from the saved file")
        let b = try #require(basic.connection(client: client))
        for d in ["client", "server"] {
            #expect(again.messageRecords(connection: a, direction: d) == basic.messageRecords(connection: b, direction: d))
        }
        #expect(again.controlRecords(connection: a) == basic.controlRecords(connection: b))
        #expect(again.handshake(connection: a)?["upgraded"].bool == true)
        let statuses = again.kind("handshake").compactMap { $0["status"].int }
        #expect(!statuses.contains(403) && !statuses.contains(400), "plain HTTP connections saved: \(statuses)")

        // Nothing of the refused connections on ports 28089/28090 is in the file.
        let file = try PcapFile(path: saved)
        let httpPorts: Set<Int> = [28089, 28090]
        let leaked = file.records.compactMap(PcapFile.tcpPorts).filter { httpPorts.contains($0.source) || httpPorts.contains($0.destination) }
        #expect(leaked.isEmpty, "\(leaked.count) packets of refused upgrades saved")
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
}
