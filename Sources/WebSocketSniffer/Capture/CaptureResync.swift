#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds where readable packets start again in a damaged capture file, so that one bad record does
/// not cost the rest of the file.
///
/// libpcap cannot skip a record whose header is damaged: the header is what says where the next
/// record starts. But it keeps no state between reads that damage spoils, so after a failed read
/// its stream can be moved (`fseeko`) to where a record starts and reading goes on. This finds that
/// place by looking at every byte offset after where the failed read started for a record header
/// that is plausible and is followed by another plausible one (or by the exact end of the file):
///
/// - pcap: timestamp fraction below one second, captured length at most 262,144 bytes (libpcap's
///   largest) and at most the wire length, wire length at most 16 MiB, and seconds within a day
///   before to a year after the first or the last packet read.
/// - pcapng: a known block type, a total length that is a multiple of 4, at least 12 and at most
///   16 MiB, repeated at the block's end; an Enhanced Packet Block's captured length fits in it.
///
/// A heuristic, the one a person with a hex editor would use; a plausible-looking stretch inside a
/// damaged record can fool it, and then the next failed read searches again. Every search starts
/// after the previous one's find, so reading always moves forward and ends.
///
/// For regular files, read where they lie, and for a pipe (standard input) read through a
/// `PipeSpool`, which holds a window of its recent bytes and reads on as a search needs.
struct CaptureResync {
    enum Format: Equatable {
        case pcap(bigEndian: Bool, nanoseconds: Bool)
        case pcapng(bigEndian: Bool)

        /// The pcap format (16-byte record headers) whose magic number, its first four bytes read
        /// little-endian, is `magic`; nil for any other.
        init?(pcapMagic magic: UInt32) {
            switch magic {
            case 0xA1B2_C3D4: self = .pcap(bigEndian: false, nanoseconds: false)
            case 0xA1B2_3C4D: self = .pcap(bigEndian: false, nanoseconds: true)
            case 0xD4C3_B2A1: self = .pcap(bigEndian: true, nanoseconds: false)
            case 0x4D3C_B2A1: self = .pcap(bigEndian: true, nanoseconds: true)
            default: return nil
            }
        }

        /// Bytes a record or block header takes before it can be judged.
        var headerSize: Int {
            if case .pcap = self { return 16 }
            return 8
        }
    }

    /// Where the capture's bytes are read from.
    enum Bytes {
        /// A regular file of this size, read with pread (the stream's own position is left alone).
        case file(descriptor: Int32, size: Int64)
        /// A pipe, through the window its spool holds.
        case pipe(PipeSpool)

        /// Up to `count` bytes at `offset` (fewer at the end, none past it); nil if they cannot be
        /// read (a pipe's window no longer reaches back to them).
        func read(at offset: Int64, count: Int) -> [UInt8]? {
            switch self {
            case .file(let fd, let size): return CaptureResync.read(fd, at: offset, count: count, fileSize: size)
            case .pipe(let spool): return spool.bytes(at: offset, count: count)
            }
        }

        /// True if every byte before `offset` is there (a pipe reads on to see).
        func reaches(_ offset: Int64) -> Bool {
            switch self {
            case .file(_, let size): return offset <= size
            case .pipe(let spool): return spool.reaches(offset)
            }
        }
    }

    let bytes: Bytes
    private(set) var format: Format
    /// pcapng: blocks are judged in the byte order of the section being read (after `cat
    /// little.pcapng big.pcapng`, the second's), not only the first section's.
    mutating func readSection(bigEndian: Bool) {
        if case .pcapng = format { format = .pcapng(bigEndian: bigEndian) }
    }

    /// Where the first record (pcap) or the block after the section header (pcapng) starts.
    let dataStart: Int64
    /// Searches start after this offset (the last place found), so a find that fails again is not
    /// found again and reading always moves forward.
    private var lastFound: Int64 = -1
    /// pcapng: the last place found is a block in the other byte order than the section being
    /// read, not a section header: a section whose header was damaged (nothing else says its
    /// order). Its reader starts a section there, with no interfaces.
    private(set) var foundInOtherOrder = false

