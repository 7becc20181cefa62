import Foundation
import Testing

/// Link types the fixtures do not cover (they are all Ethernet or Linux cooked): basic.pcap and
/// ipv6.pcap rewritten here with 802.1Q and 802.1ad+802.1Q tags, as BSD loopback (NULL, host byte
/// order, and LOOP, network byte order) and as raw IP, plus a pcapng copy made by editcap. Each must
/// give the messages and control frames of the original, with sniff's default options. IPv6 packets
/// are also given Hop-by-Hop and Destination Options headers before TCP (RFC 8200 §4), on Ethernet,
/// inside a VLAN tag and in Linux cooked capture v2, where the default filter must still let them in.
@Suite("Sniff link types and file formats", .timeLimit(.minutes(3)))
struct SniffLinkTypeTests {
    enum Rewrite: String, CaseIterable, CustomTestStringConvertible {
        case vlan, qinq, null, loop, raw, v6ext, vlanV6ext, sll2V6ext
        var testDescription: String { rawValue }

        var linkType: UInt32 {
            switch self {
            case .vlan, .qinq, .v6ext, .vlanV6ext: return 1  // EN10MB
            case .sll2V6ext: return 276  // LINUX_SLL2
            case .null: return 0  // BSD loopback, host byte order
            case .loop: return 108  // OpenBSD loopback, network byte order
            case .raw: return 101  // raw IPv4/IPv6
            }
        }

        func rewrite(_ frame: [UInt8]) -> [UInt8] {
            let macs = Array(frame[0..<12]), etherType = Array(frame[12..<14]), ip = Array(frame[14...])
            let isIPv4 = etherType == [0x08, 0x00]
            switch self {
            case .vlan: return macs + [0x81, 0x00, 0x00, 0x64] + etherType + ip
            case .qinq: return macs + [0x88, 0xa8, 0x00, 0x10, 0x81, 0x00, 0x00, 0x64] + etherType + ip
            // AF_INET is 2 everywhere; AF_INET6 in these headers is a BSD value (24, 28 or 30).
            case .null: return [isIPv4 ? 2 : 30, 0, 0, 0] + ip
            case .loop: return [0, 0, 0, isIPv4 ? 2 : 24] + ip
            case .raw: return ip
            case .v6ext: return macs + etherType + Self.withExtensionHeaders(ip)
            case .vlanV6ext: return macs + [0x81, 0x00, 0x00, 0x64] + etherType + Self.withExtensionHeaders(ip)
            case .sll2V6ext:
                // Protocol, reserved, interface index, ARPHRD_LOOPBACK, PACKET_HOST, address length and address.
                return etherType + [0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6] + [UInt8](repeating: 0, count: 8) + Self.withExtensionHeaders(ip)
            }
        }

