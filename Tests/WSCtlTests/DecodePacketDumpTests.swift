import Foundation
import Testing

/// `decode` of tcpdump and tshark packet dumps reads each direction of each TCP connection as
/// `sniff` reads a capture: with the sniffer's packet decoder and TCP reassembler. A review found
/// segments concatenated in dump order (retransmissions and reordering gave false violations and
/// wrong text), Linux cooked capture v2 dumps not recognised, IPv6 labels written non-canonically,
/// and a fragmented message the input ends inside silently dropped.
@Suite("Decode reads packet dumps as TCP streams")
struct DecodePacketDumpTests {
    static let tcpdump = Interop.which("tcpdump")

    /// A dump of a fixture capture: `tshark -x`, `tcpdump -X` or `tcpdump -xx`.
    static func dump(_ name: String, _ tool: String) throws -> String {
        switch tool {
        case "tshark -x":
            return try SniffTshark.run(name, ["-r", SniffFixtures.path(name), "-x"])
        default:
            let tcpdump = try #require(tcpdump)
            let flag = tool == "tcpdump -X" ? "-X" : "-xx"
            let child = try ChildProcess(executable: tcpdump, arguments: ["-nn", flag, "-r", SniffFixtures.path(name)])
            guard let status = child.waitForExit(timeout: 40) else {
                child.stop(timeout: 2)
                throw CLIError("tcpdump on \(name) still running after 40 s")
            }
            if status != 0 { throw CLIError("tcpdump exited \(status): \(child.stderr)") }
            return child.stdout
        }
    }

    static func available(_ tool: String) -> Bool {
        tool == "tshark -x" ? SniffTshark.tshark != nil : tcpdump != nil
    }

    static func decode(_ dump: String, _ extra: [String] = []) throws -> (status: Int32, lines: [JSON], stderr: String) {
        let r = try CLI.run(["decode", "--json", "--full"] + extra, stdin: Array(dump.utf8))
        return (r.status, try CLI.jsonLines(r.stdout).map { JSON($0) }, r.stderr)
    }

    /// The truth file's messages against decode's, stream by stream (a stream is the client's
    /// when its label starts with the client's endpoint), with no violation anywhere.
    static func mismatches(_ lines: [JSON], _ name: String) throws -> Mismatches {
        var m = Mismatches()
        let truth = try SniffFixtures.truth(name)
        for c in truth["connections"].array {
            let client = c["client"]["text"].string ?? "?", server = c["server"]["text"].string ?? "?"
            for (direction, label) in [("client", "TCP \(client) > \(server)"), ("server", "TCP \(server) > \(client)")] {
                let got = lines.filter { $0["kind"].string == "message" && $0["block"].string == label }
                TruthComparison.compareMessages(&m, "\(name) \(label)", got, c["messages"].array.filter { $0["direction"].string == direction })
            }
        }
        for e in lines where !e["errors"].array.isEmpty || e["kind"].string == "error" || e["kind"].string == "gap" {
            m.add("\(name): unexpected \(e["kind"].string ?? "?") \(e)")
        }
        return m
    }

    /// Retransmitted (duplicated.pcap) and reordered (reordered.pcap) segments are put in
    /// sequence order: the truth's messages and no violation, from every kind of dump.
    @Test(arguments: ["duplicated", "reordered"], ["tshark -x", "tcpdump -X", "tcpdump -xx"])
    func retransmittedAndReorderedSegments(_ name: String, _ tool: String) throws {
        try #require(Self.available(tool), "\(tool) is not installed (apt-get install tshark tcpdump)")
        let out = try Self.decode(try Self.dump(name, tool))
        #expect(out.status == 0, "\(out.stderr)")
        let m = try Self.mismatches(out.lines, name)
        #expect(m.isEmpty, m.report)
    }

