internal import CPcap
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The records of a regular pcap file, read into a buffer of its own and handed out where they
/// lie in it, instead of through libpcap, which reads each record with two `fread` calls (each
/// locking the stream) and copies every byte twice (into the stdio buffer, then into its own).
///
/// Only records libpcap would return unchanged are read here: those of a file in this machine's
/// byte order, of format 2.4, whose captured length is within the file's snapshot length and
/// libpcap's limit of 262,144 bytes, and which lie whole in the file. `next` declines anything else
/// (a damaged record, the end of the file) and libpcap reads it, from the same place
/// (`PcapSource` moves its stream there first), so that it fails, or does not, in its own words,
/// as before. The header, the times (sign-extended, microseconds scaled to nanoseconds) and the
/// bytes given are the ones libpcap would give. The file is read with pread, which leaves the
/// stream's position alone; a record's bytes stay valid until the next call, as libpcap's do.
final class DirectPcapRecords {
    private let descriptor: Int32
    private let buffer: UnsafeMutableRawPointer
    /// The file's bytes in `buffer`: `count` of them, from `start`.
    private var start: Int64 = 0
    private var count = 0
    /// Where the next record starts.
    private(set) var offset: Int64
    /// Whether libpcap's stream is at `offset` (false once a record was read here).
    var streamInStep = true
    /// The largest captured length read here.
    private let largest: UInt32
    /// 1000 for a file in microseconds (libpcap is asked for nanoseconds), 1 for nanoseconds.
    private let scale: Int
    /// Set when a read failed or the stream's position was lost: libpcap reads the rest.
    private var disabled = false

    /// The buffer, filled whole by each read, from the start of the record that did not fit: half
    /// a MiB (a record of the largest size, and a quarter of a MiB more), small enough to stay in
    /// the core's cache between the kernel's copy into it and the reading thread's copy out; a
    /// 100 MB capture takes about 200 reads.
    static let capacity = 256 << 10 + 16 + 262_144
    private static let recordHeaderSize = 16

    /// Link types whose packets libpcap hands over as they are in the file (it rewrites USB
    /// headers, and byte-swapped files' pseudo-headers).
    private static let plainLinkTypes: Set<Int32> = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276]

    /// Reads the records after the file header libpcap read from `file`, at `file`'s position;
    /// nil if this file is not one whose records can be read here.
    init?(file: UnsafeMutablePointer<FILE>, pcap: OpaquePointer) {
        guard pcap_is_swapped(pcap) == 0, Self.plainLinkTypes.contains(pcap_datalink(pcap)) else { return nil }
        let descriptor = fileno(file)
        var info = stat()
        guard descriptor >= 0, fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let at = Int64(ftello(file))
        var head = (UInt32(0), UInt16(0), UInt16(0))
        guard at == 24, withUnsafeMutableBytes(of: &head, { pread(descriptor, $0.baseAddress, 8, 0) }) == 8 else { return nil }
        // (In this machine's byte order, which pcap_is_swapped said it is.)
        guard case .pcap(_, let nanoseconds)? = CaptureResync.Format(pcapMagic: UInt32(littleEndian: head.0)) else { return nil }
        scale = nanoseconds ? 1 : 1000
        // Before 2.4 libpcap may swap the two lengths; after it, it refuses the file.
        guard head.1 == 2, head.2 == 4 else { return nil }
        self.descriptor = descriptor
        offset = at
        largest = UInt32(min(max(Int(pcap_snapshot(pcap)), 0), 262_144))
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.capacity, alignment: 64)
    }

    deinit {
        buffer.deallocate()
    }

    /// The next record, as libpcap's `pcap_pkthdr` and a pointer to its bytes; false (and nothing
    /// moved) when libpcap must read it, or when `declined` (a break was asked for: libpcap's read
    /// notices it).
    func next(_ header: inout pcap_pkthdr, _ bytes: inout UnsafePointer<UInt8>?, unless declined: Bool) -> Bool {
        if disabled || declined { return false }
        var at = Int(truncatingIfNeeded: offset &- start)
        if offset < start || at &+ Self.recordHeaderSize > count {
            guard fill(from: offset, atLeast: Self.recordHeaderSize) else { return false }
            at = 0
        }
        var base = UnsafeRawPointer(buffer) + at
        let captured = base.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        guard captured <= largest else { return false }
        let length = Self.recordHeaderSize &+ Int(captured)
        if at &+ length > count {
            guard fill(from: offset, atLeast: length) else { return false }
            base = UnsafeRawPointer(buffer)
        }
        header.ts.tv_sec = Int(Int32(bitPattern: base.loadUnaligned(as: UInt32.self)))
        header.ts.tv_usec = Int(Int32(bitPattern: base.loadUnaligned(fromByteOffset: 4, as: UInt32.self))) &* scale
        header.caplen = captured
        header.len = base.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
        bytes = (base + Self.recordHeaderSize).assumingMemoryBound(to: UInt8.self)
        offset &+= Int64(length)
        streamInStep = false
        return true
    }

    /// libpcap read on from `offset` (or was moved, after damage): the next record is where its
    /// stream is.
    func follow(_ file: UnsafeMutablePointer<FILE>) {
        let at = Int64(ftello(file))
        if at >= 0 { offset = at } else { disabled = true }
        streamInStep = true
    }

    /// Fills the buffer from `from`; false if the file does not hold `atLeast` bytes there (its
    /// end, or a file cut short) or reading fails.
    private func fill(from: Int64, atLeast needed: Int) -> Bool {
        start = from
        count = 0
        while count < needed {
            let got = pread(descriptor, buffer + count, Self.capacity - count, off_t(from) + off_t(count))
            if got < 0 && errno == EINTR { continue }
            if got < 0 { disabled = true }
            if got <= 0 { return false }
            count += got
        }
        return true
    }
}