    /// Where a record starts, how many records (pcapng: packet blocks) came before it, and where
    /// the last record that looked sound (`looksSound`) at or before it starts.
    struct Checkpoint {
        var offset: Int64
        var records: Int
        var lastSound: Int64
        /// When `lastSound` is before `offset` and known: that record's number in the file (records
        /// counted from the first, as libpcap read them) and where it claims to end.
        var sound: SoundRecord?

        /// A record that looks sound.
        init(offset: Int64, records: Int) {
            self.init(offset: offset, records: records, lastSound: offset)
        }

        init(offset: Int64, records: Int, lastSound: Int64, sound: SoundRecord? = nil) {
            self.offset = offset
            self.records = records
            self.lastSound = lastSound
            self.sound = sound
        }
    }

    /// Records between checkpoints: where a failed read started is found by following about this
    /// many records from the last one. A checkpoint is taken at a record that looks sound, or
    /// after twice this many records at any record (a file whose records all look odd would
    /// otherwise be followed from its start after every failure). A pipe's are closer together,
    /// so that its window (`PipeSpool.defaultMaxHeld`, 32 MiB) reaches back to the last one even with
    /// records of the largest size (64 of 256 KiB).
    var checkpointInterval: Int {
        if case .pipe = bytes { return 64 }
        return 1_024
    }

    /// Where `walk` stopped, and what it saw of the records libpcap read.
    struct Walk {
        /// Where the next record starts (where the failed read started).
        var next: Int64
        /// Where the last sound record among them starts (pcap; the checkpoint's `lastSound` if none).
        var lastSound: Int64
        /// The last sound record's number in the file (records counted from the first, as libpcap
        /// read them; pcapng: packet blocks up to the last block) and where it claims to end: from
        /// the walk, else the checkpoint's; nil if neither knows.
        var sound: SoundRecord?
    }

    /// The last record that looked sound before a failed read: its number in the file (records
    /// counted from the first, as libpcap read them), where it claims to end, and where it would
    /// end if its captured length were its length on the wire (pcap; a length cut by damage, the
    /// rest of the record left behind, ends there).
    struct SoundRecord {
        var number: Int
        var end: Int64
        var wireEnd: Int64
    }

    /// Follows `records` records (pcapng: packet blocks, passing other blocks) from `checkpoint`, as
    /// libpcap did: where the next record starts (where the failed read started) and where the last
    /// sound record among them (pcap; the checkpoint's `lastSound` if none) starts. Stops early at
    /// `limit` or where the file does not hold together.
    func walk(from checkpoint: Checkpoint, records: Int, limit: Int64) -> Walk {
        var at = checkpoint.offset
        var walk = Walk(next: at, lastSound: checkpoint.lastSound, sound: checkpoint.sound)
        var left = records
        while left > 0 && at < limit {
            switch format {
            case .pcap(let bigEndian, let nanoseconds):
                guard let h = bytes.read(at: at, count: 16), h.count == 16 else { walk.next = at; return walk }
                let captured = Self.u32(h, 8, bigEndian: bigEndian)
                let fraction = Int64(Self.u32(h, 4, bigEndian: bigEndian)) * (nanoseconds ? 1 : 1_000)
                let end = at + 16 + Int64(captured)
                let wire = Self.u32(h, 12, bigEndian: bigEndian)
                if Self.looksSound(capturedLength: captured, wireLength: wire, nanoseconds: fraction) {
                    walk.lastSound = at
                    walk.sound = SoundRecord(number: checkpoint.records + records - left + 1, end: end, wireEnd: at + 16 + Int64(wire))
                }
                at = end
                left -= 1
            case .pcapng(let bigEndian):
                guard let h = bytes.read(at: at, count: 8), h.count == 8 else { walk.next = at; return walk }
                let type = Self.u32(h, 0, bigEndian: bigEndian)
                let length = Self.u32(h, 4, bigEndian: bigEndian)
                guard length >= 12, length % 4 == 0 else { walk.next = at; return walk }
                if type == 2 || type == 3 || type == 6 { left -= 1 }
                walk.lastSound = at
                walk.sound = SoundRecord(number: checkpoint.records + records - left, end: at + Int64(length), wireEnd: at + Int64(length))
                at += Int64(length)
            }
        }
        // libpcap passes other blocks before the packet block it failed on: the failure is there.
        if case .pcapng(let bigEndian) = format {
            while at < limit, let h = bytes.read(at: at, count: 8), h.count == 8 {
                let type = Self.u32(h, 0, bigEndian: bigEndian)
                let length = Self.u32(h, 4, bigEndian: bigEndian)
                guard type != 2, type != 3, type != 6, length >= 12, length % 4 == 0, at + Int64(length) <= limit else { break }
                at += Int64(length)
            }
        }
        walk.next = at
        return walk
    }

