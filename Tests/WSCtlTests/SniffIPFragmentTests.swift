import Foundation
import Testing

/// Real captures whose TCP segments were cut into IP fragments on the way (IPv4, RFC 791 §3.2, and
/// IPv6 with a Fragment header, RFC 8200 §4.5): sniff puts them back together and shows the same
/// messages as for the original, and -w saves every fragment of the connection.
@Suite("Sniff puts IP fragments back together", .timeLimit(.minutes(3)))
struct SniffIPFragmentTests {
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var sum: UInt32 = 0
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.endIndex { sum += UInt32(bytes[i]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// `header` (an IPv4 header) made the header of a fragment of `payloadLength` bytes at
    /// `offset` (a multiple of 8) of its datagram, the Don't Fragment bit as it was, with its
    /// checksum.
    static func ipv4FragmentHeader(_ header: [UInt8], payloadLength: Int, offset: Int, more: Bool) -> [UInt8] {
        var h = header
        let length = h.count + payloadLength
        h[2] = UInt8(length >> 8)
        h[3] = UInt8(length & 0xFF)
        let field = UInt16(offset / 8) | (more ? 0x2000 : 0)
        h[6] = UInt8(field >> 8) | (h[6] & 0x40)
        h[7] = UInt8(field & 0xFF)
        h[10] = 0
        h[11] = 0
        let sum = checksum(h[...])
        h[10] = UInt8(sum >> 8)
        h[11] = UInt8(sum & 0xFF)
        return h
    }

    /// The Ethernet packet `data` cut into IP fragments of `size` payload bytes (a multiple of 8),
    /// or nil when it is not IPv4/IPv6 with more than `size` bytes after the IP header.
    static func fragments(of data: [UInt8], size: Int, id: UInt32) -> [[UInt8]]? {
        guard data.count > 14 else { return nil }
        let ethernet = Array(data[0..<12])
        let type = UInt16(data[12]) << 8 | UInt16(data[13])
        if type == 0x0800, data[14] >> 4 == 4 {
            let ihl = Int(data[14] & 0x0F) * 4
            let total = Int(data[16]) << 8 | Int(data[17])
            let payload = Array(data[(14 + ihl)..<(14 + total)])
            guard payload.count > size else { return nil }
            return stride(from: 0, to: payload.count, by: size).map { start in
                let end = min(start + size, payload.count)
                var header = Array(data[14..<(14 + ihl)])
                header[4] = UInt8((id >> 8) & 0xFF)
                header[5] = UInt8(id & 0xFF)
                header[6] = 0
                header = ipv4FragmentHeader(header, payloadLength: end - start, offset: start, more: end < payload.count)
                return ethernet + [0x08, 0x00] + header + Array(payload[start..<end])
            }
        }
        if type == 0x86DD, data[14] >> 4 == 6, data[20] == 6 {
            let length = Int(data[18]) << 8 | Int(data[19])
            let payload = Array(data[54..<(54 + length)])
            guard payload.count > size else { return nil }
            return stride(from: 0, to: payload.count, by: size).map { start in
                let end = min(start + size, payload.count)
                var header = Array(data[14..<54])
                let length = 8 + end - start
                header[4] = UInt8(length >> 8)
                header[5] = UInt8(length & 0xFF)
                header[6] = 44
                let field = UInt16(start / 8) << 3 | (end < payload.count ? 1 : 0)
                let fragment: [UInt8] = [6, 0, UInt8(field >> 8), UInt8(field & 0xFF),
                                         UInt8(id >> 24), UInt8((id >> 16) & 0xFF), UInt8((id >> 8) & 0xFF), UInt8(id & 0xFF)]
                return ethernet + [0x86, 0xDD] + header + fragment + Array(payload[start..<end])
            }
        }
        return nil
    }

    /// `name`.pcap with every packet of more than 48 bytes after its IP header cut into 48-byte
    /// fragments, every other such packet's fragments written last first. Returns the file and how
    /// many packets were cut. `interleaved`: the fragments of two cut packets in a row take turns
    /// (A1 B1 A2 B2 …), and a cut packet followed by one that is not has that one after its first
    /// fragment (A1 X A2 …), as fragments that took different paths arrive.
    static func fragmentedCopy(of name: String, in dir: SniffTempDirectory, interleaved: Bool = false) throws -> (path: String, cut: Int, records: Int) {
        let original = try PcapFile(path: SniffFixtures.path(name))
        var records: [PcapFile.Record] = []
        var cut = 0
        var waiting: [PcapFile.Record]? = nil
        for r in original.records {
            guard let pieces = fragments(of: r.data, size: 48, id: UInt32(0x1000 + cut)) else {
                if let w = waiting {
                    records += [w[0], r] + w[1...]
                    waiting = nil
                } else {
                    records.append(r)
                }
                continue
            }
            let ordered = (cut % 2 == 0 ? pieces : pieces.reversed()).map {
                PcapFile.Record(seconds: r.seconds, fraction: r.fraction, wireLength: UInt32($0.count), data: $0)
            }
            cut += 1
            guard interleaved else {
                records += ordered
                continue
            }
            if let w = waiting {
                for i in 0..<max(w.count, ordered.count) {
                    if i < w.count { records.append(w[i]) }
                    if i < ordered.count { records.append(ordered[i]) }
                }
                waiting = nil
            } else {
                waiting = ordered
            }
        }
        if let w = waiting { records += w }
        let path = dir.path("\(name)-fragmented\(interleaved ? "-interleaved" : "").pcap")
        try PcapFile(header: original.header, records: records).write(to: path)
        return (path, cut, records.count)
    }

    /// Each fragmented datagram's first fragment seen again after the datagram was whole (two
    /// packets later): a duplicate, dissected as nothing new, not counted as a fragment given up,
    /// and saved by -w with its datagram's connection (the file keeps every packet, as captured).
    @Test(arguments: ["basic", "ipv6"])
    func fragmentsSeenAgainAfterTheirDatagramAreSaved(name: String) throws {
        let dir = try SniffTempDirectory()
        let original = try PcapFile(path: SniffFixtures.path(name))
        var records: [PcapFile.Record] = []
        var again: [(record: PcapFile.Record, after: Int)] = []
        var cut = 0
        for r in original.records {
            if let pieces = Self.fragments(of: r.data, size: 48, id: UInt32(0x2000 + cut)) {
                cut += 1
                let ordered = pieces.map { PcapFile.Record(seconds: r.seconds, fraction: r.fraction, wireLength: UInt32($0.count), data: $0) }
                records += ordered
                again.append((ordered[0], records.count + 2))
            } else {
                records.append(r)
            }
            while let first = again.first, records.count >= first.after {
                records.append(first.record)
                again.removeFirst()
            }
        }
        records += again.map(\.record)
        #expect(cut >= 10)
        let path = dir.path("\(name)-fragments-again.pcap")
        try PcapFile(header: original.header, records: records).write(to: path)
        try Self.expectLikeTheFixture(path, name, in: dir)
    }

    /// The same text sent twice, five seconds apart, under one IPv4 identification, the second
    /// time fragments last first: only the first fragment (with the TCP header) differs, so the
    /// others look like duplicates of the first datagram until it comes. Both messages are shown
    /// and -w keeps every packet. (The second message was lost as a gap, one fragment given up.)
    @Test func aReusedIdentificationWithFragmentsLastFirst() throws {
        var c = SyntheticConnection()
        let text = Array(String(repeating: "heartbeat ", count: 20).utf8)
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: text.count, text))
        c.pause(seconds: 5)
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, length: text.count, text))
        c.close()
        var records: [PcapFile.Record] = []
        var sent = 0
        for r in c.capture.records {
            guard Array(r.data.suffix(text.count)) == text, let pieces = Self.fragments(of: r.data, size: 48, id: 0x0777) else {
                records.append(r)
                continue
            }
            sent += 1
            let ordered = sent == 2 ? Array(pieces.reversed()) : pieces
            records += ordered.map { PcapFile.Record(seconds: r.seconds, fraction: r.fraction, wireLength: UInt32($0.count), data: $0) }
        }
        #expect(sent == 2)
        let dir = try SniffTempDirectory()
        let path = dir.path("reused.pcap")
        try PcapFile(header: c.capture.header, records: records).write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--stats"])
        #expect(out.kind("message").count == 2, "\(out.result.stdout)")
        #expect(out.kind("stats").first?["packets_skipped"].int == 0, "\(out.result.stderr)")
        let saved = dir.path("saved.pcap")
        #expect(try CLI.run(["sniff", "-r", path, "-w", saved]).status == 0)
        #expect(try PcapFile(path: saved).records.map(\.data) == records.map(\.data))
    }

    /// The run succeeded on one connection, whose messages each way are those its side sent
    /// (`ipfrag.sent.json`), by SHA-256.
    static func expectMessagesAsSent(_ out: SniffOutput, _ sent: JSON, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.result.status == 0, "\(out.result.stderr)", sourceLocation: sourceLocation)
        #expect(out.connectionIDs.count == 1, sourceLocation: sourceLocation)
        for (direction, key) in [("client", "client_sent"), ("server", "server_sent")] {
            let got = out.events("message", connection: 1, direction: direction).map { m in
                "\(m["opcode_name"].string ?? "?") \(m["data_length"].int ?? -1) \(SHA256Digest.hex(hexBytes(m["payload_hex"].string ?? "")))"
            }
            let want = sent[key].array.map { "\($0["opcode"].string ?? "") \($0["length"].int ?? 0) \($0["sha256"].string ?? "")" }
            #expect(want.count == 14 && got == want, "\(direction)", sourceLocation: sourceLocation)
        }
    }

    /// A real capture of fragments (Fixtures/captures/make-ipfrag-capture.sh: a router between
    /// network namespaces fragmented both ends' 1,500-byte packets into a 576-byte link, where
    /// tcpdump captured them): every message each side sent, by SHA-256, and -w keeps every
    /// packet, fragments included. tshark, where installed, sees the same frames.
    @Test func aRealFragmentedCapture() throws {
        let sent = try JSON(JSONSerialization.jsonObject(with: Data(contentsOf: SniffFixtures.directory.appendingPathComponent("ipfrag.sent.json"))))
        #expect((sent["ip_fragments"].int ?? 0) > 100)
        let out = try SniffOutput.run(["sniff", "-r", SniffFixtures.path("ipfrag"), "--json", "--full"])
        Self.expectMessagesAsSent(out, sent)
        #expect(out.closed(connection: 1)?["close_code"].int == 1000)
        let dir = try SniffTempDirectory()
        let saved = dir.path("saved.pcap")
        let w = try CLI.run(["sniff", "-r", SniffFixtures.path("ipfrag"), "-w", saved])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(try PcapFile(path: saved).records.map(\.data) == PcapFile(path: SniffFixtures.path("ipfrag")).records.map(\.data))
        if let tshark = Interop.which("tshark") {
            let t = try CLI.run(["-r", SniffFixtures.path("ipfrag"), "-Y", "websocket", "-T", "fields", "-e", "websocket.opcode"],
                                executable: tshark)
            let wsctl = out.kind("frame").map { String($0["opcode"].int ?? -1) }
            #expect(t.stdout.split(separator: "\n").map(String.init) == wsctl)
        }
    }

    /// The real capture's fragments as they might have arrived by other paths: every third
    /// datagram's fragments last first, every third one's first fragment seen again after the
    /// others, and every third one with an extra fragment first that overlaps its first two with
    /// the same bytes. Each side's messages are still exactly what it sent.
    @Test func aRealFragmentedCaptureReorderedWithCopiesAndOverlaps() throws {
        let sent = try JSON(JSONSerialization.jsonObject(with: Data(contentsOf: SniffFixtures.directory.appendingPathComponent("ipfrag.sent.json"))))
        let original = try PcapFile(path: SniffFixtures.path("ipfrag"))
        // An IPv4 fragment on Ethernet: its datagram's key and the fragment's offset in it.
        func fragment(_ d: [UInt8]) -> (key: [UInt8], offset: Int, more: Bool)? {
            guard d.count > 34, d[12] == 0x08, d[13] == 0x00, d[14] >> 4 == 4 else { return nil }
            let field = Int(d[20]) << 8 | Int(d[21])
            let offset = (field & 0x1FFF) * 8, more = field & 0x2000 != 0
            guard offset > 0 || more else { return nil }
            return (Array(d[26..<34]) + Array(d[18..<20]), offset, more)
        }
        var records: [PcapFile.Record] = []
        var group: [PcapFile.Record] = []
        var datagrams = 0, overlaps = 0
        func flush() {
            guard !group.isEmpty else { return }
            defer { group = []; datagrams += 1 }
            switch datagrams % 3 {
            case 0:
                records += group.reversed()
            case 1:
                records += group + [group[0]]
            default:
                let first = group[0].data, second = group.count > 1 ? group[1].data : []
                let ihl = Int(first[14] & 0x0F) * 4
                guard let a = fragment(first), let b = fragment(second), a.offset == 0, a.more,
                      first.count - 14 - ihl >= 16, second.count - 14 - ihl >= 16 else {
                    records += group
                    return
                }
                // 16 bytes each side of the boundary between the first two fragments.
                let end = first.count - 14 - ihl
                #expect(b.offset == end)
                let bytes = Array(first[(first.count - 16)...]) + Array(second[(14 + ihl)..<(14 + ihl + 16)])
                let header = Self.ipv4FragmentHeader(Array(first[14..<(14 + ihl)]), payloadLength: 32, offset: end - 16, more: true)
                let data = Array(first[0..<14]) + header + bytes
                records.append(PcapFile.Record(seconds: group[0].seconds, fraction: group[0].fraction,
                                               wireLength: UInt32(data.count), data: data))
                records += group
                overlaps += 1
            }
        }
        var groupKey: [UInt8]? = nil
        for r in original.records {
            if let f = fragment(r.data) {
                if groupKey != f.key { flush() }
                groupKey = f.key
                group.append(r)
            } else {
                flush()
                groupKey = nil
                records.append(r)
            }
        }
        flush()
        #expect(datagrams > 30 && overlaps > 10, "\(datagrams) datagrams, \(overlaps) overlaps")
        let dir = try SniffTempDirectory()
        let path = dir.path("ipfrag-perturbed.pcap")
        try PcapFile(header: original.header, records: records).write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full", "--stats"])
        Self.expectMessagesAsSent(out, sent)
        #expect(out.kind("message").allSatisfy { $0["errors"].array.isEmpty })
        #expect(out.closed(connection: 1)?["close_code"].int == 1000)
        #expect(out.kind("stats").first?["packets_skipped"].int == 0)
        #expect(out.result.stderr.isEmpty, "\(out.result.stderr)")
    }

    @Test(arguments: ["basic", "ipv6"])
    func fragmentedCaptureShowsTheSameMessages(name: String) throws {
        let dir = try SniffTempDirectory()
        let (path, cut, records) = try Self.fragmentedCopy(of: name, in: dir)
        #expect(cut >= 10, "the capture has packets large enough to cut")
        #expect(try PcapFile(path: path).records.count == records)
        // The same messages, and -w keeps every fragment: the saved file is the fragmented one,
        // packet for packet.
        try Self.expectLikeTheFixture(path, name, in: dir)
    }

    /// Fragments of two datagrams taking turns, and other packets between a datagram's fragments:
    /// -w writes every packet where it came (earlier fragments were written when their datagram
    /// was whole, after the packets between), and the messages are those of the original.
    /// The capture at `path` (fragments of fixture `name`'s packets) shows `name`'s messages and
    /// control frames, with no packet skipped, and -w saves every packet of it, in order.
    static func expectLikeTheFixture(_ path: String, _ name: String, in dir: SniffTempDirectory) throws {
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full", "--stats"])
        #expect(out.result.status == 0, "\(out.result.stderr)")
        #expect(out.kind("stats").first?["packets_skipped"].int == 0, "\(out.result.stderr)")
        let original = try SniffFixtures.sniff(name)
        let a = try #require(original.kind("handshake").first?["connection"].int)
        let b = try #require(out.kind("handshake").first?["connection"].int)
        for d in ["client", "server"] {
            let want = original.messageRecords(connection: a, direction: d)
            #expect(!want.isEmpty)
            #expect(out.messageRecords(connection: b, direction: d) == want, "\(name) \(d)")
        }
        #expect(out.controlRecords(connection: b) == original.controlRecords(connection: a))
        let saved = dir.path("saved.pcap")
        let w = try CLI.run(["sniff", "-r", path, "-w", saved])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(try PcapFile(path: saved).records.map(\.data) == (try PcapFile(path: path)).records.map(\.data))
    }

    @Test(arguments: ["basic", "ipv6"])
    func interleavedFragmentsAreSavedInCaptureOrder(name: String) throws {
        let dir = try SniffTempDirectory()
        let (path, cut, _) = try Self.fragmentedCopy(of: name, in: dir, interleaved: true)
        #expect(cut >= 10)
        try Self.expectLikeTheFixture(path, name, in: dir)
    }

    /// A fragmented UDP datagram among the connection's packets, let in by the filter: its
    /// fragments are not saved with the next TCP packet (they were handed over with it).
    @Test func fragmentsOfADatagramThatIsNotTCPAreNotSaved() throws {
        let dir = try SniffTempDirectory()
        let (path, _, _) = try Self.fragmentedCopy(of: "basic", in: dir)
        var input = try PcapFile(path: path)
        let payload = [UInt8](repeating: 0x55, count: 8 + 96)
        var ip: [UInt8] = [0x45, 0, UInt8((20 + payload.count) >> 8), UInt8((20 + payload.count) & 0xFF), 0, 0, 0, 0, 64, 17, 0, 0,
                           127, 0, 0, 1, 127, 0, 0, 1]
        let sum = Self.checksum(ip[...])
        ip[10] = UInt8(sum >> 8)
        ip[11] = UInt8(sum & 0xFF)
        let datagram = [UInt8](repeating: 0, count: 12) + [0x08, 0x00] + ip + payload
        let pieces = try #require(Self.fragments(of: datagram, size: 48, id: 0x7777))
        let at = input.records[10]
        input.records.insert(contentsOf: pieces.map { PcapFile.Record(seconds: at.seconds, fraction: at.fraction, wireLength: UInt32($0.count), data: $0) },
                             at: 11)
        let mixed = dir.path("with-udp.pcap"), saved = dir.path("saved.pcap")
        try input.write(to: mixed)
        let w = try CLI.run(["sniff", "-r", mixed, "-f", "ip", "-w", saved])
        #expect(w.status == 0, "\(w.stderr)")
        let written = try PcapFile(path: saved)
        #expect(written.records.map(\.data) == (try PcapFile(path: path)).records.map(\.data))
    }
}

