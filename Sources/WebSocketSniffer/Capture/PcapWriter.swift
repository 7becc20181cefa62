internal import CPcap
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes packets to a capture file (`wsctl sniff -w`), with nanosecond timestamps: pcap, through
/// libpcap, or pcapng, written here (libpcap writes no pcapng).
///
/// A pcap file holds one link type. A pcapng file holds any number: an interface description is
/// written for each link type before its first packet, so link types met late (a pcapng pipe whose
/// later sections describe other interfaces) are saved too.
///
/// The file is complete after `close()` (or when the writer is released); `flush()` pushes buffered packets
/// to the file so another program can read what was written so far.
public final class PcapWriter {
    public enum Format: Sendable, Equatable {
        case pcap
        case pcapng
    }

    private enum Sink {
        case libpcap(dead: PcapHandle, dumper: OpaquePointer)
        case pcapng(UnsafeMutablePointer<FILE>)
    }
    private var sink: Sink?
    public let format: Format
    /// The file's link-layer header type (pcap); in pcapng, that of the packets written without one.
    public let linkType: Int32
    /// The snapshot length recorded in the file header (pcapng: in each interface description).
    public let snapshotLength: Int
    /// Packets longer than `snapshotLength` written cut to it (a reader would refuse the file otherwise).
    public private(set) var packetsCut = 0
    /// pcapng: packets whose time was written as the nearest one the file could hold (see
    /// `maxInterfaces`).
    public private(set) var timesClamped = 0
    /// pcapng: at most this many interfaces are described; a packet that would need one more
    /// (its time in yet another 10^9-second era) has its time clamped instead.
    public static let maxInterfaces = 256
    /// The path given to `init`; `"-"` is standard output.
    public let path: String
    /// pcapng: the interfaces written, by link type and the whole seconds their times count from
    /// (`if_tsoffset`; 0 but for times 64 bits of nanoseconds since 1970 do not hold).
    private struct InterfaceKey: Hashable {
        let linkType: Int32
        let offsetSeconds: Int64
    }
    private var interfaces: [InterfaceKey: UInt32] = [:]

    /// Creates (or truncates) `path`; `"-"` writes to standard output.
    ///
    /// - Parameters:
    ///   - linkType: a DLT_ value, normally the source's `linkType`.
    ///   - snaplen: the file header's snapshot length. Readers reject packets longer than it, so keep the
    ///     default (262,144, libpcap's maximum for most link types) unless the packets are known to be shorter.
    ///   - format: pcap, or pcapng (which any link type may be added to, see `write`).
    /// - Throws: `PcapError` of kind `.write`.
    public init(path: String, linkType: Int32, snaplen: Int = 262_144, format: Format = .pcap) throws {
        self.linkType = linkType
        self.snapshotLength = snaplen
        self.path = path
        self.format = format
        switch format {
        case .pcap:
            guard let dead = pcap_open_dead_with_tstamp_precision(linkType, Int32(clamping: snaplen), UInt32(PCAP_TSTAMP_PRECISION_NANO))
            else { throw PcapError(kind: .write, message: "\(path): link type \(linkType) cannot be written") }
            let handle = PcapHandle(dead)
            guard let dumper = pcap_dump_open(dead, path) else {
                throw PcapError(kind: .write, message: handle.lastError)
            }
            sink = .libpcap(dead: handle, dumper: dumper)
        case .pcapng:
            // Standard output through a duplicate, so that closing the file does not close it.
            let file: UnsafeMutablePointer<FILE>?
            if path == "-" {
                // Closed, standard output's descriptor may have been taken by the capture read.
                let mode = fcntl(STDOUT_FILENO, F_GETFL)
                guard mode >= 0, mode & O_ACCMODE != O_RDONLY else {
                    throw PcapError(kind: .write, message: "standard output is closed or not writable")
                }
                let descriptor = dup(STDOUT_FILENO)
                file = descriptor >= 0 ? fdopen(descriptor, "wb") : nil
                if file == nil && descriptor >= 0 { _ = closeDescriptor(descriptor) }
            } else {
                file = fopen(path, "wb")
            }
            guard let file else { throw failed(errno) }
            sink = .pcapng(file)
            try writeSectionHeader(file)
            // The file's own link type described at once: a file no packet was saved to is still
            // one readers take (a section without an interface is refused).
            _ = try interface(for: InterfaceKey(linkType: linkType, offsetSeconds: 0), file)
        }
    }

    /// A writer for the packets of `source`: same link type and snapshot length, and pcapng for a
    /// pcapng capture (which may hold several link types, or describe more interfaces later).
    public convenience init(path: String, matching source: PcapSource) throws {
        try self.init(path: path, linkType: source.linkType, snaplen: max(source.snapshotLength, 1),
                      format: source.isPcapng ? .pcapng : .pcap)
    }

