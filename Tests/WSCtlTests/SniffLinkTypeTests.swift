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
        // No BPF filter matches these with `tcp`; a file is not filtered by default.
        case threeVLANs, nullSwapped, sllVLAN, rawDLT14, v6AH
        var testDescription: String { rawValue }

        var linkType: UInt32 {
            switch self {
            case .vlan, .qinq, .v6ext, .vlanV6ext: return 1  // EN10MB
            case .sll2V6ext: return 276  // LINUX_SLL2
            case .null: return 0  // BSD loopback, host byte order
            case .loop: return 108  // OpenBSD loopback, network byte order
            case .raw: return 101  // raw IPv4/IPv6
            case .threeVLANs, .v6AH: return 1
            case .nullSwapped: return 0
            case .sllVLAN: return 113  // LINUX_SLL
            case .rawDLT14: return 14  // raw IP, as OpenBSD numbers it
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
            case .threeVLANs:
                return macs + [0x88, 0xa8, 0x00, 0x10, 0x81, 0x00, 0x00, 0x20, 0x81, 0x00, 0x00, 0x64] + etherType + ip
            // The family in the other byte order than the file's (a capture written on another host).
            case .nullSwapped: return [0, 0, 0, isIPv4 ? 2 : 30] + ip
            case .sllVLAN:
                // Packet type, ARPHRD_ETHER, address length and address, protocol 802.1Q, then the tag.
                return [0, 0, 0, 1, 0, 6] + [UInt8](repeating: 0, count: 8) + [0x81, 0x00, 0x00, 0x64] + etherType + ip
            case .rawDLT14: return ip
            case .v6AH: return macs + etherType + SniffLinkTypeTests.withAuthenticationHeader(ip)
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

    /// An IPv6 packet with an Authentication Header (RFC 4302: 12 bytes and a 12-byte ICV) right
    /// after its header; anything else as it is.
    static func withAuthenticationHeader(_ ip: [UInt8]) -> [UInt8] {
        guard ip.count >= 40, ip[0] >> 4 == 6, ip[6] == 6 else { return ip }
        var header = Array(ip[0..<40])
        header[6] = 51
        let length = (Int(header[4]) << 8 | Int(header[5])) + 24
        header[4] = UInt8(length >> 8)
        header[5] = UInt8(length & 0xFF)
        let ah: [UInt8] = [6, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1] + [UInt8](repeating: 0xAB, count: 12)
        return header + ah + ip[40...]
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

    /// With the default options (no filter on a file): a capture from a VLAN trunk must not come out empty.
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

    /// A pcapng file as dumpcap writes one capturing on several interfaces of different link
    /// types: basic.pcap (Ethernet), any.pcap (Linux cooked v2), any-sll1.pcap (Linux cooked v1)
    /// and ipv6.pcap rewritten as raw IP, each an interface, their packets merged by time; one
    /// section big-endian to check both byte orders. libpcap 1.10 refuses such files (and read
    /// the packets after the refused interface as the wrong one); every connection must give the
    /// messages its own capture gives, with the default filter and with one of the user's.
    ///
    /// Variants: each interface in a section of its own (libpcap compares every interface with the
    /// file's first, across sections), and a USB interface among them whose link type the
    /// default filter cannot be compiled for (its packets are passed over, not the file refused).
    enum MixedLayout: String, CaseIterable, CustomTestStringConvertible {
        case oneSection, sectionEach, withUSB
        var testDescription: String { rawValue }
    }

    static let mixedParts: [(name: String, linkType: UInt16, rewrite: Rewrite?)] = [
        ("basic", 1, nil), ("any", 276, nil), ("any-sll1", 113, nil), ("ipv6", 101, .raw),
    ]

    /// The file `pcapngWithInterfacesOfDifferentLinkTypes` reads, and where each of its packet
    /// blocks starts (with the interface, counted in `mixedParts`, whose packet it holds).
    static func mixedPcapng(bigEndian: Bool, layout: MixedLayout) throws -> (bytes: [UInt8], packets: [(offset: Int, part: Int)]) {
        let parts = mixedParts
        var pcapng = PcapngBuilder(bigEndian: bigEndian)
        var offsets: [(offset: Int, part: Int)] = []
        func section() { pcapng.section() }
        // if_tsresol 6 (microseconds), as the classic files have.
        func interface(_ linkType: UInt16) { pcapng.interface(linkType: linkType, microsecondOption: true) }
        func packet(_ interface: UInt32, _ time: UInt64, _ record: PcapFile.Record, part: Int) {
            offsets.append((pcapng.bytes.count, part))
            pcapng.packet(interface: interface, time: time, record)
        }
        section()
        if layout == .withUSB { interface(220) }  // USB_LINUX_MMAPPED: no IP in it, and `tcp` does not compile
        var packets: [(time: UInt64, interface: UInt32, record: PcapFile.Record)] = []
        for (i, part) in parts.enumerated() {
            if layout != .sectionEach { interface(part.linkType) }
            let file = try PcapFile(path: SniffFixtures.path(part.name))
            #expect(!file.isNanosecond)
            for r in file.records {
                var r = r
                if let rewrite = part.rewrite {
                    let old = r.data.count
                    r.data = rewrite.rewrite(r.data)
                    r.wireLength = UInt32(Int(r.wireLength) - old + r.data.count)
                }
                packets.append((file.time(r), UInt32(i + (layout == .withUSB ? 1 : 0)), r))
            }
        }
        if layout == .sectionEach {
            // Each capture in a section of its own, after the one before (as `cat a.pcapng b.pcapng` makes).
            for (i, part) in parts.enumerated() {
                if i > 0 { section() }
                interface(part.linkType)
                for p in packets where p.interface == UInt32(i) { packet(0, p.time, p.record, part: i) }
            }
        } else {
            if layout == .withUSB { packet(0, packets[0].time, PcapFile.Record(seconds: 0, fraction: 0, wireLength: 64, data: [UInt8](repeating: 0x5A, count: 64)), part: -1) }
            let usb = layout == .withUSB ? 1 : 0
            for p in packets.sorted(by: { $0.time < $1.time }) { packet(p.interface, p.time, p.record, part: Int(p.interface) - usb) }
        }
        return (pcapng.bytes, offsets)
    }

    @Test(arguments: [false, true], MixedLayout.allCases)
    func pcapngWithInterfacesOfDifferentLinkTypes(_ bigEndian: Bool, _ layout: MixedLayout) throws {
        let dir = try SniffTempDirectory()
        let path = dir.path("mixed.pcapng")
        try Data(Self.mixedPcapng(bigEndian: bigEndian, layout: layout).bytes).write(to: URL(fileURLWithPath: path))
        // A user's filter must compile for every link type: not for USB's.
        for filter in layout == .withUSB ? [[]] : [[], ["-f", "tcp"]] {
            try Self.expectEveryPart(try SniffOutput.run(["sniff", "-r", path, "--json", "--full"] + filter))
        }
        // Standard input redirected from the file is read the same way.
        let shell = try CLI.run(["-c", "\"$0\" sniff -r - --json --full < \"$1\"", CLI.binary.path, path], executable: URL(fileURLWithPath: "/bin/sh"))
        let direct = try CLI.run(["sniff", "-r", path, "--json", "--full"])
        #expect(shell.status == 0 && shell.stdout == direct.stdout, "\(shell.stderr)")
        // So is a pipe, whether the interfaces are described before the first packet (as dumpcap
        // capturing on several writes them; libpcap refused the second one, and every packet on
        // it was a warning) or in sections one after another (`cat a.pcapng b.pcapng |`, which
        // cannot be looked ahead for: libpcap refused the second section's interface).
        let piped = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - --json --full", CLI.binary.path, path],
                                executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(piped.status == 0 && piped.stdout == direct.stdout && piped.stderr.isEmpty, "\(piped.stderr)")
        // -w saves them all, in a pcapng file with an interface for each link type (one pcap file
        // holds one link type: -w refused such a capture).
        let saved = dir.path("out.pcapng")
        let w = try CLI.run(["sniff", "-r", path, "-w", saved])
        // (Nothing said but, with USB, that its one packet was skipped: it is of no connection.)
        let skipped = layout == .withUSB ? "wsctl sniff: 153 packets, 1 skipped (unsupported-link-type 1)\n" : ""
        #expect(w.status == 0 && w.stderr == skipped, "\(w.stderr)")
        try Self.expectEveryPart(try SniffOutput.run(["sniff", "-r", saved, "--json", "--full"]))
        try Self.expectReadByTshark(saved, packets: try Self.partPackets(layout))
    }

    /// Every capture in `mixedParts` is a connection of `mixed`, with the messages and control
    /// frames it has alone.
    static func expectEveryPart(_ mixed: SniffOutput) throws {
        #expect(mixed.result.status == 0, "stderr: \(mixed.result.stderr)")
        #expect(mixed.connectionIDs.count == mixedParts.count, "\(mixed.result.stdout.prefix(2000))")
        for part in mixedParts {
            let alone = try SniffFixtures.sniff(part.name)
            let client = try #require(alone.kind("handshake").first?["client"].string)
            let a = try #require(mixed.connection(client: client), "\(part.name) missing")
            let b = try #require(alone.connection(client: client))
            for d in ["client", "server"] {
                #expect(mixed.messageRecords(connection: a, direction: d) == alone.messageRecords(connection: b, direction: d), "\(part.name) \(d)")
            }
            #expect(mixed.controlRecords(connection: a) == alone.controlRecords(connection: b), "\(part.name)")
        }
    }

    /// The packets of every capture in `mixedParts`: (link type as files carry it, time in
    /// microseconds, length on the wire, captured bytes), in their order in `mixedPcapng(layout:)`
    /// (by time, or one capture after another).
    static func partPackets(_ layout: MixedLayout) throws -> [(linkType: Int, micros: UInt64, wireLength: Int, data: [UInt8])] {
        var all: [(linkType: Int, micros: UInt64, wireLength: Int, data: [UInt8])] = []
        for part in mixedParts {
            let file = try PcapFile(path: SniffFixtures.path(part.name))
            for r in file.records {
                let data = part.rewrite?.rewrite(r.data) ?? r.data
                all.append((Int(part.linkType), file.time(r), Int(r.wireLength) - r.data.count + data.count, data))
            }
        }
        return layout == .sectionEach ? all : all.sorted { $0.micros < $1.micros }
    }

    /// tshark (where installed), an independent reader, reads the saved file whole: every packet,
    /// with its link type, time to the microsecond, lengths and bytes.
    static func expectReadByTshark(_ path: String, packets: [(linkType: Int, micros: UInt64, wireLength: Int, data: [UInt8])]) throws {
        guard let tshark = Interop.which("tshark") else { return }
        let r = try CLI.run(["-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len",
                             "-e", "frame.protocols"], executable: tshark)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == packets.count, "tshark read \(lines.count) packets of \(packets.count)")
        for (line, p) in zip(lines, packets) {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            #expect(f[0] == String(format: "%d.%06d000", p.micros / 1_000_000, p.micros % 1_000_000), "\(line)")
            #expect(f[1] == "\(p.wireLength)" && f[2] == "\(p.data.count)", "\(line)")
            // The interface's link type, as tshark decodes the frame by it (raw IP is LINKTYPE 101
            // in the file, DLT 12 inside wsctl).
            let first = [1: "eth:", 276: "sll:", 113: "sll:", 101: "raw:"][p.linkType] ?? "?"
            #expect(f[3].hasPrefix(first), "link type \(p.linkType): \(line)")
        }
        // The bytes, as tshark's JSON gives each frame's.
        let json = try CLI.run(["-r", path, "-T", "json", "-x"], executable: tshark)
        #expect(json.status == 0)
        let frames = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let raw = frames.map { (($0["_source"] as? [String: Any])?["layers"] as? [String: Any])?["frame_raw"] as? [Any] }
        #expect(raw.count == packets.count)
        for (r, p) in zip(raw, packets) {
            let hex = p.data.map { String(format: "%02x", $0) }.joined()
            #expect(r?.first as? String == hex, "bytes differ in a packet of \(p.data.count) bytes")
        }
    }

    /// From a pipe, interfaces described after the reading started cannot be known in advance:
    /// -w, which writes pcapng for a pcapng capture, describes each link type in the file as its
    /// first packet comes, so every capture in it is saved (a pcap file saved the first link type's
    /// packets only); and a filter that does not compile for a later link type passes its packets
    /// over and says so, rather than ending the reading or letting them through unfiltered.
    @Test func aPipedPcapngWithLaterLinkTypesIsSavedWhole() throws {
        let (bytes, packets) = try Self.mixedPcapng(bigEndian: false, layout: .sectionEach)
        let dir = try SniffTempDirectory()
        let path = dir.path("sections.pcapng")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let saved = dir.path("saved.pcapng")
        let w = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - -w \"$2\"", CLI.binary.path, path, saved],
                            executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(w.status == 0 && w.stderr.isEmpty, "\(w.stderr)")
        try Self.expectEveryPart(try SniffOutput.run(["sniff", "-r", saved, "--json", "--full"]))
        try Self.expectReadByTshark(saved, packets: try Self.partPackets(.sectionEach))
        // The file read whole saves the same bytes.
        let fromFile = dir.path("from-file.pcapng")
        let whole = try CLI.run(["sniff", "-r", path, "-w", fromFile])
        #expect(whole.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: fromFile)) == Data(contentsOf: URL(fileURLWithPath: saved)))
        // `ether host` compiles for Ethernet only (loopback's addresses are zeros).
        let f = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - -f 'ether host 00:00:00:00:00:00' --stats", CLI.binary.path, path],
                            executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(f.status == 0 && f.stderr.contains("passed over: the filter does not compile"), "\(f.stderr)")
        #expect(f.stdout.contains("total: \(packets.filter { $0.part == 0 }.count) packets, 1 WebSocket connections"), "\(f.stdout)")
    }

    /// From a pipe, a later section header that starts just before a 64 KiB boundary past the
    /// first MiB: the reader reads a section header twice (moving back 8 bytes), and the spool
    /// had let go of the block the header began in ("cannot seek", the rest of the capture lost).
    @Test func aPipedMixedPcapngReadsPastSectionHeadersAnywhere() throws {
        let (first, _) = try Self.mixedPcapng(bigEndian: false, layout: .oneSection)
        let dir = try SniffTempDirectory()
        for boundary in [3 << 20, 2 << 20] {
            var pcapng = PcapngBuilder()
            // A block of padding (a type no reader knows, passed over) so that the next section
            // starts 16 bytes before the boundary.
            let room = boundary - 16 - first.count - 12
            pcapng.block(0x0000_0BAD) { $0.append([UInt8](repeating: 0, count: room)) }
            let second = try PcapFile(path: SniffFixtures.path("basic"))
            pcapng.section()
            pcapng.interface(linkType: 1)
            for r in second.records { pcapng.packet(interface: 0, time: second.time(r), r) }
            let path = dir.path("sections-\(boundary).pcapng")
            try Data(first + pcapng.bytes).write(to: URL(fileURLWithPath: path))
            #expect(first.count + 12 + room == boundary - 16)
            let direct = try CLI.run(["sniff", "-r", path, "--json", "--stats"])
            let piped = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - --json --stats", CLI.binary.path, path],
                                    executable: URL(fileURLWithPath: "/bin/sh"))
            #expect(direct.status == 0 && piped.status == 0 && piped.stdout == direct.stdout, "\(piped.stderr)")
        }
    }

    /// Damage in a file read by our own pcapng reader (interfaces of different link types) is
    /// searched past as in libpcap's files: a warning names the packet and the bytes skipped, and
    /// every connection the damage did not touch gives the messages its own capture gives.
    enum PcapngDamage: String, CaseIterable, CustomTestStringConvertible {
        /// A packet block's leading length no block can have: the block is lost.
        case badLength
        /// A whole packet block naming an interface the section does not have: passed over.
        case unknownInterface
        /// Ten bytes of garbage between two blocks: nothing is lost.
        case garbageBetweenBlocks
        /// The file ends inside its last packet block: that packet is lost, nothing to search.
        case cutShort
        var testDescription: String { rawValue }
    }

    /// In sections one after another too (`cat a.pcapng b.pcapng`): damage in the first no longer
    /// hides the link types of the later ones (libpcap then read the file, and refused them).
    /// Through a pipe, the same output and warnings (a damaged pipe whose interfaces differed was
    /// read only up to the damage).
    @Test(arguments: [false, true], PcapngDamage.allCases)
    func damagedPcapngWithDifferentLinkTypesIsSearchedPast(_ bigEndian: Bool, _ damage: PcapngDamage) throws {
        for layout in [MixedLayout.oneSection, .sectionEach] {
            try damagedPcapngIsSearchedPast(bigEndian, damage, layout)
        }
    }

    func damagedPcapngIsSearchedPast(_ bigEndian: Bool, _ damage: PcapngDamage, _ layout: MixedLayout) throws {
        var (bytes, packets) = try Self.mixedPcapng(bigEndian: bigEndian, layout: layout)
        // The middle packet of the first part's connection (basic.pcap), or the very last block.
        let ofFirst = packets.indices.filter { packets[$0].part == 0 }
        let k = damage == .cutShort ? packets.count - 1 : ofFirst[ofFirst.count / 2]
        let at = packets[k].offset
        func put32(_ v: UInt32, _ i: Int) {
            for b in 0..<4 { bytes[i + b] = UInt8(truncatingIfNeeded: v >> (bigEndian ? UInt32(24 - 8 * b) : UInt32(8 * b))) }
        }
        var resumesAt: Int? = nil
        switch damage {
        case .badLength:
            put32(6, at + 4)
            resumesAt = packets[k + 1].offset
        case .unknownInterface:
            put32(77, at + 8)
            resumesAt = packets[k + 1].offset
        case .garbageBetweenBlocks:
            bytes.insert(contentsOf: [UInt8](repeating: 0xEE, count: 10), at: at)
            resumesAt = at + 10
        case .cutShort:
            bytes.removeLast(12)
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("damaged.pcapng")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full"])
        let stderr = out.result.stderr
        #expect(out.result.status == 1, "\(layout): \(stderr)")
        let piped = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - --json --full", CLI.binary.path, path],
                                executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(piped.status == 1 && piped.stdout == out.result.stdout && piped.stderr == stderr, "\(layout), piped: \(piped.stderr)")
        #expect(stderr.contains("packet \(k + 1): damaged pcapng block at byte \(at)"), "\(stderr)")
        if let resumesAt {
            #expect(stderr.contains("from byte \(at)), reading on at byte \(resumesAt)"), "\(stderr)")
        } else {
            #expect(!stderr.contains("reading on") && !stderr.contains("skipped"), "\(stderr)")
        }
        #expect(stderr.split(separator: "\n").filter { $0.contains("damaged pcapng block") }.count == 1, "\(stderr)")
        for (i, part) in Self.mixedParts.enumerated() {
            let alone = try SniffFixtures.sniff(part.name)
            let client = try #require(alone.kind("handshake").first?["client"].string)
            let a = try #require(out.connection(client: client), "\(part.name) missing")
            let b = try #require(alone.connection(client: client))
            for d in ["client", "server"] {
                let got = out.messageRecords(connection: a, direction: d), want = alone.messageRecords(connection: b, direction: d)
                if damage == .garbageBetweenBlocks || packets[k].part != i {
                    #expect(got == want, "\(part.name) \(d)")
                } else {
                    // The damaged packet's connection loses at most what that packet carried,
                    // and is followed to its end.
                    #expect(got.count >= want.count - 1 && got.last == want.last, "\(part.name) \(d)")
                }
            }
        }
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