        /// An IPv6 packet with a Hop-by-Hop and a Destination Options header (each 8 bytes, a PadN
        /// option) between its header and TCP; anything else as it is.
        static func withExtensionHeaders(_ ip: [UInt8]) -> [UInt8] {
            guard ip.count >= 40, ip[0] >> 4 == 6, ip[6] == 6 else { return ip }
            var header = Array(ip[0..<40])
            header[6] = 0  // Hop-by-Hop
            let length = (Int(header[4]) << 8 | Int(header[5])) + 16
            header[4] = UInt8(length >> 8)
            header[5] = UInt8(length & 0xFF)
            let hopByHop: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]  // next: Destination Options
            let destination: [UInt8] = [6, 0, 1, 4, 0, 0, 0, 0]  // next: TCP
            return header + hopByHop + destination + ip[40...]
        }
    }

    static func rewritten(_ name: String, _ r: Rewrite, in dir: SniffTempDirectory) throws -> String {
        var file = try PcapFile(path: SniffFixtures.path(name))
        for i in 0..<4 { file.header[20 + i] = UInt8(truncatingIfNeeded: r.linkType >> (UInt32(i) * 8)) }
        file.records = file.records.map { rec in
            var rec = rec
            let old = rec.data.count
            rec.data = r.rewrite(rec.data)
            rec.wireLength = UInt32(Int(rec.wireLength) - old + rec.data.count)
            return rec
        }
        let path = dir.path("\(name)-\(r.rawValue).pcap")
        try file.write(to: path)
        return path
    }

    static func expectSameMessages(_ out: SniffOutput, as name: String, _ what: String) throws {
        let original = try SniffFixtures.sniff(name)
        #expect(out.result.status == 0, "\(what): stderr \(out.result.stderr)")
        let stats = out.kind("stats").first.map { "\($0)" } ?? "(no --stats)"
        let a = try #require(out.connectionIDs.first, "\(what): no connection found; \(stats)")
        let b = try #require(original.connectionIDs.first)
        for d in ["client", "server"] {
            #expect(out.messageRecords(connection: a, direction: d) == original.messageRecords(connection: b, direction: d), "\(what): \(d) messages")
        }
        #expect(out.controlRecords(connection: a) == original.controlRecords(connection: b), "\(what): control frames")
        #expect(out.handshake(connection: a)?["upgraded"].bool == true, "\(what): handshake")
    }

    /// With the default options (filter `tcp`): a capture from a VLAN trunk must not come out empty.
    @Test(arguments: ["basic", "ipv6"], Rewrite.allCases)
    func rewrittenLinkTypeWithDefaultFilter(_ name: String, _ r: Rewrite) throws {
        let dir = try SniffTempDirectory()
        let out = try SniffOutput.run(["sniff", "-r", try Self.rewritten(name, r, in: dir), "--json", "--full", "--stats"])
        try Self.expectSameMessages(out, as: name, "\(name) as \(r.rawValue), default filter")
    }

    /// The same packets seen on two VLANs (a router on a stick captured on its trunk): connections
    /// are told apart by addresses and ports, not VLAN, so the second copy of each segment is a
    /// retransmission and every message shows once (tshark does the same).
    @Test func samePacketsOnTwoVLANsShowOnce() throws {
        var file = try PcapFile(path: SniffFixtures.path("basic"))
        var records: [PcapFile.Record] = []
        for rec in file.records {
            for vlan: UInt8 in [10, 20] {
                var copy = rec
                let tag: [UInt8] = [0x81, 0x00, 0x00, vlan]
                copy.data = Array(rec.data[0..<12]) + tag + Array(rec.data[12...])
                copy.wireLength += 4
                records.append(copy)
            }
        }
        file.records = records
        let dir = try SniffTempDirectory()
        let path = dir.path("basic-two-vlans.pcap")
        try file.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full"])
        #expect(out.connectionIDs.count == 1, "\(out.connectionIDs)")
        try Self.expectSameMessages(out, as: "basic", "basic on VLANs 10 and 20")
    }

    /// A nanosecond pcap: times are the capture's rounded to the microsecond (half up) exactly
    /// once, and relative times are differences of those, the same in JSON and in text lines.
    /// (Kept in a Double near 1.8e9, which steps by 0.24 µs, 12.3 µs used to come out as 13.)
    @Test func nanosecondTimesAreRoundedOnce() throws {
        var c = SyntheticConnection()
        for i in 0..<12 { c.send(fromClient: i % 2 == 0, i % 2 == 0 ? SniffUpgradeTests.hello : SniffUpgradeTests.world) }
        c.close()
        var file = c.capture
        file.header[0..<4] = [0x4d, 0x3c, 0xb2, 0xa1]
        // Packet k at 9,700·k + 500 ns, plus 12,300 ns for every third: fractions of a
        // microsecond on both sides of one half.
        var expected: [Int] = []
        for k in file.records.indices {
            let ns = 9_700 * k + 500 + (k % 3 == 0 ? 12_300 : 0)
            file.records[k].fraction = UInt32(ns)
            expected.append((ns + 500) / 1000)
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("ns.pcap")
        try file.write(to: path)
        let json = try CLI.run(["sniff", "-r", path, "--json"])
        let text = try CLI.run(["sniff", "-r", path, "--frames"])
        #expect(json.status == 0 && text.status == 0, "\(json.stderr) \(text.stderr)")
        // Each frame's time is its packet's: the packets that carried frames, in order.
        let carried = file.records.indices.filter { file.records[$0].data.count > 54 }.dropFirst(2)  // request, response
        func field(_ line: Substring, _ name: String) -> String? {
            guard let r = line.range(of: "\"\(name)\":") else { return nil }
            return String(line[r.upperBound...].prefix { $0.isNumber || $0 == "." })
        }
        let frames = json.stdout.split(separator: "\n").filter { $0.contains("\"kind\":\"frame\"") }
        #expect(frames.count == carried.count)
        let origin = expected[0]
        var relatives: [String] = []
        for (line, k) in zip(frames, carried) {
            let micros = expected[k]
            #expect(field(line, "time") == "1790000000." + String(format: "%06d", micros), "packet \(k + 1): \(line.prefix(120))")
            let relative = String(format: "0.%06d", micros - origin)
            #expect(field(line, "time_relative") == relative, "packet \(k + 1): \(line.prefix(120))")
            relatives.append(relative)
        }
        let textTimes = text.stdout.split(separator: "\n").filter { $0.contains(" text ") }.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(textTimes == relatives)
    }

    /// Without a filter: the link-layer decoding itself.
    @Test(arguments: ["basic", "ipv6"], Rewrite.allCases)
    func rewrittenLinkTypeWithoutFilter(_ name: String, _ r: Rewrite) throws {
        let dir = try SniffTempDirectory()
        let out = try SniffOutput.run(["sniff", "-r", try Self.rewritten(name, r, in: dir), "-f", "", "--json", "--full"])
        try Self.expectSameMessages(out, as: name, "\(name) as \(r.rawValue), -f ''")
    }

    /// pcapng (editcap -F pcapng), where editcap is installed.
    @Test(.enabled(if: Interop.which("editcap") != nil, "editcap (Wireshark) is not installed"), arguments: ["basic", "deflate", "any"])
    func pcapngGivesTheSameMessages(_ name: String) throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("\(name).pcapng")
        let editcap = try #require(Interop.which("editcap"))
        let r = try #require(Interop.probe(editcap, ["-F", "pcapng", SniffFixtures.path(name), path]))
        try #require(r.status == 0, "editcap: \(r.output)")
        let truth = try SniffFixtures.truth(name)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full"])
        #expect(out.result.status == 0, "stderr: \(out.result.stderr)")
        let m = TruthComparison.mismatches(out, truth)
        #expect(m.count == 0, m.report)
    }
}
