/// Why a flow ended.
public enum TCPFlowCloseReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Both directions reached their FIN.
    case fin
    /// A RST was seen.
    case rst
    /// No segment for `idleTimeout` seconds of capture time.
    case idle
    /// The flow table was full (`maxFlows`) and this was the least recently active flow.
    case evicted
    /// A new connection (a SYN) started on the same four-tuple.
    case reused
    /// `finish` was called: the capture ended with the flow still open.
    case endOfCapture = "end-of-capture"

    public var description: String { rawValue }
}

/// What `TCPReassembler` reports, in stream order per direction.
///
/// For each flow: `flowOpened` first, then `data` and `gap` events whose `offset`s tile each direction's
/// byte stream without overlap, `directionClosed` when a direction's FIN is reached, and `flowClosed` last.
/// Offsets count the direction's stream from 0 (the first byte after the SYN, or the first byte seen when
/// the flow was picked up mid-stream), and keep counting past 4 GiB.
public enum TCPReassemblyEvent {
    /// A flow was seen for the first time.
    case flowOpened(TCPFlowInfo)
    /// Bytes in stream order. `bytes` is borrowed: valid only during the callback, copy it to keep it.
    /// `time` and `packetNumber` are those of the segment that carried the bytes (which, for a segment that
    /// arrived out of order, is earlier than the packet that completed the stream).
    case data(TCPFlowID, TCPDirection, bytes: UnsafeRawBufferPointer, offset: UInt64, time: Double, packetNumber: Int)
    /// `missing` bytes at `offset` were not captured (lost by the capture, cut by the snapshot length, or
    /// never seen before the flow closed), or were skipped because the out-of-order buffer was full
    /// (`bufferFull`: they may still come, too late). The stream resumes at `offset + missing`. `time`
    /// is when the loss was concluded.
    case gap(TCPFlowID, TCPDirection, missing: Int, offset: UInt64, time: Double, bufferFull: Bool)
    /// The direction's FIN was reached in order: no more bytes will come that way.
    case directionClosed(TCPFlowID, TCPDirection, time: Double)
    /// The flow ended; nothing more is reported for this ID.
    case flowClosed(TCPFlowID, reason: TCPFlowCloseReason, time: Double)
}

/// Counters kept by `TCPReassembler`, for `--stats` and for judging a capture's quality.
public struct TCPReassemblyStatistics: Sendable, Hashable {
    /// Segments given to `process`.
    public var segments = 0
    /// Segments that belonged to no flow: pure ACKs, RSTs or FINs of connections not seen before, and
    /// segments of flows already closed.
    public var ignoredSegments = 0
    public var flowsOpened = 0
    /// Flows closed, by reason.
    public var flowsClosed: [TCPFlowCloseReason: Int] = [:]
    /// Segments that arrived ahead of a hole and were buffered.
    public var outOfOrderSegments = 0
    /// Bytes received again after they had been delivered (exact or overlapping retransmissions).
    public var retransmittedBytes = 0
    /// Gaps reported, and the bytes they cover; of those, the ones skipped because the out-of-order
    /// buffer was full.
    public var gaps = 0
    public var gapBytes = 0
    public var bufferFullGaps = 0
    public var bufferFullGapBytes = 0
    /// Bytes (plus a fixed overhead per segment) held in out-of-order buffers now, and at most.
    public var bufferedBytes = 0
    public var peakBufferedBytes = 0

    public init() {}
}
