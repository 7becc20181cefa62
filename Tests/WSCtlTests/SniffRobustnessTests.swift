import Foundation
import Testing

/// "No input crashes or hangs it": damaged copies of the fixtures (bits flipped, bytes replaced or
/// zeroed anywhere after the file header, record headers included), made from a fixed seed, read
/// with ample, little and no memory for messages (`--max-message-memory`, with and without
/// `--full`). Each run must end by itself within 20 s with status 0 or 1 (1: a warning about a
/// damaged record).
@Suite("Sniff survives damaged captures", .timeLimit(.minutes(3)))
struct SniffRobustnessTests {

    static func damaged(_ bytes: [UInt8], seed: UInt64) -> [UInt8] {
        var rng = SplitMix(state: seed)
        var d = bytes
        switch Int.random(in: 0..<4, using: &rng) {
        case 0, 1:  // flip 1-19 bits
            for _ in 0..<Int.random(in: 1..<20, using: &rng) {
                d[Int.random(in: 24..<d.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            }
        case 2:  // overwrite up to 200 bytes with noise
            let start = Int.random(in: 24..<d.count, using: &rng)
            for i in start..<min(d.count, start + Int.random(in: 1..<200, using: &rng)) { d[i] = UInt8.random(in: 0...255, using: &rng) }
        default:  // zero up to 100 bytes
            let start = Int.random(in: 24..<d.count, using: &rng)
            for i in start..<min(d.count, start + Int.random(in: 1..<100, using: &rng)) { d[i] = 0 }
        }
        return d
    }

    @Test(arguments: ["basic", "deflate", "fragmented", "concurrent", "envelopes", "closecodes", "keepalive"])
    func damagedCopiesNeitherCrashNorHang(_ name: String) throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path(name))))
        let dir = try SniffTempDirectory()
        for i in 0..<12 {
            let seed = UInt64(i) &* 7919 &+ UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) })
            let path = dir.path("\(name)-\(seed).pcap")
            try Data(Self.damaged(original, seed: seed)).write(to: URL(fileURLWithPath: path))
            // A third of the runs with no memory limit to speak of, a third with whole payloads
            // under a small one, a third with none at all.
            let memory = [["--max-message-memory", "1GiB"], ["--full", "--max-message-memory", "3KB"], ["--max-message-memory", "0"]][i % 3]
            let child = try ChildProcess(executable: CLI.binary, arguments: ["sniff", "-r", path, "--json", "--stats"] + memory)
            guard let status = child.waitForExit(timeout: 20) else {
                child.stop(timeout: 2)
                Issue.record("\(name) damaged with seed \(seed): still running after 20 s")
                continue
            }
            #expect(status == 0 || status == 1, "\(name) damaged with seed \(seed): exit status \(status); stderr: \(child.stderr.suffix(500))")
            #expect(child.stdout.contains("\"kind\":\"stats\""), "\(name) seed \(seed): no stats line")
        }
    }

    /// The end-of-capture line that counts skipped packets is the same on every run: reasons with
    /// the same count come by name (they came in a dictionary's order, which changes from one
    /// process to the next). Three packets sniff cannot use, one of each kind, without a filter.
    /// A file cut inside a record: the warning gives the packet number and the byte where that
    /// record starts (it gave the packet number alone).
    @Test(arguments: [100, 2000, 3001])
    func fileCutShortSaysWhere(_ length: Int) throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SniffFixtures.path("basic"))))
        // The record the cut falls inside: walk the records' lengths from the 24-byte header.
        var start = 24, number = 1
        while true {
            let caplen = Int(original[start + 8]) | Int(original[start + 9]) << 8 | Int(original[start + 10]) << 16
            if start + 16 + caplen > length { break }
            start += 16 + caplen
            number += 1
        }
        try #require(start < length, "the cut falls between records")
        let dir = try SniffTempDirectory()
        let path = dir.path("cut.pcap")
        try Data(original.prefix(length)).write(to: URL(fileURLWithPath: path))
        let r = try CLI.run(["sniff", "-r", path])
        #expect(r.stderr.contains("packet \(number):") && r.stderr.contains("the file ends inside the record at byte \(start)"), "cut at \(length): \(r.stderr)")
    }

    /// A capture whose snapshot length cut packets (basic.pcap as if taken with 100 and with 64
    /// bytes): one warning says how many, and the stats count them; at 64 even the TCP headers
    /// are cut, and every packet is skipped. The whole capture gives neither. Packets of other
    /// protocols, skipped whole anyway, are not counted: a damaged file's garbage records were.
    @Test(arguments: [100, 64])
    func packetsCutByTheSnapshotLengthAreSaid(_ snaplen: Int) throws {
        var capture = try PcapFile(path: SniffFixtures.path("basic"))
        let cut = capture.records.filter { $0.data.count > snaplen }.count
        try #require(cut > 10)
        capture.header[16] = UInt8(snaplen)
        capture.header[17] = 0
        capture.header[18] = 0
        capture.header[19] = 0
        capture.records = capture.records.map { r in
            var r = r
            r.data = Array(r.data.prefix(snaplen))
            return r
        }
        // An ARP packet cut too: skipped whole as not IP, not counted.
        let last = capture.records[capture.records.count - 1]
        capture.records.append(PcapFile.Record(seconds: last.seconds, fraction: last.fraction, wireLength: 60,
                                               data: [UInt8](repeating: 0xFF, count: 12) + [0x08, 0x06] + [UInt8](repeating: 1, count: 28)))
        let dir = try SniffTempDirectory()
        let path = dir.path("cut.pcap")
        try capture.write(to: path)
        let out = try SniffOutput.run(["sniff", "-r", path, "--json", "--stats"])
        #expect(out.kind("stats").first?["packets_cut"].int == cut)
        #expect(out.result.stderr.contains("\(cut) of \(capture.records.count) packets were cut short by the capture's snapshot length (at most \(snaplen) of their bytes kept)"),
                "\(out.result.stderr)")
        // The same when the file's header gives a larger snapshot length than the packets were cut to (editcap -s).
        capture.header[16] = 0
        capture.header[17] = 0
        capture.header[18] = 4
        try capture.write(to: path)
        let editcapped = try CLI.run(["sniff", "-r", path])
        #expect(editcapped.stderr.contains("(at most \(snaplen) of their bytes kept)"), "\(editcapped.stderr)")
        #expect(out.kind("stats").first?["packets_skipped"].int == (snaplen == 64 ? capture.records.count : 1))
        let whole = try SniffOutput.run(["sniff", "-r", SniffFixtures.path("basic"), "--json", "--stats"])
        #expect(whole.kind("stats").first?["packets_cut"].int == 0 && !whole.result.stderr.contains("snapshot length"))
        // Frames whose padding and checksum were not captured (a wire length of at least 64
        // bytes, 4 more than captured): every IP datagram is whole, nothing is cut.
        var padded = try PcapFile(path: SniffFixtures.path("basic"))
        padded.records = padded.records.map { r in
            var r = r
            r.wireLength = UInt32(max(60, r.data.count) + 4)
            return r
        }
        try padded.write(to: path)
        let unpadded = try SniffOutput.run(["sniff", "-r", path, "--json", "--stats"])
        #expect(unpadded.kind("stats").first?["packets_cut"].int == 0 && !unpadded.result.stderr.contains("snapshot length"),
                "\(unpadded.result.stderr)")
    }

    /// A pcapng block whose shape is sound but which says what cannot be (a packet of an interface
    /// no block described): one warning names it by its true number, the search resumes after it
    /// (not at it, which failed again with the next number, so that every later warning was a
    /// packet off), and nothing else is lost.
    @Test func aPcapngBlockRefusedForWhatItSaysIsPassedOverOnce() throws {
        let file = try PcapFile(path: SniffFixtures.path("basic"))
        let refused = file.records.indices.filter { file.records[$0].data.count > 350 }.map { $0 + 1 }
        try #require(refused.count >= 2)
        var pcapng = PcapngBuilder()
        pcapng.section()
        pcapng.interface(linkType: 1)  // Ethernet, microseconds (the default)
        var offsets: [Int] = []
        for (i, r) in file.records.enumerated() {
            offsets.append(pcapng.bytes.count)
            pcapng.packet(interface: refused.contains(i + 1) ? 1 : 0, time: file.time(r), r)
        }
        let dir = try SniffTempDirectory()
        let path = dir.path("refused.pcapng")
        try Data(pcapng.bytes).write(to: URL(fileURLWithPath: path))
        let r = try CLI.run(["sniff", "-r", path, "--stats"])
        let warnings = r.stderr.split(separator: "\n").filter { $0.contains("warning: packet ") }
        #expect(warnings.count == refused.count, "\(r.stderr)")
        for (warning, number) in zip(warnings, refused) {
            let next = offsets[number]  // the block after the refused one
            #expect(warning.contains("packet \(number): ") && warning.contains("no description block")
                    && warning.contains("reading on at byte \(next)") && !warning.contains("skipped 0 damaged bytes"), "\(warning)")
        }
        #expect(r.stdout.contains("total: \(file.records.count - refused.count) packets"), "\(r.stdout)")
    }

    /// A pcapng packet longer than its interface's snapshot length breaks the format's rule, but
    /// every byte of it is there: it is read (libpcap refused it, and the packet was lost), and
    /// the capture dissects as the same packets in a pcap file do.
    @Test func pcapngPacketsLongerThanTheSnapshotLengthAreRead() throws {
        let file = try PcapFile(path: SniffFixtures.path("basic"))
        let snaplen = 350
        try #require(file.records.filter { $0.data.count > snaplen }.count >= 2)
        var pcapng = PcapngBuilder()
        pcapng.section()
        pcapng.interface(linkType: 1, snaplen: UInt32(snaplen))
        for r in file.records { pcapng.packet(interface: 0, time: file.time(r), r) }
        let dir = try SniffTempDirectory()
        let path = dir.path("long.pcapng")
        try Data(pcapng.bytes).write(to: URL(fileURLWithPath: path))
        let r = try CLI.run(["sniff", "-r", path, "--json"])
        let expected = try CLI.run(["sniff", "-r", SniffFixtures.path("basic"), "--json"])
        #expect(r.status == 0 && !r.stderr.contains("warning"), "\(r.stderr)")
        #expect(r.stdout == expected.stdout)
    }

    /// Four bytes cut out of a record of a 5,000-record file: libpcap reads on out of step, and
    /// the records after the cut are read again in step. The out-of-step reads were counted too:
    /// the stats said 5,998 packets (and 5,998 skipped) for a file of 5,000. Both ways of reading.
    @Test func recordsReadOutOfStepAreNotCounted() throws {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        var bytes = le32(0xA1B2_C3D4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(262_144) + le32(1)
        var cutAt = 0
        for i in 0..<5_000 {
            let packet = [UInt8](repeating: UInt8(i % 251), count: 20 + i % 97)
            if i == 4_000 { cutAt = bytes.count + 20 }
            bytes += le32(1_700_000_000 + i / 10) + le32(i % 10 * 100_000) + le32(packet.count) + le32(packet.count) + packet
        }
        bytes.removeSubrange(cutAt..<(cutAt + 4))
        let dir = try SniffTempDirectory()
        let path = dir.path("out-of-step.pcap")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        for extra in [[], ["--one-thread"]] {
            let r = try CLI.run(["sniff", "-r", path, "--stats"] + extra)
            #expect(r.status == 1 && r.stderr.contains("out of step"), "\(r.stderr)")
            #expect(r.stdout.contains("total: 5000 packets"), "\(extra): \(r.stdout)")
            #expect(r.stderr.contains("wsctl sniff: 5000 packets, 5000 skipped (not-ip 5000)"), "\(extra): \(r.stderr)")
        }
    }

    @Test func skippedPacketsAreListedInAFixedOrder() throws {
        var connection = SyntheticConnection()
        connection.send(fromClient: true, [0x81, 0x82, 1, 2, 3, 4] + [0x69 ^ 1, 0x21 ^ 2])
        connection.close()
        var capture = connection.capture
        let time = capture.records.last!
        let ethernet = [UInt8](repeating: 0, count: 12)
        let unusable: [[UInt8]] = [
            ethernet + [0x08, 0x06] + [UInt8](repeating: 0, count: 28),  // ARP: not IP
            ethernet + [0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]
                + [0, 53, 0, 53, 0, 8, 0, 0],  // UDP: not TCP
            ethernet + [0x08, 0x00, 0x4F, 0, 0, 10],  // an IP header that says 60 bytes and holds 4
        ]
        for data in unusable { capture.records.append(.init(seconds: time.seconds, fraction: time.fraction, wireLength: UInt32(data.count), data: data)) }
        let dir = try SniffTempDirectory()
        let path = dir.path("skipped.pcap")
        try capture.write(to: path)
        var lines: Set<String> = []
        for _ in 0..<10 {
            let r = try CLI.run(["sniff", "-r", path, "-f", ""])
            #expect(r.status == 0, "\(r.stderr)")
            lines.insert(r.stderr)
        }
        #expect(lines.count == 1, "\(lines)")
        let line = lines.first ?? ""
        #expect(line.contains("3 skipped (malformed-ip-header 1, not-ip 1, not-tcp 1)"), "\(line)")
    }
}