    deinit {
        switch sink {
        case .libpcap(_, let dumper)?: pcap_dump_close(dumper)
        case .pcapng(let file)?: fclose(file)
        case nil: break
        }
    }

    /// Whether packets of `linkType` can be written: any in pcapng, the file's own in pcap.
    public func canWrite(linkType: Int32) -> Bool {
        format == .pcapng || linkType == self.linkType
    }

    /// Writes a packet read from a `PcapSource`, with its timestamp and wire length.
    public func write(_ packet: PcapPacket, linkType: Int32? = nil) throws {
        try write(packet.data, seconds: packet.seconds, nanoseconds: packet.nanoseconds, wireLength: packet.wireLength, linkType: linkType)
    }

    /// Writes one packet.
    ///
    /// - Parameters:
    ///   - wireLength: the length on the wire; nil means the packet was captured whole.
    ///   - linkType: the packet's link type; nil means the file's (`linkType`). In pcap it must be
    ///     the file's (see `canWrite(linkType:)`).
    public func write(_ data: UnsafeRawBufferPointer, seconds: Int64, nanoseconds: Int32, wireLength: Int? = nil,
                      linkType: Int32? = nil) throws {
        guard let sink else { throw PcapError(kind: .write, message: "\(path): the writer is closed") }
        precondition(canWrite(linkType: linkType ?? self.linkType), "a pcap file holds one link type")
        // Readers refuse a record longer than the file's snapshot length (libpcap: at most 262,144
        // bytes for most link types), and a pcapng file may hold longer ones: such a packet is
        // written cut at the snapshot length, its wire length kept, as a capture with it would
        // have cut it; `packetsCut` counts them.
        let kept = min(data.count, max(snapshotLength, 1))
        if kept < data.count { packetsCut += 1 }
        let wire = max(wireLength ?? data.count, data.count)
        switch sink {
        case .libpcap(_, let dumper):
            var header = pcap_pkthdr()
            header.ts.tv_sec = .init(seconds)
            header.ts.tv_usec = .init(nanoseconds)
            header.caplen = UInt32(kept)
            header.len = UInt32(clamping: wire)
            let base = data.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
            pcap_dump(UnsafeMutablePointer<UInt8>(dumper), &header, base)
            if let file = pcap_dump_file(dumper), ferror(file) != 0 {
                throw failed(errno)
            }
        case .pcapng(let file):
            // Nanoseconds since 1970 in 64 bits hold times up to 2554; others (before 1970, or
            // later: a pcapng capture may carry them) count from an interface's if_tsoffset, a
            // whole number of 10^9 seconds below them.
            var offset: Int64 = 0
            var time: UInt64
            let (scaled, over) = UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000)
            let (sum, over2) = scaled.addingReportingOverflow(UInt64(clamping: nanoseconds))
            if seconds >= 0 && !over && !over2 {
                time = sum
            } else {
                let era: Int64 = 1_000_000_000
                offset = seconds / era * era
                if seconds < offset { offset = offset.subtractingReportingOverflow(era).overflow ? Int64.min : offset - era }
                let known = interfaces.keys.contains { $0.offsetSeconds == offset }
                if offset == Int64.min || (!known && interfaces.count >= Self.maxInterfaces) {
                    // Billions of years off, or eras past the bound (hostile times): the nearest
                    // time 64 bits of nanoseconds since 1970 hold, counted.
                    timesClamped += 1
                    offset = 0
                    time = seconds < 0 ? 0 : UInt64.max
                } else {
                    time = UInt64(seconds - offset) * 1_000_000_000 + UInt64(clamping: nanoseconds)
                }
            }
            let interface = try self.interface(for: InterfaceKey(linkType: linkType ?? self.linkType, offsetSeconds: offset), file)
            // An Enhanced Packet Block: interface, time in the interface's units (nanoseconds, see
            // `interface(for:)`), captured and original lengths, the bytes padded to 32 bits.
            let padded = (kept + 3) & ~3
            let total = 32 + padded
            // (Written from values on the stack: arrays made for every packet took a fifth longer
            // than writing pcap.)
            let head: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
                (6, UInt32(total), interface, UInt32(truncatingIfNeeded: time >> 32), UInt32(truncatingIfNeeded: time),
                 UInt32(kept), UInt32(clamping: wire))
            try withUnsafeBytes(of: head) { try put($0, file) }
            if kept > 0, let base = data.baseAddress { try put(UnsafeRawBufferPointer(start: base, count: kept), file) }
            // Zeros to the 32-bit boundary, then the block's length again.
            let tail: (UInt32, UInt32) = (0, UInt32(total))
            try withUnsafeBytes(of: tail) { try put(UnsafeRawBufferPointer(rebasing: $0[(4 - (padded - kept))...]), file) }
        }
    }

    /// Writes one packet held in an array.
    public func write(_ bytes: [UInt8], seconds: Int64 = 0, nanoseconds: Int32 = 0, wireLength: Int? = nil,
                      linkType: Int32? = nil) throws {
        try bytes.withUnsafeBytes { try write($0, seconds: seconds, nanoseconds: nanoseconds, wireLength: wireLength, linkType: linkType) }
    }

    /// Pushes buffered packets to the file.
    public func flush() throws {
        switch sink {
        case .libpcap(_, let dumper)?:
            if pcap_dump_flush(dumper) != 0 { throw failed(errno) }
        case .pcapng(let file)?:
            if fflush(file) != 0 { throw failed(errno) }
        case nil:
            return
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
        guard let sink else { return }
        self.sink = nil
        let file: UnsafeMutablePointer<FILE>?
        switch sink {
        case .libpcap(_, let dumper): file = pcap_dump_file(dumper)
        case .pcapng(let f): file = f
        }
        var failure: Int32 = 0
        if let file {
            if fflush(file) != 0 { failure = errno }
            if failure == 0, ferror(file) != 0 { failure = EIO }
            // The descriptor's own close can report what was only found on the way to the disk
            // (NFS, quotas): close a duplicate first, which reports it without pulling the FILE's
            // descriptor from under the close below.
            let copy = dup(fileno(file))
            if copy >= 0, closeDescriptor(copy) != 0, failure == 0 { failure = errno }
        }
        switch sink {
        case .libpcap(_, let dumper): pcap_dump_close(dumper)
        case .pcapng(let f): fclose(f)
        }
        if failure != 0 {
            throw failed(failure, "; the file is incomplete")
        }
    }

    // MARK: pcapng

    /// Bytes of a block being made, in this machine's byte order (which the section header's
    /// byte-order magic tells readers).
    private struct BlockBytes {
        var bytes: [UInt8] = []
        mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) } }
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) } }
    }

    private func put(_ bytes: [UInt8], _ file: UnsafeMutablePointer<FILE>) throws {
        try bytes.withUnsafeBytes { try put($0, file) }
    }

    private func put(_ bytes: UnsafeRawBufferPointer, _ file: UnsafeMutablePointer<FILE>) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        if fwrite(base, 1, bytes.count, file) != bytes.count { throw failed(errno) }
    }

    /// The Section Header Block: byte-order magic, version 1.0, section length not given.
    private func writeSectionHeader(_ file: UnsafeMutablePointer<FILE>) throws {
        var block = BlockBytes()
        block.u32(0x0A0D_0D0A)
        block.u32(28)
        block.u32(0x1A2B_3C4D)
        block.u16(1)
        block.u16(0)
        block.u64(UInt64.max)
        block.u32(28)
        try put(block.bytes, file)
    }

    /// The interface for packets of `key`'s link type and time offset, described (an Interface
    /// Description Block, with timestamps in nanoseconds: `if_tsresol` 9, and `if_tsoffset` if
    /// not 0) before its first packet.
    private func interface(for key: InterfaceKey, _ file: UnsafeMutablePointer<FILE>) throws -> UInt32 {
        if let known = interfaces[key] { return known }
        let linkType = key.linkType
        // Files carry LINKTYPE_ values: the same numbers as the DLT_ values packets come with here
        // but for raw IP (the inverse of what `PcapngReader` maps). They are 16 bits in pcapng.
        let fileType = linkType == PcapLinkType.raw ? PcapLinkType.linktypeRaw : linkType
        guard let type = UInt16(exactly: fileType) else {
            throw PcapError(kind: .write, message: "\(path): link type \(linkType) cannot be written to pcapng")
        }
        let total: UInt32 = key.offsetSeconds == 0 ? 32 : 44
        var block = BlockBytes()
        block.u32(1)
        block.u32(total)
        block.u16(type)
        block.u16(0)
        block.u32(UInt32(clamping: max(snapshotLength, 1)))
        block.u16(9)  // if_tsresol
        block.u16(1)
        block.bytes += [9, 0, 0, 0]  // 10^-9 s, padded
        if key.offsetSeconds != 0 {
            block.u16(14)  // if_tsoffset, seconds
            block.u16(8)
            block.u64(UInt64(bitPattern: key.offsetSeconds))
        }
        block.u16(0)  // opt_endofopt
        block.u16(0)
        block.u32(total)
        try put(block.bytes, file)
        let id = UInt32(interfaces.count)
        interfaces[key] = id
        return id
    }
}

/// close(2), out of reach of `PcapWriter.close()`'s name.
private func closeDescriptor(_ fd: Int32) -> Int32 { close(fd) }
