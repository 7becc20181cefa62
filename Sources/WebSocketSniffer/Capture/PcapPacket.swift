/// One packet read from a `PcapSource`.
///
/// `data` is borrowed from libpcap's buffer, which the next read reuses: it is valid only until the next call
/// to `PcapSource.next()` / `read()` (or until the source is released). Copy it (`bytes`) to keep it.
/// Borrowing avoids a copy per packet, which is most of the cost of a bare read loop.
public struct PcapPacket {
    /// 1-based position in the capture, counting every packet read, including ones a filter rejected on an
    /// offline file, so it matches Wireshark's frame number for files.
    public let number: Int
    /// Capture time: whole seconds since the Unix epoch.
    public let seconds: Int64
    /// Capture time: nanoseconds within `seconds` (0..<1_000_000_000), whatever the file's precision.
    public let nanoseconds: Int32
    /// The bytes captured, at most the snapshot length.
    public let captureLength: Int
    /// The packet's length on the wire; larger than `captureLength` when the snapshot length cut it.
    public let wireLength: Int
    /// The captured bytes, borrowed (see the type's note).
    public let data: UnsafeRawBufferPointer

    public init(number: Int, seconds: Int64, nanoseconds: Int32, wireLength: Int, data: UnsafeRawBufferPointer) {
        self.number = number
        self.seconds = seconds
        self.nanoseconds = nanoseconds
        self.captureLength = data.count
        self.wireLength = wireLength
        self.data = data
        time = Double(seconds) + Double((Int(nanoseconds) + 500) / 1000) / 1e6
    }

    /// Capture time in seconds since the Unix epoch, rounded to the microsecond (half up): the resolution
    /// sniff shows. A Double near 1.8e9 steps by about 0.24 µs, so nanoseconds kept in it would come out
    /// rounded twice (12.3 µs stored as 12.398, then shown as 13); rounded first, every time is within
    /// 0.12 µs of a whole microsecond and shows as it. Use `seconds` and `nanoseconds` for exact values.
    /// (Stored: it is read several times per packet.)
    public let time: Double

    /// A copy of the captured bytes.
    public var bytes: [UInt8] { Array(data) }

    /// True if the snapshot length cut the packet short.
    public var isTruncated: Bool { captureLength < wireLength }
}

/// What `PcapSource.read()` returns.
public enum PcapReadResult {
    /// A packet; its `data` is valid until the next read.
    case packet(PcapPacket)
    /// A live capture's timeout passed without a packet: a chance to check a deadline or flush output.
    case timeout
    /// `PcapLoopBreaker.breakLoop()` was called. Reading again resumes the capture.
    case interrupted
    /// The end of a capture file (or of a capture after a read error).
    case endOfCapture
}

/// libpcap's counters for a live capture.
public struct PcapStatistics: Sendable, Hashable {
    /// Packets the kernel handed to the capture (on Linux: that passed the filter).
    public var received: UInt64
    /// Packets dropped because the capture buffer was full: raise `bufferSize` or filter more.
    public var dropped: UInt64
    /// Packets the interface or its driver dropped, where the platform reports it.
    public var droppedByInterface: UInt64

    public init(received: UInt64, dropped: UInt64, droppedByInterface: UInt64) {
        self.received = received
        self.dropped = dropped
        self.droppedByInterface = droppedByInterface
    }
}
