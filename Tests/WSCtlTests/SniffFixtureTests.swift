import Foundation
import Testing

/// `wsctl sniff -r` on the capture fixtures (real traffic between Python `websockets` peers,
/// Fixtures/captures) against the ground truth their senders recorded.
@Suite("Sniff fixtures against ground truth", .timeLimit(.minutes(3)))
struct SniffFixtureTests {
    @Test func fixturesArePresent() {
        #expect(SniffFixtures.all.count >= 15, "fixtures found: \(SniffFixtures.all)")
        for name in ["basic", "deflate", "fragmented", "large", "concurrent", "ipv6", "any", "refused", "closecodes",
                     "envelopes", "keepalive", "reordered", "duplicated", "nohandshake", "truncated", "gap"] {
            #expect(SniffFixtures.all.contains(name), "\(name).pcap / \(name).truth.json missing")
        }
    }

    /// Connections (client and server endpoints), handshakes, every data message in order per
    /// connection and direction (opcode, length, SHA-256 of the payload, text, fragment count,
    /// compression, envelope), pings and pongs in wire order, close codes and reasons.
    @Test(arguments: SniffFixtures.complete)
    func matchesTruth(_ name: String) throws {
        let truth = try SniffFixtures.truth(name)
        let out = try SniffFixtures.sniff(name)
        if name != "truncated" {
            // 1 when a handshake broke RFC 6455 (the refused fixture's Accept that does not match).
            let broken = truth["connections"].array.contains { $0["handshake"]["accept_valid"].bool == false }
            #expect(out.result.status == (broken ? 1 : 0), "exit status; stderr: \(out.result.stderr)")
        }
        let m = TruthComparison.mismatches(out, truth)
        #expect(m.count == 0, m.report)
    }

    /// Link types: the same exchange captured on Ethernet (lo), Linux cooked v1 and v2 (`-i any`)
    /// and over IPv6 gives the same messages.
    @Test(arguments: SniffFixtures.all.filter { $0.hasPrefix("any") || $0 == "ipv6" })
    func linkTypesAndIPv6GiveTheBasicMessages(_ name: String) throws {
        let basic = try SniffFixtures.sniff("basic")
        let other = try SniffFixtures.sniff(name)
        let b = try #require(basic.connectionIDs.first), o = try #require(other.connectionIDs.first)
        for d in ["client", "server"] {
            #expect(other.messageRecords(connection: o, direction: d) == basic.messageRecords(connection: b, direction: d))
        }
        #expect(other.controlRecords(connection: o) == basic.controlRecords(connection: b))
    }