    /// How far back from a failed read a search may start (see `looksSound`).
    static let lookBack: Int64 = 1 << 20

    /// A record libpcap read whose header is not impossible but not right either: a fraction of a
    /// second of a second or more, more bytes captured than were on the wire, or a wire length
    /// past 16 MiB. libpcap takes such a record when a damaged length has put it out of step (it
    /// reads the end of one record and the start of the next as a header); the records from there
    /// to the next failure are suspect, and the search after that failure starts before them.
    static func looksSound(capturedLength: UInt32, wireLength: UInt32, nanoseconds: Int64) -> Bool {
        nanoseconds >= 0 && nanoseconds < 1_000_000_000 && capturedLength <= wireLength && wireLength <= maxWire
    }

    static let maxCaptured: UInt32 = 262_144
    static let maxWire: UInt32 = 16 << 20
    static let maxBlock: UInt32 = 16 << 20

    /// Nil unless `file` is a regular file in a format this can search (pcap with 16-byte record
    /// headers, or pcapng).
    init?(file: UnsafeMutablePointer<FILE>) {
        let fd = fileno(file)
        var info = stat()
        guard fd >= 0, fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        self.init(bytes: .file(descriptor: fd, size: Int64(info.st_size)))
    }

    /// Nil unless the pipe's stream is in a format this can search (its start is still held: made
    /// before anything is let go).
    init?(pipe spool: PipeSpool) {
        self.init(bytes: .pipe(spool))
    }

    private init?(bytes: Bytes) {
        self.bytes = bytes
        guard let head = bytes.read(at: 0, count: 12), head.count == 12 else { return nil }
        let magicLE = Self.u32(head, 0, bigEndian: false)
        if let pcap = Format(pcapMagic: magicLE) {
            format = pcap
        } else if magicLE == 0x0A0D_0D0A {
            let bigEndian = Self.u32(head, 8, bigEndian: true) == 0x1A2B_3C4D
            format = .pcapng(bigEndian: bigEndian)
        } else {
            return nil  // other variants (such as 24-byte record headers) are not searched
        }
        switch format {
        case .pcap:
            dataStart = 24
        case .pcapng(let bigEndian):
            dataStart = Int64(Self.u32(head, 4, bigEndian: bigEndian))
        }
    }