/// permessage-deflate with context takeover after a lost packet: later compressed messages are
/// inflated with an empty window, so those that refer back past the gap do not inflate (and are
/// reported incomplete) while the others are shown whole, exactly as sent.
@Suite("Sniff after a gap in a compressed connection", .timeLimit(.minutes(3)))
struct SniffDeflateGapTests {
    @Test func messagesThatInflateAfterTheGapAreExact() throws {
        let original = try PcapFile(path: SniffFixtures.path("deflate"))
        let whole = try SniffOutput.run(["sniff", "-r", SniffFixtures.path("deflate"), "--json", "--full"])
        func key(_ m: JSON) -> String { "\(m["connection"]) \(m["direction"]) \(m["offset"])" }
        var byKey: [String: JSON] = [:]
        for m in whole.kind("message") { byKey[key(m)] = m }
        let dir = try SniffTempDirectory()
        var rounds = 0, incomplete = 0, recovered = 0
        for drop in original.records.indices where original.records[drop].data.count > 120 {
            var records = original.records
            records.remove(at: drop)
            let path = dir.path("gap-\(drop).pcap")
            try PcapFile(header: original.header, records: records).write(to: path)
            let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full"])
            guard out.kind("gap").count + out.kind("message").filter({ $0["incomplete"].bool == true }).count > 0 else { continue }
            rounds += 1
            var afterGap: Set<String> = []  // connection and direction that lost a message
            for m in out.kind("message") {
                let stream = "\(m["connection"]) \(m["direction"])"
                if m["incomplete"].bool == true {
                    incomplete += 1
                    afterGap.insert(stream)
                    continue
                }
                let want = try #require(byKey[key(m)], "packet \(drop + 1) removed: a message the whole capture does not have at \(key(m))")
                for field in ["inflated_text", "payload_hex", "data_length", "opcode"] {
                    #expect(m[field].description == want[field].description, "packet \(drop + 1) removed, \(key(m)): \(field)")
                }
                #expect(m["errors"].array.isEmpty)
                if afterGap.contains(stream) && m["compressed"].bool == true { recovered += 1 }
            }
        }
        #expect(rounds >= 10, "packets whose loss leaves a gap in the WebSocket stream")
        #expect(incomplete > 0)
        #expect(recovered > 0, "compressed messages after a gap that inflate with an empty window are shown whole")
    }
}
