import Foundation
import Testing
@testable import WebSocketSniffer

/// A regular pcap file's records are read by `DirectPcapRecords`, not libpcap, wherever libpcap
/// would return them unchanged. Held here to what the same file gives read by libpcap alone:
/// every packet, every error, the same packet numbers and the same places after damage.
@Suite struct DirectPcapReadTests {
    /// What a whole read of `path` gives, packets and errors in the order they came.
    enum Read: Equatable {
        case packet(ReadPacket)
        case error(String, damagedFrom: Int64?, resumedAt: Int64?, outOfStep: Int)
    }

    static func readAll(_ path: String, direct: Bool) throws -> [Read] {
        let source = try PcapSource(offlinePath: path, readsRecordsDirectly: direct)
        var reads: [Read] = []
        for _ in 0..<200_000 {
            do {
                guard let p = try source.next() else { return reads }
                reads.append(.packet(ReadPacket(number: p.number, seconds: p.seconds, nanoseconds: p.nanoseconds,
                                                wireLength: p.wireLength, bytes: p.bytes)))
            } catch let error as PcapError {
                reads.append(.error(error.description, damagedFrom: error.damagedFrom, resumedAt: error.resumedAt,
                                    outOfStep: error.outOfStepPackets))
                if !error.resumes { return reads }
            }
        }
        Issue.record("still reading after 200,000 reads")
        return reads
    }

    /// A pcap file (format 2.4, this machine's byte order) of `count` records: sizes mostly up to
    /// 1,600 bytes, some of tens of kilobytes and a few of the largest size (262,144), so that
    /// records lie across every refill of the reader's buffer; times and wire lengths anything,
    /// among them seconds past 2^31 and fractions past a second (libpcap passes them through).
    static func capture(count: Int, nanoseconds: Bool, snaplen: UInt32 = 262_144, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        var bytes = Build.le32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4) + [2, 0, 4, 0] + Build.le32(0) + Build.le32(0)
            + Build.le32(snaplen) + Build.le32(1)
        for index in 0..<count {
            let pick = random.next() % 100
            let size = pick < 90 ? Int(random.next() % 1_601) : pick < 98 ? Int(random.next() % 70_000) : 262_144
            let seconds = random.next() % 8 == 0 ? UInt32(truncatingIfNeeded: random.next()) : 1_700_000_000 + UInt32(index)
            let fraction = random.next() % 8 == 0 ? UInt32(truncatingIfNeeded: random.next()) : UInt32(random.next() % 1_000_000)
            let wire = random.next() % 8 == 0 ? UInt32(truncatingIfNeeded: random.next()) : UInt32(size)
            bytes += Build.le32(seconds) + Build.le32(fraction) + Build.le32(UInt32(size)) + Build.le32(wire)
            bytes += (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
        }
        return bytes
    }

    @Test(arguments: [false, true])
    func everyRecordAsLibpcapGivesIt(nanoseconds: Bool) throws {
        let file = TemporaryFile()
        try file.write(Self.capture(count: 600, nanoseconds: nanoseconds, seed: nanoseconds ? 7 : 8))
        let direct = try Self.readAll(file.path, direct: true)
        let libpcap = try Self.readAll(file.path, direct: false)
        #expect(direct.count == 600)
        #expect(direct == libpcap)
    }

    /// A snapshot length smaller than some records: those are left to libpcap, which cuts them to
    /// the snapshot length; the rest are read directly, and the whole read is the same.
    @Test func recordsLongerThanTheSnapshotLengthAreCutAsLibpcapCutsThem() throws {
        let file = TemporaryFile()
        try file.write(Self.capture(count: 300, nanoseconds: false, snaplen: 1_000, seed: 9))
        let direct = try Self.readAll(file.path, direct: true)
        #expect(direct == (try Self.readAll(file.path, direct: false)))
        let cut = direct.filter { if case .packet(let p) = $0 { p.bytes.count == 1_000 } else { false } }
        #expect(cut.count > 10, "records longer than the snapshot length came cut to it")
    }

    /// Damage anywhere: bytes overwritten at random places (record headers among them) and the
    /// file cut short at a random place. Whatever libpcap alone makes of the file (errors, where
    /// it resumes, packet numbers), reading directly makes the same.
    @Test(arguments: 0..<24)
    func damagedFilesReadTheSame(seed: UInt64) throws {
        var random = SplitMix64(seed: 0xD1_2EC7 &+ seed)
        var bytes = Self.capture(count: 160, nanoseconds: seed % 2 == 0, seed: seed)
        for _ in 0..<(1 + random.next() % 6) {
            let at = 24 + Int(random.next() % UInt64(bytes.count - 40))
            for k in 0..<Int(1 + random.next() % 12) { bytes[at + k] = UInt8(truncatingIfNeeded: random.next()) }
        }
        if random.next() % 2 == 0 { bytes.removeLast(Int(random.next() % UInt64(bytes.count / 3))) }
        let file = TemporaryFile()
        try file.write(bytes)
        let direct = try Self.readAll(file.path, direct: true)
        let libpcap = try Self.readAll(file.path, direct: false)
        #expect(direct == libpcap, "seed \(seed)")
    }

    /// A file in the other byte order, or of an older format, is left to libpcap whole.
    @Test func otherByteOrderAndOlderFormatsAreLibpcaps() throws {
        var swapped = Self.capture(count: 5, nanoseconds: false, seed: 3)
        for start in stride(from: 0, to: 24, by: 4) where start != 4 { swapped[start..<(start + 4)].reverse() }
        swapped[4..<6].reverse()
        swapped[6..<8].reverse()
        var older = Self.capture(count: 5, nanoseconds: false, seed: 3)
        older[6] = 3  // 2.3: libpcap swaps the two lengths when the captured one is the larger
        for bytes in [swapped, older] {
            let file = TemporaryFile()
            try file.write(bytes)
            let source = try PcapSource(offlinePath: file.path)
            #expect(source.readsRecordsDirectly == false)
            #expect(try Self.readAll(file.path, direct: true) == (try Self.readAll(file.path, direct: false)))
        }
        let plain = TemporaryFile()
        try plain.write(Self.capture(count: 5, nanoseconds: false, seed: 3))
        #expect(try PcapSource(offlinePath: plain.path).readsRecordsDirectly)
    }

    /// A file that grows while it is read (a capture still being written): records written after
    /// the reader's buffer was filled are read too, up to the end as it is when the reader gets
    /// there.
    @Test func aFileThatGrowsIsReadOn() throws {
        let file = TemporaryFile()
        let whole = Self.capture(count: 40, nanoseconds: true, seed: 11)
        let recordEnds = Self.recordEnds(whole)
        let half = recordEnds[19]
        try file.write(Array(whole[..<half]))
        let source = try PcapSource(offlinePath: file.path)
        var numbers: [Int] = []
        for _ in 0..<10 { if let p = try source.next() { numbers.append(p.number) } }
        #expect(numbers == Array(1...10))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(whole[half...]))
        try handle.close()
        while let p = try source.next() { numbers.append(p.number) }
        #expect(numbers == Array(1...40))
    }

    /// Where each record of a sound file ends.
    static func recordEnds(_ bytes: [UInt8]) -> [Int] {
        var ends: [Int] = []
        var at = 24
        while at + 16 <= bytes.count {
            let length = Int(bytes[at + 8]) | Int(bytes[at + 9]) << 8 | Int(bytes[at + 10]) << 16 | Int(bytes[at + 11]) << 24
            at += 16 + length
            ends.append(at)
        }
        return ends
    }
}
