import Foundation
import Testing
import WebSocketSniffer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Damage in the middle of a capture file: the source says where, finds the next readable record
/// and reads on from there.
@Suite struct CaptureResyncTests {
    /// Six packets of different sizes, each filled with its own number.
    static let packets: [[UInt8]] = (1...6).map { [UInt8](repeating: UInt8($0), count: 50 + 7 * $0) }

    /// Where record `index` (0-based) starts in a pcap file of `packets`.
    static func recordOffset(_ index: Int, _ packets: [[UInt8]] = packets) -> Int {
        24 + packets[..<index].reduce(0) { $0 + 16 + $1.count }
    }

    /// Every packet and every error, reading on after errors the source got past; bounded, so a
    /// source that never ends fails the test instead of hanging it.
    static func readEverything(_ source: PcapSource, limit: Int = 100_000) -> (packets: [ReadPacket], errors: [PcapError]) {
        var packets: [ReadPacket] = []
        var errors: [PcapError] = []
        for _ in 0..<limit {
            do {
                guard let packet = try source.next() else { return (packets, errors) }
                packets.append(ReadPacket(number: packet.number, seconds: packet.seconds, nanoseconds: packet.nanoseconds,
                                          wireLength: packet.wireLength, bytes: packet.bytes))
            } catch let error as PcapError {
                errors.append(error)
                if !error.resumes { return (packets, errors) }
            } catch {
                Issue.record("unexpected error \(error)")
                return (packets, errors)
            }
        }
        Issue.record("still reading after \(limit) reads")
        return (packets, errors)
    }

    static func file(_ bytes: [UInt8], name: String = "capture.pcap") throws -> TemporaryFile {
        let file = TemporaryFile(name)
        try file.write(bytes)
        return file
    }

    static func pcap(_ packets: [[UInt8]] = packets) throws -> [UInt8] {
        let file = TemporaryFile()
        try Capture.write(packets, linkType: 1, to: file)
        return file.bytes
    }

    /// A record header with an impossible captured length: that packet is lost, the ones after it
    /// are read, numbered as if the damaged record were one packet.
    @Test func damagedRecordHeaderIsSkipped() throws {
        var bytes = try Self.pcap()
        let third = Self.recordOffset(2)
        bytes.replaceSubrange((third + 8)..<(third + 12), with: [0xFF, 0xFF, 0xFF, 0x7F])
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        #expect(packets.map(\.bytes) == [0, 1, 3, 4, 5].map { Self.packets[$0] })
        #expect(packets.map(\.number) == [1, 2, 4, 5, 6])
        #expect(packets[2].seconds == 1_700_000_003, "the record found is read whole, timestamp included")
        try #require(errors.count == 1)
        #expect(errors[0].packetNumber == 3)
        #expect(errors[0].damagedFrom == Int64(third))
        #expect(errors[0].resumedAt == Int64(Self.recordOffset(3)))
        #expect(errors[0].description.contains("packet 3: "))
        #expect(errors[0].description.contains("reading on at byte \(Self.recordOffset(3))"), "\(errors[0])")
    }

    /// Bytes inserted between records (not a multiple of anything): the search tries every offset.
    @Test func insertedGarbageIsSkipped() throws {
        var bytes = try Self.pcap()
        let fourth = Self.recordOffset(3)
        bytes.insert(contentsOf: [UInt8](repeating: 0xEE, count: 37), at: fourth)
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        #expect(packets.map(\.bytes) == Self.packets)
        #expect(packets.map(\.number) == [1, 2, 3, 5, 6, 7])
        try #require(errors.count == 1)
        #expect(errors[0].packetNumber == 4)
        #expect(errors[0].resumedAt == Int64(fourth + 37))
    }