    /// Reordered, duplicated (exact and overlapping retransmissions) and handshake-less copies give
    /// the messages and control frames of the capture they were made from, each once.
    @Test(arguments: [("reordered", "fragmented"), ("duplicated", "basic"), ("nohandshake", "basic")])
    func perturbedCopyGivesTheSameMessages(_ copy: String, _ source: String) throws {
        let a = try SniffFixtures.sniff(copy)
        let b = try SniffFixtures.sniff(source)
        let truth = try SniffFixtures.truth(source)
        #expect(a.result.status == 0, "stderr: \(a.result.stderr)")
        for c in truth["connections"].array {
            let client = c["client"]["text"].string ?? "?"
            let ia = try #require(a.connection(client: client), "\(copy): no connection for \(client)")
            let ib = try #require(b.connection(client: client), "\(source): no connection for \(client)")
            for d in ["client", "server"] {
                let ma = a.messageRecords(connection: ia, direction: d), mb = b.messageRecords(connection: ib, direction: d)
                #expect(ma == mb, "\(copy) vs \(source), connection \(client), \(d) messages")
                let truthCount = c["messages"].array.filter { $0["direction"].string == d }.count
                #expect(ma.count == truthCount, "\(copy): connection \(client), \(d) messages")
                #expect(a.events("frame", connection: ia, direction: d).count == b.events("frame", connection: ib, direction: d).count,
                        "\(copy): each frame once (\(d))")
            }
            #expect(a.controlRecords(connection: ia) == b.controlRecords(connection: ib), "\(copy) vs \(source), control frames")
            #expect(a.closed(connection: ia)?["server"].string == c["server"]["text"].string,
                    "\(copy): client and server roles")
        }
    }

    /// The copy without handshake is dissected as WebSocket only with `--port`, and says no handshake
    /// was seen.
    @Test func noHandshakeNeedsPort() throws {
        let without = try SniffOutput.run(["sniff", "-r", SniffFixtures.path("nohandshake"), "--json"])
        #expect(without.kind("message").isEmpty, "messages without --port: \(without.kind("message").count)")
        let with = try SniffFixtures.sniff("nohandshake")
        #expect(with.kind("handshake").isEmpty)
        #expect(with.kind("message").count == 18)
    }

    /// A capture cut inside a packet record: a warning naming the packet, exit status 1 (README),
    /// and the messages of the complete records are still reported.
    @Test func truncatedCaptureWarnsWithPacketNumber() throws {
        let truth = try SniffFixtures.truth("truncated")
        let packet = try #require(truth["perturbation"]["incomplete_record"].int)
        let out = try SniffFixtures.sniff("truncated")
        #expect(out.result.status == 1, "exit status; stderr: \(out.result.stderr)")
        #expect(out.result.stderr.contains("packet \(packet)"), "stderr: \(out.result.stderr)")
        #expect(out.result.stderr.lowercased().contains("warning"), "stderr: \(out.result.stderr)")
        let m = TruthComparison.mismatches(out, truth)
        #expect(m.count == 0, m.report)
        #expect(out.kind("connection_closed").count == 1)
        // Text output too.
        let text = try CLI.run(["sniff", "-r", SniffFixtures.path("truncated")])
        #expect(text.status == 1)
        #expect(text.stderr.contains("packet \(packet)"))
        #expect(text.stdout.contains("Hello, WebSocket!"))
    }

    /// A damaged record header in the middle of a capture (packet 10 of basic, a client message of
    /// 256 bytes): a warning with the packet number and byte offsets, exit status 1, and everything
    /// after it still dissected: the lost message is a reassembly gap, every other message and
    /// control frame is reported as in the undamaged capture, on one thread and on three.
    @Test func damagedRecordIsSkippedAndTheRestDissected() async throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path("basic"))))
        let records = SniffFixtures.pcapRecords(bytes)
        let starts = records.map(\.start), times = records.map(\.time)
        let damaged = 9  // packet 10
        bytes.replaceSubrange((starts[damaged] + 8)..<(starts[damaged] + 12), with: [0xFF, 0xFF, 0xFF, 0x7F])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-damaged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("damaged.pcap").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        // Processes are waited for off Swift Testing's threads (see offThePool).
        let (original, out, one, text) = try await offThePool {
            (try SniffFixtures.sniff("basic"), try SniffOutput.run(["sniff", "-r", path, "--json", "--full"]),
             try CLI.run(["sniff", "-r", path, "--json", "--full", "--one-thread"]), try CLI.run(["sniff", "-r", path]))
        }
        #expect(out.result.status == 1, "stderr: \(out.result.stderr)")
        #expect(out.result.stderr.contains("warning: packet 10: "), "stderr: \(out.result.stderr)")
        #expect(out.result.stderr.contains("from byte \(starts[damaged])), reading on at byte \(starts[damaged + 1])"),
                "stderr: \(out.result.stderr)")
        let o = try #require(original.connectionIDs.first), d = try #require(out.connectionIDs.first)
        #expect(out.connectionIDs.count == 1)
        #expect(out.messageRecords(connection: d, direction: "server") == original.messageRecords(connection: o, direction: "server"))
        // Client messages: all but the one packet 10 carried.
        let lost = original.events("message", connection: o, direction: "client").filter {
            abs(($0["time"].double ?? 0) - times[damaged]) < 1e-6
        }
        try #require(lost.count == 1, "packet 10 carries one client message")
        var expected = original.messageRecords(connection: o, direction: "client")
        let lostIndex = try #require(original.events("message", connection: o, direction: "client").firstIndex {
            abs(($0["time"].double ?? 0) - times[damaged]) < 1e-6
        })
        expected.remove(at: lostIndex)
        #expect(out.messageRecords(connection: d, direction: "client") == expected)
        // Packet 10 held whole frames: the gap falls between messages, and the ones after it are whole.
        let flagged = out.events("message", connection: d).filter { $0["incomplete"].bool != false }
        #expect(flagged.isEmpty, "marked incomplete after a gap between messages: \(flagged.map { $0["index"].int ?? -1 })")
        #expect(out.controlRecords(connection: d) == original.controlRecords(connection: o), "ping, pong and close after the damage")
        let gaps = out.kind("gap")
        #expect(gaps.count == 1 && gaps.first?["direction"].string == "client" && gaps.first?["missing_bytes"].int == starts[damaged + 1] - starts[damaged] - 16 - 66,
                "the lost packet's payload is the gap: \(gaps)")
        #expect(out.kind("connection_closed").count == 1)
        // One thread, and text output: the same.
        #expect(one.stdout == out.result.stdout)
        #expect(one.stderr == out.result.stderr)
        #expect(text.status == 1)
        #expect(text.stderr.contains("packet 10: "))
        #expect(text.stdout.contains("closed (fin) close 1000"), "stdout: \(text.stdout)")
        #expect(!text.stdout.contains("incomplete"), "stdout: \(text.stdout)")
    }

    /// The segment that held the header of large's 1.5 MiB binary frame (packet 8) lost: the gap
    /// ends inside that frame, and the 1.5 MB of random payload after it must not be read as
    /// frames. The messages after it are the ones the fixture script recorded, no violations are
    /// reported, and the server's direction is untouched.
    @Test func gapEndingInsideALargeFrameIsSkipped() async throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path("large"))))
        let starts = SniffFixtures.pcapRecords(bytes).map(\.start)
        let lost = 7  // packet 8: 82 ff, a binary frame with a 64-bit length, and 32,754 bytes of its payload
        bytes.removeSubrange(starts[lost]..<starts[lost + 1])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-midframe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("midframe.pcap").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let out = try await offThePool { try SniffOutput.run(["sniff", "-r", path, "--json", "--full"]) }
        #expect(out.result.status == 0, "stderr: \(out.result.stderr)")
        let gaps = out.kind("gap")
        #expect(gaps.count == 1 && gaps.first?["direction"].string == "client" && gaps.first?["missing_bytes"].int == 32_768, "\(gaps)")
        // Against the truth the fixture script recorded: the server direction whole (echoes,
        // control frames, close), the client's messages all but the lost one.
        let truth = try SniffFixtures.truth("large")
        let others = TruthComparison.mismatches(out, truth, skipDirections: ["client"])
        #expect(others.count == 0, others.report)
        let d = try #require(out.connectionIDs.first)
        let expected = truth["connections"][0]["messages"].array.filter { $0["direction"].string == "client" }
        var m = Mismatches()
        TruthComparison.compareMessages(&m, "client", out.events("message", connection: d, direction: "client"), Array(expected.dropFirst()))
        #expect(m.count == 0, m.report)
        let flagged = out.kind("frame").filter { !$0["errors"].array.isEmpty }
        #expect(flagged.isEmpty, "frames flagged: \(flagged.prefix(3))")
        let clientControl = out.events("frame", connection: d, direction: "client").filter { [8, 9, 10].contains($0["opcode"].int ?? 0) }
        #expect(clientControl.map { $0["opcode_name"].string ?? "?" } == ["close"], "the client's only control frame is its close")
        // The resync says what was passed over: the rest of the frame whose header was lost.
        let resyncs = out.kind("resync")
        #expect(resyncs.count == 1, "\(resyncs)")
        let r = try #require(resyncs.first)
        let lostLength = try #require(expected.first?["length"].int)
        #expect(r["direction"].string == "client")
        #expect(r["skipped_bytes"].int == lostLength - 32_754, "\(r)")
        #expect(r["offset"].int.flatMap { o in r["gap_end"].int.map { o - $0 } } == r["skipped_bytes"].int)
        let firstAfter = out.events("frame", connection: d, direction: "client").first { ($0["offset"].int ?? 0) > (r["gap_end"].int ?? .max) }
        #expect(firstAfter?["offset"].int == r["offset"].int, "frames start again where the resync says")
    }

    /// A capture of one direction only (a filter such as `dst port 8080`, or a capture point that
    /// sees one way): the client's side alone still gives its request and its messages, at their
    /// own times; the server's side alone gives the 101 and its messages, inflated with the
    /// parameters its response names.
    @Test(arguments: ["basic", "deflate", "fragmented", "concurrent"])
    func oneDirectionCaptured(_ name: String) async throws {
        let truth = try SniffFixtures.truth(name)
        let file = try PcapFile(path: SniffFixtures.path(name))
        let dir = try SniffTempDirectory()
        for side in ["client", "server"] {
            var one = file
            one.records = file.records.filter { r in
                guard let ports = PcapFile.tcpPorts(r) else { return false }
                return truth["connections"].array.contains { $0[side]["port"].int == ports.source }
            }
            #expect(one.records.count > 0 && one.records.count < file.records.count)
            let path = dir.path("\(name)-\(side).pcap")
            try one.write(to: path)
            let out = try await offThePool { try SniffOutput.run(["sniff", "-r", path, "--json", "--full"]) }
            #expect(out.result.status == 0, "stderr: \(out.result.stderr)")
            var m = Mismatches()
            for c in truth["connections"].array {
                let label = "\(name), \(side) only, \(c["client"]["text"].string ?? "?")"
                guard let id = out.connection(client: c["client"]["text"].string ?? "?") else {
                    m.add("\(label): not reported")
                    continue
                }
                let h = out.handshake(connection: id)
                if side == "client" {
                    m.check("\(label) request", h?["request"].string?.contains(c["handshake"]["path"].string ?? "?"), true)
                    m.check("\(label) response_error", h?["response_error"].string?.hasPrefix("no response in the capture"), true)
                } else {
                    m.check("\(label) status", h?["status"].int, 101)
                    m.check("\(label) extensions", h?["extensions"].string, c["handshake"]["extensions"].string)
                    m.check("\(label) request_error", h?["request_error"].string?.hasPrefix("no request in the capture"), true)
                    m.check("\(label) request", h?["request"].isNull, true)
                }
                let messages = out.events("message", connection: id, direction: side)
                TruthComparison.compareMessages(&m, label, messages, c["messages"].array.filter { $0["direction"].string == side })
                let times = messages.compactMap { $0["time"].double }
                m.check("\(label) times in order and not all the same", times == times.sorted() && Set(times).count > min(1, times.count - 1), true)
                let flagged = out.events.filter { $0["connection"].int == id && !$0["errors"].array.isEmpty }
                m.check("\(label) events with violations", flagged.count, 0)
            }
            #expect(m.count == 0, m.report)
        }
    }

    /// The capture stops inside the client's 1.5 MiB frame (the file cut after packet 12): that
    /// frame and its message are shown as far as they came, marked incomplete, not dropped.
    @Test func captureEndingInsideALargeFrame() async throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path("large"))))
        let starts = SniffFixtures.pcapRecords(bytes).map(\.start)
        let dir = try SniffTempDirectory()
        let path = dir.path("large-first-12.pcap")
        try Data(bytes[..<starts[12]]).write(to: URL(fileURLWithPath: path))
        let out = try await offThePool { try SniffOutput.run(["sniff", "-r", path, "--json", "--full"]) }
        #expect(out.result.status == 0, "stderr: \(out.result.stderr)")
        let cut = out.kind("frame").filter { $0["incomplete"].bool == true }
        #expect(cut.count == 1, "\(cut.count) incomplete frames")
        let frame = try #require(cut.first)
        #expect(frame["direction"].string == "client" && frame["opcode_name"].string == "binary")
        let length = try #require(frame["payload_length"].int)
        #expect(length >= 1 << 20, "the large frame")
        let arrived = (frame["payload_hex"].string?.count ?? 0) / 2
        #expect(arrived > 0 && arrived < length, "\(arrived) of \(length) bytes")
        #expect(out.kind("frame").filter { $0["incomplete"].bool != nil }.count == 1, "the key is only on the incomplete frame")
        let id = try #require(out.connectionIDs.first)
        let message = try #require(out.events("message", connection: id, direction: "client").last)
        #expect(message["incomplete"].bool == true)
        #expect(message["data_length"].int == arrived)
        #expect(message["payload_hex"].string == frame["payload_hex"].string)
        #expect(message["offset"].int == frame["offset"].int)
        #expect(out.kind("connection_closed").count == 1)
    }

    /// One client segment (about 1 KB) missing inside an 11-frame message: a gap event with its size
    /// in the right connection and direction; what came before is intact, the broken message is not
    /// reported as complete, the other direction and connection are unaffected, and the dissector
    /// resynchronises for the close frame.
    @Test func gapIsReportedWithItsSize() throws {
        let truth = try SniffFixtures.truth("gap")
        let p = truth["perturbation"]
        let out = try SniffFixtures.sniff("gap")
        #expect(out.result.status == 0, "stderr: \(out.result.stderr)")
        let perturbed = truth["connections"].array.first { $0["id"].int == p["connection"].int }
        let conn = try #require(perturbed, "no connection \(p["connection"]) in the truth")
        let id = try #require(out.connection(client: conn["client"]["text"].string ?? "?"))
        let gaps = out.kind("gap")
        try #require(gaps.count == 1, "gap events: \(gaps)")
        #expect(gaps[0]["connection"].int == id)
        #expect(gaps[0]["direction"].string == p["direction"].string)
        #expect(gaps[0]["missing_bytes"].int == p["gap_bytes"].int)
        #expect(out.closed(connection: id)?["gaps"].int == 1)

        // Everything but the direction with the hole matches the truth.
        let others = TruthComparison.mismatches(out, truth, skipDirections: [p["direction"].string ?? ""])
        #expect(others.count == 0, others.report)

        // That direction: the messages before the hole exactly, the lost one never complete.
        let lost = try #require(p["lost_message_index"].int)
        let direction = p["direction"].string ?? ""
        let expected = conn["messages"].array.filter { $0["direction"].string == direction }
        let before = expected.filter { ($0["index"].int ?? 0) < lost }
        let got = out.events("message", connection: id, direction: direction)
        var m = Mismatches()
        TruthComparison.compareMessages(&m, "gap \(direction)", Array(got.prefix(before.count)), before)
        #expect(m.count == 0, m.report)
        let lostDigest = expected.first { $0["index"].int == lost }?["sha256"].string
        for g in got.dropFirst(before.count) {
            #expect(SHA256Digest.hex(hexBytes(g["payload_hex"].string ?? "")) != lostDigest,
                    "the message cut by the gap is reported whole")
        }
        // The gap comes after the last message before it.
        let order = out.events.filter { $0["connection"].int == id && $0["direction"].string == direction }
            .map { $0["kind"].string ?? "" }.filter { $0 == "message" || $0 == "gap" }
        #expect(order.firstIndex(of: "gap") == before.count, "order of messages and gap: \(order)")
    }

    /// After the gap, frames keep their numbering: `index` goes on increasing and `offset` stays the
    /// position in the direction's WebSocket byte stream (the bytes before the hole, plus the hole),
    /// so that (connection, direction, index) names one frame.
    @Test func framesAfterAGapKeepTheirIndexAndStreamOffset() throws {
        let truth = try SniffFixtures.truth("gap")
        let p = truth["perturbation"]
        let out = try SniffFixtures.sniff("gap")
        let perturbed = truth["connections"].array.first { $0["id"].int == p["connection"].int }
        let conn = try #require(perturbed, "no connection \(p["connection"]) in the truth")
        let id = try #require(out.connection(client: conn["client"]["text"].string ?? "?"))
        let direction = try #require(p["direction"].string)
        var lastIndex = 0, nextOffset = 0, sawGap = false
        var m = Mismatches()
        for e in out.events where e["connection"].int == id && e["direction"].string == direction {
            if e["kind"].string == "gap" {
                nextOffset += e["missing_bytes"].int ?? 0
                sawGap = true
                continue
            }
            guard e["kind"].string == "frame", let index = e["index"].int, let offset = e["offset"].int else { continue }
            let l = "frame \(index) (\(sawGap ? "after" : "before") the gap)"
            if index <= lastIndex { m.add("\(l): index not increasing (previous \(lastIndex))") }
            m.check("\(l) offset", offset, nextOffset)
            lastIndex = index
            nextOffset = offset + (e["header_length"].int ?? 0) + (e["payload_length"].int ?? 0)
        }
        #expect(sawGap)
        #expect(m.count == 0, m.report)
    }

    /// Frames after a gap that continue a message whose start was lost are the capture's loss, not
    /// the peer's fault: they are not flagged as RFC 6455 violations (continuation-without-start,
    /// "a peer closes with 1002"), and the connection's violation count stays 0.
    @Test func framesAfterAGapAreNotProtocolViolations() throws {
        let out = try SniffFixtures.sniff("gap", ["--stats"])
        let flagged = out.kind("frame").filter { !$0["errors"].array.isEmpty }
        let flaggedFrames = flagged.map { "frame \($0["index"].int ?? -1) \($0["errors"][0]["rule"].string ?? "")" }
        #expect(flagged.count == 0, "flagged after the gap: \(flaggedFrames)")
        let stats = out.kind("connection_stats")
        let noViolations = stats.allSatisfy { $0["violations"].int == 0 }
        let violations = stats.map { $0["violations"].int ?? -1 }
        #expect(noViolations, "violations: \(violations)")
    }

    /// The message that lost bytes to the gap (it began before the hole and ended after it) is not
    /// passed off as intact: if it is reported at all, it says so, with an entry in `errors` or a
    /// field naming the gap, so that a reader can tell its payload is short.
    @Test func messageAcrossTheGapIsMarkedIncomplete() throws {
        let truth = try SniffFixtures.truth("gap")
        let p = truth["perturbation"]
        let out = try SniffFixtures.sniff("gap")
        let perturbed = truth["connections"].array.first { $0["id"].int == p["connection"].int }
        let conn = try #require(perturbed, "no connection \(p["connection"]) in the truth")
        let id = try #require(out.connection(client: conn["client"]["text"].string ?? "?"))
        let events = out.events.filter { $0["connection"].int == id && $0["direction"].string == p["direction"].string }
        let firstGap = events.firstIndex { $0["kind"].string == "gap" }
        let gapAt = try #require(firstGap, "no gap among \(events.count) events of the direction")
        let resumedAt = events[gapAt...].first { $0["kind"].string == "frame" }?["offset"].int ?? Int.max
        let spanning = events[gapAt...].filter { $0["kind"].string == "message" && ($0["offset"].int ?? Int.max) < resumedAt }
        let expectedLength = conn["messages"].array.first { $0["index"].int == p["lost_message_index"].int }?["length"].int
        for m in spanning {
            let marked = !m["errors"].array.isEmpty || m.keys.contains { key in
                ["gap", "incomplete", "lost", "missing", "damaged"].contains { key.contains($0) }
                    && (m[key].bool == true || (m[key].int ?? 0) > 0)
            }
            #expect(marked, """
                message \(m["index"].int ?? -1) (\(m["opcode_name"].string ?? "?"), offset \(m["offset"].int ?? -1)…\(m["end_offset"].int ?? -1), \
                \(m["data_length"].int ?? -1) B of \(expectedLength ?? -1) sent, \(m["fragments"].int ?? -1) frames) spans the \
                \(events[gapAt]["missing_bytes"].int ?? -1)-byte gap but is reported like an intact message (no error, no gap marker)
                """)
        }
    }

    /// Failed upgrades: 403 and 400 shown with their status, the 101 with a wrong
    /// Sec-WebSocket-Accept flagged (accept_matches false), none dissected as WebSocket.
    @Test func refusedUpgradesShowStatusAndBadAccept() throws {
        let out = try SniffFixtures.sniff("refused")
        let hs = out.kind("handshake")
        let statuses = hs.map { $0["status"].int }
        #expect(statuses == [403, 400, 101])
        let acceptMatches = hs.map { $0["accept_matches"].bool }
        #expect(acceptMatches == [nil, nil, false])
        let upgraded = hs.map { $0["upgraded"].bool }
        #expect(upgraded == [false, false, false])
        #expect(hs.last?["response_error"].string?.contains("Sec-WebSocket-Accept") == true)
        #expect(out.kind("frame").isEmpty && out.kind("message").isEmpty)
        let reasons = out.kind("connection_closed").map { $0["reason"].string ?? "" }
        #expect(reasons.prefix(2) == ["upgrade refused (403)", "upgrade refused (400)"])
        let text = try CLI.run(["sniff", "-r", SniffFixtures.path("refused")])
        #expect(text.stdout.contains("403 Forbidden"))
        #expect(text.stdout.contains("400 Bad Request"))
        #expect(text.stdout.contains("accept MISMATCH"))
    }

    /// Envelopes: replies carry reply_latency close to the latency measured in the capture (between
    /// the packets completing request and reply), requests and pushes do not.
    @Test func envelopeRepliesCarryLatency() throws {
        let truth = try SniffFixtures.truth("envelopes")
        let conn = try #require(truth["connections"].array.first)
        let out = try SniffFixtures.sniff("envelopes")
        let id = try #require(out.connection(client: conn["client"]["text"].string ?? "?"))
        let replies = out.events("message", connection: id, direction: "server")
        let requests = out.events("message", connection: id, direction: "client")
        let pairs = conn["pairs"].array
        #expect(pairs.count == 8)
        for pair in pairs {
            let cid = pair["correlation_id"].string
            let reply = replies.first { $0["envelope"]["correlation_id"].string == cid }
            let latency = try #require(reply?["reply_latency"].double, "reply \(cid ?? "?") has no reply_latency")
            let expected = try #require(pair["capture_latency_ms"].double)
            #expect(abs(latency * 1000 - expected) < 0.5, "\(cid ?? "?"): \(latency * 1000) ms, capture says \(expected) ms")
            #expect(latency * 1000 >= (pair["server_delay_ms"].double ?? 0), "\(cid ?? "?") faster than the server's delay")
        }
        for r in requests { #expect(r["reply_latency"].isNull, "request \(r["envelope"]["correlation_id"]) has a reply_latency") }
        let push = replies.filter { $0["envelope"]["correlation_id"].isNull }
        #expect(push.count == 1)
        #expect(push.first?["reply_latency"].isNull == true)
        #expect(push.first?["envelope"]["type"].string == "notice")
        // Out of order: c-4 answered first.
        #expect(replies.first?["envelope"]["correlation_id"].string == "c-4")
    }

    /// `--stats`: per-connection messages and frames per direction, opcodes, close codes and bytes,
    /// and totals, agree with the truth and with the frames sniff printed.
    @Test(arguments: ["basic", "concurrent", "deflate", "fragmented", "closecodes", "refused", "envelopes", "large"])
    func statsMatchTruth(_ name: String) throws {
        let truth = try SniffFixtures.truth(name)
        let out = try SniffFixtures.sniff(name, ["--stats"])
        let stats = try #require(out.kind("stats").first)
        let connections = truth["connections"].array
        var m = Mismatches()
        m.check("packets", stats["packets"].int, truth["capture"]["packets"].int)
        m.check("packets skipped", stats["packets_skipped"].int, 0)
        m.check("connections", stats["connections"].int, connections.count)
        m.check("messages", stats["messages"].int, connections.reduce(0) { $0 + $1["messages"].array.count })
        let perConnection = out.kind("connection_stats")
        m.check("connection_stats lines", perConnection.count, connections.count)
        m.check("bytes = sum over connections", stats["bytes"].int,
                perConnection.reduce(0) { $0 + ($1["bytes_client_to_server"].int ?? 0) + ($1["bytes_server_to_client"].int ?? 0) })
        for c in connections {
            guard let id = out.connection(client: c["client"]["text"].string ?? "?"),
                  let s = perConnection.first(where: { $0["connection"].int == id })
            else {
                m.add("connection \(c["id"]): no connection_stats")
                continue
            }
            let l = "connection \(c["id"])"
            for (d, suffix) in [("client", "client_to_server"), ("server", "server_to_client")] {
                m.check("\(l) messages_\(suffix)", s["messages_\(suffix)"].int,
                        c["messages"].array.filter { $0["direction"].string == d }.count)
                let frames = out.events("frame", connection: id, direction: d)
                m.check("\(l) frames_\(suffix)", s["frames_\(suffix)"].int, frames.count)
                m.check("\(l) bytes_\(suffix) (header + payload of its frames)", s["bytes_\(suffix)"].int,
                        frames.reduce(0) { $0 + ($1["header_length"].int ?? 0) + ($1["payload_length"].int ?? 0) })
            }
            var opcodes: [String: Int] = [:]
            for f in out.events("frame", connection: id) { opcodes[f["opcode_name"].string ?? "?", default: 0] += 1 }
            let reported = Dictionary(uniqueKeysWithValues: s["opcodes"].keys.map { ($0, s["opcodes"][$0].int ?? -1) })
            m.check("\(l) opcodes", reported, opcodes)
            let close = c["close"]
            let initiator = close["initiator"].string ?? "client"
            m.check("\(l) close_code", s["close_code"].int, close[initiator]["code"].int)
            m.check("\(l) gaps", s["gaps"].int, 0)
            // (A handshake whose Accept does not match the key broke RFC 6455 §4.2.2.)
            m.check("\(l) violations", s["violations"].int, c["handshake"]["accept_valid"].bool == false ? 1 : 0)
        }
        #expect(m.count == 0, m.report)
        // The text table ends with the same totals.
        let text = try CLI.run(["sniff", "-r", SniffFixtures.path(name), "--stats"] + SniffFixtures.portArguments(truth))
        #expect(text.stdout.contains("total: \(stats["packets"].int ?? -1) packets, \(connections.count) WebSocket connections, \(stats["messages"].int ?? -1) messages, \(stats["bytes"].int ?? -1) bytes"),
                "text --stats: \(text.stdout.split(separator: "\n").suffix(3))")
        // Each connection's duration with six decimals, as the JSON has it (it had three, though the
        // README says times and durations have six everywhere).
        for c in out.kind("connection_stats") {
            let duration = String(format: "%.6f", c["duration"].double ?? -1)
            #expect(text.stdout.split(separator: "\n").contains { $0.hasPrefix("#\(c["connection"].int ?? -1) ") && $0.hasSuffix(" \(duration)s") },
                    "connection \(c["connection"]) duration \(duration)")
        }
    }

    /// `-r -` reads the capture from stdin.
    @Test func readsCaptureFromStdin() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path("basic"))))
        let viaStdin = try SniffOutput.run(["sniff", "-r", "-", "--json", "--full"], stdin: bytes)
        let viaFile = try SniffFixtures.sniff("basic")
        #expect(viaStdin.result.status == 0, "stderr: \(viaStdin.result.stderr)")
        #expect(viaStdin.result.stdout == viaFile.result.stdout)
    }
}