    /// Linux cooked capture v2 (tcpdump 4.99's default for -i any: any.pcap) and v1 (any-sll1.pcap).
    @Test(arguments: ["any", "any-sll1"], ["tshark -x", "tcpdump -xx"])
    func linuxCookedCaptures(_ name: String, _ tool: String) throws {
        try #require(Self.available(tool), "\(tool) is not installed (apt-get install tshark tcpdump)")
        let out = try Self.decode(try Self.dump(name, tool))
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.lines.contains { $0["kind"].string == "http_head" }, "read as packets")
        let m = try Self.mismatches(out.lines, name)
        #expect(m.isEmpty, m.report)
    }

    /// IPv6 endpoints are written as sniff writes them (RFC 5952), not as eight groups.
    @Test func ipv6LabelIsCanonical() throws {
        try #require(SniffTshark.tshark != nil, "tshark is not installed (apt-get install tshark)")
        let out = try Self.decode(try Self.dump("ipv6", "tshark -x"))
        #expect(out.status == 0, "\(out.stderr)")
        let labels = Set(out.lines.compactMap { $0["block"].string })
        #expect(labels == ["TCP [::1]:58436 > [::1]:28086", "TCP [::1]:28086 > [::1]:58436"], "\(labels)")
        let m = try Self.mismatches(out.lines, "ipv6")
        #expect(m.isEmpty, m.report)
    }

    /// The packets of a tshark -x dump: paragraphs, each a packet's bytes and the buffers tshark
    /// adds after them ("Frame (330 bytes):", "Unmasked data (256 bytes):").
    static func packets(_ dump: String) -> [String] {
        dump.components(separatedBy: "\n\n").filter { !$0.isEmpty }
    }

    /// A data packet left out of the dump: a gap of its size where it was, the frames after it
    /// found again, exit status as without it, and stderr says how many bytes were missing.
    @Test func packetLeftOutIsAGap() throws {
        try #require(SniffTshark.tshark != nil, "tshark is not installed (apt-get install tshark)")
        let dump = try Self.dump("basic", "tshark -x")
        let whole = try Self.decode(dump)
        #expect(whole.status == 0 && !whole.lines.contains { $0["kind"].string == "gap" })
        // basic.pcap's packet with the client's second frame (masked binary, 256 bytes): 14 + 20
        // + 32 (TCP with timestamps) + 8 + 256 = 330 bytes, the only one of that size.
        var packets = Self.packets(dump)
        let index = try #require(packets.firstIndex { $0.hasPrefix("Frame (330 bytes):") }, "a 330-byte packet")
        packets.remove(at: index)
        let cut = packets.joined(separator: "\n\n")
        let out = try Self.decode(cut)
        #expect(out.status == 0, "\(out.stderr)")
        let gaps = out.lines.filter { $0["kind"].string == "gap" }
        #expect(gaps.count == 1)
        #expect(gaps.first?["missing_bytes"].int == 264, "\(gaps)")
        #expect(gaps.first?["offset"].int == 23, "after the 23-byte first frame, counted from after the HTTP head")
        #expect(gaps.first?["block"].string == "TCP 127.0.0.1:37862 > 127.0.0.1:28081")
        // The frames after it are found again, none read from the middle of another.
        let frames = out.lines.filter { $0["kind"].string == "frame" && $0["block"].string == gaps.first?["block"].string }
        let wholeFrames = whole.lines.filter { $0["kind"].string == "frame" && $0["block"].string == gaps.first?["block"].string }
        #expect(frames.map { $0["offset"].int } == wholeFrames.filter { $0["offset"].int != 23 }.map { $0["offset"].int })
        #expect(!out.lines.contains { !$0["errors"].array.isEmpty })
        #expect(out.stderr.contains("264 bytes missing from the dump (1 gap in 1 stream)"), "\(out.stderr)")
        let text = try CLI.run(["decode"], stdin: Array(cut.utf8))
        #expect(text.stdout.contains("gap: 264 bytes missing from the dump at byte 23"), "\(text.stdout)")
    }

    /// A fragmented message the input ends inside is shown incomplete, and is truncated input.
    @Test func unfinishedFragmentedMessage() throws {
        let r = try CLI.run(["decode", "--json", "01", "03", "61", "62", "63"])
        #expect(r.status == 1)
        let lines = try CLI.jsonLines(r.stdout).map { JSON($0) }
        try #require(lines.map { $0["kind"].string ?? "?" } == ["frame", "message", "error"], "\(lines)")
        #expect(lines[1]["incomplete"].bool == true && lines[1]["fragments"].int == 1 && lines[1]["text"].string == "abc")
        #expect(lines[2]["rule"].string == "truncated")
        #expect(lines[2]["message"].string?.contains("input ends inside a fragmented message begun at byte 0") == true, "\(lines[2])")
        #expect(r.stderr.contains("truncated input in 1 frame"), "\(r.stderr)")
        // A message that ends is not.
        let whole = try CLI.run(["decode", "--json", "01", "03", "61", "62", "63", "80", "00"])
        #expect(whole.status == 0, "\(whole.stderr)")
    }
}