    /// Four bytes cut out of a packet: libpcap reads on out of step (the end of one record and the
    /// start of the next taken for a header) until the file ends mid-record; the search then starts
    /// back at the last sound record, and the records after the cut are read again, in step.
    @Test func outOfStepRecordsAreReadAgain() throws {
        var bytes = try Self.pcap()
        let third = Self.recordOffset(2)
        bytes.removeSubrange((third + 20)..<(third + 24))
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        try #require(errors.count == 1)
        #expect(errors[0].resumedAt == Int64(Self.recordOffset(3) - 4))
        #expect(errors[0].description.contains("out of step"), "\(errors[0])")
        #expect(packets.suffix(3).map(\.bytes) == Array(Self.packets[3...]), "the records after the cut, in step")
        #expect(packets.prefix(2).map(\.bytes) == Array(Self.packets[..<2]))
        // Numbered as they lie in the file: the third record is the damaged one (it lost bytes),
        // and the records read again are the fourth to sixth (they took the numbers of the
        // out-of-step reads after 3, and every later number was that many off).
        #expect(errors[0].packetNumber == 3, "\(errors[0])")
        #expect(packets.prefix(3).map(\.number) == [1, 2, 3])
        #expect(packets.suffix(3).map(\.number) == [4, 5, 6], "\(packets.map(\.number))")
    }

    /// Out of step, then a record found past the last sound record's end: the damage between
    /// counts as one packet, as elsewhere.
    @Test func outOfStepRecordsAfterASoundOneAreNumberedFromIt() throws {
        var bytes = try Self.pcap()
        // The fourth record's header says 40 bytes more than it holds: libpcap reads on out of
        // step, the search starts back after the third record (the last sound one before the
        // failure: the fourth's header looks sound too, so after it) and finds the fifth.
        let fourth = Self.recordOffset(3)
        let captured = UInt32(Self.packets[3].count + 40)
        let le: [UInt8] = (0..<4).map { UInt8(truncatingIfNeeded: captured >> (8 * $0)) }
        bytes.replaceSubrange((fourth + 8)..<(fourth + 12), with: le)
        bytes.replaceSubrange((fourth + 12)..<(fourth + 16), with: le)
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        try #require(errors.count == 1)
        #expect(errors[0].resumedAt == Int64(Self.recordOffset(4)), "\(errors[0])")
        #expect(errors[0].packetNumber == 4, "\(errors[0])")
        #expect(packets.suffix(2).map(\.bytes) == Array(Self.packets[4...]))
        #expect(packets.suffix(2).map(\.number) == [5, 6], "\(packets.map(\.number))")
    }

    /// A record's captured length cut short: libpcap reads it short and fails on the next header,
    /// which starts that many bytes early; the search finds the next record just after. The
    /// damage is that record's (the bytes left are its own), not one more packet: the numbers
    /// after it were one too far. Cut by less than a record header, by where the record found
    /// lies; by more (20), by where the wire length the record still gives says it ends.
    @Test(arguments: [8, 20])
    func aRecordCutShortKeepsTheNumbersAfterIt(_ cut: Int) throws {
        var bytes = try Self.pcap()
        let third = Self.recordOffset(2)
        let captured = UInt32(Self.packets[2].count - cut)
        for b in 0..<4 { bytes[third + 8 + b] = UInt8(truncatingIfNeeded: captured >> (8 * UInt32(b))) }
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        try #require(errors.count == 1)
        #expect(errors[0].packetNumber == 3, "\(errors[0])")
        #expect(errors[0].resumedAt == Int64(Self.recordOffset(3)))
        #expect(packets.map(\.number) == [1, 2, 3, 4, 5, 6])
        #expect(packets.suffix(3).map(\.bytes) == Array(Self.packets[3...]))
        try Self.expectSameThroughAPipe(bytes)
    }