    /// The offset of the first plausible record at or after `start` (and after the last one found),
    /// or nil if there is none before the end of the file.
    ///
    /// - Parameters: firstSeconds, lastSeconds: the first and last packets' capture times (pcap: a
    ///   plausible record's time is near one of them), nil if no packet was read.
    mutating func search(from start: Int64, firstSeconds: Int64?, lastSeconds: Int64?) -> Int64? {
        let times = TimeWindow(first: firstSeconds, last: lastSeconds)
        var offset = max(start, lastFound + 1, dataStart)
        // A pipe: from the earliest byte still held, at the latest.
        if case .pipe(let spool) = bytes { offset = max(offset, spool.base) }
        let header = format.headerSize
        let chunk = 1 << 16
        while bytes.reaches(offset + Int64(header)) {
            // A pipe's window need not hold what the search has passed over.
            if case .pipe(let spool) = bytes {
                spool.keepFrom = offset
                spool.release(before: offset)
            }
            // (pcapng: 12 bytes at each candidate, for a section header's byte-order magic.)
            guard let window = bytes.read(at: offset, count: chunk + max(header, 12)) else { return nil }
            let candidates = min(window.count - header + 1, chunk)
            guard candidates > 0 else { return nil }
            for i in 0..<candidates {
                let at = offset + Int64(i)
                if quickCheck(window, i, times), confirm(at: at, times) {
                    lastFound = at
                    foundInOtherOrder = false
                    return at
                }
                // pcapng: a block in the other byte order, two of them one after the other (the
                // section whose header was damaged: its blocks, read in this order, are lost).
                if case .pcapng(let big) = format, Self.sectionOrder(window, i) == nil,
                   quickCheck(window, i, times, order: !big), confirm(at: at, times, order: !big) {
                    lastFound = at
                    foundInOtherOrder = true
                    return at
                }
            }
            offset += Int64(candidates)
        }
        return nil
    }

    /// Capture times a plausible record may have: from a day before to a year after the first or
    /// the last packet's (a record libpcap took that held garbage can have any time, so the first
    /// packet's counts too). Anything when no packet was read.
    struct TimeWindow {
        var first: Int64?
        var last: Int64?

        func allows(_ seconds: Int64) -> Bool {
            guard first != nil || last != nil else { return true }
            for reference in [first, last].compactMap({ $0 }) {
                if seconds >= reference - 86_400 && seconds <= reference + 366 * 86_400 { return true }
            }
            return false
        }
    }

    // MARK: Checks

    /// pcapng: the byte order a section header at `i` in `bytes` states by its magic; nil when no
    /// section header with a valid magic is there. A section header is found in either byte order
    /// (its type reads the same both ways), so that damage just before a section in the other
    /// order than the one being read finds that section, rather than its blocks read three bytes
    /// off in the wrong order (a type below 256 followed by three zero bytes passes for one).
    static func sectionOrder(_ bytes: [UInt8], _ i: Int) -> Bool? {
        guard i + 12 <= bytes.count, u32(bytes, i, bigEndian: false) == 0x0A0D_0D0A else { return nil }
        switch u32(bytes, i + 8, bigEndian: true) {
        case 0x1A2B_3C4D: return true
        case 0x4D3C_2B1A: return false
        default: return nil
        }
    }

    /// The header at `i` in `bytes` alone looks like a record's (pcapng: a block's, in `order`, or
    /// the order a section header there states).
    private func quickCheck(_ bytes: [UInt8], _ i: Int, _ times: TimeWindow, order: Bool? = nil) -> Bool {
        switch format {
        case .pcap(let bigEndian, let nanoseconds):
            let seconds = Int64(Self.u32(bytes, i, bigEndian: bigEndian))
            let fraction = Self.u32(bytes, i + 4, bigEndian: bigEndian)
            let captured = Self.u32(bytes, i + 8, bigEndian: bigEndian)
            let wire = Self.u32(bytes, i + 12, bigEndian: bigEndian)
            guard fraction < (nanoseconds ? 1_000_000_000 : 1_000_000),
                  captured <= Self.maxCaptured, captured <= wire, wire > 0, wire <= Self.maxWire
            else { return false }
            return times.allows(seconds)
        case .pcapng(let bigEndian):
            let big = Self.sectionOrder(bytes, i) ?? order ?? bigEndian
            let type = Self.u32(bytes, i, bigEndian: big)
            let length = Self.u32(bytes, i + 4, bigEndian: big)
            return Self.knownBlockTypes.contains(type) && length >= 12 && length % 4 == 0 && length <= Self.maxBlock
        }
    }

