/// Limits of a `TCPReassembler`. Together they bound its memory whatever the capture holds.
public struct TCPReassemblerConfiguration: Sendable, Hashable {
    /// Bytes of out-of-order data buffered per direction of a flow before the reassembler gives up on the
    /// hole in front of them, reports it as a gap and moves on. 4 MiB covers the largest TCP windows seen in
    /// practice on a fast link, so a capture that merely reordered packets never loses data. Each buffered
    /// segment also counts 64 bytes of bookkeeping, so a flood of tiny segments is bounded too.
    public var maxFlowBuffer: Int
    /// Bytes of out-of-order data buffered across all flows; past it, the direction trying to buffer more
    /// skips ahead as if its own limit were reached. 256 MiB: many flows can each hold a full window's worth
    /// at once without the process growing without bound.
    public var maxTotalBuffer: Int
    /// Seconds of capture time without a segment after which a flow is closed as idle. 300 s outlives
    /// WebSocket keep-alive intervals (typically 20–60 s) so quiet connections stay intact.
    public var idleTimeout: Double
    /// Flows tracked at once (including recently closed ones, kept to absorb their last ACKs); the least
    /// recently active is evicted to make room. 100,000 flows take a few tens of MiB.
    public var maxFlows: Int

    public init(
        maxFlowBuffer: Int = 4 << 20, maxTotalBuffer: Int = 256 << 20, idleTimeout: Double = 300, maxFlows: Int = 100_000
    ) {
        self.maxFlowBuffer = maxFlowBuffer
        self.maxTotalBuffer = maxTotalBuffer
        self.idleTimeout = idleTimeout
        self.maxFlows = maxFlows
    }
}