    /// Two damaged stretches: each is reported and skipped.
    @Test func twoDamagedRecords() throws {
        var bytes = try Self.pcap()
        for index in [1, 4] {
            let at = Self.recordOffset(index)
            bytes.replaceSubrange((at + 8)..<(at + 16), with: [UInt8](repeating: 0xFF, count: 8))
        }
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        #expect(packets.map(\.bytes) == [0, 2, 3, 5].map { Self.packets[$0] })
        #expect(errors.map(\.packetNumber) == [2, 5])
        #expect(errors.allSatisfy { $0.resumes })
    }

    /// The last record damaged: nothing readable follows, so the source ends there and says so.
    @Test func damageWithNothingAfter() throws {
        var bytes = try Self.pcap()
        let last = Self.recordOffset(5)
        bytes.replaceSubrange((last + 8)..<(last + 12), with: [0xFF, 0xFF, 0xFF, 0x7F])
        let file = try Self.file(bytes)
        let source = try PcapSource(offlinePath: file.path)
        let (packets, errors) = Self.readEverything(source)
        #expect(packets.count == 5)
        try #require(errors.count == 1)
        #expect(errors[0].packetNumber == 6)
        #expect(errors[0].resumedAt == nil)
        #expect(errors[0].damagedFrom == Int64(last))
        #expect(errors[0].description.contains("no readable packet after byte \(last)"), "\(errors[0])")
        #expect(try source.next() == nil, "the end stays the end")
    }

    /// A file cut short in its last record: libpcap's "truncated" error, no search, the end.
    @Test func truncatedFileEnds() throws {
        let bytes = try Self.pcap()
        let file = try Self.file(Array(bytes.dropLast(10)))
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        #expect(packets.count == 5)
        try #require(errors.count == 1)
        #expect(errors[0].packetNumber == 6)
        #expect(errors[0].resumedAt == nil)
        #expect(errors[0].damagedFrom == nil, "the file ended; nothing was skipped")
        #expect(errors[0].message.contains("truncated"), "\(errors[0])")
    }

    /// Standard input that is a pipe cannot be searched: the read stops at the damage, and the error
    /// says why.
    /// Standard input that is a pipe is searched as a file is (through `PipeSpool`'s window).
    @Test func pipeIsSearchedLikeAFile() throws {
        var bytes = try Self.pcap()
        let third = Self.recordOffset(2)
        bytes.replaceSubrange((third + 8)..<(third + 12), with: [0xFF, 0xFF, 0xFF, 0x7F])
        let (packets, errors) = Self.readEverything(try PipedInput.source(bytes))
        #expect(packets.map(\.bytes) == [Self.packets[0], Self.packets[1]] + Self.packets[3...])
        try Self.expectOneDamage(errors, packet: 3, from: third, resumedAt: Self.recordOffset(3))
        try Self.expectSameThroughAPipe(bytes)
    }

    /// Garbage sized so that the next sound record starts just inside the first 8 KiB of the
    /// search chunk where a pipe's window is first cut: glibc's fseeko moves to the start of that
    /// 8 KiB block before the record, which must still be held (it was not, and the rest was lost).
    @Test func pipeSearchFindsARecordJustPastWhereItsWindowWasCut() throws {
        let (original, starts, _) = Self.longPcap(count: 40)
        let searchStart = starts[8] + 1
        let chunks = ((1 << 20) - searchStart + 65_535) / 65_536
        let found = searchStart + chunks * 65_536 + 1
        var bytes = original
        bytes.insert(contentsOf: [UInt8](repeating: 0xFF, count: found - starts[9]), at: starts[9])
        let (packets, errors) = Self.readEverything(try PipedInput.source(bytes))
        try Self.expectOneDamage(errors, packet: 10, from: starts[9], resumedAt: found)
        #expect(packets.count == 40)
        try Self.expectSameThroughAPipe(bytes)
    }

