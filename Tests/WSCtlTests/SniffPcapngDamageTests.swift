import Foundation
import Testing
import WebSocketSniffer

/// Damage in pcapng captures read by wsctl's own reader, found by a review of the change that gave
/// it every pcapng capture: each case read from the file and from a pipe.
@Suite("Damaged pcapng captures, files and pipes", .timeLimit(.minutes(3)))
struct SniffPcapngDamageTests {
    /// `sniff -r path args`, and the same capture through a pipe.
    static func fileAndPipe(_ path: String, _ args: [String]) throws -> (file: CLIResult, pipe: CLIResult) {
        let file = try CLI.run(["sniff", "-r", path] + args)
        let pipe = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - \"${@:2}\"", CLI.binary.path, path] + args,
                               executable: URL(fileURLWithPath: "/bin/bash"))
        return (file, pipe)
    }

    static func write(_ bytes: [UInt8], _ name: String, in dir: SniffTempDirectory) throws -> String {
        let path = dir.path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func put32(_ bytes: inout [UInt8], _ v: UInt32, at i: Int, bigEndian: Bool = false) {
        for b in 0..<4 { bytes[i + b] = UInt8(truncatingIfNeeded: v >> (bigEndian ? UInt32(24 - 8 * b) : UInt32(8 * b))) }
    }

    /// A damaged block that is not a packet (a name resolution block whose trailing length is
    /// wrong) took a packet number: every later warning named a packet one too far.
    @Test func aDamagedBlockOfAnotherKindTakesNoPacketNumber() throws {
        let file = try PcapFile(path: SniffFixtures.path("basic"))
        var pcapng = PcapngBuilder()
        pcapng.section()
        pcapng.interface(linkType: 1)
        let names = pcapng.bytes.count
        pcapng.block(4) { $0.u16(0); $0.u16(0) }  // an empty Name Resolution Block
        var tenth = 0
        for (i, r) in file.records.enumerated() {
            if i == 9 { tenth = pcapng.bytes.count }
            pcapng.packet(interface: 0, time: file.time(r), r)
        }
        var bytes = pcapng.bytes
        Self.put32(&bytes, 20, at: names + 12)  // its trailing length, 16 before
        Self.put32(&bytes, UInt32(file.records[9].data.count + 4_000), at: tenth + 20)  // more captured than the block holds
        let dir = try SniffTempDirectory()
        let (f, p) = try Self.fileAndPipe(try Self.write(bytes, "names.pcapng", in: dir), [])
        let warnings = f.stderr.split(separator: "\n").filter { $0.contains("damaged pcapng block") }
        #expect(warnings.count == 2, "\(f.stderr)")
        #expect(warnings.first?.contains("packet 1: damaged pcapng block at byte \(names)") == true, "\(f.stderr)")
        #expect(warnings.last?.contains("packet 10: damaged pcapng block at byte \(tenth)") == true, "\(f.stderr)")
        #expect(p.stdout == f.stdout && p.stderr == f.stderr, "\(p.stderr)")
    }

    /// A section header whose byte-order magic is damaged: the section after it starts afresh.
    /// Its interfaces were added to the previous section's, and its packets (interface 0) were
    /// decoded with the previous section's link type: the second connection was lost.
    @Test func aDamagedSectionHeaderStillEndsTheSectionBefore() throws {
        let first = try PcapFile(path: SniffFixtures.path("basic")), second = try PcapFile(path: SniffFixtures.path("any"))
        var pcapng = PcapngBuilder()
        pcapng.section()
        pcapng.interface(linkType: 1)
        for r in first.records { pcapng.packet(interface: 0, time: first.time(r), r) }
        let header = pcapng.bytes.count
        pcapng.section()
        pcapng.interface(linkType: 276)
        for r in second.records { pcapng.packet(interface: 0, time: second.time(r), r) }
        var bytes = pcapng.bytes
        Self.put32(&bytes, 0x0BAD_0BAD, at: header + 8)
        let dir = try SniffTempDirectory()
        let path = try Self.write(bytes, "sections.pcapng", in: dir)
        let (f, p) = try Self.fileAndPipe(path, ["--json", "--full"])
        #expect(f.status == 1 && f.stderr.contains("unknown byte-order magic"), "\(f.stderr)")
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full"])
        // (any.pcap is basic.pcap's traffic captured on `any`: the same client, two connections.)
        for (id, name) in zip(out.connectionIDs, ["basic", "any"]) {
            let alone = try SniffFixtures.sniff(name)
            for d in ["client", "server"] {
                #expect(out.messageRecords(connection: id, direction: d) == alone.messageRecords(connection: alone.connectionIDs[0], direction: d), "\(name) \(d)")
            }
        }
        #expect(out.connectionIDs.count == 2, "\(out.result.stdout.prefix(800))")
        #expect(p.stdout == f.stdout && p.stderr == f.stderr, "\(p.stderr)")
    }

    /// `cat little.pcapng big.pcapng`: damage in the big-endian section was searched for in the
    /// first section's byte order, found nothing, and the rest of that section was lost.
    @Test func damageInASectionOfTheOtherByteOrder() throws {
        let first = try PcapFile(path: SniffFixtures.path("basic")), second = try PcapFile(path: SniffFixtures.path("any"))
        var little = PcapngBuilder(bigEndian: false)
        little.section()
        little.interface(linkType: 1)
        for r in first.records { little.packet(interface: 0, time: first.time(r), r) }
        var big = PcapngBuilder(bigEndian: true)
        big.section()
        big.interface(linkType: 276)
        var offsets: [Int] = []
        for r in second.records {
            offsets.append(little.bytes.count + big.bytes.count)
            big.packet(interface: 0, time: second.time(r), r)
        }
        var bytes = little.bytes + big.bytes
        let k = offsets.count / 2
        Self.put32(&bytes, 6, at: offsets[k] + 4, bigEndian: true)  // a length no block can have
        let dir = try SniffTempDirectory()
        let path = try Self.write(bytes, "endians.pcapng", in: dir)
        let (f, p) = try Self.fileAndPipe(path, ["--json", "--full"])
        let errors = f.stderr.split(separator: "\n").filter { $0.contains("damaged pcapng block") }
        #expect(errors.count == 1 && errors[0].contains("reading on at byte \(offsets[k + 1])"), "\(f.stderr)")
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--full"])
        let alone = try SniffFixtures.sniff("any")
        #expect(out.connectionIDs.count == 2)
        let a = try #require(out.connectionIDs.last), b = alone.connectionIDs[0]
        for d in ["client", "server"] {
            let got = out.messageRecords(connection: a, direction: d), want = alone.messageRecords(connection: b, direction: d)
            #expect(got.count >= want.count - 1 && got.last == want.last, "\(d): \(got.count) of \(want.count)")
        }
        #expect(p.stdout == f.stdout && p.stderr == f.stderr, "\(p.stderr)")
    }

    /// A packet block whose damaged length claims 40 MiB, in a capture that goes on for more than
    /// that after it (more than a pipe's window, 32 MiB): read from a pipe, the reader read that far and the
    /// window let go of where the damage began, so the search started megabytes later (over
    /// 4 MB of packets lost, against 1.5 KB from the file). Blocks longer than 16 MiB, which
    /// the search would not find either, are now damage at once.
    @Test func aHugeDamagedLengthInAPipeLosesNoMoreThanInTheFile() throws {
        let file = try PcapFile(path: SniffFixtures.path("basic"))
        var pcapng = PcapngBuilder()
        pcapng.section()
        pcapng.interface(linkType: 1)
        for r in file.records.prefix(5) { pcapng.packet(interface: 0, time: file.time(r), r) }
        let damaged = pcapng.bytes.count
        // 43 MB of 60,000-byte frames (not IP: counted and skipped) from the damaged block on.
        let big = PcapFile.Record(seconds: 0, fraction: 0, wireLength: 60_000, data: [UInt8](repeating: 0x5A, count: 60_000))
        for i in 0..<720 { pcapng.packet(interface: 0, time: file.time(file.records[5]) + UInt64(i), big) }
        var bytes = pcapng.bytes
        Self.put32(&bytes, 40 << 20, at: damaged + 4)
        #expect(bytes.count - damaged > 40 << 20)
        let dir = try SniffTempDirectory()
        let (f, p) = try Self.fileAndPipe(try Self.write(bytes, "huge.pcapng", in: dir), ["--stats"])
        #expect(f.stdout.contains("total: 724 packets"), "\(f.stdout.suffix(300)) \(f.stderr)")
        #expect(p.stdout == f.stdout && p.stderr == f.stderr, "\(p.stderr)")
    }

    /// -w from a pipe: a packet not saved (of no WebSocket connection; found when -w saved no
    /// later link type, as a packet of one) closed other flows (the flow timeout, on its clock):
    /// they must be applied, or the saved connection's last ACK, which comes after, is not saved.
    @Test func aPacketNotSavedStillClosesTheFlowsItCloses() throws {
        let file = try PcapFile(path: SniffFixtures.path("basic"))
        func capture(otherLinkType: Bool) -> [UInt8] {
            var pcapng = PcapngBuilder()
            pcapng.section()
            pcapng.interface(linkType: 1)
            for r in file.records.prefix(34) { pcapng.packet(interface: 0, time: file.time(r), r) }
            // Another connection's SYN, 100 s later: its packet moves the clock past the flow timeout.
            var syn = file.records[0]
            syn.data[14 + 20] ^= 0x55
            if otherLinkType {
                syn.data.removeFirst(14)
                syn.wireLength -= 14
            }
            pcapng.section()
            pcapng.interface(linkType: otherLinkType ? 101 : 1)
            pcapng.packet(interface: 0, time: file.time(file.records[33]) + 100_000_000, syn)
            pcapng.section()
            pcapng.interface(linkType: 1)
            pcapng.packet(interface: 0, time: file.time(file.records[33]) + 100_500_000, file.records[37])
            return pcapng.bytes
        }
        let dir = try SniffTempDirectory()
        var saved: [Int] = []
        for other in [true, false] {
            let path = try Self.write(capture(otherLinkType: other), "w-\(other).pcapng", in: dir)
            let out = dir.path("saved-\(other).pcapng")
            let r = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - -w \"$2\" --flow-timeout 10s", CLI.binary.path, path, out],
                                executable: URL(fileURLWithPath: "/bin/sh"))
            #expect(r.status == 0, "\(r.stderr)")
            saved.append(try Self.savedPackets(out).count)
        }
        #expect(saved == [35, 35], "the 34 packets of the connection and its last ACK, whatever the SYN's link type")
    }
    /// Damage in the last block of a little-endian section, a big-endian one after it: the search
    /// read the big-endian section header in the little-endian order and passed it by, then took
    /// that section's blocks, read three bytes off, for blocks (a type below 256 followed by three
    /// zero bytes passes for one): every one of them failed, and the section was lost.
    @Test func damageJustBeforeASectionOfTheOtherByteOrder() throws {
        let first = try PcapFile(path: SniffFixtures.path("basic")), second = try PcapFile(path: SniffFixtures.path("any"))
        var little = PcapngBuilder(bigEndian: false)
        little.section()
        little.interface(linkType: 1)
        var last = 0
        for r in first.records {
            last = little.bytes.count
            little.packet(interface: 0, time: first.time(r), r)
        }
        var big = PcapngBuilder(bigEndian: true)
        big.section()
        big.interface(linkType: 276)
        for r in second.records { big.packet(interface: 0, time: second.time(r), r) }
        var bytes = little.bytes + big.bytes
        Self.put32(&bytes, 0xDEAD_BEEF, at: little.bytes.count - 4)  // the last block's trailing length
        let dir = try SniffTempDirectory()
        let (f, p) = try Self.fileAndPipe(try Self.write(bytes, "endians.pcapng", in: dir), ["--stats"])
        let errors = f.stderr.split(separator: "\n").filter { $0.contains("damaged pcapng block") }
        #expect(errors.count == 1 && errors[0].contains("at byte \(last)") && errors[0].contains("reading on at byte \(little.bytes.count)"), "\(f.stderr)")
        #expect(f.stdout.contains("total: \(first.records.count + second.records.count - 1) packets, 2 WebSocket connections"), "\(f.stdout)")
        #expect(p.stdout == f.stdout && p.stderr == f.stderr, "\(p.stderr)")
    }

    /// The same, with the damage in the big-endian section's header, its byte-order magic: nothing
    /// says that section's order, and its blocks, read in the little-endian one, were all lost.
    /// The search now also takes two blocks in a row in the other order for a section whose header
    /// was damaged, and the reading goes on there, with that section's interfaces only.
    @Test(arguments: [false, true])
    func aDamagedSectionHeaderBeforeTheOtherByteOrder(_ bigFirst: Bool) throws {
        let first = try PcapFile(path: SniffFixtures.path("basic")), second = try PcapFile(path: SniffFixtures.path("any"))
        var one = PcapngBuilder(bigEndian: bigFirst)
        one.section()
        one.interface(linkType: 1)
        for r in first.records { one.packet(interface: 0, time: first.time(r), r) }
        var two = PcapngBuilder(bigEndian: !bigFirst)
        two.section()
        two.interface(linkType: 276)
        for r in second.records { two.packet(interface: 0, time: second.time(r), r) }
        var bytes = one.bytes + two.bytes
        Self.put32(&bytes, 0xDEAD_BEEF, at: one.bytes.count + 8)  // the second section's byte-order magic
        let dir = try SniffTempDirectory()
        let (f, p) = try Self.fileAndPipe(try Self.write(bytes, "magic.pcapng", in: dir), ["--stats"])
        let errors = f.stderr.split(separator: "\n").filter { $0.contains("damaged pcapng block") }
        #expect(errors.count == 1 && errors[0].contains("at byte \(one.bytes.count)") && errors[0].contains("reading on at byte \(one.bytes.count + 28)"),
                "\(f.stderr)")
        #expect(f.stdout.contains("total: \(first.records.count + second.records.count) packets, 2 WebSocket connections"), "\(f.stdout)")
        #expect(p.stdout == f.stdout && p.stderr == f.stderr, "\(p.stderr)")
    }

    /// An interface description whose one option is damaged (its lengths intact): the interface
    /// was thrown away, and every packet of the section failed with "no description block".
    @Test func anInterfaceWithADamagedOptionIsKept() throws {
        let file = try PcapFile(path: SniffFixtures.path("basic"))
        var pcapng = PcapngBuilder()
        pcapng.section()
        let interface = pcapng.bytes.count
        pcapng.block(1) { b in
            b.u16(1); b.u16(0); b.u32(262_144)
            b.u16(2); b.u16(4); b.append(Array("eth0".utf8))  // if_name, whose length is damaged below
            b.u16(0); b.u16(0)
        }
        for r in file.records { pcapng.packet(interface: 0, time: file.time(r), r) }
        var bytes = pcapng.bytes
        bytes[interface + 8 + 8 + 2] = 200  // if_name's length: past the block's end
        let dir = try SniffTempDirectory()
        let path = try Self.write(bytes, "option.pcapng", in: dir)
        let r = try CLI.run(["sniff", "-r", path, "--json", "--full"])
        let expected = try CLI.run(["sniff", "-r", SniffFixtures.path("basic"), "--json", "--full"])
        #expect(r.status == 1 && r.stderr.contains("the interface is kept"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").filter { $0.contains("warning: packet") }.count == 1, "\(r.stderr)")
        #expect(r.stdout == expected.stdout)
    }

    /// -w from a pipe: a datagram whose first fragment came on the file's link type and its last
    /// on an interface of another link type, described later. The first, held until its datagram
    /// was whole, must be told it was (it was once dropped at the end, and everything after it
    /// held until then); both are saved, each with its link type.
    @Test func aDatagramCompletedOnAnotherLinkTypeKeepsItsFirstFragment() throws {
        let file = try PcapFile(path: SniffFixtures.path("basic"))
        // The HTTP request (the first client packet with a payload) cut in two.
        let k = try #require(file.records.firstIndex { $0.data.count > 14 + 20 + 32 + 48 })
        let pieces = try #require(SniffIPFragmentTests.fragments(of: file.records[k].data, size: 48 * ((file.records[k].data.count - 66) / 96 + 1), id: 4242))
        try #require(pieces.count == 2)
        var pcapng = PcapngBuilder()
        pcapng.section()
        pcapng.interface(linkType: 1)
        for r in file.records[..<k] { pcapng.packet(interface: 0, time: file.time(r), r) }
        pcapng.interface(linkType: 101)  // raw IP, described after the first packets
        let t = file.time(file.records[k])
        pcapng.packet(interface: 0, time: t, PcapFile.Record(seconds: 0, fraction: 0, wireLength: UInt32(pieces[0].count), data: pieces[0]))
        let raw = Array(pieces[1].dropFirst(14))
        pcapng.packet(interface: 1, time: t, PcapFile.Record(seconds: 0, fraction: 0, wireLength: UInt32(raw.count), data: raw))
        for r in file.records[(k + 1)...] { pcapng.packet(interface: 0, time: file.time(r), r) }
        let dir = try SniffTempDirectory()
        let path = try Self.write(pcapng.bytes, "fragments.pcapng", in: dir)
        let saved = dir.path("saved.pcapng")
        let w = try CLI.run(["-c", "cat \"$1\" | \"$0\" sniff -r - -w \"$2\"", CLI.binary.path, path, saved],
                            executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(w.status == 0 && w.stderr.isEmpty, "\(w.stderr)")
        let packets = try Self.savedPackets(saved)
        #expect(packets.count == file.records.count + 1, "every packet, both fragments among them")
        #expect(packets.contains { $0.linkType == 1 && $0.data == pieces[0] })
        #expect(packets.contains { $0.linkType == PcapLinkType.raw && $0.data == raw })
    }

    /// The packets of a file -w saved (pcap or pcapng), with their link types.
    static func savedPackets(_ path: String) throws -> [(linkType: Int32, data: [UInt8])] {
        let source = try PcapSource(offlinePath: path)
        var packets: [(linkType: Int32, data: [UInt8])] = []
        while let p = try source.next() { packets.append((source.packetLinkType, Array(p.data))) }
        return packets
    }
}