    /// The record at `at` holds together and the next one (or the end of the file) follows it
    /// (pcapng: in the byte order of the section the first one is in, or starts).
    private func confirm(at: Int64, _ times: TimeWindow, order given: Bool? = nil) -> Bool {
        let order = blockOrder(at: at, default: given)
        guard let next = wholeRecord(at: at, order: order) else { return false }
        if !bytes.reaches(next + 1) { return true }  // the end of the capture
        let size = format.headerSize
        guard let header = bytes.read(at: next, count: size),
              header.count == size, quickCheck(header, 0, times, order: order)
        else { return false }
        return wholeRecord(at: next, order: blockOrder(at: next, default: order)) != nil
    }

    /// pcapng: the byte order of the block at `at`: the one a section header there states, else
    /// `default`. Nil for pcap.
    private func blockOrder(at: Int64, default order: Bool?) -> Bool? {
        guard case .pcapng = format else { return nil }
        return bytes.read(at: at, count: 12).flatMap { Self.sectionOrder($0, 0) } ?? order
    }

    /// Where the record at `at` ends, if it fits in the file and (pcapng) its trailing length
    /// matches; nil otherwise.
    private func wholeRecord(at: Int64, order: Bool? = nil) -> Int64? {
        switch format {
        case .pcap(let bigEndian, _):
            guard let header = bytes.read(at: at, count: 16), header.count == 16 else { return nil }
            let end = at + 16 + Int64(Self.u32(header, 8, bigEndian: bigEndian))
            return bytes.reaches(end) ? end : nil
        case .pcapng(let sectionBigEndian):
            let bigEndian = order ?? sectionBigEndian
            guard let header = bytes.read(at: at, count: 28), header.count >= 8 else { return nil }
            let type = Self.u32(header, 0, bigEndian: bigEndian)
            let length = Self.u32(header, 4, bigEndian: bigEndian)
            let end = at + Int64(length)
            guard bytes.reaches(end),
                  let trailer = bytes.read(at: end - 4, count: 4), trailer.count == 4,
                  Self.u32(trailer, 0, bigEndian: bigEndian) == length
            else { return nil }
            if type == 6 {  // Enhanced Packet Block: 28 bytes of fields, the packet, the trailer.
                guard header.count == 28, length >= 32 else { return nil }
                let captured = Self.u32(header, 20, bigEndian: bigEndian)
                guard captured <= length - 32 else { return nil }
            }
            return end
        }
    }

    /// Section header, interface description, packet (obsolete), simple packet, name resolution,
    /// interface statistics, enhanced packet, decryption secrets, custom blocks.
    static let knownBlockTypes: Set<UInt32> = [0x0A0D_0D0A, 1, 2, 3, 4, 5, 6, 10, 0xBAD, 0x4000_0BAD]

    // MARK: Bytes

    static func u32(_ bytes: [UInt8], _ i: Int, bigEndian: Bool) -> UInt32 {
        let b0 = UInt32(bytes[i]), b1 = UInt32(bytes[i + 1]), b2 = UInt32(bytes[i + 2]), b3 = UInt32(bytes[i + 3])
        return bigEndian ? (b0 << 24 | b1 << 16 | b2 << 8 | b3) : (b3 << 24 | b2 << 16 | b1 << 8 | b0)
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file); nil if reading fails. pread
    /// leaves the stream's own position alone.
    static func read(_ fd: Int32, at offset: Int64, count: Int, fileSize: Int64) -> [UInt8]? {
        let n = Int(max(0, min(Int64(count), fileSize - offset)))
        guard offset >= 0, n > 0 else { return n == 0 && offset >= 0 ? [] : nil }
        var bytes = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, n - got, off_t(offset) + off_t(got)) }
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { break }
            got += r
        }
        return got == n ? bytes : (got > 0 ? Array(bytes[..<got]) : nil)
    }
}