    /// pcapng with a 1 MiB custom block before every packet: checkpoints count packet blocks, so
    /// a pipe's are also taken by bytes, and its window still reaches the last one at the damage.
    @Test func pipeCheckpointsFollowBytesInPcapngWithLargeBlocks() throws {
        var file = Pcapng.header
        var starts: [Int] = []
        let custom = Pcapng.block(0xBAD, Build.le32(32_473) + [UInt8](repeating: 0x5A, count: 1 << 20))
        for index in 0..<40 {
            file += custom
            starts.append(file.count)
            file += Pcapng.packet([UInt8](repeating: UInt8(index), count: 60), micros: UInt64(1_700_000_000 + index) * 1_000_000)
        }
        file.replaceSubrange((starts[37] + 4)..<(starts[37] + 8), with: Build.le32(13))
        // (Read through a pipe once: 40 MiB in a debug build takes seconds.)
        try Self.expectSameThroughAPipe(file, name: "capture.pcapng") { packets, errors in
            #expect(errors.count == 1 && errors.first?.resumedAt != nil, "\(errors)")
            #expect(packets.count == 39)
        }
    }

    /// The same packets and errors from `bytes` as a file and through a pipe.
    static func expectSameThroughAPipe(_ bytes: [UInt8], name: String = "capture.pcap",
                                       sourceLocation: SourceLocation = #_sourceLocation,
                                       _ checkFile: ([ReadPacket], [PcapError]) -> Void = { _, _ in }) throws {
        let file = try Self.file(bytes, name: name)
        let fromFile = Self.readEverything(try PcapSource(offlinePath: file.path))
        checkFile(fromFile.packets, fromFile.errors)
        let fromPipe = Self.readEverything(try PipedInput.source(bytes))
        #expect(fromPipe.packets == fromFile.packets, "\(fromPipe.packets.count) packets through a pipe, \(fromFile.packets.count) from the file",
                sourceLocation: sourceLocation)
        #expect(fromPipe.errors.map(\.description) == fromFile.errors.map(\.description), sourceLocation: sourceLocation)
    }

    /// pcapng: a block whose length is not a multiple of 4 is skipped, the next block is read.
    @Test func pcapngDamagedBlock() throws {
        var file = Pcapng.header
        var starts: [Int] = []
        for (index, packet) in Self.packets.enumerated() {
            starts.append(file.count)
            file += Pcapng.packet(packet, micros: UInt64(1_700_000_000 + index) * 1_000_000)
        }
        // The second packet's block length: 13.
        file.replaceSubrange((starts[1] + 4)..<(starts[1] + 8), with: Build.le32(13))
        let path = try Self.file(file, name: "capture.pcapng")
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: path.path))
        #expect(packets.map(\.bytes) == [0, 2, 3, 4, 5].map { Self.packets[$0] })
        try #require(errors.count == 1)
        #expect(errors[0].packetNumber == 2)
        #expect(errors[0].resumedAt == Int64(starts[2]))
    }

    // MARK: Long files: where a failed read started is found from a checkpoint taken on the way

    /// Exactly one read error: at packet number `packet`, the damage from byte `from`, reading on
    /// at byte `resumedAt`.
    static func expectOneDamage(_ errors: [PcapError], packet: Int, from: Int, resumedAt: Int,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        try #require(errors.count == 1, "\(errors)", sourceLocation: sourceLocation)
        #expect(errors[0].packetNumber == packet, sourceLocation: sourceLocation)
        #expect(errors[0].damagedFrom == Int64(from), sourceLocation: sourceLocation)
        #expect(errors[0].resumedAt == Int64(resumedAt), sourceLocation: sourceLocation)
    }

    /// A pcap file of `count` records, each filled with its index (mod 251) and `20 + i % 97`
    /// bytes long; `wire` gives a record's wire length from its captured length (a wire length
    /// below the captured one makes a record look odd, not impossible).
    static func longPcap(count: Int, wire: (Int, Int) -> Int = { _, captured in captured }) -> (bytes: [UInt8], starts: [Int], data: [[UInt8]]) {
        var bytes = Build.le32(0xA1B2_C3D4) + [2, 0, 4, 0] + Build.le32(0) + Build.le32(0) + Build.le32(262_144) + Build.le32(1)
        var starts: [Int] = []
        var data: [[UInt8]] = []
        for i in 0..<count {
            let packet = [UInt8](repeating: UInt8(i % 251), count: 20 + i % 97)
            starts.append(bytes.count)
            data.append(packet)
            bytes += Build.le32(UInt32(1_700_000_000 + i / 10)) + Build.le32(UInt32(i % 10 * 100_000))
            bytes += Build.le32(UInt32(packet.count)) + Build.le32(UInt32(wire(i, packet.count))) + packet
        }
        return (bytes, starts, data)
    }

    /// Damage thousands of records in, after several checkpoints: a damaged header and, further
    /// on, four bytes cut out of a packet (libpcap reads on out of step). Each is reported at its
    /// exact offset and the records after it are read, in step.
    @Test func damageFarIntoALongFile() throws {
        let (original, starts, data) = Self.longPcap(count: 5_000)
        var bytes = original
        bytes.removeSubrange((starts[4_000] + 20)..<(starts[4_000] + 24))
        bytes.replaceSubrange((starts[2_100] + 8)..<(starts[2_100] + 16), with: [UInt8](repeating: 0xFF, count: 8))
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        try #require(errors.count == 2, "\(errors)")
        #expect(errors[0].packetNumber == 2_101)
        #expect(errors[0].damagedFrom == Int64(starts[2_100]))
        #expect(errors[0].resumedAt == Int64(starts[2_101]))
        #expect(errors[1].resumedAt == Int64(starts[4_001] - 4), "\(errors[1])")
        #expect(errors[1].description.contains("out of step"), "\(errors[1])")
        #expect(packets.prefix(2_100).map(\.bytes) == Array(data[..<2_100]))
        #expect(packets.dropFirst(2_100).prefix(1_899).map(\.bytes) == Array(data[2_101..<4_000]))
        #expect(packets.suffix(999).map(\.bytes) == Array(data[4_001...]))
        // The record that lost bytes is the damage, and the ones after it keep their numbers in the
        // file (the out-of-step reads took numbers up to 5,000 before); a pipe, whose checkpoints
        // are closer together (one among the out-of-step reads), numbers them the same.
        #expect(errors[1].packetNumber == 4_001, "\(errors[1])")
        #expect(packets.suffix(999).map(\.number) == Array(4_002...5_000))
        try Self.expectSameThroughAPipe(bytes)
    }

    /// Records read out of step were returned before the damage was found, and are read again:
    /// the error says how many (`outOfStepPackets`), so that a reader dropping them has every
    /// record of the file once, in order, with a filter that keeps some records back too. (They
    /// stayed counted: sniff's stats had a thousand packets more than this file holds.)
    @Test(arguments: [nil, "len >= 70"])
    func outOfStepPacketsAreCounted(filter: String?) throws {
        let (original, starts, data) = Self.longPcap(count: 5_000)
        var bytes = original
        bytes.removeSubrange((starts[4_000] + 20)..<(starts[4_000] + 24))
        let file = try Self.file(bytes)
        let source = try PcapSource(offlinePath: file.path)
        if let filter { try source.setFilter(filter) }
        var kept: [Int] = []
        var outOfStep = 0
        reading: for _ in 0..<20_000 {
            do {
                guard let packet = try source.next() else { break reading }
                kept.append(packet.number)
            } catch let error as PcapError {
                #expect(error.outOfStepPackets <= kept.count)
                kept.removeLast(min(error.outOfStepPackets, kept.count))
                outOfStep += error.outOfStepPackets
                if !error.resumes { break reading }
            }
        }
        #expect(outOfStep > 100, "libpcap read on out of step")
        let expected = data.indices.filter { filter == nil || data[$0].count >= 70 }.map { $0 + 1 }
        #expect(kept == expected, "\(kept.count) packets, \(expected.count) expected")
    }

    /// A filter that keeps nothing: packet numbers and checkpoints still count every record, so the
    /// damage is found at the same places.
    @Test func damageFarIntoALongFileBehindAFilter() throws {
        let (original, starts, _) = Self.longPcap(count: 5_000)
        var bytes = original
        for index in [1_500, 3_333] {
            bytes.replaceSubrange((starts[index] + 8)..<(starts[index] + 16), with: [UInt8](repeating: 0xFF, count: 8))
        }
        let file = try Self.file(bytes)
        let source = try PcapSource(offlinePath: file.path)
        try source.setFilter("tcp")
        let (packets, errors) = Self.readEverything(source)
        #expect(packets.isEmpty)
        #expect(errors.map(\.packetNumber) == [1_501, 3_334])
        #expect(errors.map(\.damagedFrom) == [Int64(starts[1_500]), Int64(starts[3_333])])
        #expect(errors.map(\.resumedAt) == [Int64(starts[1_501]), Int64(starts[3_334])])
    }

    /// Thousands of records that look odd (more captured than on the wire) before the damage: the
    /// checkpoint still moves on (taken at an odd record after twice the interval), and the
    /// damage is placed exactly; the search skips the odd records to the next sound one.
    @Test func damageAfterALongRunOfOddRecords() throws {
        let (original, starts, data) = Self.longPcap(count: 5_000) { index, captured in
            (1_000..<4_000).contains(index) ? captured - 1 : captured
        }
        var bytes = original
        bytes.replaceSubrange((starts[3_500] + 8)..<(starts[3_500] + 16), with: [UInt8](repeating: 0xFF, count: 8))
        let file = try Self.file(bytes)
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: file.path))
        try Self.expectOneDamage(errors, packet: 3_501, from: starts[3_500], resumedAt: starts[4_000])
        #expect(packets.map(\.bytes) == Array(data[..<3_500] + data[4_000...]))
        try Self.expectSameThroughAPipe(bytes)
    }

    /// pcapng, thousands of packet blocks with statistics blocks between them: the walk from the
    /// checkpoint counts packet blocks only, and passes the statistics block that libpcap read
    /// before the damaged packet block.
    @Test func pcapngDamageFarIn() throws {
        var file = Pcapng.header
        var starts: [Int] = []
        var data: [[UInt8]] = []
        for index in 0..<3_000 {
            let packet = [UInt8](repeating: UInt8(index % 251), count: 30 + index % 50)
            let micros = UInt64(1_700_000_000 + index / 10) * 1_000_000
            starts.append(file.count)
            data.append(packet)
            file += Pcapng.packet(packet, micros: micros)
            // An interface statistics block after every fifth packet, one just before the damage.
            if index % 5 == 4 { file += Pcapng.statistics(micros: micros) }
        }
        file.replaceSubrange((starts[2_500] + 4)..<(starts[2_500] + 8), with: Build.le32(13))
        let path = try Self.file(file, name: "capture.pcapng")
        let (packets, errors) = Self.readEverything(try PcapSource(offlinePath: path.path))
        try Self.expectOneDamage(errors, packet: 2_501, from: starts[2_500], resumedAt: starts[2_501])
        #expect(packets.map(\.bytes) == Array(data[..<2_500] + data[2_501...]))
        try Self.expectSameThroughAPipe(file, name: "capture.pcapng")
    }

    /// Hostile damage: hundreds of files, each with random bytes overwritten, inserted or cut out.
    /// Every read ends (the read count is bounded) and returns at most twice the file's bytes.
    /// When the last record lies wholly after all the damage, it is found again, unless a damaged
    /// header that still looks plausible made libpcap swallow it inside a garbage packet: the test
    /// counts those rounds and shows the figure.
    @Test func randomDamageAlwaysEnds() throws {
        let packets: [[UInt8]] = (0..<40).map { i in [UInt8](repeating: UInt8(i), count: 40 + (i * 37) % 300) }
        let original = try Self.pcap(packets)
        let lastStart = Self.recordOffset(packets.count - 1, packets)
        var random = SplitMix64(seed: 0x5EED)
        let file = TemporaryFile()
        var intactLast = 0
        var recovered = 0
        for round in 0..<300 {
            var bytes = original
            var damageEnd = 0  // just past the last damaged byte, in the current file
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let at = 24 + Int(random.next() % UInt64(bytes.count - 24))
                let length = 1 + Int(random.next() % 64)
                let garbage = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                switch random.next() % 3 {
                case 0:
                    let end = min(at + length, bytes.count)
                    bytes.replaceSubrange(at..<end, with: garbage[..<(end - at)])
                    damageEnd = max(damageEnd, end)
                case 1:
                    bytes.insert(contentsOf: garbage, at: at)
                    if damageEnd > at { damageEnd += length }
                    damageEnd = max(damageEnd, at + length)
                default:
                    let removed = min(at + length, bytes.count) - at
                    bytes.removeSubrange(at..<(at + removed))
                    if damageEnd > at { damageEnd = max(at, damageEnd - removed) }
                    damageEnd = max(damageEnd, at + 1)
                }
            }
            try file.write(bytes)
            let (read, errors) = Self.readEverything(try PcapSource(offlinePath: file.path), limit: 10_000)
            // Through a pipe: the same, in a third of the rounds.
            if round % 3 == 0 {
                let piped = Self.readEverything(try PipedInput.source(bytes), limit: 10_000)
                #expect(piped.packets == read && piped.errors.map(\.description) == errors.map(\.description),
                        "round \(round): through a pipe \(piped.packets.count) packets, \(piped.errors); from the file \(read.count), \(errors)")
            }
            // Records read out of step are read again after the failure that shows it, but no
            // stretch more than twice.
            #expect(read.reduce(0) { $0 + $1.bytes.count } <= 2 * bytes.count, "round \(round)")
            #expect(errors.count <= bytes.count / 16 + 1, "round \(round): \(errors.count) errors")
            let lastLength = original.count - lastStart
            if bytes.count - lastLength >= damageEnd, bytes.suffix(lastLength).elementsEqual(original.suffix(lastLength)) {
                intactLast += 1
                if read.last?.bytes == packets.last { recovered += 1 }
            }
        }
        print("randomDamageAlwaysEnds: the last packet, intact after the damage, read in \(recovered) of \(intactLast) rounds")
        #expect(intactLast > 100)
        #expect(recovered == intactLast)
    }
}

/// `PcapSource(offlinePath: "-")` reading a pipe that a thread fills with `bytes` (and then closes):
/// standard input is the pipe's read end while the source is made (it keeps a duplicate). One at a
/// time: file descriptor 0 belongs to the whole test process.
enum PipedInput {
    static let lock = NSLock()

    static func source(_ bytes: [UInt8]) throws -> PcapSource {
        // A reader that stops early closes the pipe: the writer gets EPIPE, not a signal.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        let writer = fds[1]
        let thread = Thread {
            bytes.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = write(writer, raw.baseAddress! + done, raw.count - done)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { break }
                    done += n
                }
            }
            close(writer)
        }
        thread.start()
        return try withStandardInput(fds[0]) { try PcapSource(offlinePath: "-") }
    }

    /// Runs `body` with `descriptor` as standard input (closed after), then puts stdin back.
    static func withStandardInput<T>(_ descriptor: Int32, _ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let saved = dup(0)
        dup2(descriptor, 0)
        close(descriptor)
        defer {
            dup2(saved, 0)
            close(saved)
        }
        return try body()
    }
}

/// A small seeded generator (SplitMix64), so the random test is the same on every run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
