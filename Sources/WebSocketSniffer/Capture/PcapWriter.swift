internal import CPcap
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes packets to a pcap file (`wsctl sniff -w`), with nanosecond timestamps.
///
/// The file is complete after `close()` (or when the writer is released); `flush()` pushes buffered packets
/// to the file so another program can read what was written so far.
public final class PcapWriter {
    private let deadHandle: PcapHandle
    private var dumper: OpaquePointer?
    /// The file's link-layer header type.
    public let linkType: Int32
    /// The snapshot length recorded in the file header.
    public let snapshotLength: Int
    /// Packets longer than `snapshotLength` written cut to it (a reader would refuse the file otherwise).
    public private(set) var packetsCut = 0
    /// The path given to `init`; `"-"` is standard output.
    public let path: String

    /// Creates (or truncates) `path`; `"-"` writes to standard output.
    ///
    /// - Parameters:
    ///   - linkType: a DLT_ value, normally the source's `linkType`.
    ///   - snaplen: the file header's snapshot length. Readers reject packets longer than it, so keep the
    ///     default (262,144, libpcap's maximum for most link types) unless the packets are known to be shorter.
    /// - Throws: `PcapError` of kind `.write`.
    public init(path: String, linkType: Int32, snaplen: Int = 262_144) throws {
        guard let dead = pcap_open_dead_with_tstamp_precision(linkType, Int32(clamping: snaplen), UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else { throw PcapError(kind: .write, message: "\(path): link type \(linkType) cannot be written") }
        deadHandle = PcapHandle(dead)
        guard let dumper = pcap_dump_open(dead, path) else {
            throw PcapError(kind: .write, message: deadHandle.lastError)
        }
        self.dumper = dumper
        self.linkType = linkType
        self.snapshotLength = snaplen
        self.path = path
    }

    /// A writer for the packets of `source`: same link type and snapshot length.
    public convenience init(path: String, matching source: PcapSource) throws {
        try self.init(path: path, linkType: source.linkType, snaplen: max(source.snapshotLength, 1))
    }

    deinit {
        if let dumper { pcap_dump_close(dumper) }
    }

    /// Writes a packet read from a `PcapSource`, with its timestamp and wire length.
    public func write(_ packet: PcapPacket) throws {
        try write(packet.data, seconds: packet.seconds, nanoseconds: packet.nanoseconds, wireLength: packet.wireLength)
    }

    /// Writes one packet.
    ///
    /// - Parameter wireLength: the length on the wire; nil means the packet was captured whole.
    public func write(_ data: UnsafeRawBufferPointer, seconds: Int64, nanoseconds: Int32, wireLength: Int? = nil) throws {
        guard let dumper else { throw PcapError(kind: .write, message: "\(path): the writer is closed") }
        var header = pcap_pkthdr()
        header.ts.tv_sec = .init(seconds)
        header.ts.tv_usec = .init(nanoseconds)
        // Readers refuse a record longer than the file's snapshot length (libpcap: at most 262,144
        // bytes for most link types), and a pcapng file may hold longer ones: such a packet is
        // written cut at the snapshot length, its wire length kept, as a capture with it would
        // have cut it; `packetsCut` counts them.
        let kept = min(data.count, max(snapshotLength, 1))
        if kept < data.count { packetsCut += 1 }
        header.caplen = UInt32(kept)
        header.len = UInt32(clamping: max(wireLength ?? data.count, data.count))
        let base = data.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        pcap_dump(UnsafeMutablePointer<UInt8>(dumper), &header, base)
        if let file = pcap_dump_file(dumper), ferror(file) != 0 {
            throw failed(errno)
        }
    }

    /// Writes one packet held in an array.
    public func write(_ bytes: [UInt8], seconds: Int64 = 0, nanoseconds: Int32 = 0, wireLength: Int? = nil) throws {
        try bytes.withUnsafeBytes { try write($0, seconds: seconds, nanoseconds: nanoseconds, wireLength: wireLength) }
    }

    /// Pushes buffered packets to the file.
    public func flush() throws {
        guard let dumper else { return }
        if pcap_dump_flush(dumper) != 0 {
            throw failed(errno)
        }
    }

    /// The error for a failed write, flush or close: the path and the system's reason.
    private func failed(_ code: Int32, _ more: String = "") -> PcapError {
        PcapError(kind: .write, message: "\(path): \(String(cString: strerror(code)))\(more)")
    }

    /// Flushes and closes the file. Later writes throw; closing again does nothing.
    ///
    /// - Throws: `PcapError` of kind `.write` when the last packets could not be written (a full disk,
    ///   a file size limit), or when any earlier write had failed: the file is then incomplete.
    public func close() throws {
        guard let dumper else { return }
        self.dumper = nil
        var failure: Int32 = 0
        if let file = pcap_dump_file(dumper) {
            if fflush(file) != 0 { failure = errno }
            if failure == 0, ferror(file) != 0 { failure = EIO }
            // The descriptor's own close can report what was only found on the way to the disk
            // (NFS, quotas): close a duplicate first, which reports it without pulling the FILE's
            // descriptor from under pcap_dump_close.
            let copy = dup(fileno(file))
            if copy >= 0, closeDescriptor(copy) != 0, failure == 0 { failure = errno }
        }
        pcap_dump_close(dumper)
        if failure != 0 {
            throw failed(failure, "; the file is incomplete")
        }
    }
}

/// close(2), out of reach of `PcapWriter.close()`'s name.
private func closeDescriptor(_ fd: Int32) -> Int32 { close(fd) }
